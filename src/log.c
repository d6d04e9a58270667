/*
 * log - the host's log.  See log.h.
 *
 * A message is formatted into one buffer, then copied into the line with
 * its control characters escaped, for stderr and syslog alike: neither
 * escapes them (rsyslog does, syslog-ng and journald do not), and a raw LF
 * would end the line there.  Backslashes are kept as they are, so the
 * escaping cannot be undone exactly; it is there to keep lines whole, and
 * a doubled backslash in every Windows path or regular expression logged
 * would cost more readability than the ambiguity does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static bool to_stderr = true;
static int max_level = LOG_INFO;

void
log_open(bool use_stderr, int facility, int level)
{
	to_stderr = use_stderr;
	max_level = level;
	if (!use_stderr)
		openlog("milterhost", LOG_PID | LOG_NDELAY, facility);
}

void
log_set_level(int level)
{
	max_level = level;
}

bool
log_enabled(int level)
{
	return level <= max_level;
}

static const char *
level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
	case LOG_ERR:
		return "error";
	case LOG_WARNING:
		return "warning";
	case LOG_NOTICE:
		return "notice";
	case LOG_INFO:
		return "info";
	default:
		return "debug";
	}
}

/* The escape sequence for byte c in a log line, or NULL to copy it. */
static const char *
escape_of(unsigned char c, char buf[5])
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '\r':
		return "\\r";
	case '\n':
		return "\\n";
	case '\t':
		return "\\t";
	}
	if (c >= 0x20 && c != 0x7f)
		return NULL;
	buf[0] = '\\';
	buf[1] = 'x';
	buf[2] = hex[c >> 4];
	buf[3] = hex[c & 0xf];
	buf[4] = '\0';
	return buf;
}

/*
 * Append src to out, which holds *len bytes and may grow to size, with
 * control characters escaped.  Returns false if src did not fit: out then
 * ends before the first byte that did not, or before the whole UTF-8
 * character that byte belongs to, never inside an escape sequence.
 */
static bool
escape_into(char *out, size_t size, size_t *len, const char *src)
{
	const unsigned char *p = (const unsigned char *)src;
	size_t o = *len;
	char buf[5];

	for (; *p != '\0'; p++) {
		const char *e = escape_of(*p, buf);
		size_t n = e ? strlen(e) : 1;

		if (o + n > size) {
			/* Continuation bytes: drop the character's start. */
			if ((*p & 0xc0) == 0x80) {
				while (o > *len &&
				    ((unsigned char)out[o - 1] & 0xc0) == 0x80)
					o--;
				if (o > *len &&
				    (unsigned char)out[o - 1] >= 0xc0)
					o--;
			}
			*len = o;
			return false;
		}
		if (e != NULL)
			memcpy(out + o, e, n);
		else
			out[o] = (char)*p;
		o += n;
	}
	*len = o;
	return true;
}

void
log_vmsg_prefixed(int level, const char *prefix, const char *fmt,
    va_list ap)
{
	char text[LOG_LINE_MAX + 1], line[LOG_LINE_MAX + 2];
	/* Room for the text; "..." follows a cut one. */
	const size_t room = LOG_LINE_MAX - 3;
	size_t len = 0;
	bool cut;
	int n, errsave = errno;

	if (!log_enabled(level))
		return;
	n = vsnprintf(text, sizeof text, fmt != NULL ? fmt : "(no text)", ap);
	if (n < 0)
		snprintf(text, sizeof text, "(cannot format \"%s\")", fmt);
	cut = n > 0 && (size_t)n >= sizeof text;
	if (to_stderr)
		len = (size_t)snprintf(line, sizeof line, "milterhost: %s: ",
		    level_name(level));
	if (!escape_into(line, room, &len, prefix) ||
	    !escape_into(line, room, &len, text))
		cut = true;
	if (cut) {
		memcpy(line + len, "...", 3);
		len += 3;
	}
	if (!to_stderr) {
		line[len] = '\0';
		syslog(level, "%s", line);
	} else {
		line[len++] = '\n';
		/* One write per line: concurrent sessions never mix lines. */
		if (write(STDERR_FILENO, line, len) < 0)
			(void)0;
	}
	errno = errsave;
}

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	log_vmsg_prefixed(level, "", fmt, ap);
}

void
log_msg(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

int
log_parse_level(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
		{ "err", LOG_ERR }, { "error", LOG_ERR },
		{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
		if (strcasecmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

int
log_parse_facility(const char *name)
{
	static const struct {
		const char *name;
		int facility;
	} facilities[] = {
		{ "mail", LOG_MAIL }, { "daemon", LOG_DAEMON },
		{ "user", LOG_USER },
		{ "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
		{ "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
		{ "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
		{ "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
	};

	for (size_t i = 0; i < sizeof facilities / sizeof facilities[0]; i++)
		if (strcasecmp(name, facilities[i].name) == 0)
			return facilities[i].facility;
	return -1;
}

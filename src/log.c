/*
 * log - the host's log.  See log.h.
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

void
log_vmsg(int level, const char *fmt, va_list ap)
{
	char line[2048];
	int n, errsave = errno;

	if (!log_enabled(level))
		return;
	if (!to_stderr) {
		vsyslog(level, fmt, ap);
		errno = errsave;
		return;
	}
	n = snprintf(line, sizeof line, "milterhost: %s: ", level_name(level));
	if (n < 0 || (size_t)n >= sizeof line)
		return;
	vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	/* One write per line: concurrent sessions never mix their lines. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		(void)0;
	errno = errsave;
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

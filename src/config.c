/*
 * config - read milterhost's ini file.  See config.h, and doc/design.md
 * "Configuration".
 *
 * libinih splits each line into a section, a key and a value, but three
 * things it does are unsafe for us: it silently splits a line longer than
 * its buffer, it does not tell the handler the line number or that a line
 * is an indented continuation, and it never reports a section header, nor
 * keeps a section or key name longer than 49 bytes whole.  So libinih reads
 * through read_line(), our own reader, which:
 *
 *  - refuses a line that would not fit libinih's buffer;
 *  - counts lines, and sorts each one as libinih will (blank or comment,
 *    continuation, section header, key line), so that the handler knows
 *    the line and whether it continues the key above;
 *  - handles section headers itself, whole;
 *  - notices a key line for which libinih did not call the handler: that
 *    is libinih's syntax error;
 *  - feeds no more lines after the first error, which is the one reported.
 *
 * The handler, handle_key(), judges host keys and keeps every other key of
 * a plugin section, in file order, for the plugin's init.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <search.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/types.h>
#include <syslog.h>

#include <ini.h>

#include <milterhost/plugin.h>

#include "array.h"
#include "config.h"
#include "log.h"
#include "mods.h"
#include "paths.h"
#include "reply.h"

#define DEFAULT_SOCKET "inet:8891@127.0.0.1"
#define DEFAULT_TIMEOUT 7210
/* How long a stop waits for open sessions, in seconds. */
#define DEFAULT_STOP_TIMEOUT 30
/* A callback slower than this is logged and counted, in milliseconds. */
#define DEFAULT_SLOW_MS 1000
#define PLUGIN_PREFIX "plugin:"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

enum set_result {
	SET_OK,
	SET_BAD,   /* the value is not one the key takes */
	SET_LATER, /* a value of a later version: not yet supported */
	SET_NOMEM
};

/*
 * A key the host judges itself.  set() stores a checked value into cfg
 * (keys of [milterhost]) or inst (keys of a plugin section); expected
 * says what the key takes, for error messages.
 */
struct host_key {
	const char *name;
	enum set_result (*set)(struct config *cfg,
			       struct config_instance *inst, const char *value);
	const char *expected;
};

/* ---- values ----------------------------------------------------------- */

/* The words mh_parse_bool() takes, the one list of them. */
static bool
parse_bool(const char *value, bool *out)
{
	int b;

	if (mh_parse_bool(value, &b) < 0)
		return false;
	*out = b != 0;
	return true;
}

/*
 * Parse the digits of s[0..len) in base (8 or 10) into 0..max.  No sign,
 * no blanks, nothing after the digits.
 */
static bool
parse_number(const char *s, size_t len, int base, long max, long *out)
{
	long n = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		int digit = s[i] - '0';

		if (!isdigit((unsigned char)s[i]) || digit >= base)
			return false;
		if (n > (max - digit) / base)
			return false;
		n = n * base + digit;
	}
	*out = n;
	return true;
}

static bool
has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
has_blank(const char *s)
{
	for (; *s != '\0'; s++)
		if (isspace((unsigned char)*s))
			return true;
	return false;
}

/* PORT or PORT@HOST, PORT 1-65535; a HOST is needed for inet6. */
static bool
valid_inet(const char *spec, bool need_host)
{
	const char *at = strchr(spec, '@');
	size_t portlen = at != NULL ? (size_t)(at - spec) : strlen(spec);
	long port;

	if (!parse_number(spec, portlen, 10, 65535, &port) || port == 0)
		return false;
	if (at == NULL)
		return !need_host;
	return at[1] != '\0' && strchr(at + 1, '@') == NULL;
}

/*
 * libmilter's connection specs (smfi_setconn).  inet6 with a port only
 * also works in libmilter (it listens on every address) and is accepted.
 */
static bool
valid_socket(const char *value)
{
	if (has_blank(value))
		return false;
	if (has_prefix(value, "inet:"))
		return valid_inet(value + strlen("inet:"), false);
	if (has_prefix(value, "inet6:"))
		return valid_inet(value + strlen("inet6:"), false);
	if (has_prefix(value, "unix:"))
		value += strlen("unix:");
	else if (has_prefix(value, "local:"))
		value += strlen("local:");
	else
		return false;
	return value[0] == '/' && value[1] != '\0';
}

/* Replace *slot by a copy of value. */
static enum set_result
set_string(char **slot, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL)
		return SET_NOMEM;
	free(*slot);
	*slot = copy;
	return SET_OK;
}

static enum set_result
set_socket(struct config *cfg, struct config_instance *inst,
	   const char *value)
{
	if (!valid_socket(value))
		return SET_BAD;
	return set_string(&cfg->socket, value);
}

static enum set_result
set_plugin_dir(struct config *cfg, struct config_instance *inst,
	       const char *value)
{
	return set_string(&cfg->plugin_dir, value);
}

/* A whole number of seconds or connections into *field. */
static enum set_result
set_count(int *field, const char *value, bool zero_ok)
{
	long n;

	if (!parse_number(value, strlen(value), 10, INT_MAX, &n) ||
	    (n == 0 && !zero_ok))
		return SET_BAD;
	*field = (int)n;
	return SET_OK;
}

static enum set_result
set_timeout(struct config *cfg, struct config_instance *inst,
	    const char *value)
{
	return set_count(&cfg->timeout, value, false);
}

static enum set_result
set_stop_timeout(struct config *cfg, struct config_instance *inst,
		 const char *value)
{
	return set_count(&cfg->stop_timeout, value, true);
}

static enum set_result
set_backlog(struct config *cfg, struct config_instance *inst,
	    const char *value)
{
	return set_count(&cfg->backlog, value, true);
}

static enum set_result
set_user(struct config *cfg, struct config_instance *inst, const char *value)
{
	if (has_blank(value))
		return SET_BAD;
	return set_string(&cfg->user, value);
}

static enum set_result
set_group(struct config *cfg, struct config_instance *inst,
	  const char *value)
{
	if (has_blank(value))
		return SET_BAD;
	return set_string(&cfg->group, value);
}

static enum set_result
set_socket_mode(struct config *cfg, struct config_instance *inst,
		const char *value)
{
	long mode;

	if (!parse_number(value, strlen(value), 8, 0777, &mode))
		return SET_BAD;
	cfg->socket_mode = (int)mode;
	return SET_OK;
}

static enum set_result
set_pidfile(struct config *cfg, struct config_instance *inst,
	    const char *value)
{
	if (value[0] != '/' || value[1] == '\0')
		return SET_BAD;
	return set_string(&cfg->pidfile, value);
}

static enum set_result
set_log_level(struct config *cfg, struct config_instance *inst,
	      const char *value)
{
	int level = log_parse_level(value);

	if (level < 0)
		return SET_BAD;
	cfg->log_level = level;
	return SET_OK;
}

static enum set_result
set_log_facility(struct config *cfg, struct config_instance *inst,
		 const char *value)
{
	int facility = log_parse_facility(value);

	if (facility < 0)
		return SET_BAD;
	cfg->log_facility = facility;
	return SET_OK;
}

static enum set_result
set_log_destination(struct config *cfg, struct config_instance *inst,
		    const char *value)
{
	if (strcasecmp(value, "auto") == 0)
		cfg->log_destination = LOG_DEST_AUTO;
	else if (strcasecmp(value, "syslog") == 0)
		cfg->log_destination = LOG_DEST_SYSLOG;
	else if (strcasecmp(value, "stderr") == 0)
		cfg->log_destination = LOG_DEST_STDERR;
	else
		return SET_BAD;
	return SET_OK;
}

static enum set_result
set_on_error(struct config *cfg, struct config_instance *inst,
	     const char *value)
{
	return config_parse_on_error(value, &cfg->on_error) < 0 ?
	    SET_BAD : SET_OK;
}

static enum set_result
set_autoload(struct config *cfg, struct config_instance *inst,
	     const char *value)
{
	return parse_bool(value, &cfg->autoload) ? SET_OK : SET_BAD;
}

static enum set_result
set_strict_modes(struct config *cfg, struct config_instance *inst,
		 const char *value)
{
	return parse_bool(value, &cfg->strict_modes) ? SET_OK : SET_BAD;
}

/* A threshold: a finite number (points may have decimals). */
static enum set_result
set_threshold(double *field, bool *set, const char *value)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(value, &end);
	if (end == value || *end != '\0' || errno != 0 || !isfinite(d))
		return SET_BAD;
	*field = d;
	*set = true;
	return SET_OK;
}

static enum set_result
set_score_reject(struct config *cfg, struct config_instance *inst,
		 const char *value)
{
	return set_threshold(&cfg->score.reject, &cfg->score.reject_set,
	    value);
}

static enum set_result
set_score_tempfail(struct config *cfg, struct config_instance *inst,
		   const char *value)
{
	return set_threshold(&cfg->score.tempfail, &cfg->score.tempfail_set,
	    value);
}

/* "550 5.7.1 text" of the class the threshold decides. */
static enum set_result
set_score_reply(struct reply *r, char class, const char *value)
{
	char err[256];

	if (reply_parse(r, value, err, sizeof err) < 0)
		return SET_BAD;
	return reply_class(r) == class ? SET_OK : SET_BAD;
}

static enum set_result
set_score_reject_reply(struct config *cfg, struct config_instance *inst,
		       const char *value)
{
	return set_score_reply(&cfg->score.reject_reply, '5', value);
}

static enum set_result
set_score_tempfail_reply(struct config *cfg, struct config_instance *inst,
			 const char *value)
{
	return set_score_reply(&cfg->score.tempfail_reply, '4', value);
}

static enum set_result
set_score_header(struct config *cfg, struct config_instance *inst,
		 const char *value)
{
	if (!mod_header_name_ok(value))
		return SET_BAD;
	return set_string(&cfg->score.header, value);
}

/* A file name in plugin_dir, or an absolute path: never "dir/file.so". */
static enum set_result
set_module(struct config *cfg, struct config_instance *inst,
	   const char *value)
{
	if (value[0] != '/' && strchr(value, '/') != NULL)
		return SET_BAD;
	if (strcmp(value, ".") == 0 || strcmp(value, "..") == 0 ||
	    strcmp(value, "/") == 0)
		return SET_BAD;
	return set_string(&inst->module, value);
}

static enum set_result
set_enabled(struct config *cfg, struct config_instance *inst,
	    const char *value)
{
	return parse_bool(value, &inst->enabled) ? SET_OK : SET_BAD;
}

static enum set_result
set_instance_on_error(struct config *cfg, struct config_instance *inst,
		      const char *value)
{
	if (config_parse_on_error(value, &inst->on_error) < 0)
		return SET_BAD;
	inst->on_error_set = true;
	return SET_OK;
}

static enum set_result
set_slow_ms(struct config *cfg, struct config_instance *inst,
	    const char *value)
{
	return set_count(inst ? &inst->slow_ms : &cfg->slow_ms, value, true);
}

/* HOST:PORT with a numeric IPv4 address, or [IPv6]:PORT. */
static enum set_result
set_metrics_listen(struct config *cfg, struct config_instance *inst,
		   const char *value)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&cfg->metrics_addr;
	struct sockaddr_in *sin = (struct sockaddr_in *)&cfg->metrics_addr;
	const char *colon = strrchr(value, ':');
	char host[64];
	long port;
	size_t n;

	if (colon == NULL || !parse_number(colon + 1, strlen(colon + 1), 10,
	    65535, &port) || port == 0)
		return SET_BAD;
	n = (size_t)(colon - value);
	memset(&cfg->metrics_addr, 0, sizeof cfg->metrics_addr);
	if (n >= 2 && value[0] == '[' && value[n - 1] == ']') {
		if (n - 2 >= sizeof host)
			return SET_BAD;
		snprintf(host, sizeof host, "%.*s", (int)(n - 2), value + 1);
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return SET_BAD;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
	} else {
		if (n >= sizeof host)
			return SET_BAD;
		snprintf(host, sizeof host, "%.*s", (int)n, value);
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return SET_BAD;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
	}
	return set_string(&cfg->metrics_listen, value);
}

static enum set_result
set_kv(struct config *cfg, struct config_instance *inst, const char *value)
{
	if (!kv_parse_spec(value, &cfg->kv))
		return SET_BAD;
	return SET_OK;
}

/* Redis's AUTH password: printable ASCII without spaces, so that what the
 * file says is what Redis gets. */
static enum set_result
set_kv_password(struct config *cfg, struct config_instance *inst,
		const char *value)
{
	size_t len = strlen(value);

	if (len == 0 || len >= sizeof cfg->kv.password)
		return SET_BAD;
	for (size_t i = 0; i < len; i++)
		if (value[i] < 33 || value[i] > 126)
			return SET_BAD;
	memcpy(cfg->kv.password, value, len + 1);
	return SET_OK;
}

static enum set_result
set_kv_timeout_ms(struct config *cfg, struct config_instance *inst,
		  const char *value)
{
	long n;

	if (!parse_number(value, strlen(value), 10, KV_TIMEOUT_MS_MAX, &n) ||
	    n == 0)
		return SET_BAD;
	cfg->kv.timeout_ms = (unsigned)n;
	return SET_OK;
}

/* A number of bytes, with an optional K, M or G (powers of 1024). */
static bool
parse_size(const char *value, size_t *out)
{
	size_t len = strlen(value);
	unsigned shift = 0;
	long n;

	if (len > 0) {
		switch (value[len - 1]) {
		case 'K': case 'k': shift = 10; break;
		case 'M': case 'm': shift = 20; break;
		case 'G': case 'g': shift = 30; break;
		}
	}
	if (!parse_number(value, len - (shift > 0), 10,
	    (long)(SIZE_MAX >> 1 >> shift), &n))
		return false;
	*out = (size_t)n << shift;
	return true;
}

static enum set_result
set_kv_memory_max_bytes(struct config *cfg, struct config_instance *inst,
			const char *value)
{
	size_t n;

	if (!parse_size(value, &n) || n < KV_MEMORY_MIN)
		return SET_BAD;
	cfg->kv.memory_max = n;
	return SET_OK;
}

static enum set_result
set_dry_run(struct config *cfg, struct config_instance *inst,
	    const char *value)
{
	return parse_bool(value, &inst->dry_run) ? SET_OK : SET_BAD;
}

/* ---- the keys the host judges --------------------------------------- */

#define BOOLEAN "yes, no, true, false, on, off, 1 or 0"

static const struct host_key host_keys[] = {
	{ "socket", set_socket, "inet:PORT@HOST, inet:PORT, inet6:PORT@HOST, "
	    "unix:/PATH or local:/PATH, with PORT 1-65535" },
	{ "plugin_dir", set_plugin_dir, "a directory" },
	{ "timeout", set_timeout, "a positive number of seconds" },
	{ "stop_timeout", set_stop_timeout,
	    "a number of seconds, 0 to close open sessions at once" },
	{ "backlog", set_backlog,
	    "a positive number of connections, 0 for libmilter's default" },
	{ "user", set_user, "a user name" },
	{ "group", set_group, "a group name" },
	{ "socket_mode", set_socket_mode, "an octal mode up to 0777" },
	{ "pidfile", set_pidfile, "an absolute path" },
	{ "log_level", set_log_level, "err, warning, notice, info or debug" },
	{ "log_facility", set_log_facility,
	    "mail, daemon, user or local0 to local7" },
	{ "log_destination", set_log_destination, "auto, syslog or stderr" },
	{ "on_error", set_on_error, "tempfail, continue, accept or reject" },
	{ "autoload", set_autoload, BOOLEAN },
	{ "strict_modes", set_strict_modes, BOOLEAN },
	{ "score_reject", set_score_reject, "a number of points" },
	{ "score_reject_reply", set_score_reject_reply,
	    "a 5xx reply: CODE [X.Y.Z] text" },
	{ "score_tempfail", set_score_tempfail, "a number of points" },
	{ "score_tempfail_reply", set_score_tempfail_reply,
	    "a 4xx reply: CODE [X.Y.Z] text" },
	{ "score_header", set_score_header,
	    "a header name: printable ASCII without ':' or space" },
	{ "slow_ms", set_slow_ms,
	    "a number of milliseconds, 0 to log no slow callback" },
	{ "metrics_listen", set_metrics_listen,
	    "ADDRESS:PORT with a numeric IPv4 address, or [IPv6]:PORT" },
	{ "kv", set_kv, "memory, redis://HOST:PORT[/DB] or unix:/PATH" },
	{ "kv_password", set_kv_password,
	    "1 to 255 characters of printable ASCII without spaces" },
	{ "kv_timeout_ms", set_kv_timeout_ms,
	    "a number of milliseconds from 1 to 10000" },
	{ "kv_memory_max_bytes", set_kv_memory_max_bytes,
	    "a number of bytes, with K, M or G for KB, MB or GB, at least 8M" },
};

static const struct host_key plugin_keys[] = {
	{ "module", set_module,
	    "a file name in plugin_dir or an absolute path" },
	{ "enabled", set_enabled, BOOLEAN },
	{ "on_error", set_instance_on_error,
	    "tempfail, continue, accept or reject" },
	{ "dry_run", set_dry_run, BOOLEAN },
	{ "slow_ms", set_slow_ms,
	    "a number of milliseconds, 0 to log no slow callback" },
};

enum section_kind {
	SECTION_NONE,   /* before the first header */
	SECTION_HOST,   /* [milterhost] */
	SECTION_PLUGIN  /* [plugin:NAME], the last of cfg->instances */
};

struct parser {
	struct config *cfg;
	FILE *fp;
	char *err;
	size_t errlen;
	bool failed;

	char *buf;       /* the current line, from getline() */
	size_t bufsize;
	int lineno;
	bool continuation;   /* the line continues the key above */
	bool expect_handler; /* libinih must call the handler for the line */
	bool handled;        /* and it did */

	size_t instances_cap; /* room in cfg->instances, see array_grow() */
	size_t settings_cap;  /* room in the current instance's settings */
	size_t conds_cap;     /* room in its condition keys */
	void *names;          /* tsearch tree of the instances' names */

	enum section_kind section;
	char label[256];     /* "[milterhost]", "[plugin:NAME]" */
	int host_line;       /* line of [milterhost], 0 if none yet */
	int *key_lines;      /* per host key of the section: line, 0 = unseen */
	int host_key_lines[NELEM(host_keys)];
	int plugin_key_lines[NELEM(plugin_keys)];

	char *key;           /* the key an indented line would continue */
	int key_line;
};

/* ---- errors ----------------------------------------------------------- */

/*
 * Record "FILE:LINE: message" (or "FILE: message" for line 0) unless an
 * error is already recorded: the first one is the one reported.  Returns
 * 0, libinih's "handler failed".
 */
static int __attribute__((format(printf, 3, 4)))
fail(struct parser *p, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (p->failed)
		return 0;
	p->failed = true;
	if (line > 0)
		n = snprintf(p->err, p->errlen, "%s:%d: ", p->cfg->file, line);
	else
		n = snprintf(p->err, p->errlen, "%s: ", p->cfg->file);
	if (n < 0 || (size_t)n >= p->errlen)
		return 0;
	va_start(ap, fmt);
	vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

static int
fail_nomem(struct parser *p)
{
	return fail(p, p->lineno, "out of memory");
}

/* ---- sections --------------------------------------------------------- */

static struct config_instance *
current_instance(struct parser *p)
{
	return &p->cfg->instances[p->cfg->ninstances - 1];
}

/* A section ends: a plugin section must have named its module. */
static bool
end_section(struct parser *p)
{
	struct config_instance *inst;
	char section[300];

	if (p->section != SECTION_PLUGIN)
		return true;
	inst = current_instance(p);
	if (inst->module == NULL) {
		fail(p, inst->line, "[plugin:%s] has no 'module' key",
		    inst->name);
		return false;
	}
	snprintf(section, sizeof section, "plugin:%s", inst->name);
	if (cond_compile(inst->conds, inst->nconds, p->cfg->file, section,
	    &inst->cond, p->err, p->errlen) < 0) {
		p->failed = true;
		return false;
	}
	return true;
}

static bool
valid_plugin_name(const char *name)
{
	if (*name == '\0')
		return false;
	for (; *name != '\0'; name++)
		if (!isalnum((unsigned char)*name) && strchr("_.-", *name) ==
		    NULL)
			return false;
	return true;
}

static bool
begin_host_section(struct parser *p)
{
	if (p->host_line > 0) {
		fail(p, p->lineno, "section [milterhost] given twice "
		    "(first on line %d)", p->host_line);
		return false;
	}
	p->host_line = p->lineno;
	p->section = SECTION_HOST;
	p->key_lines = p->host_key_lines;
	return true;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(a, b);
}

/*
 * Refuse a second section called name.  The names are looked up in a
 * tree, not by a scan of the sections, which would make loading quadratic
 * in their number; only the error, which ends the load, scans them for
 * the line of the first.
 */
static bool
check_new_name(struct parser *p, const char *name)
{
	struct config *cfg = p->cfg;

	if (tfind(name, &p->names, compare_names) == NULL)
		return true;
	for (size_t i = 0; i < cfg->ninstances; i++) {
		if (strcmp(cfg->instances[i].name, name) == 0) {
			fail(p, p->lineno, "section [plugin:%s] given twice "
			    "(first on line %d)", name, cfg->instances[i].line);
			break;
		}
	}
	return false;
}

static bool
begin_plugin_section(struct parser *p, const char *name)
{
	struct config *cfg = p->cfg;
	struct config_instance *inst;

	if (!valid_plugin_name(name)) {
		fail(p, p->lineno, "bad plugin name '%s' in [plugin:%s]: use "
		    "letters, digits, '_', '.' and '-'", name, name);
		return false;
	}
	if (!check_new_name(p, name))
		return false;
	inst = array_grow(cfg->instances, &p->instances_cap, cfg->ninstances,
	    sizeof *inst);
	if (inst == NULL) {
		fail_nomem(p);
		return false;
	}
	cfg->instances = inst;
	inst = &cfg->instances[cfg->ninstances];
	memset(inst, 0, sizeof *inst);
	inst->name = strdup(name);
	if (inst->name == NULL) {
		fail_nomem(p);
		return false;
	}
	cfg->ninstances++;
	/* The tree holds the instance's copy, which lives as long as cfg. */
	if (tsearch(inst->name, &p->names, compare_names) == NULL) {
		fail_nomem(p);
		return false;
	}
	p->settings_cap = 0;
	p->conds_cap = 0;
	inst->line = p->lineno;
	inst->enabled = true;
	inst->slow_ms = -1;
	p->section = SECTION_PLUGIN;
	memset(p->plugin_key_lines, 0, sizeof p->plugin_key_lines);
	p->key_lines = p->plugin_key_lines;
	return true;
}

static bool
begin_section(struct parser *p, const char *name)
{
	snprintf(p->label, sizeof p->label, "[%s]", name);
	if (strcmp(name, "milterhost") == 0)
		return begin_host_section(p);
	if (has_prefix(name, PLUGIN_PREFIX))
		return begin_plugin_section(p, name + strlen(PLUGIN_PREFIX));
	fail(p, p->lineno, "unknown section [%s]: expected [milterhost] or "
	    "[plugin:NAME]", name);
	return false;
}

/*
 * The first c in s, else the start of an inline comment (';' after a
 * blank), else the end of s: libinih's rule.  Like strchr(), it takes
 * a const string and returns a pointer into it that is not.
 */
static char *
find_char_or_comment(const char *s, int c)
{
	bool after_blank = false;

	for (; *s != '\0'; s++) {
		if (*s == c || (after_blank && *s == ';'))
			return (char *)s;
		after_blank = isspace((unsigned char)*s);
	}
	return (char *)s;
}

/* start: the '[' of a header line in p->buf, which this may change. */
static bool
section_header(struct parser *p, char *start)
{
	char *name = start + 1, *end, *rest;

	if (!end_section(p))
		return false;
	free(p->key);
	p->key = NULL;
	end = find_char_or_comment(name, ']');
	if (*end != ']') {
		fail(p, p->lineno, "syntax error: section header without ']'");
		return false;
	}
	for (rest = end + 1; isspace((unsigned char)*rest); rest++)
		continue;
	if (*rest != '\0' && *rest != ';' && *rest != '#') {
		fail(p, p->lineno, "syntax error: text after ']' in section "
		    "header");
		return false;
	}
	while (end > name && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	while (isspace((unsigned char)*name))
		name++;
	return begin_section(p, name);
}

/* ---- lines ------------------------------------------------------------ */

/*
 * Sort the line in p->buf as libinih's ini_parse_stream will: comment or
 * blank, then (indented, after a key of this section) continuation, then
 * section header, then key line.  Headers are handled here.
 */
static bool
sort_line(struct parser *p)
{
	char *start = p->buf;

	if (p->lineno == 1 && strncmp(start, "\xEF\xBB\xBF", 3) == 0)
		start += 3;
	while (isspace((unsigned char)*start))
		start++;
	p->continuation = false;
	p->expect_handler = false;
	p->handled = false;
	if (*start == '\0' || *start == ';' || *start == '#')
		return true;
	if (start > p->buf && p->key != NULL) {
		p->continuation = true;
		p->expect_handler = true;
		return true;
	}
	if (*start == '[')
		return section_header(p, start);
	p->expect_handler = true;
	return true;
}

/*
 * libinih's reader: fgets() with checks.  num is the size of libinih's
 * buffer; a line of more than num - 2 bytes besides its newline would be
 * split.
 */
static char *
read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	ssize_t len;
	size_t content;

	if (p->expect_handler && !p->handled)
		fail(p, p->lineno, "syntax error: expected 'key = value' or "
		    "'[section]'");
	if (p->failed)
		return NULL;
	errno = 0;
	len = getline(&p->buf, &p->bufsize, p->fp);
	if (len < 0) {
		/* Not feof(): a read error or no memory for the line. */
		if (!feof(p->fp))
			fail(p, 0, "cannot read: %s", strerror(errno));
		p->expect_handler = false;
		return NULL;
	}
	p->lineno++;
	content = (size_t)len - (p->buf[len - 1] == '\n');
	if (memchr(p->buf, '\0', (size_t)len) != NULL) {
		fail(p, p->lineno, "line holds a NUL byte");
		return NULL;
	}
	if (num < 2 || content > (size_t)num - 2) {
		fail(p, p->lineno, "line is longer than %d bytes (libinih's "
		    "limit)", num < 2 ? 0 : num - 2);
		return NULL;
	}
	memcpy(str, p->buf, (size_t)len + 1);
	if (!sort_line(p))
		return NULL;
	return str;
}

/* ---- keys ------------------------------------------------------------- */

static int
set_host_key(struct parser *p, const struct host_key *k, int *seen,
	     const char *value)
{
	struct config_instance *inst = NULL;

	if (*seen > 0)
		return fail(p, p->lineno, "key '%s' given twice in %s (first "
		    "on line %d)", k->name, p->label, *seen);
	*seen = p->lineno;
	if (*value == '\0')
		return fail(p, p->lineno, "key '%s' needs a value: %s",
		    k->name, k->expected);
	if (p->section == SECTION_PLUGIN)
		inst = current_instance(p);
	switch (k->set(p->cfg, inst, value)) {
	case SET_OK:
		break;
	case SET_BAD:
		return fail(p, p->lineno, "bad value '%s' for key '%s': "
		    "expected %s", value, k->name, k->expected);
	case SET_LATER:
		return fail(p, p->lineno, "value '%s' for key '%s' is not yet "
		    "supported by this version: expected memory", value,
		    k->name);
	case SET_NOMEM:
		return fail_nomem(p);
	}
	if (k->set == set_module)
		inst->module_line = p->lineno;
	if (k->set == set_autoload)
		p->cfg->autoload_line = p->lineno;
	return 1;
}

/* The host key called name in the current section, or -1. */
static int
find_host_key(struct parser *p, const char *name)
{
	const struct host_key *keys = host_keys;
	size_t n = NELEM(host_keys);

	if (p->section == SECTION_PLUGIN) {
		keys = plugin_keys;
		n = NELEM(plugin_keys);
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

/* Keep the first len bytes of value as a setting of the instance. */
static int
add_setting(struct parser *p, const char *key, const char *value, size_t len)
{
	struct config_instance *inst = current_instance(p);
	struct config_setting *s;

	s = array_grow(inst->settings, &p->settings_cap, inst->nsettings,
	    sizeof *s);
	if (s == NULL)
		return fail_nomem(p);
	inst->settings = s;
	s = &inst->settings[inst->nsettings];
	s->key = strdup(key);
	s->value = strndup(value, len);
	if (s->key == NULL || s->value == NULL) {
		free(s->key);
		free(s->value);
		return fail_nomem(p);
	}
	s->line = p->lineno;
	s->continuation = p->continuation;
	inst->nsettings++;
	return 1;
}

/*
 * An indented line.  libinih r55 leaves an inline comment in it (later
 * versions do not): it is cut here, as on a key line.
 */
/* A condition key (if_*) of a plugin section, compiled at its end. */
static int
add_condition(struct parser *p, const char *key, const char *value)
{
	struct config_instance *inst = current_instance(p);
	struct config_setting *s;

	s = array_grow(inst->conds, &p->conds_cap, inst->nconds, sizeof *s);
	if (s == NULL)
		return fail_nomem(p);
	inst->conds = s;
	s = &inst->conds[inst->nconds];
	memset(s, 0, sizeof *s);
	s->key = strdup(key);
	s->value = strdup(value);
	if (s->key == NULL || s->value == NULL) {
		free(s->key);
		free(s->value);
		return fail_nomem(p);
	}
	s->line = p->lineno;
	inst->nconds++;
	return 1;
}

static int
continue_key(struct parser *p, const char *value)
{
	const char *end;

	if (p->section == SECTION_PLUGIN && find_host_key(p, p->key) < 0 &&
	    !cond_is_key(p->key)) {
		end = find_char_or_comment(value, '\0');
		while (end > value && isspace((unsigned char)end[-1]))
			end--;
		return add_setting(p, p->key, value, (size_t)(end - value));
	}
	return fail(p, p->lineno, "indented line continues key '%s' of line "
	    "%d, which takes one value (unindent the line if it is a key of "
	    "its own)", p->key, p->key_line);
}

static int
new_key(struct parser *p, const char *name, const char *value)
{
	int i;

	if (*name == '\0')
		return fail(p, p->lineno, "syntax error: no key before '='");
	free(p->key);
	p->key = strdup(name);
	if (p->key == NULL)
		return fail_nomem(p);
	p->key_line = p->lineno;
	if (p->section == SECTION_NONE)
		return fail(p, p->lineno, "key '%s' outside any section",
		    name);
	i = find_host_key(p, name);
	if (i >= 0)
		return set_host_key(p, p->section == SECTION_PLUGIN ?
		    &plugin_keys[i] : &host_keys[i], &p->key_lines[i], value);
	if (p->section == SECTION_HOST)
		return fail(p, p->lineno, "unknown key '%s' in [milterhost]",
		    name);
	if (cond_is_key(name))
		return add_condition(p, name, value);
	return add_setting(p, name, value, strlen(value));
}

/*
 * libinih's handler, called for the line read last.  section is ignored
 * (ours is whole), and so is name on a continuation line (libinih's copy
 * is cut at 49 bytes).
 */
static int
handle_key(void *user, const char *section, const char *name,
	   const char *value)
{
	struct parser *p = user;

	if (p->failed)
		return 0;
	p->handled = true;
	if (p->continuation)
		return continue_key(p, value);
	return new_key(p, name, value);
}

/* ---- the config ------------------------------------------------------- */

/*
 * Empty the tree of names, whose keys belong to the instances.  POSIX has
 * no tdestroy(); the first member of a node is the pointer to its key.
 */
static void
free_names(void **root)
{
	while (*root != NULL)
		tdelete(*(void **)*root, root, compare_names);
}

static struct config *
config_new(const char *path)
{
	struct config *cfg = calloc(1, sizeof *cfg);

	if (cfg == NULL)
		return NULL;
	cfg->file = strdup(path);
	cfg->socket = strdup(DEFAULT_SOCKET);
	cfg->plugin_dir = strdup(PLUGIN_DIR);
	if (cfg->file == NULL || cfg->socket == NULL ||
	    cfg->plugin_dir == NULL) {
		config_free(cfg);
		return NULL;
	}
	cfg->timeout = DEFAULT_TIMEOUT;
	cfg->stop_timeout = DEFAULT_STOP_TIMEOUT;
	cfg->strict_modes = true;
	cfg->backlog = 0;
	cfg->socket_mode = -1;
	cfg->log_level = LOG_INFO;
	cfg->log_facility = LOG_MAIL;
	cfg->log_destination = LOG_DEST_AUTO;
	cfg->on_error = ON_ERROR_TEMPFAIL;
	cfg->autoload = false;
	cfg->slow_ms = DEFAULT_SLOW_MS;
	kv_spec_default(&cfg->kv);
	return cfg;
}

/* The line of host key name in [milterhost], 0 if not given. */
static int
host_key_line(const struct parser *p, const char *name)
{
	for (size_t i = 0; i < NELEM(host_keys); i++)
		if (strcmp(host_keys[i].name, name) == 0)
			return p->host_key_lines[i];
	return 0;
}

/* A score reply needs its threshold. */
static bool
check_score_keys(struct parser *p)
{
	static const char *const pairs[][2] = {
		{ "score_reject_reply", "score_reject" },
		{ "score_tempfail_reply", "score_tempfail" },
	};

	for (size_t i = 0; i < NELEM(pairs); i++) {
		int line = host_key_line(p, pairs[i][0]);

		if (line > 0 && host_key_line(p, pairs[i][1]) == 0) {
			fail(p, line, "key '%s' without '%s': the reply of a "
			    "threshold that is not set", pairs[i][0],
			    pairs[i][1]);
			return false;
		}
	}
	return true;
}

/* Run libinih over the open file; false with p->err set on error. */
static bool
parse(struct parser *p)
{
	int rc;

	rc = ini_parse_stream(read_line, p, handle_key, p);
	if (p->failed)
		return false;
	/* A line libinih refused that read_line did not foresee. */
	if (rc > 0) {
		fail(p, rc, "syntax error: expected 'key = value' or "
		    "'[section]'");
		return false;
	}
	if (rc < 0) {
		fail(p, 0, "libinih failed (%d)", rc);
		return false;
	}
	if (!end_section(p) || !check_score_keys(p))
		return false;
	for (size_t i = 0; i < p->cfg->ninstances; i++) {
		if (!p->cfg->instances[i].on_error_set)
			p->cfg->instances[i].on_error = p->cfg->on_error;
		if (p->cfg->instances[i].slow_ms < 0)
			p->cfg->instances[i].slow_ms = p->cfg->slow_ms;
	}
	return true;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	struct parser p;
	bool ok;

	memset(&p, 0, sizeof p);
	p.err = err;
	p.errlen = errlen;
	p.cfg = config_new(path);
	if (p.cfg == NULL) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	p.fp = fopen(path, "r");
	if (p.fp == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path,
		    strerror(errno));
		config_free(p.cfg);
		return NULL;
	}
	ok = parse(&p);
	fclose(p.fp);
	free(p.buf);
	free(p.key);
	free_names(&p.names);
	if (!ok) {
		config_free(p.cfg);
		return NULL;
	}
	return p.cfg;
}

static void
instance_free(struct config_instance *inst)
{
	for (size_t i = 0; i < inst->nsettings; i++) {
		free(inst->settings[i].key);
		free(inst->settings[i].value);
	}
	free(inst->settings);
	for (size_t i = 0; i < inst->nconds; i++) {
		free(inst->conds[i].key);
		free(inst->conds[i].value);
	}
	free(inst->conds);
	cond_release(inst->cond);
	free(inst->name);
	free(inst->module);
}

void
config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	for (size_t i = 0; i < cfg->ninstances; i++)
		instance_free(&cfg->instances[i]);
	free(cfg->instances);
	free(cfg->file);
	free(cfg->socket);
	free(cfg->plugin_dir);
	free(cfg->user);
	free(cfg->group);
	free(cfg->pidfile);
	score_policy_free(&cfg->score);
	free(cfg->metrics_listen);
	free(cfg);
}

static const char *const on_error_names[] = {
	[ON_ERROR_TEMPFAIL] = "tempfail",
	[ON_ERROR_CONTINUE] = "continue",
	[ON_ERROR_ACCEPT] = "accept",
	[ON_ERROR_REJECT] = "reject",
};

int
config_parse_on_error(const char *value, enum on_error *out)
{
	for (size_t i = 0; i < NELEM(on_error_names); i++) {
		if (strcasecmp(value, on_error_names[i]) == 0) {
			*out = (enum on_error)i;
			return 0;
		}
	}
	return -1;
}

const char *
config_on_error_name(enum on_error e)
{
	if ((size_t)e >= NELEM(on_error_names))
		return "unknown";
	return on_error_names[e];
}

char *
config_plugin_dir(const struct config *cfg)
{
	const char *slash;
	size_t dirlen;
	char *path;

	if (cfg->plugin_dir[0] == '/' || cfg->file == NULL)
		return strdup(cfg->plugin_dir);
	slash = strrchr(cfg->file, '/');
	if (slash == NULL)
		dirlen = 1;             /* "." */
	else if (slash == cfg->file)
		dirlen = 0;             /* "/x.ini": joined below as "/dir" */
	else
		dirlen = (size_t)(slash - cfg->file);
	path = malloc(dirlen + 1 + strlen(cfg->plugin_dir) + 1);
	if (path == NULL)
		return NULL;
	if (slash == NULL)
		memcpy(path, ".", 1);
	else
		memcpy(path, cfg->file, dirlen);
	path[dirlen] = '/';
	strcpy(path + dirlen + 1, cfg->plugin_dir);
	return path;
}

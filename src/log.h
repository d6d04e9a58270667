/*
 * log - the host's log: stderr in the foreground, syslog otherwise.
 *
 * Every line is written with one write() or syslog() call, so lines of
 * concurrent sessions never interleave.  Messages below the configured
 * level are dropped before they are formatted.
 *
 * One message is one line whatever it contains: control characters are
 * escaped (CR as \r, LF as \n, tab as \t, other bytes below 0x20 and DEL
 * as \xHH), so that text from the network or from plugins cannot split a
 * line or forge one.  A line longer than LOG_LINE_MAX bytes is cut at a
 * whole character and ends with "...".
 */
#ifndef MILTERHOST_LOG_H
#define MILTERHOST_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

/* The longest line written, without its newline. */
#define LOG_LINE_MAX 2048

/* Log to stderr (use_stderr) or to syslog with the given facility.
 * Before log_open is called, lines go to stderr at level LOG_INFO. */
void log_open(bool use_stderr, int facility, int level);
void log_set_level(int level);
bool log_enabled(int level);
void log_msg(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap);
/* The same with prefix (taken literally, escaped too) before the text. */
void log_vmsg_prefixed(int level, const char *prefix, const char *fmt,
		       va_list ap);

/* Parse a level name (err or error, warning or warn, notice, info,
 * debug); -1 if none. */
int log_parse_level(const char *name);
/* Parse a syslog facility name (mail, daemon, user, local0..local7); -1
 * if none. */
int log_parse_facility(const char *name);

#endif /* MILTERHOST_LOG_H */

/*
 * syslog_file.c - an LD_PRELOAD library for the tests: syslog(3) written
 * to the file named by $SYSLOG_FILE instead of /dev/log.
 *
 * OpenDKIM logs only through syslog(3), and a test machine (a container)
 * often has no syslog daemon, or one whose log a test should not fill.
 * tests/wire/opendkim_lib.sh builds this file with $CC (plain: never with
 * the sanitizers, whose runtime cannot be preloaded into an uninstrumented
 * program) and runs opendkim with it preloaded, so that its log, with
 * LogWhy's account of every sign-or-verify decision, lands in the test's
 * temporary directory.
 *
 * Each call opens the file, writes one line with one write(2) (O_APPEND:
 * lines of several threads do not mix) and closes it.  The line is
 * "HH:MM:SS.mmm IDENT[PID]: PRIORITY: MESSAGE"; glibc's vsnprintf
 * expands %m as syslog does.
 */
#undef _FORTIFY_SOURCE /* we define syslog() itself */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static char ident[64] = "syslog";

void
openlog(const char *id, int option, int facility)
{
	(void)option;
	(void)facility;
	if (id != NULL)
		snprintf(ident, sizeof(ident), "%s", id);
}

void
closelog(void)
{
}

static const char *
priority_name(int priority)
{
	static const char *const names[] = { "emerg", "alert", "crit", "err",
		"warning", "notice", "info", "debug" };

	return names[LOG_PRI(priority)];
}

void
vsyslog(int priority, const char *format, va_list ap)
{
	int saved = errno, fd;
	const char *path = getenv("SYSLOG_FILE");
	char line[8192];
	struct timespec now;
	struct tm tm;
	size_t n;

	if (path == NULL || *path == '\0')
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	n = (size_t)snprintf(line, sizeof(line),
	    "%02d:%02d:%02d.%03ld %s[%ld]: %s: ", tm.tm_hour, tm.tm_min,
	    tm.tm_sec, now.tv_nsec / 1000000, ident, (long)getpid(),
	    priority_name(priority));
	errno = saved; /* for %m */
	if (n < sizeof(line) - 1)
		vsnprintf(line + n, sizeof(line) - 1 - n, format, ap);
	n = strlen(line);
	line[n++] = '\n';
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, line, n) < 0) {
			/* nowhere to report it */
		}
		close(fd);
	}
	errno = saved;
}

void
syslog(int priority, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	vsyslog(priority, format, ap);
	va_end(ap);
}

/* What programs built with _FORTIFY_SOURCE call (Debian's opendkim). */
void
__vsyslog_chk(int priority, int flag, const char *format, va_list ap)
{
	(void)flag;
	vsyslog(priority, format, ap);
}

void
__syslog_chk(int priority, int flag, const char *format, ...)
{
	va_list ap;

	(void)flag;
	va_start(ap, format);
	vsyslog(priority, format, ap);
	va_end(ap);
}

/*
 * test_log - unit tests of log.c: one message is one line, whatever it
 * contains, on stderr and through syslog.
 *
 * stderr is redirected with dup2 to a temporary file around each message
 * and read back.  The syslog test reopens the log with LOG_PERROR, with
 * which the C library copies every syslog line to stderr as well (it also
 * sends it, at LOG_USER debug level, to the system's log if there is one).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "unit.h"

#include "log.h"

#define PREFIX "milterhost: info: "

/* What one log_msg(LOG_INFO, "%s", text) writes to stderr. */
static const char *
logged(const char *text)
{
	unit_capture_start();
	log_msg(LOG_INFO, "%s", text);
	return unit_capture_end(false);
}

static size_t
count_char(const char *s, char c)
{
	size_t n = 0;

	for (; *s; s++)
		if (*s == c)
			n++;
	return n;
}

static bool
ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);

	return n >= t && strcmp(s + n - t, tail) == 0;
}

static void
expect_line(const char *got, const char *want, int line)
{
	CU_assertImplementation(strcmp(got, want) == 0, (unsigned)line,
	    "logged line differs", __FILE__, "", CU_FALSE);
	if (strcmp(got, want) != 0)
		fprintf(stderr, "\n  got:  \"%s\"\n  want: \"%s\"\n", got, want);
}

#define EXPECT_LINE(got, want) expect_line((got), (want), __LINE__)

/* ---- tests ----------------------------------------------------------------- */

static void
test_control_characters_escaped(void)
{
	EXPECT_LINE(logged("a\nb\rc\td"), PREFIX "a\\nb\\rc\\td\n");
	EXPECT_LINE(logged("\x01\x1b[31m\x1f\x7f."),
	    PREFIX "\\x01\\x1b[31m\\x1f\\x7f.\n");
	EXPECT_LINE(logged("\r\n"), PREFIX "\\r\\n\n");
}

static void
test_printable_text_and_backslash_kept(void)
{
	/* UTF-8 and other bytes from 0x80 up are not control characters. */
	EXPECT_LINE(logged("C:\\dir\\n x=100% caf\xc3\xa9 \xff"),
	    PREFIX "C:\\dir\\n x=100% caf\xc3\xa9 \xff\n");
	unit_capture_start();
	log_msg(LOG_INFO, "%s=%d", "n", 42);
	EXPECT_LINE(unit_capture_end(false), PREFIX "n=42\n");
}

static void
prefixed(const char *prefix, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg_prefixed(LOG_INFO, prefix, fmt, ap);
	va_end(ap);
}

static void
test_prefix_escaped_too(void)
{
	unit_capture_start();
	prefixed("Q1\n: [tag] ", "text %s", "a\tb");
	EXPECT_LINE(unit_capture_end(false), PREFIX "Q1\\n: [tag] text a\\tb\n");
}

/* A 60 KB header value, folded with LF, is still one line, cut. */
static void
test_long_value_is_one_line_cut(void)
{
	size_t size = 60 * 1024;
	char *value = malloc(size + 1);
	const char *out;

	CU_ASSERT_FATAL(value != NULL);
	for (size_t i = 0; i < size; i++)
		value[i] = i % 76 == 75 ? '\n' : 'v';
	value[size] = '\0';
	unit_capture_start();
	log_msg(LOG_INFO, "header X-Big: %s", value);
	out = unit_capture_end(false);
	CU_ASSERT_EQUAL(count_char(out, '\n'), 1);
	CU_ASSERT(strncmp(out, PREFIX "header X-Big: vvv", 30) == 0);
	CU_ASSERT(ends_with(out, "...\n"));
	/* Cut before an escape that did not fit whole, or right at it. */
	CU_ASSERT(strlen(out) >= LOG_LINE_MAX &&
	    strlen(out) <= LOG_LINE_MAX + 1);
	free(value);
}

static void
test_line_that_fits_is_not_marked(void)
{
	char text[LOG_LINE_MAX + 1];
	size_t fit = LOG_LINE_MAX - 3 - strlen(PREFIX);
	const char *out;

	memset(text, 'a', fit);
	text[fit] = '\0';
	out = logged(text);
	CU_ASSERT_EQUAL(strlen(out), strlen(PREFIX) + fit + 1);
	CU_ASSERT(ends_with(out, "aaa\n"));

	/* One byte more, and it is cut: the marker takes the last bytes. */
	text[fit] = 'b';
	text[fit + 1] = '\0';
	out = logged(text);
	CU_ASSERT_EQUAL(strlen(out), LOG_LINE_MAX + 1);
	CU_ASSERT(ends_with(out, "aaa...\n"));
}

/* The cut falls between escape sequences, never inside one. */
static void
test_cut_keeps_escapes_whole(void)
{
	char text[1200];
	const char *out, *p;

	for (int shift = 0; shift < 4; shift++) {
		size_t n = 0;

		for (int i = 0; i < shift; i++)
			text[n++] = 'a';
		while (n < sizeof text - 1)
			text[n++] = '\x01';
		text[n] = '\0';
		out = logged(text);
		CU_ASSERT(ends_with(out, "\\x01...\n"));
		p = out + strlen(PREFIX) + shift;
		while (strncmp(p, "\\x01", 4) == 0)
			p += 4;
		CU_ASSERT_STRING_EQUAL(p, "...\n");
	}
}

/* The cut falls between UTF-8 characters, never inside one. */
static void
test_cut_keeps_utf8_characters_whole(void)
{
	char text[LOG_LINE_MAX + 8];
	const char *out;

	for (int shift = 0; shift < 3; shift++) {
		size_t n = 0;

		for (int i = 0; i < shift; i++)
			text[n++] = 'a';
		/* U+20AC, three bytes. */
		while (n + 3 < sizeof text) {
			memcpy(text + n, "\xe2\x82\xac", 3);
			n += 3;
		}
		text[n] = '\0';
		out = logged(text);
		CU_ASSERT(ends_with(out, "\xe2\x82\xac...\n"));
		CU_ASSERT((strlen(out) - strlen(PREFIX) - shift - 4) % 3 == 0);
	}
}

static void
test_level_filter(void)
{
	log_set_level(LOG_NOTICE);
	unit_capture_start();
	log_msg(LOG_INFO, "dropped");
	log_msg(LOG_NOTICE, "kept\n");
	log_set_level(LOG_DEBUG);
	EXPECT_LINE(unit_capture_end(false), "milterhost: notice: kept\\n\n");
}

/* syslog gets the same escaped line (copied to stderr by LOG_PERROR). */
static void
test_syslog_line_escaped(void)
{
	const char *out;

	log_open(false, LOG_USER, LOG_DEBUG);
	openlog("milterhost-test_log", LOG_PERROR, LOG_USER);
	unit_capture_start();
	log_msg(LOG_DEBUG, "to syslog: a\nb\x01");
	out = unit_capture_end(false);
	closelog();
	log_open(true, LOG_USER, LOG_DEBUG);
	CU_ASSERT_EQUAL(count_char(out, '\n'), 1);
	CU_ASSERT(ends_with(out, "to syslog: a\\nb\\x01\n"));
	if (!ends_with(out, "to syslog: a\\nb\\x01\n"))
		fprintf(stderr, "\n  got: \"%s\"\n", out);
}

/* ---- main ------------------------------------------------------------------ */

static const struct unit_test tests[] = {
	TEST(test_control_characters_escaped),
	TEST(test_printable_text_and_backslash_kept),
	TEST(test_prefix_escaped_too),
	TEST(test_long_value_is_one_line_cut),
	TEST(test_line_that_fits_is_not_marked),
	TEST(test_cut_keeps_escapes_whole),
	TEST(test_cut_keeps_utf8_characters_whole),
	TEST(test_level_filter),
	TEST(test_syslog_line_escaped),
	TEST_END,
};

int
main(void)
{
	static const struct unit_suite suites[] = {
		{ "log", NULL, NULL, tests },
		{ NULL, NULL, NULL, NULL },
	};

	log_open(true, LOG_USER, LOG_DEBUG);
	return unit_run(suites);
}

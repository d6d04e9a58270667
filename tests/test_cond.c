/*
 * test_cond - unit tests of the instance conditions (cond.c): how each
 * if_* key is parsed and refused, and what it matches.  When the chain
 * decides them, and what an instance then sees, is test_chain's.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "unit.h"

#include "cond.h"
#include "config.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static char err[1024];

/* Compile "key = value" pairs (NULL-terminated, lines from 10 on). */
static struct cond *
compile(const char *key, ...)
{
	struct config_setting set[8];
	struct cond *c = NULL;
	size_t n = 0;
	va_list ap;

	va_start(ap, key);
	for (const char *k = key; k != NULL && n < NELEM(set);
	     k = va_arg(ap, const char *)) {
		set[n].key = (char *)k;
		set[n].value = va_arg(ap, char *);
		set[n].line = 10 + (int)n;
		set[n].continuation = false;
		n++;
	}
	va_end(ap);
	err[0] = '\0';
	if (cond_compile(set, n, "mh.ini", "plugin:p", &c, err,
	    sizeof err) < 0)
		return NULL;
	return c;
}

/* The one key must be refused with a message holding each needle. */
static void
refused(int line, const char *key, const char *value, const char *needle)
{
	struct cond *c = compile(key, value, NULL);
	char want[128];

	CU_ASSERT_PTR_NULL(c);
	cond_release(c);
	snprintf(want, sizeof want, "mh.ini:10: [plugin:p] key '%s': ", key);
	if (strncmp(err, want, strlen(want)) != 0 ||
	    strstr(err, needle) == NULL) {
		fprintf(stderr, "\n  line %d: error was: %s\n  wanted: %s...%s\n",
		    line, err, want, needle);
		CU_FAIL("refusal");
	}
}

#define REFUSED(key, value, needle) refused(__LINE__, key, value, needle)

/* Macros for the checks: a table the test sets. */
static const char *const *macro_table;

static const char *
macro(void *arg, const char *name)
{
	for (const char *const *m = macro_table; m && *m; m += 2)
		if (strcmp(m[0], name) == 0)
			return m[1];
	return NULL;
}

/* Does c hold for a client at addr (known from connect)? */
static bool
client_holds(const struct cond *c, const char *addr)
{
	struct cond_data d = { .macro = macro, .client_addr = addr,
	    .client_known = true };
	const char *failed = NULL;

	return cond_connection_holds(c, &d, &failed);
}

static void
test_client_networks(void)
{
	struct cond *c = compile("if_client",
	    "192.0.2.0/24, 2001:db8::/32 !192.0.2.7 10.1.2.3", NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(cond_has_connection(c));
	CU_ASSERT_FALSE(cond_has_message(c));
	CU_ASSERT_FALSE(cond_has_rcpt(c));
	CU_ASSERT_STRING_EQUAL(cond_macros(c), "{client_addr}");
	CU_ASSERT_TRUE(client_holds(c, "192.0.2.1"));
	CU_ASSERT_TRUE(client_holds(c, "192.0.2.255"));
	CU_ASSERT_FALSE(client_holds(c, "192.0.2.7"));
	CU_ASSERT_FALSE(client_holds(c, "192.0.3.1"));
	CU_ASSERT_TRUE(client_holds(c, "10.1.2.3"));
	CU_ASSERT_FALSE(client_holds(c, "10.1.2.4"));
	CU_ASSERT_TRUE(client_holds(c, "2001:db8:1::5"));
	CU_ASSERT_FALSE(client_holds(c, "2001:db9::1"));
	/* An IPv4 client seen through an IPv6 socket. */
	CU_ASSERT_TRUE(client_holds(c, "::ffff:192.0.2.9"));
	CU_ASSERT_FALSE(client_holds(c, "::ffff:192.0.2.7"));
	/* No address (a unix-socket or local client) is not in a network. */
	CU_ASSERT_FALSE(client_holds(c, ""));
	CU_ASSERT_FALSE(client_holds(c, "/var/run/socket"));
	cond_release(c);

	/* Odd prefix lengths. */
	c = compile("if_client", "198.51.100.64/26 2001:db8:ff80::/41", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(client_holds(c, "198.51.100.127"));
	CU_ASSERT_FALSE(client_holds(c, "198.51.100.128"));
	CU_ASSERT_FALSE(client_holds(c, "198.51.100.63"));
	CU_ASSERT_TRUE(client_holds(c, "2001:db8:ffff::1"));
	CU_ASSERT_FALSE(client_holds(c, "2001:db8:ff7f::1"));
	cond_release(c);
}

static void
test_client_exclusions_and_unknown(void)
{
	/* Only exclusions: everything else holds. */
	struct cond *c = compile("if_client", "!127.0.0.0/8 !::1", NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(client_holds(c, "127.0.0.1"));
	CU_ASSERT_FALSE(client_holds(c, "::1"));
	CU_ASSERT_TRUE(client_holds(c, "192.0.2.1"));
	CU_ASSERT_TRUE(client_holds(c, ""));
	cond_release(c);

	c = compile("if_client", "unknown", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(client_holds(c, ""));
	CU_ASSERT_TRUE(client_holds(c, "/run/client.sock"));
	CU_ASSERT_FALSE(client_holds(c, "192.0.2.1"));
	cond_release(c);

	c = compile("if_client", "!unknown", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(client_holds(c, ""));
	CU_ASSERT_TRUE(client_holds(c, "192.0.2.1"));
	cond_release(c);
}

/* Without connect, the address comes from the macro {client_addr}; not
 * sent, the client is unknown and the missing macro is reported. */
static void
test_client_from_macro(void)
{
	static const char *const with[] = { "{client_addr}", "192.0.2.5",
	    NULL };
	struct cond *c = compile("if_client", "192.0.2.0/24", NULL);
	struct cond_data d = { .macro = macro };
	const char *failed = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	macro_table = with;
	CU_ASSERT_TRUE(cond_connection_holds(c, &d, &failed));
	CU_ASSERT_PTR_NULL(d.missing);
	macro_table = NULL;
	CU_ASSERT_FALSE(cond_connection_holds(c, &d, &failed));
	CU_ASSERT_STRING_EQUAL(failed, "if_client");
	CU_ASSERT_STRING_EQUAL(d.missing, "{client_addr}");
	cond_release(c);
}

static void
test_daemon_names(void)
{
	static const char *const submission[] = { "{daemon_name}",
	    "submission", NULL };
	static const char *const smtpd[] = { "{daemon_name}", "smtpd", NULL };
	struct cond *c = compile("if_daemon", "submission submissions", NULL);
	struct cond_data d = { .macro = macro };
	const char *failed = NULL;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(cond_macros(c), "{daemon_name}");
	macro_table = submission;
	CU_ASSERT_TRUE(cond_connection_holds(c, &d, &failed));
	macro_table = smtpd;
	CU_ASSERT_FALSE(cond_connection_holds(c, &d, &failed));
	CU_ASSERT_STRING_EQUAL(failed, "if_daemon");
	cond_release(c);

	c = compile("if_daemon", "!submission", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	macro_table = smtpd;
	CU_ASSERT_TRUE(cond_connection_holds(c, &d, &failed));
	macro_table = submission;
	CU_ASSERT_FALSE(cond_connection_holds(c, &d, &failed));
	cond_release(c);
	macro_table = NULL;
}

static bool
message_holds(const struct cond *c, const char *const *macros,
    const char *sender)
{
	struct cond_data d = { .macro = macro, .sender = sender };
	const char *failed = NULL;

	macro_table = macros;
	return cond_message_holds(c, &d, &failed);
}

static void
test_auth(void)
{
	static const char *const authed[] = { "{auth_authen}", "alice",
	    NULL };
	static const char *const empty[] = { "{auth_authen}", "", NULL };
	struct cond *yes = compile("if_auth", "yes", NULL);
	struct cond *no = compile("if_auth", "no", NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(yes);
	CU_ASSERT_PTR_NOT_NULL_FATAL(no);
	CU_ASSERT_TRUE(cond_has_message(yes));
	CU_ASSERT_FALSE(cond_has_connection(yes));
	CU_ASSERT_TRUE(message_holds(yes, authed, NULL));
	CU_ASSERT_FALSE(message_holds(yes, empty, NULL));
	CU_ASSERT_FALSE(message_holds(yes, NULL, NULL));
	CU_ASSERT_FALSE(message_holds(no, authed, NULL));
	CU_ASSERT_TRUE(message_holds(no, empty, NULL));
	/* Postfix sends {auth_authen} only for authenticated clients. */
	CU_ASSERT_TRUE(message_holds(no, NULL, NULL));
	cond_release(yes);
	cond_release(no);
}

static void
test_sender_and_rcpt_patterns(void)
{
	static const char *const mail_addr[] = { "{mail_addr}",
	    "bob@Example.ORG", NULL };
	struct cond *c = compile("if_sender", "@example\\.org$",
	    "if_rcpt", "^(postmaster|abuse)@", NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(cond_has_message(c));
	CU_ASSERT_TRUE(cond_has_rcpt(c));
	CU_ASSERT_STRING_EQUAL(cond_macros(c), "{mail_addr}");
	/* Without angle brackets, case-insensitive. */
	CU_ASSERT_TRUE(message_holds(c, NULL, "<alice@EXAMPLE.org>"));
	CU_ASSERT_FALSE(message_holds(c, NULL, "<alice@example.org.evil>"));
	CU_ASSERT_FALSE(message_holds(c, NULL, "<>"));
	/* From the macro when MAIL FROM was not seen. */
	CU_ASSERT_TRUE(message_holds(c, mail_addr, NULL));
	CU_ASSERT_FALSE(message_holds(c, NULL, NULL));
	CU_ASSERT_TRUE(cond_rcpt_matches(c, "<Abuse@example.net>"));
	CU_ASSERT_TRUE(cond_rcpt_matches(c, "postmaster@example.net"));
	CU_ASSERT_FALSE(cond_rcpt_matches(c, "<user@example.net>"));
	CU_ASSERT_FALSE(cond_rcpt_matches(c, NULL));
	cond_release(c);
	/* '!': holds when the pattern does not match. */
	c = compile("if_rcpt", "!^(postmaster|abuse)@", "if_sender",
	    "!^$", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(cond_rcpt_matches(c, "<abuse@example.net>"));
	CU_ASSERT_TRUE(cond_rcpt_matches(c, "<user@example.net>"));
	CU_ASSERT_FALSE(message_holds(c, NULL, "<>"));
	CU_ASSERT_TRUE(message_holds(c, NULL, "<a@example.net>"));
	cond_release(c);
	macro_table = NULL;
}

static void
test_macros_all_must_match(void)
{
	static const char *const both[] = { "{tls_version}", "TLSv1.3",
	    "j", "mx.example.org", NULL };
	static const char *const old_tls[] = { "{tls_version}", "TLSv1.2",
	    "j", "mx.example.org", NULL };
	static const char *const no_tls[] = { "j", "mx.example.org", NULL };
	struct cond *c = compile("if_macro", "{tls_version} ^TLSv1\\.3$",
	    "if_macro", "j mx\\.", NULL);

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(cond_macros(c), "{tls_version} j");
	CU_ASSERT_TRUE(message_holds(c, both, NULL));
	CU_ASSERT_FALSE(message_holds(c, old_tls, NULL));
	CU_ASSERT_FALSE(message_holds(c, no_tls, NULL));
	cond_release(c);
	/* The name with or without braces. */
	c = compile("if_macro", "auth_type ^PLAIN$", NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(cond_macros(c), "{auth_type}");
	cond_release(c);
	macro_table = NULL;
}

static void
test_no_conditions(void)
{
	struct cond *c = compile(NULL);
	struct cond_data d = { 0 };
	const char *failed = NULL;

	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_STRING_EQUAL(err, "");
	CU_ASSERT_TRUE(cond_connection_holds(NULL, &d, &failed));
	CU_ASSERT_TRUE(cond_message_holds(NULL, &d, &failed));
	CU_ASSERT_TRUE(cond_rcpt_matches(NULL, "<a@b>"));
	CU_ASSERT_STRING_EQUAL(cond_macros(NULL), "");
}

static void
test_bad_values_are_refused(void)
{
	REFUSED("if_client", "192.0.2.0/33", "prefix length must be 0 to 32");
	REFUSED("if_client", "2001:db8::/129", "0 to 128");
	REFUSED("if_client", "192.0.2.0/", "prefix length");
	REFUSED("if_client", "example.org", "'example.org' is not an IPv4");
	REFUSED("if_client", "192.0.2.300", "is not an IPv4");
	REFUSED("if_client", ",", "no network given");
	REFUSED("if_daemon", "!", "'!' without a service name");
	REFUSED("if_auth", "maybe", "expected yes");
	REFUSED("if_sender", "(unclosed", "bad regular expression at offset "
	    "9: missing closing parenthesis: (unclosed");
	REFUSED("if_rcpt", "a[b", "at offset 3: missing terminating ]");
	REFUSED("if_rcpt", "", "needs a value");
	REFUSED("if_rcpt", "!", "empty regular expression");
	REFUSED("if_macro", "{daemon_name}", "expected a macro name and a "
	    "regular expression");
	REFUSED("if_macro", "{bad name} x", "bad macro name");
	REFUSED("if_macro", "j *", "bad regular expression at offset 0");
}

static void
test_keys_given_twice(void)
{
	struct cond *c = compile("if_sender", "a", "if_sender", "b", NULL);

	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "mh.ini:11: [plugin:p] key "
	    "'if_sender': given twice (first on line 10)"));
	/* if_macro may be: all must hold. */
	c = compile("if_macro", "j x", "if_macro", "i y", NULL);
	CU_ASSERT_PTR_NOT_NULL(c);
	cond_release(c);
	CU_ASSERT_TRUE(cond_is_key("if_client"));
	CU_ASSERT_FALSE(cond_is_key("if_clients"));
	CU_ASSERT_FALSE(cond_is_key("module"));
}

static const struct unit_test tests[] = {
	TEST(test_client_networks),
	TEST(test_client_exclusions_and_unknown),
	TEST(test_client_from_macro),
	TEST(test_daemon_names),
	TEST(test_auth),
	TEST(test_sender_and_rcpt_patterns),
	TEST(test_macros_all_must_match),
	TEST(test_no_conditions),
	TEST(test_bad_values_are_refused),
	TEST(test_keys_given_twice),
	TEST_END,
};

int
main(void)
{
	static const struct unit_suite suites[] = {
		{ "cond", NULL, NULL, tests },
		{ NULL, NULL, NULL, NULL },
	};

	return unit_run(suites);
}

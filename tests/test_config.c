/*
 * test_config - unit tests of config.c, the ini file reader.
 *
 * Each test writes its ini text to a file in a fresh temporary directory,
 * loads it with config_load() and checks the result, or checks that the
 * load failed with an error naming the right file, line and key.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "unit.h"

#include "config.h"
#include "paths.h" /* PLUGIN_DIR, the default plugin_dir */

/* libinih's buffer is 200 bytes: 198 of text, a newline and a NUL. */
#define MAX_LINE 198

static char tmpdir[PATH_MAX];
static char ini_path[PATH_MAX + 16];
static char err[1024];

/* ---- helpers ---------------------------------------------------------- */

static int
suite_init(void)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s/test_config.XXXXXX",
	    base) >= sizeof tmpdir) {
		fprintf(stderr, "TMPDIR is too long\n");
		return -1;
	}
	if (mkdtemp(tmpdir) == NULL) {
		perror(tmpdir);
		return -1;
	}
	snprintf(ini_path, sizeof ini_path, "%s/test.ini", tmpdir);
	return 0;
}

static int
suite_cleanup(void)
{
	unlink(ini_path);
	return rmdir(tmpdir) == 0 ? 0 : -1;
}

/* Write len bytes of text as the test's ini file. */
static void
write_ini_bytes(const char *text, size_t len)
{
	FILE *fp = fopen(ini_path, "w");

	CU_ASSERT_FATAL(fp != NULL);
	CU_ASSERT_FATAL(fwrite(text, 1, len, fp) == len);
	CU_ASSERT_FATAL(fclose(fp) == 0);
}

static struct config *
load_bytes(const char *text, size_t len)
{
	struct config *cfg;

	write_ini_bytes(text, len);
	err[0] = '\0';
	cfg = config_load(ini_path, err, sizeof err);
	if (cfg == NULL)
		fprintf(stderr, "\n  unexpected error: %s\n", err);
	return cfg;
}

/* Load text, which must be valid. */
static struct config *
load(const char *text)
{
	return load_bytes(text, strlen(text));
}

/*
 * Check that text fails to load with an error "INI:LINE: ..." that
 * contains each of the NULL-terminated needles.
 */
static void
check_error_bytes(const char *text, size_t len, int line, ...)
{
	struct config *cfg;
	char prefix[PATH_MAX + 32];
	const char *needle;
	va_list ap;
	bool ok;

	write_ini_bytes(text, len);
	snprintf(err, sizeof err, "(untouched)");
	cfg = config_load(ini_path, err, sizeof err);
	CU_ASSERT_PTR_NULL(cfg);
	config_free(cfg);
	snprintf(prefix, sizeof prefix, "%s:%d: ", ini_path, line);
	ok = strncmp(err, prefix, strlen(prefix)) == 0;
	va_start(ap, line);
	while ((needle = va_arg(ap, const char *)) != NULL)
		ok = ok && strstr(err, needle) != NULL;
	va_end(ap);
	if (!ok)
		fprintf(stderr, "\n  error was: %s\n  expected line %d\n", err,
		    line);
	CU_ASSERT(ok);
}

#define check_error(text, line, ...) \
	check_error_bytes((text), strlen(text), (line), __VA_ARGS__, NULL)

static const struct config_setting *
setting(const struct config_instance *inst, size_t i)
{
	CU_ASSERT_FATAL(i < inst->nsettings);
	return &inst->settings[i];
}

/* ---- defaults and host keys ------------------------------------------- */

static void
check_defaults(const struct config *cfg)
{
	CU_ASSERT_STRING_EQUAL(cfg->socket, "inet:8891@127.0.0.1");
	CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, PLUGIN_DIR);
	CU_ASSERT_EQUAL(cfg->timeout, 7210);
	CU_ASSERT_EQUAL(cfg->stop_timeout, 30);
	CU_ASSERT_TRUE(cfg->strict_modes);
	CU_ASSERT_EQUAL(cfg->backlog, 0);
	CU_ASSERT_PTR_NULL(cfg->user);
	CU_ASSERT_PTR_NULL(cfg->group);
	CU_ASSERT_EQUAL(cfg->socket_mode, -1);
	CU_ASSERT_PTR_NULL(cfg->pidfile);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_INFO);
	CU_ASSERT_EQUAL(cfg->log_facility, LOG_MAIL);
	CU_ASSERT_EQUAL(cfg->log_destination, LOG_DEST_AUTO);
	CU_ASSERT_EQUAL(cfg->on_error, ON_ERROR_TEMPFAIL);
	CU_ASSERT_FALSE(cfg->autoload);
	CU_ASSERT_EQUAL(cfg->autoload_line, 0);
}

static void
test_empty_file_gives_defaults_and_no_instances(void)
{
	struct config *cfg = load("");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	check_defaults(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->file, ini_path);
	CU_ASSERT_EQUAL(cfg->ninstances, 0);
	config_free(cfg);
}

static void
test_defaults_when_milterhost_section_is_absent(void)
{
	struct config *cfg = load("; no [milterhost] here\n"
	    "[plugin:a]\nmodule = a.so\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	check_defaults(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 1);
	CU_ASSERT_EQUAL(cfg->instances[0].on_error, ON_ERROR_TEMPFAIL);
	config_free(cfg);
}

static void
test_empty_milterhost_section_gives_defaults(void)
{
	struct config *cfg = load("[milterhost]\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	check_defaults(cfg);
	config_free(cfg);
}

static void
test_every_host_key_is_parsed(void)
{
	struct config *cfg = load("[milterhost]\n"
	    "socket = unix:/run/milterhost/milter.sock\n"
	    "plugin_dir = /opt/mh/plugins\n"
	    "timeout = 30\n"
	    "stop_timeout = 0\n"
	    "backlog = 64\n"
	    "user = milter\n"
	    "group = postfix\n"
	    "socket_mode = 0660\n"
	    "pidfile = /run/milterhost.pid\n"
	    "log_level = debug\n"
	    "log_facility = local3\n"
	    "log_destination = stderr\n"
	    "on_error = accept\n"
	    "autoload = yes\n"
	    "strict_modes = no\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->socket, "unix:/run/milterhost/milter.sock");
	CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "/opt/mh/plugins");
	CU_ASSERT_EQUAL(cfg->timeout, 30);
	CU_ASSERT_EQUAL(cfg->stop_timeout, 0);
	CU_ASSERT_FALSE(cfg->strict_modes);
	CU_ASSERT_EQUAL(cfg->backlog, 64);
	CU_ASSERT_STRING_EQUAL(cfg->user, "milter");
	CU_ASSERT_STRING_EQUAL(cfg->group, "postfix");
	CU_ASSERT_EQUAL(cfg->socket_mode, 0660);
	CU_ASSERT_STRING_EQUAL(cfg->pidfile, "/run/milterhost.pid");
	CU_ASSERT_EQUAL(cfg->log_level, LOG_DEBUG);
	CU_ASSERT_EQUAL(cfg->log_facility, LOG_LOCAL3);
	CU_ASSERT_EQUAL(cfg->log_destination, LOG_DEST_STDERR);
	CU_ASSERT_EQUAL(cfg->on_error, ON_ERROR_ACCEPT);
	CU_ASSERT_TRUE(cfg->autoload);
	CU_ASSERT_EQUAL(cfg->autoload_line, 15); /* for the loader's errors */
	CU_ASSERT_EQUAL(cfg->ninstances, 0);
	config_free(cfg);
}

static void
test_every_socket_form_is_accepted(void)
{
	static const char *const good[] = {
		"inet:8891@127.0.0.1", "inet:8891", "inet:1@localhost",
		"inet:65535@0.0.0.0", "inet6:8891@::1", "inet6:8891",
		"unix:/run/mh.sock", "local:/var/spool/postfix/mh",
	};
	char text[256];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		struct config *cfg;

		snprintf(text, sizeof text, "[milterhost]\nsocket = %s\n",
		    good[i]);
		cfg = load(text);
		CU_ASSERT_PTR_NOT_NULL(cfg);
		if (cfg != NULL)
			CU_ASSERT_STRING_EQUAL(cfg->socket, good[i]);
		config_free(cfg);
	}
}

static void
test_bad_socket_is_an_error_naming_key_and_value(void)
{
	static const char *const bad[] = {
		"inet:0@127.0.0.1", "inet:65536@127.0.0.1", "inet:99999",
		"inet:@127.0.0.1", "inet:8891@", "inet:smtp@127.0.0.1",
		"inet:-1", "inet:+25", "inet6:0@::1", "unix:run/mh.sock",
		"unix:", "local:mh", "/run/mh.sock", "tcp:25@127.0.0.1",
		"inet:25@host@x", "inet",
	};
	char text[256], quoted[64];

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(text, sizeof text, "[milterhost]\nsocket = %s\n",
		    bad[i]);
		snprintf(quoted, sizeof quoted, "'%s'", bad[i]);
		check_error(text, 2, "'socket'", quoted, "inet:PORT@HOST");
	}
}

static void
test_boolean_spellings_are_accepted(void)
{
	static const struct {
		const char *word;
		bool value;
	} words[] = {
		{ "yes", true }, { "true", true }, { "on", true },
		{ "1", true }, { "YES", true }, { "no", false },
		{ "false", false }, { "off", false }, { "0", false },
		{ "Off", false },
	};
	char text[256];

	for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
		struct config *cfg;

		snprintf(text, sizeof text, "[milterhost]\nautoload = %s\n"
		    "[plugin:p]\nmodule = p.so\nenabled = %s\ndry_run = %s\n",
		    words[i].word, words[i].word, words[i].word);
		cfg = load(text);
		CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
		CU_ASSERT_EQUAL(cfg->autoload, words[i].value);
		CU_ASSERT_EQUAL(cfg->instances[0].enabled, words[i].value);
		CU_ASSERT_EQUAL(cfg->instances[0].dry_run, words[i].value);
		config_free(cfg);
	}
}

static void
test_bad_boolean_is_an_error(void)
{
	check_error("[milterhost]\nautoload = maybe\n", 2, "'autoload'",
	    "'maybe'", "yes, no");
	check_error("[plugin:p]\nmodule = p.so\nenabled = 2\n", 3,
	    "'enabled'", "'2'", "yes, no");
	check_error("[plugin:p]\nmodule = p.so\ndry_run = yess\n", 3,
	    "'dry_run'", "'yess'", "yes, no");
}

static void
test_stop_timeout_must_be_a_number_of_seconds(void)
{
	check_error("[milterhost]\nstop_timeout = -1\n", 2, "'stop_timeout'",
	    "'-1'", "seconds");
	check_error("[milterhost]\nstop_timeout = 30s\n", 2,
	    "'stop_timeout'", "'30s'");
}

static void
test_timeout_must_be_a_positive_integer(void)
{
	check_error("[milterhost]\ntimeout = 0\n", 2, "'timeout'", "'0'",
	    "positive");
	check_error("[milterhost]\ntimeout = -5\n", 2, "'timeout'", "'-5'");
	check_error("[milterhost]\ntimeout = 10s\n", 2, "'timeout'",
	    "'10s'");
	check_error("[milterhost]\ntimeout = 99999999999\n", 2, "'timeout'",
	    "'99999999999'");
}

static void
test_backlog_zero_means_libmilter_default(void)
{
	struct config *cfg = load("[milterhost]\nbacklog = 0\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->backlog, 0);
	config_free(cfg);
	check_error("[milterhost]\nbacklog = -1\n", 2, "'backlog'", "'-1'");
	check_error("[milterhost]\nbacklog = many\n", 2, "'backlog'",
	    "'many'");
}

static void
test_socket_mode_is_octal_up_to_0777(void)
{
	struct config *cfg = load("[milterhost]\nsocket_mode = 0777\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->socket_mode, 0777);
	config_free(cfg);
	cfg = load("[milterhost]\nsocket_mode = 600\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->socket_mode, 0600);
	config_free(cfg);
	check_error("[milterhost]\nsocket_mode = 0778\n", 2, "'socket_mode'",
	    "'0778'", "octal");
	check_error("[milterhost]\nsocket_mode = 01000\n", 2,
	    "'socket_mode'", "'01000'");
	check_error("[milterhost]\nsocket_mode = rw\n", 2, "'socket_mode'",
	    "'rw'");
}

static void
test_score_keys(void)
{
	struct config *cfg = load("[milterhost]\nscore_reject = 10\n"
	    "score_reject_reply = 550 5.7.1 Looks like spam, 100%\n"
	    "score_tempfail = 5.5\nscore_tempfail_reply = 451 try later\n"
	    "score_header = X-Milterhost-Score\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_TRUE(cfg->score.reject_set);
	CU_ASSERT_DOUBLE_EQUAL(cfg->score.reject, 10, 1e-9);
	CU_ASSERT_STRING_EQUAL(cfg->score.reject_reply.rcode, "550");
	CU_ASSERT_STRING_EQUAL(cfg->score.reject_reply.xcode, "5.7.1");
	/* Stored as libmilter wants it: '%' doubled. */
	CU_ASSERT_STRING_EQUAL(cfg->score.reject_reply.lines[0],
	    "Looks like spam, 100%%");
	CU_ASSERT_TRUE(cfg->score.tempfail_set);
	CU_ASSERT_DOUBLE_EQUAL(cfg->score.tempfail, 5.5, 1e-9);
	CU_ASSERT_STRING_EQUAL(cfg->score.tempfail_reply.xcode, "");
	CU_ASSERT_STRING_EQUAL(cfg->score.tempfail_reply.lines[0],
	    "try later");
	CU_ASSERT_STRING_EQUAL(cfg->score.header, "X-Milterhost-Score");
	config_free(cfg);
	cfg = load("[milterhost]\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_FALSE(cfg->score.reject_set);
	CU_ASSERT_FALSE(cfg->score.tempfail_set);
	CU_ASSERT_PTR_NULL(cfg->score.header);
	config_free(cfg);

	check_error("[milterhost]\nscore_reject = ten\n", 2, "'score_reject'",
	    "'ten'", "a number of points");
	check_error("[milterhost]\nscore_tempfail = nan\n", 2,
	    "'score_tempfail'", "'nan'");
	check_error("[milterhost]\nscore_reject = 10\n"
	    "score_reject_reply = 451 4.7.1 later\n", 3,
	    "'score_reject_reply'", "a 5xx reply");
	check_error("[milterhost]\nscore_tempfail = 1\n"
	    "score_tempfail_reply = 550 no\n", 3, "'score_tempfail_reply'",
	    "a 4xx reply");
	check_error("[milterhost]\nscore_reject = 10\n"
	    "score_reject_reply = 550 4.7.1 class differs\n", 3,
	    "'score_reject_reply'");
	check_error("[milterhost]\nscore_reject = 10\n"
	    "score_reject_reply = spam\n", 3, "'score_reject_reply'");
	check_error("[milterhost]\nscore_header = X Score\n", 2,
	    "'score_header'", "header name");
	check_error("[milterhost]\nscore_header = X-Score:\n", 2,
	    "'score_header'");
	check_error("[milterhost]\n\nscore_reject_reply = 550 spam\n", 3,
	    "'score_reject_reply' without 'score_reject'");
	check_error("[milterhost]\nscore_tempfail_reply = 451 later\n", 2,
	    "'score_tempfail_reply' without 'score_tempfail'");
}

/* The key-value store's keys: defaults, sizes with suffixes, ranges, the
 * Redis forms and kv_password. */
static void
test_kv_keys(void)
{
	struct config *cfg = load("[milterhost]\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->kv.type, KV_MEMORY);
	CU_ASSERT_EQUAL(cfg->kv.timeout_ms, 250);
	CU_ASSERT_EQUAL(cfg->kv.memory_max, (size_t)64 << 20);
	config_free(cfg);
	cfg = load("[milterhost]\nkv = memory\nkv_timeout_ms = 10000\n"
	    "kv_memory_max_bytes = 512M\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->kv.type, KV_MEMORY);
	CU_ASSERT_EQUAL(cfg->kv.timeout_ms, 10000);
	CU_ASSERT_EQUAL(cfg->kv.memory_max, (size_t)512 << 20);
	config_free(cfg);
	cfg = load("[milterhost]\nkv_memory_max_bytes = 8388608\n"
	    "kv_timeout_ms = 1\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->kv.memory_max, 8388608);
	CU_ASSERT_EQUAL(cfg->kv.timeout_ms, 1);
	config_free(cfg);
	cfg = load("[milterhost]\nkv_memory_max_bytes = 2g\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->kv.memory_max, (size_t)2 << 30);
	config_free(cfg);

	cfg = load("[milterhost]\nkv = redis://127.0.0.1:6379/3\n"
	    "kv_password = s3cr#t!\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->kv.type, KV_REDIS_TCP);
	CU_ASSERT_STRING_EQUAL(cfg->kv.host, "127.0.0.1");
	CU_ASSERT_EQUAL(cfg->kv.port, 6379);
	CU_ASSERT_EQUAL(cfg->kv.db, 3);
	CU_ASSERT_STRING_EQUAL(cfg->kv.password, "s3cr#t!");
	config_free(cfg);
	cfg = load("[milterhost]\nkv = unix:/run/redis.sock\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->kv.type, KV_REDIS_UNIX);
	CU_ASSERT_STRING_EQUAL(cfg->kv.path, "/run/redis.sock");
	CU_ASSERT_STRING_EQUAL(cfg->kv.password, "");
	config_free(cfg);
	check_error("[milterhost]\n\nkv_password = a\tb\n", 3,
	    "'kv_password'", "printable ASCII without spaces");
	check_error("[milterhost]\nkv_password =\n", 2, "'kv_password'");
	check_error("[milterhost]\nkv = redis\n", 2, "bad value 'redis' for "
	    "key 'kv'", "memory, redis://HOST:PORT[/DB] or unix:/PATH");
	check_error("[milterhost]\nkv = redis://host\n", 2, "'kv'");
	check_error("[milterhost]\nkv_timeout_ms = 0\n", 2,
	    "'kv_timeout_ms'", "1 to 10000");
	check_error("[milterhost]\nkv_timeout_ms = 10001\n", 2,
	    "'kv_timeout_ms'");
	check_error("[milterhost]\nkv_timeout_ms = 1s\n", 2,
	    "'kv_timeout_ms'");
	check_error("[milterhost]\nkv_memory_max_bytes = 1M\n", 2,
	    "'kv_memory_max_bytes'", "at least 8M");
	check_error("[milterhost]\nkv_memory_max_bytes = 64MB\n", 2,
	    "'kv_memory_max_bytes'");
	check_error("[milterhost]\nkv_memory_max_bytes = M\n", 2,
	    "'kv_memory_max_bytes'");
	check_error("[milterhost]\nkv_memory_max_bytes = "
	    "99999999999999999999\n", 2, "'kv_memory_max_bytes'");
	check_error("[milterhost]\nkv = memory\nkv = memory\n", 3,
	    "'kv' given twice");
}

/* Condition keys are the host's: kept apart from the plugin's settings,
 * compiled when the section ends, refused with file, line and key. */
static void
test_condition_keys(void)
{
	struct config *cfg = load("[plugin:p]\nmodule = p.so\n"
	    "if_client = 192.0.2.0/24\nkey = v\nif_macro = j x\n"
	    "if_macro = i y\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->instances[0].nsettings, 1);
	CU_ASSERT_STRING_EQUAL(setting(&cfg->instances[0], 0)->key, "key");
	CU_ASSERT_EQUAL(cfg->instances[0].nconds, 3);
	CU_ASSERT_EQUAL(cfg->instances[0].conds[2].line, 6);
	CU_ASSERT_PTR_NOT_NULL(cfg->instances[0].cond);
	CU_ASSERT_TRUE(cond_has_connection(cfg->instances[0].cond));
	CU_ASSERT_TRUE(cond_has_message(cfg->instances[0].cond));
	config_free(cfg);
	cfg = load("[plugin:p]\nmodule = p.so\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_PTR_NULL(cfg->instances[0].cond);
	config_free(cfg);

	check_error("[plugin:p]\nmodule = p.so\n\nif_sender = (x\n", 4,
	    "[plugin:p] key 'if_sender': bad regular expression at offset 2",
	    "missing closing parenthesis");
	check_error("[plugin:p]\nmodule = p.so\nif_client = 10.0.0.0/99\n", 3,
	    "[plugin:p] key 'if_client'", "prefix length");
	check_error("[plugin:p]\nmodule = p.so\nif_rcpt = a\nif_rcpt = b\n",
	    4, "key 'if_rcpt': given twice (first on line 3)");
	check_error("[plugin:p]\nmodule = p.so\nif_client = 10.0.0.1\n"
	    "  10.0.0.2\n", 4, "indented line continues key 'if_client'");
	check_error("[milterhost]\nif_client = 10.0.0.1\n", 2,
	    "unknown key 'if_client' in [milterhost]");
}

static void
test_pidfile_must_be_absolute(void)
{
	check_error("[milterhost]\npidfile = run/mh.pid\n", 2, "'pidfile'",
	    "'run/mh.pid'", "absolute");
}

static void
test_log_settings_take_their_names(void)
{
	struct config *cfg = load("[milterhost]\nlog_level = err\n"
	    "log_facility = daemon\nlog_destination = syslog\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_ERR);
	CU_ASSERT_EQUAL(cfg->log_facility, LOG_DAEMON);
	CU_ASSERT_EQUAL(cfg->log_destination, LOG_DEST_SYSLOG);
	config_free(cfg);
	cfg = load("[milterhost]\nlog_level = warning\n"
	    "log_destination = auto\n");
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->log_level, LOG_WARNING);
	CU_ASSERT_EQUAL(cfg->log_destination, LOG_DEST_AUTO);
	config_free(cfg);
}

static void
test_bad_log_settings_are_errors(void)
{
	check_error("[milterhost]\nlog_level = loud\n", 2, "'log_level'",
	    "'loud'", "debug");
	check_error("[milterhost]\nlog_facility = local9\n", 2,
	    "'log_facility'", "'local9'", "local0");
	check_error("[milterhost]\nlog_destination = file\n", 2,
	    "'log_destination'", "'file'", "stderr");
}

static void
test_bad_on_error_is_an_error(void)
{
	check_error("[milterhost]\non_error = ignore\n", 2, "'on_error'",
	    "'ignore'", "tempfail, continue, accept or reject");
	check_error("[plugin:p]\nmodule = p.so\non_error = drop\n", 3,
	    "'on_error'", "'drop'", "tempfail");
}

static void
test_on_error_names_round_trip(void)
{
	static const char *const names[] = {
		"tempfail", "continue", "accept", "reject"
	};
	enum on_error e;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		CU_ASSERT_EQUAL(config_parse_on_error(names[i], &e), 0);
		CU_ASSERT_EQUAL(e, (enum on_error)i);
		CU_ASSERT_STRING_EQUAL(config_on_error_name(e), names[i]);
	}
	e = ON_ERROR_ACCEPT;
	CU_ASSERT_EQUAL(config_parse_on_error("bounce", &e), -1);
	CU_ASSERT_EQUAL(config_parse_on_error("", &e), -1);
	CU_ASSERT_EQUAL(e, ON_ERROR_ACCEPT);
}

static void
test_unknown_host_key_is_an_error(void)
{
	check_error("[milterhost]\nsocket = inet:1\nlisten = inet:25\n", 3,
	    "unknown key 'listen'", "[milterhost]");
}

static void
test_empty_value_is_an_error(void)
{
	check_error("[milterhost]\nuser =\n", 2, "'user'", "needs a value");
	check_error("[milterhost]\nsocket = ; a comment\n", 2, "'socket'",
	    "needs a value");
	check_error("[plugin:p]\nmodule =\n", 2, "'module'",
	    "needs a value");
	check_error("[plugin:p]\nmodule = p.so\nenabled =  \n", 3,
	    "'enabled'", "needs a value");
}

/* ---- sections --------------------------------------------------------- */

static void
test_unknown_section_is_an_error(void)
{
	check_error("[milterhost]\n\n[plugins:a]\nmodule = a.so\n", 3,
	    "unknown section [plugins:a]");
	check_error("[global]\n", 1, "unknown section [global]");
	check_error("[]\n", 1, "unknown section []");
}

static void
test_milterhost_section_given_twice_is_an_error(void)
{
	check_error("[milterhost]\ntimeout = 5\n[plugin:a]\nmodule = a\n"
	    "[milterhost]\nbacklog = 5\n", 5, "[milterhost]", "given twice",
	    "line 1");
}

static void
test_plugin_section_given_twice_is_an_error(void)
{
	check_error("[plugin:a]\nmodule = a\n[plugin:b]\nmodule = b\n"
	    "[plugin:a]\nmodule = c\n", 5, "[plugin:a]", "given twice",
	    "line 1");
}

static void
test_bad_plugin_name_is_an_error(void)
{
	check_error("[plugin:]\nmodule = a\n", 1, "bad plugin name ''");
	check_error("[plugin:a b]\nmodule = a\n", 1, "bad plugin name 'a b'");
	check_error("[plugin:a/b]\nmodule = a\n", 1, "bad plugin name 'a/b'");
	check_error("[plugin:a:b]\nmodule = a\n", 1, "bad plugin name 'a:b'");
}

static void
test_plugin_name_may_use_letters_digits_underscore_dot_dash(void)
{
	struct config *cfg = load("[plugin:Tag_external-2.v1]\nmodule = a\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 1);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].name, "Tag_external-2.v1");
	config_free(cfg);
}

static void
test_long_plugin_name_is_kept_whole(void)
{
	/* libinih itself keeps only 49 bytes of a section name. */
	static const char name[] =
	    "a-plugin-name-that-is-longer-than-fifty-bytes-for-sure-0123";
	char text[256];
	struct config *cfg;

	snprintf(text, sizeof text, "[plugin:%s]\nmodule = a\nkey = v\n",
	    name);
	cfg = load(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 1);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].name, name);
	CU_ASSERT_EQUAL(cfg->instances[0].nsettings, 1);
	config_free(cfg);
}

static void
test_section_header_may_have_blanks_and_a_comment(void)
{
	struct config *cfg = load("  [ milterhost ]   ; the host\n"
	    "timeout = 9\n[plugin:a] ;first\nmodule = a\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->timeout, 9);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 1);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].name, "a");
	config_free(cfg);
}

static void
test_text_after_section_header_is_an_error(void)
{
	check_error("[milterhost] timeout = 5\n", 1, "syntax error",
	    "after ']'");
}

static void
test_section_header_without_bracket_is_a_syntax_error(void)
{
	check_error("[milterhost]\ntimeout = 5\n[plugin:a\nmodule = a\n", 3,
	    "syntax error", "']'");
}

static void
test_key_outside_any_section_is_an_error(void)
{
	check_error("; comment\n\nsocket = inet:25\n[milterhost]\n", 3,
	    "key 'socket'", "outside any section");
}

static void
test_missing_module_reports_the_section_line(void)
{
	/* The section ends at the next header... */
	check_error("[plugin:a]\nmodule = a\n\n[plugin:b]\nkey = v\n\n"
	    "[plugin:c]\nmodule = c\n", 4, "[plugin:b]", "'module'");
	/* ...or at the end of the file. */
	check_error("[milterhost]\n[plugin:last]\nkey = v\n; end\n", 2,
	    "[plugin:last]", "'module'");
	check_error("[plugin:empty]\n", 1, "[plugin:empty]", "'module'");
}

static void
test_module_must_be_a_file_name_or_an_absolute_path(void)
{
	struct config *cfg = load("[plugin:a]\nmodule = /opt/mh/a.so\n"
	    "[plugin:b]\nmodule = b.so\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 2);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].module, "/opt/mh/a.so");
	CU_ASSERT_STRING_EQUAL(cfg->instances[1].module, "b.so");
	config_free(cfg);
	check_error("[plugin:a]\nmodule = sub/a.so\n", 2, "'module'",
	    "'sub/a.so'", "absolute path");
	check_error("[plugin:a]\nmodule = ..\n", 2, "'module'", "'..'");
}

/* ---- plugin instances ------------------------------------------------- */

static void
test_instances_keep_file_order(void)
{
	struct config *cfg = load("[plugin:zeta]\nmodule = z\n"
	    "[milterhost]\ntimeout = 5\n"
	    "[plugin:alpha]\nmodule = a\n"
	    "[plugin:mid]\nmodule = m\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 3);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].name, "zeta");
	CU_ASSERT_STRING_EQUAL(cfg->instances[1].name, "alpha");
	CU_ASSERT_STRING_EQUAL(cfg->instances[2].name, "mid");
	CU_ASSERT_EQUAL(cfg->instances[0].line, 1);
	CU_ASSERT_EQUAL(cfg->instances[1].line, 5);
	CU_ASSERT_EQUAL(cfg->instances[2].line, 7);
	CU_ASSERT_EQUAL(cfg->timeout, 5);
	config_free(cfg);
}

static void
test_one_module_may_have_two_instances(void)
{
	struct config *cfg = load("[plugin:tag-internal]\n"
	    "module = addheader\nheader = X-Internal: yes\n"
	    "[plugin:tag-external]\n"
	    "module = addheader\nheader = X-External: yes\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 2);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].module, "addheader");
	CU_ASSERT_STRING_EQUAL(cfg->instances[1].module, "addheader");
	CU_ASSERT_STRING_EQUAL(setting(&cfg->instances[0], 0)->value,
	    "X-Internal: yes");
	CU_ASSERT_STRING_EQUAL(setting(&cfg->instances[1], 0)->value,
	    "X-External: yes");
	config_free(cfg);
}

static void
test_plugin_host_keys_are_parsed(void)
{
	struct config *cfg = load("[plugin:a]\n; the module\n\n"
	    "module = a.so\nenabled = no\non_error = reject\n"
	    "dry_run = yes\n"
	    "[plugin:b]\nmodule = b.so\n");
	const struct config_instance *a, *b;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 2);
	a = &cfg->instances[0];
	b = &cfg->instances[1];
	CU_ASSERT_STRING_EQUAL(a->module, "a.so");
	CU_ASSERT_EQUAL(a->module_line, 4);
	CU_ASSERT_FALSE(a->enabled);
	CU_ASSERT_EQUAL(a->on_error, ON_ERROR_REJECT);
	CU_ASSERT_TRUE(a->on_error_set);
	CU_ASSERT_TRUE(a->dry_run);
	CU_ASSERT_EQUAL(a->nsettings, 0);
	CU_ASSERT_EQUAL(b->module_line, 9);
	CU_ASSERT_TRUE(b->enabled);
	CU_ASSERT_FALSE(b->on_error_set);
	CU_ASSERT_FALSE(b->dry_run);
	config_free(cfg);
}

static void
test_instance_inherits_host_on_error_wherever_milterhost_is(void)
{
	struct config *cfg = load("[plugin:a]\nmodule = a\n"
	    "[plugin:b]\nmodule = b\non_error = tempfail\n"
	    "[milterhost]\non_error = continue\n"
	    "[plugin:c]\nmodule = c\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->ninstances, 3);
	CU_ASSERT_EQUAL(cfg->on_error, ON_ERROR_CONTINUE);
	CU_ASSERT_EQUAL(cfg->instances[0].on_error, ON_ERROR_CONTINUE);
	CU_ASSERT_FALSE(cfg->instances[0].on_error_set);
	CU_ASSERT_EQUAL(cfg->instances[1].on_error, ON_ERROR_TEMPFAIL);
	CU_ASSERT_TRUE(cfg->instances[1].on_error_set);
	CU_ASSERT_EQUAL(cfg->instances[2].on_error, ON_ERROR_CONTINUE);
	config_free(cfg);
}

static void
test_plugin_settings_keep_order_lines_and_continuations(void)
{
	struct config *cfg = load("[plugin:p]\n"
	    "domain = example.org\n"
	    "module = p.so\n"
	    "; a comment between\n"
	    "list = one\n"
	    "  two\n"
	    "\n"
	    "\tthree\n"
	    "other =\n");
	const struct config_instance *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	p = &cfg->instances[0];
	CU_ASSERT_EQUAL_FATAL(p->nsettings, 5);
	CU_ASSERT_STRING_EQUAL(setting(p, 0)->key, "domain");
	CU_ASSERT_STRING_EQUAL(setting(p, 0)->value, "example.org");
	CU_ASSERT_EQUAL(setting(p, 0)->line, 2);
	CU_ASSERT_FALSE(setting(p, 0)->continuation);
	CU_ASSERT_STRING_EQUAL(setting(p, 1)->key, "list");
	CU_ASSERT_STRING_EQUAL(setting(p, 1)->value, "one");
	CU_ASSERT_EQUAL(setting(p, 1)->line, 5);
	CU_ASSERT_FALSE(setting(p, 1)->continuation);
	CU_ASSERT_STRING_EQUAL(setting(p, 2)->key, "list");
	CU_ASSERT_STRING_EQUAL(setting(p, 2)->value, "two");
	CU_ASSERT_EQUAL(setting(p, 2)->line, 6);
	CU_ASSERT_TRUE(setting(p, 2)->continuation);
	CU_ASSERT_STRING_EQUAL(setting(p, 3)->key, "list");
	CU_ASSERT_STRING_EQUAL(setting(p, 3)->value, "three");
	CU_ASSERT_EQUAL(setting(p, 3)->line, 8);
	CU_ASSERT_TRUE(setting(p, 3)->continuation);
	/* An empty value is the plugin's to judge. */
	CU_ASSERT_STRING_EQUAL(setting(p, 4)->key, "other");
	CU_ASSERT_STRING_EQUAL(setting(p, 4)->value, "");
	CU_ASSERT_EQUAL(setting(p, 4)->line, 9);
	CU_ASSERT_FALSE(setting(p, 4)->continuation);
	config_free(cfg);
}

static void
test_continuation_keeps_a_long_key_name_whole(void)
{
	/* libinih itself remembers only 49 bytes of the key continued. */
	static const char key[] =
	    "a_key_name_that_is_longer_than_fifty_bytes_for_sure_0123";
	char text[256];
	struct config *cfg;
	const struct config_instance *p;

	snprintf(text, sizeof text, "[plugin:p]\nmodule = p\n%s = 1\n  2\n",
	    key);
	cfg = load(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	p = &cfg->instances[0];
	CU_ASSERT_EQUAL_FATAL(p->nsettings, 2);
	CU_ASSERT_STRING_EQUAL(setting(p, 0)->key, key);
	CU_ASSERT_STRING_EQUAL(setting(p, 1)->key, key);
	CU_ASSERT_STRING_EQUAL(setting(p, 1)->value, "2");
	CU_ASSERT_TRUE(setting(p, 1)->continuation);
	config_free(cfg);
}

static void
test_duplicate_plugin_key_is_kept_twice(void)
{
	struct config *cfg = load("[plugin:p]\nmodule = p\n"
	    "rcpt = a@example.org\nrcpt = b@example.org\n");
	const struct config_instance *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	p = &cfg->instances[0];
	CU_ASSERT_EQUAL_FATAL(p->nsettings, 2);
	CU_ASSERT_STRING_EQUAL(setting(p, 0)->key, "rcpt");
	CU_ASSERT_STRING_EQUAL(setting(p, 0)->value, "a@example.org");
	CU_ASSERT_EQUAL(setting(p, 0)->line, 3);
	CU_ASSERT_STRING_EQUAL(setting(p, 1)->key, "rcpt");
	CU_ASSERT_STRING_EQUAL(setting(p, 1)->value, "b@example.org");
	CU_ASSERT_EQUAL(setting(p, 1)->line, 4);
	CU_ASSERT_FALSE(setting(p, 1)->continuation);
	config_free(cfg);
}

static void
test_indented_key_after_a_header_is_a_key(void)
{
	struct config *cfg = load("[plugin:p]\n  module = p\n"
	    "[milterhost]\n\ttimeout = 4\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].module, "p");
	CU_ASSERT_EQUAL(cfg->instances[0].nsettings, 0);
	CU_ASSERT_EQUAL(cfg->timeout, 4);
	config_free(cfg);
}

/* ---- duplicates and continuations of host keys ------------------------ */

static void
test_host_key_given_twice_is_an_error(void)
{
	check_error("[milterhost]\ntimeout = 5\n; again\ntimeout = 5\n", 4,
	    "'timeout'", "given twice", "line 2");
}

static void
test_host_key_continued_by_an_indented_line_is_an_error(void)
{
	check_error("[milterhost]\nsocket = inet:25\n  timeout = 5\n", 3,
	    "continues key 'socket' of line 2");
	check_error("[milterhost]\nuser = milter\n\n   postfix\n", 4,
	    "continues key 'user' of line 2");
}

static void
test_plugin_host_key_given_twice_is_an_error(void)
{
	check_error("[plugin:p]\nmodule = p\nkey = v\nmodule = q\n", 4,
	    "'module'", "given twice", "[plugin:p]", "line 2");
	check_error("[plugin:p]\nmodule = p\ndry_run = no\ndry_run = yes\n",
	    4, "'dry_run'", "given twice");
}

static void
test_plugin_host_key_continued_by_an_indented_line_is_an_error(void)
{
	check_error("[plugin:p]\nmodule = p\n  q\n", 3,
	    "continues key 'module' of line 2");
	check_error("[plugin:p]\nmodule = p\nenabled = yes\n\tno\n", 4,
	    "continues key 'enabled' of line 3");
}

static void
test_host_keys_of_two_plugin_sections_are_apart(void)
{
	struct config *cfg = load("[plugin:a]\nmodule = a\nenabled = no\n"
	    "[plugin:b]\nmodule = b\nenabled = no\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->ninstances, 2);
	config_free(cfg);
}

/* ---- syntax ----------------------------------------------------------- */

static void
test_line_without_equals_is_a_syntax_error(void)
{
	check_error("[milterhost]\ntimeout = 5\njust words\nbacklog = 1\n", 3,
	    "syntax error", "expected 'key = value' or '[section]'");
	/* The last line, without its newline. */
	check_error("[plugin:p]\nmodule = p\nno-value", 3, "syntax error");
}

static void
test_key_without_name_is_an_error(void)
{
	check_error("[plugin:p]\nmodule = p\n= value\n", 3, "syntax error");
}

static void
test_first_error_is_reported(void)
{
	check_error("[milterhost]\ntimeout = x\nbacklog = y\n[nope]\n", 2,
	    "'timeout'");
	check_error("[milterhost]\nnot a key\ntimeout = x\n", 2,
	    "syntax error");
}

static void
test_inline_comments_are_stripped(void)
{
	struct config *cfg = load("[milterhost] ; host\n"
	    "timeout = 60 ; one minute\n"
	    "[plugin:p]\nmodule = p.so\t; tab before\n"
	    "key = a;b\n"
	    "list = one ; first\n"
	    "  two ; second\n");
	const struct config_instance *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->timeout, 60);
	p = &cfg->instances[0];
	CU_ASSERT_STRING_EQUAL(p->module, "p.so");
	CU_ASSERT_EQUAL_FATAL(p->nsettings, 3);
	/* ';' is a comment only after a blank. */
	CU_ASSERT_STRING_EQUAL(setting(p, 0)->value, "a;b");
	CU_ASSERT_STRING_EQUAL(setting(p, 1)->value, "one");
	CU_ASSERT_STRING_EQUAL(setting(p, 2)->value, "two");
	config_free(cfg);
}

static void
test_line_numbers_count_comments_and_blank_lines(void)
{
	struct config *cfg = load("; head\n# hash comment\n\n"
	    "[plugin:p]\n\n   \n; x\nmodule = p\n\n\nk = v\n");
	const struct config_instance *p;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	p = &cfg->instances[0];
	CU_ASSERT_EQUAL(p->line, 4);
	CU_ASSERT_EQUAL(p->module_line, 8);
	CU_ASSERT_EQUAL(setting(p, 0)->line, 11);
	config_free(cfg);
	check_error("; head\n\n# more\n[milterhost]\n\n\ntimeout = no\n", 7,
	    "'timeout'");
}

static void
test_crlf_lines_read_like_lf_lines(void)
{
	struct config *cfg = load("[milterhost]\r\ntimeout = 12\r\n"
	    "[plugin:p]\r\nmodule = p\r\nk = v\r\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->timeout, 12);
	CU_ASSERT_STRING_EQUAL(cfg->instances[0].module, "p");
	CU_ASSERT_STRING_EQUAL(setting(&cfg->instances[0], 0)->value, "v");
	config_free(cfg);
}

static void
test_utf8_byte_order_mark_is_skipped(void)
{
	struct config *cfg = load("\xEF\xBB\xBF[milterhost]\ntimeout = 3\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->timeout, 3);
	config_free(cfg);
}

static void
test_nul_byte_is_an_error(void)
{
	static const char text[] = "[plugin:p]\nmodule = p\nk = a\0b\n";

	check_error_bytes(text, sizeof text - 1, 3, "NUL", NULL);
}

/* ---- line length ------------------------------------------------------ */

/* "key = vvv...v": a line of exactly len bytes, without the newline. */
static void
make_line(char *buf, size_t len)
{
	memcpy(buf, "key = ", 6);
	memset(buf + 6, 'v', len - 6);
	buf[len] = '\0';
}

static void
test_line_of_maximum_length_is_accepted_intact(void)
{
	char line[MAX_LINE + 1], text[512];
	struct config *cfg;
	const struct config_setting *s;

	make_line(line, MAX_LINE);
	snprintf(text, sizeof text, "[plugin:p]\nmodule = p\n%s\nafter = 1\n",
	    line);
	cfg = load(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->instances[0].nsettings, 2);
	s = setting(&cfg->instances[0], 0);
	CU_ASSERT_STRING_EQUAL(s->value, line + 6);
	CU_ASSERT_EQUAL(strlen(s->value), MAX_LINE - 6);
	CU_ASSERT_EQUAL(s->line, 3);
	CU_ASSERT_EQUAL(setting(&cfg->instances[0], 1)->line, 4);
	config_free(cfg);
}

static void
test_line_of_maximum_length_at_end_without_newline_is_accepted(void)
{
	char line[MAX_LINE + 1], text[512];
	struct config *cfg;

	make_line(line, MAX_LINE);
	snprintf(text, sizeof text, "[plugin:p]\nmodule = p\n%s", line);
	cfg = load(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL_FATAL(cfg->instances[0].nsettings, 1);
	CU_ASSERT_STRING_EQUAL(setting(&cfg->instances[0], 0)->value,
	    line + 6);
	config_free(cfg);
}

static void
test_line_over_limit_is_an_error(void)
{
	char line[MAX_LINE + 2], text[512];

	make_line(line, MAX_LINE + 1);
	snprintf(text, sizeof text, "; comment\n\n[plugin:p]\nmodule = p\n"
	    "%s\nk = v\n", line);
	check_error(text, 5, "line is longer than 198 bytes",
	    "libinih's limit");
}

static void
test_line_over_limit_without_newline_is_an_error(void)
{
	char line[MAX_LINE + 2], text[512];

	make_line(line, MAX_LINE + 1);
	snprintf(text, sizeof text, "[plugin:p]\nmodule = p\n%s", line);
	check_error(text, 3, "line is longer than 198 bytes");
}

static void
test_long_comment_line_is_an_error_too(void)
{
	/* libinih would read the rest of it as a line of its own. */
	char text[512];

	memset(text, 0, sizeof text);
	strcpy(text, "[milterhost]\n; ");
	memset(text + strlen(text), 'c', 250);
	strcat(text, " timeout = 1\n");
	check_error(text, 2, "line is longer than");
}

static void
test_crlf_counts_toward_the_line_limit(void)
{
	char line[MAX_LINE + 1], text[512];

	make_line(line, MAX_LINE);
	snprintf(text, sizeof text, "[plugin:p]\r\nmodule = p\r\n%s\r\n",
	    line);
	check_error(text, 3, "line is longer than");
}

/* ---- files ------------------------------------------------------------ */

static void
test_missing_file_is_an_error(void)
{
	char path[PATH_MAX + 16], expect[PATH_MAX + 64];
	struct config *cfg;

	snprintf(path, sizeof path, "%s/absent.ini", tmpdir);
	snprintf(expect, sizeof expect, "%s: cannot open: %s", path,
	    strerror(ENOENT));
	err[0] = '\0';
	cfg = config_load(path, err, sizeof err);
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_STRING_EQUAL(err, expect);
}

static void
test_unreadable_file_is_an_error(void)
{
	char expect[PATH_MAX + 64];
	struct config *cfg;

	/* A directory opens but cannot be read. */
	snprintf(expect, sizeof expect, "%s: cannot read: %s", tmpdir,
	    strerror(EISDIR));
	err[0] = '\0';
	cfg = config_load(tmpdir, err, sizeof err);
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_STRING_EQUAL(err, expect);

	/* Without read permission (root reads it anyway). */
	if (geteuid() == 0)
		return;
	write_ini_bytes("[milterhost]\n", 13);
	CU_ASSERT_FATAL(chmod(ini_path, 0) == 0);
	snprintf(expect, sizeof expect, "%s: cannot open: %s", ini_path,
	    strerror(EACCES));
	cfg = config_load(ini_path, err, sizeof err);
	CU_ASSERT_PTR_NULL(cfg);
	CU_ASSERT_STRING_EQUAL(err, expect);
	CU_ASSERT(chmod(ini_path, 0600) == 0);
}

/* ---- plugin directory ------------------------------------------------- */

static void
check_plugin_dir(const char *file, const char *plugin_dir,
		 const char *expect)
{
	struct config cfg;
	char *dir;

	memset(&cfg, 0, sizeof cfg);
	cfg.file = (char *)file;
	cfg.plugin_dir = (char *)plugin_dir;
	dir = config_plugin_dir(&cfg);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	if (strcmp(dir, expect) != 0)
		fprintf(stderr, "\n  %s + %s gave %s, not %s\n", file,
		    plugin_dir, dir, expect);
	CU_ASSERT_STRING_EQUAL(dir, expect);
	free(dir);
}

static void
test_relative_plugin_dir_is_joined_to_the_config_dir(void)
{
	check_plugin_dir("/etc/milterhost/milterhost.ini", "plugins",
	    "/etc/milterhost/plugins");
	check_plugin_dir("conf/milterhost.ini", "../plugins",
	    "conf/../plugins");
	check_plugin_dir("milterhost.ini", "plugins", "./plugins");
	check_plugin_dir("/milterhost.ini", "plugins", "/plugins");
}

static void
test_absolute_plugin_dir_is_kept(void)
{
	check_plugin_dir("/etc/milterhost/milterhost.ini", "/usr/lib/mh",
	    "/usr/lib/mh");
	check_plugin_dir("milterhost.ini", "/usr/lib/mh", "/usr/lib/mh");
}

static void
test_plugin_dir_from_a_loaded_file_is_joined(void)
{
	struct config *cfg = load("[milterhost]\nplugin_dir = lib\n");
	char expect[PATH_MAX + 8], *dir;

	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_STRING_EQUAL(cfg->plugin_dir, "lib");
	dir = config_plugin_dir(cfg);
	snprintf(expect, sizeof expect, "%s/lib", tmpdir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	CU_ASSERT_STRING_EQUAL(dir, expect);
	free(dir);
	config_free(cfg);
}

static void
test_config_free_accepts_null(void)
{
	config_free(NULL);
	CU_PASS("config_free(NULL) returned");
}

/* ---- scaling ---------------------------------------------------------- */

/* Write n plugin sections to path, each with a module and a setting. */
static void
write_sections(const char *path, size_t n)
{
	FILE *fp = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fputs("[milterhost]\nplugin_dir = /nowhere\n", fp);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "[plugin:p%zu]\nmodule = noop\ngreeting = hi\n",
		    i);
	CU_ASSERT_FATAL(fclose(fp) == 0);
}

/* Keep in *best the least CPU time yet of config_load of path. */
static void
time_load(const char *path, size_t n, double *best)
{
	struct config *cfg;
	double start, t;

	start = unit_cpu_seconds();
	cfg = config_load(path, err, sizeof err);
	t = unit_cpu_seconds() - start;
	if (cfg == NULL)
		fprintf(stderr, "\n  unexpected error: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	CU_ASSERT_EQUAL(cfg->ninstances, n);
	config_free(cfg);
	if (*best < 0 || t < *best)
		*best = t;
}

/*
 * Four times the sections must take about four times as long, not
 * sixteen: a scan of all sections per section (say, to find one given
 * twice), or an array grown one element at a time, makes 40,000 sections
 * take seconds to load.  The runs of both sizes alternate and the least
 * time of each counts, so that a busy machine slows both alike; 8 leaves
 * room for noise.
 */
static void
test_load_time_grows_linearly_with_sections(void)
{
	enum { N = 5000 };
	char small[PATH_MAX + 16], large[PATH_MAX + 16];
	double t1 = -1, t4 = -1;

	snprintf(small, sizeof small, "%s/small.ini", tmpdir);
	snprintf(large, sizeof large, "%s/large.ini", tmpdir);
	write_sections(small, N);
	write_sections(large, 4 * N);
	for (int run = 0; run < 5; run++) {
		time_load(small, N, &t1);
		time_load(large, 4 * N, &t4);
	}
	unlink(small);
	unlink(large);
	if (t4 >= 8 * t1)
		fprintf(stderr, "\n  %d sections: %.4f s, %d: %.4f s (x%.1f)\n",
		    N, t1, 4 * N, t4, t4 / t1);
	CU_ASSERT(t4 < 8 * t1);
}

/* ---- main ------------------------------------------------------------- */

static const struct unit_test tests[] = {
	TEST(test_empty_file_gives_defaults_and_no_instances),
	TEST(test_defaults_when_milterhost_section_is_absent),
	TEST(test_empty_milterhost_section_gives_defaults),
	TEST(test_every_host_key_is_parsed),
	TEST(test_every_socket_form_is_accepted),
	TEST(test_bad_socket_is_an_error_naming_key_and_value),
	TEST(test_boolean_spellings_are_accepted),
	TEST(test_bad_boolean_is_an_error),
	TEST(test_timeout_must_be_a_positive_integer),
	TEST(test_stop_timeout_must_be_a_number_of_seconds),
	TEST(test_backlog_zero_means_libmilter_default),
	TEST(test_socket_mode_is_octal_up_to_0777),
	TEST(test_pidfile_must_be_absolute),
	TEST(test_score_keys),
	TEST(test_kv_keys),
	TEST(test_condition_keys),
	TEST(test_log_settings_take_their_names),
	TEST(test_bad_log_settings_are_errors),
	TEST(test_bad_on_error_is_an_error),
	TEST(test_on_error_names_round_trip),
	TEST(test_unknown_host_key_is_an_error),
	TEST(test_empty_value_is_an_error),
	TEST(test_unknown_section_is_an_error),
	TEST(test_milterhost_section_given_twice_is_an_error),
	TEST(test_plugin_section_given_twice_is_an_error),
	TEST(test_bad_plugin_name_is_an_error),
	TEST(test_plugin_name_may_use_letters_digits_underscore_dot_dash),
	TEST(test_long_plugin_name_is_kept_whole),
	TEST(test_section_header_may_have_blanks_and_a_comment),
	TEST(test_text_after_section_header_is_an_error),
	TEST(test_section_header_without_bracket_is_a_syntax_error),
	TEST(test_key_outside_any_section_is_an_error),
	TEST(test_missing_module_reports_the_section_line),
	TEST(test_module_must_be_a_file_name_or_an_absolute_path),
	TEST(test_instances_keep_file_order),
	TEST(test_one_module_may_have_two_instances),
	TEST(test_plugin_host_keys_are_parsed),
	TEST(test_instance_inherits_host_on_error_wherever_milterhost_is),
	TEST(test_plugin_settings_keep_order_lines_and_continuations),
	TEST(test_continuation_keeps_a_long_key_name_whole),
	TEST(test_duplicate_plugin_key_is_kept_twice),
	TEST(test_indented_key_after_a_header_is_a_key),
	TEST(test_host_key_given_twice_is_an_error),
	TEST(test_host_key_continued_by_an_indented_line_is_an_error),
	TEST(test_plugin_host_key_given_twice_is_an_error),
	TEST(test_plugin_host_key_continued_by_an_indented_line_is_an_error),
	TEST(test_host_keys_of_two_plugin_sections_are_apart),
	TEST(test_line_without_equals_is_a_syntax_error),
	TEST(test_key_without_name_is_an_error),
	TEST(test_first_error_is_reported),
	TEST(test_inline_comments_are_stripped),
	TEST(test_line_numbers_count_comments_and_blank_lines),
	TEST(test_crlf_lines_read_like_lf_lines),
	TEST(test_utf8_byte_order_mark_is_skipped),
	TEST(test_nul_byte_is_an_error),
	TEST(test_line_of_maximum_length_is_accepted_intact),
	TEST(test_line_of_maximum_length_at_end_without_newline_is_accepted),
	TEST(test_line_over_limit_is_an_error),
	TEST(test_line_over_limit_without_newline_is_an_error),
	TEST(test_long_comment_line_is_an_error_too),
	TEST(test_crlf_counts_toward_the_line_limit),
	TEST(test_missing_file_is_an_error),
	TEST(test_unreadable_file_is_an_error),
	TEST(test_relative_plugin_dir_is_joined_to_the_config_dir),
	TEST(test_absolute_plugin_dir_is_kept),
	TEST(test_plugin_dir_from_a_loaded_file_is_joined),
	TEST(test_config_free_accepts_null),
	TEST(test_load_time_grows_linearly_with_sections),
	TEST_END,
};

int
main(void)
{
	static const struct unit_suite suites[] = {
		{ "config", suite_init, suite_cleanup, tests },
		{ NULL, NULL, NULL, NULL },
	};

	return unit_run(suites);
}

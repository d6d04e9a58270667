/*
 * test_loader - unit tests of loader.c: plugin sets from config files and
 * from descriptors linked into the program.
 *
 * The config cases write an ini file into a temporary directory, load it
 * with config_load() and hand it to plugin_set_load().  Unless a case says
 * otherwise the file starts with
 *
 *	[milterhost]			line 1
 *	plugin_dir = BUILD_PLUGINS	line 2
 *
 * so the case's own lines start at line 3.  BUILD_PLUGINS is where the
 * build put the test plugins of tests/plugins/: $abs_top_builddir/tests/
 * plugins/.libs (set by make check), or $TEST_PLUGIN_DIR.
 *
 * The program is linked so that it exports the mh_* host functions to the
 * plugins it loads, as the daemon does; loading allapi.so, which calls
 * them all, proves that.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "unit.h"

#include "chain.h"
#include "config.h"
#include "elfdesc.h"
#include "loader.h"

#define HEADER_LINES 2 /* [milterhost] and plugin_dir */
#define L(n) (HEADER_LINES + (n)) /* line n of a case's own text */

static char build_dir[PATH_MAX];   /* the built test plugins */
static char tmpdir[PATH_MAX];
static char ini_path[PATH_MAX + 16];
static char err[4096];
static struct config *cfg;         /* of the last load */

/* ---- files ------------------------------------------------------------ */

static void
write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	CU_ASSERT_FATAL(fputs(text, fp) >= 0);
	CU_ASSERT_FATAL(fclose(fp) == 0);
}

static void
copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "rb"), *out;
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(in);
	out = fopen(to, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(out);
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		CU_ASSERT_FATAL(fwrite(buf, 1, n, out) == n);
	fclose(in);
	CU_ASSERT_FATAL(fclose(out) == 0);
}

/* Remove path and, if it is a directory, everything in it. */
static int
remove_tree(const char *path)
{
	struct stat st;
	struct dirent *e;
	char sub[PATH_MAX];
	DIR *d;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlink(path);
	if ((d = opendir(path)) == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if ((size_t)snprintf(sub, sizeof sub, "%s/%s", path,
		    e->d_name) >= sizeof sub || remove_tree(sub) < 0)
			rc = -1;
	}
	closedir(d);
	return rmdir(path) < 0 ? -1 : rc;
}

/* "dir/namesuffix" in buf; a path too long for buf fails the test. */
static const char *
join(char *buf, size_t len, const char *dir, const char *name,
     const char *suffix)
{
	int n = snprintf(buf, len, "%s/%s%s", dir, name, suffix);

	CU_ASSERT_FATAL(n >= 0 && (size_t)n < len);
	return buf;
}

/* tmpdir/name */
static const char *
tmp_path(char *buf, size_t len, const char *name)
{
	return join(buf, len, tmpdir, name, "");
}

/* The built test plugin name ("noop"). */
static const char *
plugin_file(char *buf, size_t len, const char *name)
{
	return join(buf, len, build_dir, name, ".so");
}

/* ---- loading ---------------------------------------------------------- */

/*
 * Write "[milterhost]", "plugin_dir = DIR" and text as the ini file,
 * which config_load must accept, and load its plugins.  Returns the set
 * or NULL with the reason in err.
 */
static struct plugin_set *
load_dir(const char *dir, const char *text)
{
	static char ini[16384];

	CU_ASSERT_FATAL((size_t)snprintf(ini, sizeof ini, "[milterhost]\n"
	    "plugin_dir = %s\n%s", dir, text) < sizeof ini);
	write_file(ini_path, ini);
	config_free(cfg);
	cfg = config_load(ini_path, err, sizeof err);
	if (cfg == NULL)
		fprintf(stderr, "\n  config error: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
	snprintf(err, sizeof err, "(untouched)");
	return plugin_set_load(cfg, err, sizeof err);
}

static struct plugin_set *
load(const char *text)
{
	struct plugin_set *set = load_dir(build_dir, text);

	if (set == NULL)
		fprintf(stderr, "\n  unexpected error: %s\n", err);
	return set;
}

static void
unload(struct plugin_set *set)
{
	plugin_set_release(set);
	config_free(cfg);
	cfg = NULL;
}

/* Does err contain each of the NULL-terminated needles?  Says if not. */
static bool
err_has(va_list ap)
{
	const char *needle;
	bool ok = true;

	while ((needle = va_arg(ap, const char *)) != NULL) {
		if (strstr(err, needle) == NULL) {
			fprintf(stderr, "\n  error lacks \"%s\"", needle);
			ok = false;
		}
	}
	return ok;
}

/*
 * Check that loading text from dir fails with "INI:LINE: ..." (or
 * "INI: ..." for line 0) containing each of the needles.
 */
static void
refused_dir(const char *dir, const char *text, int line, ...)
{
	struct plugin_set *set = load_dir(dir, text);
	char prefix[PATH_MAX + 32];
	va_list ap;
	bool ok;

	CU_ASSERT_PTR_NULL(set);
	if (line > 0)
		snprintf(prefix, sizeof prefix, "%s:%d: ", ini_path, line);
	else
		snprintf(prefix, sizeof prefix, "%s: ", ini_path);
	ok = strncmp(err, prefix, strlen(prefix)) == 0;
	if (!ok)
		fprintf(stderr, "\n  error does not start with \"%s\"", prefix);
	va_start(ap, line);
	ok = err_has(ap) && ok;
	va_end(ap);
	if (!ok)
		fprintf(stderr, "\n  error was: %s\n", err);
	CU_ASSERT(ok);
	unload(set);
}

#define refused(text, line, ...) \
	refused_dir(build_dir, (text), (line), __VA_ARGS__, NULL)

/* What noop's init received, as it recorded it. */
static const char *
noop_seen(const struct instance *in)
{
	const char *(*seen)(const void *);
	void *sym;

	CU_ASSERT_STRING_EQUAL_FATAL(in->desc->name, "noop");
	sym = dlsym(in->module->handle, "noop_settings_seen");
	CU_ASSERT_PTR_NOT_NULL_FATAL(sym);
	seen = (const char *(*)(const void *))sym;
	return seen(in->state);
}

/* Check what noop instance in got: its name, the file and lines. */
static void
check_seen(const struct instance *in, const char *settings)
{
	char want[PATH_MAX + 1024];

	snprintf(want, sizeof want, "instance=%s file=%s\n%s", in->name,
	    ini_path, settings);
	CU_ASSERT_STRING_EQUAL(noop_seen(in), want);
}

/* ---- suite: finding and sharing modules -------------------------------- */

static void
check_one_noop(struct plugin_set *set, const char *name)
{
	char path[PATH_MAX];

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL_FATAL(set->ninstances, 1);
	CU_ASSERT_EQUAL_FATAL(set->nmodules, 1);
	CU_ASSERT_STRING_EQUAL(set->instances[0].name, name);
	CU_ASSERT_STRING_EQUAL(set->modules[0]->path,
	    plugin_file(path, sizeof path, "noop"));
	CU_ASSERT_PTR_NOT_NULL(set->modules[0]->handle);
	CU_ASSERT_EQUAL(set->modules[0]->refs, 1);
	CU_ASSERT_PTR_EQUAL(set->instances[0].module, set->modules[0]);
	CU_ASSERT_PTR_EQUAL(set->instances[0].desc, &set->modules[0]->desc);
	CU_ASSERT_STRING_EQUAL(set->instances[0].desc->name, "noop");
	CU_ASSERT_EQUAL(set->instances[0].index, 0);
	CU_ASSERT_EQUAL(set->refs, 1);
	check_seen(&set->instances[0], "");
}

static void
test_module_name_is_a_file_in_plugin_dir(void)
{
	struct plugin_set *set = load("[plugin:a]\nmodule = noop\n");

	check_one_noop(set, "a");
	unload(set);
}

static void
test_module_name_may_end_in_so(void)
{
	struct plugin_set *set = load("[plugin:b]\nmodule = noop.so\n");

	check_one_noop(set, "b");
	unload(set);
}

static void
test_absolute_module_path_ignores_plugin_dir(void)
{
	char text[PATH_MAX + 64], path[PATH_MAX];
	struct plugin_set *set;

	snprintf(text, sizeof text, "[plugin:c]\nmodule = %s\n",
	    plugin_file(path, sizeof path, "noop"));
	set = load_dir("/nonexistent", text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	check_one_noop(set, "c");
	unload(set);
}

static void
test_instances_of_one_module_share_it(void)
{
	char text[PATH_MAX + 128], path[PATH_MAX];
	struct plugin_set *set;

	snprintf(text, sizeof text, "[plugin:one]\nmodule = noop\n"
	    "[plugin:two]\nmodule = %s\n[plugin:three]\nmodule = initfail\n",
	    plugin_file(path, sizeof path, "noop"));
	set = load(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL_FATAL(set->ninstances, 3);
	CU_ASSERT_EQUAL_FATAL(set->nmodules, 2);
	CU_ASSERT_EQUAL(set->modules[0]->refs, 2);
	CU_ASSERT_EQUAL(set->modules[1]->refs, 1);
	CU_ASSERT_PTR_EQUAL(set->instances[0].module, set->modules[0]);
	CU_ASSERT_PTR_EQUAL(set->instances[1].module, set->modules[0]);
	CU_ASSERT_PTR_EQUAL(set->instances[1].desc, &set->modules[0]->desc);
	CU_ASSERT_PTR_EQUAL(set->instances[2].module, set->modules[1]);
	CU_ASSERT_STRING_EQUAL(set->instances[0].name, "one");
	CU_ASSERT_STRING_EQUAL(set->instances[1].name, "two");
	CU_ASSERT_STRING_EQUAL(set->instances[2].name, "three");
	for (size_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(set->instances[i].index, i);
	/* Each instance has a state of its own. */
	CU_ASSERT_PTR_NOT_EQUAL(set->instances[0].state,
	    set->instances[1].state);
	unload(set);
}

static void
test_disabled_instance_is_not_loaded(void)
{
	struct plugin_set *set = load("[plugin:off]\nmodule = nosuch\n"
	    "enabled = no\n[plugin:on]\nmodule = noop\n"
	    "[plugin:off2]\nmodule = initfail\nenabled = false\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL_FATAL(set->ninstances, 1);
	CU_ASSERT_EQUAL(set->nmodules, 1);
	CU_ASSERT_STRING_EQUAL(set->instances[0].name, "on");
	CU_ASSERT_EQUAL(set->instances[0].index, 0);
	unload(set);
}

static void
test_host_keys_go_to_the_instance_not_to_init(void)
{
	struct plugin_set *set = load("[plugin:a]\nmodule = noop\n"
	    "on_error = accept\ndry_run = yes\ngreeting = hello\n"
	    "[plugin:b]\nmodule = noop\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL_FATAL(set->ninstances, 2);
	CU_ASSERT_EQUAL(set->instances[0].on_error, ON_ERROR_ACCEPT);
	CU_ASSERT_TRUE(set->instances[0].dry_run);
	check_seen(&set->instances[0], "greeting=hello\n");
	CU_ASSERT_EQUAL(set->instances[1].on_error, ON_ERROR_TEMPFAIL);
	CU_ASSERT_FALSE(set->instances[1].dry_run);
	unload(set);
}

static void
test_instance_inherits_host_on_error(void)
{
	/* The text goes on the [milterhost] section of load()'s header. */
	struct plugin_set *set = load("on_error = continue\n"
	    "[plugin:a]\nmodule = noop\n[plugin:b]\nmodule = noop\n"
	    "on_error = tempfail\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(set->instances[0].on_error, ON_ERROR_CONTINUE);
	CU_ASSERT_EQUAL(set->instances[1].on_error, ON_ERROR_TEMPFAIL);
	unload(set);
}

static void
test_no_sections_give_an_empty_set(void)
{
	struct plugin_set *set = load("");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(set->ninstances, 0);
	CU_ASSERT_EQUAL(set->nmodules, 0);
	unload(set);
}

/* ---- suite: modules that are refused ---------------------------------- */

static void
test_missing_module_file_is_refused(void)
{
	char want[PATH_MAX + 32], path[PATH_MAX];

	snprintf(want, sizeof want, "no such file %s",
	    plugin_file(path, sizeof path, "nosuch"));
	refused("[plugin:x]\n\nmodule = nosuch\n", L(3),
	    "[plugin:x] module = nosuch: ", want);
}

static void
test_file_that_is_no_shared_object_is_refused(void)
{
	char dir[PATH_MAX], so[PATH_MAX + 8];

	tmp_path(dir, sizeof dir, "junk");
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
	join(so, sizeof so, dir, "x.so", "");
	write_file(so, "this is not an ELF file\n");
	refused_dir(dir, "[plugin:x]\nmodule = x\n", L(2),
	    "[plugin:x] module = x: cannot load: ", so, NULL);
	CU_ASSERT(remove_tree(dir) == 0);
}

static void
test_shared_object_without_descriptor_is_refused(void)
{
	char want[PATH_MAX + 64], path[PATH_MAX];

	snprintf(want, sizeof want, "%s has no milterhost_plugin descriptor: "
	    "not a milterhost plugin", plugin_file(path, sizeof path,
	    "nodesc"));
	refused("[plugin:nd]\nmodule = nodesc.so\n", L(2),
	    "[plugin:nd] module = nodesc.so: ", want);
}

/* This host's ABI as its messages give it. */
#define STR(x) #x
#define XSTR(x) STR(x)
#define HOST_ABI XSTR(MH_ABI_MAJOR) "." XSTR(MH_ABI_MINOR)

static void
test_other_major_abi_is_refused_naming_both(void)
{
	char path[PATH_MAX];

	refused("[plugin:old]\nmodule = badabi\n", L(2),
	    "[plugin:old] module = badabi: ",
	    plugin_file(path, sizeof path, "badabi"),
	    "built for plugin ABI 2.0, this milterhost supports " HOST_ABI
	    " (major must match, minor up to " XSTR(MH_ABI_MINOR) ")");
}

static void
test_newer_minor_abi_is_refused_naming_both(void)
{
	char want[128];

	snprintf(want, sizeof want, "built for plugin ABI %d.%d, this "
	    "milterhost supports %s", MH_ABI_MAJOR, MH_ABI_MINOR + 1,
	    HOST_ABI);
	refused("[plugin:new]\nmodule = newminor\n", L(2),
	    "[plugin:new] module = newminor: ", want);
}

/*
 * future.so calls a host function and reads a host variable of the next
 * minor ABI.  dlopen() would fail on them: the version must be checked
 * first, from the file, and be the reason given.
 */
static void
test_newer_minor_is_refused_for_its_version_not_its_symbols(void)
{
	char want[128], path[PATH_MAX];

	snprintf(want, sizeof want, "built for plugin ABI %d.%d, this "
	    "milterhost supports %d.%d", MH_ABI_MAJOR, MH_ABI_MINOR + 1,
	    MH_ABI_MAJOR, MH_ABI_MINOR);
	refused("[plugin:fut]\nmodule = future\n", L(2),
	    "[plugin:fut] module = future: ",
	    plugin_file(path, sizeof path, "future"), want);
	CU_ASSERT_PTR_NULL(strstr(err, "undefined symbol"));
}

/* The same plugin claiming the host's minor gets dlopen()'s reason. */
static void
test_current_minor_with_unknown_symbol_gets_the_dlopen_error(void)
{
	refused("[plugin:now]\nmodule = future_now\n", L(2),
	    "[plugin:now] module = future_now: cannot load: ",
	    "future_now.so", "undefined symbol: mh_future_");
	CU_ASSERT_PTR_NULL(strstr(err, "built for"));
}

static void
test_macros_at_header_stage_are_refused(void)
{
	refused("[plugin:m]\nmodule = badmacro\n", L(2),
	    "[plugin:m] module = badmacro: ", "plugin 'badmacro'",
	    "stage header");
}

static void
test_refusal_after_loaded_instances_unloads_them(void)
{
	/* Valgrind shows that noop's state is freed: fini ran. */
	refused("[plugin:a]\nmodule = noop\n[plugin:b]\nmodule = noop\n"
	    "greeting = hi\n[plugin:c]\nmodule = badabi\n", L(7),
	    "[plugin:c] module = badabi: ", "ABI 2.0");
}

static void
test_relative_path_with_slash_is_refused(void)
{
	struct config_instance inst = {
		.name = "rel", .module = "sub/noop.so", .line = 7,
		.module_line = 8, .enabled = true,
	};
	struct config hand = {
		.file = "hand.ini", .plugin_dir = build_dir,
		.instances = &inst, .ninstances = 1,
	};
	struct plugin_set *set = plugin_set_load(&hand, err, sizeof err);

	CU_ASSERT_PTR_NULL(set);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "hand.ini:8: [plugin:rel] "
	    "module = sub/noop.so: expected a file name in plugin_dir or an "
	    "absolute path"));
	plugin_set_release(set);
}

/* ---- suite: init ----------------------------------------------------- */

static void
test_init_error_names_the_key_and_its_line(void)
{
	refused("[plugin:f]\nmodule = initfail\nfail = no\n"
	    "threshold = lots\n", L(4),
	    "[plugin:f] threshold: must be a number, got 'lots'");
}

static void
test_init_error_without_key_gives_section_line(void)
{
	refused("[plugin:ok]\nmodule = noop\n\n[plugin:f]\nmodule = initfail\n"
	    "fail = yes\n", L(4),
	    "[plugin:f] cannot start: asked to fail by instance f");
}

static void
test_init_failure_without_message_says_init_failed(void)
{
	refused("[plugin:q]\nmodule = initfail\nquiet = on\n", L(1),
	    "[plugin:q] init failed");
}

static void
test_unknown_key_is_refused_by_the_plugin(void)
{
	refused("[plugin:n]\nmodule = noop\ngreeting = hi\ncolour = blue\n",
	    L(4), "[plugin:n] colour: unknown key");
}

static void
test_init_gets_settings_in_file_order(void)
{
	struct plugin_set *set = load("[plugin:n]\ntag = one\nmodule = noop\n"
	    "greeting = hi there\ntag = two\nenabled = yes\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	check_seen(&set->instances[0], "tag=one\ngreeting=hi there\n"
	    "tag=two\n");
	unload(set);
}

static void
test_init_succeeding_with_null_state(void)
{
	struct plugin_set *set = load("[plugin:f]\nmodule = initfail\n"
	    "threshold = 10\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_PTR_NULL(set->instances[0].state);
	unload(set);
}

/* ---- suite: keys given more than once -------------------------------- */

static void
test_key_given_twice_is_refused(void)
{
	refused("[plugin:n]\nmodule = noop\ngreeting = hi\ntag = a\n"
	    "greeting = ho\n", L(5),
	    "[plugin:n] key 'greeting' given twice (first on line 5)");
}

static void
test_continued_key_is_refused(void)
{
	refused("[plugin:n]\nmodule = noop\ngreeting = hi\n  there\n", L(4),
	    "[plugin:n] indented line continues key 'greeting', which is "
	    "not a list");
}

static void
test_list_key_may_be_given_twice(void)
{
	struct plugin_set *set = load("[plugin:n]\nmodule = noop\ntag = a\n"
	    "greeting = hi\ntag = b\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	check_seen(&set->instances[0], "tag=a\ngreeting=hi\ntag=b\n");
	unload(set);
}

static void
test_list_key_continuation_lines_are_values(void)
{
	struct plugin_set *set = load("[plugin:n]\nmodule = noop\ntag = a\n"
	    "  b\n\tc\ntag = d\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	check_seen(&set->instances[0], "tag=a\ntag=b\ntag=c\ntag=d\n");
	unload(set);
}

static void
test_empty_list_head_is_not_a_value(void)
{
	struct plugin_set *set = load("[plugin:n]\nmodule = noop\ntag =\n"
	    "  a\n  b\ngreeting =\n");

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	check_seen(&set->instances[0], "tag=a\ntag=b\ngreeting=\n");
	unload(set);
}

/* ---- suite: plugin file trust ---------------------------------------- */

/*
 * A plugin file that someone but root or milterhost's user could replace
 * is refused, naming the file or directory and why, unless strict_modes
 * is off.  (Ownership is changed only when the tests run as root.)
 */
static void
test_plugin_others_could_replace_is_refused(void)
{
	char dir[PATH_MAX], file[PATH_MAX], src[PATH_MAX];
	const char *text = "[plugin:n]\nmodule = noop\n";
	struct plugin_set *set;

	tmp_path(dir, sizeof dir, "trust");
	remove_tree(dir);
	CU_ASSERT_FATAL(mkdir(dir, 0755) == 0);
	join(file, sizeof file, dir, "noop", ".so");
	copy_file(plugin_file(src, sizeof src, "noop"), file);

	CU_ASSERT_FATAL(chmod(file, 0666) == 0);
	refused_dir(dir, text, L(2), "[plugin:n] module = noop: ", file,
	    " is writable by others (mode 0666)", "strict_modes = no", NULL);
	set = load_dir(dir, "strict_modes = no\n[plugin:n]\nmodule = noop\n");
	CU_ASSERT_PTR_NOT_NULL(set);
	unload(set);

	CU_ASSERT_FATAL(chmod(file, 0644) == 0);
	CU_ASSERT_FATAL(chmod(dir, 0777) == 0);
	refused_dir(dir, text, L(2), dir, " is writable by others (mode 0777)",
	    NULL);
	/* Sticky, like /tmp: nobody else can replace what is in it. */
	CU_ASSERT_FATAL(chmod(dir, 01777) == 0);
	set = load_dir(dir, text);
	CU_ASSERT_PTR_NOT_NULL(set);
	unload(set);

	if (geteuid() == 0) {
		CU_ASSERT_FATAL(chmod(dir, 0775) == 0);
		CU_ASSERT_FATAL(chown(dir, 0, 65534) == 0);
		refused_dir(dir, text, L(2), dir,
		    " is writable by group 65534 (mode 0775)", NULL);
		CU_ASSERT_FATAL(chmod(dir, 0755) == 0);
		CU_ASSERT_FATAL(chown(file, 65534, 0) == 0);
		refused_dir(dir, text, L(2), file, " is owned by uid 65534, "
		    "neither root nor the user milterhost runs as", NULL);
		CU_ASSERT_FATAL(chown(file, 0, 0) == 0);
	}
	CU_ASSERT_FATAL(chmod(dir, 0755) == 0);
	set = load_dir(dir, text);
	CU_ASSERT_PTR_NOT_NULL(set);
	unload(set);
	remove_tree(dir);
}

/* ---- suite: autoload ------------------------------------------------- */

static char auto_dir[PATH_MAX];

/* A fresh plugin dir "auto" next to the ini file holding copies of noop. */
static void
make_auto_dir(void)
{
	char from[PATH_MAX], to[PATH_MAX + 16];
	static const char *const copies[] = { "20-b.so", "10-a.so" };

	tmp_path(auto_dir, sizeof auto_dir, "auto");
	remove_tree(auto_dir); /* left by a test that stopped early */
	CU_ASSERT_FATAL(mkdir(auto_dir, 0700) == 0);
	plugin_file(from, sizeof from, "noop");
	for (size_t i = 0; i < 2; i++) {
		join(to, sizeof to, auto_dir, copies[i], "");
		copy_file(from, to);
	}
	/* Not plugins: ignored. */
	join(to, sizeof to, auto_dir, "README", "");
	write_file(to, "not a plugin\n");
	join(to, sizeof to, auto_dir, ".hidden.so", "");
	write_file(to, "not a plugin\n");
	join(to, sizeof to, auto_dir, "x.so.bak", "");
	write_file(to, "not a plugin\n");
}

static void
drop_auto_dir(void)
{
	CU_ASSERT(remove_tree(auto_dir) == 0);
}

static void
test_autoload_follows_file_name_order(void)
{
	struct plugin_set *set;

	make_auto_dir();
	/* plugin_dir relative to the ini file's directory. */
	set = load_dir("auto", "autoload = yes\non_error = reject\n");
	CU_ASSERT_PTR_NOT_NULL(set);
	if (set != NULL) {
		CU_ASSERT_EQUAL_FATAL(set->ninstances, 2);
		CU_ASSERT_EQUAL(set->nmodules, 2);
		CU_ASSERT_STRING_EQUAL(set->instances[0].name, "10-a");
		CU_ASSERT_STRING_EQUAL(set->instances[1].name, "20-b");
		CU_ASSERT_EQUAL(set->instances[0].on_error, ON_ERROR_REJECT);
		CU_ASSERT_EQUAL(set->instances[1].on_error, ON_ERROR_REJECT);
		CU_ASSERT_FALSE(set->instances[0].dry_run);
		check_seen(&set->instances[0], "");
		check_seen(&set->instances[1], "");
	}
	unload(set);
	drop_auto_dir();
}

static void
test_autoload_comes_after_listed_and_skips_their_modules(void)
{
	struct plugin_set *set;

	make_auto_dir();
	set = load_dir("auto", "autoload = yes\n[plugin:first]\n"
	    "module = 20-b\ngreeting = hi\n");
	CU_ASSERT_PTR_NOT_NULL(set);
	if (set != NULL) {
		CU_ASSERT_EQUAL_FATAL(set->ninstances, 2);
		CU_ASSERT_STRING_EQUAL(set->instances[0].name, "first");
		CU_ASSERT_STRING_EQUAL(set->instances[1].name, "10-a");
		CU_ASSERT_EQUAL(set->instances[1].index, 1);
	}
	unload(set);
	drop_auto_dir();
}

static void
test_autoload_skips_module_of_disabled_section(void)
{
	struct plugin_set *set;

	make_auto_dir();
	set = load_dir("auto", "autoload = yes\n[plugin:off]\n"
	    "module = 10-a.so\nenabled = no\n");
	CU_ASSERT_PTR_NOT_NULL(set);
	if (set != NULL) {
		CU_ASSERT_EQUAL_FATAL(set->ninstances, 1);
		CU_ASSERT_STRING_EQUAL(set->instances[0].name, "20-b");
	}
	unload(set);
	drop_auto_dir();
}

static void
test_autoload_refuses_a_bad_file(void)
{
	char bad[PATH_MAX + 16];

	make_auto_dir();
	join(bad, sizeof bad, auto_dir, "30-c.so", "");
	write_file(bad, "garbage\n");
	refused_dir(auto_dir, "autoload = yes\n", L(1),
	    "autoload [plugin:30-c]", "cannot load", "30-c.so", NULL);
	drop_auto_dir();
}

static void
test_autoload_refuses_a_name_taken_by_a_section(void)
{
	make_auto_dir();
	refused_dir(auto_dir, "autoload = yes\n[plugin:20-b]\n"
	    "module = 10-a\n", L(1), "autoload: ", "20-b.so",
	    "[plugin:20-b], which exists already", NULL);
	drop_auto_dir();
}

/* An autoloaded instance has no section: its errors give the key's line. */
static void
test_autoload_init_error_gives_the_autoload_line(void)
{
	char from[PATH_MAX], to[PATH_MAX + 16];

	make_auto_dir();
	/* initfail fails an instance named fail-*. */
	join(to, sizeof to, auto_dir, "fail-c.so", "");
	copy_file(plugin_file(from, sizeof from, "initfail"), to);
	refused_dir(auto_dir, "on_error = reject\n\nautoload = yes\n", L(3),
	    "autoload [plugin:fail-c]: cannot start", NULL);
	drop_auto_dir();
}

static void
test_autoload_from_a_missing_plugin_dir_gives_the_autoload_line(void)
{
	refused_dir("no-such-dir", "; autoload\nautoload = on\n", L(2),
	    "autoload: cannot read plugin_dir ", "no-such-dir",
	    strerror(ENOENT), NULL);
}

/* ---- suite: scaling -------------------------------------------------- */

/*
 * An ini file tmpdir/NAME.ini with autoload from a plugin dir tmpdir/NAME
 * of n files, and 2n sections: for each file, a disabled one naming it
 * (so autoload skips it: the files are empty), and an instance of noop.
 */
static void
write_many(const char *name, size_t n)
{
	char dir[PATH_MAX], ini[PATH_MAX + 8], file[PATH_MAX + 32];
	char noop[PATH_MAX];
	FILE *fp;

	tmp_path(dir, sizeof dir, name);
	join(ini, sizeof ini, tmpdir, name, ".ini");
	remove_tree(dir);
	CU_ASSERT_FATAL(mkdir(dir, 0700) == 0);
	plugin_file(noop, sizeof noop, "noop");
	fp = fopen(ini, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fprintf(fp, "[milterhost]\nplugin_dir = %s\nautoload = yes\n", dir);
	for (size_t i = 0; i < n; i++) {
		join(file, sizeof file, dir, "f", "");
		snprintf(file + strlen(file), sizeof file - strlen(file),
		    "%zu.so", i);
		write_file(file, "");
		fprintf(fp, "[plugin:off%zu]\nmodule = f%zu\nenabled = no\n"
		    "[plugin:on%zu]\nmodule = %s\n", i, i, i, noop);
	}
	CU_ASSERT_FATAL(fclose(fp) == 0);
}

/*
 * Keep in *best the least CPU time yet of config_load and plugin_set_load
 * of write_many(name, n)'s file.
 */
static void
time_load(const char *name, size_t n, double *best)
{
	char ini[PATH_MAX + 8];
	struct config *conf;
	struct plugin_set *set = NULL;
	double start, t;

	join(ini, sizeof ini, tmpdir, name, ".ini");
	start = unit_cpu_seconds();
	if ((conf = config_load(ini, err, sizeof err)) != NULL)
		set = plugin_set_load(conf, err, sizeof err);
	t = unit_cpu_seconds() - start;
	if (set == NULL)
		fprintf(stderr, "\n  unexpected error: %s\n", err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(set->ninstances, n);
	plugin_set_release(set);
	config_free(conf);
	if (*best < 0 || t < *best)
		*best = t;
}

/*
 * Four times the sections and plugin files must take about four times as
 * long, not sixteen: finding a section's module, or whether a section
 * names an autoloaded file, by a scan of all modules or sections makes a
 * large config take seconds to load.  The runs of both sizes alternate
 * and the least time of each counts, so that a busy machine slows both
 * alike; 8 leaves room for noise.
 */
static void
test_load_time_grows_linearly_with_sections(void)
{
	enum { N = 400 };
	char path[PATH_MAX + 8];
	double t1 = -1, t4 = -1;

	write_many("small", N);
	write_many("large", 4 * N);
	for (int run = 0; run < 5; run++) {
		time_load("small", N, &t1);
		time_load("large", 4 * N, &t4);
	}
	if (t4 >= 8 * t1)
		fprintf(stderr, "\n  %d files: %.4f s, %d: %.4f s (x%.1f)\n",
		    N, t1, 4 * N, t4, t4 / t1);
	CU_ASSERT(t4 < 8 * t1);
	CU_ASSERT(remove_tree(tmp_path(path, sizeof path, "small")) == 0);
	CU_ASSERT(remove_tree(tmp_path(path, sizeof path, "large")) == 0);
}

/* ---- suite: descriptors ---------------------------------------------- */

/* Per instance: its id, and the order fini ran in. */
static int fini_calls;
static int fini_order[16];

static int
counted_init(const struct mh_init *init, void **state)
{
	int *id;

	for (size_t i = 0; i < init->nsettings; i++)
		if (strcmp(init->settings[i].key, "fail") == 0)
			return mh_init_error(init, "fail", "failing as asked "
			    "(%s)", init->settings[i].value);
	if ((id = malloc(sizeof *id)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	*id = atoi(init->instance);
	*state = id;
	return 0;
}

static void
counted_fini(void *state)
{
	int *id = state;

	if (fini_calls < (int)(sizeof fini_order / sizeof fini_order[0]))
		fini_order[fini_calls] = *id;
	fini_calls++;
	free(id);
}

static mh_status
counted_eom(mh_ctx *ctx)
{
	return MH_CONTINUE;
}

static const struct mh_plugin counted = {
	MH_PLUGIN_ABI,
	.name = "counted",
	.description = "counts fini calls",
	.actions = MH_ACT_ADDHDRS,
	.flags = MH_WANT_HDR_LEADSPC,
	.macros = { [MH_STAGE_CONNECT] = "j {client_addr} auth_type",
	    [MH_STAGE_EOM] = "i" },
	.init = counted_init,
	.fini = counted_fini,
	.eom = counted_eom,
};

static void
descriptor_refused(const struct mh_plugin *d, ...)
{
	struct mh_plugin out;
	va_list ap;
	bool ok;

	memset(&out, 0x5a, sizeof out);
	snprintf(err, sizeof err, "(untouched)");
	CU_ASSERT_EQUAL(plugin_check_descriptor(d, &out, err, sizeof err),
	    -1);
	va_start(ap, d);
	ok = err_has(ap);
	va_end(ap);
	if (!ok)
		fprintf(stderr, "\n  error was: %s\n", err);
	CU_ASSERT(ok);
	/* out is left alone. */
	CU_ASSERT_EQUAL(out.abi_major, 0x5a5a);
}

static void
test_good_descriptor_is_copied(void)
{
	struct mh_plugin out;

	memset(&out, 0x5a, sizeof out);
	CU_ASSERT_EQUAL_FATAL(plugin_check_descriptor(&counted, &out, err,
	    sizeof err), 0);
	CU_ASSERT_EQUAL(memcmp(&out, &counted, sizeof out), 0);
}

static void
test_descriptor_abi_is_checked(void)
{
	struct mh_plugin d = counted;

	d.abi_major = 3;
	d.abi_minor = 7;
	descriptor_refused(&d, "built for plugin ABI 3.7, this milterhost "
	    "supports " HOST_ABI, NULL);
	d = counted;
	d.abi_minor = MH_ABI_MINOR + 1;
	descriptor_refused(&d, "minor up to " XSTR(MH_ABI_MINOR), NULL);
}

static void
test_descriptor_size_is_checked(void)
{
	struct mh_plugin d = counted;

	d.size = 16;
	descriptor_refused(&d, "descriptor of 16 bytes is smaller", NULL);
	d.size = sizeof d + 8;
	descriptor_refused(&d, "is larger than ABI " HOST_ABI " allows",
	    NULL);
}

static void
test_descriptor_needs_a_name(void)
{
	struct mh_plugin d = counted;

	d.name = NULL;
	descriptor_refused(&d, "no name", NULL);
	d.name = "";
	descriptor_refused(&d, "no name", NULL);
}

static void
test_descriptor_unknown_bits_are_refused(void)
{
	struct mh_plugin d = counted;

	d.actions = MH_ACT_ADDHDRS | 0x100;
	descriptor_refused(&d, "plugin 'counted'", "unknown actions 0x100",
	    NULL);
	d = counted;
	d.flags = 0x8;
	descriptor_refused(&d, "plugin 'counted'", "unknown flags 0x8", NULL);
}

static void
test_descriptor_macros_only_where_sent(void)
{
	static const mh_stage never[] = {
		MH_STAGE_UNKNOWN, MH_STAGE_HEADER, MH_STAGE_BODY,
		MH_STAGE_ABORT, MH_STAGE_CLOSE
	};
	static const char *const names[] = {
		"stage unknown", "stage header", "stage body", "stage abort",
		"stage close"
	};
	struct mh_plugin d;
	struct mh_plugin out;

	for (size_t i = 0; i < sizeof never / sizeof never[0]; i++) {
		d = counted;
		d.macros[never[i]] = "j";
		descriptor_refused(&d, "plugin 'counted'", names[i], NULL);
	}
	d = counted;
	for (int st = 0; st < MH_STAGE_COUNT; st++)
		d.macros[st] = NULL;
	d.macros[MH_STAGE_HELO] = "{tls_version}";
	d.macros[MH_STAGE_ENVFROM] = "  {auth_authen}  mail_addr ";
	d.macros[MH_STAGE_ENVRCPT] = "{rcpt_addr}";
	d.macros[MH_STAGE_DATA] = "";
	d.macros[MH_STAGE_EOH] = "i";
	CU_ASSERT_EQUAL(plugin_check_descriptor(&d, &out, err, sizeof err), 0);
}

static void
test_descriptor_macro_names_are_checked(void)
{
	static const char *const bad[] = {
		"{bad-name}", "{}", "{j", "j}", "a.b", "{{x}}", "a,b"
	};
	struct mh_plugin d = counted;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		d.macros[MH_STAGE_ENVFROM] = bad[i];
		descriptor_refused(&d, "plugin 'counted'", "bad macro name",
		    bad[i], "stage envfrom", NULL);
	}
}

static void
test_fini_without_init_is_fine(void)
{
	struct mh_plugin d = counted, out;

	d.init = NULL;
	CU_ASSERT_EQUAL(plugin_check_descriptor(&d, &out, err, sizeof err), 0);
}

/* ---- suite: descriptors read from files ------------------------------ */

static void
test_elfdesc_reads_the_version_fields(void)
{
	struct elfdesc_version v = { 0, 0, 0 };
	char path[PATH_MAX];

	CU_ASSERT_EQUAL_FATAL(elfdesc_read(plugin_file(path, sizeof path,
	    "noop"), MH_PLUGIN_SYMBOL, &v, err, sizeof err), 0);
	CU_ASSERT_EQUAL(v.abi_major, MH_ABI_MAJOR);
	CU_ASSERT_EQUAL(v.abi_minor, MH_ABI_MINOR);
	CU_ASSERT_EQUAL(v.size, sizeof(struct mh_plugin));
	CU_ASSERT_EQUAL_FATAL(elfdesc_read(plugin_file(path, sizeof path,
	    "badabi"), MH_PLUGIN_SYMBOL, &v, err, sizeof err), 0);
	CU_ASSERT_EQUAL(v.abi_major, MH_ABI_MAJOR + 1);
	CU_ASSERT_EQUAL(v.abi_minor, 0);
}

/* elfdesc_read fails with a reason containing want. */
static void
elfdesc_fails(const char *path, const char *symbol, const char *want)
{
	struct elfdesc_version v = { 7, 7, 7 };

	snprintf(err, sizeof err, "(untouched)");
	CU_ASSERT_EQUAL(elfdesc_read(path, symbol, &v, err, sizeof err), -1);
	if (strstr(err, want) == NULL)
		fprintf(stderr, "\n  %s: error lacks \"%s\": %s\n", path, want,
		    err);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, want));
	CU_ASSERT_EQUAL(v.abi_major, 7);
}

static void
test_elfdesc_refuses_what_it_cannot_read(void)
{
	char path[PATH_MAX], junk[PATH_MAX];

	elfdesc_fails(plugin_file(path, sizeof path, "nodesc"),
	    MH_PLUGIN_SYMBOL, "no milterhost_plugin in the dynamic symbol "
	    "table");
	/* A function is no descriptor. */
	elfdesc_fails(path, "nodesc_answer", "no nodesc_answer in the");
	elfdesc_fails(tmp_path(junk, sizeof junk, "none.so"),
	    MH_PLUGIN_SYMBOL, "cannot open: ");
	write_file(junk, "this is not an ELF file, but long enough to be "
	    "read as the header of one\n");
	elfdesc_fails(junk, MH_PLUGIN_SYMBOL, "not an ELF file");
	write_file(junk, "\177ELF");
	elfdesc_fails(junk, MH_PLUGIN_SYMBOL, "not an ELF file (too short)");
	elfdesc_fails(tmpdir, MH_PLUGIN_SYMBOL, "not a file");
	CU_ASSERT(unlink(junk) == 0);
}

/* The first len bytes of from, as to. */
static void
copy_head(const char *from, const char *to, long len)
{
	char *buf = malloc((size_t)len + 1);
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");

	CU_ASSERT_FATAL(buf != NULL && in != NULL && out != NULL);
	CU_ASSERT_FATAL(fread(buf, 1, (size_t)len, in) == (size_t)len);
	CU_ASSERT_FATAL(fwrite(buf, 1, (size_t)len, out) == (size_t)len);
	fclose(in);
	CU_ASSERT_FATAL(fclose(out) == 0);
	free(buf);
}

/*
 * A cut-off plugin is refused, whatever is missing, without reading past
 * the end of the file: the section headers, which the reader needs, come
 * last.
 */
static void
test_elfdesc_refuses_a_truncated_file(void)
{
	char path[PATH_MAX], cut[PATH_MAX];
	struct elfdesc_version v;
	struct stat st;

	plugin_file(path, sizeof path, "noop");
	tmp_path(cut, sizeof cut, "cut.so");
	CU_ASSERT_FATAL(stat(path, &st) == 0);
	for (long den = 64; den >= 1; den /= 2) {
		long len = (long)st.st_size - (long)st.st_size / den;

		copy_head(path, cut, len > 0 ? len : 1);
		snprintf(err, sizeof err, "(untouched)");
		CU_ASSERT_EQUAL(elfdesc_read(cut, MH_PLUGIN_SYMBOL, &v, err,
		    sizeof err), -1);
		CU_ASSERT_STRING_NOT_EQUAL(err, "(untouched)");
	}
	CU_ASSERT(unlink(cut) == 0);
}

/* ---- suite: sets built by hand ---------------------------------------- */

static void
test_plugin_set_add_inits_and_appends(void)
{
	static const struct mh_setting settings[] = {
		{ "colour", "blue" }, { "colour", "red" }
	};
	struct plugin_set *set = plugin_set_new();
	const struct instance *in;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	fini_calls = 0;
	CU_ASSERT_EQUAL_FATAL(plugin_set_add(set, "1", &counted, settings, 2,
	    ON_ERROR_CONTINUE, true, err, sizeof err), 0);
	CU_ASSERT_EQUAL_FATAL(plugin_set_add(set, "2", &counted, NULL, 0,
	    ON_ERROR_REJECT, false, err, sizeof err), 0);
	CU_ASSERT_EQUAL_FATAL(set->ninstances, 2);
	in = &set->instances[0];
	CU_ASSERT_STRING_EQUAL(in->name, "1");
	CU_ASSERT_EQUAL(*(int *)in->state, 1);
	CU_ASSERT_EQUAL(in->on_error, ON_ERROR_CONTINUE);
	CU_ASSERT_TRUE(in->dry_run);
	CU_ASSERT_EQUAL(in->index, 0);
	CU_ASSERT_PTR_NULL(in->module->handle);
	CU_ASSERT_STRING_EQUAL(in->module->path, "(builtin)");
	CU_ASSERT_PTR_EQUAL(in->desc, &in->module->desc);
	/* A copy of the descriptor, not the descriptor itself. */
	CU_ASSERT_PTR_NOT_EQUAL(in->desc, &counted);
	CU_ASSERT_PTR_EQUAL(in->desc->eom, counted_eom);
	in = &set->instances[1];
	CU_ASSERT_EQUAL(in->index, 1);
	CU_ASSERT_EQUAL(in->on_error, ON_ERROR_REJECT);
	CU_ASSERT_EQUAL(fini_calls, 0);
	plugin_set_release(set);
	CU_ASSERT_EQUAL(fini_calls, 2);
}

static void
test_plugin_set_add_failure_leaves_set_unchanged(void)
{
	static const struct mh_setting fail[] = { { "fail", "now" } };
	struct plugin_set *set = plugin_set_new();
	struct mh_plugin bad = counted;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	fini_calls = 0;
	CU_ASSERT_EQUAL(plugin_set_add(set, "1", &counted, NULL, 0,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), 0);
	CU_ASSERT_EQUAL(plugin_set_add(set, "f", &counted, fail, 1,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "[plugin:f] fail: failing as asked (now)");
	bad.abi_major = 2;
	CU_ASSERT_EQUAL(plugin_set_add(set, "b", &bad, NULL, 0,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "[plugin:b] built for plugin ABI "
	    "2."));
	CU_ASSERT_EQUAL(set->ninstances, 1);
	CU_ASSERT_EQUAL(set->nmodules, 1);
	plugin_set_release(set);
	/* The failed init has nothing to fini. */
	CU_ASSERT_EQUAL(fini_calls, 1);
}

static void
test_last_release_finis_each_instance_once_in_reverse(void)
{
	static const struct mh_setting fail[] = { { "fail", "yes" } };
	struct plugin_set *set = plugin_set_new();
	const char *names[] = { "1", "2", "3" };

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	fini_calls = 0;
	for (size_t i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(plugin_set_add(set, names[i], &counted, NULL,
		    0, ON_ERROR_TEMPFAIL, false, err, sizeof err), 0);
	CU_ASSERT_EQUAL(plugin_set_add(set, "4", &counted, fail, 1,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
	CU_ASSERT_PTR_EQUAL(plugin_set_retain(set), set);
	CU_ASSERT_PTR_EQUAL(plugin_set_retain(set), set);
	CU_ASSERT_EQUAL(set->refs, 3);
	plugin_set_release(set);
	plugin_set_release(set);
	CU_ASSERT_EQUAL(fini_calls, 0);
	plugin_set_release(set);
	CU_ASSERT_EQUAL_FATAL(fini_calls, 3);
	CU_ASSERT_EQUAL(fini_order[0], 3);
	CU_ASSERT_EQUAL(fini_order[1], 2);
	CU_ASSERT_EQUAL(fini_order[2], 1);
}

static void
test_release_of_null_is_harmless(void)
{
	plugin_set_release(NULL);
	CU_PASS("no crash");
}

/* ---- suite: host functions for init ---------------------------------- */

static void
test_parse_bool_takes_the_usual_words(void)
{
	static const char *const yes[] = { "yes", "YES", "true", "True",
	    "on", "On", "1" };
	static const char *const no[] = { "no", "No", "false", "FALSE", "off",
	    "OFF", "0" };
	static const char *const neither[] = { "", "2", "yess", "y", "n",
	    "ja", " yes", "yes ", "01" };
	int v;

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		v = -5;
		CU_ASSERT_EQUAL(mh_parse_bool(yes[i], &v), 0);
		CU_ASSERT_EQUAL(v, 1);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
		v = -5;
		CU_ASSERT_EQUAL(mh_parse_bool(no[i], &v), 0);
		CU_ASSERT_EQUAL(v, 0);
	}
	for (size_t i = 0; i < sizeof neither / sizeof neither[0]; i++) {
		v = -5;
		CU_ASSERT_EQUAL(mh_parse_bool(neither[i], &v), -1);
		CU_ASSERT_EQUAL(v, -5);
	}
	CU_ASSERT_EQUAL(mh_parse_bool(NULL, &v), -1);
}

static int
twice_init(const struct mh_init *init, void **state)
{
	mh_init_error(init, "inner", "the real cause %d", 42);
	return mh_init_error(init, "outer", "a vaguer summary");
}

static void
test_init_error_keeps_the_first_report(void)
{
	struct mh_plugin d = counted;
	struct plugin_set *set = plugin_set_new();

	d.init = twice_init;
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_EQUAL(plugin_set_add(set, "t", &d, NULL, 0,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
	CU_ASSERT_STRING_EQUAL(err, "[plugin:t] inner: the real cause 42");
	plugin_set_release(set);
}

/*
 * A plugin logging with a NULL ctx from init and fini (through mh_log and
 * mh_vlog), and from a thread of its own that init starts and joins: the
 * lines of init and fini are the instance's, the thread's are not.  A
 * setting "fail" makes init log and fail.
 */
static void *
initlog_thread(void *arg)
{
	mh_log(NULL, MH_LOG_NOTICE, "from a thread of %s", (const char *)arg);
	return NULL;
}

static void
initlog_vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
initlog_vlog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mh_vlog(NULL, MH_LOG_NOTICE, fmt, ap);
	va_end(ap);
}

static int
initlog_init(const struct mh_init *init, void **state)
{
	pthread_t t;

	mh_log(NULL, MH_LOG_NOTICE, "init of %s", init->instance);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, initlog_thread,
	    (void *)init->instance), 0);
	pthread_join(t, NULL);
	if (init->nsettings > 0) {
		mh_log(NULL, MH_LOG_ERR, "failing");
		return -1;
	}
	*state = NULL;
	return 0;
}

static void
initlog_fini(void *state)
{
	initlog_vlog("fini (%s)", "vlog");
}

static const struct mh_plugin initlog = {
	MH_PLUGIN_ABI,
	.name = "initlog",
	.description = "logs from init and fini",
	.init = initlog_init,
	.fini = initlog_fini,
	.eom = counted_eom,
};

static void
test_init_and_fini_log_tagged_with_the_instance(void)
{
	static const struct mh_setting fail[] = { { "fail", "yes" } };
	static char log[4096];
	struct plugin_set *set = plugin_set_new();

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	unit_capture_start();
	CU_ASSERT_EQUAL(plugin_set_add(set, "il", &initlog, NULL, 0,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), 0);
	CU_ASSERT_EQUAL(plugin_set_add(set, "bad", &initlog, fail, 1,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
	/* Between init and fini: the plain text, as before. */
	mh_log(NULL, MH_LOG_NOTICE, "between");
	plugin_set_release(set);
	mh_log(NULL, MH_LOG_NOTICE, "after");
	snprintf(log, sizeof log, "%s", unit_capture_end(true));
	CU_ASSERT_STRING_EQUAL(log,
	    "milterhost: notice: [il] init of il\n"
	    "milterhost: notice: from a thread of il\n"
	    "milterhost: notice: [bad] init of bad\n"
	    "milterhost: notice: from a thread of bad\n"
	    "milterhost: error: [bad] failing\n"
	    "milterhost: notice: between\n"
	    "milterhost: notice: [il] fini (vlog)\n"
	    "milterhost: notice: after\n");
}

/*
 * A plugin's init declares stages unused (ABI 1.3): the loaded instance
 * does not take them, though its descriptor has every callback; eom
 * cannot be unused, and the load is refused at the section's line.
 */
static void
test_unused_stages_declared_by_a_loaded_plugin(void)
{
	struct plugin_set *set = load("[plugin:r]\nmodule = recorder\n"
	    "unused = envrcpt\nunused = body\n");
	const struct instance *in;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	in = &set->instances[0];
	CU_ASSERT_PTR_NOT_NULL(in->desc->envrcpt);
	CU_ASSERT_PTR_NOT_NULL(in->desc->body);
	CU_ASSERT_EQUAL(in->unused,
	    (1U << MH_STAGE_ENVRCPT) | (1U << MH_STAGE_BODY));
	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++) {
		bool want = st != MH_STAGE_ENVRCPT && st != MH_STAGE_BODY;

		if (instance_takes(in, st) != want)
			fprintf(stderr, "\n  stage %d: takes %d", (int)st,
			    !want);
		CU_ASSERT_EQUAL(instance_takes(in, st), want);
	}
	unload(set);
	refused("[plugin:r]\nmodule = recorder\nunused = eom\n", L(1),
	    "[plugin:r] mh_declare_unused: stage eom: only connect, helo, "
	    "envfrom, envrcpt, data, unknown, header, eoh and body can be "
	    "unused");
}

/* ---- suite: host functions exported to plugins ------------------------ */

static const char *
queue_id_macro(void *arg, const char *name)
{
	return strcmp(name, "i") == 0 ? "4XyZ1" : NULL;
}

static void
count_mods(const struct mod_list *mods, int *count, size_t ncount)
{
	for (size_t i = 0; i < mods->n; i++)
		if ((size_t)mods->items[i]->type < ncount)
			count[mods->items[i]->type]++;
}

static void
run_allapi_session(struct plugin_set *set)
{
	static const int want[] = {
		[MOD_ADD_HEADER] = 1, [MOD_INSERT_HEADER] = 1,
		[MOD_CHANGE_HEADER] = 2, [MOD_REPLACE_BODY] = 1,
		[MOD_ADD_RCPT] = 2, [MOD_DELETE_RCPT] = 1,
		[MOD_CHANGE_FROM] = 1, [MOD_QUARANTINE] = 1,
	};
	int count[sizeof want / sizeof want[0]] = { 0 };
	struct chain_io io = { .macro = queue_id_macro };
	struct negotiation n = { .mta_actions = 0x1FF };
	char from[] = "<from@example.org>", bad[] = "<bad@example.org>";
	char good[] = "<old@example.org>";
	char *from_argv[] = { from, NULL }, *bad_argv[] = { bad, NULL };
	char *good_argv[] = { good, NULL };
	const struct mod_list *mods = NULL;
	struct session *s = session_new(set, &io);
	struct verdict v;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	chain_negotiate(s, &n);
	CU_ASSERT_EQUAL(chain_connect(s, "localhost", NULL).status,
	    MH_CONTINUE);
	CU_ASSERT_EQUAL(chain_helo(s, "client.example.org").status,
	    MH_CONTINUE);
	CU_ASSERT_EQUAL(chain_envfrom(s, from_argv).status, MH_CONTINUE);
	v = chain_envrcpt(s, bad_argv);
	CU_ASSERT_EQUAL(v.status, MH_REJECT);
	CU_ASSERT_PTR_NOT_NULL_FATAL(v.reply);
	CU_ASSERT_STRING_EQUAL(v.reply->rcode, "550");
	CU_ASSERT_EQUAL_FATAL(v.reply->nlines, 2);
	CU_ASSERT_STRING_EQUAL(v.reply->lines[0], "rejected by allapi");
	CU_ASSERT_EQUAL(chain_envrcpt(s, good_argv).status, MH_CONTINUE);
	CU_ASSERT_EQUAL(chain_data(s).status, MH_CONTINUE);
	CU_ASSERT_EQUAL(chain_header(s, "Subject", "hi").status, MH_CONTINUE);
	CU_ASSERT_EQUAL(chain_eoh(s).status, MH_CONTINUE);
	CU_ASSERT_EQUAL(chain_body(s, (const unsigned char *)"hello\r\n",
	    7).status, MH_CONTINUE);
	v = chain_eom(s, &mods);
	CU_ASSERT_EQUAL(v.status, MH_CONTINUE);
	CU_ASSERT_PTR_NOT_NULL_FATAL(mods);
	count_mods(mods, count, sizeof count / sizeof count[0]);
	for (size_t t = 0; t < sizeof want / sizeof want[0]; t++) {
		if (count[t] != want[t])
			fprintf(stderr, "\n  %d of %s, expected %d", count[t],
			    mod_type_name((enum mod_type)t), want[t]);
		CU_ASSERT_EQUAL(count[t], want[t]);
	}
	chain_close(s);
	session_free(s);
}

static void
test_plugin_using_every_host_function_loads_and_runs(void)
{
	struct plugin_set *set = load("[plugin:all]\nmodule = allapi\n"
	    "changes = yes\nreject_rcpt = <bad@example.org>\n"
	    "on_error = reject\n");

	struct kv_store *kv = kv_memory_open(KV_MEMORY_MIN, KV_MEMORY_SHARDS,
	    NULL);
	char buf[8];
	size_t len = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
	CU_ASSERT_STRING_EQUAL(set->instances[0].desc->name, "allapi");
	CU_ASSERT_STRING_EQUAL(set->instances[0].kv_ns, "allapi");
	set->kv = kv;
	run_allapi_session(set);
	unload(set);
	/* Its one message counted under its namespace. */
	CU_ASSERT_EQUAL(kv_get(kv, "allapi:messages", buf, sizeof buf, &len),
	    MH_OK);
	CU_ASSERT_EQUAL(len, 1);
	CU_ASSERT_EQUAL(buf[0], '1');
	kv_close(kv);
}

static void
test_allapi_init_uses_parse_bool(void)
{
	refused("[plugin:all]\nmodule = allapi\nchanges = maybe\n", L(3),
	    "[plugin:all] changes: expected yes or no, got 'maybe'");
}

/* ---- suite: plugins built for ABI 1.0 --------------------------------- */

/*
 * abi10.so is tests/plugins/abi10.c built against the plugin.h of ABI 1.0
 * as released (tests/abi/milterhost-1.0), abi10_11.so, abi10_12.so and
 * abi10_13.so against those of 1.1, 1.2 and 1.3, abi10_now.so the same
 * source built against the current one.  When later minors extend the ABI, a plugin
 * built for an older one must keep loading and doing what it did: each
 * build runs through one session, and the transcripts of what the engine
 * got from them (verdicts, replies, the changes at eom, the plugin's log
 * lines) must equal each other and what 1.0 did.
 */

/* The size of the ABI 1.0 descriptor: up to and with close. */
#define ABI10_DESC_SIZE (offsetof(struct mh_plugin, close) + \
	sizeof(((struct mh_plugin *)0)->close))

static char transcript[16384];

static void
say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	size_t n = strlen(transcript);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(transcript + n, sizeof transcript - n, fmt, ap);
	va_end(ap);
}

static const char *
status_label(mh_status st)
{
	static const char *const names[] = { "CONTINUE", "REJECT", "DISCARD",
	    "ACCEPT", "TEMPFAIL", "SKIP", "FAIL" };

	return (size_t)st < sizeof names / sizeof names[0] ? names[st] : "?";
}

static void
say_verdict(const char *event, struct verdict v)
{
	say("%s: %s", event, status_label(v.status));
	if (v.reply != NULL) {
		say(" %s %s", v.reply->rcode, v.reply->xcode);
		for (size_t i = 0; i < v.reply->nlines; i++)
			say(" |%s", v.reply->lines[i]);
	}
	say("\n");
}

static void
say_mods(const struct mod_list *mods)
{
	for (size_t i = 0; mods != NULL && i < mods->n; i++) {
		const struct mod *m = mods->items[i];

		say("  %s %d %s %s %s ", mod_type_name(m->type), m->index,
		    m->name != NULL ? m->name : "-",
		    m->value != NULL ? m->value : "(null)",
		    m->args != NULL ? m->args : "-");
		for (size_t j = 0; m->body != NULL && j < m->len; j++) {
			if (m->body[j] == '\r')
				say("\\r");
			else if (m->body[j] == '\n')
				say("\\n");
			else
				say("%c", m->body[j]);
		}
		say("%s\n", m->body != NULL ? "" : "-");
	}
}

/* The descriptor's fields of ABI 1.0 but its version and size. */
static void
say_descriptor(const struct mh_plugin *d)
{
	const void *const callbacks[] = { (const void *)d->init,
	    (const void *)d->fini, (const void *)d->connect,
	    (const void *)d->helo, (const void *)d->envfrom,
	    (const void *)d->envrcpt, (const void *)d->data,
	    (const void *)d->unknown, (const void *)d->header,
	    (const void *)d->eoh, (const void *)d->body, (const void *)d->eom,
	    (const void *)d->abort, (const void *)d->close };

	say("%s %s (%s) actions 0x%lx flags 0x%lx list_keys %s\nmacros",
	    d->name, d->version, d->description, d->actions, d->flags,
	    d->list_keys != NULL ? d->list_keys : "-");
	for (int st = 0; st < MH_STAGE_COUNT; st++)
		say(" %s", d->macros[st] != NULL ? d->macros[st] : "-");
	say("\ncallbacks");
	for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++)
		say(" %d", callbacks[i] != NULL);
	say("\n");
}

/*
 * The plugin's log lines in log, each from its text on (after "[v] "): the
 * host's prefix is not what the test is about.  Other lines stay whole,
 * but for the host's line per message (summary.c), whose times vary.
 */
static void
say_log(const char *log)
{
	while (*log != '\0') {
		size_t len = strcspn(log, "\n");
		const char *text = strstr(log, "[v] ");
		const char *summary = strstr(log, ": message: client=");

		if (summary != NULL && summary < log + len) {
			log += len;
			log += *log == '\n';
			continue;
		}
		if (text != NULL && text < log + len) {
			len -= (size_t)(text + 4 - log);
			log = text + 4;
		}
		say("%.*s\n", (int)len, log);
		log += len;
		log += *log == '\n';
	}
}

static const char *
abi10_macro(void *arg, const char *name)
{
	static const char *const table[][2] = {
		{ "j", "mx.example.org" }, { "{client_addr}", "192.0.2.7" },
		{ "{mail_addr}", "a@example.org" }, { "i", "QID10" },
	};

	for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
		if (strcmp(name, table[i][0]) == 0)
			return table[i][1];
	return NULL;
}

/* One message: envfrom, the recipients, data, headers, body, eom. */
static void
abi10_message(struct session *s, char **from, char *const *rcpts,
	      const char *const (*headers)[2])
{
	static const unsigned char body[] = "line one\r\nline two\r\n";
	const struct mod_list *mods = NULL;
	char *argv[2] = { NULL, NULL };
	char event[160];

	say_verdict("envfrom", chain_envfrom(s, from));
	for (size_t i = 0; rcpts[i] != NULL; i++) {
		argv[0] = rcpts[i];
		snprintf(event, sizeof event, "envrcpt %s", rcpts[i]);
		say_verdict(event, chain_envrcpt(s, argv));
	}
	say_verdict("data", chain_data(s));
	for (size_t i = 0; headers[i][0] != NULL; i++) {
		snprintf(event, sizeof event, "header %s", headers[i][0]);
		say_verdict(event, chain_header(s, headers[i][0],
		    headers[i][1]));
	}
	say_verdict("eoh", chain_eoh(s));
	say_verdict("body", chain_body(s, body, 10));
	say_verdict("body", chain_body(s, body + 10, sizeof body - 11));
	say_verdict("eom", chain_eom(s, &mods));
	say_mods(mods);
}

/* A connection of three messages: changed, rejected at eom, aborted. */
static void
abi10_session(struct plugin_set *set)
{
	static const char *const headers1[][2] = { { "Subject", "hello" },
	    { "X-Drop", "x" }, { "X-Old", "y" }, { NULL, NULL } };
	static const char *const headers2[][2] = { { "Subject", "reject me" },
	    { NULL, NULL } };
	char from[] = "<a@example.org>", size[] = "SIZE=100";
	char bad[] = "<bad@example.org>", busy[] = "<busy@example.org>";
	char ok[] = "<ok@example.org>", ok2[] = "<ok2@example.org>";
	char *from_argv[] = { from, size, NULL };
	char *rcpts1[] = { bad, busy, ok, ok2, NULL }, *rcpts2[] = { ok, NULL };
	struct chain_io io = { .macro = abi10_macro };
	struct negotiation n = { .mta_actions = 0x1FF, .mta_steps = 0x1FFFFF };
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_port = htons(4711), .sin_addr.s_addr = htonl(0xc0000207) };
	struct session *s = session_new(set, &io);

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	chain_negotiate(s, &n);
	say("negotiated actions 0x%lx\n", n.actions);
	say_verdict("connect", chain_connect(s, "client.example.org",
	    (struct sockaddr *)&sin));
	say_verdict("helo", chain_helo(s, "client.example.org"));
	say_verdict("unknown", chain_unknown(s, "XFOO bar"));
	abi10_message(s, from_argv, rcpts1, headers1);
	abi10_message(s, from_argv, rcpts2, headers2);
	say_verdict("envfrom", chain_envfrom(s, from_argv));
	rcpts1[0] = ok;
	rcpts1[1] = NULL;
	say_verdict("envrcpt", chain_envrcpt(s, rcpts1));
	chain_abort(s);
	chain_close(s);
	session_free(s);
}

/*
 * Load module as instance v, check its descriptor's version and size, run
 * the session; the transcript, with the log lines, goes to out.
 */
static void
abi10_run(const char *module, unsigned minor, size_t size, char *out,
	  size_t outlen)
{
	char text[256];
	const struct mh_plugin *desc;
	struct plugin_set *set;
	const char *log;

	snprintf(text, sizeof text, "[plugin:v]\nmodule = %s\n"
	    "reject_rcpt = <bad@example.org>\n"
	    "tempfail_rcpt = <busy@example.org>\nchanges = yes\n", module);
	set = load(text);
	CU_ASSERT_PTR_NOT_NULL_FATAL(set);
	desc = set->instances[0].desc;
	CU_ASSERT_EQUAL(desc->abi_minor, minor);
	CU_ASSERT_EQUAL(desc->size, size);
	/* What a smaller descriptor lacks reads as 0 or NULL. */
	for (size_t i = size; i < sizeof *desc; i++)
		CU_ASSERT_EQUAL(((const unsigned char *)desc)[i], 0);
	transcript[0] = '\0';
	say_descriptor(desc);
	unit_capture_start();
	abi10_session(set);
	log = unit_capture_end(false);
	say("--- log\n");
	say_log(log);
	snprintf(out, outlen, "%s", transcript);
	unload(set);
}

/* What the 1.0 build of abi10 does in abi10_session. */
static const char abi10_expected[] =
    "abi10 1.0 (written to plugin ABI 1.0) actions 0x7f flags 0x0 "
    "list_keys -\n"
    "macros j {client_addr} - {mail_addr} i - - - - - - i - -\n"
    "callbacks 1 1 1 1 1 1 1 1 1 1 1 1 1 1\n"
    "negotiated actions 0x17f\n"
    "connect: CONTINUE\n"
    "helo: CONTINUE\n"
    "unknown: CONTINUE\n"
    "envfrom: CONTINUE\n"
    "envrcpt <bad@example.org>: REJECT 550 5.7.1 |no such user here\n"
    "envrcpt <busy@example.org>: TEMPFAIL 451 4.7.1 |mailbox busy |try "
    "again later\n"
    "envrcpt <ok@example.org>: CONTINUE\n"
    "envrcpt <ok2@example.org>: CONTINUE\n"
    "data: CONTINUE\n"
    "header Subject: CONTINUE\n"
    "header X-Drop: CONTINUE\n"
    "header X-Old: CONTINUE\n"
    "eoh: CONTINUE\n"
    "body: CONTINUE\n"
    "body: CONTINUE\n"
    "eom: CONTINUE\n"
    "  add header 0 X-Abi10 rcpts=2 bytes=20 - -\n"
    "  insert header 0 X-Abi10-Top first - -\n"
    "  change header 1 Subject [abi10] hello - -\n"
    "  change header 1 X-Drop (null) - -\n"
    "  change header 1 X-Old (null) - -\n"
    "  replace body 0 - (null) - body replaced by abi10\\r\\n\n"
    "  add recipient 0 - <copy@example.org> - -\n"
    "  delete recipient 0 - <ok@example.org> - -\n"
    "  change sender 0 - <abi10@example.org> - -\n"
    "  quarantine 0 - held by abi10 - -\n"
    "envfrom: CONTINUE\n"
    "envrcpt <ok@example.org>: CONTINUE\n"
    "data: CONTINUE\n"
    "header Subject: CONTINUE\n"
    "eoh: CONTINUE\n"
    "body: CONTINUE\n"
    "body: CONTINUE\n"
    "eom: REJECT 554 5.7.0 |rejected by abi10 |subject was: reject me\n"
    "envfrom: CONTINUE\n"
    "envrcpt: CONTINUE\n"
    "--- log\n"
    "connect from client.example.org [192.0.2.7] to mx.example.org, "
    "family 2\n"
    "helo client.example.org at stage 1\n"
    "unknown command XFOO bar\n"
    "message 1 from <a@example.org> (SIZE=100), mail_addr "
    "a@example.org, queue id QID10\n"
    "3 headers\n"
    "eom of v: 2 rcpts, 20 bytes, changes: success, queue id QID10\n"
    "message 2 from <a@example.org> (SIZE=100), mail_addr "
    "a@example.org, queue id QID10\n"
    "1 headers\n"
    "eom of v: 1 rcpts, 20 bytes, changes: success, queue id QID10\n"
    "message 3 from <a@example.org> (SIZE=100), mail_addr "
    "a@example.org, queue id QID10\n"
    "abort after 1 rcpts\n"
    "close after 3 messages\n";

static void
test_plugin_built_for_1_0_behaves_as_built_now(void)
{
	static char old[32768], now[32768], v11[32768], v12[32768];
	static char v13[32768];

	abi10_run("abi10", 0, ABI10_DESC_SIZE, old, sizeof old);
	/* Built against the 1.1 to 1.3 headers: no later minor added a
	 * descriptor field. */
	abi10_run("abi10_11", 1, sizeof(struct mh_plugin), v11, sizeof v11);
	if (strcmp(old, v11) != 0)
		fprintf(stderr, "\n  built for 1.0:\n%s\n  built for 1.1:\n%s\n",
		    old, v11);
	CU_ASSERT_STRING_EQUAL(old, v11);
	abi10_run("abi10_12", 2, sizeof(struct mh_plugin), v12, sizeof v12);
	if (strcmp(old, v12) != 0)
		fprintf(stderr, "\n  built for 1.0:\n%s\n  built for 1.2:\n%s\n",
		    old, v12);
	CU_ASSERT_STRING_EQUAL(old, v12);
	abi10_run("abi10_13", 3, sizeof(struct mh_plugin), v13, sizeof v13);
	if (strcmp(old, v13) != 0)
		fprintf(stderr, "\n  built for 1.0:\n%s\n  built for 1.3:\n%s\n",
		    old, v13);
	CU_ASSERT_STRING_EQUAL(old, v13);
	abi10_run("abi10_now", MH_ABI_MINOR, sizeof(struct mh_plugin), now,
	    sizeof now);
	if (strcmp(old, now) != 0)
		fprintf(stderr, "\n  built for 1.0:\n%s\n  built now:\n%s\n",
		    old, now);
	CU_ASSERT_STRING_EQUAL(old, now);
	if (strcmp(old, abi10_expected) != 0)
		fprintf(stderr, "\n  built for 1.0:\n%s\n  expected:\n%s\n",
		    old, abi10_expected);
	CU_ASSERT_STRING_EQUAL(old, abi10_expected);
}

/* ---- main ------------------------------------------------------------- */

static const struct unit_test modules_tests[] = {
	TEST(test_module_name_is_a_file_in_plugin_dir),
	TEST(test_module_name_may_end_in_so),
	TEST(test_absolute_module_path_ignores_plugin_dir),
	TEST(test_instances_of_one_module_share_it),
	TEST(test_disabled_instance_is_not_loaded),
	TEST(test_host_keys_go_to_the_instance_not_to_init),
	TEST(test_instance_inherits_host_on_error),
	TEST(test_no_sections_give_an_empty_set),
	TEST_END,
};

static const struct unit_test refusal_tests[] = {
	TEST(test_missing_module_file_is_refused),
	TEST(test_file_that_is_no_shared_object_is_refused),
	TEST(test_shared_object_without_descriptor_is_refused),
	TEST(test_other_major_abi_is_refused_naming_both),
	TEST(test_newer_minor_abi_is_refused_naming_both),
	TEST(test_newer_minor_is_refused_for_its_version_not_its_symbols),
	TEST(test_current_minor_with_unknown_symbol_gets_the_dlopen_error),
	TEST(test_macros_at_header_stage_are_refused),
	TEST(test_refusal_after_loaded_instances_unloads_them),
	TEST(test_relative_path_with_slash_is_refused),
	TEST_END,
};

static const struct unit_test init_tests[] = {
	TEST(test_init_error_names_the_key_and_its_line),
	TEST(test_init_error_without_key_gives_section_line),
	TEST(test_init_failure_without_message_says_init_failed),
	TEST(test_unknown_key_is_refused_by_the_plugin),
	TEST(test_init_gets_settings_in_file_order),
	TEST(test_init_succeeding_with_null_state),
	TEST_END,
};

static const struct unit_test repeat_tests[] = {
	TEST(test_key_given_twice_is_refused),
	TEST(test_continued_key_is_refused),
	TEST(test_list_key_may_be_given_twice),
	TEST(test_list_key_continuation_lines_are_values),
	TEST(test_empty_list_head_is_not_a_value),
	TEST_END,
};

static const struct unit_test trust_tests[] = {
	TEST(test_plugin_others_could_replace_is_refused),
	TEST_END,
};

static const struct unit_test autoload_tests[] = {
	TEST(test_autoload_follows_file_name_order),
	TEST(test_autoload_comes_after_listed_and_skips_their_modules),
	TEST(test_autoload_skips_module_of_disabled_section),
	TEST(test_autoload_refuses_a_bad_file),
	TEST(test_autoload_refuses_a_name_taken_by_a_section),
	TEST(test_autoload_init_error_gives_the_autoload_line),
	TEST(test_autoload_from_a_missing_plugin_dir_gives_the_autoload_line),
	TEST_END,
};

static const struct unit_test scaling_tests[] = {
	TEST(test_load_time_grows_linearly_with_sections),
	TEST_END,
};

static const struct unit_test descriptor_tests[] = {
	TEST(test_good_descriptor_is_copied),
	TEST(test_descriptor_abi_is_checked),
	TEST(test_descriptor_size_is_checked),
	TEST(test_descriptor_needs_a_name),
	TEST(test_descriptor_unknown_bits_are_refused),
	TEST(test_descriptor_macros_only_where_sent),
	TEST(test_descriptor_macro_names_are_checked),
	TEST(test_fini_without_init_is_fine),
	TEST_END,
};

static const struct unit_test elfdesc_tests[] = {
	TEST(test_elfdesc_reads_the_version_fields),
	TEST(test_elfdesc_refuses_what_it_cannot_read),
	TEST(test_elfdesc_refuses_a_truncated_file),
	TEST_END,
};

static const struct unit_test set_tests[] = {
	TEST(test_plugin_set_add_inits_and_appends),
	TEST(test_plugin_set_add_failure_leaves_set_unchanged),
	TEST(test_last_release_finis_each_instance_once_in_reverse),
	TEST(test_release_of_null_is_harmless),
	TEST_END,
};

static const struct unit_test init_api_tests[] = {
	TEST(test_parse_bool_takes_the_usual_words),
	TEST(test_init_error_keeps_the_first_report),
	TEST(test_init_and_fini_log_tagged_with_the_instance),
	TEST(test_unused_stages_declared_by_a_loaded_plugin),
	TEST_END,
};

static const struct unit_test export_tests[] = {
	TEST(test_plugin_using_every_host_function_loads_and_runs),
	TEST(test_allapi_init_uses_parse_bool),
	TEST_END,
};

static const struct unit_test abi10_tests[] = {
	TEST(test_plugin_built_for_1_0_behaves_as_built_now),
	TEST_END,
};

static const struct unit_suite suites[] = {
	{ "finding and sharing modules", NULL, NULL, modules_tests },
	{ "refused modules", NULL, NULL, refusal_tests },
	{ "init", NULL, NULL, init_tests },
	{ "keys given more than once", NULL, NULL, repeat_tests },
	{ "autoload", NULL, NULL, autoload_tests },
	{ "plugin file trust", NULL, NULL, trust_tests },
	{ "scaling", NULL, NULL, scaling_tests },
	{ "descriptors", NULL, NULL, descriptor_tests },
	{ "descriptors read from files", NULL, NULL, elfdesc_tests },
	{ "sets built by hand", NULL, NULL, set_tests },
	{ "host functions for init", NULL, NULL, init_api_tests },
	{ "host functions exported to plugins", NULL, NULL, export_tests },
	{ "plugins built for ABI 1.0", NULL, NULL, abi10_tests },
	{ NULL, NULL, NULL, NULL },
};

/* Where the build put the test plugins; false if nobody said. */
static bool
find_build_dir(void)
{
	const char *top = getenv("abs_top_builddir");
	const char *dir = getenv("TEST_PLUGIN_DIR");
	char probe[PATH_MAX];
	int n;

	if (top != NULL && *top != '\0')
		n = snprintf(build_dir, sizeof build_dir,
		    "%s/tests/plugins/.libs", top);
	else if (dir != NULL && *dir != '\0')
		n = snprintf(build_dir, sizeof build_dir, "%s", dir);
	else
		return false;
	if (n < 0 || (size_t)n >= sizeof build_dir ||
	    (size_t)snprintf(probe, sizeof probe, "%s/noop.so", build_dir) >=
	    sizeof probe) {
		fprintf(stderr, "test_loader: plugin path too long\n");
		return false;
	}
	if (access(probe, R_OK) < 0) {
		fprintf(stderr, "test_loader: %s: %s\n", probe,
		    strerror(errno));
		return false;
	}
	return true;
}

static bool
make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (base == NULL || *base == '\0')
		base = "/tmp";
	if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s/test_loader.XXXXXX",
	    base) >= sizeof tmpdir) {
		fprintf(stderr, "test_loader: TMPDIR is too long\n");
		return false;
	}
	if (mkdtemp(tmpdir) == NULL) {
		perror(tmpdir);
		return false;
	}
	snprintf(ini_path, sizeof ini_path, "%s/test.ini", tmpdir);
	return true;
}

int
main(void)
{
	int rc;

	if (!find_build_dir()) {
		fprintf(stderr, "test_loader: set abs_top_builddir (as make "
		    "check does) or TEST_PLUGIN_DIR to find the test "
		    "plugins\n");
		return 99;
	}
	if (!make_tmpdir())
		return 99;
	rc = unit_run(suites);
	config_free(cfg);
	if (remove_tree(tmpdir) < 0) {
		perror(tmpdir);
		rc = 1;
	}
	return rc;
}

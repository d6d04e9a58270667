/*
 * main - the milterhost command: options and start-up (the stop is
 * service.c's).
 *
 * Start-up order: read the config, open the listening socket, go to the
 * background, write the pidfile, drop privileges, load the plugins, start
 * the service thread, then serve.  The signals the service takes are
 * blocked first of all, before any thread exists.  Every error before
 * serving stops start-up with a message that names the file, line and
 * key; in the background the parent waits for the child's verdict so the
 * exit status tells whether milterhost runs.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "chain.h"
#include "dlfile.h"
#include "httpd.h"
#include "metrics.h"
#include "loader.h"
#include "log.h"
#include "milter.h"
#include "paths.h"
#include "runfiles.h"
#include "service.h"

/* The pipe to the parent waiting for the daemon to serve: the child
 * writes READY, or why it could not start. */
static int ready_fd = -1;
#define READY "ready"

static void
usage(FILE *f)
{
	fprintf(f, "usage: milterhost [-f] [-t] [-c file]\n"
	    "       milterhost -V | -h\n"
	    "  -c file  configuration file (default %s)\n"
	    "  -f       stay in the foreground, log to stderr\n"
	    "  -t       check the configuration and the plugins, then exit\n"
	    "  -V       print the version\n"
	    "  -h       print this help\n", CONF_FILE);
}

/* Report a start-up failure on stderr, in the log and to the parent. */
static void
fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	fprintf(stderr, "milterhost: %s\n", msg);
	log_msg(LOG_ERR, "%s", msg);
	if (ready_fd >= 0 && write(ready_fd, msg, strlen(msg)) < 0)
		(void)0;
	/* Nothing is left behind that a start would trip over. */
	runfiles_remove_socket();
	runfiles_remove_pidfile();
	exit(1);
}

/* The stages whose events the instance takes. */
static void
print_stages(const struct instance *in)
{
	int n = 0;

	printf("    stages:");
	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++)
		if (instance_takes(in, st))
			printf("%s%s", n++ ? ", " : " ", stage_name(st));
	printf("%s\n", n ? "" : " none");
}

static void
print_actions(unsigned long actions)
{
	static const struct {
		unsigned long bit;
		const char *name;
	} names[] = {
		{ MH_ACT_ADDHDRS, "add headers" },
		{ MH_ACT_CHGHDRS, "change headers" },
		{ MH_ACT_CHGBODY, "replace body" },
		{ MH_ACT_ADDRCPT, "add recipients" },
		{ MH_ACT_ADDRCPT_PAR, "add recipients with arguments" },
		{ MH_ACT_DELRCPT, "delete recipients" },
		{ MH_ACT_CHGFROM, "change sender" },
		{ MH_ACT_QUARANTINE, "quarantine" },
	};
	int n = 0;

	printf("    actions:");
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (actions & names[i].bit)
			printf("%s%s", n++ ? ", " : " ", names[i].name);
	printf("%s\n", n ? "" : " none");
}

/* The stages where the instance only observes (ABI 1.1). */
static void
print_observes(const struct instance *in)
{
	int n = 0;

	if (in->observes == 0)
		return;
	printf("    observes:");
	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++)
		if (in->observes & (1U << st))
			printf("%s%s", n++ ? ", " : " ", stage_name(st));
	printf("\n");
}

/* The macros the instance asks for, per stage. */
static void
print_macros(const struct instance *in)
{
	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++)
		if (in->macros[st] != NULL)
			printf("    macros at %s: %s\n", stage_name(st),
			    in->macros[st]);
}

/* The conditions (if_* keys) of the section that made the instance. */
static void
print_conditions(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->ninstances; i++) {
		const struct config_instance *ci = &cfg->instances[i];

		if (strcmp(ci->name, name) != 0)
			continue;
		for (size_t k = 0; k < ci->nconds; k++)
			printf("    %s %s = %s\n", k ? "and" : "when",
			    ci->conds[k].key, ci->conds[k].value);
	}
}

/* milterhost -t: load and init everything, say what was found. */
static int
check_config(const struct config *cfg)
{
	char err[1024];
	struct plugin_set *set;

	if ((set = plugin_set_load(cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "milterhost: %s\n", err);
		return 1;
	}
	printf("%s: configuration ok, socket %s, %zu plugin instance%s\n",
	    cfg->file, cfg->socket, set->ninstances,
	    set->ninstances == 1 ? "" : "s");
	for (size_t i = 0; i < set->ninstances; i++) {
		const struct instance *in = &set->instances[i];
		const struct mh_plugin *d = in->desc;

		printf("  %zu. [plugin:%s] %s %s (%s): %s\n", i + 1, in->name,
		    d->name, d->version ? d->version : "",
		    in->module->path, d->description ? d->description : "");
		print_stages(in);
		print_actions(in->actions);
		print_observes(in);
		print_macros(in);
		print_conditions(cfg, in->name);
		printf("    on_error = %s%s\n", config_on_error_name(in->on_error),
		    in->dry_run ? ", dry run" : "");
	}
	plugin_set_release(set);
	return 0;
}

/*
 * Go to the background.  The parent waits until the child reports that
 * it serves (nothing on the pipe) or why it could not (a message).
 */
static void
daemonize(void)
{
	int fds[2];
	pid_t pid;
	char msg[1024];
	ssize_t n;

	if (pipe(fds) < 0)
		fail("pipe: %s", strerror(errno));
	if ((pid = fork()) < 0)
		fail("fork: %s", strerror(errno));
	if (pid > 0) {
		close(fds[1]);
		n = read(fds[0], msg, sizeof msg - 1);
		if (n == (ssize_t)strlen(READY) && memcmp(msg, READY, n) == 0)
			_exit(0);
		/* The child printed why, unless it died without a word. */
		if (n <= 0)
			fprintf(stderr, "milterhost: the daemon exited during "
			    "start-up\n");
		_exit(1);
	}
	close(fds[0]);
	ready_fd = fds[1];
	if (setsid() < 0)
		fail("setsid: %s", strerror(errno));
	if (chdir("/") < 0)
		fail("chdir /: %s", strerror(errno));
}

/* The child serves: detach stdio and release the waiting parent. */
static void
report_ready(void)
{
	int fd;

	if (ready_fd < 0)
		return;
	if ((fd = open("/dev/null", O_RDWR)) >= 0) {
		dup2(fd, STDIN_FILENO);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		if (fd > STDERR_FILENO)
			close(fd);
	}
	if (write(ready_fd, READY, strlen(READY)) < 0)
		(void)0;
	close(ready_fd);
	ready_fd = -1;
}

static void
drop_privileges(const struct config *cfg)
{
	struct passwd *pw;
	struct group *gr = NULL;
	char err[1024];
	gid_t gid;

	if (cfg->user == NULL)
		return;
	if ((pw = getpwnam(cfg->user)) == NULL)
		fail("%s: user %s: no such user", cfg->file, cfg->user);
	gid = pw->pw_gid;
	if (cfg->group != NULL) {
		if ((gr = getgrnam(cfg->group)) == NULL)
			fail("%s: group %s: no such group", cfg->file,
			    cfg->group);
		gid = gr->gr_gid;
	}
	if (getuid() == pw->pw_uid && getgid() == gid)
		return;
	/* Where plugins are linked from, made while milterhost may. */
	if (dlfile_prepare(pw->pw_uid, gid, err, sizeof err) < 0)
		fail("%s", err);
	if (initgroups(pw->pw_name, gid) < 0 || setgid(gid) < 0 ||
	    setuid(pw->pw_uid) < 0)
		fail("cannot become user %s: %s", cfg->user, strerror(errno));
}

static int
serve(const struct config *cfg, bool foreground)
{
	char err[1024];
	struct plugin_set *set;
	struct kv_store *kv;

	/* First: a stop or reload signal during start-up waits for the
	 * service thread instead of killing the process. */
	service_block_signals();
	if (milter_setup(cfg, err, sizeof err) < 0)
		fail("%s: socket %s: %s", cfg->file, cfg->socket, err);
	if (!foreground)
		daemonize();
	if (cfg->pidfile != NULL &&
	    runfiles_write_pidfile(cfg->pidfile, err, sizeof err) < 0)
		fail("%s", err);
	drop_privileges(cfg);
	runfiles_check_removable();
	if ((kv = kv_open(&cfg->kv, err, sizeof err)) == NULL)
		fail("%s: %s", cfg->file, err);
	milter_set_store(kv);
	if ((set = plugin_set_load(cfg, err, sizeof err)) == NULL)
		fail("%s", err);
	if (cfg->metrics_listen != NULL) {
		metrics_enable(milter_library_version());
		if (metrics_set_kv(kv) < 0)
			fail("out of memory for the metrics");
		if (httpd_start((const struct sockaddr *)&cfg->metrics_addr,
		    cfg->metrics_listen, err, sizeof err) < 0)
			fail("%s: %s", cfg->file, err);
	}
	milter_set_plugins(set);
	plugin_set_release(set);
	if (service_start(cfg, err, sizeof err) < 0)
		fail("%s", err);
	log_msg(LOG_INFO, "milterhost %s ready on %s with %zu plugin "
	    "instance%s", PACKAGE_VERSION, cfg->socket, set->ninstances,
	    set->ninstances == 1 ? "" : "s");
	report_ready();
	/* A stop ends the process in service.c; this is a failure. */
	milter_run();
	log_msg(LOG_ERR, "libmilter stopped serving (see its messages in "
	    "the mail log): exiting");
	runfiles_remove_socket();
	runfiles_remove_pidfile();
	return 1;
}

int
main(int argc, char **argv)
{
	const char *file = CONF_FILE;
	bool foreground = false, test = false;
	char err[1024];
	struct config *cfg;
	int ch, rc;

	while ((ch = getopt(argc, argv, "c:ftVh")) != -1) {
		switch (ch) {
		case 'c':
			file = optarg;
			break;
		case 'f':
			foreground = true;
			break;
		case 't':
			test = true;
			break;
		case 'V':
			printf("milterhost %s (plugin ABI %d.%d, libmilter %s)\n",
			    PACKAGE_VERSION, MH_ABI_MAJOR, MH_ABI_MINOR,
			    milter_library_version());
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((cfg = config_load(file, err, sizeof err)) == NULL) {
		fprintf(stderr, "milterhost: %s\n", err);
		return 1;
	}
	if (test) {
		log_open(true, cfg->log_facility, cfg->log_level);
		rc = check_config(cfg);
	} else {
		bool to_stderr = cfg->log_destination == LOG_DEST_STDERR ||
		    (cfg->log_destination == LOG_DEST_AUTO && foreground);

		log_open(to_stderr, cfg->log_facility, cfg->log_level);
		rc = serve(cfg, foreground);
	}
	config_free(cfg);
	return rc;
}

/*
 * service - the daemon's signals and its stop.  See service.h.
 *
 * libmilter's smfi_main() starts a thread that waits with sigwait() for
 * SIGHUP, SIGTERM and SIGINT and, at the first of them, stops libmilter.
 * In the worker-pool build Debian ships, the pool's controller and workers
 * then leave their loops as well: the open sessions get no answer until
 * the MTA gives up (Postfix: milter_command_timeout, 30 s), and the
 * listener itself notices the stop only at its next 5-second poll.
 * libmilter has no way to stop listening while serving on.  So milterhost
 * keeps these signals from libmilter: this file defines sigwait(), the
 * dynamic linker binds libmilter's call to the executable's definition
 * (an executable's exported symbols come first), and that definition
 * parks libmilter's signal thread for good.  The thread started here
 * takes the signals instead: it closes the listening socket (milter.c),
 * waits for the open sessions, finis the plugins and exits the process.
 * libmilter's loop never ends on a stop.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "runfiles.h"
#include "service.h"

/*
 * After the listening socket is closed, a connection accepted just before
 * may still be on its way to negotiation, not yet counted as open: an
 * idle stop waits this long before it trusts a count of zero.
 */
#define SETTLE_MS 50
/* How often the count of open sessions is looked at. */
#define POLL_MS 10

/* The configuration milterhost started with (socket, user, pidfile stay
 * as it says), and the one of the last reload, if any. */
static const struct config *config;
static struct config *reloaded;
static sigset_t stop_signals;

/*
 * libmilter's signal thread comes here (its set holds SIGTERM) and waits
 * for ever: the service thread takes the stop signals.  Any other caller
 * gets sigwait() as POSIX defines it.
 */
int
sigwait(const sigset_t *restrict set, int *restrict sig)
{
	int s;

	if (sigismember(set, SIGTERM) == 1)
		for (;;)
			pause();
	while ((s = sigwaitinfo(set, NULL)) < 0)
		if (errno != EINTR)
			return errno;
	*sig = s;
	return 0;
}

void
service_block_signals(void)
{
	sigset_t set;

	sigemptyset(&stop_signals);
	sigaddset(&stop_signals, SIGHUP);
	sigaddset(&stop_signals, SIGTERM);
	sigaddset(&stop_signals, SIGINT);
	/* SIGUSR1 reloads: it must not end the process either. */
	set = stop_signals;
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* The value of a setting now: the last reload's, else the start's. */
static const struct config *
current(void)
{
	return reloaded != NULL ? reloaded : config;
}

static const char *
signal_name(int sig)
{
	switch (sig) {
	case SIGHUP:
		return "SIGHUP";
	case SIGTERM:
		return "SIGTERM";
	case SIGINT:
		return "SIGINT";
	default:
		return "a signal";
	}
}

static long
ms_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - start->tv_sec) * 1000 +
	    (now.tv_nsec - start->tv_nsec) / 1000000;
}

/* Wait up to ms for another stop signal; true if one came. */
static bool
another_stop_signal(long ms)
{
	struct timespec wait = { ms / 1000, (ms % 1000) * 1000000L };
	int sig = sigtimedwait(&stop_signals, NULL, &wait);

	if (sig <= 0)
		return false;
	log_msg(LOG_NOTICE, "%s again: not waiting for the open sessions "
	    "any longer", signal_name(sig));
	return true;
}

/*
 * Wait until no session is open, stop_timeout has passed or another stop
 * signal came.  Returns how many sessions are still open.
 */
static unsigned
drain(void)
{
	long limit = (long)current()->stop_timeout * 1000, t;
	struct timespec start;
	unsigned open;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		open = milter_open_sessions();
		t = ms_since(&start);
		if ((open == 0 && t >= SETTLE_MS) || t >= limit)
			return open;
		if (another_stop_signal(POLL_MS))
			return milter_open_sessions();
	}
}

static _Noreturn void
stop(int sig)
{
	unsigned open = milter_open_sessions();

	log_msg(LOG_INFO, "%s: stopping: new connections are refused, %u "
	    "open session%s may take up to %d s", signal_name(sig), open,
	    open == 1 ? "" : "s", current()->stop_timeout);
	milter_stop_accepting();
	if ((open = drain()) > 0)
		log_msg(LOG_WARNING, "%u session%s still open: closing %s; "
		    "the MTA applies its milter_default_action", open,
		    open == 1 ? "" : "s", open == 1 ? "it" : "them");
	else
		milter_set_plugins(NULL);
	runfiles_remove_pidfile();
	log_msg(LOG_INFO, "stopped");
	/* Open sessions may be in plugin code: no exit handlers under it. */
	if (open > 0)
		_exit(0);
	exit(0);
}

/* Say which settings a reload cannot change, if it would. */
static void
note_restart_keys(const struct config *now, const struct config *next)
{
	static const struct {
		const char *key;
		size_t offset;
	} strings[] = {
		{ "socket", offsetof(struct config, socket) },
		{ "user", offsetof(struct config, user) },
		{ "group", offsetof(struct config, group) },
		{ "pidfile", offsetof(struct config, pidfile) },
		{ "metrics_listen", offsetof(struct config, metrics_listen) },
	};

	for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
		const char *a = *(char *const *)(const void *)
		    ((const char *)now + strings[i].offset);
		const char *b = *(char *const *)(const void *)
		    ((const char *)next + strings[i].offset);

		if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
			log_msg(LOG_WARNING, "reload: %s changed in %s: it "
			    "takes a restart; the running value stays",
			    strings[i].key, next->file);
	}
	if (!kv_spec_equal(&now->kv, &next->kv))
		log_msg(LOG_WARNING, "reload: kv, kv_password, kv_timeout_ms "
		    "or kv_memory_max_bytes changed in %s: they take a restart "
		    "(the store is kept across reloads); the running values "
		    "stay", next->file);
	if (now->socket_mode != next->socket_mode ||
	    now->timeout != next->timeout || now->backlog != next->backlog ||
	    now->log_facility != next->log_facility ||
	    now->log_destination != next->log_destination)
		log_msg(LOG_WARNING, "reload: socket_mode, timeout, backlog, "
		    "log_facility or log_destination changed in %s: they take "
		    "a restart; the running values stay", next->file);
}

/*
 * SIGUSR1: read the configuration again and load its plugins.  New
 * connections get the new set; a connection keeps the set it started
 * with, and the old set is finied and unloaded when its last connection
 * closed (reference counts, loader.c).  If anything fails, the running
 * set stays and the error is logged with file, line and key.
 */
static void
reload(void)
{
	struct plugin_set *set;
	struct config *next;
	char err[1024];

	log_msg(LOG_INFO, "SIGUSR1: reloading %s", config->file);
	if ((next = config_load(config->file, err, sizeof err)) == NULL) {
		log_msg(LOG_ERR, "reload failed, the running configuration "
		    "stays: %s", err);
		if (metrics_enabled())
			metrics_reload(false);
		return;
	}
	if ((set = plugin_set_load(next, err, sizeof err)) == NULL) {
		log_msg(LOG_ERR, "reload failed, the running plugins stay: "
		    "%s", err);
		config_free(next);
		if (metrics_enabled())
			metrics_reload(false);
		return;
	}
	note_restart_keys(config, next);
	milter_set_plugins(set);
	if (metrics_enabled())
		metrics_reload(true);
	log_msg(LOG_INFO, "reloaded: %zu plugin instance%s for new "
	    "connections", set->ninstances, set->ninstances == 1 ? "" : "s");
	plugin_set_release(set);
	log_set_level(next->log_level);
	config_free(reloaded);
	reloaded = next;
}

static void *
service_main(void *arg)
{
	sigset_t set = stop_signals;
	int sig;

	sigaddset(&set, SIGUSR1);
	for (;;) {
		if ((sig = sigwaitinfo(&set, NULL)) < 0)
			continue; /* EINTR */
		if (sig != SIGUSR1)
			stop(sig);
		reload();
	}
}

int
service_start(const struct config *cfg, char *err, size_t errlen)
{
	pthread_t thread;
	int rc;

	config = cfg;
	if ((rc = pthread_create(&thread, NULL, service_main, NULL)) != 0) {
		snprintf(err, errlen, "cannot start the signal thread: %s",
		    strerror(rc));
		return -1;
	}
	pthread_detach(thread);
	return 0;
}

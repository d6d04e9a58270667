/*
 * service - the daemon's signals: its stop and its reload.
 *
 * SIGUSR1 reloads: the configuration is read again and its plugins are
 * loaded; new connections get the new set, a connection keeps the set it
 * started with, an old set is finied and unloaded after its last
 * connection.  If anything fails the running set stays, and the error is
 * logged.  The socket, user, group, pidfile and a few others take a
 * restart: a reload that changes them says so and keeps them.
 *
 * SIGTERM, SIGHUP and SIGINT stop milterhost: it refuses new connections
 * at once, serves the open sessions until they end or stop_timeout runs
 * out (a second stop signal ends the wait), finis the plugins if no
 * session is left (otherwise their code may still run: it leaves them),
 * removes the pidfile and exits.  libmilter would stop on these signals itself,
 * and Debian's libmilter then stops serving the open sessions too, so
 * milterhost takes them from libmilter (see service.c).
 */
#ifndef MILTERHOST_SERVICE_H
#define MILTERHOST_SERVICE_H

#include <stddef.h>

#include "config.h"

/*
 * Block the signals the service takes, in the calling thread and so in
 * every thread it starts later.  Call it before any thread (a plugin's,
 * libmilter's) exists.
 */
void service_block_signals(void);

/*
 * Start the thread that waits for the stop signals; cfg must live until
 * the process ends.  Returns 0, or -1 with the reason in err.
 */
int service_start(const struct config *cfg, char *err, size_t errlen);

#endif /* MILTERHOST_SERVICE_H */

/*
 * milter - the libmilter adapter.
 *
 * The only module that speaks libmilter: it registers every xxfi_*
 * callback, turns each into an event of the chain engine, owns the
 * negotiation (actions, SMFIP_* steps, macro lists through
 * smfi_setsymlist), sends the engine's replies, and applies the merged
 * message changes at end of message with the smfi_* calls.
 */
#ifndef MILTERHOST_MILTER_H
#define MILTERHOST_MILTER_H

#include <stddef.h>

#include "config.h"
#include "loader.h"

/*
 * Register with libmilter and open the listening socket named in cfg
 * (with TCP_NODELAY for inet sockets, the configured mode for unix
 * ones).  Returns 0, or -1 with the reason in err.
 */
int milter_setup(const struct config *cfg, char *err, size_t errlen);

/* The plugin set new connections run (retained; the previous released). */
void milter_set_plugins(struct plugin_set *set);
/* The store of mh_kv_* that milter_set_plugins gives every set: set once,
 * before the first set, and kept for the life of the process. */
void milter_set_store(struct kv_store *kv);

/*
 * Serve.  libmilter's loop does not end at a stop signal (service.c takes
 * those): it returns only when libmilter failed, with -1.
 */
int milter_run(void);

/*
 * Refuse new connections from now on, at once; the open sessions go on
 * being served.  A unix socket's path is removed.  Any thread.
 */
void milter_stop_accepting(void);

/* How many SMTP sessions are open (from negotiation, or connect, to
 * close). */
unsigned milter_open_sessions(void);

/* libmilter's version as text. */
const char *milter_library_version(void);

#endif /* MILTERHOST_MILTER_H */

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

/* Serve until libmilter is told to stop (SIGTERM, SIGHUP, SIGINT).
 * Returns 0 on an orderly stop. */
int milter_run(void);

/* Wait up to timeout seconds for open sessions to close; returns how
 * many are still open. */
int milter_drain(int timeout);

/* libmilter's version as text. */
const char *milter_library_version(void);

#endif /* MILTERHOST_MILTER_H */

/*
 * reuse - what the adapter remembers of a milter connection between the
 * SMTP sessions an MTA runs on it.
 *
 * With SMFIC_QUIT_NC ("quit, a new connection follows") an MTA ends one
 * SMTP session and starts the next on the same milter connection.
 * libmilter then calls close and, for the next session, connect again,
 * but never negotiate: the MTA's offer is not repeated.  The adapter
 * frees its session at every close (libmilter complains about, and
 * leaks, private data left at the end of a connection, and a close does
 * not say whether another session follows), so the offer is kept here,
 * by connection, from negotiation on.
 *
 * A close cannot tell the last session of a connection from one followed
 * by QUIT_NC, so the record of a connection that ended stays until
 * another connection gets the same handle (libmilter's context is
 * allocated anew for each connection, and malloc hands freed addresses
 * out again), or until it is older than the idle limit, after which
 * libmilter itself has closed the connection.
 *
 * Thread-safe; one lock, taken twice per connection (negotiation, end).
 */
#ifndef MILTERHOST_REUSE_H
#define MILTERHOST_REUSE_H

#include <stdbool.h>

/* What the MTA offered at negotiation (its actions and protocol steps). */
struct mta_offer {
	unsigned long actions;
	unsigned long steps;
};

/*
 * Remember conn's offer (replacing whatever a connection that had the
 * same handle before left), and forget records idle for longer than
 * idle_seconds.  Returns false when out of memory.
 */
bool reuse_remember(const void *conn, const struct mta_offer *offer,
		    unsigned idle_seconds);

/* The offer of conn, for another session on it; false if none. */
bool reuse_recall(const void *conn, struct mta_offer *offer);

/* Forget conn: its last session ended.  False if nothing was kept. */
bool reuse_forget(const void *conn);

#endif /* MILTERHOST_REUSE_H */

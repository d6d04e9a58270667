/*
 * mta - milterhost-replay's MTA: it feeds the chain engine a message as
 * Postfix feeds a milter, with no socket and no libmilter in between.
 *
 * A connection is negotiated with Postfix's offer (milter_protocol 6,
 * less what the user took away), then gets connect and HELO; each
 * message gets MAIL, RCPT for each recipient, DATA, its headers, end of
 * headers, its body in chunks of 65535 bytes and end of message.  As an
 * MTA, it sends the macros of each stage (mtamacros.h), sends no event
 * the chain negotiated away and waits for no answer the chain said it
 * would not give; it acts on each answer as Postfix does: a refused
 * recipient is dropped, SKIP ends the body, ACCEPT, REJECT, TEMPFAIL and
 * DISCARD end the message (at connect or HELO: the connection), and a
 * message all of whose recipients were refused goes no further.  After
 * each message it resets the transaction (an abort, as Postfix's smtpd
 * does after every one); the connection is closed after each message, or
 * kept for the next.  Every event, callback, answer and change goes to
 * the trace.
 */
#ifndef MILTERHOST_MTA_H
#define MILTERHOST_MTA_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "chain.h"
#include "loader.h"
#include "message.h"
#include "mtamacros.h"
#include "trace.h"

/* The client's port, in connect and {client_port}. */
#define MTA_CLIENT_PORT 54321

struct mta_options {
	unsigned long actions;     /* offered */
	unsigned long steps;       /* offered */
	const char *client_addr;   /* as mta_client_address() took it */
	const char *client_name;   /* NULL: not verified */
	const char *helo;
	const char *auth_user;     /* NULL: not authenticated */
	bool keep;                 /* one connection for every message */
	/* MH_STAGE_COUNT, or: send each message up to this stage first,
	 * then abort it, then send it whole. */
	mh_stage abort_after;
};

struct envelope {
	char *from;        /* MAIL FROM: "<address> [ESMTP arguments]" */
	char **rcpts;      /* RCPT TO: the same */
	size_t nrcpts;
	bool *refused;     /* set by mta_replay: the chain refused it */
};

/* How one message ended, as the MTA saw it. */
struct outcome {
	/* MH_ACCEPT: delivered; MH_REJECT, MH_TEMPFAIL, MH_DISCARD. */
	mh_status status;
	mh_stage stage;          /* the event of the answer */
	const char *decider;     /* the instance that decided, or NULL */
	char score[256];         /* the score's decision, or "" */
	char reply[4096];        /* what the client heard, or "" */
	bool no_rcpt;            /* refused: every recipient was */
	size_t rcpts, taken;     /* recipients sent, and taken */
	/* Delivered: the changes to apply (valid until mta_finish). */
	const struct mod_list *mods;
	size_t changes;          /* how many */
	bool leadspc;            /* header values in mods carry their space */
};

struct mta;

/*
 * Check a client address: IPv4, IPv6, a unix socket's path (from "/"),
 * or "unknown" (no address).  Returns 0, or -1 with the reason in err.
 */
int mta_client_address(const char *text, struct sockaddr_storage *ss,
		       bool *known, char *err, size_t errlen);

/* An MTA serving set (which it does not own); NULL if out of memory. */
struct mta *mta_new(struct plugin_set *set, const struct mta_options *o,
		    struct mtamacros *mm, struct trace *t);
/* Close the connection if one is open, and free m. */
void mta_free(struct mta *m);

/*
 * Replay msg with env; *out says how it ended.  Returns 0, or -1 with
 * the reason in err: the message could not be read (it was aborted) or
 * memory ran out.  Call mta_finish() after either.
 */
int mta_replay(struct mta *m, struct message *msg, struct envelope *env,
	       struct outcome *out, char *err, size_t errlen);
/* Release out's changes, reset the transaction, close the connection
 * unless it is kept. */
void mta_finish(struct mta *m);

#endif /* MILTERHOST_MTA_H */

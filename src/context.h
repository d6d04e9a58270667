/*
 * context - what a plugin instance is within one session.
 *
 * The engine keeps one struct mh_ctx per instance per session: the
 * instance's data slots, its flags in the chain, the reply it set during
 * the current callback and the modifications it queued for the current
 * message.  The mh_* host functions of <milterhost/plugin.h> (context.c)
 * work on it; they check every request when it is made and mark the
 * callback as failed when a plugin misbehaves.  Its life around each
 * callback is session.c's.  Only the thread running one of the
 * instance's callbacks may use its ctx, except for logging and the
 * instance's name and state (see <milterhost/plugin.h>, "Threads").
 */
#ifndef MILTERHOST_CONTEXT_H
#define MILTERHOST_CONTEXT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <milterhost/plugin.h>

#include "loader.h"
#include "mods.h"
#include "reply.h"

struct session;

enum cond_state {
	COND_OPEN = 0, /* not decided yet */
	COND_IN,       /* the conditions hold: it takes part */
	COND_OUT       /* they do not */
};

struct mh_ctx {
	struct session *session;
	const struct instance *inst;
	void *conn_data;
	void *msg_data;
	/* Called for a slot the plugin left set at the end of its life
	 * (mh_set_*_data_free); NULL for none. */
	void (*conn_free)(void *data);
	void (*msg_free)(void *data);

	bool disabled;   /* switched off at negotiation */
	bool conn_done;  /* ACCEPTed the connection */
	bool msg_done;   /* ACCEPTed the message */
	bool body_skip;  /* SKIPped the body */
	bool msg_open;   /* reached during the current message */
	bool leadspc_fix; /* its header values need the space adjusted */
	/* MH_WANT_EARLIER_CHANGES, and an earlier instance may make some:
	 * its header, eoh and body calls wait for the end of the message
	 * (chain.c, view.h). */
	bool sees_earlier;

	/*
	 * Its conditions (cond.h), decided by chain.c: for the connection,
	 * for the current message, and per recipient (if_rcpt).
	 */
	enum cond_state cond_conn;
	enum cond_state cond_msg;
	bool rcpt_now;      /* the current recipient matches if_rcpt */
	bool rcpt_entered;  /* its message began: envfrom was called */
	unsigned rcpt_taken; /* matching recipients the chain took */
	/* Its envfrom refused its message: every matching recipient gets
	 * this answer. */
	mh_status rcpt_refused;
	struct reply refused_reply;
	bool missing_logged; /* a macro a condition needs was not sent */

	/*
	 * Set around each callback by the session's thread and read by every
	 * host call, from whatever thread makes it, with __atomic builtins:
	 * only the thread running a callback of this ctx may touch the
	 * session.
	 */
	bool in_callback;
	pthread_t cb_thread;

	uint64_t msg_ns; /* time in callbacks this message (summary.c) */
	bool failed;     /* a host call of the current callback was refused */
	char fail_reason[256];

	struct reply reply;     /* set during the current callback */
	struct mod_queue mods;  /* queued for the current message */
};

#endif /* MILTERHOST_CONTEXT_H */

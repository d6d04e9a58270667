/*
 * session - the state of one connection in the chain engine, and the life
 * of it and of its plugin contexts (session.c).
 *
 * Private to the engine (chain.c) and the host functions (context.c);
 * everybody else goes through chain.h (session_new, session_free).
 */
#ifndef MILTERHOST_SESSION_H
#define MILTERHOST_SESSION_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "chain.h"
#include "context.h"
#include "mods.h"
#include "reply.h"
#include "score.h"
#include "summary.h"
#include "view.h"

/* Room for a queue id in log lines; a longer one is cut. */
#define SESSION_QID_MAX 64

struct session {
	struct plugin_set *set;
	struct chain_io io;
	bool have_io;
	struct mh_ctx *ctx;      /* one per instance, in chain order */
	size_t nctx;

	mh_stage stage;          /* of the callback running now */
	bool leadspc;            /* PROTO_HDR_LEADSPC negotiated */
	bool rcpt_rej;           /* PROTO_RCPT_REJ negotiated */
	bool skip_ok;            /* PROTO_SKIP negotiated */
	unsigned long unanswered; /* the PROTO_NR_* bits negotiated */
	char *macro_lists[MACRO_STAGES];

	mh_status refused;       /* connection refused with this, or CONTINUE */
	bool in_message;         /* a message is open */
	/* The message ended early with this status (or CONTINUE): its later
	 * events, which MTAs do not send, reach no plugin. */
	mh_status msg_over;
	bool mta_sends_mail;     /* MAIL not negotiated away */

	/*
	 * The queue id for log lines: macro i as of the last event, "" when
	 * none or after the message ended.  Plugins may log from threads of
	 * their own, which must not read the MTA's macros (libmilter replaces
	 * them on the session's thread), so the session's thread keeps this
	 * copy: it writes it under qid_lock, other threads read it under it.
	 */
	pthread_mutex_t qid_lock;
	char qid[SESSION_QID_MAX];

	char client_addr[128];   /* text form, "" if unknown */
	bool client_known;       /* connect came: client_addr is what it said */
	struct msg_summary summary; /* of the message, for its log line */
	struct reply verdict_reply;  /* the reply going out with the verdict */
	/* The reply of a decision made at an unanswered event, for the
	 * next answered one. */
	struct reply deferred_reply;
	struct mod_list merged;  /* the list returned by chain_eom */
	/* nctx + 1 pointers, for merging: the instances' queues, then the
	 * host's own (the score header). */
	struct mod_queue **queues;
	struct mod_queue host_mods;
	struct score score;      /* of the message (ABI 1.2) */
	/* The message's MAIL FROM arguments, kept for instances with if_rcpt,
	 * whose envfrom comes with their first matching recipient. */
	bool keep_envfrom;
	char **envfrom_argv;     /* NULL-terminated copy, or NULL */
	bool score_header_ok;    /* the MTA lets us add the score header */
	char *scratch;           /* header value with a space added */
	size_t scratch_len;
	/* The message's content, kept while an instance sees_earlier
	 * (view.h); held_lost: some of it could not be kept. */
	bool holding;
	bool held_lost;
	struct view held;
	struct view seen;        /* what one such instance is shown */
};

/* The value of a macro, or NULL. */
const char *session_macro(struct session *s, const char *name);
/* Keep a copy of MAIL FROM's arguments (-1: out of memory); drop it. */
int session_keep_envfrom(struct session *s, char *const *argv);
void session_forget_envfrom(struct session *s);
/* Keep macro i for log lines, before an event's callbacks run; set the
 * copy ("" when the message ended). */
void session_note_qid(struct session *s);
void session_set_qid(struct session *s, const char *qid);
/* Which contexts must adjust header values' leading space, now that
 * s->leadspc says what the MTA does. */
void session_set_leadspc_fix(struct session *s);
/* The queue id for log lines, or "NOQUEUE"; on the session's thread. */
const char *session_qid(struct session *s);
/* The same copied into buf, from any thread while the session lives. */
void session_qid_copy(struct session *s, char *buf, size_t len);

/* Prepare ctx for a callback / clean up after it. */
void ctx_begin_callback(struct mh_ctx *ctx);
/* Around the call of a callback: the calling thread may use ctx. */
void ctx_callback_starts(struct mh_ctx *ctx);
void ctx_callback_ended(struct mh_ctx *ctx);
/* Is the caller the thread running a callback of ctx?  Any thread. */
bool ctx_in_own_callback(const struct mh_ctx *ctx);
/* Forget the message's flags and data slot (the engine owns the queue). */
void ctx_end_message(struct mh_ctx *ctx);
/* Forget the connection slot, after close. */
void ctx_end_connection(struct mh_ctx *ctx);
/* Free what ctx holds, the data slots left set included. */
void ctx_destroy(struct mh_ctx *ctx);

#endif /* MILTERHOST_SESSION_H */

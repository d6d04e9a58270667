/*
 * session - the state of one connection in the chain engine.
 *
 * Private to the engine (chain.c) and the host functions (context.c);
 * everybody else goes through chain.h.
 */
#ifndef MILTERHOST_SESSION_H
#define MILTERHOST_SESSION_H

#include <stdbool.h>
#include <stddef.h>

#include "chain.h"
#include "context.h"
#include "mods.h"
#include "reply.h"


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
	char *macro_lists[MACRO_STAGES];

	mh_status refused;       /* connection refused with this, or CONTINUE */
	bool in_message;         /* a message is open */
	/* The message ended early with this status (or CONTINUE): its later
	 * events, which MTAs do not send, reach no plugin. */
	mh_status msg_over;
	bool mta_sends_mail;     /* MAIL not negotiated away */
	bool eom_pending;        /* the queues still back the merged list */

	char client_addr[128];   /* text form, "" if unknown */
	struct reply verdict_reply;  /* the reply going out with the verdict */
	struct mod_list merged;  /* the list returned by chain_eom */
	struct mod_queue **queues; /* nctx pointers, for merging */
	char *scratch;           /* header value with a space added */
	size_t scratch_len;
};

/* The value of a macro, or NULL. */
const char *session_macro(struct session *s, const char *name);
/* The queue id (macro i) for log lines, or "NOQUEUE". */
const char *session_qid(struct session *s);
/* Is stage one of the message stages (envfrom .. eom)? */
bool stage_is_message(mh_stage stage);

#endif /* MILTERHOST_SESSION_H */

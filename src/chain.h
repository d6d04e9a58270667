/*
 * chain - the chain engine.
 *
 * A session is one MTA connection run through a plugin set.  The adapter
 * (or a test) feeds it the stage events in order; for each event the
 * engine calls the plugins' callbacks in chain order, applies the rules of
 * doc/design.md, "Chain and merge rules", and returns one verdict for the
 * MTA.  At the end of the message it also returns the merged list of
 * modifications.
 *
 * The engine knows nothing of libmilter: it speaks in mh_status values and
 * the milter protocol's bit values (below), and reaches the MTA side only
 * through struct chain_io.
 */
#ifndef MILTERHOST_CHAIN_H
#define MILTERHOST_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <milterhost/plugin.h>

#include "loader.h"
#include "mods.h"
#include "reply.h"
#include "stage.h"

/* Why an instance's callback counts as failed (on_error applied). */
enum call_failure {
	CALL_OK = 0,
	CALL_REFUSED,     /* it made a host call that was refused */
	CALL_FAILED,      /* it returned MH_FAIL */
	CALL_BAD_STATUS,  /* a status not allowed at the stage, or no status */
	CALL_OBSERVER,    /* it decided where it declared it only observes */
	CALL_FAILURES
};

/* What one callback of one instance did: for a trace, for metrics. */
struct call_report {
	size_t instance;     /* its index in the plugin set */
	const char *name;    /* the instance's name */
	const struct instance *inst;
	mh_stage stage;
	int raw;             /* what the callback returned */
	mh_status status;    /* what the chain acted on (on_error, dry run) */
	enum call_failure failure;
	/* Its reply, sent with a REJECT or TEMPFAIL it decided; or NULL. */
	const struct reply *reply;
	size_t changes;      /* changes it queued in this callback, */
	const struct mod *new_changes; /* these, in a row */
	uint64_t ns;         /* time in the callback, 0 when not measured */
	bool slow;           /* it took longer than the instance's slow_ms */
	bool dry_run;        /* a dry-run instance (its decision not acted on) */
};

struct msg_summary;

/* What the engine needs from the MTA side. */
struct chain_io {
	/* The value of a macro, or NULL. */
	const char *(*macro)(void *arg, const char *name);
	/* Tell the MTA we are still working (end of message only). */
	int (*progress)(void *arg);
	void *arg;
	/*
	 * Optional: told of every callback (with its time), and of every
	 * message when it ends (how it ended, who decided, the changes).
	 * Called on the session's thread.
	 */
	void (*report)(void *arg, const struct call_report *r);
	void (*message_end)(void *arg, const struct msg_summary *m);
};

/* The MTA's offer and the engine's answer. */
struct negotiation {
	unsigned long mta_actions; /* in: what the MTA offers (f0) */
	unsigned long mta_steps;   /* in: protocol bits offered (f1) */
	unsigned long actions;     /* out: actions to ask for */
	unsigned long steps;       /* out: protocol bits to ask for */
	/* out: per macro stage, the list to request, or NULL for none.
	 * Owned by the session. */
	const char *macros[MACRO_STAGES];
};

/* The answer to one event. */
struct verdict {
	mh_status status;   /* never MH_FAIL */
	/* The deciding plugin's reply for REJECT/TEMPFAIL, or NULL.
	 * Valid until the next event. */
	const struct reply *reply;
	/* The MTA expects no answer to this event (its PROTO_NR_* bit was
	 * negotiated): send none.  A decision made here is given at the
	 * message's next answered event. */
	bool unanswered;
};

struct session;

/*
 * Start a session on set (which it retains until session_free).  io may
 * be NULL when no macros are available.  Returns NULL if out of memory.
 */
struct session *session_new(struct plugin_set *set, const struct chain_io *io);
void session_free(struct session *s);

/* Decide actions, steps and macros; switch off plugins the MTA cannot
 * serve.  Never fails. */
void chain_negotiate(struct session *s, struct negotiation *n);
/*
 * Postfix's own macro list for macro stage m (what it sends when the
 * negotiation set none there), as negotiation extends it; "" for a stage
 * without defaults.  Static.
 */
const char *chain_default_macros(enum macro_stage m);

struct verdict chain_connect(struct session *s, const char *hostname,
			     const struct sockaddr *addr);
struct verdict chain_helo(struct session *s, const char *name);
/* argv[0] is the address, the rest ESMTP arguments, NULL-terminated. */
struct verdict chain_envfrom(struct session *s, char **argv);
struct verdict chain_envrcpt(struct session *s, char **argv);
struct verdict chain_data(struct session *s);
struct verdict chain_unknown(struct session *s, const char *command);
struct verdict chain_header(struct session *s, const char *name,
			    const char *value);
struct verdict chain_eoh(struct session *s);
struct verdict chain_body(struct session *s, const unsigned char *chunk,
			  size_t len);
/*
 * End of message.  If the verdict is CONTINUE or ACCEPT, *mods is the list
 * of changes to apply, in order; otherwise it is empty.  The list is
 * borrowed from the session: the caller applies it and then calls
 * chain_eom_applied, which frees it, before the session's next event.
 */
struct verdict chain_eom(struct session *s, const struct mod_list **mods);
void chain_eom_applied(struct session *s);
void chain_abort(struct session *s);
void chain_close(struct session *s);

#endif /* MILTERHOST_CHAIN_H */

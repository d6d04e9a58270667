/*
 * chain - the chain engine.
 *
 * A session is one MTA connection run through a plugin set.  The adapter
 * (or a test) feeds it the stage events in order; for each event the
 * engine calls the plugins' callbacks in chain order, applies the merge
 * rules of DESIGN.md and returns one verdict for the MTA.  At the end of
 * the message it also returns the merged list of modifications.
 *
 * The engine knows nothing of libmilter: it speaks in mh_status values and
 * the milter protocol's bit values (below), and reaches the MTA side only
 * through struct chain_io.
 */
#ifndef MILTERHOST_CHAIN_H
#define MILTERHOST_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <milterhost/plugin.h>

#include "loader.h"
#include "mods.h"
#include "reply.h"

/* Protocol step bits of the milter protocol (libmilter's SMFIP_*). */
#define PROTO_NOCONNECT 0x1UL
#define PROTO_NOHELO 0x2UL
#define PROTO_NOMAIL 0x4UL
#define PROTO_NORCPT 0x8UL
#define PROTO_NOBODY 0x10UL
#define PROTO_NOHDRS 0x20UL
#define PROTO_NOEOH 0x40UL
#define PROTO_NOUNKNOWN 0x100UL
#define PROTO_NODATA 0x200UL
#define PROTO_SKIP 0x400UL
#define PROTO_RCPT_REJ 0x800UL
#define PROTO_HDR_LEADSPC 0x100000UL
/* Action bit for setsymlist (the MH_ACT_* are the others). */
#define ACT_SETSYMLIST 0x100UL

/* Macro stages of the milter protocol (libmilter's SMFIM_*). */
enum macro_stage {
	MACRO_CONNECT = 0,
	MACRO_HELO,
	MACRO_ENVFROM,
	MACRO_ENVRCPT,
	MACRO_DATA,
	MACRO_EOM,
	MACRO_EOH,
	MACRO_STAGES
};

/* What the engine needs from the MTA side. */
struct chain_io {
	/* The value of a macro, or NULL. */
	const char *(*macro)(void *arg, const char *name);
	/* Tell the MTA we are still working (end of message only). */
	int (*progress)(void *arg);
	void *arg;
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
 * of changes to apply, in order, valid until the next event; otherwise it
 * is empty.
 */
struct verdict chain_eom(struct session *s, const struct mod_list **mods);
void chain_abort(struct session *s);
void chain_close(struct session *s);

/* For logging: the stage's name ("connect", "envrcpt", ...). */
const char *chain_stage_name(mh_stage stage);

#endif /* MILTERHOST_CHAIN_H */

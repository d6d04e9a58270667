/*
 * stage - what each stage of an SMTP session means, in one table.
 *
 * One row per mh_stage, in the manner of libmilter's own command table:
 * the stage's name, the milter protocol's bit that asks the MTA not to
 * send it and the one that says it gets no reply, its macro stage, the
 * scope of a plugin's decision there, the statuses a callback may return
 * there, and how its callback is called.  Negotiation, the chain loop,
 * the host functions' stage checks and the README's table "How the chain
 * decides" (tests/stage_table.c prints it from this table, and a test
 * compares) all come from here.
 *
 * The milter protocol's values the engine speaks are here too; the
 * adapter checks them against libmilter's (milter.c).
 */
#ifndef MILTERHOST_STAGE_H
#define MILTERHOST_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <milterhost/plugin.h>

/* Protocol step bits of the milter protocol (libmilter's SMFIP_*). */
#define PROTO_NOCONNECT 0x1UL
#define PROTO_NOHELO 0x2UL
#define PROTO_NOMAIL 0x4UL
#define PROTO_NORCPT 0x8UL
#define PROTO_NOBODY 0x10UL
#define PROTO_NOHDRS 0x20UL
#define PROTO_NOEOH 0x40UL
#define PROTO_NR_HDR 0x80UL
#define PROTO_NOUNKNOWN 0x100UL
#define PROTO_NODATA 0x200UL
#define PROTO_SKIP 0x400UL
#define PROTO_RCPT_REJ 0x800UL
#define PROTO_NR_CONN 0x1000UL
#define PROTO_NR_HELO 0x2000UL
#define PROTO_NR_MAIL 0x4000UL
#define PROTO_NR_RCPT 0x8000UL
#define PROTO_NR_DATA 0x10000UL
#define PROTO_NR_UNKN 0x20000UL
#define PROTO_NR_EOH 0x40000UL
#define PROTO_NR_BODY 0x80000UL
#define PROTO_HDR_LEADSPC 0x100000UL
/* Every "no reply" bit. */
#define PROTO_NR_ALL (PROTO_NR_HDR | PROTO_NR_CONN | PROTO_NR_HELO |       \
	PROTO_NR_MAIL | PROTO_NR_RCPT | PROTO_NR_DATA | PROTO_NR_UNKN |     \
	PROTO_NR_EOH | PROTO_NR_BODY)
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
	MACRO_STAGES,
	NO_MACROS = -1  /* the stage has no macro list of its own */
};

/* What a plugin's REJECT, TEMPFAIL, DISCARD or ACCEPT there applies to. */
enum stage_scope {
	SCOPE_CONNECTION, /* the connection (connect, helo) */
	SCOPE_RECIPIENT,  /* this recipient; DISCARD and ACCEPT: the message */
	SCOPE_MESSAGE,    /* the message */
	SCOPE_COMMAND,    /* the unknown command: the MTA's reply to it */
	SCOPE_END         /* nothing: abort and close are not answered */
};

/* The arguments of one event. */
struct event {
	mh_stage stage;
	const char *str;        /* hostname, helo, command, header name */
	const char *value;      /* header value */
	const struct sockaddr *addr;
	char **argv;            /* envfrom, envrcpt: address, then args */
	const unsigned char *chunk;
	size_t len;
};

/* A bit for each status in stage_info.allowed. */
#define STATUS_BIT(st) (1U << (st))

struct stage_info {
	const char *name;
	unsigned long no_bit;   /* PROTO_NO*: not sent; 0: always sent */
	unsigned long nr_bit;   /* PROTO_NR_*: not answered; 0: answered */
	enum macro_stage macros;
	enum stage_scope scope;
	unsigned allowed;       /* STATUS_BIT of each legal status */
	/* Where the descriptor keeps the callback. */
	size_t callback;
	/* Call d's callback for ev; MH_CONTINUE if it has none. */
	int (*call)(const struct mh_plugin *d, mh_ctx *ctx,
		    const struct event *ev);
};

/* The row of stage; stage must be one of MH_STAGE_*. */
const struct stage_info *stage_info(mh_stage stage);
/* The stage's name ("connect", "envrcpt", ...), "?" if none. */
const char *stage_name(mh_stage stage);
/* May a callback of stage return st? */
bool stage_allows(mh_stage stage, int st);
/* Is stage one of the message stages (envfrom .. eom)? */
bool stage_is_message(mh_stage stage);
/* Does d implement stage's callback? */
bool stage_implemented(const struct mh_plugin *d, mh_stage stage);
/* A status's name ("reject"), "an invalid status" if none. */
const char *status_name(int st);

#endif /* MILTERHOST_STAGE_H */

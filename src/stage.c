/*
 * stage - what each stage of an SMTP session means, in one table.  See
 * stage.h.
 */
#include <string.h>

#include "stage.h"

#define C STATUS_BIT(MH_CONTINUE)
#define R STATUS_BIT(MH_REJECT)
#define T STATUS_BIT(MH_TEMPFAIL)
#define D STATUS_BIT(MH_DISCARD)
#define A STATUS_BIT(MH_ACCEPT)
#define S STATUS_BIT(MH_SKIP)

/* ---- how each callback is called ---------------------------------------- */

static int
call_connect(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->connect ? (int)d->connect(ctx, ev->str, ev->addr) : 0;
}

static int
call_helo(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->helo ? (int)d->helo(ctx, ev->str) : 0;
}

static int
call_envfrom(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	const char *const *args = (const char *const *)ev->argv + 1;

	return d->envfrom ? (int)d->envfrom(ctx, ev->argv[0], args) : 0;
}

static int
call_envrcpt(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	const char *const *args = (const char *const *)ev->argv + 1;

	return d->envrcpt ? (int)d->envrcpt(ctx, ev->argv[0], args) : 0;
}

static int
call_data(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->data ? (int)d->data(ctx) : 0;
}

static int
call_unknown(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->unknown ? (int)d->unknown(ctx, ev->str) : 0;
}

static int
call_header(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->header ? (int)d->header(ctx, ev->str, ev->value) : 0;
}

static int
call_eoh(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->eoh ? (int)d->eoh(ctx) : 0;
}

static int
call_body(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->body ? (int)d->body(ctx, ev->chunk, ev->len) : 0;
}

static int
call_eom(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	return d->eom ? (int)d->eom(ctx) : 0;
}

static int
call_abort(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	if (d->abort != NULL)
		d->abort(ctx);
	return 0;
}

static int
call_close(const struct mh_plugin *d, mh_ctx *ctx, const struct event *ev)
{
	if (d->close != NULL)
		d->close(ctx);
	return 0;
}

/* ---- the table ------------------------------------------------------------ */

#define CALLBACK(f) offsetof(struct mh_plugin, f), call_##f

static const struct stage_info stages[MH_STAGE_COUNT] = {
	[MH_STAGE_CONNECT] = { "connect", PROTO_NOCONNECT, PROTO_NR_CONN,
	    MACRO_CONNECT, SCOPE_CONNECTION, C | R | T | A,
	    CALLBACK(connect) },
	[MH_STAGE_HELO] = { "helo", PROTO_NOHELO, PROTO_NR_HELO,
	    MACRO_HELO, SCOPE_CONNECTION, C | R | T | A, CALLBACK(helo) },
	[MH_STAGE_ENVFROM] = { "envfrom", PROTO_NOMAIL, PROTO_NR_MAIL,
	    MACRO_ENVFROM, SCOPE_MESSAGE, C | R | T | D | A,
	    CALLBACK(envfrom) },
	[MH_STAGE_ENVRCPT] = { "envrcpt", PROTO_NORCPT, PROTO_NR_RCPT,
	    MACRO_ENVRCPT, SCOPE_RECIPIENT, C | R | T | D | A,
	    CALLBACK(envrcpt) },
	[MH_STAGE_DATA] = { "data", PROTO_NODATA, PROTO_NR_DATA,
	    MACRO_DATA, SCOPE_MESSAGE, C | R | T | D | A, CALLBACK(data) },
	[MH_STAGE_UNKNOWN] = { "unknown", PROTO_NOUNKNOWN, PROTO_NR_UNKN,
	    NO_MACROS, SCOPE_COMMAND, C | R | T, CALLBACK(unknown) },
	[MH_STAGE_HEADER] = { "header", PROTO_NOHDRS, PROTO_NR_HDR,
	    NO_MACROS, SCOPE_MESSAGE, C | R | T | D | A, CALLBACK(header) },
	[MH_STAGE_EOH] = { "eoh", PROTO_NOEOH, PROTO_NR_EOH,
	    MACRO_EOH, SCOPE_MESSAGE, C | R | T | D | A, CALLBACK(eoh) },
	[MH_STAGE_BODY] = { "body", PROTO_NOBODY, PROTO_NR_BODY,
	    NO_MACROS, SCOPE_MESSAGE, C | R | T | D | A | S,
	    CALLBACK(body) },
	[MH_STAGE_EOM] = { "eom", 0, 0,
	    MACRO_EOM, SCOPE_MESSAGE, C | R | T | D | A, CALLBACK(eom) },
	[MH_STAGE_ABORT] = { "abort", 0, 0,
	    NO_MACROS, SCOPE_END, C, CALLBACK(abort) },
	[MH_STAGE_CLOSE] = { "close", 0, 0,
	    NO_MACROS, SCOPE_END, C, CALLBACK(close) },
};

const struct stage_info *
stage_info(mh_stage stage)
{
	return &stages[stage];
}

const char *
stage_name(mh_stage stage)
{
	return (unsigned)stage < MH_STAGE_COUNT ? stages[stage].name : "?";
}

bool
stage_allows(mh_stage stage, int st)
{
	return st >= 0 && st < MH_FAIL && (stages[stage].allowed &
	    STATUS_BIT(st)) != 0;
}

bool
stage_is_message(mh_stage stage)
{
	return (unsigned)stage < MH_STAGE_COUNT &&
	    (stages[stage].scope == SCOPE_MESSAGE ||
	    stages[stage].scope == SCOPE_RECIPIENT);
}

bool
stage_implemented(const struct mh_plugin *d, mh_stage stage)
{
	void (*callback)(void);

	/* Every callback is a function pointer of the same size, and NULL
	 * is all zero bits on every platform milterhost runs on. */
	memcpy(&callback, (const char *)d + stages[stage].callback,
	    sizeof callback);
	return callback != NULL;
}

const char *
status_name(int st)
{
	static const char *const names[] = { "continue", "reject", "discard",
	    "accept", "tempfail", "skip", "fail" };

	return st >= 0 && st <= MH_FAIL ? names[st] : "an invalid status";
}

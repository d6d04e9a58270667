/*
 * context - the host functions a plugin calls through its mh_ctx.
 *
 * Every request is checked when it is made: a refused request is logged
 * with the instance, stage and queue id, returns an MH_E_* code to the
 * plugin and marks the running callback as failed, so that the engine
 * answers it with the instance's on_error setting.  Accepted message
 * changes are stored in the form they go to the MTA (see mods.h).
 *
 * Only the thread running a callback of the ctx may touch the session:
 * every host function but logging and the instance's name and state
 * first checks that it is that thread (enter), which costs two atomic
 * loads and pthread_self() per call.
 *
 * A plugin bug must never crash the daemon: a NULL context or a NULL where
 * a string or buffer is needed is refused and logged like any other bad
 * argument (getters return NULL; they do not fail the callback).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "context.h"
#include "kv.h"
#include "log.h"
#include "session.h"

/* libmilter refuses any single command longer than this. */
#define MAX_COMMAND 65535

/*
 * The first check of every host function that reads or changes the
 * session: MH_OK, or MH_E_STAGE for a call from another thread or between
 * callbacks, which would race with the session's thread.  The refusal is
 * logged; it does not mark the running callback failed, since that state
 * belongs to the session's thread.
 */
static int
enter(mh_ctx *ctx, const char *fn)
{
	char qid[SESSION_QID_MAX];

	if (ctx == NULL) {
		log_msg(LOG_ERR, "%s called with a NULL context: refused", fn);
		return MH_E_INVALID;
	}
	if (ctx_in_own_callback(ctx))
		return MH_OK;
	session_qid_copy(ctx->session, qid, sizeof qid);
	log_msg(LOG_ERR, "%s: [%s] %s called outside a callback of its "
	    "context: refused", qid, ctx->inst->name, fn);
	return MH_E_STAGE;
}

/* Plugins log at MH_LOG_ERR to MH_LOG_DEBUG: an emergency would reach
 * every terminal, and a value with facility bits another facility. */
static int
plugin_level(int level)
{
	if (level < MH_LOG_ERR)
		return MH_LOG_ERR;
	return level > MH_LOG_DEBUG ? MH_LOG_DEBUG : level;
}

void
mh_vlog(mh_ctx *ctx, int level, const char *fmt, va_list ap)
{
	char prefix[320], qid[SESSION_QID_MAX];
	/* Without a context, init and fini are still the instance's. */
	const char *name = ctx ? ctx->inst->name : loader_running_instance();

	if (fmt == NULL) {
		log_msg(LOG_ERR, "%s%s%smh_log called with a NULL format: "
		    "refused", name ? "[" : "", name ? name : "",
		    name ? "] " : "");
		return;
	}
	level = plugin_level(level);
	if (!log_enabled(level))
		return;
	/* No context: no queue id, and the instance only in init or fini. */
	if (ctx == NULL && name == NULL) {
		log_vmsg(level, fmt, ap);
		return;
	}
	if (ctx == NULL) {
		snprintf(prefix, sizeof prefix, "[%s] ", name);
		log_vmsg_prefixed(level, prefix, fmt, ap);
		return;
	}
	/* Any thread: the copy, not the session's own string. */
	session_qid_copy(ctx->session, qid, sizeof qid);
	snprintf(prefix, sizeof prefix, "%s: [%s] ", qid, ctx->inst->name);
	log_vmsg_prefixed(level, prefix, fmt, ap);
}

void
mh_log(mh_ctx *ctx, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mh_vlog(ctx, level, fmt, ap);
	va_end(ap);
}

/* Refuse a request: log it, mark the callback failed, return err. */
static int
refuse(mh_ctx *ctx, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
refuse(mh_ctx *ctx, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ctx->fail_reason, sizeof ctx->fail_reason, fmt, ap);
	va_end(ap);
	ctx->failed = true;
	log_msg(LOG_ERR, "%s: [%s] %s: refused: %s (%s)",
	    session_qid(ctx->session), ctx->inst->name,
	    stage_name(ctx->session->stage), ctx->fail_reason,
	    mh_strerror(err));
	return err;
}

/* From any thread: the instance outlives every session. */
void *
mh_instance_state(mh_ctx *ctx)
{
	if (ctx == NULL) {
		log_msg(LOG_ERR, "%s called with a NULL context: refused",
		    __func__);
		return NULL;
	}
	return ctx->inst->state;
}

const char *
mh_instance_name(mh_ctx *ctx)
{
	if (ctx == NULL) {
		log_msg(LOG_ERR, "%s called with a NULL context: refused",
		    __func__);
		return NULL;
	}
	return ctx->inst->name;
}

mh_stage
mh_current_stage(mh_ctx *ctx)
{
	if (enter(ctx, __func__) != MH_OK)
		return MH_STAGE_COUNT;
	return ctx->session->stage;
}

void *
mh_conn_data(mh_ctx *ctx)
{
	if (enter(ctx, __func__) != MH_OK)
		return NULL;
	return ctx->conn_data;
}

/* A slot set without a destructor has none: the plugin frees its data. */
void
mh_set_conn_data(mh_ctx *ctx, void *data)
{
	if (enter(ctx, __func__) != MH_OK)
		return;
	ctx->conn_data = data;
	ctx->conn_free = NULL;
}

void *
mh_msg_data(mh_ctx *ctx)
{
	if (enter(ctx, __func__) != MH_OK)
		return NULL;
	return ctx->msg_data;
}

void
mh_set_msg_data(mh_ctx *ctx, void *data)
{
	if (enter(ctx, __func__) != MH_OK)
		return;
	ctx->msg_data = data;
	ctx->msg_free = NULL;
}

/*
 * Replacing data does not call the old destructor for the old data: the
 * plugin replaced it knowingly and still owns it (it may be the same
 * object, or moved elsewhere).  session.c calls the destructor.
 */
int
mh_set_conn_data_free(mh_ctx *ctx, void *data, void (*destroy)(void *data))
{
	int rc;

	if ((rc = enter(ctx, __func__)) != MH_OK)
		return rc;
	ctx->conn_data = data;
	ctx->conn_free = destroy;
	return MH_OK;
}

int
mh_set_msg_data_free(mh_ctx *ctx, void *data, void (*destroy)(void *data))
{
	int rc;

	if ((rc = enter(ctx, __func__)) != MH_OK)
		return rc;
	ctx->msg_data = data;
	ctx->msg_free = destroy;
	return MH_OK;
}

const char *
mh_macro(mh_ctx *ctx, const char *name)
{
	char braced[128];
	size_t n;

	if (enter(ctx, __func__) != MH_OK)
		return NULL;
	if (name == NULL) {
		log_msg(LOG_ERR, "%s: [%s] mh_macro called with a NULL name",
		    session_qid(ctx->session), ctx->inst->name);
		return NULL;
	}
	if ((n = strlen(name)) == 0)
		return NULL;
	/* libmilter matches long names only in braces: accept both. */
	if (n > 1 && name[0] != '{' && n + 3 <= sizeof braced) {
		snprintf(braced, sizeof braced, "{%s}", name);
		name = braced;
	}
	return session_macro(ctx->session, name);
}

const char *
mh_queue_id(mh_ctx *ctx)
{
	if (enter(ctx, __func__) != MH_OK)
		return NULL;
	return session_macro(ctx->session, "i");
}

const char *
mh_client_address(mh_ctx *ctx)
{
	const char *macro;

	if (enter(ctx, __func__) != MH_OK)
		return NULL;
	if (ctx->session->client_addr[0] != '\0')
		return ctx->session->client_addr;
	/* No connect event (no instance takes it, so the MTA was asked not
	 * to send it): the macro, as if_client reads it, if the MTA sent
	 * it. */
	macro = session_macro(ctx->session, "{client_addr}");
	return macro != NULL && *macro != '\0' ? macro : NULL;
}

/* ---- replies ------------------------------------------------------- */

static int
set_reply(mh_ctx *ctx, const char *rcode, const char *xcode,
    const char *const *lines, size_t nlines)
{
	char err[200];
	mh_stage st = ctx->session->stage;

	if (st == MH_STAGE_ABORT || st == MH_STAGE_CLOSE)
		return refuse(ctx, MH_E_STAGE, "reply set at %s, where "
		    "nothing is answered", stage_name(st));
	if (lines == NULL && nlines > 0)
		return refuse(ctx, MH_E_INVALID, "bad reply: %zu lines at a "
		    "NULL array", nlines);
	if (reply_set(&ctx->reply, rcode, xcode, lines, nlines, err,
	    sizeof err) < 0)
		return refuse(ctx, MH_E_INVALID, "bad reply: %s", err);
	return MH_OK;
}

int
mh_set_reply_lines(mh_ctx *ctx, const char *rcode, const char *xcode,
    const char *const *lines, size_t nlines)
{
	int rc;

	if ((rc = enter(ctx, __func__)) != MH_OK)
		return rc;
	return set_reply(ctx, rcode, xcode, lines, nlines);
}

int
mh_set_reply(mh_ctx *ctx, const char *rcode, const char *xcode,
    const char *text)
{
	const char *lines[1] = { text };
	int rc;

	if ((rc = enter(ctx, __func__)) != MH_OK)
		return rc;
	return set_reply(ctx, rcode, xcode, lines, 1);
}

int
mh_set_mlreply(mh_ctx *ctx, const char *rcode, const char *xcode, ...)
{
	const char *lines[REPLY_MAX_LINES + 1];
	size_t n = 0;
	const char *line;
	va_list ap;
	int rc;

	if ((rc = enter(ctx, __func__)) != MH_OK)
		return rc;
	va_start(ap, xcode);
	while ((line = va_arg(ap, const char *)) != NULL) {
		if (n == REPLY_MAX_LINES + 1)
			break;
		lines[n++] = line;
	}
	va_end(ap);
	return set_reply(ctx, rcode, xcode, lines, n);
}

/* ---- message changes ---------------------------------------------- */

/* Is the request allowed now, and declared?  0 or a refusal. */
static int
check_change(mh_ctx *ctx, unsigned long action, const char *what)
{
	mh_stage st = ctx->session->stage;

	if (!stage_is_message(st))
		return refuse(ctx, MH_E_STAGE, "%s at %s: message changes "
		    "are allowed from envfrom to eom", what,
		    stage_name(st));
	if ((ctx->inst->actions & action) == 0)
		return refuse(ctx, MH_E_ACTION, "%s: action not declared "
		    "in the plugin's descriptor", what);
	return MH_OK;
}

static int
check_header_name(mh_ctx *ctx, const char *name)
{
	if (name == NULL)
		return refuse(ctx, MH_E_INVALID, "NULL header name");
	if (*name == '\0')
		return refuse(ctx, MH_E_INVALID, "empty header name");
	if (!mod_header_name_ok(name))
		return refuse(ctx, MH_E_INVALID, "bad header name '%.80s': "
		    "printable ASCII without ':' or space", name);
	return MH_OK;
}

static int
check_header_value(mh_ctx *ctx, const char *name, const char *value)
{
	if (value == NULL)
		return refuse(ctx, MH_E_INVALID, "header %s: NULL value", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\r')
			return refuse(ctx, MH_E_INVALID, "header %s: value "
			    "contains CR", name);
		if (*p == '\n' && p[1] != ' ' && p[1] != '\t')
			return refuse(ctx, MH_E_INVALID, "header %s: LF not "
			    "followed by space or tab (fold with \"\\n\\t\")",
			    name);
	}
	if (strlen(name) + strlen(value) + 16 > MAX_COMMAND)
		return refuse(ctx, MH_E_INVALID, "header %s: longer than the "
		    "milter protocol allows", name);
	return MH_OK;
}

/* A one-line envelope string: non-empty when required, no CR or LF. */
static int
check_line(mh_ctx *ctx, const char *what, const char *s, bool required)
{
	if (s == NULL || *s == '\0') {
		if (!required)
			return MH_OK;
		return refuse(ctx, MH_E_INVALID, "%s %s", s ? "empty" : "NULL",
		    what);
	}
	if (strpbrk(s, "\r\n") != NULL)
		return refuse(ctx, MH_E_INVALID, "%s contains CR or LF", what);
	if (strlen(s) > MAX_COMMAND - 16)
		return refuse(ctx, MH_E_INVALID, "%s too long", what);
	return MH_OK;
}

/*
 * The header value as it must go to the MTA: with one space prepended
 * for a plugin that does not handle the leading space itself while the
 * MTA was told we do, or with one removed in the opposite case.
 * Returns a string to free, or NULL (no memory).
 */
static char *
wire_value(mh_ctx *ctx, const char *value)
{
	char *out;

	if (!ctx->leadspc_fix)
		return strdup(value);
	if (!ctx->session->leadspc)
		return strdup(value[0] == ' ' ? value + 1 : value);
	if ((out = malloc(strlen(value) + 2)) == NULL)
		return NULL;
	out[0] = ' ';
	strcpy(out + 1, value);
	return out;
}

static void
describe(const struct mod_request *m, char *buf, size_t len)
{
	switch (m->type) {
	case MOD_ADD_HEADER:
	case MOD_INSERT_HEADER:
	case MOD_CHANGE_HEADER:
		snprintf(buf, len, "%s %s (index %d): %.200s",
		    mod_type_name(m->type), m->name, m->index,
		    m->value ? m->value : "(delete)");
		break;
	case MOD_REPLACE_BODY:
		snprintf(buf, len, "%s", mod_type_name(m->type));
		break;
	default:
		snprintf(buf, len, "%s %.200s%s%.100s", mod_type_name(m->type),
		    m->value, m->args ? " " : "", m->args ? m->args : "");
		break;
	}
}

/* Queue a checked request, or log it when the instance runs dry. */
static int
queue(mh_ctx *ctx, const struct mod_request *m)
{
	char what[512];

	if (ctx->inst->dry_run) {
		describe(m, what, sizeof what);
		mh_log(ctx, LOG_NOTICE, "dry run: would %s", what);
		return MH_OK;
	}
	if (mod_queue_push(&ctx->mods, m) < 0)
		return refuse(ctx, MH_E_NOMEM, "out of memory");
	return MH_OK;
}

static int
queue_header(mh_ctx *ctx, enum mod_type type, int idx, const char *name,
    const char *value)
{
	struct mod_request m = { .type = type, .index = idx, .name = name,
	    .owner = ctx->inst->name };
	char *wire;
	int rc;

	if (value == NULL)
		return queue(ctx, &m);
	if ((wire = wire_value(ctx, value)) == NULL)
		return refuse(ctx, MH_E_NOMEM, "out of memory");
	m.value = wire;
	rc = queue(ctx, &m);
	free(wire);
	return rc;
}

int
mh_header_add(mh_ctx *ctx, const char *name, const char *value)
{
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_ADDHDRS, "add header")) ||
	    (rc = check_header_name(ctx, name)) ||
	    (rc = check_header_value(ctx, name, value)))
		return rc;
	return queue_header(ctx, MOD_ADD_HEADER, 0, name, value);
}

int
mh_header_insert(mh_ctx *ctx, int idx, const char *name, const char *value)
{
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_ADDHDRS, "insert header")) ||
	    (rc = check_header_name(ctx, name)) ||
	    (rc = check_header_value(ctx, name, value)))
		return rc;
	if (idx < 0)
		return refuse(ctx, MH_E_INVALID, "insert header %s: index %d "
		    "is negative", name, idx);
	return queue_header(ctx, MOD_INSERT_HEADER, idx, name, value);
}

int
mh_header_change(mh_ctx *ctx, const char *name, int idx, const char *value)
{
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_CHGHDRS, "change header")) ||
	    (rc = check_header_name(ctx, name)))
		return rc;
	if (idx < 1)
		return refuse(ctx, MH_E_INVALID, "change header %s: index %d: "
		    "indexes count from 1", name, idx);
	/* A NULL value deletes, as with smfi_chgheader: plugins built for
	 * ABI 1.0 may rely on it. */
	if (value == NULL)
		return queue_header(ctx, MOD_CHANGE_HEADER, idx, name, NULL);
	if ((rc = check_header_value(ctx, name, value)))
		return rc;
	return queue_header(ctx, MOD_CHANGE_HEADER, idx, name, value);
}

int
mh_header_delete(mh_ctx *ctx, const char *name, int idx)
{
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_CHGHDRS, "delete header")) ||
	    (rc = check_header_name(ctx, name)))
		return rc;
	if (idx < 1)
		return refuse(ctx, MH_E_INVALID, "delete header %s: index %d: "
		    "indexes count from 1", name, idx);
	return queue_header(ctx, MOD_CHANGE_HEADER, idx, name, NULL);
}

int
mh_body_replace(mh_ctx *ctx, const void *data, size_t len)
{
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_CHGBODY, "replace body")))
		return rc;
	if (data == NULL && len > 0)
		return refuse(ctx, MH_E_INVALID, "replace body: NULL data");
	if (len > SIZE_MAX / 2)
		return refuse(ctx, MH_E_INVALID, "replace body: impossible "
		    "length %zu", len);
	if (ctx->inst->dry_run) {
		mh_log(ctx, LOG_NOTICE, "dry run: would replace the body "
		    "(%zu bytes)", len);
		return MH_OK;
	}
	if (mod_queue_append_body(&ctx->mods, data, len, ctx->inst->name) < 0)
		return refuse(ctx, MH_E_NOMEM, "out of memory");
	return MH_OK;
}

int
mh_rcpt_add(mh_ctx *ctx, const char *rcpt, const char *args)
{
	struct mod_request m = { .type = MOD_ADD_RCPT };
	bool with_args = args != NULL && *args != '\0';
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, with_args ? MH_ACT_ADDRCPT_PAR :
	    MH_ACT_ADDRCPT, with_args ? "add recipient with arguments" :
	    "add recipient")) ||
	    (rc = check_line(ctx, "recipient", rcpt, true)) ||
	    (rc = check_line(ctx, "recipient arguments", args, false)))
		return rc;
	m.owner = ctx->inst->name;
	m.value = rcpt;
	m.args = with_args ? args : NULL;
	return queue(ctx, &m);
}

int
mh_rcpt_delete(mh_ctx *ctx, const char *rcpt)
{
	struct mod_request m = { .type = MOD_DELETE_RCPT };
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_DELRCPT, "delete recipient")) ||
	    (rc = check_line(ctx, "recipient", rcpt, true)))
		return rc;
	m.owner = ctx->inst->name;
	m.value = rcpt;
	return queue(ctx, &m);
}

int
mh_from_change(mh_ctx *ctx, const char *sender, const char *args)
{
	struct mod_request m = { .type = MOD_CHANGE_FROM };
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_CHGFROM, "change sender")) ||
	    (rc = check_line(ctx, "sender", sender, true)) ||
	    (rc = check_line(ctx, "sender arguments", args, false)))
		return rc;
	m.owner = ctx->inst->name;
	m.value = sender;
	m.args = args && *args ? args : NULL;
	return queue(ctx, &m);
}

int
mh_quarantine(mh_ctx *ctx, const char *reason)
{
	struct mod_request m = { .type = MOD_QUARANTINE };
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_change(ctx, MH_ACT_QUARANTINE, "quarantine")) ||
	    (rc = check_line(ctx, "quarantine reason", reason, true)))
		return rc;
	m.owner = ctx->inst->name;
	m.value = reason;
	return queue(ctx, &m);
}

int
mh_progress(mh_ctx *ctx)
{
	struct session *s;
	int rc;

	if ((rc = enter(ctx, __func__)) != MH_OK)
		return rc;
	s = ctx->session;
	/* libmilter allows it only there, where the filter may take long. */
	if (s->stage != MH_STAGE_EOM)
		return refuse(ctx, MH_E_STAGE, "progress at %s: allowed at "
		    "eom only", stage_name(s->stage));
	if (!s->have_io || s->io.progress == NULL)
		return MH_OK;
	return s->io.progress(s->io.arg) == 0 ? MH_OK : MH_E_INVALID;
}

/* ---- the message's score (ABI 1.2) ---------------------------------- */

/* Scores belong to a message: from envfrom to eom. */
static int
check_score_stage(mh_ctx *ctx, const char *fn)
{
	mh_stage st = ctx->session->stage;

	if (!stage_is_message(st))
		return refuse(ctx, MH_E_STAGE, "%s at %s: scores are kept "
		    "from envfrom to eom", fn, stage_name(st));
	return MH_OK;
}

int
mh_score_add(mh_ctx *ctx, double points, const char *reason)
{
	int rc;

	if ((rc = enter(ctx, __func__)) ||
	    (rc = check_score_stage(ctx, __func__)))
		return rc;
	if (!score_points_ok(points))
		return refuse(ctx, MH_E_INVALID, "score points %g: a finite "
		    "number from %g to %g", points, -SCORE_POINTS_MAX,
		    SCORE_POINTS_MAX);
	if (reason == NULL || *reason == '\0')
		return refuse(ctx, MH_E_INVALID, "%s score reason",
		    reason ? "empty" : "NULL");
	if (strlen(reason) > SCORE_REASON_MAX)
		return refuse(ctx, MH_E_INVALID, "score reason longer than %d "
		    "bytes", SCORE_REASON_MAX);
	for (const unsigned char *p = (const unsigned char *)reason; *p; p++)
		if (*p < ' ' || *p == 127)
			return refuse(ctx, MH_E_INVALID, "score reason holds "
			    "a control character");
	if (ctx->inst->dry_run) {
		mh_log(ctx, LOG_NOTICE, "dry run: would add %g to the score: "
		    "%s", points, reason);
		return MH_OK;
	}
	if (score_add(&ctx->session->score, ctx->inst->name, points,
	    reason) < 0)
		return refuse(ctx, MH_E_NOMEM, "out of memory");
	mh_log(ctx, LOG_DEBUG, "score %+g (%s), total %g", points, reason,
	    ctx->session->score.total);
	return MH_OK;
}

int
mh_score_get(mh_ctx *ctx, double *total)
{
	int rc;

	if ((rc = enter(ctx, __func__)))
		return rc;
	if (!stage_is_message(ctx->session->stage)) {
		log_msg(LOG_ERR, "%s: [%s] %s at %s: scores are kept from "
		    "envfrom to eom", session_qid(ctx->session),
		    ctx->inst->name, __func__,
		    stage_name(ctx->session->stage));
		return MH_E_STAGE;
	}
	if (total == NULL) {
		log_msg(LOG_ERR, "%s: [%s] %s with a NULL total: refused",
		    session_qid(ctx->session), ctx->inst->name, __func__);
		return MH_E_INVALID;
	}
	*total = ctx->session->score.total;
	return MH_OK;
}

/* ---- the key-value store (ABI 1.4) ---------------------------------- */

/*
 * Log a kv call that did not do what it was asked.  Unlike refuse(), the
 * callback does not fail: what a store error means (fail open, tempfail)
 * is the plugin's to decide, and it sees the code.  A store that does
 * not answer is logged at debug level only: the Redis backend says once
 * when it goes away and once when it is back, and a line per call would
 * flood the log during an outage.
 */
static int
kv_decline(mh_ctx *ctx, int err, const char *fn, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int
kv_decline(mh_ctx *ctx, int err, const char *fn, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	log_msg(err == MH_E_UNAVAILABLE ? LOG_DEBUG : LOG_ERR,
	    "%s: [%s] %s at %s: %s (%s)", session_qid(ctx->session),
	    ctx->inst->name, fn,
	    stage_name(ctx->session->stage), why, mh_strerror(err));
	return err;
}

/*
 * The checks every kv call starts with: the thread, the key, the store.
 * On success *kv is the store and full the key with its namespace.
 */
static int
kv_enter(mh_ctx *ctx, const char *fn, const char *key, char *full,
    struct kv_store **kv)
{
	const char *ns;
	int rc;

	if ((rc = enter(ctx, fn)) != MH_OK)
		return rc;
	if (key == NULL)
		return kv_decline(ctx, MH_E_INVALID, fn, "NULL key");
	if (!kv_key_ok(key))
		return kv_decline(ctx, MH_E_INVALID, fn, "bad key '%.80s': 1 "
		    "to %d bytes of printable ASCII without spaces", key,
		    MH_KV_KEY_MAX);
	if ((*kv = ctx->session->set->kv) == NULL)
		return kv_decline(ctx, MH_E_UNAVAILABLE, fn, "no key-value "
		    "store in this program");
	ns = ctx->inst->kv_ns ? ctx->inst->kv_ns : ctx->inst->name;
	if (kv_full_key(full, KV_FULL_KEY_MAX, ns, key) < 0)
		return kv_decline(ctx, MH_E_INVALID, fn, "the instance name "
		    "is longer than a namespace may be (%d bytes): declare "
		    "one", KV_NS_MAX);
	return MH_OK;
}

/* What the store answered: answers pass, failures are logged. */
static int
kv_result(mh_ctx *ctx, const char *fn, const char *key, int rc)
{
	if (rc == MH_OK || rc == MH_E_NOTFOUND || rc == MH_E_EXISTS)
		return rc;
	return kv_decline(ctx, rc, fn, "key '%s'", key);
}

static int
kv_check_value(mh_ctx *ctx, const char *fn, const void *value, size_t len)
{
	if (value == NULL && len > 0)
		return kv_decline(ctx, MH_E_INVALID, fn, "NULL value of %zu "
		    "bytes", len);
	if (len > MH_KV_VALUE_MAX)
		return kv_decline(ctx, MH_E_INVALID, fn, "value of %zu bytes: "
		    "at most %d", len, MH_KV_VALUE_MAX);
	return MH_OK;
}

int
mh_kv_get(mh_ctx *ctx, const char *key, void *buf, size_t size, size_t *len)
{
	char full[KV_FULL_KEY_MAX];
	struct kv_store *kv;
	int rc;

	if ((rc = kv_enter(ctx, __func__, key, full, &kv)) != MH_OK)
		return rc;
	if (buf == NULL && size > 0)
		return kv_decline(ctx, MH_E_INVALID, __func__, "NULL buffer "
		    "of %zu bytes", size);
	return kv_result(ctx, __func__, key, kv_get(kv, full, buf, size,
	    len));
}

int
mh_kv_set(mh_ctx *ctx, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	char full[KV_FULL_KEY_MAX];
	struct kv_store *kv;
	int rc;

	if ((rc = kv_enter(ctx, __func__, key, full, &kv)) != MH_OK ||
	    (rc = kv_check_value(ctx, __func__, value, len)) != MH_OK)
		return rc;
	return kv_result(ctx, __func__, key, kv_set(kv, full, value, len,
	    ttl_s));
}

int
mh_kv_add(mh_ctx *ctx, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	char full[KV_FULL_KEY_MAX];
	struct kv_store *kv;
	int rc;

	if ((rc = kv_enter(ctx, __func__, key, full, &kv)) != MH_OK ||
	    (rc = kv_check_value(ctx, __func__, value, len)) != MH_OK)
		return rc;
	return kv_result(ctx, __func__, key, kv_add(kv, full, value, len,
	    ttl_s));
}

int
mh_kv_incr(mh_ctx *ctx, const char *key, long long by, unsigned ttl_s,
    long long *result)
{
	char full[KV_FULL_KEY_MAX];
	struct kv_store *kv;
	int rc;

	if ((rc = kv_enter(ctx, __func__, key, full, &kv)) != MH_OK)
		return rc;
	rc = kv_incr(kv, full, by, ttl_s, result);
	if (rc == MH_E_INVALID)
		return kv_decline(ctx, rc, __func__, "key '%s': the value is "
		    "not a decimal integer, or the sum is out of range", key);
	return kv_result(ctx, __func__, key, rc);
}

int
mh_kv_delete(mh_ctx *ctx, const char *key)
{
	char full[KV_FULL_KEY_MAX];
	struct kv_store *kv;
	int rc;

	if ((rc = kv_enter(ctx, __func__, key, full, &kv)) != MH_OK)
		return rc;
	return kv_result(ctx, __func__, key, kv_delete(kv, full));
}

const char *
mh_strerror(int err)
{
	switch (err) {
	case MH_OK:
		return "success";
	case MH_E_INVALID:
		return "invalid argument";
	case MH_E_ACTION:
		return "action not declared";
	case MH_E_STAGE:
		return "not allowed at this stage";
	case MH_E_NOMEM:
		return "out of memory";
	case MH_E_NOTFOUND:
		return "no such key";
	case MH_E_EXISTS:
		return "the key exists";
	case MH_E_UNAVAILABLE:
		return "the key-value store did not answer in time";
	}
	return "unknown error";
}

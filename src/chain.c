/*
 * chain - the chain engine.  See chain.h, and doc/design.md "Chain and
 * merge rules" for the rules implemented here.
 *
 * Every event goes through run_stage(): a loop over the instances in chain
 * order that skips those no longer active, calls the callback, turns what
 * it returned into a legal status (on_error, dry_run) and stops at the
 * first REJECT, TEMPFAIL or DISCARD.  The event functions around it only
 * open and close messages and pick the answer for the MTA.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>

#include "chain.h"
#include "log.h"
#include "milterclient.h"
#include "session.h"

/* Postfix's default macros per macro stage: the protocol library's
 * table (the macro stages are the wire's numbers in both). */
_Static_assert((int)MACRO_CONNECT == (int)MC_M_CONNECT &&
    (int)MACRO_EOM == (int)MC_M_EOM && (int)MACRO_EOH == (int)MC_M_EOH &&
    (int)MACRO_STAGES == (int)MC_M_STAGES,
    "the engine's macro stages are the wire's");

const char *
chain_default_macros(enum macro_stage m)
{
	return mc_default_macros((int)m);
}

static bool
stage_is_connection(mh_stage stage)
{
	return stage_info(stage)->scope == SCOPE_CONNECTION;
}

static bool
is_terminal(mh_status st)
{
	return st == MH_REJECT || st == MH_TEMPFAIL || st == MH_DISCARD;
}

/* ---- negotiation ---------------------------------------------------- */

/* Append macro name tok (len n) to list unless it is there already. */
static void
macro_list_add(char *list, size_t size, const char *tok, size_t n)
{
	char name[64];
	size_t nlen;
	const char *p;

	if (n >= 2 && tok[0] == '{' && tok[n - 1] == '}') {
		tok++;
		n -= 2;
	}
	if (n == 0 || n > 60)
		return;
	/* One-letter macros go bare, longer ones in braces, as MTAs send. */
	if (n == 1)
		snprintf(name, sizeof name, "%.*s", (int)n, tok);
	else
		snprintf(name, sizeof name, "{%.*s}", (int)n, tok);
	nlen = strlen(name);
	for (p = list; (p = strstr(p, name)) != NULL; p += nlen)
		if ((p == list || p[-1] == ' ') &&
		    (p[nlen] == ' ' || p[nlen] == '\0'))
			return;
	if (strlen(list) + nlen + 2 > size)
		return;
	if (*list)
		strcat(list, " ");
	strcat(list, name);
}

static void
macro_list_add_all(char *list, size_t size, const char *names)
{
	const char *p = names;

	while (*p) {
		size_t n;

		p += strspn(p, " \t");
		n = strcspn(p, " \t");
		if (n > 0)
			macro_list_add(list, size, p, n);
		p += n;
	}
}

/*
 * Does the instance make the MTA send stage's events?  When it takes the
 * stage, and RCPT for its if_rcpt condition (cond.h).
 */
static bool
uses_stage(const struct mh_ctx *ctx, mh_stage stage)
{
	if (ctx->disabled)
		return false;
	return instance_takes(ctx->inst, stage) ||
	    (stage == MH_STAGE_ENVRCPT && cond_has_rcpt(ctx->inst->cond));
}

/*
 * Conditions are decided at the first event of the session or message,
 * from the macros sent with it.  In Postfix the envelope events (connect
 * to DATA) come from smtpd, the others from cleanup, whose macros differ
 * ({daemon_name} is cleanup's own): if the conditions read macros and no
 * envelope event is sent, DATA, once per message, brings smtpd's.
 */
static void
take_an_envelope_event(struct session *s, struct negotiation *n)
{
	static const mh_stage envelope[] = { MH_STAGE_CONNECT, MH_STAGE_HELO,
	    MH_STAGE_ENVFROM, MH_STAGE_ENVRCPT, MH_STAGE_DATA };
	bool reads = false;

	for (size_t i = 0; i < s->nctx && !reads; i++)
		reads = !s->ctx[i].disabled &&
		    *cond_macros(s->ctx[i].inst->cond) != '\0';
	if (!reads)
		return;
	for (size_t i = 0; i < sizeof envelope / sizeof envelope[0]; i++)
		if (!(n->steps & stage_info(envelope[i])->no_bit))
			return;
	n->steps &= ~PROTO_NODATA;
}

/*
 * Macro lists: per stage, the union of what the instances declared there,
 * with Postfix's defaults, and what their conditions read (asked for at
 * every stage the MTA sends: a condition is decided at the instance's
 * first event, whichever that is).
 */
static void
negotiate_macros(struct session *s, struct negotiation *n)
{
	char list[2048];

	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++) {
		enum macro_stage m = stage_info(st)->macros;
		bool wanted = false, sent;

		if (m == NO_MACROS)
			continue;
		sent = !(n->steps & stage_info(st)->no_bit);
		list[0] = '\0';
		for (size_t i = 0; i < s->nctx; i++) {
			const char *names = s->ctx[i].inst->macros[st];
			const char *conds = sent ?
			    cond_macros(s->ctx[i].inst->cond) : "";

			if (s->ctx[i].disabled)
				continue;
			if ((names == NULL || !*names) && !*conds)
				continue;
			if (!wanted)
				macro_list_add_all(list, sizeof list,
				    chain_default_macros(m));
			wanted = true;
			if (names != NULL)
				macro_list_add_all(list, sizeof list, names);
			macro_list_add_all(list, sizeof list, conds);
		}
		if (!wanted)
			continue;
		free(s->macro_lists[m]);
		s->macro_lists[m] = strdup(list);
		n->macros[m] = s->macro_lists[m];
	}
}

/* Does ctx only observe at stage (ABI 1.1, mh_declare_observer)? */
static bool
observes(const struct mh_ctx *ctx, mh_stage stage)
{
	return (ctx->inst->observes & (1U << stage)) != 0;
}

/*
 * Is stage taken, and only by instances that declared they only observe
 * there?  Then the MTA need not wait for its answer.
 */
static bool
only_observed(struct session *s, mh_stage stage)
{
	bool taken = false;

	for (size_t i = 0; i < s->nctx; i++) {
		const struct mh_ctx *ctx = &s->ctx[i];

		/* With if_rcpt, its envfrom runs at its first matching
		 * recipient, whose answer may then be its decision. */
		if (stage == MH_STAGE_ENVRCPT && !ctx->disabled &&
		    cond_has_rcpt(ctx->inst->cond) &&
		    instance_takes(ctx->inst, MH_STAGE_ENVFROM) &&
		    !observes(ctx, MH_STAGE_ENVFROM))
			return false;
		if (ctx->disabled || !instance_takes(ctx->inst, stage))
			continue;
		if (!observes(ctx, stage))
			return false;
		taken = true;
	}
	return taken;
}

/*
 * MH_WANT_EARLIER_CHANGES: an instance's header, eoh and body calls wait
 * for the end of the message only when an instance before it may change
 * the headers or the body; otherwise what arrives is what it would see.
 */
static void
set_sees_earlier(struct session *s)
{
	const unsigned long changes = MH_ACT_ADDHDRS | MH_ACT_CHGHDRS |
	    MH_ACT_CHGBODY;
	bool changer = false;

	s->holding = false;
	for (size_t i = 0; i < s->nctx; i++) {
		struct mh_ctx *ctx = &s->ctx[i];

		ctx->sees_earlier = !ctx->disabled && changer &&
		    (ctx->inst->flags & MH_WANT_EARLIER_CHANGES);
		ctx->mods.new_view = ctx->sees_earlier;
		s->holding = s->holding || ctx->sees_earlier;
		if (!ctx->disabled && (ctx->inst->actions & changes))
			changer = true;
	}
}

void
chain_negotiate(struct session *s, struct negotiation *n)
{
	unsigned long wants = 0;

	n->actions = 0;
	n->steps = 0;
	memset(n->macros, 0, sizeof n->macros);
	for (size_t i = 0; i < s->nctx; i++) {
		struct mh_ctx *ctx = &s->ctx[i];
		unsigned long missing = ctx->inst->actions &
		    ~n->mta_actions;

		if (missing) {
			ctx->disabled = true;
			log_msg(LOG_WARNING, "[%s] needs actions 0x%lx that "
			    "the MTA does not offer: switched off for this "
			    "connection", ctx->inst->name, missing);
			continue;
		}
		n->actions |= ctx->inst->actions;
		wants |= ctx->inst->flags;
	}
	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++) {
		bool used = false;

		for (size_t i = 0; i < s->nctx && !used; i++)
			used = uses_stage(&s->ctx[i], st);
		if (!used)
			n->steps |= stage_info(st)->no_bit & n->mta_steps;
	}
	take_an_envelope_event(s, n);
	if (s->set->score.header != NULL) {
		s->score_header_ok = (n->mta_actions & MH_ACT_ADDHDRS) != 0;
		if (s->score_header_ok)
			n->actions |= MH_ACT_ADDHDRS;
		else
			log_msg(LOG_WARNING, "the MTA does not let milters add "
			    "headers: no %s header on this connection",
			    s->set->score.header);
	}
	n->steps |= n->mta_steps & PROTO_SKIP;
	if (wants & MH_WANT_REJECTED_RCPTS)
		n->steps |= n->mta_steps & PROTO_RCPT_REJ;
	if (wants & MH_WANT_HDR_LEADSPC)
		n->steps |= n->mta_steps & PROTO_HDR_LEADSPC;
	/*
	 * Headers arrive after the whole message, so the SMTP client hears a
	 * verdict only at its end anyway: a decision at header can wait for
	 * the next answered event, and the MTA need not wait for each header.
	 */
	if (!(n->steps & PROTO_NOHDRS))
		n->steps |= n->mta_steps & PROTO_NR_HDR;
	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++)
		if (only_observed(s, st))
			n->steps |= n->mta_steps & stage_info(st)->nr_bit;
	s->unanswered = n->steps & PROTO_NR_ALL;
	s->mta_sends_mail = !(n->steps & PROTO_NOMAIL);
	s->skip_ok = n->steps & PROTO_SKIP;
	s->rcpt_rej = n->steps & PROTO_RCPT_REJ;
	s->leadspc = n->steps & PROTO_HDR_LEADSPC;
	session_set_leadspc_fix(s);
	set_sees_earlier(s);
	if (n->mta_actions & ACT_SETSYMLIST) {
		negotiate_macros(s, n);
		for (int m = 0; m < MACRO_STAGES; m++)
			if (n->macros[m] != NULL)
				n->actions |= ACT_SETSYMLIST;
	}
}

/* ---- calling one plugin --------------------------------------------- */

/* The header value as this plugin expects it (leading space); NULL if
 * out of memory. */
static const char *
header_value_for(struct session *s, const struct mh_ctx *ctx,
    const char *value)
{
	size_t n;

	if (!ctx->leadspc_fix)
		return value;
	if (s->leadspc)
		return value[0] == ' ' ? value + 1 : value;
	n = strlen(value) + 2;
	if (n > s->scratch_len) {
		char *p = realloc(s->scratch, n);

		if (p == NULL)
			return NULL;
		s->scratch = p;
		s->scratch_len = n;
	}
	s->scratch[0] = ' ';
	memcpy(s->scratch + 1, value, n - 1);
	return s->scratch;
}

/*
 * Call ctx's callback for ev; its host calls are allowed meanwhile.  A
 * stage the instance does not take is no call: MH_CONTINUE.
 */
static int
call_plugin(struct session *s, struct mh_ctx *ctx, const struct event *ev)
{
	struct event header;
	int raw;

	if (!instance_takes(ctx->inst, ev->stage))
		return MH_CONTINUE;
	if (ev->stage == MH_STAGE_HEADER && ctx->leadspc_fix) {
		header = *ev;
		header.value = header_value_for(s, ctx, ev->value);
		/* The plugin must not get a value it does not expect. */
		if (header.value == NULL) {
			log_msg(LOG_ERR, "%s: [%s] header: out of memory for "
			    "the value's leading space", session_qid(s),
			    ctx->inst->name);
			return MH_FAIL;
		}
		ev = &header;
	}
	ctx_callback_starts(ctx);
	raw = stage_info(ev->stage)->call(ctx->inst->desc, ctx, ev);
	ctx_callback_ended(ctx);
	return raw;
}

static bool
reporting(const struct session *s)
{
	return s->have_io && s->io.report != NULL;
}

/*
 * call_plugin, timed when the time is wanted: for the message's log line
 * (added to the instance's, when that line is logged at all) and for the
 * report.  *ns: the time, 0 when not measured.
 */
static int
timed_call(struct session *s, struct mh_ctx *ctx, const struct event *ev,
    uint64_t *ns)
{
	struct timespec t0, t1;
	bool summing = log_enabled(LOG_INFO);
	int raw;

	*ns = 0;
	if (!summing && !reporting(s) && ctx->inst->slow_ns == 0)
		return call_plugin(s, ctx, ev);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	raw = call_plugin(s, ctx, ev);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*ns = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
	    (t1.tv_nsec - t0.tv_nsec));
	if (summing)
		ctx->msg_ns += *ns;
	if (ctx->inst->slow_ns > 0 && *ns > ctx->inst->slow_ns)
		log_msg(LOG_WARNING, "%s: [%s] %s took %.1f ms (slow_ms = "
		    "%llu)", session_qid(s), ctx->inst->name,
		    stage_name(ev->stage), (double)*ns / 1e6,
		    (unsigned long long)(ctx->inst->slow_ns / 1000000));
	return raw;
}

/* Tell the MTA side's report hook what ctx's callback did. */
static void
report_call(struct session *s, const struct mh_ctx *ctx, mh_stage stage,
    int raw, mh_status st, enum call_failure failure, size_t changes,
    uint64_t ns)
{
	struct call_report r = {
		.instance = (size_t)(ctx - s->ctx), .name = ctx->inst->name,
		.inst = ctx->inst, .stage = stage, .raw = raw, .status = st,
		.failure = failure, .changes = changes, .ns = ns,
		.slow = ctx->inst->slow_ns > 0 && ns > ctx->inst->slow_ns,
		.dry_run = ctx->inst->dry_run,
	};
	char want = st == MH_REJECT ? '5' : st == MH_TEMPFAIL ? '4' : 0;

	/* The chain walks every instance still in; a stage the instance
	 * does not take is no call. */
	if (!instance_takes(ctx->inst, stage))
		return;
	if (want != 0 && reply_class(&ctx->reply) == want)
		r.reply = &ctx->reply;
	if (changes > 0)
		r.new_changes = &ctx->mods.items[ctx->mods.n - changes];
	s->io.report(s->io.arg, &r);
}

/* An abort or close call: no status, reported like the others. */
static void
end_call(struct session *s, struct mh_ctx *ctx, const struct event *ev)
{
	uint64_t ns;

	ctx_begin_callback(ctx);
	timed_call(s, ctx, ev, &ns);
	reply_clear(&ctx->reply);
	if (reporting(s))
		report_call(s, ctx, ev->stage, MH_CONTINUE, MH_CONTINUE,
		    CALL_OK, 0, ns);
}

static mh_status
apply_on_error(struct session *s, struct mh_ctx *ctx, const char *why)
{
	const struct instance *inst = ctx->inst;
	mh_status st;

	log_msg(LOG_ERR, "%s: [%s] %s: %s; on_error = %s", session_qid(s),
	    inst->name, stage_name(s->stage), why,
	    config_on_error_name(inst->on_error));
	reply_clear(&ctx->reply);
	switch (inst->on_error) {
	case ON_ERROR_CONTINUE:
		return MH_CONTINUE;
	case ON_ERROR_ACCEPT:
		st = MH_ACCEPT;
		break;
	case ON_ERROR_REJECT:
		st = MH_REJECT;
		break;
	case ON_ERROR_TEMPFAIL:
	default:
		st = MH_TEMPFAIL;
		break;
	}
	return stage_allows(s->stage, st) ? st : MH_CONTINUE;
}

/*
 * Call ctx for ev and return the legal status to act on: failures go to
 * on_error, a dry-run instance's terminal decisions become CONTINUE.
 */
static mh_status
invoke(struct session *s, struct mh_ctx *ctx, const struct event *ev)
{
	enum call_failure failure = CALL_OK;
	size_t queued = mod_queue_count(&ctx->mods);
	char why[320];
	uint64_t ns;
	int raw;
	mh_status st;

	ctx_begin_callback(ctx);
	raw = timed_call(s, ctx, ev, &ns);
	if (ctx->failed) {
		failure = CALL_REFUSED;
		snprintf(why, sizeof why, "refused request: %s",
		    ctx->fail_reason);
		st = apply_on_error(s, ctx, why);
	} else if (raw == MH_FAIL) {
		failure = CALL_FAILED;
		st = apply_on_error(s, ctx, "the callback failed");
	} else if (!stage_allows(ev->stage, raw)) {
		failure = CALL_BAD_STATUS;
		snprintf(why, sizeof why, "returned %s (%d), not allowed here",
		    status_name(raw), raw);
		st = apply_on_error(s, ctx, why);
	} else if (raw != MH_CONTINUE && observes(ctx, ev->stage)) {
		failure = CALL_OBSERVER;
		snprintf(why, sizeof why, "returned %s where it declared it "
		    "only observes", status_name(raw));
		st = apply_on_error(s, ctx, why);
	} else {
		st = (mh_status)raw;
	}
	/* The decision as made, before a dry run turns it into CONTINUE. */
	if (reporting(s))
		report_call(s, ctx, ev->stage, raw, st, failure,
		    mod_queue_count(&ctx->mods) - queued, ns);
	if (ctx->inst->dry_run && is_terminal(st)) {
		log_msg(LOG_NOTICE, "%s: [%s] %s: dry run: would have "
		    "answered %s", session_qid(s), ctx->inst->name,
		    stage_name(ev->stage), status_name(st));
		st = MH_CONTINUE;
	}
	if (ctx->inst->dry_run)
		reply_clear(&ctx->reply);
	return st;
}

/* Take the deciding plugin's reply if it fits the decision. */
static const struct reply *
take_reply(struct session *s, struct mh_ctx *ctx, mh_status st)
{
	char want = st == MH_REJECT ? '5' : st == MH_TEMPFAIL ? '4' : 0;
	char have = reply_class(&ctx->reply);

	if (have == 0)
		return NULL;
	if (have != want) {
		if (want != 0)
			log_msg(LOG_WARNING, "%s: [%s] %s: reply %s does not "
			    "fit %s: dropped, the MTA's default is used",
			    session_qid(s), ctx->inst->name,
			    stage_name(s->stage), ctx->reply.rcode,
			    status_name(st));
		reply_clear(&ctx->reply);
		return NULL;
	}
	reply_move(&s->verdict_reply, &ctx->reply);
	return &s->verdict_reply;
}

static bool
is_rejected_rcpt(struct session *s)
{
	const char *mailer;

	if (!s->rcpt_rej)
		return false;
	mailer = session_macro(s, "{rcpt_mailer}");
	return mailer != NULL && strcmp(mailer, "error") == 0;
}

static bool
is_active(const struct mh_ctx *ctx, mh_stage stage, bool rejected_rcpt)
{
	if (ctx->disabled || ctx->conn_done || ctx->cond_conn == COND_OUT)
		return false;
	if (stage_is_message(stage) &&
	    (ctx->msg_done || ctx->cond_msg == COND_OUT))
		return false;
	if (stage == MH_STAGE_BODY && ctx->body_skip)
		return false;
	if (rejected_rcpt &&
	    !(ctx->inst->flags & MH_WANT_REJECTED_RCPTS))
		return false;
	return true;
}

/* ---- conditions (cond.h) ------------------------------------------- */

/* What the conditions may read, as the session knows it now. */
static struct cond_data
cond_data(struct session *s)
{
	struct cond_data d = { .macro = s->have_io ? s->io.macro : NULL,
	    .arg = s->io.arg, .client_addr = s->client_addr,
	    .client_known = s->client_known,
	    .sender = s->summary.sender[0] ? s->summary.sender : NULL };

	return d;
}

/* Log that ctx's conditions keep it out, and why (at debug level). */
static void
note_out(struct session *s, struct mh_ctx *ctx, const struct cond_data *d,
    const char *failed, const char *what)
{
	if (d->missing != NULL && !ctx->missing_logged) {
		ctx->missing_logged = true;
		log_msg(LOG_DEBUG, "%s: [%s] %s: the MTA did not send the macro "
		    "%s: the condition does not hold", session_qid(s),
		    ctx->inst->name, failed, d->missing);
	}
	log_msg(LOG_DEBUG, "%s: [%s] %s does not hold: not taking part in "
	    "this %s", session_qid(s), ctx->inst->name, failed, what);
}

/*
 * Does ctx take part in ev, by its conditions?  Its connection conditions
 * are decided at its first event of the session, its message conditions
 * at its first event of the message; with if_rcpt it sees the message from
 * its first matching recipient (envfrom then, see rcpt_enter()), each
 * matching recipient, and from DATA on only if the chain took one.
 */
static bool
takes_part(struct session *s, struct mh_ctx *ctx, const struct event *ev)
{
	const struct cond *c = ctx->inst->cond;
	struct cond_data d;
	const char *failed = NULL;

	if (c == NULL)
		return true;
	if (ctx->cond_conn == COND_OPEN) {
		d = cond_data(s);
		ctx->cond_conn = cond_connection_holds(c, &d, &failed) ?
		    COND_IN : COND_OUT;
		if (ctx->cond_conn == COND_OUT) {
			note_out(s, ctx, &d, failed, "connection");
			return false;
		}
	}
	if (!stage_is_message(ev->stage))
		return true;
	if (ctx->cond_msg == COND_OPEN) {
		d = cond_data(s);
		ctx->cond_msg = cond_message_holds(c, &d, &failed) ?
		    COND_IN : COND_OUT;
		if (ctx->cond_msg == COND_OUT) {
			note_out(s, ctx, &d, failed, "message");
			return false;
		}
	}
	if (!cond_has_rcpt(c))
		return true;
	switch (ev->stage) {
	case MH_STAGE_ENVFROM:
		return false;
	case MH_STAGE_ENVRCPT:
		return ctx->rcpt_now;
	default:
		if (ctx->rcpt_taken > 0)
			return true;
		ctx->cond_msg = COND_OUT;
		log_msg(LOG_DEBUG, "%s: [%s] if_rcpt: no recipient matched: "
		    "not taking part in this message", session_qid(s),
		    ctx->inst->name);
		return false;
	}
}

/*
 * ctx (with if_rcpt) meets a matching recipient.  The first one begins
 * its message: its envfrom is called now, with MAIL FROM's arguments.  A
 * refusal there refuses this recipient and, unanswered by more calls,
 * every later matching one: returns that status (its reply in *reply),
 * else CONTINUE, or ACCEPT if it left the message.
 */
static mh_status
rcpt_enter(struct session *s, struct mh_ctx *ctx, const struct reply **reply)
{
	struct event from = { .stage = MH_STAGE_ENVFROM };
	mh_status st;

	*reply = NULL;
	if (ctx->rcpt_refused != MH_CONTINUE) {
		if (reply_class(&ctx->refused_reply) != 0 &&
		    reply_copy(&s->verdict_reply, &ctx->refused_reply) == 0)
			*reply = &s->verdict_reply;
		return ctx->rcpt_refused;
	}
	if (ctx->rcpt_entered || s->envfrom_argv == NULL)
		return MH_CONTINUE;
	ctx->rcpt_entered = true;
	from.argv = s->envfrom_argv;
	s->stage = MH_STAGE_ENVFROM;
	st = invoke(s, ctx, &from);
	s->stage = MH_STAGE_ENVRCPT;
	if (is_terminal(st)) {
		ctx->rcpt_refused = st;
		if (reply_copy(&ctx->refused_reply, &ctx->reply) < 0)
			reply_clear(&ctx->refused_reply);
		*reply = take_reply(s, ctx, st);
		return st;
	}
	reply_clear(&ctx->reply);
	if (st == MH_ACCEPT)
		ctx->msg_done = true;
	return st;
}

/* Which instances with if_rcpt the recipient argv[0] concerns. */
static void
rcpt_match(struct session *s, const struct event *ev)
{
	for (size_t i = 0; i < s->nctx; i++) {
		struct mh_ctx *ctx = &s->ctx[i];

		if (cond_has_rcpt(ctx->inst->cond))
			ctx->rcpt_now = cond_rcpt_matches(ctx->inst->cond,
			    ev->argv[0]);
	}
}

/* The chain took the recipient: count it for those it matched. */
static void
count_taken_rcpt(struct session *s)
{
	for (size_t i = 0; i < s->nctx; i++) {
		struct mh_ctx *ctx = &s->ctx[i];

		if (ctx->rcpt_now) {
			ctx->rcpt_taken++;
			ctx->rcpt_now = false;
		}
	}
}

/* ---- the message as the earlier instances left it (view.h) ---------- */

static bool
is_content(mh_stage stage)
{
	return stage == MH_STAGE_HEADER || stage == MH_STAGE_EOH ||
	    stage == MH_STAGE_BODY;
}

/* Keep the message's headers and body for the instances that see the
 * earlier ones' changes. */
static void
hold_content(struct session *s, const struct event *ev)
{
	int rc = 0;

	if (ev->stage == MH_STAGE_HEADER)
		rc = view_add_header(&s->held, ev->str, ev->value);
	else if (ev->stage == MH_STAGE_BODY)
		rc = view_add_body(&s->held, ev->chunk, ev->len);
	if (rc < 0 && !s->held_lost) {
		s->held_lost = true;
		log_msg(LOG_ERR, "%s: out of memory keeping the message for "
		    "the instances that see earlier changes", session_qid(s));
	}
}

/* One content call of ctx, at its stage; MH_CONTINUE for a stage it
 * does not take. */
static mh_status
show(struct session *s, struct mh_ctx *ctx, const struct event *ev)
{
	if (!instance_takes(ctx->inst, ev->stage))
		return MH_CONTINUE;
	s->stage = ev->stage;
	return invoke(s, ctx, ev);
}

/* Its header, eoh and body calls with s->seen: CONTINUE, or the status
 * that ended them (SKIP only ends the body). */
static mh_status
show_content(struct session *s, struct mh_ctx *ctx)
{
	const struct view *v = &s->seen;
	struct event ev = { .stage = MH_STAGE_HEADER };
	mh_status st;

	for (size_t h = 0; h < v->nheaders; h++) {
		ev.str = v->headers[h].name;
		ev.value = v->headers[h].value;
		if ((st = show(s, ctx, &ev)) != MH_CONTINUE)
			return st;
	}
	ev = (struct event){ .stage = MH_STAGE_EOH };
	if ((st = show(s, ctx, &ev)) != MH_CONTINUE)
		return st;
	for (size_t off = 0; off < v->len; off += ev.len) {
		ev = (struct event){ .stage = MH_STAGE_BODY,
		    .chunk = v->body + off, .len = v->len - off };
		if (ev.len > VIEW_BODY_CHUNK)
			ev.len = VIEW_BODY_CHUNK;
		if ((st = show(s, ctx, &ev)) == MH_SKIP)
			break;
		if (st != MH_CONTINUE)
			return st;
	}
	return MH_CONTINUE;
}

/*
 * The end of the message for ctx, which sees the earlier instances'
 * changes (MH_WANT_EARLIER_CHANGES): its header, eoh and body calls with
 * the message as they left it, then its eom.  ACCEPT or a terminal status
 * on the way ends there, and then abort comes, eom not having come.
 */
static mh_status
see_earlier(struct session *s, struct mh_ctx *ctx, const struct event *eom)
{
	size_t i = (size_t)(ctx - s->ctx);
	struct mod_list earlier = { 0 };
	mh_status st;
	int rc;

	if (s->held_lost)
		return apply_on_error(s, ctx, "the message could not be kept "
		    "for it (out of memory)");
	for (size_t j = 0; j < i; j++)
		s->queues[j] = &s->ctx[j].mods;
	rc = mods_merge(&earlier, s->queues, i, NULL);
	if (rc == 0)
		rc = view_apply(&s->seen, &s->held, &earlier);
	mod_list_free(&earlier);
	if (rc < 0)
		return apply_on_error(s, ctx, "out of memory making the "
		    "message as the earlier instances left it");
	st = show_content(s, ctx);
	s->stage = MH_STAGE_EOM;
	view_free(&s->seen);
	if (st == MH_SKIP)
		st = MH_CONTINUE;
	if (st != MH_CONTINUE)
		return st;
	st = invoke(s, ctx, eom);
	ctx->msg_open = false;
	return st;
}

/* The chain loop: see the comment at the top of this file. */
static struct verdict
run_stage(struct session *s, const struct event *ev)
{
	struct verdict v = { MH_CONTINUE, NULL, false };
	bool rejected_rcpt = ev->stage == MH_STAGE_ENVRCPT &&
	    is_rejected_rcpt(s);

	s->stage = ev->stage;
	session_note_qid(s);
	if (ev->stage == MH_STAGE_ENVRCPT && s->keep_envfrom)
		rcpt_match(s, ev);
	for (size_t i = 0; i < s->nctx; i++) {
		struct mh_ctx *ctx = &s->ctx[i];
		mh_status st;

		/* Its content calls come at the end (see_earlier()). */
		if (ctx->sees_earlier && is_content(ev->stage))
			continue;
		if (!is_active(ctx, ev->stage, rejected_rcpt) ||
		    !takes_part(s, ctx, ev))
			continue;
		if (stage_is_message(ev->stage))
			ctx->msg_open = true;
		if (ev->stage == MH_STAGE_ENVRCPT &&
		    cond_has_rcpt(ctx->inst->cond)) {
			st = rcpt_enter(s, ctx, &v.reply);
			if (is_terminal(st)) {
				v.status = st;
				s->summary.decider = ctx->inst->name;
				s->summary.decider_inst = ctx->inst;
				s->summary.stage = ev->stage;
				break;
			}
			if (st == MH_ACCEPT)
				continue;
		}
		/* Its end-of-message call: no abort for this message. */
		if (ctx->sees_earlier && ev->stage == MH_STAGE_EOM) {
			st = see_earlier(s, ctx, ev);
		} else {
			st = invoke(s, ctx, ev);
			if (ev->stage == MH_STAGE_EOM)
				ctx->msg_open = false;
		}
		if (is_terminal(st)) {
			v.status = st;
			v.reply = take_reply(s, ctx, st);
			s->summary.decider = ctx->inst->name;
			s->summary.decider_inst = ctx->inst;
			s->summary.stage = ev->stage;
			break;
		}
		reply_clear(&ctx->reply);
		if (st == MH_ACCEPT && stage_is_connection(ev->stage))
			ctx->conn_done = true;
		else if (st == MH_ACCEPT)
			ctx->msg_done = true;
		else if (st == MH_SKIP)
			ctx->body_skip = true;
	}
	return v;
}

/* ---- messages -------------------------------------------------------- */

/*
 * Call abort for every plugin still in the message, then forget it; its
 * queued changes too, unless they back the list chain_eom handed out.
 */
static void
end_message(struct session *s, bool keep_changes)
{
	struct event ev = { .stage = MH_STAGE_ABORT };

	s->stage = MH_STAGE_ABORT;
	for (size_t i = 0; i < s->nctx; i++) {
		struct mh_ctx *ctx = &s->ctx[i];

		if (ctx->msg_open)
			end_call(s, ctx, &ev);
	}
	for (size_t i = 0; i < s->nctx; i++) {
		if (!keep_changes)
			mod_queue_clear(&s->ctx[i].mods);
		ctx_end_message(&s->ctx[i]);
	}
	if (!keep_changes)
		mod_queue_clear(&s->host_mods);
	if (s->in_message) {
		s->summary.scored = s->score.n > 0;
		s->summary.score_total = s->score.total;
		if (s->have_io && s->io.message_end != NULL)
			s->io.message_end(s->io.arg, &s->summary);
		summary_log(s);
	}
	score_clear(&s->score);
	session_forget_envfrom(s);
	/* Freed, not kept: a session's next message may be small. */
	view_free(&s->held);
	s->held_lost = false;
	s->in_message = false;
	/* The next message gets its own; until then lines say NOQUEUE. */
	if (s->qid[0] != '\0')
		session_set_qid(s, "");
}

static void
begin_event(struct session *s, mh_stage stage)
{
	reply_clear(&s->verdict_reply);
	if (stage == MH_STAGE_ENVFROM && s->in_message)
		end_message(s, false);
	if (stage_is_message(stage))
		s->in_message = true;
}

static bool
any_left(struct session *s, bool for_message)
{
	for (size_t i = 0; i < s->nctx; i++) {
		const struct mh_ctx *ctx = &s->ctx[i];

		if (!ctx->disabled && !ctx->conn_done &&
		    ctx->cond_conn != COND_OUT &&
		    !(for_message && (ctx->msg_done ||
		    ctx->cond_msg == COND_OUT)))
			return true;
	}
	return false;
}

/*
 * Does the message still need its end, though no instance is left?  For
 * changes queued, and for points the thresholds or the header must see
 * there (README "Scores").
 */
static bool
anything_queued(struct session *s)
{
	for (size_t i = 0; i < s->nctx; i++)
		if (mod_queue_count(&s->ctx[i].mods) > 0)
			return true;
	return s->score.n > 0 && score_policy_active(&s->set->score);
}

static bool
body_wanted(struct session *s)
{
	for (size_t i = 0; i < s->nctx; i++) {
		const struct mh_ctx *ctx = &s->ctx[i];

		if (is_active(ctx, MH_STAGE_BODY, false) &&
		    instance_takes(ctx->inst, MH_STAGE_BODY))
			return true;
	}
	return false;
}

/*
 * Is this event part of a message that already ended early?  A new MAIL
 * starts the next message; when MAIL is not sent, nothing tells the next
 * message from the old one, and any event starts it.
 */
static bool
message_is_over(struct session *s, mh_stage stage)
{
	if (s->msg_over == MH_CONTINUE)
		return false;
	if (stage == MH_STAGE_ENVFROM || !s->mta_sends_mail) {
		s->msg_over = MH_CONTINUE;
		reply_clear(&s->deferred_reply);
		return false;
	}
	return true;
}

/*
 * The answer to an event of a message that ended early: the status it
 * ended with and, once, the reply of a decision made at an unanswered
 * event, which takes effect now.
 */
static struct verdict
over_verdict(struct session *s)
{
	struct verdict v = { s->msg_over, NULL, false };

	if (reply_class(&s->deferred_reply) != 0) {
		reply_move(&s->verdict_reply, &s->deferred_reply);
		v.reply = &s->verdict_reply;
	}
	return v;
}

static const struct verdict no_answer = { MH_CONTINUE, NULL, true };

/* Run a message-stage event and pick the answer for the MTA. */
static struct verdict
message_event(struct session *s, const struct event *ev)
{
	bool unanswered = (stage_info(ev->stage)->nr_bit & s->unanswered) != 0;
	struct verdict v;

	if (s->refused != MH_CONTINUE)
		return unanswered ? no_answer :
		    (struct verdict){ s->refused, NULL, false };
	if (message_is_over(s, ev->stage))
		return unanswered ? no_answer : over_verdict(s);
	begin_event(s, ev->stage);
	if (s->holding)
		hold_content(s, ev);
	if (ev->stage == MH_STAGE_ENVFROM) {
		snprintf(s->summary.sender, sizeof s->summary.sender, "%s",
		    ev->argv[0]);
		if (s->keep_envfrom && session_keep_envfrom(s, ev->argv) < 0)
			log_msg(LOG_ERR, "%s: out of memory keeping MAIL FROM "
			    "for the instances with if_rcpt", session_qid(s));
	}
	v = run_stage(s, ev);
	if (ev->stage == MH_STAGE_ENVRCPT) {
		s->summary.rcpts_seen = true;
		if (!is_terminal(v.status)) {
			s->summary.rcpts++;
			if (!is_rejected_rcpt(s))
				count_taken_rcpt(s);
		}
	}
	if (is_terminal(v.status)) {
		/* Unanswered, a recipient's refusal can only refuse the
		 * message, at its next answered event. */
		if (ev->stage != MH_STAGE_ENVRCPT || v.status == MH_DISCARD ||
		    unanswered) {
			s->summary.result = v.status;
			end_message(s, false);
			s->msg_over = v.status;
		}
		if (!unanswered)
			return v;
		if (v.reply != NULL)
			reply_move(&s->deferred_reply, &s->verdict_reply);
		return no_answer;
	}
	if (!any_left(s, true) && !anything_queued(s)) {
		s->summary.result = MH_ACCEPT;
		end_message(s, false);
		s->msg_over = MH_ACCEPT;
		v.status = MH_ACCEPT;
	} else if (ev->stage == MH_STAGE_BODY && s->skip_ok &&
	    !body_wanted(s)) {
		v.status = MH_SKIP;
	} else {
		v.status = MH_CONTINUE;
	}
	return unanswered ? no_answer : v;
}

/* Run a connect or helo event. */
static struct verdict
connection_event(struct session *s, const struct event *ev)
{
	bool unanswered = (stage_info(ev->stage)->nr_bit & s->unanswered) != 0;
	struct verdict v;

	if (s->refused != MH_CONTINUE)
		return unanswered ? no_answer :
		    (struct verdict){ s->refused, NULL, false };
	begin_event(s, ev->stage);
	if (s->in_message)
		end_message(s, false);
	s->msg_over = MH_CONTINUE;
	v = run_stage(s, ev);
	/* Unanswered, a refusal reaches the MTA at the next answered event,
	 * which s->refused answers. */
	if (is_terminal(v.status))
		s->refused = v.status;
	else
		v.status = any_left(s, false) ? MH_CONTINUE : MH_ACCEPT;
	return unanswered ? no_answer : v;
}

/* ---- the events ------------------------------------------------------ */

static void
format_address(struct session *s, const struct sockaddr *addr)
{
	const void *bin = NULL;

	s->client_addr[0] = '\0';
	if (addr == NULL)
		return;
	if (addr->sa_family == AF_INET)
		bin = &((const struct sockaddr_in *)(const void *)addr)->sin_addr;
	else if (addr->sa_family == AF_INET6)
		bin = &((const struct sockaddr_in6 *)(const void *)addr)->sin6_addr;
	if (bin != NULL) {
		if (inet_ntop(addr->sa_family, bin, s->client_addr,
		    sizeof s->client_addr) == NULL)
			s->client_addr[0] = '\0';
	} else if (addr->sa_family == AF_UNIX) {
		snprintf(s->client_addr, sizeof s->client_addr, "%s",
		    ((const struct sockaddr_un *)(const void *)addr)->sun_path);
	}
}

struct verdict
chain_connect(struct session *s, const char *hostname,
    const struct sockaddr *addr)
{
	struct event ev = { .stage = MH_STAGE_CONNECT, .str = hostname,
	    .addr = addr };

	format_address(s, addr);
	s->client_known = true;
	return connection_event(s, &ev);
}

struct verdict
chain_helo(struct session *s, const char *name)
{
	struct event ev = { .stage = MH_STAGE_HELO, .str = name };

	return connection_event(s, &ev);
}

struct verdict
chain_envfrom(struct session *s, char **argv)
{
	struct event ev = { .stage = MH_STAGE_ENVFROM, .argv = argv };

	return message_event(s, &ev);
}

struct verdict
chain_envrcpt(struct session *s, char **argv)
{
	struct event ev = { .stage = MH_STAGE_ENVRCPT, .argv = argv };

	return message_event(s, &ev);
}

struct verdict
chain_data(struct session *s)
{
	struct event ev = { .stage = MH_STAGE_DATA };

	return message_event(s, &ev);
}

struct verdict
chain_unknown(struct session *s, const char *command)
{
	struct event ev = { .stage = MH_STAGE_UNKNOWN, .str = command };
	bool unanswered = (s->unanswered & PROTO_NR_UNKN) != 0;
	struct verdict v;

	if (s->refused != MH_CONTINUE)
		return unanswered ? no_answer :
		    (struct verdict){ s->refused, NULL, false };
	reply_clear(&s->verdict_reply);
	v = run_stage(s, &ev);
	/* Unanswered, a decision about this one command has nowhere to go
	 * (the MTA refuses unknown commands anyway); on_error logged it. */
	return unanswered ? no_answer : v;
}

struct verdict
chain_header(struct session *s, const char *name, const char *value)
{
	struct event ev = { .stage = MH_STAGE_HEADER, .str = name,
	    .value = value };

	return message_event(s, &ev);
}

struct verdict
chain_eoh(struct session *s)
{
	struct event ev = { .stage = MH_STAGE_EOH };

	return message_event(s, &ev);
}

struct verdict
chain_body(struct session *s, const unsigned char *chunk, size_t len)
{
	struct event ev = { .stage = MH_STAGE_BODY, .chunk = chunk,
	    .len = len };

	return message_event(s, &ev);
}

/*
 * The host's thresholds on the message's score, at its end, when no
 * instance decided otherwise: a REJECT or TEMPFAIL into v, logged and
 * noted for the message's line; else the score header, if configured and
 * anything was counted, joins the changes.
 */
static void
score_verdict(struct session *s, struct verdict *v)
{
	const struct score_policy *p = &s->set->score;
	const struct reply *reply;
	struct mod_request m = { .type = MOD_ADD_HEADER, .owner = "score" };
	mh_status st;
	char *value, *wire;

	if (s->score.n == 0)
		return;
	st = score_decide(p, &s->score, &reply);
	if (st != MH_CONTINUE) {
		score_explain(&s->score, st == MH_REJECT ? p->reject :
		    p->tempfail, s->summary.score, sizeof s->summary.score);
		log_msg(LOG_NOTICE, "%s: score %s: %s", session_qid(s),
		    s->summary.score, st == MH_REJECT ? "rejected" :
		    "tempfailed");
		v->status = st;
		v->reply = NULL;
		if (reply != NULL &&
		    reply_copy(&s->verdict_reply, reply) == 0)
			v->reply = &s->verdict_reply;
		s->summary.decider = NULL;
		s->summary.decider_inst = NULL;
		s->summary.stage = MH_STAGE_EOM;
		return;
	}
	if (p->header == NULL || !s->score_header_ok)
		return;
	if ((value = score_header_value(&s->score)) == NULL) {
		log_msg(LOG_ERR, "%s: out of memory for the %s header",
		    session_qid(s), p->header);
		return;
	}
	/* As the MTA wants values: with their leading space if it was told
	 * milterhost handles that space. */
	wire = value;
	if (s->leadspc && (wire = malloc(strlen(value) + 2)) != NULL) {
		wire[0] = ' ';
		strcpy(wire + 1, value);
	}
	m.name = p->header;
	m.value = wire;
	if (wire == NULL || mod_queue_push(&s->host_mods, &m) < 0)
		log_msg(LOG_ERR, "%s: out of memory for the %s header",
		    session_qid(s), p->header);
	if (wire != value)
		free(wire);
	free(value);
}

/* Build s->merged from every queue, for the adapter to apply. */
static void
merge_queues(struct session *s)
{
	for (size_t i = 0; i < s->nctx; i++)
		s->queues[i] = &s->ctx[i].mods;
	s->queues[s->nctx] = &s->host_mods;
	if (mods_merge(&s->merged, s->queues, s->nctx + 1,
	    session_qid(s)) < 0) {
		log_msg(LOG_ERR, "%s: out of memory merging message changes",
		    session_qid(s));
		s->merged.n = 0;
	}
}

struct verdict
chain_eom(struct session *s, const struct mod_list **mods)
{
	struct event ev = { .stage = MH_STAGE_EOM };
	struct verdict v;
	bool deliver;

	s->merged.n = 0;
	*mods = &s->merged;
	if (s->refused != MH_CONTINUE)
		return (struct verdict){ s->refused, NULL, false };
	if (message_is_over(s, MH_STAGE_EOM))
		return over_verdict(s);
	begin_event(s, MH_STAGE_EOM);
	v = run_stage(s, &ev);
	if (!is_terminal(v.status))
		score_verdict(s, &v);
	deliver = !is_terminal(v.status);
	if (deliver) {
		merge_queues(s);
		summary_note_changes(&s->summary, &s->merged);
		/* Everybody accepted (before or at eom). */
		if (!any_left(s, true))
			v.status = MH_ACCEPT;
	}
	s->summary.result = deliver ? MH_ACCEPT : v.status;
	end_message(s, deliver);
	return v;
}

void
chain_eom_applied(struct session *s)
{
	mod_queue_clear(&s->host_mods);
	for (size_t i = 0; i < s->nctx; i++)
		mod_queue_clear(&s->ctx[i].mods);
	s->merged.n = 0;
}

void
chain_abort(struct session *s)
{
	reply_clear(&s->deferred_reply);
	s->msg_over = MH_CONTINUE;
	if (s->in_message) {
		session_note_qid(s);
		end_message(s, false);
	}
}

void
chain_close(struct session *s)
{
	struct event ev = { .stage = MH_STAGE_CLOSE };

	if (s->in_message)
		end_message(s, false);
	s->stage = MH_STAGE_CLOSE;
	session_note_qid(s);
	for (size_t i = 0; i < s->nctx; i++) {
		struct mh_ctx *ctx = &s->ctx[i];

		end_call(s, ctx, &ev);
		ctx_end_connection(ctx);
	}
}

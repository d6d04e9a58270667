/*
 * mta - milterhost-replay's MTA.  See mta.h.
 *
 * send_event() is the one place an event goes to the chain: the stage's macros
 * first, then the event unless negotiated away, then the answer into the
 * trace.  transaction() walks one message through the stages and stops
 * where the MTA would; open_connection() opens a connection.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "mta.h"
#include "summary.h"

struct mta {
	struct plugin_set *set;
	struct mta_options opt;
	struct mtamacros *mm;
	struct trace *t;
	struct sockaddr_storage addr;
	bool addr_known;
	struct session *s;         /* the open connection, or NULL */
	struct negotiation n;
	/* The connection's fate: CONTINUE, or decided at connect or HELO
	 * (ACCEPT, REJECT, TEMPFAIL) with this reply and instance. */
	mh_status conn;
	mh_stage conn_stage;
	char conn_reply[4096];
	const char *conn_decider;
	unsigned long transactions; /* for the queue ids */
	bool lent;                 /* chain_eom lent its list */
	const char *decider;       /* the last instance that refused */
	/* The engine's account of the message, once it ended: who decided
	 * it (NULL: no instance), or the score's decision. */
	bool ended;
	const char *ended_decider;
	char score[256];
};

/* An event as send_event() takes it. */
struct send_args {
	mh_stage stage;
	const char *str;           /* hostname, HELO name, header name */
	const char *value;         /* header value */
	char **argv;               /* envfrom, envrcpt */
	const unsigned char *chunk;
	size_t len;
};

static const struct mod_list no_changes;

/* ---- the engine's hooks ------------------------------------------------ */

static const char *
io_macro(void *arg, const char *name)
{
	struct mta *m = arg;

	return mtamacros_get(m->mm, name);
}

static int
io_progress(void *arg)
{
	return 0;
}

/* A callback's report: traced if the instance takes that stage (the
 * engine walks the instances that do not too).  The last refusal is
 * kept for decisions the engine's summary does not cover: at connect and
 * HELO, and a message whose every recipient was refused. */
static void
io_report(void *arg, const struct call_report *r)
{
	struct mta *m = arg;

	if (instance_takes(r->inst, r->stage))
		trace_call(m->t, r);
	if ((r->status == MH_REJECT || r->status == MH_TEMPFAIL ||
	    r->status == MH_DISCARD) && !r->dry_run)
		m->decider = r->name;
}

static void
io_message_end(void *arg, const struct msg_summary *sum)
{
	struct mta *m = arg;

	m->ended = true;
	m->ended_decider = sum->decider;
	snprintf(m->score, sizeof m->score, "%s", sum->score);
}

/* ---- the client -------------------------------------------------------- */

int
mta_client_address(const char *text, struct sockaddr_storage *ss,
    bool *known, char *err, size_t errlen)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_un *un = (struct sockaddr_un *)ss;

	memset(ss, 0, sizeof *ss);
	*known = true;
	if (strcmp(text, "unknown") == 0) {
		*known = false;
		return 0;
	}
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(MTA_CLIENT_PORT);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(MTA_CLIENT_PORT);
		return 0;
	}
	if (text[0] == '/' && strlen(text) < sizeof un->sun_path) {
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, text);
		return 0;
	}
	snprintf(err, errlen, "client address %s: not an IPv4 or IPv6 "
	    "address, a socket path or \"unknown\"", text);
	return -1;
}

/* "user@host" (brackets and arguments dropped) into buf; the domain. */
static const char *
bare_address(const char *arg, char *buf, size_t len)
{
	const char *p = arg + (arg[0] == '<');
	size_t n = strcspn(p, "> \t");
	const char *at;

	snprintf(buf, len, "%.*s", (int)n, p);
	at = strrchr(buf, '@');
	return at != NULL ? at + 1 : "";
}

/* The connection's own macros (the user's -D values win). */
static int
connection_macros(struct mta *m)
{
	char host[256], addr[128], port[16], underscore[512];
	const struct mta_options *o = &m->opt;
	const char *name = o->client_name != NULL ? o->client_name :
	    "unknown";
	int rc = 0;

	if (gethostname(host, sizeof host) < 0 || host[0] == '\0')
		snprintf(host, sizeof host, "localhost");
	host[sizeof host - 1] = '\0';
	snprintf(addr, sizeof addr, "%s", m->addr_known ? o->client_addr :
	    "unknown");
	snprintf(port, sizeof port, "%d", MTA_CLIENT_PORT);
	snprintf(underscore, sizeof underscore, "%s [%s]", name, addr);
	rc |= mtamacros_set(m->mm, "j", host);
	rc |= mtamacros_set(m->mm, "daemon_name", host);
	rc |= mtamacros_set(m->mm, "daemon_addr", "127.0.0.1");
	rc |= mtamacros_set(m->mm, "daemon_port", "25");
	rc |= mtamacros_set(m->mm, "v", "milterhost-replay " PACKAGE_VERSION);
	rc |= mtamacros_set(m->mm, "_", underscore);
	rc |= mtamacros_set(m->mm, "client_addr", m->addr_known ? addr : NULL);
	rc |= mtamacros_set(m->mm, "client_port", m->addr_known ? port :
	    NULL);
	rc |= mtamacros_set(m->mm, "client_name", name);
	rc |= mtamacros_set(m->mm, "client_ptr", o->client_name);
	rc |= mtamacros_set(m->mm, "auth_authen", o->auth_user);
	rc |= mtamacros_set(m->mm, "auth_type", o->auth_user != NULL ?
	    "PLAIN" : NULL);
	return rc;
}

/* ---- one event --------------------------------------------------------- */

/* The list of macro stage ms: the negotiated one, else Postfix's. */
static const char *
macro_list(const struct mta *m, enum macro_stage ms)
{
	return m->n.macros[ms] != NULL ? m->n.macros[ms] :
	    chain_default_macros(ms);
}

static bool
negotiated_away(const struct mta *m, mh_stage st)
{
	return (m->n.steps & stage_info(st)->no_bit) != 0;
}

static void
trace_sent(struct mta *m, const struct send_args *a)
{
	char len[32];

	switch (a->stage) {
	case MH_STAGE_CONNECT:
		if (!trace_begin(m->t, "event"))
			return;
		trace_word(m->t, stage_name(a->stage));
		trace_word(m->t, a->str);
		trace_word(m->t, m->addr_known ? m->opt.client_addr :
		    "unknown");
		trace_end(m->t);
		return;
	case MH_STAGE_ENVFROM:
	case MH_STAGE_ENVRCPT:
		if (!trace_begin(m->t, "event"))
			return;
		trace_word(m->t, stage_name(a->stage));
		for (char **p = a->argv; *p != NULL; p++)
			trace_word(m->t, *p);
		trace_end(m->t);
		return;
	case MH_STAGE_HEADER:
		trace_event(m->t, a->stage, a->str, a->value);
		return;
	case MH_STAGE_BODY:
		snprintf(len, sizeof len, "%zu", a->len);
		trace_event(m->t, a->stage, len, NULL);
		return;
	default:
		trace_event(m->t, a->stage, a->str, NULL);
		return;
	}
}

/* The chain's answer to event a. */
static struct verdict
call_chain(struct mta *m, const struct send_args *a)
{
	switch (a->stage) {
	case MH_STAGE_CONNECT:
		return chain_connect(m->s, a->str, m->addr_known ?
		    (const struct sockaddr *)&m->addr : NULL);
	case MH_STAGE_HELO:
		return chain_helo(m->s, a->str);
	case MH_STAGE_ENVFROM:
		return chain_envfrom(m->s, a->argv);
	case MH_STAGE_ENVRCPT:
		return chain_envrcpt(m->s, a->argv);
	case MH_STAGE_DATA:
		return chain_data(m->s);
	case MH_STAGE_HEADER:
		return chain_header(m->s, a->str, a->value);
	case MH_STAGE_EOH:
		return chain_eoh(m->s);
	case MH_STAGE_BODY:
		return chain_body(m->s, a->chunk, a->len);
	default:
		return (struct verdict){ MH_CONTINUE, NULL, true };
	}
}

/*
 * Send event a as the MTA does: the stage's macros, then the event
 * unless negotiated away.  Returns what the MTA heard: an event not sent,
 * or not answered, reads as unanswered.  *reply gets the answer's reply.
 */
static struct verdict
send_event(struct mta *m, const struct send_args *a, char *reply, size_t len)
{
	enum macro_stage ms = stage_info(a->stage)->macros;
	struct verdict v;

	reply[0] = '\0';
	if (ms != NO_MACROS &&
	    mtamacros_send(m->mm, ms, macro_list(m, ms)) < 0)
		fprintf(stderr, "milterhost-replay: out of memory for the "
		    "macros of %s\n", stage_name(a->stage));
	if (negotiated_away(m, a->stage))
		return (struct verdict){ MH_CONTINUE, NULL, true };
	if (ms != NO_MACROS)
		mtamacros_event(m->mm, ms);
	trace_sent(m, a);
	v = call_chain(m, a);
	trace_answer(m->t, a->stage, &v);
	if (!v.unanswered && v.reply != NULL && v.reply->nlines > 0)
		trace_reply_text(v.reply, reply, len);
	return v;
}

/* Did the answer end the message?  Then out says how. */
static bool
ends_message(struct mta *m, const struct verdict *v, mh_stage st,
    const char *reply, struct outcome *out)
{
	if (v->unanswered || (v->status != MH_REJECT &&
	    v->status != MH_TEMPFAIL && v->status != MH_DISCARD &&
	    v->status != MH_ACCEPT))
		return false;
	out->status = v->status;
	out->stage = st;
	snprintf(out->reply, sizeof out->reply, "%s", reply);
	out->decider = v->status == MH_ACCEPT ? NULL : m->ended ?
	    m->ended_decider : m->decider;
	if (m->ended)
		snprintf(out->score, sizeof out->score, "%s", m->score);
	out->mods = &no_changes;
	return true;
}

/* ---- the connection ---------------------------------------------------- */

/* " key=a,b,c": the negotiated actions, events, events not answered or
 * options (skip, rcpt_rej, leadspc) that key names; "none" for none. */
static void
trace_names(struct mta *m, const char *key, bool actions)
{
	static const struct {
		unsigned long bit;
		const char *name;
	} options[] = { { PROTO_SKIP, "skip" }, { PROTO_RCPT_REJ, "rcpt_rej" },
	    { PROTO_HDR_LEADSPC, "leadspc" } };
	const char *sep = "";

	trace_fmt(m->t, " %s=", key);
	if (actions) {
		for (unsigned long bit = 1; bit <= ACT_SETSYMLIST; bit <<= 1)
			if ((m->n.actions & bit) &&
			    trace_action_name(bit) != NULL) {
				trace_fmt(m->t, "%s%s", sep,
				    trace_action_name(bit));
				sep = ",";
			}
	} else if (strcmp(key, "options") == 0) {
		for (size_t i = 0; i < sizeof options / sizeof options[0]; i++)
			if (m->n.steps & options[i].bit) {
				trace_fmt(m->t, "%s%s", sep, options[i].name);
				sep = ",";
			}
	} else {
		bool events = strcmp(key, "events") == 0;

		for (mh_stage st = 0; st <= MH_STAGE_EOM; st++)
			if (events ? !negotiated_away(m, st) :
			    (stage_info(st)->nr_bit & m->n.steps) != 0) {
				trace_fmt(m->t, "%s%s", sep, stage_name(st));
				sep = ",";
			}
	}
	if (*sep == '\0')
		trace_fmt(m->t, "none");
}

static void
trace_negotiation(struct mta *m)
{
	static const char *const stages[MACRO_STAGES] = { "connect", "helo",
	    "envfrom", "envrcpt", "data", "eom", "eoh" };

	if (trace_begin(m->t, "negotiate")) {
		trace_names(m, "actions", true);
		trace_names(m, "events", false);
		trace_names(m, "noreply", false);
		trace_names(m, "options", false);
		trace_end(m->t);
	}
	for (int ms = 0; ms < MACRO_STAGES; ms++) {
		if (m->n.macros[ms] == NULL || !trace_begin(m->t, "macros"))
			continue;
		trace_word(m->t, stages[ms]);
		trace_quoted(m->t, m->n.macros[ms], strlen(m->n.macros[ms]));
		trace_end(m->t);
	}
}

/* A connection decided at connect or HELO: its fate, for every message. */
static void
connection_decided(struct mta *m, const struct verdict *v, mh_stage st,
    const char *reply)
{
	if (v->unanswered || (v->status != MH_REJECT &&
	    v->status != MH_TEMPFAIL && v->status != MH_ACCEPT))
		return;
	m->conn = v->status;
	m->conn_stage = st;
	snprintf(m->conn_reply, sizeof m->conn_reply, "%s", reply);
	m->conn_decider = v->status == MH_ACCEPT ? NULL : m->decider;
}

/* Open a connection: negotiation, connect, HELO.  -1: out of memory. */
static int
open_connection(struct mta *m)
{
	struct chain_io io = { .macro = io_macro, .progress = io_progress,
	    .arg = m, .report = io_report, .message_end = io_message_end };
	struct send_args conn = { .stage = MH_STAGE_CONNECT };
	struct send_args helo = { .stage = MH_STAGE_HELO, .str = m->opt.helo };
	char host[256], reply[4096];
	struct verdict v;

	if ((m->s = session_new(m->set, &io)) == NULL)
		return -1;
	memset(&m->n, 0, sizeof m->n);
	m->n.mta_actions = m->opt.actions;
	m->n.mta_steps = m->opt.steps;
	chain_negotiate(m->s, &m->n);
	trace_negotiation(m);
	mtamacros_forget(m->mm);
	if (connection_macros(m) < 0)
		return -1;
	m->conn = MH_CONTINUE;
	m->decider = NULL;
	/* Postfix names an unverified client by its address in brackets. */
	if (m->opt.client_name != NULL)
		snprintf(host, sizeof host, "%s", m->opt.client_name);
	else
		snprintf(host, sizeof host, "[%s]", m->addr_known ?
		    m->opt.client_addr : "unknown");
	conn.str = host;
	v = send_event(m, &conn, reply, sizeof reply);
	connection_decided(m, &v, MH_STAGE_CONNECT, reply);
	if (m->conn != MH_CONTINUE)
		return 0;
	v = send_event(m, &helo, reply, sizeof reply);
	connection_decided(m, &v, MH_STAGE_HELO, reply);
	return 0;
}

static void
disconnect(struct mta *m)
{
	if (m->s == NULL)
		return;
	trace_event(m->t, MH_STAGE_CLOSE, NULL, NULL);
	chain_close(m->s);
	session_free(m->s);
	m->s = NULL;
}

/* ---- one message ------------------------------------------------------- */

/* "<a@b> ARG ..." as an argv (NULL-terminated, one allocation each). */
static char **
split_args(const char *line)
{
	size_t n = 0, cap = 4;
	char **argv = malloc(cap * sizeof *argv);
	const char *p = line;

	if (argv == NULL)
		return NULL;
	while (*(p += strspn(p, " \t")) != '\0') {
		size_t len = strcspn(p, " \t");

		if (n + 2 > cap) {
			char **q = realloc(argv, (cap *= 2) * sizeof *argv);

			if (q == NULL)
				goto fail;
			argv = q;
		}
		if ((argv[n++] = strndup(p, len)) == NULL)
			goto fail;
		p += len;
	}
	if (n == 0 && (argv[n++] = strdup("<>")) == NULL)
		goto fail;
	argv[n] = NULL;
	return argv;
fail:
	while (n > 0)
		free(argv[--n]);
	free(argv);
	return NULL;
}

static void
free_args(char **argv)
{
	if (argv == NULL)
		return;
	for (char **p = argv; *p != NULL; p++)
		free(*p);
	free(argv);
}

/* The macros of a new transaction: the queue id is not known yet. */
static int
transaction_macros(struct mta *m, const struct envelope *env)
{
	char addr[1024];
	const char *domain = bare_address(env->from, addr, sizeof addr);
	int rc = 0;

	m->transactions++;
	rc |= mtamacros_set(m->mm, "i", NULL);
	rc |= mtamacros_set(m->mm, "mail_addr", addr);
	rc |= mtamacros_set(m->mm, "mail_host", domain);
	rc |= mtamacros_set(m->mm, "mail_mailer", "smtp");
	return rc;
}

/* Postfix knows the queue id once a recipient was taken. */
static int
queue_id_known(struct mta *m)
{
	char qid[16];

	snprintf(qid, sizeof qid, "%010lX", m->transactions);
	return mtamacros_set(m->mm, "i", qid);
}

static int
recipient_macros(struct mta *m, const char *rcpt)
{
	char addr[1024];
	const char *domain = bare_address(rcpt, addr, sizeof addr);
	int rc = 0;

	rc |= mtamacros_set(m->mm, "rcpt_addr", addr);
	rc |= mtamacros_set(m->mm, "rcpt_host", domain);
	rc |= mtamacros_set(m->mm, "rcpt_mailer", "smtp");
	return rc;
}

/* MAIL FROM and the recipients.  1: the message ended; 0: go on. */
static int
envelope_events(struct mta *m, struct envelope *env, mh_stage last,
    struct outcome *out, char *err, size_t errlen)
{
	struct send_args a = { .stage = MH_STAGE_ENVFROM };
	char reply[4096], refusal[4096] = "";
	mh_status refused = MH_CONTINUE;
	struct verdict v;

	if (transaction_macros(m, env) < 0 ||
	    (a.argv = split_args(env->from)) == NULL)
		goto nomem;
	v = send_event(m, &a, reply, sizeof reply);
	free_args(a.argv);
	if (ends_message(m, &v, MH_STAGE_ENVFROM, reply, out) ||
	    last == MH_STAGE_ENVFROM)
		return 1;
	a.stage = MH_STAGE_ENVRCPT;
	for (size_t i = 0; i < env->nrcpts; i++) {
		if (recipient_macros(m, env->rcpts[i]) < 0 ||
		    (a.argv = split_args(env->rcpts[i])) == NULL)
			goto nomem;
		v = send_event(m, &a, reply, sizeof reply);
		free_args(a.argv);
		out->rcpts++;
		if (!v.unanswered && (v.status == MH_REJECT ||
		    v.status == MH_TEMPFAIL)) {
			env->refused[i] = true;
			if (refused != MH_TEMPFAIL)
				refused = v.status;
			snprintf(refusal, sizeof refusal, "%s", reply);
			continue;
		}
		if (ends_message(m, &v, MH_STAGE_ENVRCPT, reply, out))
			return 1;
		if (out->taken++ == 0 && queue_id_known(m) < 0)
			goto nomem;
	}
	if (out->taken > 0)
		return 0;
	/* Every recipient refused: no DATA.  A tempfail may succeed later. */
	v = (struct verdict){ refused, NULL, false };
	ends_message(m, &v, MH_STAGE_ENVRCPT, refusal, out);
	out->no_rcpt = true;
	return 1;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}

/* DATA, the headers and end of headers.  1: the message ended. */
static int
header_events(struct mta *m, struct message *msg, mh_stage last,
    struct outcome *out)
{
	struct send_args a = { .stage = MH_STAGE_DATA };
	bool leadspc = (m->n.steps & PROTO_HDR_LEADSPC) != 0;
	char reply[4096];
	struct verdict v;

	v = send_event(m, &a, reply, sizeof reply);
	if (ends_message(m, &v, MH_STAGE_DATA, reply, out) ||
	    last == MH_STAGE_DATA)
		return 1;
	a.stage = MH_STAGE_HEADER;
	for (size_t i = 0; i < msg->nheaders; i++) {
		const char *value = header_value(&msg->headers[i]);

		/* Without HDR_LEADSPC the MTA drops one space (not a tab). */
		a.str = msg->headers[i].name;
		a.value = !leadspc && value[0] == ' ' ? value + 1 : value;
		v = send_event(m, &a, reply, sizeof reply);
		if (ends_message(m, &v, MH_STAGE_HEADER, reply, out))
			return 1;
	}
	if (last == MH_STAGE_HEADER)
		return 1;
	a = (struct send_args){ .stage = MH_STAGE_EOH };
	v = send_event(m, &a, reply, sizeof reply);
	return ends_message(m, &v, MH_STAGE_EOH, reply, out) ||
	    last == MH_STAGE_EOH;
}

/* The body in chunks.  1: the message ended; -1: a read error. */
static int
body_events(struct mta *m, struct message *msg, struct outcome *out,
    char *err, size_t errlen)
{
	struct send_args a = { .stage = MH_STAGE_BODY };
	struct body_reader *r;
	char reply[4096];
	ssize_t n;
	int rc = 0;

	if (negotiated_away(m, MH_STAGE_BODY))
		return 0;
	if ((r = malloc(sizeof *r)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (body_start(r, msg, "\r\n", err, errlen) < 0) {
		free(r);
		return -1;
	}
	while ((n = body_next(r, &a.chunk, err, errlen)) > 0) {
		struct verdict v;

		a.len = (size_t)n;
		v = send_event(m, &a, reply, sizeof reply);
		if (ends_message(m, &v, MH_STAGE_BODY, reply, out)) {
			rc = 1;
			break;
		}
		if (!v.unanswered && v.status == MH_SKIP)
			break;
	}
	free(r);
	return n < 0 ? -1 : rc;
}

/* End of message: the verdict and, for delivery, the changes. */
static void
end_of_message(struct mta *m, struct outcome *out)
{
	enum macro_stage ms = stage_info(MH_STAGE_EOM)->macros;
	const struct mod_list *mods;
	char reply[4096] = "";
	struct verdict v;

	if (mtamacros_send(m->mm, ms, macro_list(m, ms)) < 0)
		fprintf(stderr, "milterhost-replay: out of memory for the "
		    "macros of eom\n");
	trace_event(m->t, MH_STAGE_EOM, NULL, NULL);
	v = chain_eom(m->s, &mods);
	m->lent = true;
	for (size_t i = 0; i < mods->n; i++)
		trace_change(m->t, mods->items[i]);
	trace_answer(m->t, MH_STAGE_EOM, &v);
	if (v.reply != NULL && v.reply->nlines > 0)
		trace_reply_text(v.reply, reply, sizeof reply);
	if (ends_message(m, &v, MH_STAGE_EOM, reply, out) &&
	    v.status != MH_ACCEPT)
		return;
	out->status = MH_ACCEPT;
	out->stage = MH_STAGE_EOM;
	out->decider = NULL;
	out->mods = mods;
	out->changes = mods->n;
	out->leadspc = (m->n.steps & PROTO_HDR_LEADSPC) != 0;
}

/*
 * One transaction up to the end of stage last (MH_STAGE_EOM: the whole
 * message, to its verdict).  Returns 0, or -1 with the reason in err.
 */
static int
transaction(struct mta *m, struct message *msg, struct envelope *env,
    mh_stage last, struct outcome *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof *out);
	out->status = MH_CONTINUE;
	m->ended = false;
	m->score[0] = '\0';
	for (size_t i = 0; i < env->nrcpts; i++)
		env->refused[i] = false;
	if ((rc = envelope_events(m, env, last, out, err, errlen)) != 0 ||
	    last == MH_STAGE_ENVRCPT)
		return rc < 0 ? -1 : 0;
	if (header_events(m, msg, last, out) != 0)
		return 0;
	if ((rc = body_events(m, msg, out, err, errlen)) != 0 ||
	    last == MH_STAGE_BODY)
		return rc < 0 ? -1 : 0;
	end_of_message(m, out);
	return 0;
}

/* Postfix resets the transaction after each one: an abort. */
static void
reset(struct mta *m)
{
	trace_event(m->t, MH_STAGE_ABORT, NULL, NULL);
	chain_abort(m->s);
}

int
mta_replay(struct mta *m, struct message *msg, struct envelope *env,
    struct outcome *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	if (m->s == NULL && open_connection(m) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (m->conn != MH_CONTINUE) {
		out->status = m->conn;
		out->stage = m->conn_stage;
		out->decider = m->conn_decider;
		snprintf(out->reply, sizeof out->reply, "%s", m->conn_reply);
		out->mods = &no_changes;
		return 0;
	}
	if (m->opt.abort_after < MH_STAGE_EOM) {
		if (trace_begin(m->t, "partial")) {
			trace_fmt(m->t, " up to %s, then abort",
			    stage_name(m->opt.abort_after));
			trace_end(m->t);
		}
		if (transaction(m, msg, env, m->opt.abort_after, out, err,
		    errlen) < 0)
			return -1;
		reset(m);
	}
	return transaction(m, msg, env, MH_STAGE_EOM, out, err, errlen);
}

void
mta_finish(struct mta *m)
{
	if (m->s == NULL)
		return;
	if (m->lent) {
		chain_eom_applied(m->s);
		m->lent = false;
	}
	if (m->conn == MH_CONTINUE)
		reset(m);
	if (!m->opt.keep)
		disconnect(m);
}

struct mta *
mta_new(struct plugin_set *set, const struct mta_options *o,
    struct mtamacros *mm, struct trace *t)
{
	struct mta *m = calloc(1, sizeof *m);
	char err[256];

	if (m == NULL)
		return NULL;
	m->set = set;
	m->opt = *o;
	m->mm = mm;
	m->t = t;
	if (mta_client_address(o->client_addr, &m->addr, &m->addr_known, err,
	    sizeof err) < 0) {
		free(m);
		return NULL;
	}
	return m;
}

void
mta_free(struct mta *m)
{
	if (m == NULL)
		return;
	if (m->lent)
		chain_eom_applied(m->s);
	disconnect(m);
	free(m);
}

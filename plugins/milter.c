/*
 * milter - the bundled milterhost plugin that hosts an external milter
 * (OpenDKIM, OpenDMARC, ClamAV, rspamd's proxy...) as one instance of the
 * chain: milterhost plays the MTA to it, as Postfix would.
 *
 *	[plugin:dkim]
 *	module = milter
 *	socket = inet:8891@127.0.0.1
 *	connect_timeout_ms = 5000
 *	command_timeout_ms = 10000
 *	eom_timeout_ms = 60000
 *	see_earlier_changes = yes
 *	;macros_connect = j {daemon_name} _
 *
 * socket		where the milter listens: inet:PORT@HOST,
 *			inet6:PORT@HOST, unix:PATH or local:PATH (required).
 * connect_timeout_ms	how long opening a connection may take (5000).
 * command_timeout_ms	how long the milter may take to answer an event
 *			other than the end of the message (10000).
 * eom_timeout_ms	how long it may take to answer the end of the
 *			message; each progress report it sends starts the
 *			wait again (60000).
 *			Keep them below Postfix's milter_command_timeout and
 *			milter_content_timeout (30 s and 300 s), so that the
 *			instance's on_error decides, not Postfix.
 * see_earlier_changes	yes (default): the milter sees the message as the
 *			instances before it in the chain left it, headers
 *			added, changed and deleted and the body replaced, as
 *			a milter listed after another in Postfix's
 *			smtpd_milters does (ABI 1.3, MH_WANT_EARLIER_CHANGES):
 *			a signing milter then signs what the MTA delivers.
 *			Its headers and body go to it at the end of the
 *			message, which milterhost keeps meanwhile, when an
 *			earlier instance may change them.  no: it sees the
 *			message as received, as it arrives.
 * macros_connect, macros_helo, macros_envfrom, macros_envrcpt,
 * macros_data, macros_eoh, macros_eom
 *			the macros to send the milter at that stage, space-
 *			separated; by default, what the milter asks for when
 *			it negotiates, else Postfix's defaults for the stage.
 *
 * Start-up.  init opens a probe connection and negotiates as Postfix
 * does (every action and step offered), so that the instance declares
 * what the milter needs: its actions, the stages it asked not to get
 * (mh_declare_unused: the MTA need not send them for this instance), the
 * stages it does not answer (observers), its macros, the leading space
 * of header values and rejected recipients.  If the milter cannot be
 * reached then, the instance starts all the same with a warning, and
 * declares the most a milter may need (every action and stage); a reload
 * once the milter runs declares only what it needs.
 *
 * Sessions.  One connection to the milter per SMTP session, opened at the
 * first event the instance takes part in and negotiated again, closed
 * (with QUIT) at close.  If the milter then asks for more than the probe
 * said, the connection is served within what the instance declared (a
 * change it was not declared for is refused by the host, and fails the
 * callback), and this is logged.  Each event goes to the milter with the
 * macros of its stage, unless the milter asked not to get it; its answer
 * is the instance's: continue, accept, reject, tempfail, discard, skip,
 * a reply code with its text (one line or several), and at the end of
 * the message its changes (headers added, inserted, changed, deleted;
 * the body replaced; recipients added, with or without ESMTP arguments,
 * and deleted; the sender changed; quarantine), queued as if the
 * instance had made them, with the same header indexes, and its progress
 * reports, passed on to the MTA.  A shutdown or connection failure
 * answer tempfails with 421, as Postfix does.
 *
 * Failures.  Cannot connect, a timeout, a protocol error or the milter
 * closing the connection: the callback fails (the instance's on_error
 * answers), logged with the instance, the stage and the queue id, and
 * the connection is closed, not reused.  The rest of the message goes
 * on without the milter; the next message of the session (its MAIL
 * FROM) opens a new connection and replays connect and HELO to it, so a
 * milter that restarts is back in service without restarting milterhost.
 * A milter that closed the connection between two messages (it was
 * restarted while the session was idle) fails nothing: the next MAIL
 * FROM finds the connection closed and opens a new one the same way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <milterhost/plugin.h>

#include "milterclient.h"
#include "support.h"

#define DEFAULT_CONNECT_MS 5000
#define DEFAULT_COMMAND_MS 10000
#define DEFAULT_EOM_MS 60000
#define MAX_TIMEOUT_MS 3600000
#define MAX_REPLY_LINES 32

/* The instance: read-only after init, shared by its sessions. */
struct milter {
	char *spec;
	int connect_ms, command_ms, eom_ms;
	char *macros[MC_M_STAGES]; /* what to send; NULL: as negotiated */
	bool probed;               /* the probe reached the milter */
	uint32_t actions, steps;   /* what it negotiated then */
	bool earlier;              /* see_earlier_changes */
	bool leadspc;              /* declared MH_WANT_HDR_LEADSPC */
	bool rcpt_rej;             /* declared MH_WANT_REJECTED_RCPTS */
};

/* One SMTP session's link to the milter. */
struct conn {
	struct mc_conn *mc;        /* NULL: not open */
	bool down;                 /* it failed: nothing more for this
				    * message; reopened at the next */
	/* It accepted the connection (at a connect or HELO replayed at a
	 * later event, which the host took as that event's accept).  An
	 * accepted message or a skipped body needs nothing here: the host
	 * calls the instance no more for them. */
	bool conn_done;
	bool in_message;           /* MAIL FROM was sent */
	unsigned headers_due;      /* headers sent, answers not read yet */
	/* For replaying connect and HELO to a new connection. */
	char *hostname;
	struct sockaddr_storage addr;
	bool has_addr;
	char *helo;
};

/* The stage of each event, and the macro stage's. */
static const mh_stage event_stage[MC_EV_COUNT] = {
	[MC_EV_CONNECT] = MH_STAGE_CONNECT, [MC_EV_HELO] = MH_STAGE_HELO,
	[MC_EV_MAIL] = MH_STAGE_ENVFROM, [MC_EV_RCPT] = MH_STAGE_ENVRCPT,
	[MC_EV_DATA] = MH_STAGE_DATA, [MC_EV_UNKNOWN] = MH_STAGE_UNKNOWN,
	[MC_EV_HEADER] = MH_STAGE_HEADER, [MC_EV_EOH] = MH_STAGE_EOH,
	[MC_EV_BODY] = MH_STAGE_BODY, [MC_EV_EOM] = MH_STAGE_EOM,
};

/* The stage's name in log lines, as the host names it. */
static const char *const stage_name[MC_EV_COUNT + 1] = {
	[MC_EV_CONNECT] = "connect", [MC_EV_HELO] = "helo",
	[MC_EV_MAIL] = "envfrom", [MC_EV_RCPT] = "envrcpt",
	[MC_EV_DATA] = "data", [MC_EV_UNKNOWN] = "unknown",
	[MC_EV_HEADER] = "header", [MC_EV_EOH] = "eoh",
	[MC_EV_BODY] = "body", [MC_EV_EOM] = "eom",
	[MC_EV_COUNT] = "abort",
};
#define EV_ABORT MC_EV_COUNT  /* for failed(): abort has no event */

static const mh_stage macro_stage[MC_M_STAGES] = {
	[MC_M_CONNECT] = MH_STAGE_CONNECT, [MC_M_HELO] = MH_STAGE_HELO,
	[MC_M_MAIL] = MH_STAGE_ENVFROM, [MC_M_RCPT] = MH_STAGE_ENVRCPT,
	[MC_M_DATA] = MH_STAGE_DATA, [MC_M_EOM] = MH_STAGE_EOM,
	[MC_M_EOH] = MH_STAGE_EOH,
};

/* ---- init ----------------------------------------------------------------- */

static void
mi_fini(void *state)
{
	struct milter *m = state;

	if (m == NULL)
		return;
	free(m->spec);
	for (int i = 0; i < MC_M_STAGES; i++)
		free(m->macros[i]);
	free(m);
}

static int
parse_ms(const struct mh_init *init, const char *key, const char *value,
	 int *out)
{
	char *end;
	long n;

	if (value == NULL)
		return 0;
	errno = 0;
	n = strtol(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' || n < 1 ||
	    n > MAX_TIMEOUT_MS)
		return mh_init_error(init, key, "'%s' is not a number of "
		    "milliseconds from 1 to %d", value, MAX_TIMEOUT_MS);
	*out = (int)n;
	return 0;
}

/*
 * Open a probe connection and negotiate as Postfix does.  0 with what
 * the milter asked for in m, or -1 with the reason in err.
 */
static int
probe(struct milter *m, char *err, size_t errlen)
{
	struct mc_conn *c = mc_open(m->spec, m->connect_ms, err, errlen);

	if (c == NULL)
		return -1;
	mc_set_timeout(c, m->command_ms);
	if (mc_negotiate(c, MC_VERSION, MC_ACT_ALL, MC_P_ALL) < 0) {
		snprintf(err, errlen, "%s: %s", m->spec, mc_error(c));
		mc_close(c);
		return -1;
	}
	m->actions = mc_actions(c) & ~MC_ACT_SETSYMLIST;
	m->steps = mc_steps(c);
	for (int s = 0; s < MC_M_STAGES; s++)
		if (m->macros[s] == NULL && mc_macro_list(c, s) != NULL &&
		    (m->macros[s] = strdup(mc_macro_list(c, s))) == NULL) {
			snprintf(err, errlen, "out of memory");
			mc_close(c);
			return -1;
		}
	mc_put(c, MC_CMD_QUIT, NULL, 0);
	mc_flush(c);
	mc_close(c);
	return 0;
}

/* Declare what the milter needs (or, unprobed, may need). */
static int
declare(const struct mh_init *init, struct milter *m)
{
	unsigned long wishes = 0;

	if (mh_declare_actions(init, m->probed ? m->actions :
	    MC_ACT_ALL & ~MC_ACT_SETSYMLIST) != MH_OK)
		return -1;
	for (int ev = 0; ev < MC_EV_COUNT && m->probed; ev++) {
		const struct mc_event_info *e = mc_event_info(ev);

		if (e->no_step & m->steps) {
			if (mh_declare_unused(init, event_stage[ev]) != MH_OK)
				return -1;
		} else if (e->no_reply & m->steps) {
			if (mh_declare_observer(init, event_stage[ev]) !=
			    MH_OK)
				return -1;
		}
	}
	m->leadspc = m->probed && (m->steps & MC_P_HDR_LEADSPC);
	m->rcpt_rej = m->probed && (m->steps & MC_P_RCPT_REJ);
	if (m->leadspc)
		wishes |= MH_WANT_HDR_LEADSPC;
	if (m->rcpt_rej)
		wishes |= MH_WANT_REJECTED_RCPTS;
	if (m->earlier)
		wishes |= MH_WANT_EARLIER_CHANGES;
	if (wishes != 0 && mh_declare_wishes(init, wishes) != MH_OK)
		return -1;
	for (int s = 0; s < MC_M_STAGES; s++)
		if (m->macros[s] != NULL && *m->macros[s] != '\0' &&
		    mh_declare_macros(init, macro_stage[s], m->macros[s]) !=
		    MH_OK)
			return -1;
	return 0;
}

static int
mi_init(const struct mh_init *init, void **state)
{
	const char *socket, *connect_ms, *command_ms, *eom_ms, *earlier;
	const char *macros[MC_M_STAGES];
	const struct bundled_key keys[] = {
		{ "socket", &socket },
		{ "connect_timeout_ms", &connect_ms },
		{ "command_timeout_ms", &command_ms },
		{ "eom_timeout_ms", &eom_ms },
		{ "see_earlier_changes", &earlier },
		{ "macros_connect", &macros[MC_M_CONNECT] },
		{ "macros_helo", &macros[MC_M_HELO] },
		{ "macros_envfrom", &macros[MC_M_MAIL] },
		{ "macros_envrcpt", &macros[MC_M_RCPT] },
		{ "macros_data", &macros[MC_M_DATA] },
		{ "macros_eoh", &macros[MC_M_EOH] },
		{ "macros_eom", &macros[MC_M_EOM] },
		{ NULL, NULL }
	};
	struct milter *m;
	char err[512];
	int yes;

	if (bundled_read_settings(init, "milter", keys) < 0)
		return -1;
	if (socket == NULL)
		return mh_init_error(init, NULL, "socket is required: where "
		    "the milter listens (inet:PORT@HOST, inet6:PORT@HOST, "
		    "unix:PATH, local:PATH or /PATH)");
	if ((m = calloc(1, sizeof *m)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	m->connect_ms = DEFAULT_CONNECT_MS;
	m->command_ms = DEFAULT_COMMAND_MS;
	m->eom_ms = DEFAULT_EOM_MS;
	if ((m->spec = strdup(socket)) == NULL ||
	    parse_ms(init, "connect_timeout_ms", connect_ms,
	    &m->connect_ms) < 0 ||
	    parse_ms(init, "command_timeout_ms", command_ms,
	    &m->command_ms) < 0 ||
	    parse_ms(init, "eom_timeout_ms", eom_ms, &m->eom_ms) < 0)
		goto fail;
	m->earlier = true;
	if (earlier != NULL && mh_parse_bool(earlier, &yes) < 0) {
		mh_init_error(init, "see_earlier_changes", "'%s' is not yes "
		    "or no", earlier);
		goto fail;
	}
	if (earlier != NULL)
		m->earlier = yes;
	for (int s = 0; s < MC_M_STAGES; s++)
		if (macros[s] != NULL &&
		    (m->macros[s] = strdup(macros[s])) == NULL)
			goto fail;
	if (mc_resolve(m->spec, &(struct sockaddr_storage){ 0 },
	    &(socklen_t){ 0 }, err, sizeof err) < 0) {
		mh_init_error(init, "socket", "%s", err);
		goto fail;
	}
	/* A milter not running yet is no configuration error. */
	if (probe(m, err, sizeof err) == 0) {
		m->probed = true;
		mh_log(NULL, MH_LOG_INFO, "%s: actions 0x%x, steps 0x%x",
		    m->spec, (unsigned)m->actions, (unsigned)m->steps);
	} else {
		mh_log(NULL, MH_LOG_WARNING, "%s; starting without knowing "
		    "what the milter needs: every action and stage is "
		    "declared (reload once the milter runs)", err);
	}
	if (declare(init, m) < 0)
		goto fail;
	*state = m;
	return 0;
fail:
	mi_fini(m);
	return -1;
}

/* ---- a session's connection -------------------------------------------- */

static void
conn_free(void *data)
{
	struct conn *c = data;

	if (c == NULL)
		return;
	mc_close(c->mc);
	free(c->hostname);
	free(c->helo);
	free(c);
}

static struct conn *
conn_of(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	if (c == NULL && (c = calloc(1, sizeof *c)) != NULL &&
	    mh_set_conn_data_free(ctx, c, conn_free) != MH_OK) {
		free(c);
		c = NULL;
	}
	if (c == NULL)
		mh_log(ctx, MH_LOG_ERR, "out of memory");
	return c;
}

/* The milter failed at ev: log it, close the connection, and fail the
 * callback (on_error answers). */
static mh_status
failed(mh_ctx *ctx, struct conn *c, enum mc_event ev, const char *why)
{
	const struct milter *m = mh_instance_state(ctx);

	mh_log(ctx, MH_LOG_ERR, "%s: %s: %s", stage_name[ev],
	    m->spec, why);
	mc_close(c->mc);
	c->mc = NULL;
	c->down = true;
	return MH_FAIL;
}

static const char *
macro_value(void *arg, const char *name)
{
	return mh_macro(arg, name);
}

/* Queue the macros of ev's stage: as configured, else as the milter asked
 * on this connection, else Postfix's defaults. */
static int
put_macros(mh_ctx *ctx, const struct milter *m, struct conn *c,
	   enum mc_event ev)
{
	const struct mc_event_info *e = mc_event_info(ev);
	const char *list;

	if (e->macro_stage == MC_M_NONE)
		return 0;
	list = m->macros[e->macro_stage];
	if (list == NULL)
		list = mc_macro_list(c->mc, e->macro_stage);
	if (list == NULL)
		list = mc_default_macros(e->macro_stage);
	return mc_put_macros(c->mc, e->cmd, list, macro_value, ctx);
}

/* Say so if the milter asks this connection for more than the probe. */
static void
check_more(mh_ctx *ctx, const struct milter *m, const struct mc_conn *mc)
{
	uint32_t actions = mc_actions(mc) & ~MC_ACT_SETSYMLIST;
	uint32_t want_steps = ~mc_steps(mc) & m->steps & ~(MC_P_SKIP |
	    MC_P_HDR_LEADSPC | MC_P_RCPT_REJ);

	if (!m->probed)
		return;
	if ((actions & ~m->actions) != 0 || want_steps != 0 ||
	    ((mc_steps(mc) & MC_P_HDR_LEADSPC) != 0) != m->leadspc ||
	    ((mc_steps(mc) & MC_P_RCPT_REJ) && !m->rcpt_rej))
		mh_log(ctx, MH_LOG_WARNING, "%s now asks for actions 0x%x "
		    "and steps 0x%x, not what it asked at start-up (0x%x, "
		    "0x%x): served within what was declared then; reload "
		    "milterhost to declare it anew", m->spec,
		    (unsigned)mc_actions(mc), (unsigned)mc_steps(mc),
		    (unsigned)m->actions, (unsigned)m->steps);
}

/* ---- events ------------------------------------------------------------ */

/* What an event carries. */
struct args {
	const char *str;               /* helo name, command, header name */
	const char *value;             /* header value */
	const struct sockaddr *addr;   /* connect */
	const char *const *argv;       /* mail, rcpt: address, then args */
	const void *chunk;             /* body */
	size_t len;
};

static int
put_event(const struct milter *m, struct conn *c, enum mc_event ev,
	  const struct args *a)
{
	switch (ev) {
	case MC_EV_CONNECT:
		return mc_put_connect(c->mc, a->str, a->addr);
	case MC_EV_HELO:
		return mc_put_helo(c->mc, a->str);
	case MC_EV_MAIL:
		return mc_put_argv(c->mc, MC_CMD_MAIL, a->argv);
	case MC_EV_RCPT:
		return mc_put_argv(c->mc, MC_CMD_RCPT, a->argv);
	case MC_EV_UNKNOWN:
		return mc_put_unknown(c->mc, a->str);
	case MC_EV_HEADER: {
		/* The host gives the value as the instance declared; the
		 * milter gets it as it negotiated on this connection. */
		bool want = (mc_steps(c->mc) & MC_P_HDR_LEADSPC) != 0;
		const char *v = a->value;
		char *spaced;
		int rc;

		if (want == m->leadspc)
			return mc_put_header(c->mc, a->str, v);
		if (!want)
			return mc_put_header(c->mc, a->str,
			    v + (v[0] == ' '));
		if ((spaced = malloc(strlen(v) + 2)) == NULL)
			return -1;
		spaced[0] = ' ';
		strcpy(spaced + 1, v);
		rc = mc_put_header(c->mc, a->str, spaced);
		free(spaced);
		return rc;
	}
	case MC_EV_BODY:
		return mc_put_body(c->mc, a->chunk, a->len);
	default:
		return mc_put(c->mc, mc_event_info(ev)->cmd, NULL, 0);
	}
}

/*
 * Set the reply of a reply-code answer ("550 5.7.1 text", lines joined
 * by CR LF) for the MTA.  Returns the decision, or MH_FAIL if the host
 * refused the reply.
 */
static mh_status
reply_code(mh_ctx *ctx, const char *text)
{
	const char *lines[MAX_REPLY_LINES];
	char rcode[4], xcode[32] = "", *copy, *p;
	size_t n = 0;
	int rc;

	memcpy(rcode, text, 3);
	rcode[3] = '\0';
	if ((copy = strdup(text)) == NULL)
		return MH_FAIL;
	for (p = copy; p != NULL && n < MAX_REPLY_LINES; n++) {
		char *next = strstr(p, "\r\n"), *t = p + 3;
		size_t xlen;

		if (next != NULL) {
			*next = '\0';
			next += 2;
		}
		t += (*t == ' ' || *t == '-');
		/* An enhanced status code: digits and dots after the code. */
		xlen = strspn(t, "0123456789.");
		if (xlen > 4 && xlen < sizeof xcode && t[0] == rcode[0] &&
		    t[1] == '.' && (t[xlen] == ' ' || t[xlen] == '\0')) {
			if (n == 0)
				memcpy(xcode, t, xlen), xcode[xlen] = '\0';
			t += xlen;
			t += (*t == ' ');
		}
		lines[n] = t;
		p = next;
	}
	rc = mh_set_reply_lines(ctx, rcode, xcode[0] ? xcode : NULL, lines, n);
	free(copy);
	if (rc != MH_OK)
		return MH_FAIL;
	return rcode[0] == '5' ? MH_REJECT : MH_TEMPFAIL;
}

/* What the milter's final answer to ev means for the chain. */
static mh_status
decision(mh_ctx *ctx, struct conn *c, enum mc_event ev,
	 const struct mc_reply *r)
{
	switch (r->code) {
	case MC_R_CONTINUE:
		return MH_CONTINUE;
	case MC_R_ACCEPT:
		if (mc_event_info(ev)->connection)
			c->conn_done = true;
		return MH_ACCEPT;
	case MC_R_REJECT:
		return MH_REJECT;
	case MC_R_TEMPFAIL:
		return MH_TEMPFAIL;
	case MC_R_DISCARD:
		return MH_DISCARD;
	case MC_R_SKIP:
		return MH_SKIP;
	case MC_R_REPLYCODE:
		return reply_code(ctx, r->text);
	default: /* shutdown, connection failure: as Postfix, a 421 */
		mh_log(ctx, MH_LOG_WARNING, "%s: the milter answered '%c' "
		    "(%s): 421", stage_name[ev], r->code,
		    r->code == MC_R_SHUTDOWN ? "shutdown" :
		    "connection failure");
		mc_close(c->mc);
		c->mc = NULL;
		c->down = true;
		if (mh_set_reply(ctx, "421", "4.7.0", "Server closing "
		    "connection") != MH_OK)
			return MH_FAIL;
		return MH_TEMPFAIL;
	}
}

/*
 * Read the answers to the headers that went out with the event just
 * flushed.  0 when every one continued; 1 with the first other answer in
 * *r: libmilter then leaves the message and ignores the rest of its
 * events, so the connection is out of step (header_decided() closes it);
 * -1 on an error.
 */
static int
settle_headers(const struct milter *m, struct conn *c, struct mc_reply *r)
{
	mc_set_timeout(c->mc, m->command_ms);
	while (c->headers_due > 0) {
		c->headers_due--;
		if (mc_read_answer(c->mc, MC_EV_HEADER, r, NULL) < 0)
			return -1;
		if (r->code != MC_R_CONTINUE) {
			c->headers_due = 0;
			return 1;
		}
	}
	return 0;
}

/*
 * Send ev with its macros; read the answer if the milter gives one.
 * Headers are not sent one by one: they wait in the buffer and go with
 * the next event, their answers read before its.  milterhost claims
 * SMFIP_NR_HDR from the MTA, so a decision at a header reaches the MTA
 * at its next answered event anyway, and a message of N headers costs
 * one round trip to the milter instead of N.  (The end of headers and
 * the body could wait too, the SMTP client hearing the verdict after its
 * final dot either way; but a decision there would then reach the MTA
 * at a later stage than the milter made it, for 7% more messages a
 * second, measured.)  0 with the answer in *r; 1 with a header's other
 * answer in *r (settle_headers()); -1 on an error.
 */
static int
exchange(mh_ctx *ctx, const struct milter *m, struct conn *c,
	 enum mc_event ev, const struct args *a, struct mc_reply *r)
{
	int rc;

	if (put_macros(ctx, m, c, ev) < 0 || put_event(m, c, ev, a) < 0)
		return -1;
	r->code = MC_R_CONTINUE;
	if (ev == MC_EV_HEADER) {
		if (mc_answers_event(c->mc, ev))
			c->headers_due++;
		return 0;
	}
	if (mc_flush(c->mc) < 0)
		return -1;
	if ((rc = settle_headers(m, c, r)) != 0)
		return rc;
	if (!mc_answers_event(c->mc, ev))
		return 0;
	return mc_read_answer(c->mc, ev, r, NULL);
}

/*
 * The milter answered a header otherwise than continue: that is the
 * instance's decision now (at the event the header answers came with),
 * and the connection, out of step, is closed; the rest of the message
 * goes without the milter, the next message opens a new connection.
 */
static mh_status
header_decided(mh_ctx *ctx, struct conn *c, const struct mc_reply *r)
{
	mh_status st = decision(ctx, c, MC_EV_HEADER, r);

	mh_log(ctx, MH_LOG_DEBUG, "header answered '%c': %s", r->code,
	    "a new connection serves the next message");
	mc_close(c->mc);
	c->mc = NULL;
	c->down = true;
	return st;
}

/*
 * The client for a replayed connect, when the instance's connect did not
 * come (the milter asked not to get it at the probe): its address as the
 * host knows it, its name from {client_name}.
 */
static void
client_from_host(mh_ctx *ctx, struct conn *c)
{
	const char *addr = mh_client_address(ctx);
	const char *name = mh_macro(ctx, "{client_name}");
	struct sockaddr_in *sin = (struct sockaddr_in *)&c->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c->addr;

	c->hostname = strdup(name != NULL ? name : "unknown");
	memset(&c->addr, 0, sizeof c->addr);
	if (addr != NULL && inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		c->has_addr = true;
	} else if (addr != NULL &&
	    inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		c->has_addr = true;
	}
}

/*
 * Open and negotiate the session's connection, and replay to it the
 * connect and HELO it missed (the first event the instance takes part in
 * is later, or the milter failed and this is a new connection).  Returns
 * MH_CONTINUE, a decision of the replayed events, or MH_FAIL.
 */
static mh_status
open_conn(mh_ctx *ctx, const struct milter *m, struct conn *c,
	  enum mc_event ev)
{
	char err[512];
	struct mc_reply r;
	mh_status st;

	if ((c->mc = mc_open(m->spec, m->connect_ms, err, sizeof err)) ==
	    NULL) {
		c->down = true;
		mh_log(ctx, MH_LOG_ERR, "%s: %s", stage_name[ev],
		    err);
		return MH_FAIL;
	}
	c->headers_due = 0;
	mc_set_timeout(c->mc, m->command_ms);
	if (mc_negotiate(c->mc, MC_VERSION, MC_ACT_ALL, MC_P_ALL) < 0)
		return failed(ctx, c, ev, mc_error(c->mc));
	check_more(ctx, m, c->mc);
	c->down = false;
	if (ev > MC_EV_CONNECT && mc_wants(c->mc, MC_EV_CONNECT)) {
		struct args a;

		if (c->hostname == NULL)
			client_from_host(ctx, c);
		a = (struct args){ .str = c->hostname ? c->hostname :
		    "unknown", .addr = c->has_addr ?
		    (struct sockaddr *)&c->addr : NULL };
		if (exchange(ctx, m, c, MC_EV_CONNECT, &a, &r) < 0)
			return failed(ctx, c, MC_EV_CONNECT, mc_error(c->mc));
		if ((st = decision(ctx, c, MC_EV_CONNECT, &r)) != MH_CONTINUE)
			return st;
	}
	if (ev > MC_EV_HELO && c->helo != NULL &&
	    mc_wants(c->mc, MC_EV_HELO)) {
		struct args a = { .str = c->helo };

		if (exchange(ctx, m, c, MC_EV_HELO, &a, &r) < 0)
			return failed(ctx, c, MC_EV_HELO, mc_error(c->mc));
		if ((st = decision(ctx, c, MC_EV_HELO, &r)) != MH_CONTINUE)
			return st;
	}
	return MH_CONTINUE;
}

/*
 * Did the milter close the connection while it had nothing to answer
 * (between two messages: it was restarted, or gave up on an idle
 * session)?  It never speaks unasked, so a connection readable then is
 * one it closed (or one out of step): not to be used.
 */
static bool
closed_by_milter(const struct mc_conn *mc)
{
	return mc_pending(mc) || mc_closed(mc);
}

/*
 * One event for the milter: open the connection if needed, send the event
 * unless the milter does not want it, map its answer.
 */
static mh_status
relay(mh_ctx *ctx, enum mc_event ev, const struct args *a)
{
	const struct milter *m = mh_instance_state(ctx);
	struct conn *c = conn_of(ctx);
	struct mc_reply r;
	mh_status st;

	if (c == NULL)
		return MH_FAIL;
	if (ev == MC_EV_MAIL) {
		c->in_message = true;
		/* Nothing of this message has gone to the milter yet: a new
		 * connection (with connect and HELO replayed) serves it. */
		if (c->mc != NULL && !c->conn_done &&
		    closed_by_milter(c->mc)) {
			mh_log(ctx, MH_LOG_NOTICE, "%s closed the connection "
			    "since the last message: opening a new one",
			    m->spec);
			mc_close(c->mc);
			c->mc = NULL;
		}
	}
	if (c->mc == NULL) {
		/* After a failure, the next message tries again. */
		if (c->down && ev != MC_EV_MAIL)
			return MH_CONTINUE;
		if ((st = open_conn(ctx, m, c, ev)) != MH_CONTINUE)
			return st;
	}
	if (!mc_wants(c->mc, ev) || c->conn_done)
		return MH_CONTINUE;
	if (ev == MC_EV_RCPT && m->rcpt_rej &&
	    !(mc_steps(c->mc) & MC_P_RCPT_REJ)) {
		const char *mailer = mh_macro(ctx, "{rcpt_mailer}");

		if (mailer != NULL && strcmp(mailer, "error") == 0)
			return MH_CONTINUE;
	}
	switch (exchange(ctx, m, c, ev, a, &r)) {
	case -1:
		return failed(ctx, c, ev, mc_error(c->mc));
	case 1:
		return header_decided(ctx, c, &r);
	}
	return decision(ctx, c, ev, &r);
}

static mh_status
mi_connect(mh_ctx *ctx, const char *hostname, const struct sockaddr *addr)
{
	struct conn *c = conn_of(ctx);
	struct args a = { .str = hostname, .addr = addr };

	if (c == NULL)
		return MH_FAIL;
	free(c->hostname);
	c->hostname = strdup(hostname);
	c->has_addr = addr != NULL;
	if (addr != NULL) {
		size_t len = addr->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) :
		    addr->sa_family == AF_UNIX ? sizeof(struct sockaddr_un) :
		    sizeof(struct sockaddr_in);

		memcpy(&c->addr, addr, len);
	}
	return relay(ctx, MC_EV_CONNECT, &a);
}

static mh_status
mi_helo(mh_ctx *ctx, const char *name)
{
	struct conn *c = conn_of(ctx);
	struct args a = { .str = name };

	if (c == NULL)
		return MH_FAIL;
	free(c->helo);
	c->helo = strdup(name);
	return relay(ctx, MC_EV_HELO, &a);
}

/* argv for MAIL and RCPT: the address in angle brackets, then args. */
static mh_status
envelope(mh_ctx *ctx, enum mc_event ev, const char *addr,
	 const char *const *args)
{
	const char *argv[64];
	size_t n = 0;
	struct args a = { .argv = argv };

	argv[n++] = addr;
	for (size_t i = 0; args != NULL && args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	return relay(ctx, ev, &a);
}

static mh_status
mi_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	return envelope(ctx, MC_EV_MAIL, sender, args);
}

static mh_status
mi_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	return envelope(ctx, MC_EV_RCPT, rcpt, args);
}

static mh_status
mi_data(mh_ctx *ctx)
{
	return relay(ctx, MC_EV_DATA, &(struct args){ 0 });
}

static mh_status
mi_unknown(mh_ctx *ctx, const char *command)
{
	return relay(ctx, MC_EV_UNKNOWN, &(struct args){ .str = command });
}

static mh_status
mi_header(mh_ctx *ctx, const char *name, const char *value)
{
	return relay(ctx, MC_EV_HEADER,
	    &(struct args){ .str = name, .value = value });
}

static mh_status
mi_eoh(mh_ctx *ctx)
{
	return relay(ctx, MC_EV_EOH, &(struct args){ 0 });
}

static mh_status
mi_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	return relay(ctx, MC_EV_BODY,
	    &(struct args){ .chunk = chunk, .len = len });
}

/* ---- end of message: the changes -------------------------------------- */

/* The value of a change as the host takes it from this instance. */
static const char *
change_value(const struct milter *m, const struct conn *c, const char *v)
{
	bool spaced = (mc_steps(c->mc) & MC_P_HDR_LEADSPC) != 0;

	/* Without the space declared, the host adds one itself. */
	if (spaced && !m->leadspc && v[0] == ' ')
		return v + 1;
	return v;
}

/* Queue one change of the milter's as the instance's own. */
static int
apply(mh_ctx *ctx, const struct milter *m, const struct conn *c,
      const struct mc_reply *r)
{
	int idx = (int)r->index;

	switch (r->code) {
	case MC_R_ADDHEADER:
		return mh_header_add(ctx, r->name,
		    change_value(m, c, r->value));
	case MC_R_INSHEADER:
		return mh_header_insert(ctx, idx, r->name,
		    change_value(m, c, r->value));
	case MC_R_CHGHEADER:
		/* libmilter's index 0 means the first, as 1 does. */
		if (idx < 1)
			idx = 1;
		if (r->value[0] == '\0')
			return mh_header_delete(ctx, r->name, idx);
		return mh_header_change(ctx, r->name, idx,
		    change_value(m, c, r->value));
	case MC_R_REPLBODY:
		return mh_body_replace(ctx, r->data, r->len);
	case MC_R_ADDRCPT:
		return mh_rcpt_add(ctx, r->text, NULL);
	case MC_R_ADDRCPT_PAR:
		return mh_rcpt_add(ctx, r->text,
		    r->args != NULL && *r->args ? r->args : NULL);
	case MC_R_DELRCPT:
		return mh_rcpt_delete(ctx, r->text);
	case MC_R_CHGFROM:
		return mh_from_change(ctx, r->text,
		    r->args != NULL && *r->args ? r->args : NULL);
	case MC_R_QUARANTINE:
		return mh_quarantine(ctx, r->text);
	}
	return MH_E_INVALID;
}

/* End of message: the changes, then the final answer. */
static mh_status
end_of_message(mh_ctx *ctx, const struct milter *m, struct conn *c)
{
	struct mc_reply r;
	mh_status st = MH_CONTINUE;
	int rc;

	if (put_macros(ctx, m, c, MC_EV_EOM) < 0 ||
	    mc_put(c->mc, MC_CMD_EOM, NULL, 0) < 0 || mc_flush(c->mc) < 0)
		return failed(ctx, c, MC_EV_EOM, mc_error(c->mc));
	if ((rc = settle_headers(m, c, &r)) < 0)
		return failed(ctx, c, MC_EV_EOM, mc_error(c->mc));
	if (rc > 0)
		return header_decided(ctx, c, &r);
	mc_set_timeout(c->mc, m->eom_ms);
	for (;;) {
		if (mc_read(c->mc, &r) < 0)
			return failed(ctx, c, MC_EV_EOM, mc_error(c->mc));
		if (r.code == MC_R_PROGRESS) {
			if (mh_progress(ctx) != MH_OK)
				st = MH_FAIL;
		} else if (mc_is_change(r.code, NULL)) {
			/* A refused change is logged by the host; the rest
			 * is read all the same, to keep the connection. */
			if (apply(ctx, m, c, &r) != MH_OK)
				st = MH_FAIL;
		} else if (mc_answers(MC_EV_EOM, r.code)) {
			break;
		} else {
			return failed(ctx, c, MC_EV_EOM, "unexpected reply "
			    "to the end of the message");
		}
	}
	if (st == MH_FAIL)
		return MH_FAIL;
	return decision(ctx, c, MC_EV_EOM, &r);
}

static mh_status
mi_eom(mh_ctx *ctx)
{
	const struct milter *m = mh_instance_state(ctx);
	struct conn *c = conn_of(ctx);
	mh_status st = MH_CONTINUE;
	bool was_down;

	if (c == NULL)
		return MH_FAIL;
	was_down = c->down;
	/* Down: the failure earlier in this message was answered.  Not
	 * open yet: the end of the message is the first event it takes. */
	if (!was_down && c->mc == NULL)
		st = open_conn(ctx, m, c, MC_EV_EOM);
	if (!was_down && st == MH_CONTINUE && c->mc != NULL && !c->conn_done)
		st = end_of_message(ctx, m, c);
	/* The next message starts afresh, whatever happened to this one. */
	c->in_message = c->down = false;
	return st;
}

static void
mi_abort(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	if (c == NULL)
		return;
	if (c->mc != NULL && c->in_message && !c->conn_done) {
		struct mc_reply r;
		int rc;

		if (mc_put(c->mc, MC_CMD_ABORT, NULL, 0) < 0 ||
		    mc_flush(c->mc) < 0)
			failed(ctx, c, EV_ABORT, mc_error(c->mc));
		/* Headers that went out with the abort: their answers do
		 * not matter, but must be read to keep in step. */
		else if ((rc = settle_headers(mh_instance_state(ctx), c,
		    &r)) != 0) {
			if (rc < 0)
				mh_log(ctx, MH_LOG_DEBUG, "abort: %s",
				    mc_error(c->mc));
			mc_close(c->mc);
			c->mc = NULL;
		}
	}
	c->in_message = false;
	c->down = false;
}

static void
mi_close(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	if (c == NULL)
		return;
	if (c->mc != NULL) {
		mc_put(c->mc, MC_CMD_QUIT, NULL, 0);
		mc_flush(c->mc);
	}
	conn_free(c);
	mh_set_conn_data(ctx, NULL);
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "milter",
	.version = "1.0",
	.description = "an external milter (OpenDKIM, ClamAV, ...) as a link "
	    "of the chain",
	.init = mi_init,
	.fini = mi_fini,
	.connect = mi_connect,
	.helo = mi_helo,
	.envfrom = mi_envfrom,
	.envrcpt = mi_envrcpt,
	.data = mi_data,
	.unknown = mi_unknown,
	.header = mi_header,
	.eoh = mi_eoh,
	.body = mi_body,
	.eom = mi_eom,
	.abort = mi_abort,
	.close = mi_close,
};

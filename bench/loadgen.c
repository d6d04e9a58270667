/*
 * loadgen - a milter-protocol load generator: the MTA side, as Postfix
 * speaks it, for measuring milters.
 *
 *	loadgen [--connections N] [--messages TOTAL] [--per-conn M]
 *		[--size BYTES] [--headers H] [--warmup N] [--rate R]
 *		[--signatures] --target SPEC [--target SPEC]...
 *
 * Every connection is one thread with one SMTP session at a time.  A
 * session opens one connection per target (unix:/path, local:/path,
 * inet:PORT@HOST, inet6:PORT@HOST; a malformed or unknown one is refused
 * at the start), negotiates protocol version 6 offering every action
 * (0x1FF) and every step (0x1FFFFF, which holds all nine SMFIP_NR_*
 * bits), sends connect and helo, then up to M messages (MAIL, RCPT, DATA,
 * H headers, EOH, a body of BYTES split into chunks of 65535 bytes, EOM),
 * then QUIT.  Sessions follow one another on each thread until
 * TOTAL messages were sent.  With --rate, the connections together start
 * at most R messages a second: each connection, at R / N messages a second
 * from the start of the run, waits within its session until its next
 * message is due; without it they go as fast as the milter answers.
 *
 * The headers (H, default 6): a Received line of our own, From, To,
 * Subject, Date and Message-ID; with H < 6 the first H of these; with
 * H > 6, H - 6 more after the Received line, Received lines of relays and
 * X- and other headers of 60-80 bytes each, as a mailing list or a
 * well-scanned message carries them.
 *
 * Several targets form a chain, as Postfix runs smtpd_milters = a, b, c:
 * each event goes to each target in turn, and a reject, tempfail or
 * discard ends the event there (later targets do not hear it).  What a
 * target negotiated is honoured per target: the SMFIP_NO* steps it does
 * not want, the SMFIP_NR_* replies it will not send, the leading space of
 * header values, and the macro lists it asked for (otherwise Postfix's
 * default lists are sent, with the values a Postfix smtpd would have).
 * An event whose NR bit the target negotiated is sent without waiting for
 * a reply, as Postfix's milter8.c does (skip_reply per event); a decision
 * the target made there comes as the answer to its next answered event
 * (EOH, else a body chunk, else EOM), and a reject, tempfail or discard
 * there ends the message as anywhere else.
 * A target that accepts is sent nothing more for the connection (accept at
 * connect or helo) or for the message; skip ends its body chunks.
 *
 * The protocol is src/milterclient.c's, the MTA side every client in the
 * tree shares (no libmilter here): per target a struct mc_conn, which
 * queues an event's macros and command and writes them in one go, reads
 * through a buffer, and parses and checks every reply: its fields, the
 * event it answers (mc_read_answer; at EOM the changes, then the final
 * answer), and for a change the actions the target negotiated.  Before
 * QUIT, a reply that no event waited for (one to an event with no reply
 * negotiated, say) is an error if it already arrived (mc_pending: in the
 * library's buffer or in the socket).  Every read and write waits at most
 * 10 s: a milter that stops answering ends the session with an error
 * instead of hanging the run.  A protocol or I/O error ends that
 * session, is printed (the first few) and counted; a run with errors
 * exits 1, for it is not a result.
 *
 * Latency is measured per message, from sending MAIL to the first target
 * until the final answer to EOM from the last one.  The --warmup messages
 * run first, with the same connections, and are not counted.  The report
 * is one machine-readable line on stdout,
 *
 *	msgs=... secs=... rate=... p50_ms=... p90_ms=... p99_ms=...
 *	max_ms=... accepted=... rejected=... tempfailed=... discarded=...
 *	changes=... noreply=... errors=...
 *
 * (changes: the message changes received at end of message; noreply: the
 * events sent without waiting for a reply, for the NR bits negotiated)
 *
 * and one line for people after it.  Our own TCP sockets get TCP_NODELAY
 * (the library sets it), so that only the milter's side of a TCP
 * connection can stall.
 *
 * --signatures tells which changes each message got.  A message's
 * signature is the list of the changes it received at end of message, in
 * the order received ("add NAME: VALUE" for an added header, "insert IDX
 * NAME: VALUE" for an inserted one, "change 'C'" for any other, C being
 * its reply letter), or "none".  After the two lines above come, for each
 * distinct signature of the accepted messages, sorted by signature,
 *
 *	signature msgs=... SIGNATURE
 *
 * (the changes separated by " | ", with a backslash, '|' and bytes that
 * are not printable ASCII written \xHH), then
 *
 *	signatures=... mixed_sessions=...
 *
 * with the number of distinct signatures and of the sessions whose
 * messages did not all get the same one.  A milter reloaded under load
 * shows there that every message got one whole set of changes and that a
 * session kept the set it started with.
 *
 * SIGUSR1 ends the run early: no session starts after it, the ones
 * running send their messages to the end, and the report counts what was
 * sent.  A test runs the load for as long as it needs, with a --messages
 * it will not reach.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "milterclient.h"

#define CHUNK 65535             /* body chunk, as MTAs send it */
#define IO_TIMEOUT_MS 10000     /* a milter silent this long: an error */
#define MAX_TARGETS 64
#define MAX_ERRORS_SHOWN 10
#define SIGNATURE_MAX 8192      /* a message's signature; longer is cut */

/* What an event ended in. */
enum outcome { O_CONTINUE, O_REJECT, O_TEMPFAIL, O_DISCARD, O_CONNFAIL,
	O_ERROR };

/* One session's connection to one target. */
struct link {
	const char *spec;        /* the target */
	struct mc_conn *c;       /* NULL between sessions */
	bool conn_done;          /* accepted the connection */
	bool msg_done;           /* accepted the message */
	bool skip_body;          /* answered skip to a body chunk */
};

/* How many accepted messages got one signature (--signatures). */
struct signature {
	char *text;
	unsigned long msgs;
};

/* One connection: a thread. */
struct worker {
	int id;
	bool record;                /* false during the warm-up */
	struct link *links;
	size_t nlinks;
	char qid[32];
	unsigned long serial;
	char error[512];            /* the error that ended the session */
	double *lat;                /* ms per message */
	size_t nlat, latcap;
	unsigned long msgs, accepted, rejected, tempfailed, discarded,
	    changes, noreply, errors;
	char sig[SIGNATURE_MAX];    /* the message's signature so far */
	size_t siglen;
	bool sig_cut;               /* it was too long and ends in "..." */
	struct signature *sigs;     /* the signatures seen, and counts */
	size_t nsigs, sigcap;
	unsigned long mixed_sessions;
	unsigned long started;      /* messages of the phase begun (--rate) */
};

/* The run's options. */
static const char *targets[MAX_TARGETS];
static size_t ntargets;
static int opt_connections = 1;
static unsigned long opt_messages = 1000;
static unsigned long opt_per_conn = 1;
static size_t opt_size = 4096;
static unsigned long opt_warmup;
static unsigned long opt_headers = 6;
static bool opt_signatures;
static unsigned long opt_rate;  /* messages a second, all connections */

static const char *body_text;   /* opt_size bytes of CRLF lines */
static struct sockaddr_in client_addr; /* the SMTP client, at connect */
static atomic_ulong to_claim;   /* messages of this phase not yet taken */
static atomic_int errors_shown;
static atomic_int stopping;     /* SIGUSR1 came: start no more sessions */
static double phase_start;      /* now_ms() at the start of the phase */

/* ---- errors -------------------------------------------------------------- */

static void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "loadgen: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* Record why the session fails; returns O_ERROR. */
static enum outcome
session_error(struct worker *w, const struct link *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(w->error, sizeof w->error, "%s: ",
	    l ? l->spec : "session");
	va_start(ap, fmt);
	vsnprintf(w->error + n, sizeof w->error - (size_t)n, fmt, ap);
	va_end(ap);
	return O_ERROR;
}

/* The library's error on l's connection ends the session. */
static enum outcome
link_error(struct worker *w, const struct link *l)
{
	return session_error(w, l, "%s", mc_error(l->c));
}

/* ---- targets ------------------------------------------------------------- */

/* A --target: checked (and looked up) now, connected to per session. */
static void
add_target(const char *spec)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[256];

	if (ntargets == MAX_TARGETS)
		fatal("more than %d targets", MAX_TARGETS);
	if (mc_resolve(spec, &ss, &len, err, sizeof err) < 0)
		fatal("%s", err);
	targets[ntargets++] = spec;
}

/* ---- macros -------------------------------------------------------------- */

/*
 * The value smtpd would give a macro (name as the list has it, with or
 * without braces), or NULL if it has none here.  arg: the worker.
 */
static const char *
macro_value(void *arg, const char *name)
{
	static const struct { const char *name, *value; } fixed[] = {
		{ "j", "mx.bench.test" },
		{ "daemon_name", "smtpd" },
		{ "daemon_addr", "127.0.0.1" },
		{ "v", "Postfix 3.7.11" },
		{ "_", "client.example.test [192.0.2.7]" },
		{ "client_addr", "192.0.2.7" },
		{ "client_name", "client.example.test" },
		{ "mail_addr", "sender@example.test" },
		{ "mail_host", "" },
		{ "mail_mailer", "smtp" },
		{ "rcpt_addr", "rcpt@example.test" },
		{ "rcpt_host", "mx.example.test" },
		{ "rcpt_mailer", "smtp" },
	};
	const struct worker *w = arg;
	size_t len = strlen(name);

	if (len > 2 && name[0] == '{' && name[len - 1] == '}') {
		name++;
		len -= 2;
	}
	if (len == 1 && name[0] == 'i')
		return w->qid;
	for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
		if (fixed[i].name[0] == name[0] &&
		    strncmp(fixed[i].name, name, len) == 0 &&
		    fixed[i].name[len] == '\0')
			return fixed[i].value[0] ? fixed[i].value : NULL;
	return NULL;
}

/* ---- events -------------------------------------------------------------- */

/* What an event carries besides its command (connect and helo: ours). */
struct payload {
	const char *name;         /* header: its name */
	const char *value;        /* header: " value", the leading space
				   * dropped for the targets that do not
				   * want it */
	const char *const *argv;  /* mail, rcpt */
	const void *chunk;        /* body */
	size_t len;
};

static bool
link_wants(const struct link *l, enum mc_event ev)
{
	if (l->conn_done || (!mc_event_info(ev)->connection && l->msg_done))
		return false;
	if (ev == MC_EV_BODY && l->skip_body)
		return false;
	return mc_wants(l->c, ev);
}

/* Queue event ev to one target: its macros (the target's lists, else
 * Postfix's defaults), its command; then write them. */
static int
send_event(struct worker *w, struct link *l, enum mc_event ev,
	   const struct payload *p)
{
	const struct mc_event_info *e = mc_event_info(ev);
	int rc;

	if (e->macro_stage != MC_M_NONE) {
		const char *list = mc_macro_list(l->c, e->macro_stage);

		if (mc_put_macros(l->c, e->cmd, list ? list :
		    mc_default_macros(e->macro_stage), macro_value, w) < 0)
			return -1;
	}
	switch (ev) {
	case MC_EV_CONNECT:
		rc = mc_put_connect(l->c, "client.example.test",
		    (const struct sockaddr *)&client_addr);
		break;
	case MC_EV_HELO:
		rc = mc_put_helo(l->c, "client.example.test");
		break;
	case MC_EV_MAIL:
	case MC_EV_RCPT:
		rc = mc_put_argv(l->c, e->cmd, p->argv);
		break;
	case MC_EV_HEADER:
		rc = mc_put_header(l->c, p->name, p->value +
		    ((mc_steps(l->c) & MC_P_HDR_LEADSPC) == 0));
		break;
	case MC_EV_BODY:
		rc = mc_put_body(l->c, p->chunk, p->len);
		break;
	default:  /* data, eoh, eom */
		rc = mc_put(l->c, e->cmd, NULL, 0);
		break;
	}
	return rc < 0 ? -1 : mc_flush(l->c);
}

/* What a final answer to ev (checked by the library) means. */
static enum outcome
final_answer(struct link *l, enum mc_event ev, const struct mc_reply *r)
{
	switch (r->code) {
	case MC_R_ACCEPT:
		if (mc_event_info(ev)->connection)
			l->conn_done = true;
		else
			l->msg_done = true;
		return O_CONTINUE;
	case MC_R_REJECT:
		return O_REJECT;
	case MC_R_TEMPFAIL:
		return O_TEMPFAIL;
	case MC_R_REPLYCODE:
		return r->text[0] == '5' ? O_REJECT : O_TEMPFAIL;
	case MC_R_DISCARD:
		return O_DISCARD;
	case MC_R_SKIP:
		l->skip_body = true;
		return O_CONTINUE;
	case MC_R_CONN_FAIL:
	case MC_R_SHUTDOWN:
		return O_CONNFAIL;
	}
	return O_CONTINUE;
}

/*
 * Send an event to one target and read its answer.  Without a reply
 * negotiated for ev, nothing is read: a decision made there comes as
 * the answer to the target's next answered event.
 */
static enum outcome
event_to(struct worker *w, struct link *l, enum mc_event ev,
	 const struct payload *p)
{
	struct mc_reply r;

	if (send_event(w, l, ev, p) < 0)
		return link_error(w, l);
	if (!mc_answers_event(l->c, ev)) {
		if (w->record)
			w->noreply++;
		return O_CONTINUE;
	}
	if (mc_read_answer(l->c, ev, &r, NULL) < 0)
		return link_error(w, l);
	return final_answer(l, ev, &r);
}

/*
 * Send an event to every target in turn that wants it.  A target's
 * refusal ends the event there.
 */
static enum outcome
event(struct worker *w, enum mc_event ev, const struct payload *p)
{
	for (size_t i = 0; i < w->nlinks; i++) {
		struct link *l = &w->links[i];
		enum outcome o;

		if (link_wants(l, ev) &&
		    (o = event_to(w, l, ev, p)) != O_CONTINUE)
			return o;
	}
	return O_CONTINUE;
}

/* ---- signatures (--signatures) ------------------------------------------ */

/*
 * Append text to the message's signature, cut when full.  What came from
 * the milter is escaped, so that a signature is one line and " | " only
 * separates changes.
 */
static void
signature_put(struct worker *w, const char *text, bool escape)
{
	for (size_t i = 0; text[i] != '\0' && !w->sig_cut; i++) {
		unsigned char c = (unsigned char)text[i];
		char esc[5];
		size_t n = 1;

		esc[0] = (char)c;
		if (escape && (c < 0x20 || c > 0x7e || c == '\\' || c == '|'))
			n = (size_t)snprintf(esc, sizeof esc, "\\x%02X", c);
		/* Room for this, "..." and the NUL? */
		if (w->siglen + n + 4 > sizeof w->sig) {
			memcpy(w->sig + w->siglen, "...", 3);
			w->siglen += 3;
			w->sig_cut = true;
			return;
		}
		memcpy(w->sig + w->siglen, esc, n);
		w->siglen += n;
	}
}

/* Add the change r to the signature. */
static void
signature_change(struct worker *w, const struct mc_reply *r)
{
	char num[32];

	if (w->siglen > 0)
		signature_put(w, " | ", false);
	if (r->code != MC_R_ADDHEADER && r->code != MC_R_INSHEADER) {
		snprintf(num, sizeof num, "change '%c'", r->code);
		signature_put(w, num, false);
		return;
	}
	if (r->code == MC_R_INSHEADER) {
		snprintf(num, sizeof num, "insert %u ", (unsigned)r->index);
		signature_put(w, num, false);
	} else {
		signature_put(w, "add ", false);
	}
	signature_put(w, r->name, true);
	signature_put(w, ": ", false);
	signature_put(w, r->value, true);
}

/* Count the message's signature; returns its index in w->sigs. */
static size_t
signature_count(struct worker *w)
{
	const char *text = w->siglen > 0 ? w->sig : "none";
	size_t i;

	w->sig[w->siglen] = '\0';
	for (i = 0; i < w->nsigs; i++)
		if (strcmp(w->sigs[i].text, text) == 0)
			break;
	if (i == w->nsigs) {
		if (w->nsigs == w->sigcap) {
			w->sigcap = w->sigcap ? 2 * w->sigcap : 4;
			w->sigs = realloc(w->sigs, w->sigcap *
			    sizeof *w->sigs);
			if (w->sigs == NULL)
				fatal("out of memory");
		}
		w->sigs[i].msgs = 0;
		if ((w->sigs[i].text = strdup(text)) == NULL)
			fatal("out of memory");
		w->nsigs++;
	}
	w->sigs[i].msgs++;
	return i;
}

/* End of message: changes, then the final answer, from each target. */
static enum outcome
end_of_message(struct worker *w)
{
	for (size_t i = 0; i < w->nlinks; i++) {
		struct link *l = &w->links[i];
		struct mc_reply r;
		enum outcome o;

		if (!link_wants(l, MC_EV_EOM))
			continue;
		if (send_event(w, l, MC_EV_EOM, NULL) < 0)
			return link_error(w, l);
		for (;;) {
			if (mc_read(l->c, &r) < 0)
				return link_error(w, l);
			if (r.code == MC_R_PROGRESS)
				continue;
			if (!mc_is_change(r.code, NULL))
				break;
			if (w->record)
				w->changes++;
			if (w->record && opt_signatures)
				signature_change(w, &r);
		}
		if (!mc_answers(MC_EV_EOM, r.code))
			return session_error(w, l, "reply '%c' to eom",
			    r.code);
		if ((o = final_answer(l, MC_EV_EOM, &r)) != O_CONTINUE)
			return o;
	}
	return O_CONTINUE;
}

/* A message ended early: tell every target still in it. */
static enum outcome
abort_message(struct worker *w)
{
	for (size_t i = 0; i < w->nlinks; i++) {
		struct link *l = &w->links[i];

		if (l->conn_done)
			continue;
		if (mc_put(l->c, MC_CMD_ABORT, NULL, 0) < 0 ||
		    mc_flush(l->c) < 0)
			return link_error(w, l);
	}
	return O_CONTINUE;
}

/* ---- a session ----------------------------------------------------------- */

static void
close_links(struct worker *w)
{
	for (size_t i = 0; i < w->nlinks; i++) {
		mc_close(w->links[i].c);  /* unread bytes die with it */
		w->links[i].c = NULL;
	}
}
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
count(struct worker *w, enum outcome o, double ms)
{
	if (!w->record)
		return;
	w->msgs++;
	switch (o) {
	case O_CONTINUE:
		w->accepted++;
		break;
	case O_REJECT:
		w->rejected++;
		break;
	case O_TEMPFAIL:
		w->tempfailed++;
		break;
	default:
		w->discarded++;
		break;
	}
	if (ms < 0)
		return;
	if (w->nlat == w->latcap) {
		w->latcap = w->latcap ? 2 * w->latcap : 1024;
		w->lat = realloc(w->lat, w->latcap * sizeof *w->lat);
		if (w->lat == NULL)
			fatal("out of memory");
	}
	w->lat[w->nlat++] = ms;
}

/* The six headers of every message, as cleanup passes them. */
static const char *const base_headers[][2] = {
	{ "Received", "from client.example.test (client.example.test "
	    "[192.0.2.7])\n\tby mx.bench.test (Postfix) with ESMTP id QID\n\t"
	    "for <rcpt@example.test>" },
	{ "From", "Sender <sender@example.test>" },
	{ "To", "<rcpt@example.test>" },
	{ "Subject", "load generator message" },
	{ "Date", "Mon, 23 Nov 2026 10:00:00 +0000" },
	{ "Message-ID", "<loadgen@example.test>" },
};

#define HEADER_MAX 512 /* the value of any header we make */

/* The headers of every message (--headers), made by make_headers; each
 * value with a leading space, for the targets that want it. */
static const char **hdr_name, **hdr_value;
static size_t nheaders;

/* The k-th (from 1) header beyond the six: relays' and scanners' lines. */
static void
extra_header(unsigned k, const char **name, char *value, size_t size)
{
	switch (k % 8) {
	case 1:
		*name = "Received";
		snprintf(value, size, "from relay%u.example.net "
		    "([198.51.100.%u])\n\tby mx.example.org with ESMTPS", k,
		    k % 250 + 1);
		break;
	case 2:
		*name = "X-Spam-Status";
		snprintf(value, size, "No, score=-1.%u required=5.0 "
		    "tests=BAYES_00,DKIM_SIGNED", k % 10);
		break;
	case 3:
		*name = "Authentication-Results";
		snprintf(value, size, "mx.example.org; spf=pass "
		    "smtp.mailfrom=relay%u.example.net", k);
		break;
	case 4:
		*name = "X-Mailer";
		snprintf(value, size, "Bench Mailer 4.%u (2026-11-23; "
		    "compatible; loadgen test build)", k);
		break;
	case 5:
		*name = "X-Originating-IP";
		snprintf(value, size, "[203.0.113.%u] via submission port 587, "
		    "authenticated", k % 250 + 1);
		break;
	case 6:
		*name = "List-Unsubscribe";
		snprintf(value, size, "<mailto:leave-%u@lists.example.test"
		    "?subject=unsubscribe>", k);
		break;
	case 7:
		*name = "X-Campaign-ID";
		snprintf(value, size, "cmp-%05u-20261123-bench-loadgen-"
		    "segment-a-variant-b", k);
		break;
	default:
		*name = "X-Forwarded-To";
		snprintf(value, size, "archive-%u@example.test, "
		    "audit-%u@example.test, ops@example.test", k, k);
		break;
	}
}

/*
 * The n headers: the first n of the six, or our Received line, n - 6
 * extra ones, and the other five.
 */
static void
make_headers(unsigned long n)
{
	const size_t nbase = sizeof base_headers / sizeof base_headers[0];

	hdr_name = calloc(n + 1, sizeof *hdr_name);
	hdr_value = calloc(n + 1, sizeof *hdr_value);
	if (hdr_name == NULL || hdr_value == NULL)
		fatal("out of memory");
	for (size_t h = 0; h < n; h++) {
		char value[HEADER_MAX];
		size_t b = h;

		if (n > nbase && h > 0 && h <= n - nbase) {
			extra_header((unsigned)h, &hdr_name[h], value + 1,
			    sizeof value - 1);
		} else {
			if (n > nbase && h > 0)
				b = h - (n - nbase);
			hdr_name[h] = base_headers[b][0];
			snprintf(value + 1, sizeof value - 1, "%s",
			    base_headers[b][1]);
		}
		value[0] = ' ';
		if ((hdr_value[h] = strdup(value)) == NULL)
			fatal("out of memory");
	}
	nheaders = n;
}

static enum outcome
send_headers(struct worker *w)
{
	for (size_t h = 0; h < nheaders; h++) {
		const struct payload p = { .name = hdr_name[h],
			.value = hdr_value[h] };
		enum outcome o;

		if ((o = event(w, MC_EV_HEADER, &p)) != O_CONTINUE)
			return o;
	}
	return O_CONTINUE;
}

/* Everything of one message after RCPT, up to the end of the body. */
static enum outcome
send_content(struct worker *w)
{
	enum outcome o;

	if ((o = event(w, MC_EV_DATA, NULL)) != O_CONTINUE ||
	    (o = send_headers(w)) != O_CONTINUE ||
	    (o = event(w, MC_EV_EOH, NULL)) != O_CONTINUE)
		return o;
	for (size_t off = 0; off < opt_size; off += CHUNK) {
		const struct payload p = { .chunk = body_text + off,
			.len = opt_size - off < CHUNK ? opt_size - off : CHUNK };

		if ((o = event(w, MC_EV_BODY, &p)) != O_CONTINUE)
			return o;
	}
	return end_of_message(w);
}

/*
 * One message: its outcome, counted.  *sig is the index of its signature
 * in w->sigs if it was accepted and signatures are counted, else -1.
 */
static enum outcome
message(struct worker *w, long *sig)
{
	static const char *const mail[] = { "<sender@example.test>", NULL };
	static const char *const rcpt[] = { "<rcpt@example.test>", NULL };
	double start = now_ms();
	enum outcome o;

	*sig = -1;
	snprintf(w->qid, sizeof w->qid, "4B%02X%09lX", w->id, ++w->serial);
	for (size_t i = 0; i < w->nlinks; i++) {
		w->links[i].msg_done = false;
		w->links[i].skip_body = false;
	}
	w->siglen = 0;
	w->sig_cut = false;
	if ((o = event(w, MC_EV_MAIL, &(const struct payload){
	    .argv = mail })) == O_CONTINUE &&
	    (o = event(w, MC_EV_RCPT, &(const struct payload){
	    .argv = rcpt })) == O_CONTINUE &&
	    (o = send_content(w)) == O_CONTINUE) {
		count(w, o, now_ms() - start);
		if (w->record && opt_signatures)
			*sig = (long)signature_count(w);
		return o;
	}
	if (o == O_ERROR || o == O_CONNFAIL)
		return o;
	/* Refused or discarded before its end: abort it everywhere. */
	if (abort_message(w) == O_ERROR)
		return O_ERROR;
	count(w, o, now_ms() - start);
	return O_CONTINUE;
}

/*
 * Open and negotiate (version 6, every action, every step) each target,
 * then connect, helo; a refusal there refuses the session's messages.
 */
static enum outcome
open_session(struct worker *w)
{
	enum outcome o;

	for (size_t i = 0; i < w->nlinks; i++) {
		struct link *l = &w->links[i];
		char err[256];

		l->conn_done = false;
		if ((l->c = mc_open(l->spec, IO_TIMEOUT_MS, err,
		    sizeof err)) == NULL) {
			snprintf(w->error, sizeof w->error, "%s", err);
			return O_ERROR;
		}
		if (mc_negotiate(l->c, MC_VERSION, MC_ACT_ALL, MC_P_ALL) < 0)
			return link_error(w, l);
	}
	if ((o = event(w, MC_EV_CONNECT, NULL)) != O_CONTINUE)
		return o;
	return event(w, MC_EV_HELO, NULL);
}

/*
 * Every answered event was answered: a reply waiting now answers nothing
 * (an event with no reply negotiated, say).  Seen only if it already came:
 * in the connection's read buffer or in the socket.
 */
static enum outcome
check_no_stray(struct worker *w, struct link *l)
{
	if (mc_pending(l->c))
		return session_error(w, l, "a reply that no event waited for "
		    "(to an event with no reply negotiated?)");
	return O_CONTINUE;
}

/* --rate: wait until the worker's next message is due. */
static void
pace(struct worker *w)
{
	double due, wait;
	struct timespec ts;

	if (opt_rate == 0)
		return;
	due = phase_start + (double)w->started++ * opt_connections * 1e3 /
	    (double)opt_rate;
	if ((wait = due - now_ms()) <= 0)
		return;
	ts.tv_sec = (time_t)(wait / 1e3);
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec * 1e3) * 1e6);
	nanosleep(&ts, NULL);
}

/* One SMTP session of n messages; -1 on an error. */
static int
session(struct worker *w, unsigned long n)
{
	enum outcome o = open_session(w);
	unsigned long done = 0;
	long first_sig = -1, sig;
	bool mixed = false;

	if (o == O_REJECT || o == O_TEMPFAIL) {
		for (; done < n; done++)
			count(w, o, -1);
		o = O_CONTINUE;
	}
	while (o == O_CONTINUE && done < n) {
		pace(w);
		o = message(w, &sig);
		done++;
		if (sig < 0)
			continue;
		if (first_sig < 0)
			first_sig = sig;
		else if (sig != first_sig)
			mixed = true;
	}
	if (mixed)
		w->mixed_sessions++;
	if (o == O_CONTINUE)
		for (size_t i = 0; i < w->nlinks && o == O_CONTINUE; i++) {
			struct link *l = &w->links[i];

			if ((o = check_no_stray(w, l)) != O_CONTINUE)
				break;
			if (mc_put(l->c, MC_CMD_QUIT, NULL, 0) < 0 ||
			    mc_flush(l->c) < 0)
				o = link_error(w, l);
		}
	close_links(w);
	if (o == O_CONNFAIL)
		session_error(w, NULL, "a milter failed the connection");
	if (o == O_CONTINUE)
		return 0;
	if (w->record)
		w->errors++;
	if (atomic_fetch_add(&errors_shown, 1) < MAX_ERRORS_SHOWN)
		fprintf(stderr, "loadgen: connection %d: %s\n", w->id,
		    w->error);
	return -1;
}

/*
 * Take up to want messages of the phase; 0 when none are left or SIGUSR1
 * came.
 */
static unsigned long
claim(unsigned long want)
{
	unsigned long left = atomic_load(&to_claim);

	while (left > 0 && !atomic_load(&stopping)) {
		unsigned long take = left < want ? left : want;

		if (atomic_compare_exchange_weak(&to_claim, &left,
		    left - take))
			return take;
	}
	return 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned long n;

	while ((n = claim(opt_per_conn)) > 0)
		session(w, n);
	return NULL;
}

/* SIGUSR1: start no more sessions (lock-free atomics only). */
static void
stop_claiming(int sig)
{
	(void)sig;
	atomic_store(&stopping, 1);
	atomic_store(&to_claim, 0);
}

/* Run a phase of n messages over every connection; its seconds. */
static double
run_phase(struct worker *ws, unsigned long n, bool record)
{
	pthread_t *tids = calloc((size_t)opt_connections, sizeof *tids);
	double start;

	if (tids == NULL)
		fatal("out of memory");
	atomic_store(&to_claim, n);
	start = phase_start = now_ms();
	for (int i = 0; i < opt_connections; i++) {
		ws[i].record = record;
		ws[i].started = 0;
		if (pthread_create(&tids[i], NULL, worker_main, &ws[i]) != 0)
			fatal("pthread_create failed");
	}
	for (int i = 0; i < opt_connections; i++)
		pthread_join(tids[i], NULL);
	free(tids);
	return (now_ms() - start) / 1e3;
}

/* ---- set-up and report --------------------------------------------------- */

static struct worker *
make_workers(void)
{
	struct worker *ws = calloc((size_t)opt_connections, sizeof *ws);

	if (ws == NULL)
		fatal("out of memory");
	for (int i = 0; i < opt_connections; i++) {
		struct worker *w = &ws[i];

		w->id = i;
		w->nlinks = ntargets;
		w->links = calloc(ntargets, sizeof *w->links);
		if (w->links == NULL)
			fatal("out of memory");
		for (size_t t = 0; t < ntargets; t++)
			w->links[t].spec = targets[t];
	}
	return ws;
}

/* Free what make_workers and the run allocated (for LeakSanitizer). */
static void
free_workers(struct worker *ws)
{
	for (int i = 0; i < opt_connections; i++) {
		struct worker *w = &ws[i];

		for (size_t k = 0; k < w->nsigs; k++)
			free(w->sigs[k].text);
		free(w->sigs);
		free(w->lat);
		free(w->links);
	}
	free(ws);
}

static char *
make_body(size_t size)
{
	char *b = malloc(size + 1);

	if (b == NULL)
		fatal("out of memory");
	for (size_t i = 0; i < size; i++)
		b[i] = i % 78 == 76 ? '\r' : i % 78 == 77 ? '\n' :
		    (char)('a' + i % 26);
	b[size] = '\0';
	return b;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The nearest-rank percentile p of n sorted values. */
static double
percentile(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)(p / 100 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	return v[(rank > n ? n : rank) - 1];
}

static int
cmp_signature(const void *a, const void *b)
{
	return strcmp(((const struct signature *)a)->text,
	    ((const struct signature *)b)->text);
}

/* The signatures of all connections, merged, and the mixed sessions. */
static void
report_signatures(const struct worker *ws)
{
	struct signature *all = NULL;
	size_t nall = 0, cap = 0;
	unsigned long mixed = 0;

	for (int i = 0; i < opt_connections; i++) {
		mixed += ws[i].mixed_sessions;
		for (size_t k = 0; k < ws[i].nsigs; k++) {
			const struct signature *sg = &ws[i].sigs[k];
			size_t j;

			for (j = 0; j < nall; j++)
				if (strcmp(all[j].text, sg->text) == 0)
					break;
			if (j == nall) {
				if (nall == cap) {
					cap = cap ? 2 * cap : 8;
					all = realloc(all, cap * sizeof *all);
					if (all == NULL)
						fatal("out of memory");
				}
				all[nall].text = sg->text;
				all[nall++].msgs = 0;
			}
			all[j].msgs += sg->msgs;
		}
	}
	if (nall > 0)
		qsort(all, nall, sizeof *all, cmp_signature);
	for (size_t j = 0; j < nall; j++)
		printf("signature msgs=%lu %s\n", all[j].msgs, all[j].text);
	printf("signatures=%zu mixed_sessions=%lu\n", nall, mixed);
	free(all);
}

static int
report(struct worker *ws, double secs)
{
	struct worker sum = { 0 };
	double *lat;
	size_t nlat = 0;

	for (int i = 0; i < opt_connections; i++)
		nlat += ws[i].nlat;
	if ((lat = malloc((nlat + 1) * sizeof *lat)) == NULL)
		fatal("out of memory");
	for (int i = 0; i < opt_connections; i++) {
		if (ws[i].nlat > 0)  /* else ws[i].lat may be NULL */
			memcpy(lat + sum.nlat, ws[i].lat,
			    ws[i].nlat * sizeof *lat);
		sum.nlat += ws[i].nlat;
		sum.msgs += ws[i].msgs;
		sum.accepted += ws[i].accepted;
		sum.rejected += ws[i].rejected;
		sum.tempfailed += ws[i].tempfailed;
		sum.discarded += ws[i].discarded;
		sum.changes += ws[i].changes;
		sum.noreply += ws[i].noreply;
		sum.errors += ws[i].errors;
	}
	qsort(lat, nlat, sizeof *lat, cmp_double);
	printf("msgs=%lu secs=%.3f rate=%.1f p50_ms=%.3f p90_ms=%.3f "
	    "p99_ms=%.3f max_ms=%.3f accepted=%lu rejected=%lu "
	    "tempfailed=%lu discarded=%lu changes=%lu noreply=%lu "
	    "errors=%lu\n",
	    sum.msgs, secs,
	    secs > 0 ? (double)sum.msgs / secs : 0, percentile(lat, nlat, 50),
	    percentile(lat, nlat, 90), percentile(lat, nlat, 99),
	    percentile(lat, nlat, 100), sum.accepted, sum.rejected,
	    sum.tempfailed, sum.discarded, sum.changes, sum.noreply,
	    sum.errors);
	printf("loadgen: %lu messages of %zu bytes and %zu headers in %.2f s "
	    "over %d connection(s), %lu per session, %zu milter(s): %.0f "
	    "msgs/s, "
	    "latency p50 %.2f ms, p99 %.2f ms, max %.2f ms; %lu error(s)\n",
	    sum.msgs, opt_size, nheaders, secs, opt_connections, opt_per_conn,
	    ntargets, secs > 0 ? (double)sum.msgs / secs : 0,
	    percentile(lat, nlat, 50), percentile(lat, nlat, 99),
	    percentile(lat, nlat, 100), sum.errors);
	if (opt_signatures)
		report_signatures(ws);
	free(lat);
	if (sum.errors > 0) {
		fprintf(stderr, "loadgen: %lu error(s): a run with errors is "
		    "not a result\n", sum.errors);
		return 1;
	}
	return 0;
}

static unsigned long
number(const char *opt, const char *arg, unsigned long min)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < min ||
	    arg[0] == '-')
		fatal("--%s %s: want a number >= %lu", opt, arg, min);
	return v;
}

static void
usage(void)
{
	fprintf(stderr, "usage: loadgen [--connections N] [--messages TOTAL] "
	    "[--per-conn M]\n\t[--size BYTES] [--headers H] [--warmup N] "
	    "[--rate R] [--signatures]\n\t--target SPEC [--target SPEC]..."
	    "\n"
	    "SPEC: unix:/path, local:/path, inet:PORT@HOST or "
	    "inet6:PORT@HOST; several targets form a chain\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "connections", required_argument, NULL, 'c' },
		{ "headers", required_argument, NULL, 'H' },
		{ "messages", required_argument, NULL, 'm' },
		{ "per-conn", required_argument, NULL, 'p' },
		{ "size", required_argument, NULL, 's' },
		{ "target", required_argument, NULL, 't' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' },
		{ "signatures", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sigaction sa;
	struct worker *ws;
	double secs;
	int c, rc;

	while ((c = getopt_long(argc, argv, "c:H:m:p:r:s:St:w:h", opts,
	    NULL)) != -1) {
		switch (c) {
		case 'c':
			opt_connections = (int)number("connections", optarg,
			    1);
			break;
		case 'H':
			opt_headers = number("headers", optarg, 0);
			break;
		case 'm':
			opt_messages = number("messages", optarg, 1);
			break;
		case 'p':
			opt_per_conn = number("per-conn", optarg, 1);
			break;
		case 's':
			opt_size = number("size", optarg, 0);
			break;
		case 'r':
			opt_rate = number("rate", optarg, 1);
			break;
		case 'S':
			opt_signatures = true;
			break;
		case 't':
			add_target(optarg);
			break;
		case 'w':
			opt_warmup = number("warmup", optarg, 0);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || ntargets == 0 || opt_connections > 4096)
		usage();
	if (opt_headers > 10000)
		fatal("--headers %lu: at most 10000", opt_headers);
	make_headers(opt_headers);
	body_text = make_body(opt_size);
	client_addr.sin_family = AF_INET;
	client_addr.sin_port = htons(12345);
	inet_pton(AF_INET, "192.0.2.7", &client_addr.sin_addr);
	ws = make_workers();
	sa.sa_handler = stop_claiming;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		fatal("sigaction: %s", strerror(errno));
	if (opt_warmup > 0)
		run_phase(ws, opt_warmup, false);
	if (atomic_load(&errors_shown) > 0) {
		fprintf(stderr, "loadgen: errors during the warm-up\n");
		free_workers(ws);
		return 1;
	}
	secs = run_phase(ws, opt_messages, true);
	rc = report(ws, secs);
	free_workers(ws);
	return rc;
}

/*
 * mtaclient - the MTA side of the milter protocol for the wire tests, for
 * the checks miltertest cannot make.  The protocol is src/milterclient's
 * (negotiation, commands, replies checked and parsed); this file holds
 * only what each test sends and prints.
 *
 * Every subcommand but "script" speaks as Postfix does: it negotiates
 * version 6 with every action and step offered, then sends messages on
 * one connection, skipping the events the milter asked not to get and
 * reading no answer to those it asked to leave unanswered.  SOCKETPATH
 * is the milter's unix socket.  Every reply is waited for at most 10 s;
 * an error (a protocol error, a timeout, an unexpected answer) is
 * printed to stderr and exits 1.
 *
 * mtaclient nodelay HOST PORT MESSAGES MAX_MS
 *	Times each end-of-message round trip over TCP.  An answer of
 *	several packets (a modification, then the verdict) stalls ~40 ms on
 *	Nagle's algorithm unless the milter's socket has TCP_NODELAY.
 *	Exits 0 if every message got at least one header modification and
 *	the slowest end of message took less than MAX_MS milliseconds.
 *
 * mtaclient mods SOCKETPATH
 *	Sends one short message and prints every message change the milter
 *	sends at end of message but body chunks, one a line:
 *	"mod LETTER FIELD|FIELD...", the command's fields (a header index
 *	first where the command has one).  Exits 0 if the message was
 *	accepted.
 *
 * mtaclient bigbody SOCKETPATH SEND_BYTES EXPECT_BYTES
 *	Sends one message with a body of SEND_BYTES (in chunks of at most
 *	64 KB, as MTAs do) and collects the replacement body the milter
 *	sends at end of message.  Exits 0 if it came in several chunks,
 *	contiguous, and equals EXPECT_BYTES of the lines
 *	"%07u " + BODY_LETTERS + CRLF (the pattern the scripted test
 *	plugin's replace_body_size writes).  EXPECT_BYTES 0 wants an empty
 *	replacement: one chunk of no bytes (no chunk at all would leave the
 *	body as it was).
 *
 * mtaclient quitnc SOCKETPATH SESSIONS quit|eof [noreject]
 *	Runs SESSIONS SMTP sessions on one milter connection, negotiated
 *	once, separated by SMFIC_QUIT_NC ("a new connection follows"), as
 *	an MTA that reuses milter connections does.  Session N connects as
 *	host sessionN.example.test and sends one message to <reject@...>
 *	and <b@example.test> (only the latter with noreject), each event
 *	unless the milter negotiated it away.  Ends with QUIT, or with
 *	QUIT_NC and then closing the socket (eof).  Exits 0 if in every
 *	session the first recipient was rejected, the second not, and the
 *	end of message brought at least one header change.
 *
 * mtaclient stop SOCKETPATH PID
 *	Opens a session and sends MAIL, then sends SIGTERM to PID (the
 *	daemon) and, 200 ms later, checks that a new connection to
 *	SOCKETPATH is refused; then finishes the message and sends a second
 *	one on the same session (MAIL and RCPT of both sent whatever was
 *	negotiated).  Exits 0 if every event was answered and both ends of
 *	message brought a header change.
 *
 * mtaclient hold SOCKETPATH SECONDS
 *	Opens a session, sends MAIL, prints "holding", then waits up to
 *	SECONDS for the milter to close the connection.  Prints "connection
 *	closed after N ms" and exits 0 if it did, else 1.
 *
 * mtaclient pause SOCKETPATH
 *	Opens a session and sends MAIL, prints "paused", waits for a line
 *	on its standard input, then finishes the message and prints its
 *	changes as "mods" does.
 *
 * mtaclient observe SOCKETPATH
 *	Sends one message, every event the milter did not negotiate away,
 *	without waiting for an answer to those whose "no reply" bit it
 *	negotiated, and prints "unanswered N eom X headers H": how many
 *	events went unanswered, the verdict at end of message (c, a, t, r
 *	or y) and how many header changes came with it.
 *
 * mtaclient eml SOCKETPATH [-a ADDR] [-n NAME] [-H HELO] [-f SENDER]
 *     [-r RCPT]... [-D NAME=VALUE]... FILE...
 *	Sends each message file on one connection as Postfix would (the
 *	comparison for milterhost-replay, tests/wire/replay.sh): headers
 *	as libmilter hands them over (folds joined by LF, one leading
 *	space dropped unless HDR_LEADSPC was negotiated), the body with
 *	CR LF line ends in chunks of 65535 bytes; the client ADDR (an IPv4
 *	address, default 192.0.2.1, port 54321) named NAME (default
 *	"[ADDR]"), HELO (default NAME, else client.example); the macros of
 *	-D at each stage whose list (negotiated, else Postfix's default)
 *	names them; an abort after each message.  It acts on the answers
 *	as Postfix: a refused recipient is dropped, a message without
 *	recipients ends, accept, reject, tempfail and discard end the
 *	message (the connection at connect and HELO), skip ends the body;
 *	an answer the event cannot have (discard at connect, skip before
 *	the body) is an error.  Prints, in milterhost-replay's trace format
 *	without the message number and the instance, "answer STAGE STATUS
 *	["REPLY"]" (or "answer STAGE noreply") for each event sent and
 *	"change KIND ..." for each change at end of message.  Exits 0.
 *
 * mtaclient script SOCKETPATH <commands
 *	A client driven by the test: one command a line on stdin, fields
 *	separated by tabs; "\n", "\t", "\r" and "\\" in a field stand for
 *	those characters; empty lines and lines starting with "#" are
 *	skipped, and so are empty fields at the end of a line.
 *
 *	negotiate VERSION ACTIONS STEPS	(numbers, 0x... allowed)
 *	macro CMD NAME VALUE ...	CMD: the command letter (C H M R T N
 *					E); the names as they go on the wire
 *	connect HOST FAMILY PORT ADDR	FAMILY: 4, 6, L or U (U: no port
 *					and address)
 *	helo NAME | mail ARG... | rcpt ARG... | data | unknown TEXT
 *	header NAME VALUE | eoh | body TEXT | eom | abort | quit
 *
 *	mta				from here on, act as an MTA after a
 *					MAIL not answered with continue: the
 *					message's rcpt, data, header, eoh,
 *					body and eom commands, up to the next
 *					abort or mail, are not sent (each is
 *					printed "skipped COMMAND")
 *
 *	Each command goes out as written, whatever was negotiated (no
 *	event is left out), and each but negotiate, macro, abort and quit
 *	waits for its answer: a script that negotiates a "no reply" bit
 *	must not send that event.  Prints:
 *
 *	optneg version=V actions=0xA steps=0xS
 *	symlist STAGE NAMES		one line per macro list asked for,
 *					by stage
 *	reply COMMAND LETTER [TEXT]	the answer to each command that has
 *					one (TEXT: a reply code's)
 *	mod LETTER DATA			each message change sent before the
 *					end-of-message answer: its fields,
 *					each followed by '|' (a header index
 *					first, in decimal, where the command
 *					has one; a body chunk as it is)
 *
 *	Ends after quit or at the end of the commands; exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "milterclient.h"

/* How long any reply is waited for. */
#define TIMEOUT_MS 10000
/* Every body chunk is at most this long, as MTAs send it. */
#define CHUNK 65535

/* Events sent unanswered: the milter negotiated their "no reply" bit. */
static int sent_unanswered;

static void __attribute__((noreturn, format(printf, 1, 2)))
die(const char *fmt, ...)
{
	va_list ap;

	fputs("mtaclient: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Exit on the connection's error if rc says there was one. */
static void
check(struct mc_conn *c, int rc)
{
	if (rc < 0)
		die("%s", mc_error(c));
}

/* A connection to the milter at spec (as mc_open takes it), or exit. */
static struct mc_conn *
open_spec(const char *spec)
{
	struct mc_conn *c;
	char err[512];

	if ((c = mc_open(spec, TIMEOUT_MS, err, sizeof err)) == NULL)
		die("%s", err);
	return c;
}

/* A connection to the milter on the unix socket path, or exit. */
static struct mc_conn *
open_unix(const char *path)
{
	char spec[sizeof ((struct sockaddr_un *)0)->sun_path + 8];

	if (strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
		fprintf(stderr, "mtaclient: socket path too long\n");
		exit(2);
	}
	snprintf(spec, sizeof spec, "unix:%s", path);
	return open_spec(spec);
}

/* Queue and send a command without data and without an answer. */
static void
command(struct mc_conn *c, char cmd)
{
	check(c, mc_put(c, cmd, NULL, 0));
	check(c, mc_flush(c));
}

/* Is ev sent, skip being the MC_P_NO* bits of the events not to send? */
static bool
sends(uint32_t skip, enum mc_event ev)
{
	return (skip & mc_event_info(ev)->no_step) == 0;
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * "mod LETTER ..." for change r: its fields (a header index first where
 * it has one) separated by '|' or, with terminated, each followed by
 * one; a body chunk as it is, a NUL shown as '|'.
 */
static void
print_mod(const struct mc_reply *r, bool terminated)
{
	const char *f[2];
	int n = 0;

	printf("mod %c ", r->code);
	switch (r->code) {
	case MC_R_REPLBODY:
		for (size_t i = 0; i < r->len; i++)
			putchar(r->data[i] == '\0' ? '|' : r->data[i]);
		break;
	case MC_R_INSHEADER:
	case MC_R_CHGHEADER:
		printf("%u|", (unsigned)r->index);
		/* FALLTHROUGH */
	case MC_R_ADDHEADER:
		f[n++] = r->name;
		f[n++] = r->value;
		break;
	default:
		f[n++] = r->text;
		if (r->args != NULL)
			f[n++] = r->args;
		break;
	}
	for (int i = 0; i < n; i++)
		printf("%s%s", f[i], terminated || i + 1 < n ? "|" : "");
	putchar('\n');
}

/* ---- Postfix's side: one message after another ------------------------ */

static void
negotiate(struct mc_conn *c)
{
	check(c, mc_negotiate(c, MC_VERSION, MC_ACT_ALL, MC_P_ALL));
}

/*
 * Send event ev, queued, and check its answer is want; none is read if
 * the milter negotiated the event unanswered (then want must be
 * continue).
 */
static void
expect(struct mc_conn *c, enum mc_event ev, char want)
{
	char cmd = mc_event_info(ev)->cmd;
	struct mc_reply r;

	check(c, mc_flush(c));
	if (!mc_answers_event(c, ev)) {
		if (want != MC_R_CONTINUE)
			die("event %c is unanswered, cannot be answered %c",
			    cmd, want);
		sent_unanswered++;
		return;
	}
	check(c, mc_read_answer(c, ev, &r, NULL));
	if (r.code != want)
		die("event %c answered %c, not %c", cmd, r.code, want);
}

/* MAIL or RCPT of addr, answered want. */
static void
envelope(struct mc_conn *c, enum mc_event ev, const char *addr, char want)
{
	const char *argv[] = { addr, NULL };

	check(c, mc_put_argv(c, mc_event_info(ev)->cmd, argv));
	expect(c, ev, want);
}

/* An event without data (DATA, end of headers), answered continue. */
static void
bare(struct mc_conn *c, enum mc_event ev)
{
	check(c, mc_put(c, mc_event_info(ev)->cmd, NULL, 0));
	expect(c, ev, MC_R_CONTINUE);
}

/* Connect from host at IPv4 address addr, port 12345, and HELO as host,
 * each unless the milter negotiated it away. */
static void
start_session(struct mc_conn *c, const char *host, const char *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(12345) };

	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (mc_wants(c, MC_EV_CONNECT)) {
		check(c, mc_put_connect(c, host, (struct sockaddr *)&sin));
		expect(c, MC_EV_CONNECT, MC_R_CONTINUE);
	}
	if (mc_wants(c, MC_EV_HELO)) {
		check(c, mc_put_helo(c, host));
		expect(c, MC_EV_HELO, MC_R_CONTINUE);
	}
}

/* Negotiate, connect and HELO. */
static void
open_session(struct mc_conn *c)
{
	negotiate(c);
	start_session(c, "client.example.test", "192.0.2.7");
}

/* What came back at end of message. */
struct eom_result {
	int headers;            /* added or inserted */
	unsigned char *body;    /* replacement body, concatenated */
	size_t body_len;
	int body_chunks;
	int body_runs;          /* separate runs of body chunks */
	char final;             /* the verdict: c, a, t, r or y */
	bool print;             /* print every change */
};

/*
 * One message from <a@example.test> to <b@example.test>, each event but
 * end of message sent unless skip (MC_P_NO* bits: the milter's steps,
 * or changed by the caller) leaves it out.  Returns the end-of-message
 * round trip in ms.
 */
static double
message(struct mc_conn *c, uint32_t skip, const char *body, size_t len,
	struct eom_result *res)
{
	struct mc_reply r;
	char prev = 0;
	double start;

	if (sends(skip, MC_EV_MAIL))
		envelope(c, MC_EV_MAIL, "<a@example.test>", MC_R_CONTINUE);
	if (sends(skip, MC_EV_RCPT))
		envelope(c, MC_EV_RCPT, "<b@example.test>", MC_R_CONTINUE);
	if (sends(skip, MC_EV_DATA))
		bare(c, MC_EV_DATA);
	if (sends(skip, MC_EV_HEADER)) {
		check(c, mc_put_header(c, "Subject", "test"));
		expect(c, MC_EV_HEADER, MC_R_CONTINUE);
	}
	if (sends(skip, MC_EV_EOH))
		bare(c, MC_EV_EOH);
	for (size_t off = 0; sends(skip, MC_EV_BODY) && off < len;
	    off += CHUNK) {
		check(c, mc_put_body(c, body + off,
		    len - off < CHUNK ? len - off : CHUNK));
		expect(c, MC_EV_BODY, MC_R_CONTINUE);
	}
	{
		bool print = res->print;

		memset(res, 0, sizeof *res);
		res->print = print;
	}
	start = now_ms();
	command(c, MC_CMD_EOM);
	for (;;) {
		check(c, mc_read(c, &r));
		if (!mc_is_change(r.code, NULL) && r.code != MC_R_PROGRESS)
			break;
		if (res->print && mc_is_change(r.code, NULL) &&
		    r.code != MC_R_REPLBODY)
			print_mod(&r, false);
		switch (r.code) {
		case MC_R_ADDHEADER:
		case MC_R_INSHEADER:
			res->headers++;
			break;
		case MC_R_REPLBODY:
			res->body = realloc(res->body, res->body_len + r.len +
			    1);
			if (res->body == NULL)
				die("out of memory");
			memcpy(res->body + res->body_len, r.data, r.len);
			res->body_len += r.len;
			res->body_chunks++;
			if (prev != MC_R_REPLBODY)
				res->body_runs++;
			break;
		}
		prev = r.code;
	}
	switch (r.code) {
	case MC_R_CONTINUE:
	case MC_R_ACCEPT:
	case MC_R_TEMPFAIL:
	case MC_R_REJECT:
	case MC_R_REPLYCODE:
		break;
	default:
		die("end of message answered %c", r.code);
	}
	res->final = r.code;
	return now_ms() - start;
}

static int
run_nodelay(const char *host, const char *port, int messages, double max_ms)
{
	struct eom_result res = { .print = false };
	struct mc_conn *c;
	double worst = 0;
	char spec[512];

	/* The library sets TCP_NODELAY: our side must not stall either,
	 * only the milter's is measured. */
	snprintf(spec, sizeof spec, "inet:%s@%s", port, host);
	c = open_spec(spec);
	open_session(c);
	for (int i = 0; i < messages; i++) {
		double ms = message(c, mc_steps(c), "hello\r\n", 7, &res);

		free(res.body);
		if (res.headers == 0) {
			fprintf(stderr, "mtaclient: message %d: no header "
			    "added\n", i + 1);
			mc_close(c);
			return 1;
		}
		if (ms > worst)
			worst = ms;
	}
	command(c, MC_CMD_QUIT);
	mc_close(c);
	printf("mtaclient: %d messages, slowest end of message %.2f ms "
	    "(limit %.0f ms)\n", messages, worst, max_ms);
	return worst < max_ms ? 0 : 1;
}

#define BODY_LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"
#define BODY_LINE 64

/* size bytes of the numbered-lines pattern; caller frees. */
static char *
pattern(size_t size)
{
	char *body = malloc(size + BODY_LINE + 1), *p = body;

	if (body == NULL)
		die("out of memory");
	for (unsigned k = 0; (size_t)(p - body) < size; k++) {
		snprintf(p, BODY_LINE + 1, "%07u %s\r\n", k, BODY_LETTERS);
		p += BODY_LINE;
	}
	return body;
}

static int
run_mods(const char *path)
{
	struct eom_result res = { .print = true };
	struct mc_conn *c = open_unix(path);

	open_session(c);
	message(c, mc_steps(c), "hello\r\n", 7, &res);
	command(c, MC_CMD_QUIT);
	mc_close(c);
	free(res.body);
	return 0;
}

static int
run_bigbody(const char *path, size_t send, size_t expect_len)
{
	struct eom_result res = { .print = false };
	char *sent = pattern(send), *want = pattern(expect_len);
	struct mc_conn *c = open_unix(path);
	int ok;

	open_session(c);
	message(c, mc_steps(c), sent, send, &res);
	command(c, MC_CMD_QUIT);
	mc_close(c);
	printf("mtaclient: sent a %zu-byte body; got a %zu-byte replacement "
	    "in %d chunk(s), %d run(s)\n", send, res.body_len,
	    res.body_chunks, res.body_runs);
	ok = res.body_len == expect_len &&
	    (expect_len == 0 || memcmp(res.body, want, expect_len) == 0) &&
	    res.body_runs == 1 && res.body_chunks == (expect_len == 0 ? 1 :
	    (int)((expect_len + CHUNK - 1) / CHUNK));
	if (!ok)
		fprintf(stderr, "mtaclient: the replacement body is not the "
		    "expected %zu bytes in one run of %zu chunks\n", expect_len,
		    expect_len == 0 ? 1 : (expect_len + CHUNK - 1) / CHUNK);
	free(res.body);
	free(sent);
	free(want);
	return ok ? 0 : 1;
}

/* One SMTP session of run_quitnc, connecting as host sessionN. */
static bool
quitnc_session(struct mc_conn *c, int n, bool reject)
{
	struct eom_result res = { .print = false };
	char host[64], addr[32];

	snprintf(host, sizeof host, "session%d.example.test", n);
	snprintf(addr, sizeof addr, "192.0.2.%d", n);
	start_session(c, host, addr);
	if (mc_wants(c, MC_EV_MAIL))
		envelope(c, MC_EV_MAIL, "<a@example.test>", MC_R_CONTINUE);
	if (reject)
		envelope(c, MC_EV_RCPT, "<reject@example.test>",
		    MC_R_REJECT);
	/* The second recipient and the rest of the message. */
	message(c, mc_steps(c) | MC_P_NOMAIL, "hello\r\n", 7, &res);
	free(res.body);
	printf("mtaclient: session %d: %s%d header change(s)\n", n,
	    reject ? "recipient rejected, " : "", res.headers);
	return res.headers > 0;
}

static int
run_quitnc(const char *path, int sessions, const char *end, bool reject)
{
	struct mc_conn *c = open_unix(path);
	bool ok = true;

	negotiate(c);
	for (int i = 1; i <= sessions; i++) {
		if (i > 1)
			command(c, MC_CMD_QUIT_NC);
		ok = quitnc_session(c, i, reject) && ok;
	}
	command(c, strcmp(end, "eof") == 0 ? MC_CMD_QUIT_NC : MC_CMD_QUIT);
	mc_close(c);
	return ok ? 0 : 1;
}

static int
run_stop(const char *path, pid_t pid)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct eom_result res = { .print = false };
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	struct mc_conn *c = open_unix(path);
	uint32_t skip;
	int other, first;

	open_session(c);
	envelope(c, MC_EV_MAIL, "<a@example.test>", MC_R_CONTINUE);
	if (kill(pid, SIGTERM) < 0)
		die("kill: %s", strerror(errno));
	nanosleep(&pause, NULL);
	/* A plain connect: its refusal is the point, not the protocol. */
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
	if ((other = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		die("socket: %s", strerror(errno));
	if (connect(other, (struct sockaddr *)&sun, sizeof sun) == 0) {
		fprintf(stderr, "mtaclient: a new connection was accepted "
		    "after SIGTERM\n");
		close(other);
		mc_close(c);
		return 1;
	}
	printf("mtaclient: after SIGTERM a new connection is refused (%s)\n",
	    strerror(errno));
	close(other);
	envelope(c, MC_EV_RCPT, "<b@example.test>", MC_R_CONTINUE);
	/* The rest of this message, then one more on the same session. */
	skip = mc_steps(c) | MC_P_NOMAIL | MC_P_NORCPT;
	message(c, skip, "hello\r\n", 7, &res);
	first = res.headers;
	free(res.body);
	message(c, skip & ~(MC_P_NOMAIL | MC_P_NORCPT), "hello\r\n", 7, &res);
	free(res.body);
	command(c, MC_CMD_QUIT);
	mc_close(c);
	printf("mtaclient: both messages answered after SIGTERM, %d and %d "
	    "header change(s)\n", first, res.headers);
	return first > 0 && res.headers > 0 ? 0 : 1;
}

/* Does the peer of fd close the connection within ms milliseconds? */
static bool
closed_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	double deadline = now_ms() + ms;
	char ch;
	int n;

	do {
		int left = (int)(deadline - now_ms());

		n = poll(&p, 1, left > 0 ? left : 0);
	} while (n < 0 && errno == EINTR);
	return n == 1 && recv(fd, &ch, 1, 0) == 0;
}

static int
run_hold(const char *path, int seconds)
{
	struct mc_conn *c = open_unix(path);
	double start, took;
	bool closed;

	open_session(c);
	envelope(c, MC_EV_MAIL, "<a@example.test>", MC_R_CONTINUE);
	printf("mtaclient: holding\n");
	fflush(stdout);
	start = now_ms();
	closed = closed_within(mc_fd(c), seconds * 1000);
	took = now_ms() - start;
	mc_close(c);
	if (closed)
		printf("mtaclient: connection closed after %.0f ms\n", took);
	else
		printf("mtaclient: connection still open after %d s\n",
		    seconds);
	return closed ? 0 : 1;
}

static int
run_pause(const char *path)
{
	struct eom_result res = { .print = true };
	struct mc_conn *c = open_unix(path);
	char line[64];

	open_session(c);
	if (mc_wants(c, MC_EV_MAIL))
		envelope(c, MC_EV_MAIL, "<a@example.test>", MC_R_CONTINUE);
	printf("paused\n");
	fflush(stdout);
	if (fgets(line, sizeof line, stdin) == NULL) {
		mc_close(c);
		return 1;
	}
	message(c, mc_steps(c) | MC_P_NOMAIL, "hello\r\n", 7, &res);
	free(res.body);
	command(c, MC_CMD_QUIT);
	mc_close(c);
	return 0;
}

static int
run_observe(const char *path)
{
	struct eom_result res = { .print = false };
	struct mc_conn *c = open_unix(path);

	open_session(c);
	message(c, mc_steps(c), "hello\r\n", 7, &res);
	free(res.body);
	command(c, MC_CMD_QUIT);
	mc_close(c);
	printf("unanswered %d eom %c headers %d\n", sent_unanswered,
	    res.final, res.headers);
	return 0;
}

/* ---- eml: message files sent as Postfix sends them -------------------- */

#define EML_MAX 64

struct eml_opts {
	const char *addr, *name, *helo, *from;
	struct sockaddr_in sin;  /* addr, port 54321 */
	const char *rcpts[EML_MAX];
	int nrcpts;
	const char *mnames[EML_MAX], *mvalues[EML_MAX];
	int nmacros;
};

struct eml_header {
	char *name;
	char *value;            /* after the colon, folds joined by LF */
};

struct eml_msg {
	struct eml_header headers[8192];
	int nheaders;
	char *body;             /* with CR LF line ends */
	size_t body_len;
};

/* s, escaped as milterhost-replay's trace escapes it. */
static void
put_esc(const char *s, size_t len, bool quoted)
{
	if (quoted)
		putchar('"');
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			fputs("\\r", stdout);
		else if (c == '\n')
			fputs("\\n", stdout);
		else if (c == '\t')
			fputs("\\t", stdout);
		else if (c < 0x20 || c == 0x7f)
			printf("\\x%02X", c);
		else if (quoted && (c == '"' || c == '\\'))
			printf("\\%c", c);
		else
			putchar(c);
	}
	if (quoted)
		putchar('"');
}

/* Are a and b the same macro name, braces or not? */
static bool
same_macro(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b);

	if (alen >= 2 && a[0] == '{' && a[alen - 1] == '}') {
		a++;
		alen -= 2;
	}
	if (blen >= 2 && b[0] == '{' && b[blen - 1] == '}') {
		b++;
		blen -= 2;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* The value -D gave the macro name, or NULL. */
static const char *
macro_value(void *arg, const char *name)
{
	const struct eml_opts *o = arg;

	for (int i = 0; i < o->nmacros; i++)
		if (same_macro(name, o->mnames[i]))
			return o->mvalues[i];
	return NULL;
}

/* Queue the macros of ev's stage that -D gave a value, if any. */
static void
send_macros(struct mc_conn *c, struct eml_opts *o, enum mc_event ev)
{
	const struct mc_event_info *e = mc_event_info(ev);
	const char *list = mc_macro_list(c, e->macro_stage);

	if (list == NULL)
		list = mc_default_macros(e->macro_stage);
	check(c, mc_put_macros(c, e->cmd, list, macro_value, o));
}

/* "answer STAGE ..." for the answer code (n: none was sent), with the
 * reply code's text; the answer as Postfix takes it (y: t or r). */
static char
print_answer(const char *stage, char code, const char *text)
{
	static const char *const names[] = { ['c'] = "continue",
	    ['a'] = "accept", ['r'] = "reject", ['t'] = "tempfail",
	    ['d'] = "discard", ['s'] = "skip", ['n'] = "noreply" };
	char *plain = NULL;
	size_t k = 0;

	if (code == MC_R_REPLYCODE) {
		/* Postfix makes every "%%" a "%" again. */
		if ((plain = malloc(strlen(text) + 1)) == NULL)
			die("out of memory");
		for (size_t i = 0; text[i] != '\0'; i++) {
			if (text[i] == '%' && text[i + 1] == '%')
				i++;
			plain[k++] = text[i];
		}
		code = text[0] == '4' ? MC_R_TEMPFAIL : MC_R_REJECT;
	}
	if ((unsigned char)code >= sizeof names / sizeof names[0] ||
	    names[(unsigned char)code] == NULL)
		die("%s answered %c", stage, code);
	printf("answer %s %s", stage, names[(unsigned char)code]);
	if (k > 0) {
		putchar(' ');
		put_esc(plain, k, true);
	}
	putchar('\n');
	free(plain);
	return code;
}

/* Send event ev, queued; its answer (c a r t d s, or n when none is
 * sent). */
static char
eml_event(struct mc_conn *c, const char *stage, enum mc_event ev)
{
	struct mc_reply r;

	check(c, mc_flush(c));
	if (!mc_answers_event(c, ev))
		return print_answer(stage, 'n', NULL);
	check(c, mc_read_answer(c, ev, &r, NULL));
	return print_answer(stage, r.code, r.text);
}

/* Queue MAIL or RCPT with line's words: "<a@b> ARG ...". */
static void
put_envelope(struct mc_conn *c, enum mc_event ev, const char *line)
{
	char *copy = strdup(line), *save = NULL;
	const char **argv = calloc(strlen(line) / 2 + 2, sizeof *argv);
	size_t n = 0;

	if (copy == NULL || argv == NULL)
		die("out of memory");
	for (char *w = strtok_r(copy, " ", &save); w != NULL;
	    w = strtok_r(NULL, " ", &save))
		argv[n++] = w;
	argv[n] = NULL;
	check(c, mc_put_argv(c, mc_event_info(ev)->cmd, argv));
	free(argv);
	free(copy);
}

/* The replacement body, as milterhost-replay's trace shows it. */
static void
print_body_change(const char *body, size_t len)
{
	printf("change replace_body %zu bytes ", len);
	put_esc(body, len < 64 ? len : 64, true);
	if (len > 64)
		fputs("...", stdout);
	putchar('\n');
}

/* Any other change, with its fields. */
static void
print_change(const struct mc_reply *r)
{
	switch (r->code) {
	case MC_R_ADDHEADER:
		printf("change add_header %s ", r->name);
		put_esc(r->value, strlen(r->value), true);
		break;
	case MC_R_INSHEADER:
		printf("change insert_header %u %s ", (unsigned)r->index,
		    r->name);
		put_esc(r->value, strlen(r->value), true);
		break;
	case MC_R_CHGHEADER:
		if (r->value[0] == '\0') {
			printf("change delete_header %s %u", r->name,
			    (unsigned)r->index);
			break;
		}
		printf("change change_header %s %u ", r->name,
		    (unsigned)r->index);
		put_esc(r->value, strlen(r->value), true);
		break;
	case MC_R_QUARANTINE:
		fputs("change quarantine ", stdout);
		put_esc(r->text, strlen(r->text), true);
		break;
	default:
		printf("change %s ", r->code == MC_R_DELRCPT ? "delete_rcpt" :
		    r->code == MC_R_CHGFROM ? "change_from" : "add_rcpt");
		put_esc(r->text, strlen(r->text), false);
		if (r->args != NULL && r->args[0] != '\0') {
			putchar(' ');
			put_esc(r->args, strlen(r->args), false);
		}
		break;
	}
	putchar('\n');
}

/* End of message: every change, then the verdict. */
static char
eml_eom(struct mc_conn *c)
{
	static char body[1 << 20];
	size_t body_len = 0;
	bool in_body = false;
	struct mc_reply r;

	command(c, MC_CMD_EOM);
	for (;;) {
		check(c, mc_read(c, &r));
		if (r.code == MC_R_PROGRESS)
			continue;
		if (!mc_is_change(r.code, NULL))
			break;
		if (r.code != MC_R_REPLBODY && in_body) {
			print_body_change(body, body_len);
			in_body = false;
		}
		if (r.code == MC_R_REPLBODY) {
			if (body_len + r.len > sizeof body)
				die("replacement body over 1 MB");
			memcpy(body + body_len, r.data, r.len);
			body_len += r.len;
			in_body = true;
			continue;
		}
		print_change(&r);
	}
	if (!mc_answers(MC_EV_EOM, r.code))
		die("end of message answered %c", r.code);
	if (in_body)
		print_body_change(body, body_len);
	return print_answer("eom", r.code, r.text);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (f == NULL)
		die("%s: %s", path, strerror(errno));
	do {
		if (*len + 65536 > cap &&
		    (data = realloc(data, cap = *len + 65536 * 4)) == NULL)
			die("out of memory");
		n = fread(data + *len, 1, cap - *len, f);
		*len += n;
	} while (n > 0);
	fclose(f);
	return data;
}

/* The body from data on, every line ended by CR LF. */
static void
eml_body(struct eml_msg *m, const char *data, size_t len)
{
	size_t o = 0;

	if ((m->body = malloc(2 * len + 2)) == NULL)
		die("out of memory");
	for (size_t i = 0; i < len; i++) {
		if (data[i] == '\n') {
			m->body[o++] = '\r';
			m->body[o++] = '\n';
		} else if (data[i] == '\r' && i + 1 < len &&
		    data[i + 1] == '\n') {
			continue;
		} else {
			m->body[o++] = data[i];
		}
	}
	if (len > 0 && data[len - 1] != '\n') {
		if (data[len - 1] == '\r')
			o--;
		m->body[o++] = '\r';
		m->body[o++] = '\n';
	}
	m->body_len = o;
}

static void
eml_parse(const char *path, struct eml_msg *m)
{
	size_t len, pos = 0;
	char *data = read_file(path, &len);

	m->nheaders = 0;
	while (pos < len) {
		const char *nl = memchr(data + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - data) : len, n = end - pos;
		size_t next = nl ? end + 1 : len, name = 0;
		const char *line = data + pos;

		if (nl && n > 0 && line[n - 1] == '\r')
			n--;
		if (pos == 0 && n >= 5 && memcmp(line, "From ", 5) == 0) {
			pos = next;
			continue;
		}
		if (n == 0) {
			pos = next;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && m->nheaders > 0) {
			struct eml_header *h = &m->headers[m->nheaders - 1];
			size_t old = strlen(h->value);

			if ((h->value = realloc(h->value, old + n + 2)) == NULL)
				die("out of memory");
			h->value[old] = '\n';
			memcpy(h->value + old + 1, line, n);
			h->value[old + 1 + n] = '\0';
			pos = next;
			continue;
		}
		while (name < n && line[name] > ' ' && line[name] < 127 &&
		    line[name] != ':')
			name++;
		if (name == 0 || name == n || line[name] != ':' ||
		    m->nheaders == 8192)
			break;
		m->headers[m->nheaders].name = strndup(line, name);
		m->headers[m->nheaders].value = strndup(line + name + 1,
		    n - name - 1);
		m->nheaders++;
		pos = next;
	}
	eml_body(m, data + pos, len - pos);
	free(data);
}

static void
eml_free(struct eml_msg *m)
{
	for (int i = 0; i < m->nheaders; i++) {
		free(m->headers[i].name);
		free(m->headers[i].value);
	}
	free(m->body);
}

static bool
ends(char r)
{
	return r == MC_R_ACCEPT || r == MC_R_REJECT || r == MC_R_TEMPFAIL ||
	    r == MC_R_DISCARD;
}

/* One message from MAIL to its end. */
static void
eml_message(struct mc_conn *c, struct eml_opts *o, const char *path)
{
	static struct eml_msg m;
	bool leadspc = (mc_steps(c) & MC_P_HDR_LEADSPC) != 0;
	int taken = 0;
	char r;

	eml_parse(path, &m);
	send_macros(c, o, MC_EV_MAIL);
	if (mc_wants(c, MC_EV_MAIL)) {
		put_envelope(c, MC_EV_MAIL, o->from);
		if (ends(eml_event(c, "envfrom", MC_EV_MAIL)))
			goto done;
	}
	for (int i = 0; i < o->nrcpts; i++) {
		send_macros(c, o, MC_EV_RCPT);
		if (!mc_wants(c, MC_EV_RCPT)) {
			taken++;
			continue;
		}
		put_envelope(c, MC_EV_RCPT, o->rcpts[i]);
		r = eml_event(c, "envrcpt", MC_EV_RCPT);
		if (r == MC_R_REJECT || r == MC_R_TEMPFAIL)
			continue;
		if (ends(r))
			goto done;
		taken++;
	}
	if (taken == 0)
		goto done;
	send_macros(c, o, MC_EV_DATA);
	if (mc_wants(c, MC_EV_DATA)) {
		check(c, mc_put(c, MC_CMD_DATA, NULL, 0));
		if (ends(eml_event(c, "data", MC_EV_DATA)))
			goto done;
	}
	for (int i = 0; i < m.nheaders && mc_wants(c, MC_EV_HEADER); i++) {
		const char *v = m.headers[i].value;

		if (!leadspc && v[0] == ' ')
			v++;
		check(c, mc_put_header(c, m.headers[i].name, v));
		if (ends(eml_event(c, "header", MC_EV_HEADER)))
			goto done;
	}
	send_macros(c, o, MC_EV_EOH);
	if (mc_wants(c, MC_EV_EOH)) {
		check(c, mc_put(c, MC_CMD_EOH, NULL, 0));
		if (ends(eml_event(c, "eoh", MC_EV_EOH)))
			goto done;
	}
	for (size_t off = 0; mc_wants(c, MC_EV_BODY) && off < m.body_len;
	    off += CHUNK) {
		check(c, mc_put_body(c, m.body + off, m.body_len - off <
		    CHUNK ? m.body_len - off : CHUNK));
		r = eml_event(c, "body", MC_EV_BODY);
		if (r == MC_R_SKIP)
			break;
		if (ends(r))
			goto done;
	}
	send_macros(c, o, MC_EV_EOM);
	eml_eom(c);
done:
	command(c, MC_CMD_ABORT);
	eml_free(&m);
}

/* Connect and HELO; false if the connection was decided there. */
static bool
eml_connect(struct mc_conn *c, struct eml_opts *o)
{
	char host[256];

	snprintf(host, sizeof host, o->name ? "%s" : "[%s]",
	    o->name ? o->name : o->addr);
	send_macros(c, o, MC_EV_CONNECT);
	if (mc_wants(c, MC_EV_CONNECT)) {
		check(c, mc_put_connect(c, host, (struct sockaddr *)&o->sin));
		if (ends(eml_event(c, "connect", MC_EV_CONNECT)))
			return false;
	}
	send_macros(c, o, MC_EV_HELO);
	if (!mc_wants(c, MC_EV_HELO))
		return true;
	check(c, mc_put_helo(c, o->helo));
	return !ends(eml_event(c, "helo", MC_EV_HELO));
}

/* argv[0]: the socket path; then the options and files. */
static int
run_eml(int argc, char **argv)
{
	struct eml_opts o = { .addr = "192.0.2.1" };
	struct mc_conn *c;
	int ch;

	optind = 1;
	while ((ch = getopt(argc, argv, "a:n:H:f:r:D:")) != -1) {
		char *eq;

		switch (ch) {
		case 'a': o.addr = optarg; break;
		case 'n': o.name = optarg; break;
		case 'H': o.helo = optarg; break;
		case 'f': o.from = optarg; break;
		case 'r':
			if (o.nrcpts < EML_MAX)
				o.rcpts[o.nrcpts++] = optarg;
			break;
		case 'D':
			if ((eq = strchr(optarg, '=')) == NULL ||
			    o.nmacros == EML_MAX)
				return 2;
			*eq = '\0';
			o.mnames[o.nmacros] = optarg;
			o.mvalues[o.nmacros++] = eq + 1;
			break;
		default:
			return 2;
		}
	}
	if (o.from == NULL || o.nrcpts == 0 || optind >= argc)
		return 2;
	o.sin.sin_family = AF_INET;
	o.sin.sin_port = htons(54321);
	if (inet_pton(AF_INET, o.addr, &o.sin.sin_addr) != 1) {
		fprintf(stderr, "mtaclient: -a %s: not an IPv4 address\n",
		    o.addr);
		return 2;
	}
	if (o.helo == NULL)
		o.helo = o.name ? o.name : "client.example";
	c = open_unix(argv[0]);
	negotiate(c);
	if (eml_connect(c, &o))
		for (int i = optind; i < argc; i++)
			eml_message(c, &o, argv[i]);
	command(c, MC_CMD_QUIT);
	mc_close(c);
	return 0;
}

/* ---- script: the MTA side as the test's commands say ------------------ */

/* s with "\n", "\t", "\r" and "\\" made the characters, in place. */
static void
unescape(char *s)
{
	char *o = s;

	for (; *s != '\0'; s++) {
		if (s[0] == '\\' && s[1] != '\0' && strchr("ntr\\", s[1])) {
			s++;
			*o++ = *s == 'n' ? '\n' : *s == 't' ? '\t' :
			    *s == 'r' ? '\r' : '\\';
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* A number of the script: decimal, or hexadecimal after 0x. */
static uint32_t
number(const char *s)
{
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		return (uint32_t)strtoul(s + 2, NULL, 16);
	return (uint32_t)strtoul(s, NULL, 10);
}

/*
 * connect HOST FAMILY PORT ADDR: through mc_put_connect where that
 * encodes exactly what the script says (U; 4 and 6 with an address as
 * inet_ntop writes it; L with port 0), else the fields as written.
 */
static void
script_connect(struct mc_conn *c, const char *host, const char *family,
	       const char *port, const char *addr)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
		struct sockaddr_un sun;
	} u;
	uint16_t nport = htons((uint16_t)strtoul(port, NULL, 10));
	char text[INET6_ADDRSTRLEN] = "", *data;
	size_t hlen = strlen(host) + 1, flen = strlen(family);
	size_t alen = strlen(addr) + 1, len;
	bool ok = false;

	memset(&u, 0, sizeof u);
	if (strcmp(family, "U") == 0) {
		check(c, mc_put_connect(c, host, NULL));
		return;
	}
	if (strcmp(family, "4") == 0 &&
	    inet_pton(AF_INET, addr, &u.sin.sin_addr) == 1) {
		u.sin.sin_family = AF_INET;
		u.sin.sin_port = nport;
		inet_ntop(AF_INET, &u.sin.sin_addr, text, sizeof text);
		ok = strcmp(text, addr) == 0;
	} else if (strcmp(family, "6") == 0 &&
	    inet_pton(AF_INET6, addr, &u.sin6.sin6_addr) == 1) {
		u.sin6.sin6_family = AF_INET6;
		u.sin6.sin6_port = nport;
		inet_ntop(AF_INET6, &u.sin6.sin6_addr, text, sizeof text);
		ok = strcmp(text, addr) == 0;
	} else if (strcmp(family, "L") == 0 && nport == 0 &&
	    alen <= sizeof u.sun.sun_path) {
		u.sun.sun_family = AF_UNIX;
		memcpy(u.sun.sun_path, addr, alen);
		ok = true;
	}
	if (ok) {
		check(c, mc_put_connect(c, host, &u.sa));
		return;
	}
	len = hlen + flen + 2 + alen;
	if ((data = malloc(len)) == NULL)
		die("out of memory");
	memcpy(data, host, hlen);
	memcpy(data + hlen, family, flen);
	memcpy(data + hlen + flen, &nport, 2);
	memcpy(data + hlen + flen + 2, addr, alen);
	check(c, mc_put(c, MC_CMD_CONNECT, data, len));
	free(data);
}

/* macro CMD NAME VALUE ...: CMD as written, then each field with its
 * NUL. */
static void
script_macro(struct mc_conn *c, char **f, int n)
{
	size_t len = n > 0 ? strlen(f[0]) : 0, off;
	char *data;

	for (int i = 1; i < n; i++)
		len += strlen(f[i]) + 1;
	if ((data = malloc(len + 1)) == NULL)
		die("out of memory");
	off = n > 0 ? strlen(f[0]) : 0;
	if (n > 0)
		memcpy(data, f[0], off);
	for (int i = 1; i < n; i++) {
		memcpy(data + off, f[i], strlen(f[i]) + 1);
		off += strlen(f[i]) + 1;
	}
	check(c, mc_put(c, MC_CMD_MACRO, data, len));
	free(data);
}

/* The "mta" command: skip the rest of a message whose MAIL was not
 * answered with continue. */
static bool script_as_mta;
static bool script_message_over;

/* Is op a command of a message after its MAIL? */
static bool
in_message(const char *op)
{
	static const char *const ops[] = { "rcpt", "data", "header", "eoh",
	    "body", "eom" };

	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
		if (strcmp(op, ops[i]) == 0)
			return true;
	return false;
}

/* Read the answer to command what: "reply WHAT LETTER [TEXT]", after
 * "mod ..." for each change at end of message; returns the letter. */
static int
script_answer(struct mc_conn *c, const char *what)
{
	bool eom = strcmp(what, "eom") == 0;
	struct mc_reply r;

	for (;;) {
		check(c, mc_read(c, &r));
		if (eom && mc_is_change(r.code, NULL)) {
			print_mod(&r, true);
			continue;
		}
		if (r.code == MC_R_PROGRESS)
			continue;
		printf("reply %s %c", what, r.code);
		if (r.code == MC_R_REPLYCODE)
			printf(" %s", r.text);
		putchar('\n');
		return r.code;
	}
}

/* One command: f[0] the command, then n - 1 fields; false after quit. */
static bool
script_command(struct mc_conn *c, char **f, int n)
{
	static const struct {
		const char *op;
		char cmd;
		bool strings;  /* its fields, each with its NUL */
	} events[] = {
		{ "helo", MC_CMD_HELO, true },
		{ "mail", MC_CMD_MAIL, true },
		{ "rcpt", MC_CMD_RCPT, true },
		{ "unknown", MC_CMD_UNKNOWN, true },
		{ "header", MC_CMD_HEADER, true },
		{ "data", MC_CMD_DATA, false },
		{ "eoh", MC_CMD_EOH, false },
		{ "eom", MC_CMD_EOM, false },
	};
	const char *op = f[0];
#define FIELD(i) ((i) < n ? f[i] : "")

	if (strcmp(op, "negotiate") == 0) {
		check(c, mc_negotiate(c, number(FIELD(1)), number(FIELD(2)),
		    number(FIELD(3))));
		printf("optneg version=%u actions=0x%x steps=0x%x\n",
		    (unsigned)mc_version(c), (unsigned)mc_actions(c),
		    (unsigned)mc_steps(c));
		for (int m = 0; m < MC_M_STAGES; m++)
			if (mc_macro_list(c, m) != NULL)
				printf("symlist %d %s\n", m,
				    mc_macro_list(c, m));
		return true;
	}
	if (strcmp(op, "mta") == 0) {
		script_as_mta = true;
		return true;
	}
	if (strcmp(op, "abort") == 0 || strcmp(op, "mail") == 0)
		script_message_over = false;
	else if (script_as_mta && script_message_over && in_message(op)) {
		printf("skipped %s\n", op);
		return true;
	}
	if (strcmp(op, "macro") == 0) {
		script_macro(c, f + 1, n - 1);
		check(c, mc_flush(c));
		return true;
	}
	if (strcmp(op, "abort") == 0 || strcmp(op, "quit") == 0) {
		command(c, op[0] == 'a' ? MC_CMD_ABORT : MC_CMD_QUIT);
		return op[0] == 'a';
	}
	if (strcmp(op, "connect") == 0)
		script_connect(c, FIELD(1), FIELD(2), FIELD(3), FIELD(4));
	else if (strcmp(op, "body") == 0)
		check(c, mc_put_body(c, FIELD(1), strlen(FIELD(1))));
	else {
		size_t i = 0;

		while (i < sizeof events / sizeof events[0] &&
		    strcmp(op, events[i].op) != 0)
			i++;
		if (i == sizeof events / sizeof events[0])
			die("unknown command '%s'", op);
		if (events[i].strings)
			check(c, mc_put_argv(c, events[i].cmd,
			    (const char *const *)f + 1));
		else
			check(c, mc_put(c, events[i].cmd, NULL, 0));
	}
#undef FIELD
	check(c, mc_flush(c));
	if (script_answer(c, op) != MC_R_CONTINUE && strcmp(op, "mail") == 0)
		script_message_over = true;
	return true;
}

static int
run_script(const char *path)
{
	struct mc_conn *c = open_unix(path);
	char *line = NULL, **f = NULL;
	size_t cap = 0;
	ssize_t len;
	bool more = true;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (more && (len = getline(&line, &cap, stdin)) > 0) {
		size_t max = 2;
		int n = 0;
		char first;

		if (line[len - 1] == '\n')
			line[--len] = '\0';
		first = line[strspn(line, " \t\r\n\f\v")];
		if (first == '#' || first == '\0')
			continue;
		for (char *p = line; *p != '\0'; p++)
			max += *p == '\t';
		if ((f = realloc(f, max * sizeof *f)) == NULL)
			die("out of memory");
		for (char *p = line;; p++) {
			f[n++] = p;
			if ((p = strchr(p, '\t')) == NULL)
				break;
			*p = '\0';
		}
		while (n > 1 && f[n - 1][0] == '\0')
			n--;
		f[n] = NULL;
		for (int i = 0; i < n; i++)
			unescape(f[i]);
		more = script_command(c, f, n);
	}
	free(f);
	free(line);
	mc_close(c);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc == 6 && strcmp(argv[1], "nodelay") == 0)
		return run_nodelay(argv[2], argv[3], atoi(argv[4]),
		    atof(argv[5]));
	if (argc == 3 && strcmp(argv[1], "mods") == 0)
		return run_mods(argv[2]);
	if (argc == 5 && strcmp(argv[1], "bigbody") == 0)
		return run_bigbody(argv[2], strtoul(argv[3], NULL, 10),
		    strtoul(argv[4], NULL, 10));
	if ((argc == 5 || (argc == 6 && strcmp(argv[5], "noreject") == 0)) &&
	    strcmp(argv[1], "quitnc") == 0)
		return run_quitnc(argv[2], atoi(argv[3]), argv[4], argc == 5);
	if (argc == 3 && strcmp(argv[1], "pause") == 0)
		return run_pause(argv[2]);
	if (argc == 3 && strcmp(argv[1], "observe") == 0)
		return run_observe(argv[2]);
	if (argc == 4 && strcmp(argv[1], "hold") == 0)
		return run_hold(argv[2], atoi(argv[3]));
	if (argc == 4 && strcmp(argv[1], "stop") == 0)
		return run_stop(argv[2], (pid_t)atol(argv[3]));
	if (argc >= 4 && strcmp(argv[1], "eml") == 0)
		return run_eml(argc - 2, argv + 2);
	if (argc == 3 && strcmp(argv[1], "script") == 0)
		return run_script(argv[2]);
	fprintf(stderr, "usage: mtaclient nodelay HOST PORT MESSAGES MAX_MS\n"
	    "       mtaclient mods SOCKETPATH\n"
	    "       mtaclient bigbody SOCKETPATH SEND_BYTES EXPECT_BYTES\n"
	    "       mtaclient quitnc SOCKETPATH SESSIONS quit|eof "
	    "[noreject]\n"
	    "       mtaclient stop SOCKETPATH PID\n"
	    "       mtaclient hold SOCKETPATH SECONDS\n"
	    "       mtaclient observe SOCKETPATH\n"
	    "       mtaclient pause SOCKETPATH\n"
	    "       mtaclient eml SOCKETPATH [-a ADDR] [-n NAME] [-H HELO] "
	    "-f SENDER\n"
	    "             -r RCPT... [-D NAME=VALUE]... FILE...\n"
	    "       mtaclient script SOCKETPATH <commands\n");
	return 2;
}

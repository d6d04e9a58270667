/*
 * mtaclient - a minimal MTA side of the milter protocol, for the checks
 * miltertest cannot make.
 *
 * It speaks as Postfix does: negotiates version 6 with every action and
 * step offered, then sends messages on one connection, skipping the events
 * the milter asked not to get.
 *
 * mtaclient nodelay HOST PORT MESSAGES MAX_MS
 *	Times each end-of-message round trip over TCP.  An answer of
 *	several packets (a modification, then the verdict) stalls ~40 ms on
 *	Nagle's algorithm unless the milter's socket has TCP_NODELAY.
 *	Exits 0 if every message got at least one header modification and
 *	the slowest end of message took less than MAX_MS milliseconds.
 *
 * mtaclient mods SOCKETPATH
 *	Sends one short message over a unix socket and prints every
 *	message change the milter sends at end of message, one a line:
 *	"mod LETTER FIELD|FIELD...", the fields of the command's data
 *	(NUL-separated strings on the wire; a header index first where the
 *	command has one).  Exits 0 if the message was accepted.
 *
 * mtaclient bigbody SOCKETPATH SEND_BYTES EXPECT_BYTES
 *	Sends one message with a body of SEND_BYTES (in chunks of at most
 *	64 KB, as MTAs do) over a unix socket and collects the replacement
 *	body the milter sends at end of message.  Exits 0 if it came in
 *	several chunks, contiguous, and equals EXPECT_BYTES of the lines
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
 *	one on the same session.  Exits 0 if every event was answered and
 *	both ends of message brought a header change.
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
 *	CR LF line ends in chunks of 65535 bytes; the client ADDR (IPv4,
 *	default 192.0.2.1, port 54321) named NAME (default "[ADDR]"),
 *	HELO (default NAME, else client.example); the macros of -D at
 *	each stage whose list (negotiated, else Postfix's default) names
 *	them; an abort after each message.  It acts on the answers as
 *	Postfix: a refused recipient is dropped, a message without
 *	recipients ends, accept, reject, tempfail and discard end the
 *	message (the connection at connect and HELO), skip ends the body.
 *	Prints, in milterhost-replay's trace format without the message
 *	number and the instance, "answer STAGE STATUS ["REPLY"]" (or
 *	"answer STAGE noreply") for each event sent and "change KIND ..."
 *	for each change at end of message.  Exits 0.
 *
 * Every reply is waited for at most 10 s.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <getopt.h>
#include <unistd.h>

#define V6_ACTIONS 0x1FFUL
#define V6_STEPS 0x1FFFFFUL
#define NOCONNECT 0x1UL
#define NOHELO 0x2UL
#define NOMAIL 0x4UL
#define NORCPT 0x8UL
#define NOBODY 0x10UL
#define NOHDRS 0x20UL
#define NOEOH 0x40UL
#define NODATA 0x200UL
#define NR_HDR 0x80UL

static int sock;
/* The "no reply" bits the milter negotiated: those events get no answer,
 * as Postfix's milter8.c does; counted in sent_unanswered. */
static unsigned long unanswered;
static int sent_unanswered;

/* The SMFIP_NR_* bit of an event command, 0 if it has none. */
static unsigned long
nr_bit(char cmd)
{
	switch (cmd) {
	case 'C': return 0x1000UL;
	case 'H': return 0x2000UL;
	case 'M': return 0x4000UL;
	case 'R': return 0x8000UL;
	case 'T': return 0x10000UL;
	case 'U': return 0x20000UL;
	case 'L': return NR_HDR;
	case 'N': return 0x40000UL;
	case 'B': return 0x80000UL;
	default: return 0;
	}
}

static void
die(const char *what)
{
	fprintf(stderr, "mtaclient: %s: %s\n", what,
	    errno ? strerror(errno) : "protocol error");
	exit(1);
}

static void
write_all(const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(sock, p, len);

		if (n <= 0)
			die("write");
		p += n;
		len -= (size_t)n;
	}
}

static void
read_all(void *buf, size_t len)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = read(sock, p, len);

		if (n <= 0)
			die("read");
		p += n;
		len -= (size_t)n;
	}
}

static void
send_cmd(char cmd, const void *data, size_t len)
{
	unsigned char hdr[5];
	uint32_t n = htonl((uint32_t)len + 1);

	memcpy(hdr, &n, 4);
	hdr[4] = (unsigned char)cmd;
	write_all(hdr, 5);
	if (len > 0)
		write_all(data, len);
}

/* Read one reply; returns its command, its data (len) in buf. */
static char
read_reply(char *buf, size_t size, size_t *len)
{
	uint32_t n;
	char cmd;

	read_all(&n, 4);
	n = ntohl(n);
	if (n < 1 || n - 1 > size) {
		errno = 0;
		die("reply length");
	}
	read_all(&cmd, 1);
	*len = n - 1;
	read_all(buf, *len);
	return cmd;
}

/* Send an event and expect the reply want. */
static void
expect(char cmd, const void *data, size_t len, char want)
{
	char buf[70000], r;
	size_t n;

	send_cmd(cmd, data, len);
	if (unanswered & nr_bit(cmd)) {
		if (want != 'c') {
			fprintf(stderr, "mtaclient: event %c is unanswered, "
			    "cannot be answered %c\n", cmd, want);
			exit(1);
		}
		sent_unanswered++;
		return;
	}
	r = read_reply(buf, sizeof buf, &n);
	if (r != want) {
		fprintf(stderr, "mtaclient: event %c answered %c, not %c\n",
		    cmd, r, want);
		exit(1);
	}
}

/* Send an event and expect "continue". */
static void
event(char cmd, const void *data, size_t len)
{
	expect(cmd, data, len, 'c');
}

static unsigned long
negotiate(void)
{
	uint32_t out[3] = { htonl(6), htonl(V6_ACTIONS), htonl(V6_STEPS) };
	char buf[70000];
	uint32_t in[3];
	size_t n;

	send_cmd('O', out, sizeof out);
	if (read_reply(buf, sizeof buf, &n) != 'O' || n < 12) {
		errno = 0;
		die("negotiation");
	}
	memcpy(in, buf, sizeof in);
	unanswered = ntohl(in[2]) & (NR_HDR | 0xFF000UL);
	return ntohl(in[2]);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
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

/* Print a change: "mod LETTER" then its NUL-separated fields. */
static void
print_mod(char letter, const char *data, size_t n)
{
	size_t off = 0;

	printf("mod %c ", letter);
	if (letter == 'i' || letter == 'm') {
		uint32_t idx;

		memcpy(&idx, data, 4);
		printf("%u|", (unsigned)ntohl(idx));
		off = 4;
	}
	while (off < n) {
		size_t len = strnlen(data + off, n - off);

		printf("%.*s%s", (int)len, data + off,
		    off + len + 1 < n ? "|" : "");
		off += len + 1;
	}
	printf("\n");
}

/* Every body chunk is at most this long, as MTAs send it. */
#define CHUNK 65535

/* One message; returns the end-of-message round trip in ms. */
static double
message(unsigned long steps, const char *body, size_t len,
    struct eom_result *res)
{
	static const char mail[] = "<a@example.test>";
	static const char rcpt[] = "<b@example.test>";
	static const char hdr[] = "Subject\0test";
	char buf[70000], r, prev = 0;
	size_t n;
	double start;

	if (!(steps & NOMAIL))
		event('M', mail, sizeof mail);
	if (!(steps & NORCPT))
		event('R', rcpt, sizeof rcpt);
	if (!(steps & NODATA))
		event('T', NULL, 0);
	if (!(steps & NOHDRS))
		event('L', hdr, sizeof hdr);
	if (!(steps & NOEOH))
		event('N', NULL, 0);
	for (size_t off = 0; !(steps & NOBODY) && off < len; off += CHUNK)
		event('B', body + off, len - off < CHUNK ? len - off : CHUNK);
	{
		bool print = res->print;

		memset(res, 0, sizeof *res);
		res->print = print;
	}
	start = now_ms();
	send_cmd('E', NULL, 0);
	while ((r = read_reply(buf, sizeof buf, &n)) != 'c' && r != 'a' &&
	    r != 't' && r != 'r' && r != 'y') {
		if (res->print && r != 'b')
			print_mod(r, buf, n);
		switch (r) {
		case 'h':
		case 'i':
			res->headers++;
			break;
		case 'b':
			res->body = realloc(res->body, res->body_len + n + 1);
			if (res->body == NULL)
				die("realloc");
			memcpy(res->body + res->body_len, buf, n);
			res->body_len += n;
			res->body_chunks++;
			if (prev != 'b')
				res->body_runs++;
			break;
		case 'm': case '+': case '-': case '2': case 'e': case 'q':
		case 'p':
			break;
		default:
			fprintf(stderr, "mtaclient: end of message answered "
			    "%c\n", r);
			exit(1);
		}
		prev = r;
	}
	res->final = r;
	return now_ms() - start;
}

/* Negotiate and send connect and helo (unless asked not to). */
static unsigned long
open_session(void)
{
	static const char conn[] = "client.example.test\0" "4\x30\x39"
	    "192.0.2.7";
	unsigned long steps = negotiate();

	if (!(steps & NOCONNECT))
		event('C', conn, sizeof conn);
	if (!(steps & NOHELO))
		event('H', "client.example.test", 20);
	return steps;
}

static int
run_nodelay(const char *host, const char *port, int messages, double max_ms)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct eom_result res = { .print = false };
	unsigned long steps;
	double worst = 0;
	int one = 1;

	sin.sin_port = htons((uint16_t)atoi(port));
	if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
		fprintf(stderr, "mtaclient: bad address %s\n", host);
		return 2;
	}
	if ((sock = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	/* Our side must not stall either: only the milter's is measured. */
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(sock, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("connect");
	steps = open_session();
	for (int i = 0; i < messages; i++) {
		double ms = message(steps, "hello\r\n", 7, &res);

		free(res.body);
		if (res.headers == 0) {
			fprintf(stderr, "mtaclient: message %d: no header "
			    "added\n", i + 1);
			return 1;
		}
		if (ms > worst)
			worst = ms;
	}
	send_cmd('Q', NULL, 0);
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
		die("malloc");
	for (unsigned k = 0; (size_t)(p - body) < size; k++) {
		snprintf(p, BODY_LINE + 1, "%07u %s\r\n", k, BODY_LETTERS);
		p += BODY_LINE;
	}
	return body;
}

static void
connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof sun.sun_path) {
		fprintf(stderr, "mtaclient: socket path too long\n");
		exit(2);
	}
	strcpy(sun.sun_path, path);
	if ((sock = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		die("socket");
	if (connect(sock, (struct sockaddr *)&sun, sizeof sun) < 0)
		die("connect");
	/* A milter that stopped answering fails the test, never hangs it. */
	{
		struct timeval tv = { 10, 0 };

		setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
}

static int
run_mods(const char *path)
{
	struct eom_result res = { .print = true };

	connect_unix(path);
	message(open_session(), "hello\r\n", 7, &res);
	send_cmd('Q', NULL, 0);
	free(res.body);
	return 0;
}

static int
run_bigbody(const char *path, size_t send, size_t expect)
{
	struct eom_result res = { .print = false };
	char *sent = pattern(send), *want = pattern(expect);
	int ok;

	connect_unix(path);
	message(open_session(), sent, send, &res);
	send_cmd('Q', NULL, 0);
	printf("mtaclient: sent a %zu-byte body; got a %zu-byte replacement "
	    "in %d chunk(s), %d run(s)\n", send, res.body_len,
	    res.body_chunks, res.body_runs);
	ok = res.body_len == expect &&
	    (expect == 0 || memcmp(res.body, want, expect) == 0) &&
	    res.body_runs == 1 && res.body_chunks == (expect == 0 ? 1 :
	    (int)((expect + CHUNK - 1) / CHUNK));
	if (!ok)
		fprintf(stderr, "mtaclient: the replacement body is not the "
		    "expected %zu bytes in one run of %zu chunks\n", expect,
		    expect == 0 ? 1 : (expect + CHUNK - 1) / CHUNK);
	free(res.body);
	free(sent);
	free(want);
	return ok ? 0 : 1;
}

/* One SMTP session of run_quitnc, connecting as host sessionN. */
static bool
quitnc_session(unsigned long steps, int n, bool reject)
{
	static const char mail[] = "<a@example.test>";
	static const char bad[] = "<reject@example.test>";
	struct eom_result res = { .print = false };
	char conn[128], host[64];
	int len;

	snprintf(host, sizeof host, "session%d.example.test", n);
	len = snprintf(conn, sizeof conn, "%s%c4%c%c192.0.2.%d", host, 0,
	    0x30, 0x39, n);
	if (!(steps & NOCONNECT))
		event('C', conn, (size_t)len + 1);
	if (!(steps & NOHELO))
		event('H', host, strlen(host) + 1);
	if (!(steps & NOMAIL))
		expect('M', mail, sizeof mail, 'c');
	if (reject)
		expect('R', bad, sizeof bad, 'r');
	/* The second recipient and the rest of the message. */
	message(steps | NOMAIL, "hello\r\n", 7, &res);
	free(res.body);
	printf("mtaclient: session %d: %s%d header change(s)\n", n,
	    reject ? "recipient rejected, " : "", res.headers);
	return res.headers > 0;
}

static int
run_quitnc(const char *path, int sessions, const char *end, bool reject)
{
	unsigned long steps;
	bool ok = true;

	connect_unix(path);
	steps = negotiate();
	for (int i = 1; i <= sessions; i++) {
		if (i > 1)
			send_cmd('K', NULL, 0);
		ok = quitnc_session(steps, i, reject) && ok;
	}
	if (strcmp(end, "eof") == 0)
		send_cmd('K', NULL, 0);
	else
		send_cmd('Q', NULL, 0);
	close(sock);
	return ok ? 0 : 1;
}

static int
run_stop(const char *path, pid_t pid)
{
	static const char mail[] = "<a@example.test>";
	static const char rcpt[] = "<b@example.test>";
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct eom_result res = { .print = false };
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	unsigned long steps;
	int other, first;

	connect_unix(path);
	steps = open_session();
	expect('M', mail, sizeof mail, 'c');
	if (kill(pid, SIGTERM) < 0)
		die("kill");
	nanosleep(&pause, NULL);
	strcpy(sun.sun_path, path);
	if ((other = socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
		die("socket");
	if (connect(other, (struct sockaddr *)&sun, sizeof sun) == 0) {
		fprintf(stderr, "mtaclient: a new connection was accepted "
		    "after SIGTERM\n");
		return 1;
	}
	printf("mtaclient: after SIGTERM a new connection is refused (%s)\n",
	    strerror(errno));
	close(other);
	expect('R', rcpt, sizeof rcpt, 'c');
	/* The rest of this message, then one more on the same session. */
	steps |= NOMAIL | NORCPT;
	message(steps, "hello\r\n", 7, &res);
	first = res.headers;
	free(res.body);
	message(steps & ~(NOMAIL | NORCPT), "hello\r\n", 7, &res);
	free(res.body);
	send_cmd('Q', NULL, 0);
	printf("mtaclient: both messages answered after SIGTERM, %d and %d "
	    "header change(s)\n", first, res.headers);
	return first > 0 && res.headers > 0 ? 0 : 1;
}

static int
run_hold(const char *path, int seconds)
{
	static const char mail[] = "<a@example.test>";
	struct timeval tv = { seconds, 0 };
	double start;
	char c;

	connect_unix(path);
	open_session();
	expect('M', mail, sizeof mail, 'c');
	printf("mtaclient: holding\n");
	fflush(stdout);
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	start = now_ms();
	if (read(sock, &c, 1) == 0) {
		printf("mtaclient: connection closed after %.0f ms\n",
		    now_ms() - start);
		return 0;
	}
	printf("mtaclient: connection still open after %d s\n", seconds);
	return 1;
}

static int
run_pause(const char *path)
{
	static const char mail[] = "<a@example.test>";
	struct eom_result res = { .print = true };
	unsigned long steps;
	char line[64];

	connect_unix(path);
	steps = open_session();
	if (!(steps & NOMAIL))
		expect('M', mail, sizeof mail, 'c');
	printf("paused\n");
	fflush(stdout);
	if (fgets(line, sizeof line, stdin) == NULL)
		return 1;
	message(steps | NOMAIL, "hello\r\n", 7, &res);
	free(res.body);
	send_cmd('Q', NULL, 0);
	return 0;
}

static int
run_observe(const char *path)
{
	struct eom_result res = { .print = false };

	connect_unix(path);
	message(open_session(), "hello\r\n", 7, &res);
	free(res.body);
	send_cmd('Q', NULL, 0);
	printf("unanswered %d eom %c headers %d\n", sent_unanswered,
	    res.final, res.headers);
	return 0;
}

/* ---- eml: message files sent as Postfix sends them -------------------- */

#define EML_MAX 64
#define NOUNKNOWN 0x100UL
#define HDR_LEADSPC 0x100000UL

struct eml_opts {
	const char *addr, *name, *helo, *from;
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

/* Postfix's default macro lists, per macro stage (mail_params.h). */
static const char *const postfix_lists[7] = {
	"j {daemon_name} {daemon_addr} v _",
	"{tls_version} {cipher} {cipher_bits} {cert_subject} {cert_issuer}",
	"i {auth_type} {auth_authen} {auth_author} {mail_addr} {mail_host} "
	    "{mail_mailer}",
	"i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	"i", "i", "i",
};
static const char macro_cmds[7] = { 'C', 'H', 'M', 'R', 'T', 'E', 'N' };
static char *symlists[7];       /* negotiated, or NULL */
static unsigned long eml_steps;

static unsigned long
negotiate_lists(void)
{
	uint32_t out[3] = { htonl(6), htonl(V6_ACTIONS), htonl(V6_STEPS) };
	static char buf[70000];
	uint32_t in[3];
	size_t n, off = 12;

	send_cmd('O', out, sizeof out);
	if (read_reply(buf, sizeof buf, &n) != 'O' || n < 12) {
		errno = 0;
		die("negotiation");
	}
	memcpy(in, buf, sizeof in);
	while (off + 4 < n) {
		uint32_t st;
		size_t len;

		memcpy(&st, buf + off, 4);
		st = ntohl(st);
		off += 4;
		len = strnlen(buf + off, n - off);
		if (st < 7 && (symlists[st] = strndup(buf + off, len)) == NULL)
			die("strndup");
		off += len + 1;
	}
	unanswered = ntohl(in[2]) & (NR_HDR | 0xFF000UL);
	return ntohl(in[2]);
}

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

static bool
same_macro(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

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

/* The macros of stage st that -D gave a value, if any. */
static void
send_macros(const struct eml_opts *o, int st)
{
	const char *p = symlists[st] ? symlists[st] : postfix_lists[st];
	char buf[8192];
	size_t off = 1;

	buf[0] = macro_cmds[st];
	while (*(p += strspn(p, " ")) != '\0') {
		size_t n = strcspn(p, " ");

		for (int i = 0; i < o->nmacros; i++)
			if (same_macro(p, n, o->mnames[i]) && off + n +
			    strlen(o->mvalues[i]) + 2 < sizeof buf) {
				memcpy(buf + off, p, n);
				buf[off + n] = '\0';
				off += n + 1;
				strcpy(buf + off, o->mvalues[i]);
				off += strlen(o->mvalues[i]) + 1;
				break;
			}
		p += n;
	}
	if (off > 1)
		send_cmd('D', buf, off);
}

/* "answer STAGE ..." for what r was, with the reply's text. */
static char
print_answer(const char *stage, char r, const char *text, size_t len)
{
	static const char *const names[] = { ['c'] = "continue",
	    ['a'] = "accept", ['r'] = "reject", ['t'] = "tempfail",
	    ['d'] = "discard", ['s'] = "skip", ['n'] = "noreply" };
	char plain[70000] = "";
	size_t k = 0;

	if (r == 'y') {
		/* Postfix makes every "%%" a "%" again. */
		for (size_t i = 0; i < len && text[i] != '\0'; i++) {
			if (text[i] == '%' && i + 1 < len && text[i + 1] == '%')
				i++;
			plain[k++] = text[i];
		}
		r = plain[0] == '4' ? 't' : 'r';
	}
	if ((unsigned char)r >= sizeof names / sizeof names[0] ||
	    names[(unsigned char)r] == NULL) {
		fprintf(stderr, "mtaclient: %s answered %c\n", stage, r);
		exit(1);
	}
	printf("answer %s %s", stage, names[(unsigned char)r]);
	if (k > 0) {
		putchar(' ');
		put_esc(plain, k, true);
	}
	putchar('\n');
	return r;
}

/* Send an event; its answer (c a r t d s, or n when none is sent). */
static char
eml_event(const char *stage, char cmd, const void *data, size_t len)
{
	char buf[70000], r;
	size_t n;

	send_cmd(cmd, data, len);
	if (unanswered & nr_bit(cmd))
		return print_answer(stage, 'n', NULL, 0);
	r = read_reply(buf, sizeof buf, &n);
	return print_answer(stage, r, buf, n);
}

/* NUL-separated strings: "<a@b> ARG ..." split at blanks. */
static size_t
argv_data(const char *line, char *buf, size_t size)
{
	size_t off = 0;

	while (*(line += strspn(line, " ")) != '\0' && off < size - 1) {
		size_t n = strcspn(line, " ");

		if (off + n + 1 >= size)
			break;
		memcpy(buf + off, line, n);
		buf[off + n] = '\0';
		off += n + 1;
		line += n;
	}
	return off;
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

/* Any other change: its NUL-separated fields (a header index first for
 * insert and change). */
static void
print_change(char r, const char *data, size_t n)
{
	const char *a = data, *b;
	uint32_t idx = 0;

	if (r == 'i' || r == 'm') {
		memcpy(&idx, data, 4);
		idx = ntohl(idx);
		a = data + 4;
	}
	b = a + strlen(a) + 1;
	switch (r) {
	case 'h':
		printf("change add_header %s ", a);
		put_esc(b, strlen(b), true);
		break;
	case 'i':
		printf("change insert_header %u %s ", (unsigned)idx, a);
		put_esc(b, strlen(b), true);
		break;
	case 'm':
		if (*b == '\0') {
			printf("change delete_header %s %u", a, (unsigned)idx);
			break;
		}
		printf("change change_header %s %u ", a, (unsigned)idx);
		put_esc(b, strlen(b), true);
		break;
	case 'q':
		fputs("change quarantine ", stdout);
		put_esc(a, strlen(a), true);
		break;
	default:
		printf("change %s ", r == '-' ? "delete_rcpt" : r == 'e' ?
		    "change_from" : "add_rcpt");
		put_esc(a, strlen(a), false);
		if ((r == '2' || r == 'e') && (size_t)(b - data) < n &&
		    *b != '\0') {
			putchar(' ');
			put_esc(b, strlen(b), false);
		}
		break;
	}
	putchar('\n');
}

/* End of message: every change, then the verdict. */
static char
eml_eom(void)
{
	static char buf[70000], body[1 << 20];
	size_t n, body_len = 0;
	bool in_body = false;
	char r;

	send_cmd('E', NULL, 0);
	while ((r = read_reply(buf, sizeof buf, &n)) != 'c' && r != 'a' &&
	    r != 't' && r != 'r' && r != 'y' && r != 'd') {
		if (r == 'p')
			continue;
		if (r != 'b' && in_body) {
			print_body_change(body, body_len);
			in_body = false;
		}
		if (r == 'b') {
			if (body_len + n > sizeof body) {
				errno = 0;
				die("replacement body over 1 MB");
			}
			memcpy(body + body_len, buf, n);
			body_len += n;
			in_body = true;
			continue;
		}
		print_change(r, buf, n);
	}
	if (in_body)
		print_body_change(body, body_len);
	return print_answer("eom", r, buf, n);
}

static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t cap = 0, n;

	*len = 0;
	if (f == NULL)
		die(path);
	do {
		if (*len + 65536 > cap &&
		    (data = realloc(data, cap = *len + 65536 * 4)) == NULL)
			die("realloc");
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
		die("malloc");
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
				die("realloc");
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
	return r == 'a' || r == 'r' || r == 't' || r == 'd';
}

/* One message from MAIL to its end. */
static void
eml_message(const struct eml_opts *o, const char *path)
{
	static struct eml_msg m;
	char buf[70000];
	bool leadspc = (eml_steps & HDR_LEADSPC) != 0;
	int taken = 0;
	char r;

	eml_parse(path, &m);
	send_macros(o, 2);
	if (!(eml_steps & NOMAIL) && ends(eml_event("envfrom", 'M', buf,
	    argv_data(o->from, buf, sizeof buf))))
		goto done;
	for (int i = 0; i < o->nrcpts; i++) {
		send_macros(o, 3);
		if (eml_steps & NORCPT) {
			taken++;
			continue;
		}
		r = eml_event("envrcpt", 'R', buf, argv_data(o->rcpts[i], buf,
		    sizeof buf));
		if (r == 'r' || r == 't')
			continue;
		if (ends(r))
			goto done;
		taken++;
	}
	if (taken == 0)
		goto done;
	send_macros(o, 4);
	if (!(eml_steps & NODATA) && ends(eml_event("data", 'T', NULL, 0)))
		goto done;
	for (int i = 0; i < m.nheaders && !(eml_steps & NOHDRS); i++) {
		const char *v = m.headers[i].value;
		size_t n = strlen(m.headers[i].name);

		if (!leadspc && v[0] == ' ')
			v++;
		memcpy(buf, m.headers[i].name, n + 1);
		memcpy(buf + n + 1, v, strlen(v) + 1);
		if (ends(eml_event("header", 'L', buf, n + strlen(v) + 2)))
			goto done;
	}
	send_macros(o, 6);
	if (!(eml_steps & NOEOH) && ends(eml_event("eoh", 'N', NULL, 0)))
		goto done;
	for (size_t off = 0; !(eml_steps & NOBODY) && off < m.body_len;
	    off += CHUNK) {
		r = eml_event("body", 'B', m.body + off, m.body_len - off <
		    CHUNK ? m.body_len - off : CHUNK);
		if (r == 's')
			break;
		if (ends(r))
			goto done;
	}
	send_macros(o, 5);
	eml_eom();
done:
	send_cmd('A', NULL, 0);
	eml_free(&m);
}

/* Connect and HELO; false if the connection was decided there. */
static bool
eml_connect(const struct eml_opts *o)
{
	char conn[512], host[256];
	size_t len;

	snprintf(host, sizeof host, o->name ? "%s" : "[%s]",
	    o->name ? o->name : o->addr);
	len = (size_t)snprintf(conn, sizeof conn, "%s%c4%c%c%s", host, 0,
	    0xd4, 0x31, o->addr) + 1;
	send_macros(o, 0);
	if (!(eml_steps & NOCONNECT) && ends(eml_event("connect", 'C', conn,
	    len)))
		return false;
	send_macros(o, 1);
	return (eml_steps & NOHELO) || !ends(eml_event("helo", 'H', o->helo,
	    strlen(o->helo) + 1));
}

static int
run_eml(int argc, char **argv)
{
	struct eml_opts o = { .addr = "192.0.2.1" };
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
	if (o.helo == NULL)
		o.helo = o.name ? o.name : "client.example";
	eml_steps = negotiate_lists();
	if (eml_connect(&o))
		for (int i = optind; i < argc; i++)
			eml_message(&o, argv[i]);
	send_cmd('Q', NULL, 0);
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
	if (argc >= 4 && strcmp(argv[1], "eml") == 0) {
		connect_unix(argv[2]);
		return run_eml(argc - 2, argv + 2);
	}
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
	    "             -r RCPT... [-D NAME=VALUE]... FILE...\n");
	return 2;
}

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
	fprintf(stderr, "usage: mtaclient nodelay HOST PORT MESSAGES MAX_MS\n"
	    "       mtaclient mods SOCKETPATH\n"
	    "       mtaclient bigbody SOCKETPATH SEND_BYTES EXPECT_BYTES\n"
	    "       mtaclient quitnc SOCKETPATH SESSIONS quit|eof "
	    "[noreject]\n"
	    "       mtaclient stop SOCKETPATH PID\n"
	    "       mtaclient hold SOCKETPATH SECONDS\n"
	    "       mtaclient observe SOCKETPATH\n"
	    "       mtaclient pause SOCKETPATH\n");
	return 2;
}

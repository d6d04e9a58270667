/*
 * nodelay_client - time end-of-message answers over TCP.
 *
 * A minimal MTA side of the milter protocol (as Postfix speaks it): it
 * negotiates version 6 with every action and step offered, then sends
 * messages on one connection, skipping the events the milter asked not to
 * get, and measures each end-of-message round trip.  An answer of several
 * packets (a modification, then the verdict) stalls ~40 ms on Nagle's
 * algorithm unless the milter's socket has TCP_NODELAY.
 *
 * usage: nodelay_client HOST PORT MESSAGES MAX_MS
 * Exits 0 if every message got at least one header modification and its
 * slowest end of message took less than MAX_MS milliseconds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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

static int sock;

static void
die(const char *what)
{
	fprintf(stderr, "nodelay_client: %s: %s\n", what,
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

/* Send an event and expect "continue". */
static void
event(char cmd, const void *data, size_t len)
{
	char buf[70000], r;
	size_t n;

	send_cmd(cmd, data, len);
	r = read_reply(buf, sizeof buf, &n);
	if (r != 'c') {
		fprintf(stderr, "nodelay_client: event %c answered %c\n",
		    cmd, r);
		exit(1);
	}
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
	return ntohl(in[2]);
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One message; returns the end-of-message round trip in ms. */
static double
message(unsigned long steps, int *headers_added)
{
	static const char mail[] = "<a@example.test>";
	static const char rcpt[] = "<b@example.test>";
	static const char hdr[] = "Subject\0test";
	static const char body[] = "hello\r\n";
	char buf[70000], r;
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
	if (!(steps & NOBODY))
		event('B', body, sizeof body - 1);
	*headers_added = 0;
	start = now_ms();
	send_cmd('E', NULL, 0);
	while ((r = read_reply(buf, sizeof buf, &n)) == 'h' || r == 'i' ||
	    r == 'p')
		if (r != 'p')
			(*headers_added)++;
	if (r != 'c' && r != 'a') {
		fprintf(stderr, "nodelay_client: end of message answered %c\n",
		    r);
		exit(1);
	}
	return now_ms() - start;
}

int
main(int argc, char **argv)
{
	static const char conn[] = "client.example.test\0" "4\x30\x39"
	    "192.0.2.7";
	struct sockaddr_in sin = { .sin_family = AF_INET };
	unsigned long steps;
	int messages, added, one = 1;
	double max_ms, worst = 0;

	if (argc != 5) {
		fprintf(stderr, "usage: nodelay_client HOST PORT MESSAGES "
		    "MAX_MS\n");
		return 2;
	}
	messages = atoi(argv[3]);
	max_ms = atof(argv[4]);
	sin.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1) {
		fprintf(stderr, "nodelay_client: bad address %s\n", argv[1]);
		return 2;
	}
	if ((sock = socket(AF_INET, SOCK_STREAM, 0)) < 0)
		die("socket");
	/* Our side must not stall either: only the milter's is measured. */
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (connect(sock, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("connect");
	steps = negotiate();
	if (!(steps & NOCONNECT))
		event('C', conn, sizeof conn);
	if (!(steps & NOHELO))
		event('H', "client.example.test", 20);
	for (int i = 0; i < messages; i++) {
		double ms = message(steps, &added);

		if (added == 0) {
			fprintf(stderr, "nodelay_client: message %d: no "
			    "header added\n", i + 1);
			return 1;
		}
		if (ms > worst)
			worst = ms;
	}
	send_cmd('Q', NULL, 0);
	printf("nodelay_client: %d messages, slowest end of message %.2f ms "
	    "(limit %.0f ms)\n", messages, worst, max_ms);
	return worst < max_ms ? 0 : 1;
}

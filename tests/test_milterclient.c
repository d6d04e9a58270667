/*
 * test_milterclient - unit tests of milterclient.c, the MTA side of the
 * milter protocol, against a scripted milter: the other end of a
 * socketpair, to which each test writes the milter's packets byte for
 * byte and from which it reads what the library sent.
 *
 * Packets are small enough to sit in the socket's buffer, so the script
 * needs no thread: it writes the answers before the library reads them,
 * and reads the commands after the library flushed them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "unit.h"

#include "milterclient.h"

static int peer = -1;            /* the scripted milter's end */
static struct mc_conn *conn;     /* the library's end */

static void
setup(void)
{
	int sv[2];

	CU_ASSERT_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	peer = sv[1];
	conn = mc_wrap(sv[0], 1000);
	CU_ASSERT_FATAL(conn != NULL);
}

static void
teardown(void)
{
	mc_close(conn);
	conn = NULL;
	if (peer >= 0)
		close(peer);
	peer = -1;
}

/* The milter sends one packet: letter and len bytes of data. */
static void
peer_send(char code, const void *data, size_t len)
{
	unsigned char buf[4096];
	uint32_t n = htonl((uint32_t)len + 1);

	CU_ASSERT_FATAL(len + 5 <= sizeof buf);
	memcpy(buf, &n, 4);
	buf[4] = (unsigned char)code;
	memcpy(buf + 5, data, len);
	CU_ASSERT_FATAL(write(peer, buf, len + 5) == (ssize_t)(len + 5));
}

/* The raw bytes the library sent so far (waits up to 1 s for the first). */
static size_t
peer_read(unsigned char *buf, size_t size)
{
	struct pollfd p = { .fd = peer, .events = POLLIN };
	ssize_t n;

	if (poll(&p, 1, 1000) != 1)
		return 0;
	n = read(peer, buf, size);
	return n > 0 ? (size_t)n : 0;
}

/* Is what the library sent exactly want (len bytes)? */
static bool
sent_exactly(const void *want, size_t len)
{
	unsigned char buf[4096];
	size_t n = peer_read(buf, sizeof buf);

	if (n != len || memcmp(buf, want, len) != 0) {
		fprintf(stderr, "\n  sent %zu bytes:", n);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, " %02x", buf[i]);
		fprintf(stderr, "\n  want %zu bytes\n", len);
		return false;
	}
	return true;
}

/* The milter's answer to the options: version 6, actions, steps, and
 * the macro lists in extra (extra_len bytes). */
static void
peer_optneg(uint32_t actions, uint32_t steps, const void *extra,
	    size_t extra_len)
{
	unsigned char buf[1024];
	uint32_t v[3] = { htonl(6), htonl(actions), htonl(steps) };

	memcpy(buf, v, 12);
	memcpy(buf + 12, extra, extra_len);
	peer_send(MC_R_OPTNEG, buf, 12 + extra_len);
}

static bool
error_has(const char *part)
{
	bool ok = strstr(mc_error(conn), part) != NULL;

	if (!ok)
		fprintf(stderr, "\n  error \"%s\" lacks \"%s\"\n",
		    mc_error(conn), part);
	return ok;
}

/* ---- negotiation ---------------------------------------------------- */

static void
test_negotiate(void)
{
	/* Macro lists for connect and end of message. */
	static const unsigned char lists[] = "\0\0\0\0j {client_addr}\0"
	    "\0\0\0\5i\0";
	static const unsigned char offer[] = "\0\0\0\015O"
	    "\0\0\0\6\0\0\1\xff\0\x1f\xff\xff";

	setup();
	peer_optneg(MC_ACT_ADDHDRS | MC_ACT_CHGBODY,
	    MC_P_NOHELO | MC_P_NR_HDR, lists, sizeof lists - 1);
	CU_ASSERT(mc_negotiate(conn, 6, MC_ACT_ALL, MC_P_ALL) == 0);
	CU_ASSERT(sent_exactly(offer, sizeof offer - 1));
	CU_ASSERT(mc_version(conn) == 6);
	CU_ASSERT(mc_actions(conn) == (MC_ACT_ADDHDRS | MC_ACT_CHGBODY));
	CU_ASSERT(mc_steps(conn) == (MC_P_NOHELO | MC_P_NR_HDR));
	CU_ASSERT_STRING_EQUAL(mc_macro_list(conn, MC_M_CONNECT),
	    "j {client_addr}");
	CU_ASSERT_STRING_EQUAL(mc_macro_list(conn, MC_M_EOM), "i");
	CU_ASSERT(mc_macro_list(conn, MC_M_HELO) == NULL);
	CU_ASSERT(mc_macro_list(conn, 7) == NULL);
	CU_ASSERT(!mc_wants(conn, MC_EV_HELO));
	CU_ASSERT(mc_wants(conn, MC_EV_CONNECT));
	CU_ASSERT(mc_wants(conn, MC_EV_EOM));
	CU_ASSERT(!mc_answers_event(conn, MC_EV_HEADER));
	CU_ASSERT(mc_answers_event(conn, MC_EV_BODY));
	CU_ASSERT(mc_answers_event(conn, MC_EV_EOM));
	teardown();
}

static void
test_negotiate_refused(void)
{
	uint32_t v[3];

	/* More actions than offered. */
	setup();
	peer_optneg(MC_ACT_ADDHDRS | MC_ACT_QUARANTINE, 0, "", 0);
	CU_ASSERT(mc_negotiate(conn, 6, MC_ACT_ADDHDRS, MC_P_ALL) < 0);
	CU_ASSERT(error_has("more than offered"));
	teardown();

	/* A version above the offer. */
	setup();
	v[0] = htonl(7), v[1] = 0, v[2] = 0;
	peer_send(MC_R_OPTNEG, v, 12);
	CU_ASSERT(mc_negotiate(conn, 6, MC_ACT_ALL, MC_P_ALL) < 0);
	CU_ASSERT(error_has("version 7"));
	teardown();

	/* Too short, and a list without its NUL, and a stage out of range. */
	setup();
	peer_send(MC_R_OPTNEG, v, 8);
	CU_ASSERT(mc_negotiate(conn, 6, MC_ACT_ALL, MC_P_ALL) < 0);
	teardown();
	setup();
	peer_optneg(0, 0, "\0\0\0\1{x}", 7);
	CU_ASSERT(mc_negotiate(conn, 6, MC_ACT_ALL, MC_P_ALL) < 0);
	CU_ASSERT(error_has("NUL"));
	teardown();
	setup();
	peer_optneg(0, 0, "\0\0\0\x09{x}", 8);
	CU_ASSERT(mc_negotiate(conn, 6, MC_ACT_ALL, MC_P_ALL) < 0);
	CU_ASSERT(error_has("stage 9"));
	teardown();

	/* Another answer than the options. */
	setup();
	peer_send(MC_R_CONTINUE, "", 0);
	CU_ASSERT(mc_negotiate(conn, 6, MC_ACT_ALL, MC_P_ALL) < 0);
	teardown();
}

/* ---- commands -------------------------------------------------------- */

static const char *
macro_value(void *arg, const char *name)
{
	(void)arg;
	if (strcmp(name, "j") == 0)
		return "mx.test";
	if (strcmp(name, "{client_addr}") == 0 ||
	    strcmp(name, "client_addr") == 0)
		return "192.0.2.1";
	return NULL;  /* "v", "{nothing}" */
}

static void
test_connect_and_macros(void)
{
	/* Macros and connect in one write: D C j mx.test {client_addr}
	 * 192.0.2.1, then C host 4 port 25 192.0.2.1. */
	static const unsigned char want[] =
	    "\0\0\0\x24" "DCj\0mx.test\0{client_addr}\0" "192.0.2.1\0"
	    "\0\0\0\x18" "Chost.test\0" "4\0\x19" "192.0.2.1\0";
	struct sockaddr_in sin = { .sin_family = AF_INET,
		.sin_port = htons(25) };

	setup();
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	CU_ASSERT(mc_put_macros(conn, MC_CMD_CONNECT,
	    "j v, client_addr {nothing}", macro_value, NULL) == 0);
	CU_ASSERT(mc_put_connect(conn, "host.test",
	    (struct sockaddr *)&sin) == 0);
	CU_ASSERT(mc_flush(conn) == 0);
	CU_ASSERT(sent_exactly(want, sizeof want - 1));

	/* No value for any name: nothing at all. */
	CU_ASSERT(mc_put_macros(conn, MC_CMD_HELO, "v {nothing}",
	    macro_value, NULL) == 0);
	CU_ASSERT(mc_flush(conn) == 0);
	CU_ASSERT(peer_read((unsigned char[8]){ 0 }, 8) == 0);
	teardown();
}

static void
test_connect_families(void)
{
	static const unsigned char v6[] = "\0\0\0\x12" "Ch\0" "6\1\xbb"
	    "2001:db8::1\0";
	static const unsigned char un[] = "\0\0\0\x12" "Ch\0" "L\0\0"
	    "/run/x.sock\0";
	static const unsigned char unknown[] = "\0\0\0\4" "Ch\0U";
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6,
		.sin6_port = htons(443) };
	struct sockaddr_un sun = { .sun_family = AF_UNIX,
		.sun_path = "/run/x.sock" };

	setup();
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	CU_ASSERT(mc_put_connect(conn, "h", (struct sockaddr *)&sin6) == 0);
	CU_ASSERT(mc_flush(conn) == 0);
	CU_ASSERT(sent_exactly(v6, sizeof v6 - 1));
	CU_ASSERT(mc_put_connect(conn, "h", (struct sockaddr *)&sun) == 0);
	CU_ASSERT(mc_flush(conn) == 0);
	CU_ASSERT(sent_exactly(un, sizeof un - 1));
	CU_ASSERT(mc_put_connect(conn, "h", NULL) == 0);
	CU_ASSERT(mc_flush(conn) == 0);
	CU_ASSERT(sent_exactly(unknown, sizeof unknown - 1));
	teardown();
}

static void
test_commands(void)
{
	static const unsigned char want[] =
	    "\0\0\0\x0a" "Hclient.x\0"
	    "\0\0\0\x22" "M<a@b.test>\0SIZE=10\0BODY=8BITMIME\0"
	    "\0\0\0\x09" "R<c@d.x>\0"
	    "\0\0\0\1T"
	    "\0\0\0\x11" "LSubject\0 hi\n\tyo\0"
	    "\0\0\0\1N"
	    "\0\0\0\5" "Babc\0"
	    "\0\0\0\x06" "UHELP\0"
	    "\0\0\0\1E"
	    "\0\0\0\1A"
	    "\0\0\0\1Q";
	const char *mail[] = { "<a@b.test>", "SIZE=10", "BODY=8BITMIME",
		NULL };
	const char *rcpt[] = { "<c@d.x>", NULL };

	setup();
	CU_ASSERT(mc_put_helo(conn, "client.x") == 0);
	CU_ASSERT(mc_put_argv(conn, MC_CMD_MAIL, mail) == 0);
	CU_ASSERT(mc_put_argv(conn, MC_CMD_RCPT, rcpt) == 0);
	CU_ASSERT(mc_put(conn, MC_CMD_DATA, NULL, 0) == 0);
	CU_ASSERT(mc_put_header(conn, "Subject", " hi\n\tyo") == 0);
	CU_ASSERT(mc_put(conn, MC_CMD_EOH, NULL, 0) == 0);
	CU_ASSERT(mc_put_body(conn, "abc\0", 4) == 0);
	CU_ASSERT(mc_put_unknown(conn, "HELP") == 0);
	CU_ASSERT(mc_put(conn, MC_CMD_EOM, NULL, 0) == 0);
	CU_ASSERT(mc_put(conn, MC_CMD_ABORT, NULL, 0) == 0);
	CU_ASSERT(mc_put(conn, MC_CMD_QUIT, NULL, 0) == 0);
	/* Nothing goes out before the flush. */
	CU_ASSERT(peer_read((unsigned char[8]){ 0 }, 8) == 0);
	CU_ASSERT(mc_flush(conn) == 0);
	CU_ASSERT(sent_exactly(want, sizeof want - 1));
	teardown();
}

/* ---- replies ------------------------------------------------------------- */

/* Negotiate every action, then leave the answers to the test. */
static void
setup_negotiated(uint32_t actions)
{
	setup();
	peer_optneg(actions, 0, "", 0);
	CU_ASSERT_FATAL(mc_negotiate(conn, 6, MC_ACT_ALL, MC_P_ALL) == 0);
	peer_read((unsigned char[64]){ 0 }, 64);
}

static void
test_changes(void)
{
	struct mc_reply r;

	setup_negotiated(MC_ACT_ALL);
	peer_send(MC_R_ADDHEADER, "X-A\0v 1\0", 8);
	peer_send(MC_R_INSHEADER, "\0\0\0\2X-B\0\0", 9);
	peer_send(MC_R_CHGHEADER, "\0\0\0\1Subject\0\0", 13);
	peer_send(MC_R_REPLBODY, "new\r\n", 5);
	peer_send(MC_R_ADDRCPT, "<x@y>\0", 6);
	peer_send(MC_R_ADDRCPT_PAR, "<x@y>\0NOTIFY=NEVER\0", 19);
	peer_send(MC_R_ADDRCPT_PAR, "<z@y>\0", 6);
	peer_send(MC_R_DELRCPT, "<d@y>\0", 6);
	peer_send(MC_R_CHGFROM, "<f@y>\0SIZE=1\0", 13);
	peer_send(MC_R_QUARANTINE, "held\0", 5);
	peer_send(MC_R_PROGRESS, "", 0);
	peer_send(MC_R_ACCEPT, "", 0);

	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_ADDHEADER);
	CU_ASSERT_STRING_EQUAL(r.name, "X-A");
	CU_ASSERT_STRING_EQUAL(r.value, "v 1");
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_INSHEADER);
	CU_ASSERT(r.index == 2);
	CU_ASSERT_STRING_EQUAL(r.name, "X-B");
	CU_ASSERT_STRING_EQUAL(r.value, "");
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_CHGHEADER);
	CU_ASSERT(r.index == 1);
	CU_ASSERT_STRING_EQUAL(r.name, "Subject");
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_REPLBODY);
	CU_ASSERT(r.len == 5 && memcmp(r.data, "new\r\n", 5) == 0);
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_ADDRCPT);
	CU_ASSERT_STRING_EQUAL(r.text, "<x@y>");
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_ADDRCPT_PAR);
	CU_ASSERT_STRING_EQUAL(r.text, "<x@y>");
	CU_ASSERT(r.args != NULL && strcmp(r.args, "NOTIFY=NEVER") == 0);
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_ADDRCPT_PAR);
	CU_ASSERT(r.args == NULL);
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_DELRCPT);
	CU_ASSERT_STRING_EQUAL(r.text, "<d@y>");
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_CHGFROM);
	CU_ASSERT_STRING_EQUAL(r.text, "<f@y>");
	CU_ASSERT(r.args != NULL && strcmp(r.args, "SIZE=1") == 0);
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_QUARANTINE);
	CU_ASSERT_STRING_EQUAL(r.text, "held");
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_PROGRESS);
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_ACCEPT);
	CU_ASSERT(mc_is_final(r.code) && mc_answers(MC_EV_EOM, r.code));
	teardown();
}

/* One packet the library must refuse, with an error naming part. */
static void
refused(uint32_t actions, char code, const void *data, size_t len,
	const char *part)
{
	struct mc_reply r;

	setup_negotiated(actions);
	peer_send(code, data, len);
	CU_ASSERT(mc_read(conn, &r) < 0);
	CU_ASSERT(error_has(part));
	teardown();
}

static void
test_bad_replies(void)
{
	refused(MC_ACT_ADDHDRS, MC_R_CHGHEADER, "\0\0\0\1X\0\0", 7,
	    "action");
	refused(MC_ACT_ALL, MC_R_ADDHEADER, "X-A\0v", 5, "NUL");
	refused(MC_ACT_ALL, MC_R_ADDHEADER, "\0v\0", 3, "empty");
	refused(MC_ACT_ALL, MC_R_INSHEADER, "\0\0", 2, "index");
	refused(MC_ACT_ALL, MC_R_ADDRCPT, "<x@y>", 5, "NUL");
	refused(MC_ACT_ALL, MC_R_DELRCPT, "\0", 1, "empty");
	refused(MC_ACT_ALL, MC_R_QUARANTINE, "\0", 1, "empty reason");
	refused(MC_ACT_ALL, MC_R_REPLYCODE, "250 ok\0", 7, "4xx or 5xx");
	refused(MC_ACT_ALL, MC_R_REPLYCODE, "55 x\0", 5, "4xx or 5xx");
	refused(MC_ACT_ALL, MC_R_REPLYCODE, "550 x", 5, "4xx or 5xx");
	refused(MC_ACT_ALL, 'z', "", 0, "unknown reply 'z'");

	/* A length of 0, and one over the limit. */
	setup_negotiated(MC_ACT_ALL);
	CU_ASSERT(write(peer, "\0\0\0\0", 4) == 4);
	CU_ASSERT(mc_read(conn, &(struct mc_reply){ 0 }) < 0);
	CU_ASSERT(error_has("packet of 0 bytes"));
	teardown();
	setup_negotiated(MC_ACT_ALL);
	CU_ASSERT(write(peer, "\0\x20\0\1" "c", 5) == 5);
	CU_ASSERT(mc_read(conn, &(struct mc_reply){ 0 }) < 0);
	CU_ASSERT(error_has("packet of"));
	teardown();
}

static void
test_reply_codes(void)
{
	static const char multi[] = "550-5.7.1 first\r\n550 5.7.1 second";
	struct mc_reply r;

	setup_negotiated(0);
	peer_send(MC_R_REPLYCODE, "451 4.7.1 later\0", 16);
	peer_send(MC_R_REPLYCODE, multi, sizeof multi);
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_REPLYCODE);
	CU_ASSERT_STRING_EQUAL(r.text, "451 4.7.1 later");
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_REPLYCODE);
	CU_ASSERT_STRING_EQUAL(r.text, multi);
	teardown();
}

static void
test_read_answer(void)
{
	struct mc_reply r;
	unsigned progress = 0;

	setup_negotiated(MC_ACT_ALL);
	peer_send(MC_R_PROGRESS, "", 0);
	peer_send(MC_R_PROGRESS, "", 0);
	peer_send(MC_R_SKIP, "", 0);
	CU_ASSERT(mc_read_answer(conn, MC_EV_BODY, &r, &progress) == 0);
	CU_ASSERT(r.code == MC_R_SKIP && progress == 2);
	peer_send(MC_R_SKIP, "", 0);
	CU_ASSERT(mc_read_answer(conn, MC_EV_HEADER, &r, NULL) < 0);
	CU_ASSERT(error_has("reply 's' to header"));
	teardown();

	setup_negotiated(MC_ACT_ALL);
	peer_send(MC_R_DISCARD, "", 0);
	CU_ASSERT(mc_read_answer(conn, MC_EV_CONNECT, &r, NULL) < 0);
	teardown();

	setup_negotiated(MC_ACT_ALL);
	peer_send(MC_R_ADDHEADER, "X\0y\0", 4);
	CU_ASSERT(mc_read_answer(conn, MC_EV_RCPT, &r, NULL) < 0);
	teardown();

	/* Every final answer but discard and skip answers connect. */
	CU_ASSERT(mc_answers(MC_EV_CONNECT, MC_R_TEMPFAIL));
	CU_ASSERT(mc_answers(MC_EV_HELO, MC_R_SHUTDOWN));
	CU_ASSERT(mc_answers(MC_EV_RCPT, MC_R_DISCARD));
	CU_ASSERT(!mc_answers(MC_EV_HELO, MC_R_DISCARD));
	CU_ASSERT(!mc_answers(MC_EV_EOM, MC_R_PROGRESS));
}

/* What arrived and was not read: in the socket, then in the library's
 * buffer only, where a poll of the socket does not see it. */
static void
test_pending(void)
{
	struct pollfd p;
	struct mc_reply r;

	setup_negotiated(MC_ACT_ALL);
	CU_ASSERT(!mc_pending(conn));
	peer_send(MC_R_CONTINUE, "", 0);
	peer_send(MC_R_ACCEPT, "", 0);
	CU_ASSERT(mc_pending(conn));
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_CONTINUE);
	p = (struct pollfd){ .fd = mc_fd(conn), .events = POLLIN };
	CU_ASSERT(poll(&p, 1, 0) == 0);
	CU_ASSERT(mc_pending(conn));
	CU_ASSERT(mc_read(conn, &r) == 0 && r.code == MC_R_ACCEPT);
	CU_ASSERT(!mc_pending(conn));
	/* Half a packet is something; a closed connection is not. */
	CU_ASSERT(write(peer, "\0\0", 2) == 2);
	CU_ASSERT(mc_pending(conn));
	teardown();
	setup();
	close(peer);
	peer = -1;
	CU_ASSERT(!mc_pending(conn));
	CU_ASSERT(mc_closed(conn));
	teardown();

	/* mc_closed: an open connection, with or without data, is not. */
	setup();
	CU_ASSERT(!mc_closed(conn));
	peer_send(MC_R_CONTINUE, "", 0);
	CU_ASSERT(!mc_closed(conn));
	teardown();
}

/* ---- failures ----------------------------------------------------------- */

static double
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1e3 +
	    (t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void
test_timeout_and_close(void)
{
	struct timespec t0;
	struct mc_reply r;
	double ms;

	/* A milter that does not answer: the read gives up on time. */
	setup();
	mc_set_timeout(conn, 150);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CU_ASSERT(mc_read(conn, &r) < 0);
	ms = ms_since(&t0);
	CU_ASSERT(ms >= 140 && ms < 1000);
	CU_ASSERT(error_has("timed out"));
	teardown();

	/* Half a packet, then nothing: the same. */
	setup();
	mc_set_timeout(conn, 100);
	CU_ASSERT(write(peer, "\0\0\0\5h", 5) == 5);
	CU_ASSERT(mc_read(conn, &r) < 0);
	CU_ASSERT(error_has("timed out"));
	teardown();

	/* A packet a byte every 40 ms: the timeout is the read's, not each
	 * piece's (which would take it whole after 360 ms). */
	setup();
	mc_set_timeout(conn, 150);
	{
		pid_t pid = fork();
		int status;

		CU_ASSERT_FATAL(pid >= 0);
		if (pid == 0) {
			static const char pkt[] = "\0\0\0\5hX\0y\0";

			for (size_t i = 0; i < sizeof pkt - 1; i++) {
				usleep(40000);
				if (write(peer, pkt + i, 1) != 1)
					_exit(1);
			}
			_exit(0);
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		CU_ASSERT(mc_read(conn, &r) < 0);
		ms = ms_since(&t0);
		CU_ASSERT(ms >= 140 && ms < 330);
		CU_ASSERT(error_has("timed out"));
		CU_ASSERT(waitpid(pid, &status, 0) == pid);
	}
	teardown();

	/* A milter that closes. */
	setup();
	close(peer);
	peer = -1;
	CU_ASSERT(mc_read(conn, &r) < 0);
	CU_ASSERT(error_has("closed the connection"));
	CU_ASSERT(mc_put(conn, MC_CMD_QUIT, NULL, 0) == 0);
	CU_ASSERT(mc_flush(conn) < 0);
	CU_ASSERT(error_has("write"));
	teardown();

	/* A milter that reads nothing: a long write gives up on time. */
	setup();
	mc_set_timeout(conn, 100);
	{
		static unsigned char chunk[65535];
		int i;

		for (i = 0; i < 100; i++)
			if (mc_put_body(conn, chunk, sizeof chunk) < 0)
				break;
		CU_ASSERT(i == 100);
		CU_ASSERT(mc_flush(conn) < 0);
		CU_ASSERT(error_has("timed out"));
	}
	teardown();
}

static void
test_open(void)
{
	char err[256], path[] = "/tmp/mctest.XXXXXX";
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof sin;
	struct mc_conn *c;
	char spec[128];
	int l;

	CU_ASSERT(mc_open("tcp:1@x", 100, err, sizeof err) == NULL);
	CU_ASSERT(strstr(err, "not inet:PORT@HOST") != NULL);
	CU_ASSERT(mc_open("inet:x@127.0.0.1", 100, err, sizeof err) == NULL);
	CU_ASSERT(strstr(err, "want inet:PORT@HOST") != NULL);
	CU_ASSERT(mc_open("inet:70000@127.0.0.1", 100, err, sizeof err) ==
	    NULL);
	CU_ASSERT(strstr(err, "out of range") != NULL);
	CU_ASSERT(mc_open("unix:", 100, err, sizeof err) == NULL);
	CU_ASSERT(mc_open("unix:/nonexistent/x.sock", 100, err, sizeof err) ==
	    NULL);
	CU_ASSERT(strstr(err, "cannot connect") != NULL);

	/* A unix socket that listens, by each of its spellings. */
	CU_ASSERT_FATAL(mkdtemp(path) != NULL);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/m.sock", path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(l, (struct sockaddr *)&sun, sizeof sun) == 0);
	CU_ASSERT_FATAL(listen(l, 4) == 0);
	snprintf(spec, sizeof spec, "unix:%s", sun.sun_path);
	CU_ASSERT((c = mc_open(spec, 500, err, sizeof err)) != NULL);
	mc_close(c);
	snprintf(spec, sizeof spec, "local:%s", sun.sun_path);
	CU_ASSERT((c = mc_open(spec, 500, err, sizeof err)) != NULL);
	mc_close(c);
	CU_ASSERT((c = mc_open(sun.sun_path, 500, err, sizeof err)) != NULL);
	mc_close(c);
	close(l);
	unlink(sun.sun_path);
	rmdir(path);

	/* TCP on loopback; then the same port closed: refused. */
	l = socket(AF_INET, SOCK_STREAM, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_FATAL(bind(l, (struct sockaddr *)&sin, sizeof sin) == 0);
	CU_ASSERT_FATAL(listen(l, 4) == 0);
	getsockname(l, (struct sockaddr *)&sin, &len);
	snprintf(spec, sizeof spec, "inet:%u@127.0.0.1",
	    (unsigned)ntohs(sin.sin_port));
	CU_ASSERT((c = mc_open(spec, 500, err, sizeof err)) != NULL);
	mc_close(c);
	close(l);
	CU_ASSERT(mc_open(spec, 500, err, sizeof err) == NULL);
	CU_ASSERT(strstr(err, "refused") != NULL);
	CU_ASSERT(mc_open("inet6:1@127.0.0.1", 100, err, sizeof err) == NULL);
}

/*
 * A unix listener whose backlog is full: a connect cannot even start
 * (non-blocking, it fails with EAGAIN and leaves the socket unconnected),
 * so mc_open waits for room, up to its timeout.
 */
static void
test_open_backlog(void)
{
	char err[256], path[] = "/tmp/mctest.XXXXXX", spec[128];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct mc_conn *held[8], *c;
	struct timespec t0;
	double ms;
	int l, n = 0, status;
	pid_t pid;

	CU_ASSERT_FATAL(mkdtemp(path) != NULL);
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s/m.sock", path);
	snprintf(spec, sizeof spec, "unix:%s", sun.sun_path);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	CU_ASSERT_FATAL(bind(l, (struct sockaddr *)&sun, sizeof sun) == 0);
	CU_ASSERT_FATAL(listen(l, 0) == 0);

	/* Fill the backlog: what opens is connected, the next times out. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n < 8 && (held[n] = mc_open(spec, 100, err, sizeof err)) !=
	    NULL)
		n++;
	ms = ms_since(&t0);
	CU_ASSERT(n >= 1 && n < 8);
	CU_ASSERT(strstr(err, "timed out") != NULL);
	CU_ASSERT(ms >= 90 && ms < 1000);
	for (int i = 0; i < n; i++) {
		CU_ASSERT(mc_put(held[i], MC_CMD_QUIT, NULL, 0) == 0);
		CU_ASSERT(mc_flush(held[i]) == 0);
	}

	/* Room made 100 ms later: the open waits for it and connects. */
	pid = fork();
	CU_ASSERT_FATAL(pid >= 0);
	if (pid == 0) {
		usleep(100000);
		_exit(accept(l, NULL, NULL) < 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	c = mc_open(spec, 5000, err, sizeof err);
	ms = ms_since(&t0);
	CU_ASSERT(c != NULL);
	CU_ASSERT(ms >= 50 && ms < 4000);
	if (c != NULL) {
		CU_ASSERT(mc_put(c, MC_CMD_QUIT, NULL, 0) == 0);
		CU_ASSERT(mc_flush(c) == 0);
	}
	mc_close(c);
	CU_ASSERT(waitpid(pid, &status, 0) == pid && status == 0);
	for (int i = 0; i < n; i++)
		mc_close(held[i]);
	close(l);
	unlink(sun.sun_path);
	rmdir(path);
}

static void
test_resolve(void)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	char err[256];

	CU_ASSERT(mc_resolve("unix:/run/m.sock", &ss, &len, err,
	    sizeof err) == 0);
	CU_ASSERT(ss.ss_family == AF_UNIX && len > 0);
	CU_ASSERT_STRING_EQUAL(((struct sockaddr_un *)&ss)->sun_path,
	    "/run/m.sock");
	CU_ASSERT(mc_resolve("inet:8891@127.0.0.1", &ss, &len, err,
	    sizeof err) == 0);
	CU_ASSERT(ss.ss_family == AF_INET &&
	    len == sizeof(struct sockaddr_in));
	CU_ASSERT(ntohs(((struct sockaddr_in *)&ss)->sin_port) == 8891);
	CU_ASSERT(mc_resolve("inet6:8891@::1", &ss, &len, err,
	    sizeof err) == 0);
	CU_ASSERT(ss.ss_family == AF_INET6);
	CU_ASSERT(mc_resolve("tcp:1@x", &ss, &len, err, sizeof err) < 0);
	CU_ASSERT(strstr(err, "tcp:1@x: not inet:PORT@HOST") != NULL);
	CU_ASSERT(mc_resolve("inet:1@", &ss, &len, err, sizeof err) < 0);
	CU_ASSERT(mc_resolve("inet6:1@127.0.0.1", &ss, &len, err,
	    sizeof err) < 0);
}

static void
test_tables(void)
{
	uint32_t a = 0;

	CU_ASSERT_STRING_EQUAL(mc_default_macros(MC_M_CONNECT),
	    "j {daemon_name} {daemon_addr} v _");
	CU_ASSERT_STRING_EQUAL(mc_default_macros(MC_M_NONE), "");
	CU_ASSERT(mc_event_info(MC_EV_EOM)->cmd == MC_CMD_EOM);
	CU_ASSERT(mc_event_info(MC_EV_HEADER)->no_reply == MC_P_NR_HDR);
	CU_ASSERT(mc_is_change(MC_R_CHGFROM, &a) && a == MC_ACT_CHGFROM);
	CU_ASSERT(!mc_is_change(MC_R_CONTINUE, NULL));
}

static const struct unit_test tests[] = {
	TEST(test_tables),
	TEST(test_negotiate),
	TEST(test_negotiate_refused),
	TEST(test_connect_and_macros),
	TEST(test_connect_families),
	TEST(test_commands),
	TEST(test_changes),
	TEST(test_bad_replies),
	TEST(test_reply_codes),
	TEST(test_read_answer),
	TEST(test_timeout_and_close),
	TEST(test_pending),
	TEST(test_open),
	TEST(test_open_backlog),
	TEST(test_resolve),
	TEST_END
};

int
main(void)
{
	static const struct unit_suite suites[] = {
		{ "milterclient", NULL, NULL, tests },
		{ NULL, NULL, NULL, NULL }
	};

	return unit_run(suites);
}

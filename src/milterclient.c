/*
 * milterclient - the MTA side of the milter protocol.  See milterclient.h.
 *
 * A packet is a 4-byte length in network order (the command letter and
 * the data), the letter, the data.  Writes go through a buffer the
 * mc_put* functions fill and mc_flush empties; reads through one that
 * holds at least one whole packet, whose fields struct mc_reply points
 * into.
 *
 * The socket is blocking, its SO_RCVTIMEO and SO_SNDTIMEO set to the
 * connection's timeout: a read or write whose data is there is one system
 * call, and one that must wait leaves the waiting to the kernel (a
 * milter answers an event after a round trip: a non-blocking read would
 * fail, poll, and read again).  An operation that needs a second call
 * (a packet in pieces, a write taken in part, a signal) cuts the
 * socket's timeout to what is left of the operation's (struct op).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "milterclient.h"

/* The longest packet taken from a milter: a body chunk of 64 KB, a reply
 * of 32 lines, a header of any length Postfix passes on. */
#define PACKET_MAX (1024 * 1024)
#define READ_CHUNK 65536

struct mc_conn {
	int fd;
	int timeout_ms;
	bool tcp;                   /* over TCP (else a unix socket) */
	uint32_t version, actions, steps;
	char *macros[MC_M_STAGES];  /* what the milter asked for */
	unsigned char *out;         /* queued commands */
	size_t outlen, outcap;
	unsigned char *in;          /* read, not yet taken */
	size_t inpos, inlen, incap;
	char err[256];
};

/* ---- tables --------------------------------------------------------------- */

static const char *const default_macros[MC_M_STAGES] = {
	[MC_M_CONNECT] = "j {daemon_name} {daemon_addr} v _",
	[MC_M_HELO] = "{tls_version} {cipher} {cipher_bits} {cert_subject} "
	    "{cert_issuer}",
	[MC_M_MAIL] = "i {auth_type} {auth_authen} {auth_author} "
	    "{mail_addr} {mail_host} {mail_mailer}",
	[MC_M_RCPT] = "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
	[MC_M_DATA] = "i",
	[MC_M_EOM] = "i",
	[MC_M_EOH] = "i",
};

static const struct mc_event_info events[MC_EV_COUNT] = {
	[MC_EV_CONNECT] = { "connect", MC_CMD_CONNECT, MC_M_CONNECT,
	    MC_P_NOCONNECT, MC_P_NR_CONN, true },
	[MC_EV_HELO] = { "helo", MC_CMD_HELO, MC_M_HELO, MC_P_NOHELO,
	    MC_P_NR_HELO, true },
	[MC_EV_MAIL] = { "mail", MC_CMD_MAIL, MC_M_MAIL, MC_P_NOMAIL,
	    MC_P_NR_MAIL, false },
	[MC_EV_RCPT] = { "rcpt", MC_CMD_RCPT, MC_M_RCPT, MC_P_NORCPT,
	    MC_P_NR_RCPT, false },
	[MC_EV_DATA] = { "data", MC_CMD_DATA, MC_M_DATA, MC_P_NODATA,
	    MC_P_NR_DATA, false },
	[MC_EV_UNKNOWN] = { "unknown", MC_CMD_UNKNOWN, MC_M_NONE,
	    MC_P_NOUNKNOWN, MC_P_NR_UNKN, false },
	[MC_EV_HEADER] = { "header", MC_CMD_HEADER, MC_M_NONE, MC_P_NOHDRS,
	    MC_P_NR_HDR, false },
	[MC_EV_EOH] = { "eoh", MC_CMD_EOH, MC_M_EOH, MC_P_NOEOH,
	    MC_P_NR_EOH, false },
	[MC_EV_BODY] = { "body", MC_CMD_BODY, MC_M_NONE, MC_P_NOBODY,
	    MC_P_NR_BODY, false },
	[MC_EV_EOM] = { "eom", MC_CMD_EOM, MC_M_EOM, 0, 0, false },
};

const char *
mc_default_macros(int macro_stage)
{
	if (macro_stage < 0 || macro_stage >= MC_M_STAGES)
		return "";
	return default_macros[macro_stage];
}

const struct mc_event_info *
mc_event_info(enum mc_event ev)
{
	return &events[ev];
}

bool
mc_is_change(char code, uint32_t *action)
{
	uint32_t a;

	switch (code) {
	case MC_R_ADDHEADER:
	case MC_R_INSHEADER:
		a = MC_ACT_ADDHDRS;
		break;
	case MC_R_CHGHEADER:
		a = MC_ACT_CHGHDRS;
		break;
	case MC_R_REPLBODY:
		a = MC_ACT_CHGBODY;
		break;
	case MC_R_ADDRCPT:
		a = MC_ACT_ADDRCPT;
		break;
	case MC_R_ADDRCPT_PAR:
		a = MC_ACT_ADDRCPT_PAR;
		break;
	case MC_R_DELRCPT:
		a = MC_ACT_DELRCPT;
		break;
	case MC_R_CHGFROM:
		a = MC_ACT_CHGFROM;
		break;
	case MC_R_QUARANTINE:
		a = MC_ACT_QUARANTINE;
		break;
	default:
		return false;
	}
	if (action != NULL)
		*action = a;
	return true;
}

bool
mc_is_final(char code)
{
	switch (code) {
	case MC_R_CONTINUE:
	case MC_R_ACCEPT:
	case MC_R_REJECT:
	case MC_R_TEMPFAIL:
	case MC_R_DISCARD:
	case MC_R_SKIP:
	case MC_R_REPLYCODE:
	case MC_R_SHUTDOWN:
	case MC_R_CONN_FAIL:
		return true;
	}
	return false;
}

bool
mc_answers(enum mc_event ev, char code)
{
	if (!mc_is_final(code))
		return false;
	if (code == MC_R_DISCARD)
		return !events[ev].connection;
	if (code == MC_R_SKIP)
		return ev == MC_EV_BODY;
	return true;
}

/* ---- errors --------------------------------------------------------------- */

static int
fail(struct mc_conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof c->err, fmt, ap);
	va_end(ap);
	return -1;
}

const char *
mc_error(const struct mc_conn *c)
{
	return c->err;
}

int
mc_fd(const struct mc_conn *c)
{
	return c->fd;
}

/* A blocking read (opt SO_RCVTIMEO) or write (SO_SNDTIMEO) of fd waits
 * at most ms from now on; 0 or less: no limit. */
static void
set_io_timeout(int fd, int opt, double ms)
{
	struct timeval tv = { 0, 0 };

	if (ms > 0) {
		tv.tv_sec = (time_t)(ms / 1e3);
		tv.tv_usec = (suseconds_t)((ms - (double)tv.tv_sec * 1e3) *
		    1e3) + 1;
	}
	setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

void
mc_set_timeout(struct mc_conn *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms;
	set_io_timeout(c->fd, SO_RCVTIMEO, timeout_ms);
	set_io_timeout(c->fd, SO_SNDTIMEO, timeout_ms);
}

/* ---- opening and closing ------------------------------------------------- */

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/*
 * Wait until fd is ready for events, at most until deadline (now_ms(); 0:
 * no limit).  0 when ready, -1 with errno (ETIMEDOUT when too late).
 */
static int
wait_fd(int fd, short what, double deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = what };
		int ms = -1, n;

		if (deadline > 0) {
			double left = deadline - now_ms();

			if (left <= 0) {
				errno = ETIMEDOUT;
				return -1;
			}
			ms = (int)left + 1;
		}
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

static double
deadline_of(int timeout_ms)
{
	return timeout_ms > 0 ? now_ms() + timeout_ms : 0;
}

/*
 * The time of one read (mc_read) or write (mc_flush): its deadline.  The
 * first blocking call gets the socket's timeout as it is, all there is
 * left then; each later one the timeout cut to what is left, set back by
 * op_end.
 */
struct op {
	double deadline;  /* 0: no limit */
	int opt;          /* SO_RCVTIMEO or SO_SNDTIMEO */
	bool started;     /* a call was made */
	bool cut;         /* the socket's timeout was cut */
};

static struct op
op_start(const struct mc_conn *c, int opt)
{
	return (struct op){ .deadline = deadline_of(c->timeout_ms),
		.opt = opt };
}

/* Before each blocking call: 0, or -1 if the deadline passed. */
static int
op_wait(struct mc_conn *c, struct op *op)
{
	double left;

	if (!op->started) {
		op->started = true;
		return 0;
	}
	if (op->deadline <= 0)
		return 0;
	if ((left = op->deadline - now_ms()) <= 0)
		return -1;
	set_io_timeout(c->fd, op->opt, left);
	op->cut = true;
	return 0;
}

static void
op_end(struct mc_conn *c, const struct op *op)
{
	if (op->cut)
		set_io_timeout(c->fd, op->opt, c->timeout_ms);
}

struct mc_conn *
mc_wrap(int fd, int timeout_ms)
{
	struct mc_conn *c = calloc(1, sizeof *c);
	int flags = fcntl(fd, F_GETFL);

	if (c == NULL)
		return NULL;
	if (flags >= 0 && (flags & O_NONBLOCK) != 0)
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	c->fd = fd;
	mc_set_timeout(c, timeout_ms);
	{
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;

		c->tcp = getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
		    (ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
	}
	return c;
}

void
mc_close(struct mc_conn *c)
{
	if (c == NULL)
		return;
	if (c->fd >= 0)
		close(c->fd);
	for (int m = 0; m < MC_M_STAGES; m++)
		free(c->macros[m]);
	free(c->out);
	free(c->in);
	free(c);
}

/*
 * Split spec into an address: unix:PATH, local:PATH, /PATH, or
 * inet:PORT@HOST and inet6:PORT@HOST, which are looked up.  0, or -1 with
 * the reason in err.
 */
int
mc_resolve(const char *spec, struct sockaddr_storage *ss, socklen_t *len,
	   char *err, size_t errlen)
{
	const char *path = NULL, *rest;
	int family = 0;

	if (strncmp(spec, "unix:", 5) == 0)
		path = spec + 5;
	else if (strncmp(spec, "local:", 6) == 0)
		path = spec + 6;
	else if (spec[0] == '/')
		path = spec;
	if (path != NULL) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		if (path[0] == '\0' || strlen(path) >= sizeof sun->sun_path) {
			snprintf(err, errlen, "%s: the socket path is empty "
			    "or longer than %zu bytes", spec,
			    sizeof sun->sun_path - 1);
			return -1;
		}
		memset(sun, 0, sizeof *sun);
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, path);
		*len = sizeof *sun;
		return 0;
	}
	if (strncmp(spec, "inet:", 5) == 0) {
		family = AF_INET;
		rest = spec + 5;
	} else if (strncmp(spec, "inet6:", 6) == 0) {
		family = AF_INET6;
		rest = spec + 6;
	} else {
		snprintf(err, errlen, "%s: not inet:PORT@HOST, "
		    "inet6:PORT@HOST or unix:PATH", spec);
		return -1;
	}
	const char *at = strchr(rest, '@');
	char port[16];
	struct addrinfo hints = { .ai_family = family,
		.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *ai;
	int rc;

	if (at == NULL || at == rest || at[1] == '\0' ||
	    (size_t)(at - rest) >= sizeof port ||
	    strspn(rest, "0123456789") != (size_t)(at - rest)) {
		snprintf(err, errlen, "%s: want %s:PORT@HOST", spec,
		    family == AF_INET ? "inet" : "inet6");
		return -1;
	}
	memcpy(port, rest, (size_t)(at - rest));
	port[at - rest] = '\0';
	if (atoi(port) < 1 || atoi(port) > 65535) {
		snprintf(err, errlen, "%s: port %s out of range", spec, port);
		return -1;
	}
	if ((rc = getaddrinfo(at + 1, port, &hints, &ai)) != 0) {
		snprintf(err, errlen, "%s: %s", spec, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*len = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/*
 * Connect a blocking unix socket, waiting at most until deadline.  A unix
 * socket connects at once or, while the listener's backlog is full, not
 * at all: non-blocking, connect fails with EAGAIN and nothing is in
 * progress (a poll for POLLOUT returns at once, and the socket stays
 * unconnected).  Blocking, the kernel waits for room, as long as
 * SO_SNDTIMEO allows.  0, or an errno (ETIMEDOUT when too late).
 */
static int
connect_unix(int fd, const struct sockaddr_storage *ss, socklen_t len,
	     double deadline)
{
	int e = 0;

	for (;;) {
		if (deadline > 0) {
			double left = deadline - now_ms();

			if (left <= 0) {
				e = ETIMEDOUT;
				break;
			}
			set_io_timeout(fd, SO_SNDTIMEO, left);
		}
		if (connect(fd, (const struct sockaddr *)ss, len) == 0 ||
		    errno == EISCONN)
			break;
		if (errno == EINTR)
			continue;
		e = errno == EAGAIN && deadline > 0 ? ETIMEDOUT : errno;
		break;
	}
	return e;  /* mc_wrap sets SO_SNDTIMEO anew */
}

struct mc_conn *
mc_open(const char *spec, int timeout_ms, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len, elen;
	double deadline = deadline_of(timeout_ms);
	int fd, one = 1, e = 0;
	struct mc_conn *c;

	if (mc_resolve(spec, &ss, &len, err, errlen) < 0)
		return NULL;
	/* TCP connects non-blocking (for its timeout), unix sockets
	 * blocking (connect_unix); mc_wrap makes both blocking. */
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC |
	    (ss.ss_family == AF_UNIX ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s: socket: %s", spec, strerror(errno));
		return NULL;
	}
	if (ss.ss_family == AF_UNIX) {
		e = connect_unix(fd, &ss, len, deadline);
	} else {
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fd, (struct sockaddr *)&ss, len) == 0)
			e = 0;
		else if (errno != EINPROGRESS && errno != EAGAIN)
			e = errno;
		else if (wait_fd(fd, POLLOUT, deadline) < 0)
			e = errno;
		else {
			elen = sizeof e;
			if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) < 0)
				e = errno;
		}
	}
	if (e != 0) {
		snprintf(err, errlen, "%s: cannot connect: %s", spec,
		    e == ETIMEDOUT ? "timed out" : strerror(e));
		close(fd);
		return NULL;
	}
	if ((c = mc_wrap(fd, timeout_ms)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", spec);
		close(fd);
	}
	return c;
}

/* ---- writing ------------------------------------------------------------ */

static int
reserve(struct mc_conn *c, size_t more)
{
	size_t cap = c->outcap ? c->outcap : 8192;
	unsigned char *p;

	if (c->outlen + more <= c->outcap)
		return 0;
	while (cap < c->outlen + more)
		cap *= 2;
	if ((p = realloc(c->out, cap)) == NULL)
		return fail(c, "out of memory");
	c->out = p;
	c->outcap = cap;
	return 0;
}

/* Start a packet of command cmd whose data is len bytes; the data goes
 * to the returned place. */
static unsigned char *
packet(struct mc_conn *c, char cmd, size_t len)
{
	uint32_t n = htonl((uint32_t)len + 1);
	unsigned char *p;

	if (len >= PACKET_MAX || reserve(c, len + 5) < 0) {
		if (len >= PACKET_MAX)
			fail(c, "command '%c' of %zu bytes is too long", cmd,
			    len);
		return NULL;
	}
	p = c->out + c->outlen;
	memcpy(p, &n, 4);
	p[4] = (unsigned char)cmd;
	c->outlen += len + 5;
	return p + 5;
}

int
mc_put(struct mc_conn *c, char cmd, const void *data, size_t len)
{
	unsigned char *p = packet(c, cmd, len);

	if (p == NULL)
		return -1;
	if (len > 0)
		memcpy(p, data, len);
	return 0;
}

/* Queue cmd with the NUL-terminated strings of the array s (n of them). */
static int
put_strings(struct mc_conn *c, char cmd, const char *const *s, size_t n)
{
	size_t len = 0;
	unsigned char *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(s[i]) + 1;
	if ((p = packet(c, cmd, len)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;

		memcpy(p, s[i], l);
		p += l;
	}
	return 0;
}

int
mc_put_macros(struct mc_conn *c, char cmd, const char *list,
	      const char *(*value)(void *arg, const char *name), void *arg)
{
	unsigned char data[8192];
	char name[128];
	size_t len = 1;

	data[0] = (unsigned char)cmd;
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t n = strcspn(p, " ,\t");
		const char *v;

		if (n > 0 && n < sizeof name) {
			memcpy(name, p, n);
			name[n] = '\0';
			v = value(arg, name);
			if (v != NULL &&
			    len + n + strlen(v) + 4 < sizeof data) {
				/* Long names in braces, as Postfix sends. */
				bool brace = n > 1 && name[0] != '{';

				if (brace)
					data[len++] = '{';
				memcpy(data + len, name, n);
				len += n;
				if (brace)
					data[len++] = '}';
				data[len++] = '\0';
				memcpy(data + len, v, strlen(v) + 1);
				len += strlen(v) + 1;
			}
		}
		p += n;
		p += strspn(p, " ,\t");
	}
	return len > 1 ? mc_put(c, MC_CMD_MACRO, data, len) : 0;
}

int
mc_put_connect(struct mc_conn *c, const char *hostname,
	       const struct sockaddr *addr)
{
	char text[sizeof ((struct sockaddr_un *)0)->sun_path + 1];
	uint16_t port = 0;
	char family = 'U';
	size_t hlen = strlen(hostname) + 1, alen;
	unsigned char *p;

	text[0] = '\0';
	if (addr != NULL && addr->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)addr;

		family = '4';
		port = sin->sin_port;
		inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
	} else if (addr != NULL && addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)addr;

		family = '6';
		port = sin6->sin6_port;
		inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
	} else if (addr != NULL && addr->sa_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const void *)addr;

		family = 'L';
		snprintf(text, sizeof text, "%.*s",
		    (int)sizeof sun->sun_path, sun->sun_path);
	}
	alen = family == 'U' ? 0 : 2 + strlen(text) + 1;
	if ((p = packet(c, MC_CMD_CONNECT, hlen + 1 + alen)) == NULL)
		return -1;
	memcpy(p, hostname, hlen);
	p += hlen;
	*p++ = (unsigned char)family;
	if (family != 'U') {
		memcpy(p, &port, 2);  /* already in network order */
		memcpy(p + 2, text, strlen(text) + 1);
	}
	return 0;
}

int
mc_put_helo(struct mc_conn *c, const char *name)
{
	return put_strings(c, MC_CMD_HELO, &name, 1);
}

int
mc_put_argv(struct mc_conn *c, char cmd, const char *const *argv)
{
	size_t n = 0;

	while (argv[n] != NULL)
		n++;
	return put_strings(c, cmd, argv, n);
}

int
mc_put_header(struct mc_conn *c, const char *name, const char *value)
{
	const char *s[2] = { name, value };

	return put_strings(c, MC_CMD_HEADER, s, 2);
}

int
mc_put_body(struct mc_conn *c, const void *chunk, size_t len)
{
	return mc_put(c, MC_CMD_BODY, chunk, len);
}

int
mc_put_unknown(struct mc_conn *c, const char *command)
{
	return put_strings(c, MC_CMD_UNKNOWN, &command, 1);
}

int
mc_flush(struct mc_conn *c)
{
	struct op op = op_start(c, SO_SNDTIMEO);
	size_t done = 0;
	int rc = 0;

	while (done < c->outlen) {
		ssize_t n;

		if (op_wait(c, &op) < 0) {
			rc = fail(c, "write: timed out");
			break;
		}
		n = send(c->fd, c->out + done, c->outlen - done,
		    MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		rc = fail(c, "write: %s", n < 0 && (errno == EAGAIN ||
		    errno == EWOULDBLOCK) ? "timed out" : strerror(errno));
		break;
	}
	op_end(c, &op);
	c->outlen = 0;
	return rc;
}

/* ---- reading ------------------------------------------------------------ */

/* Have at least want bytes unread in c->in; 0, or -1. */
static int
fill(struct mc_conn *c, size_t want, struct op *op)
{
	if (c->inlen - c->inpos >= want)
		return 0;
	if (c->inpos > 0) {
		memmove(c->in, c->in + c->inpos, c->inlen - c->inpos);
		c->inlen -= c->inpos;
		c->inpos = 0;
	}
	if (c->incap < want || c->incap - c->inlen < READ_CHUNK / 4) {
		size_t cap = c->incap ? c->incap : READ_CHUNK;
		unsigned char *p;

		while (cap < want || cap - c->inlen < READ_CHUNK / 4)
			cap *= 2;
		if ((p = realloc(c->in, cap)) == NULL)
			return fail(c, "out of memory");
		c->in = p;
		c->incap = cap;
	}
	while (c->inlen < want) {
		ssize_t n;

		if (op_wait(c, op) < 0)
			return fail(c, "read: timed out");
		n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
		if (n > 0) {
			c->inlen += (size_t)n;
			continue;
		}
		if (n == 0)
			return fail(c, "read: the milter closed the "
			    "connection");
		if (errno == EINTR)
			continue;
		return fail(c, "read: %s", errno == EAGAIN ||
		    errno == EWOULDBLOCK ? "timed out" : strerror(errno));
	}
	return 0;
}

/*
 * The NUL-terminated string at *off of the reply's data, *off moved past
 * it; NULL if the data ends before a NUL.
 */
static const char *
string_at(const struct mc_reply *r, size_t *off)
{
	const char *s = (const char *)r->data + *off;
	size_t n;

	if (*off >= r->len)
		return NULL;
	n = strnlen(s, r->len - *off);
	if (*off + n == r->len)
		return NULL;
	*off += n + 1;
	return s;
}

/* Is text a reply code: three digits from 4xx or 5xx, then a space, a
 * dash or its end? */
static bool
reply_code_ok(const char *text)
{
	return (text[0] == '4' || text[0] == '5') &&
	    text[1] >= '0' && text[1] <= '9' &&
	    text[2] >= '0' && text[2] <= '9' &&
	    (text[3] == ' ' || text[3] == '-' || text[3] == '\0');
}

/* Split r's data into its fields; 0, or -1 if malformed. */
static int
parse_fields(struct mc_conn *c, struct mc_reply *r)
{
	size_t off = 0;
	uint32_t idx;

	switch (r->code) {
	case MC_R_INSHEADER:
	case MC_R_CHGHEADER:
		if (r->len < 4)
			return fail(c, "reply '%c' without its header index",
			    r->code);
		memcpy(&idx, r->data, 4);
		r->index = ntohl(idx);
		off = 4;
		/* FALLTHROUGH */
	case MC_R_ADDHEADER:
		if ((r->name = string_at(r, &off)) == NULL ||
		    (r->value = string_at(r, &off)) == NULL)
			return fail(c, "reply '%c' without a NUL-terminated "
			    "header name and value", r->code);
		if (r->name[0] == '\0')
			return fail(c, "reply '%c' with an empty header "
			    "name", r->code);
		return 0;
	case MC_R_ADDRCPT_PAR:
	case MC_R_CHGFROM:
		if ((r->text = string_at(r, &off)) == NULL)
			return fail(c, "reply '%c' without a NUL-terminated "
			    "address", r->code);
		r->args = string_at(r, &off);
		break;
	case MC_R_ADDRCPT:
	case MC_R_DELRCPT:
	case MC_R_QUARANTINE:
		if ((r->text = string_at(r, &off)) == NULL)
			return fail(c, "reply '%c' without a NUL-terminated "
			    "string", r->code);
		break;
	case MC_R_REPLYCODE:
		if ((r->text = string_at(r, &off)) == NULL ||
		    !reply_code_ok(r->text))
			return fail(c, "reply code without a 4xx or 5xx code");
		return 0;
	default:
		return 0;
	}
	if (r->text[0] == '\0')
		return fail(c, "reply '%c' with an empty %s", r->code,
		    r->code == MC_R_QUARANTINE ? "reason" : "address");
	return 0;
}

/*
 * More packets of this answer follow (a change, progress).  A libmilter
 * milter writes each in a packet of its own without TCP_NODELAY: Nagle's
 * algorithm holds the next one until this one is acknowledged, which our
 * side would delay ~40 ms.  Acknowledge it now.
 */
static void
quick_ack(struct mc_conn *c)
{
	int one = 1;

	setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
}

static bool
known_reply(char code)
{
	return mc_is_final(code) || mc_is_change(code, NULL) ||
	    code == MC_R_PROGRESS || code == MC_R_OPTNEG ||
	    code == MC_R_SETSYMLIST;
}

int
mc_read(struct mc_conn *c, struct mc_reply *r)
{
	struct op op = op_start(c, SO_RCVTIMEO);
	uint32_t n = 0;
	uint32_t action;
	int rc;

	memset(r, 0, sizeof *r);
	if ((rc = fill(c, 4, &op)) == 0) {
		memcpy(&n, c->in + c->inpos, 4);
		n = ntohl(n);
		if (n < 1 || n > PACKET_MAX)
			rc = fail(c, "a packet of %u bytes", (unsigned)n);
		else
			rc = fill(c, 4 + (size_t)n, &op);
	}
	op_end(c, &op);
	if (rc < 0)
		return -1;
	r->code = (char)c->in[c->inpos + 4];
	r->data = c->in + c->inpos + 5;
	r->len = n - 1;
	c->inpos += 4 + (size_t)n;
	if (!known_reply(r->code))
		return fail(c, "unknown reply '%c' (0x%02x)",
		    r->code >= 0x20 && r->code < 0x7f ? r->code : '?',
		    (unsigned char)r->code);
	if (mc_is_change(r->code, &action) && (c->actions & action) == 0)
		return fail(c, "change '%c' without its action negotiated",
		    r->code);
	if (c->tcp && c->inpos == c->inlen && (r->code == MC_R_PROGRESS ||
	    mc_is_change(r->code, NULL)))
		quick_ack(c);
	return parse_fields(c, r);
}

int
mc_read_answer(struct mc_conn *c, enum mc_event ev, struct mc_reply *r,
	       unsigned *progress)
{
	for (;;) {
		if (mc_read(c, r) < 0)
			return -1;
		if (r->code != MC_R_PROGRESS)
			break;
		if (progress != NULL)
			(*progress)++;
	}
	if (!mc_answers(ev, r->code))
		return fail(c, "reply '%c' to %s", r->code, events[ev].name);
	return 0;
}

bool
mc_pending(const struct mc_conn *c)
{
	char b;

	return c->inpos < c->inlen ||
	    recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

bool
mc_closed(const struct mc_conn *c)
{
	char b;
	ssize_t n = recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
	    errno != EINTR);
}

/* ---- negotiation -------------------------------------------------------- */

/* The macro lists after the three numbers of the milter's options. */
static int
read_macro_lists(struct mc_conn *c, const struct mc_reply *r)
{
	size_t off = 12;

	while (off < r->len) {
		uint32_t stage;
		const char *list;

		if (off + 4 > r->len)
			return fail(c, "negotiation: a macro list cut short");
		memcpy(&stage, r->data + off, 4);
		stage = ntohl(stage);
		off += 4;
		if ((list = string_at(r, &off)) == NULL)
			return fail(c, "negotiation: a macro list without "
			    "its NUL");
		if (stage >= MC_M_STAGES)
			return fail(c, "negotiation: a macro list for stage "
			    "%u", (unsigned)stage);
		free(c->macros[stage]);
		if ((c->macros[stage] = strdup(list)) == NULL)
			return fail(c, "out of memory");
	}
	return 0;
}

int
mc_negotiate(struct mc_conn *c, uint32_t version, uint32_t actions,
	     uint32_t steps)
{
	uint32_t offer[3] = { htonl(version), htonl(actions), htonl(steps) };
	uint32_t got[3];
	struct mc_reply r;

	if (mc_put(c, MC_CMD_OPTNEG, offer, sizeof offer) < 0 ||
	    mc_flush(c) < 0 || mc_read(c, &r) < 0)
		return -1;
	if (r.code != MC_R_OPTNEG || r.len < 12)
		return fail(c, "negotiation answered '%c' with %zu bytes",
		    r.code, r.len);
	memcpy(got, r.data, sizeof got);
	c->version = ntohl(got[0]);
	c->actions = ntohl(got[1]);
	c->steps = ntohl(got[2]);
	if (c->version < 2 || c->version > version)
		return fail(c, "negotiation: the milter speaks version %u "
		    "(offered %u)", (unsigned)c->version, (unsigned)version);
	if ((c->actions & ~actions) != 0 || (c->steps & ~steps) != 0)
		return fail(c, "negotiation: the milter asks for actions "
		    "0x%x and steps 0x%x, more than offered (0x%x, 0x%x)",
		    (unsigned)c->actions, (unsigned)c->steps,
		    (unsigned)actions, (unsigned)steps);
	return read_macro_lists(c, &r);
}

uint32_t
mc_version(const struct mc_conn *c)
{
	return c->version;
}

uint32_t
mc_actions(const struct mc_conn *c)
{
	return c->actions;
}

uint32_t
mc_steps(const struct mc_conn *c)
{
	return c->steps;
}

const char *
mc_macro_list(const struct mc_conn *c, int macro_stage)
{
	if (macro_stage < 0 || macro_stage >= MC_M_STAGES)
		return NULL;
	return c->macros[macro_stage];
}

bool
mc_wants(const struct mc_conn *c, enum mc_event ev)
{
	return (c->steps & events[ev].no_step) == 0;
}

bool
mc_answers_event(const struct mc_conn *c, enum mc_event ev)
{
	return (c->steps & events[ev].no_reply) == 0;
}

/*
 * kv_redis - the Redis backend of the store (kv = redis://HOST:PORT[/DB]
 * or unix:/PATH), through hiredis.  See kv.h.
 *
 * One connection per thread, in a pthread key whose destructor closes it
 * when the thread ends: the calls of one thread are sequential, so a
 * connection of its own needs no lock at all, and the daemon's threads
 * (one per milter connection) are few and long-lived enough that a pool
 * would save little.  A connection is opened at the thread's first call
 * (AUTH and SELECT then), with a deadline of kv_timeout_ms for the whole
 * call, connect included: every step gets what is left of it.
 *
 * A failure (refused, closed, timed out, or AUTH/SELECT refused) drops
 * the connection and starts a backoff for that thread: no new attempt for
 * 100 ms, doubling at each failed attempt up to 5 s, and back to nothing
 * after a success.  During the backoff a call answers MH_E_UNAVAILABLE at
 * once.  One exception: a connection that was idle and turns out closed
 * (Redis restarted, or closed it) is reopened at once, within the same
 * deadline, before anything counts as a failure.  The backend logs
 * (warning) the first failure of a thread's outage, with Redis's words
 * (a refused AUTH or SELECT too), and (notice) its end; not every call.
 *
 * Writing to a socket Redis closed raises SIGPIPE: opening the backend
 * ignores SIGPIPE if it has its default action (libmilter ignores it too).
 *
 * Statistics (kv_stats()): the connection attempts, by whether the
 * connection came to serve (connected, AUTH and SELECT answered), and
 * the connections open now, over all threads; relaxed atomics, touched
 * only when a connection is opened or closed, never on a call's way.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

#include <hiredis.h>

#include "kv.h"
#include "log.h"

#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS 5000

struct kv_redis {
	struct kv_spec spec;
	pthread_key_t key;
	uint64_t connects_ok, connects_failed;
	uint64_t open;        /* connections open (cn->c), all threads */
};

/* A thread's connection and its backoff. */
struct conn {
	struct kv_redis *r;
	redisContext *c;      /* a connection counted in r->open, or NULL */
	uint64_t retry_at;    /* no attempt before this (monotonic ms) */
	unsigned backoff_ms;  /* the next backoff; 0 after a success */
	bool logged;          /* the failure was logged since it last worked */
	bool armed_full;      /* its socket timeouts are kv_timeout_ms */
};

/* INCRBY, with the time to live set only when the key was created. */
static const char incr_script[] =
    "local new = redis.call('EXISTS', KEYS[1]) == 0 "
    "local v = redis.call('INCRBY', KEYS[1], ARGV[1]) "
    "if new and tonumber(ARGV[2]) > 0 then "
    "redis.call('EXPIRE', KEYS[1], ARGV[2]) end "
    "return v";

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct timeval
ms_tv(uint64_t ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000);
	tv.tv_usec = (suseconds_t)(ms % 1000) * 1000;
	return tv;
}

/* Close the thread's connection, if it has one. */
static void
conn_close(struct conn *cn)
{
	if (cn->c == NULL)
		return;
	redisFree(cn->c);
	cn->c = NULL;
	cn->armed_full = false;
	__atomic_fetch_sub(&cn->r->open, 1, __ATOMIC_RELAXED);
}

static void
conn_destroy(void *p)
{
	struct conn *cn = p;

	conn_close(cn);
	free(cn);
}

static const char *
where(const struct kv_redis *r, char *buf, size_t size)
{
	if (r->spec.type == KV_REDIS_UNIX)
		snprintf(buf, size, "unix:%s", r->spec.path);
	else
		snprintf(buf, size, "redis://%s:%u/%u", r->spec.host,
		    r->spec.port, r->spec.db);
	return buf;
}

/* Drop the connection and start (or lengthen) the backoff. */
static void
fail_conn(struct kv_redis *r, struct conn *cn, const char *what)
{
	char addr[300];

	if (!cn->logged) {
		log_msg(LOG_WARNING, "kv: Redis at %s unavailable: %s; "
		    "calls fail (MH_E_UNAVAILABLE) until it answers again",
		    where(r, addr, sizeof addr), what);
		cn->logged = true;
	}
	conn_close(cn);
	cn->backoff_ms = cn->backoff_ms == 0 ? BACKOFF_FIRST_MS :
	    cn->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    cn->backoff_ms * 2;
	cn->retry_at = now_ms() + cn->backoff_ms;
}

/* Give the next step of a call what is left before deadline; false if
 * nothing is. */
static bool
arm(redisContext *c, uint64_t deadline)
{
	uint64_t now = now_ms();

	if (now >= deadline)
		return false;
	return redisSetTimeout(c, ms_tv(deadline - now)) == REDIS_OK;
}

/* One command on a fresh connection during the handshake; false (with
 * the connection failed) unless Redis says OK. */
static bool
handshake(struct kv_redis *r, struct conn *cn, uint64_t deadline,
	  const char *name, const char *fmt, ...)
{
	char what[300];
	redisReply *rep;
	va_list ap;
	bool ok;

	if (!arm(cn->c, deadline)) {
		snprintf(what, sizeof what, "%s timed out", name);
		fail_conn(r, cn, what);
		return false;
	}
	va_start(ap, fmt);
	rep = redisvCommand(cn->c, fmt, ap);
	va_end(ap);
	if (rep == NULL) {
		snprintf(what, sizeof what, "%s: %s", name, cn->c->errstr);
		fail_conn(r, cn, what);
		return false;
	}
	ok = rep->type == REDIS_REPLY_STATUS;
	if (!ok) {
		snprintf(what, sizeof what, "%s refused: %.*s", name,
		    rep->type == REDIS_REPLY_ERROR ? (int)rep->len : 0,
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "");
		fail_conn(r, cn, what);
	}
	freeReplyObject(rep);
	return ok;
}

/* The thread's connection, opened if need be; NULL (MH_E_UNAVAILABLE)
 * during a backoff or when it cannot be opened before deadline. */
static redisContext *
get_conn(struct kv_redis *r, uint64_t deadline)
{
	struct conn *cn = pthread_getspecific(r->key);
	struct timeval tv;
	redisContext *c;
	char what[300];
	uint64_t now;

	if (cn == NULL) {
		if ((cn = calloc(1, sizeof *cn)) == NULL)
			return NULL;
		cn->r = r;
		if (pthread_setspecific(r->key, cn) != 0) {
			free(cn);
			return NULL;
		}
	}
	if (cn->c != NULL)
		return cn->c;
	now = now_ms();
	if (now < cn->retry_at)
		return NULL;
	tv = ms_tv(deadline > now ? deadline - now : 1);
	if (r->spec.type == KV_REDIS_UNIX)
		c = redisConnectUnixWithTimeout(r->spec.path, tv);
	else
		c = redisConnectWithTimeout(r->spec.host, (int)r->spec.port,
		    tv);
	if (c == NULL || c->err) {
		snprintf(what, sizeof what, "connect: %s",
		    c != NULL ? c->errstr : "out of memory");
		if (c != NULL)
			redisFree(c);
		__atomic_fetch_add(&r->connects_failed, 1, __ATOMIC_RELAXED);
		fail_conn(r, cn, what);
		return NULL;
	}
	cn->c = c;
	__atomic_fetch_add(&r->open, 1, __ATOMIC_RELAXED);
	if ((r->spec.password[0] != '\0' && !handshake(r, cn, deadline,
	    "AUTH", "AUTH %s", r->spec.password)) ||
	    (r->spec.db != 0 && !handshake(r, cn, deadline, "SELECT",
	    "SELECT %u", r->spec.db))) {
		__atomic_fetch_add(&r->connects_failed, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	__atomic_fetch_add(&r->connects_ok, 1, __ATOMIC_RELAXED);
	if (cn->logged) {
		char addr[300];

		log_msg(LOG_NOTICE, "kv: Redis at %s answers again",
		    where(r, addr, sizeof addr));
	}
	cn->backoff_ms = 0;
	cn->logged = false;
	return cn->c;
}

/*
 * Send a command on the thread's connection; the reply, or NULL with
 * *rc set (MH_E_UNAVAILABLE, MH_E_NOMEM).
 */
static redisReply *
command(struct kv_redis *r, int *rc, const char *fmt, ...)
{
	uint64_t deadline = now_ms() + r->spec.timeout_ms;
	struct conn *cn;
	redisContext *c;
	redisReply *rep;
	char what[300];
	va_list ap;
	bool reused;

	*rc = MH_E_UNAVAILABLE;
again:
	cn = pthread_getspecific(r->key);
	reused = cn != NULL && cn->c != NULL;
	if ((c = get_conn(r, deadline)) == NULL)
		return NULL;
	cn = pthread_getspecific(r->key);
	/*
	 * A command on a connection already open gets the whole timeout,
	 * which its socket then keeps (SO_RCVTIMEO and SO_SNDTIMEO hold for
	 * each recv and send): set once, not two setsockopt() calls per
	 * command.  After a connect and handshake in this call, what is left.
	 */
	if (!(reused && cn->armed_full)) {
		if (!arm(c, deadline)) {
			fail_conn(r, cn, "timed out");
			return NULL;
		}
		cn->armed_full = reused;
	}
	va_start(ap, fmt);
	rep = redisvCommand(c, fmt, ap);
	va_end(ap);
	if (rep == NULL) {
		bool timed_out = c->err == REDIS_ERR_IO &&
		    (errno == EAGAIN || errno == EWOULDBLOCK);

		if (reused && (c->err == REDIS_ERR_EOF ||
		    (c->err == REDIS_ERR_IO && !timed_out))) {
			/* Closed while idle: once more on a new one. */
			conn_close(cn);
			goto again;
		}
		if (c->err == REDIS_ERR_OOM)
			*rc = MH_E_NOMEM;
		snprintf(what, sizeof what, "%s", timed_out ? "timed out" :
		    c->errstr);
		fail_conn(r, cn, what);
		return NULL;
	}
	return rep;
}

/* A reply of a type the command does not answer with: an error that is
 * no fault of the connection, or else the store out of order. */
static int
unexpected(const redisReply *rep)
{
	if (rep->type != REDIS_REPLY_ERROR)
		return MH_E_UNAVAILABLE;
	if (strstr(rep->str, "not an integer") != NULL ||
	    strstr(rep->str, "overflow") != NULL)
		return MH_E_INVALID;
	if (strncmp(rep->str, "OOM", 3) == 0)
		return MH_E_NOMEM;
	return MH_E_UNAVAILABLE;
}

static int
redis_get(void *impl, const char *key, void *buf, size_t size, size_t *len)
{
	redisReply *rep;
	int rc;

	if ((rep = command(impl, &rc, "GET %b", key, strlen(key))) == NULL)
		return rc;
	if (rep->type == REDIS_REPLY_NIL) {
		rc = MH_E_NOTFOUND;
	} else if (rep->type == REDIS_REPLY_STRING) {
		if (size > 0)
			memcpy(buf, rep->str, rep->len < size ? rep->len :
			    size);
		if (len != NULL)
			*len = rep->len;
		rc = MH_OK;
	} else {
		rc = unexpected(rep);
	}
	freeReplyObject(rep);
	return rc;
}

static int
store(void *impl, const char *key, const void *value, size_t len,
      unsigned ttl_s, bool nx)
{
	const char *v = len > 0 ? value : "";
	redisReply *rep;
	int rc;

	if (ttl_s > 0)
		rep = command(impl, &rc, nx ? "SET %b %b NX EX %u" :
		    "SET %b %b EX %u", key, strlen(key), v, len, ttl_s);
	else
		rep = command(impl, &rc, nx ? "SET %b %b NX" : "SET %b %b",
		    key, strlen(key), v, len);
	if (rep == NULL)
		return rc;
	if (rep->type == REDIS_REPLY_STATUS)
		rc = MH_OK;
	else if (rep->type == REDIS_REPLY_NIL)
		rc = nx ? MH_E_EXISTS : MH_E_UNAVAILABLE;
	else
		rc = unexpected(rep);
	freeReplyObject(rep);
	return rc;
}

static int
redis_set(void *impl, const char *key, const void *value, size_t len,
	  unsigned ttl_s)
{
	return store(impl, key, value, len, ttl_s, false);
}

static int
redis_add(void *impl, const char *key, const void *value, size_t len,
	  unsigned ttl_s)
{
	return store(impl, key, value, len, ttl_s, true);
}

static int
redis_incr(void *impl, const char *key, long long by, unsigned ttl_s,
	   long long *result)
{
	redisReply *rep;
	int rc;

	if ((rep = command(impl, &rc, "EVAL %s 1 %b %lld %u", incr_script,
	    key, strlen(key), by, ttl_s)) == NULL)
		return rc;
	if (rep->type == REDIS_REPLY_INTEGER) {
		if (result != NULL)
			*result = rep->integer;
		rc = MH_OK;
	} else {
		rc = unexpected(rep);
	}
	freeReplyObject(rep);
	return rc;
}

static int
redis_del(void *impl, const char *key)
{
	redisReply *rep;
	int rc;

	if ((rep = command(impl, &rc, "DEL %b", key, strlen(key))) == NULL)
		return rc;
	if (rep->type == REDIS_REPLY_INTEGER)
		rc = MH_OK;
	else
		rc = unexpected(rep);
	freeReplyObject(rep);
	return rc;
}

/* The calling thread's connection is closed; other threads' ones are
 * closed when those threads end (or at exit). */
static void
redis_free(void *impl)
{
	struct kv_redis *r = impl;
	struct conn *cn = pthread_getspecific(r->key);

	if (cn != NULL) {
		pthread_setspecific(r->key, NULL);
		conn_destroy(cn);
	}
	pthread_key_delete(r->key);
	free(r);
}

static void
redis_stats(void *impl, struct kv_stats *st)
{
	struct kv_redis *r = impl;

	st->redis_connects_ok = __atomic_load_n(&r->connects_ok,
	    __ATOMIC_RELAXED);
	st->redis_connects_failed = __atomic_load_n(&r->connects_failed,
	    __ATOMIC_RELAXED);
	st->redis_connections = __atomic_load_n(&r->open, __ATOMIC_RELAXED);
}

static const struct kv_backend redis_backend = {
	.name = "redis",
	.get = redis_get,
	.set = redis_set,
	.add = redis_add,
	.incr = redis_incr,
	.del = redis_del,
	.free = redis_free,
	.stats = redis_stats,
};

struct kv_store *
kv_redis_open(const struct kv_spec *spec)
{
	struct sigaction sa;
	struct kv_store *kv;
	struct kv_redis *r;

	if ((kv = calloc(1, sizeof *kv)) == NULL)
		return NULL;
	if ((r = calloc(1, sizeof *r)) == NULL) {
		free(kv);
		return NULL;
	}
	r->spec = *spec;
	if (pthread_key_create(&r->key, conn_destroy) != 0) {
		free(r);
		free(kv);
		return NULL;
	}
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
	kv->ops = &redis_backend;
	kv->impl = r;
	return kv;
}

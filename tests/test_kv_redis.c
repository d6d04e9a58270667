/*
 * test_kv_redis - the Redis backend (src/kv_redis.c) against real
 * redis-servers the test starts on unix sockets in a temporary directory
 * (no persistence) and stops at the end: every operation, binary values,
 * expiry, NX, the time to live of incr set at creation only, DB
 * selection, a password (right and wrong), concurrent increments from
 * several threads, and Redis going away: killed (then restarted) and
 * blackholed (a socket that listens and never answers), with the time
 * calls take measured, and restarted under an idle connection; the
 * statistics (connects by result, connections open, calls by result
 * through an outage).  Skips (77) when redis-server is not installed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <hiredis.h>

#include "kv.h"
#include "log.h"
#include "unit.h"

#define TIMEOUT_MS 200

static char dir[] = "/tmp/test_kv_redis.XXXXXX";
static char sock_main[100], sock_pw[100], sock_dead[100], sock_hole[100];
static pid_t pid_main = -1, pid_pw = -1, pid_dead = -1;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A direct connection to the redis on path (for checks), or NULL. */
static redisContext *
direct(const char *path)
{
	struct timeval tv = { 1, 0 };
	redisContext *c = redisConnectUnixWithTimeout(path, tv);

	if (c != NULL && c->err) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* Start a redis-server on the unix socket path, with extra arguments;
 * waits until it answers (PING, or NOAUTH with a password). */
static pid_t
start_redis(const char *path, const char *password)
{
	char logfile[200];
	pid_t pid;

	snprintf(logfile, sizeof logfile, "%s.log", path);
	unlink(path);
	if ((pid = fork()) == 0) {
		int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (password != NULL)
			execlp("redis-server", "redis-server", "--port", "0",
			    "--unixsocket", path, "--save", "", "--appendonly",
			    "no", "--daemonize", "no", "--dir", dir,
			    "--requirepass", password, (char *)NULL);
		else
			execlp("redis-server", "redis-server", "--port", "0",
			    "--unixsocket", path, "--save", "", "--appendonly",
			    "no", "--daemonize", "no", "--dir", dir,
			    (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		redisContext *c = direct(path);

		if (c != NULL) {
			redisReply *r = redisCommand(c, "PING");
			bool up = r != NULL;

			if (r != NULL)
				freeReplyObject(r);
			redisFree(c);
			if (up)
				return pid;
		}
		usleep(10000);
	}
	fprintf(stderr, "redis-server on %s did not start (see %s)\n", path,
	    logfile);
	return pid;
}

static void
stop_redis(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGKILL);
		waitpid(*pid, NULL, 0);
		*pid = -1;
	}
}

static void
stop_all(void)
{
	stop_redis(&pid_main);
	stop_redis(&pid_pw);
	stop_redis(&pid_dead);
}

static struct kv_store *
open_unix(const char *path, unsigned db, const char *password)
{
	struct kv_spec spec;
	struct kv_store *kv;
	char err[200];

	kv_spec_default(&spec);
	spec.type = KV_REDIS_UNIX;
	snprintf(spec.path, sizeof spec.path, "%s", path);
	spec.db = db;
	if (password != NULL)
		snprintf(spec.password, sizeof spec.password, "%s", password);
	spec.timeout_ms = TIMEOUT_MS;
	kv = kv_open(&spec, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
	return kv;
}

static const char *
value_of(struct kv_store *kv, const char *key)
{
	static char buf[256];
	size_t len = 0;

	if (kv_get(kv, key, buf, sizeof buf - 1, &len) != MH_OK)
		return NULL;
	buf[len < sizeof buf - 1 ? len : sizeof buf - 1] = '\0';
	return buf;
}

/* TTL of key through a direct connection to db of path. */
static long long
ttl_of(const char *path, unsigned db, const char *key)
{
	redisContext *c = direct(path);
	redisReply *r;
	long long t = -100;

	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	if (db != 0 && (r = redisCommand(c, "SELECT %u", db)) != NULL)
		freeReplyObject(r);
	if ((r = redisCommand(c, "TTL %s", key)) != NULL) {
		if (r->type == REDIS_REPLY_INTEGER)
			t = r->integer;
		freeReplyObject(r);
	}
	redisFree(c);
	return t;
}

static void
test_set_get_delete(void)
{
	struct kv_store *kv = open_unix(sock_main, 0, NULL);
	static const char bin[] = "a\0b\r\n$3\r\nc\xff";
	char buf[64], small[3];
	size_t len = 0;

	CU_ASSERT_EQUAL(kv_get(kv, "t:none", buf, sizeof buf, &len),
	    MH_E_NOTFOUND);
	CU_ASSERT_EQUAL(kv_set(kv, "t:a", "hello", 5, 0), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:a"), "hello");
	/* A short buffer: the start, and the whole length. */
	CU_ASSERT_EQUAL(kv_get(kv, "t:a", small, sizeof small, &len), MH_OK);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_EQUAL(memcmp(small, "hel", 3), 0);
	CU_ASSERT_EQUAL(kv_set(kv, "t:a", "bye", 3, 0), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:a"), "bye");
	CU_ASSERT_EQUAL(ttl_of(sock_main, 0, "t:a"), -1);
	/* Binary values, and the empty one. */
	CU_ASSERT_EQUAL(kv_set(kv, "t:bin", bin, sizeof bin, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_get(kv, "t:bin", buf, sizeof buf, &len), MH_OK);
	CU_ASSERT_EQUAL(len, sizeof bin);
	CU_ASSERT_EQUAL(memcmp(buf, bin, sizeof bin), 0);
	CU_ASSERT_EQUAL(kv_set(kv, "t:empty", NULL, 0, 0), MH_OK);
	len = 99;
	CU_ASSERT_EQUAL(kv_get(kv, "t:empty", buf, sizeof buf, &len), MH_OK);
	CU_ASSERT_EQUAL(len, 0);
	/* A large value. */
	{
		size_t n = MH_KV_VALUE_MAX;
		char *big = malloc(n), *back = malloc(n);

		CU_ASSERT_PTR_NOT_NULL_FATAL(big);
		CU_ASSERT_PTR_NOT_NULL_FATAL(back);
		for (size_t i = 0; i < n; i++)
			big[i] = (char)(i * 7);
		CU_ASSERT_EQUAL(kv_set(kv, "t:big", big, n, 0), MH_OK);
		CU_ASSERT_EQUAL(kv_get(kv, "t:big", back, n, &len), MH_OK);
		CU_ASSERT_EQUAL(len, n);
		CU_ASSERT_EQUAL(memcmp(big, back, n), 0);
		free(big);
		free(back);
	}
	CU_ASSERT_EQUAL(kv_delete(kv, "t:a"), MH_OK);
	CU_ASSERT_PTR_NULL(value_of(kv, "t:a"));
	CU_ASSERT_EQUAL(kv_delete(kv, "t:a"), MH_OK);
	kv_close(kv);
}

static void
test_add(void)
{
	struct kv_store *kv = open_unix(sock_main, 0, NULL);

	kv_delete(kv, "t:nx");
	CU_ASSERT_EQUAL(kv_add(kv, "t:nx", "1", 1, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_add(kv, "t:nx", "2", 1, 0), MH_E_EXISTS);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:nx"), "1");
	CU_ASSERT_EQUAL(kv_delete(kv, "t:nx"), MH_OK);
	CU_ASSERT_EQUAL(kv_add(kv, "t:nx", "3", 1, 100), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:nx"), "3");
	CU_ASSERT_TRUE(ttl_of(sock_main, 0, "t:nx") > 90);
	kv_close(kv);
}

/* Expiry, once with a real second. */
static void
test_expiry(void)
{
	struct kv_store *kv = open_unix(sock_main, 0, NULL);

	CU_ASSERT_EQUAL(kv_set(kv, "t:short", "x", 1, 1), MH_OK);
	CU_ASSERT_EQUAL(kv_add(kv, "t:shortnx", "x", 1, 1), MH_OK);
	CU_ASSERT_EQUAL(kv_set(kv, "t:long", "y", 1, 1000), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:short"), "x");
	usleep(1200000);
	CU_ASSERT_PTR_NULL(value_of(kv, "t:short"));
	CU_ASSERT_PTR_NULL(value_of(kv, "t:shortnx"));
	CU_ASSERT_EQUAL(kv_add(kv, "t:shortnx", "z", 1, 0), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:long"), "y");
	CU_ASSERT_TRUE(ttl_of(sock_main, 0, "t:long") > 990);
	kv_close(kv);
}

static void
test_incr(void)
{
	struct kv_store *kv = open_unix(sock_main, 0, NULL);
	long long n = 0;

	kv_delete(kv, "t:n");
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", 5, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", -7, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, -2);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", 2, 0, NULL), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:n"), "0");
	/* The time to live at creation only. */
	kv_delete(kv, "t:ttl");
	CU_ASSERT_EQUAL(kv_incr(kv, "t:ttl", 1, 100, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_TRUE(ttl_of(sock_main, 0, "t:ttl") > 90);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:ttl", 1, 5, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 2);
	CU_ASSERT_TRUE(ttl_of(sock_main, 0, "t:ttl") > 90);
	/* Creation by 0 sets it too; a key without one keeps none. */
	kv_delete(kv, "t:zero");
	CU_ASSERT_EQUAL(kv_incr(kv, "t:zero", 0, 100, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_TRUE(ttl_of(sock_main, 0, "t:zero") > 90);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", 1, 100, &n), MH_OK);
	CU_ASSERT_EQUAL(ttl_of(sock_main, 0, "t:n"), -1);
	/* Not an integer, an overflow. */
	CU_ASSERT_EQUAL(kv_set(kv, "t:s", "abc", 3, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:s", 1, 0, &n), MH_E_INVALID);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:s"), "abc");
	CU_ASSERT_EQUAL(kv_set(kv, "t:big", "9223372036854775807", 19, 0),
	    MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:big", 1, 0, &n), MH_E_INVALID);
	/* The connection is still good after those errors. */
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", 1, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 2);
	kv_close(kv);
}

static void
test_db(void)
{
	struct kv_store *kv0 = open_unix(sock_main, 0, NULL);
	struct kv_store *kv3 = open_unix(sock_main, 3, NULL);
	redisContext *c;
	redisReply *r;

	kv_delete(kv0, "t:db");
	CU_ASSERT_EQUAL(kv_set(kv3, "t:db", "three", 5, 0), MH_OK);
	CU_ASSERT_PTR_NULL(value_of(kv0, "t:db"));
	CU_ASSERT_STRING_EQUAL(value_of(kv3, "t:db"), "three");
	c = direct(sock_main);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	r = redisCommand(c, "SELECT 3");
	freeReplyObject(r);
	r = redisCommand(c, "GET t:db");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->type, REDIS_REPLY_STRING);
	CU_ASSERT_STRING_EQUAL(r->str, "three");
	freeReplyObject(r);
	redisFree(c);
	kv_close(kv0);
	kv_close(kv3);
}

static void
test_password(void)
{
	struct kv_store *kv;
	const char *log;
	double t0, t;

	kv = open_unix(sock_pw, 0, "right-one");
	CU_ASSERT_EQUAL(kv_set(kv, "t:pw", "ok", 2, 0), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:pw"), "ok");
	kv_close(kv);

	kv = open_unix(sock_pw, 0, "wrong-one");
	unit_capture_start();
	t0 = now_s();
	CU_ASSERT_EQUAL(kv_set(kv, "t:pw", "no", 2, 0), MH_E_UNAVAILABLE);
	t = now_s() - t0;
	log = unit_capture_end(true);
	CU_ASSERT_PTR_NOT_NULL(strstr(log, "AUTH refused"));
	CU_ASSERT_PTR_NOT_NULL(strstr(log, sock_pw));
	CU_ASSERT_TRUE(t < 0.1);
	/* In the backoff now: at once, and logged once. */
	unit_capture_start();
	CU_ASSERT_EQUAL(kv_get(kv, "t:pw", NULL, 0, NULL), MH_E_UNAVAILABLE);
	log = unit_capture_end(true);
	CU_ASSERT_STRING_EQUAL(log, "");
	kv_close(kv);

	/* No password at all: Redis says NOAUTH, the call fails. */
	kv = open_unix(sock_pw, 0, NULL);
	CU_ASSERT_EQUAL(kv_set(kv, "t:pw", "no", 2, 0), MH_E_UNAVAILABLE);
	kv_close(kv);
	kv = open_unix(sock_pw, 0, "right-one");
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:pw"), "ok");
	kv_close(kv);
}

#define THREADS 8
#define PER_THREAD 300

static void *
incr_thread(void *arg)
{
	struct kv_store *kv = arg;
	long failed = 0;

	for (int i = 0; i < PER_THREAD; i++)
		if (kv_incr(kv, "t:conc", 1, 0, NULL) != MH_OK)
			failed++;
	return (void *)failed;
}

static void
test_threads(void)
{
	struct kv_store *kv = open_unix(sock_main, 0, NULL);
	pthread_t th[THREADS];
	long long n = 0;

	kv_delete(kv, "t:conc");
	for (int i = 0; i < THREADS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, incr_thread,
		    kv), 0);
	for (int i = 0; i < THREADS; i++) {
		void *failed;

		pthread_join(th[i], &failed);
		CU_ASSERT_EQUAL((long)failed, 0);
	}
	CU_ASSERT_EQUAL(kv_incr(kv, "t:conc", 0, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, THREADS * PER_THREAD);
	kv_close(kv);
}

/* Redis killed: the calls fail at once (a closed socket), or within the
 * timeout; during the backoff at once; and they work again after Redis
 * is back, by themselves. */
static void
test_redis_killed(void)
{
	struct kv_store *kv;
	double t0, t, worst = 0;
	int rc = MH_OK, calls;

	pid_dead = start_redis(sock_dead, NULL);
	kv = open_unix(sock_dead, 0, NULL);
	CU_ASSERT_EQUAL(kv_set(kv, "t:k", "1", 1, 0), MH_OK);
	stop_redis(&pid_dead);
	unit_capture_start();
	for (int i = 0; i < 20; i++) {
		t0 = now_s();
		rc = kv_incr(kv, "t:k", 1, 0, NULL);
		t = now_s() - t0;
		CU_ASSERT_EQUAL(rc, MH_E_UNAVAILABLE);
		if (t > worst)
			worst = t;
		usleep(20000);
	}
	unit_capture_end(true);
	printf("\n    redis killed: 20 calls, slowest %.1f ms "
	    "(kv_timeout_ms %d)\n", worst * 1000, TIMEOUT_MS);
	CU_ASSERT_TRUE(worst < TIMEOUT_MS / 1000.0 + 0.05);
	pid_dead = start_redis(sock_dead, NULL);
	t0 = now_s();
	calls = 0;
	unit_capture_start();
	do {
		rc = kv_set(kv, "t:k", "2", 1, 0);
		calls++;
		if (rc != MH_OK)
			usleep(20000);
	} while (rc != MH_OK && now_s() - t0 < 7);
	unit_capture_end(true);
	printf("    back %.0f ms after the restart, %d calls\n",
	    (now_s() - t0) * 1000, calls);
	CU_ASSERT_EQUAL(rc, MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:k"), "2");
	/* Restarted while the connection was idle: the next call reopens it
	 * at once and works, without a failure, or a log line. */
	stop_redis(&pid_dead);
	pid_dead = start_redis(sock_dead, NULL);
	unit_capture_start();
	CU_ASSERT_EQUAL(kv_set(kv, "t:k", "3", 1, 0), MH_OK);
	CU_ASSERT_STRING_EQUAL(unit_capture_end(true), "");
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t:k"), "3");
	kv_close(kv);
	stop_redis(&pid_dead);
}

/* A server that accepts connections and never answers. */
static void
blackhole(struct kv_store *kv, const char *what)
{
	double t0, t;

	unit_capture_start();
	t0 = now_s();
	CU_ASSERT_EQUAL(kv_get(kv, "t:x", NULL, 0, NULL), MH_E_UNAVAILABLE);
	t = now_s() - t0;
	printf("\n    %s blackhole: the first call failed in %.1f ms "
	    "(kv_timeout_ms %d)", what, t * 1000, TIMEOUT_MS);
	CU_ASSERT_TRUE(t >= TIMEOUT_MS / 1000.0 - 0.01);
	CU_ASSERT_TRUE(t < TIMEOUT_MS / 1000.0 + 0.05);
	t0 = now_s();
	CU_ASSERT_EQUAL(kv_set(kv, "t:x", "1", 1, 0), MH_E_UNAVAILABLE);
	t = now_s() - t0;
	printf(", the next one (backoff) in %.3f ms", t * 1000);
	CU_ASSERT_TRUE(t < 0.005);
	/* After the backoff, a new attempt: the timeout again, no more. */
	usleep(150000);
	t0 = now_s();
	CU_ASSERT_EQUAL(kv_incr(kv, "t:x", 1, 0, NULL), MH_E_UNAVAILABLE);
	t = now_s() - t0;
	printf(", after the backoff in %.1f ms\n", t * 1000);
	CU_ASSERT_TRUE(t < TIMEOUT_MS / 1000.0 + 0.05);
	unit_capture_end(true);
}

static void
test_blackhole_unix(void)
{
	struct sockaddr_un sun;
	struct kv_store *kv;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "%s", sock_hole);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sun, sizeof sun),
	    0);
	CU_ASSERT_EQUAL_FATAL(listen(fd, 16), 0);
	kv = open_unix(sock_hole, 0, NULL);
	blackhole(kv, "unix");
	kv_close(kv);
	close(fd);
}

static void
test_blackhole_tcp(void)
{
	struct sockaddr_in sin;
	socklen_t slen = sizeof sin;
	struct kv_store *kv;
	struct kv_spec spec;
	char err[200];
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	CU_ASSERT_TRUE_FATAL(fd >= 0);
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CU_ASSERT_EQUAL_FATAL(bind(fd, (struct sockaddr *)&sin, sizeof sin),
	    0);
	CU_ASSERT_EQUAL_FATAL(listen(fd, 16), 0);
	CU_ASSERT_EQUAL_FATAL(getsockname(fd, (struct sockaddr *)&sin,
	    &slen), 0);
	kv_spec_default(&spec);
	CU_ASSERT_TRUE_FATAL(kv_parse_spec("redis://127.0.0.1:1/2", &spec));
	spec.port = ntohs(sin.sin_port);
	spec.timeout_ms = TIMEOUT_MS;
	kv = kv_open(&spec, err, sizeof err);
	CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
	blackhole(kv, "tcp (SELECT 2)");
	kv_close(kv);
	close(fd);
}

/* One call on a thread of its own, which then ends. */
static void *
one_call(void *arg)
{
	return kv_set(arg, "t:thread", "1", 1, 0) == MH_OK ? NULL : "failed";
}

static void
expect_connects(struct kv_store *kv, uint64_t ok, uint64_t failed,
    uint64_t open)
{
	struct kv_stats st;

	kv_stats(kv, &st);
	CU_ASSERT_STRING_EQUAL(st.backend, "redis");
	CU_ASSERT_EQUAL(st.redis_connects_ok, ok);
	CU_ASSERT_EQUAL(st.redis_connects_failed, failed);
	CU_ASSERT_EQUAL(st.redis_connections, open);
	CU_ASSERT_EQUAL(st.memory_max, 0);
}

/* The statistics: connection attempts by result, connections open (a
 * thread's closed when it ends), calls by result through an outage. */
static void
test_stats(void)
{
	struct kv_store *kv;
	struct kv_stats st;
	pthread_t t;
	void *rc;

	pid_dead = start_redis(sock_dead, NULL);
	kv = open_unix(sock_dead, 0, NULL);
	CU_ASSERT_EQUAL_FATAL(kv_stats_enable(kv), 0);
	expect_connects(kv, 0, 0, 0);
	CU_ASSERT_EQUAL(kv_set(kv, "t:s", "x", 1, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_get(kv, "t:s", NULL, 0, NULL), MH_OK);
	CU_ASSERT_EQUAL(kv_get(kv, "t:none", NULL, 0, NULL), MH_E_NOTFOUND);
	CU_ASSERT_EQUAL(kv_add(kv, "t:s", "y", 1, 0), MH_E_EXISTS);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:s", 1, 0, NULL), MH_E_INVALID);
	CU_ASSERT_EQUAL(kv_delete(kv, "t:s"), MH_OK);
	expect_connects(kv, 1, 0, 1);
	/* Another thread: a connection of its own, closed as it ends. */
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, one_call, kv), 0);
	pthread_join(t, &rc);
	CU_ASSERT_PTR_NULL(rc);
	expect_connects(kv, 2, 0, 1);
	/* Killed: the idle connection is found closed, the new one is
	 * refused; the next call, in the backoff, tries nothing. */
	stop_redis(&pid_dead);
	unit_capture_start();
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", 1, 0, NULL), MH_E_UNAVAILABLE);
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", 1, 0, NULL), MH_E_UNAVAILABLE);
	unit_capture_end(true);
	expect_connects(kv, 2, 1, 0);
	/* Back, after the backoff of 100 ms. */
	pid_dead = start_redis(sock_dead, NULL);
	usleep(150000);
	unit_capture_start();
	CU_ASSERT_EQUAL(kv_incr(kv, "t:n", 1, 0, NULL), MH_OK);
	unit_capture_end(true);
	expect_connects(kv, 3, 1, 1);
	kv_stats(kv, &st);
	CU_ASSERT_EQUAL(st.calls[KV_OP_SET][KV_R_OK], 2);
	CU_ASSERT_EQUAL(st.calls[KV_OP_GET][KV_R_OK], 1);
	CU_ASSERT_EQUAL(st.calls[KV_OP_GET][KV_R_NOTFOUND], 1);
	CU_ASSERT_EQUAL(st.calls[KV_OP_ADD][KV_R_EXISTS], 1);
	CU_ASSERT_EQUAL(st.calls[KV_OP_INCR][KV_R_INVALID], 1);
	CU_ASSERT_EQUAL(st.calls[KV_OP_INCR][KV_R_UNAVAILABLE], 2);
	CU_ASSERT_EQUAL(st.calls[KV_OP_INCR][KV_R_OK], 1);
	CU_ASSERT_EQUAL(st.calls[KV_OP_DELETE][KV_R_OK], 1);
	kv_close(kv);
	stop_redis(&pid_dead);

	/* A refused AUTH: a failed attempt, its connection closed. */
	kv = open_unix(sock_pw, 0, "wrong-one");
	unit_capture_start();
	CU_ASSERT_EQUAL(kv_get(kv, "t:pw", NULL, 0, NULL), MH_E_UNAVAILABLE);
	unit_capture_end(true);
	expect_connects(kv, 0, 1, 0);
	kv_close(kv);
}

static const struct unit_test tests[] = {
	TEST(test_set_get_delete),
	TEST(test_add),
	TEST(test_expiry),
	TEST(test_incr),
	TEST(test_db),
	TEST(test_password),
	TEST(test_threads),
	TEST(test_redis_killed),
	TEST(test_blackhole_unix),
	TEST(test_blackhole_tcp),
	TEST(test_stats),
	TEST_END,
};

static void
cleanup_dir(void)
{
	char cmd[200];

	stop_all();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

int
main(void)
{
	static const struct unit_suite suites[] = {
		{ "kv_redis", NULL, NULL, tests },
		{ NULL, NULL, NULL, NULL },
	};
	int rc;

	if (system("command -v redis-server >/dev/null 2>&1") != 0) {
		printf("SKIP: redis-server is not installed (on Debian: "
		    "apt-get install redis-server)\n");
		return 77;
	}
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 99;
	}
	snprintf(sock_main, sizeof sock_main, "%s/main.sock", dir);
	snprintf(sock_pw, sizeof sock_pw, "%s/pw.sock", dir);
	snprintf(sock_dead, sizeof sock_dead, "%s/dead.sock", dir);
	snprintf(sock_hole, sizeof sock_hole, "%s/hole.sock", dir);
	log_open(true, LOG_MAIL, LOG_DEBUG);
	pid_main = start_redis(sock_main, NULL);
	pid_pw = start_redis(sock_pw, "right-one");
	rc = unit_run(suites);
	cleanup_dir();
	return rc;
}

/*
 * kv - the key-value store: its settings, its keys, the choice of a
 * backend, and the statistics of the calls.  See kv.h.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv.h"

#define ADD(counter, n) __atomic_fetch_add(&(counter), (n), __ATOMIC_RELAXED)
#define GET(counter) __atomic_load_n(&(counter), __ATOMIC_RELAXED)

const char *const kv_op_names[KV_OPS] = {
	[KV_OP_GET] = "get", [KV_OP_SET] = "set", [KV_OP_ADD] = "add",
	[KV_OP_INCR] = "incr", [KV_OP_DELETE] = "delete",
};

const char *const kv_result_names[KV_RESULTS] = {
	[KV_R_OK] = "ok", [KV_R_NOTFOUND] = "notfound",
	[KV_R_EXISTS] = "exists", [KV_R_INVALID] = "invalid",
	[KV_R_UNAVAILABLE] = "unavailable", [KV_R_NOMEM] = "nomem",
};

/* A memory call takes a microsecond or two, one to Redis on loopback 50
 * to 200 us, one that times out kv_timeout_ms (250 ms by default). */
const uint64_t kv_time_le_ns[KV_TIME_BOUNDS] = {
	1000, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000, 25000000, 50000000,
	100000000, 250000000, 500000000, 1000000000
};

/*
 * The calls' counters, in STRIPES parts of their own cache lines: a
 * thread counts in one part (chosen at its first count, round robin),
 * with relaxed atomic adds, and kv_stats() sums the parts.  One copy of
 * the counters would be a cache line that every thread writes at every
 * call, the sharing between CPUs that the memory backend's shards are
 * there to avoid; with the parts, threads share one only when more than
 * STRIPES of them count.  Atomic adds all the same, for those that do.
 */
#define STRIPES 16

struct kv_stats_part {
	uint64_t calls[KV_OPS][KV_RESULTS];
	uint64_t buckets[KV_OPS][KV_TIME_BUCKETS]; /* not cumulative */
	uint64_t sum_ns[KV_OPS];
} __attribute__((aligned(64)));

static unsigned next_stripe;
static _Thread_local unsigned my_stripe = STRIPES;

void
kv_spec_default(struct kv_spec *spec)
{
	memset(spec, 0, sizeof *spec);
	spec->type = KV_MEMORY;
	spec->timeout_ms = KV_DEFAULT_TIMEOUT_MS;
	spec->memory_max = KV_DEFAULT_MEMORY_MAX;
}

/* Digits only, into 0..max. */
static bool
parse_unsigned(const char *s, size_t len, unsigned long max,
    unsigned long *out)
{
	unsigned long n = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		if (n > (max - (unsigned long)(s[i] - '0')) / 10)
			return false;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	*out = n;
	return true;
}

/* HOST:PORT[/DB] after "redis://"; HOST may be [IPv6]. */
static bool
parse_redis_tcp(const char *s, struct kv_spec *spec)
{
	const char *slash = strchr(s, '/'), *end, *colon;
	unsigned long port, db = 0;
	size_t hostlen;

	end = slash ? slash : s + strlen(s);
	if (slash != NULL && !parse_unsigned(slash + 1, strlen(slash + 1),
	    1000000, &db))
		return false;
	colon = NULL;
	for (const char *p = s; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon == NULL || !parse_unsigned(colon + 1,
	    (size_t)(end - colon - 1), 65535, &port) || port == 0)
		return false;
	hostlen = (size_t)(colon - s);
	if (hostlen >= 2 && s[0] == '[' && s[hostlen - 1] == ']') {
		s++;
		hostlen -= 2;
	}
	if (hostlen == 0 || hostlen >= sizeof spec->host)
		return false;
	for (size_t i = 0; i < hostlen; i++)
		if (!isgraph((unsigned char)s[i]) || s[i] == '@')
			return false;
	memcpy(spec->host, s, hostlen);
	spec->host[hostlen] = '\0';
	spec->port = (unsigned)port;
	spec->db = (unsigned)db;
	spec->type = KV_REDIS_TCP;
	return true;
}

bool
kv_parse_spec(const char *value, struct kv_spec *spec)
{
	if (strcmp(value, "memory") == 0) {
		spec->type = KV_MEMORY;
		return true;
	}
	if (strncmp(value, "redis://", 8) == 0)
		return parse_redis_tcp(value + 8, spec);
	if (strncmp(value, "unix:/", 6) == 0) {
		if (strlen(value + 5) >= sizeof spec->path)
			return false;
		strcpy(spec->path, value + 5);
		spec->type = KV_REDIS_UNIX;
		return true;
	}
	return false;
}

bool
kv_spec_equal(const struct kv_spec *a, const struct kv_spec *b)
{
	return a->type == b->type && strcmp(a->host, b->host) == 0 &&
	    a->port == b->port && a->db == b->db &&
	    strcmp(a->path, b->path) == 0 &&
	    strcmp(a->password, b->password) == 0 &&
	    a->timeout_ms == b->timeout_ms && a->memory_max == b->memory_max;
}

struct kv_store *
kv_open(const struct kv_spec *spec, char *err, size_t errlen)
{
	struct kv_store *kv;

	if (spec->type != KV_MEMORY) {
		if ((kv = kv_redis_open(spec)) == NULL)
			snprintf(err, errlen, "kv: out of memory for the "
			    "store");
		return kv;
	}
	if ((kv = kv_memory_open(spec->memory_max, KV_MEMORY_SHARDS,
	    NULL)) == NULL)
		snprintf(err, errlen, "kv: out of memory for the store");
	return kv;
}

void
kv_close(struct kv_store *kv)
{
	if (kv == NULL)
		return;
	kv->ops->free(kv->impl);
	free(kv->parts);
	free(kv);
}

/* ---- the calls, counted ------------------------------------------------ */

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

static enum kv_result
result_of(int rc)
{
	switch (rc) {
	case MH_OK:
		return KV_R_OK;
	case MH_E_NOTFOUND:
		return KV_R_NOTFOUND;
	case MH_E_EXISTS:
		return KV_R_EXISTS;
	case MH_E_UNAVAILABLE:
		return KV_R_UNAVAILABLE;
	case MH_E_NOMEM:
		return KV_R_NOMEM;
	default:
		/* MH_E_INVALID; a backend returns no other code. */
		return KV_R_INVALID;
	}
}

/* Count a call of op that started at t0 and returned rc; returns rc. */
static int
count(struct kv_store *kv, enum kv_op op, uint64_t t0, int rc)
{
	uint64_t ns = now_ns() - t0;
	struct kv_stats_part *p;
	size_t i = 0;

	if (my_stripe == STRIPES)
		my_stripe = ADD(next_stripe, 1) % STRIPES;
	p = &kv->parts[my_stripe];
	while (i < KV_TIME_BOUNDS && ns > kv_time_le_ns[i])
		i++;
	ADD(p->calls[op][result_of(rc)], 1);
	ADD(p->buckets[op][i], 1);
	ADD(p->sum_ns[op], ns);
	return rc;
}

int
kv_get(struct kv_store *kv, const char *key, void *buf, size_t size,
    size_t *len)
{
	uint64_t t0;

	if (kv->parts == NULL)
		return kv->ops->get(kv->impl, key, buf, size, len);
	t0 = now_ns();
	return count(kv, KV_OP_GET, t0,
	    kv->ops->get(kv->impl, key, buf, size, len));
}

int
kv_set(struct kv_store *kv, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	uint64_t t0;

	if (kv->parts == NULL)
		return kv->ops->set(kv->impl, key, value, len, ttl_s);
	t0 = now_ns();
	return count(kv, KV_OP_SET, t0,
	    kv->ops->set(kv->impl, key, value, len, ttl_s));
}

int
kv_add(struct kv_store *kv, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	uint64_t t0;

	if (kv->parts == NULL)
		return kv->ops->add(kv->impl, key, value, len, ttl_s);
	t0 = now_ns();
	return count(kv, KV_OP_ADD, t0,
	    kv->ops->add(kv->impl, key, value, len, ttl_s));
}

int
kv_incr(struct kv_store *kv, const char *key, long long by, unsigned ttl_s,
    long long *result)
{
	uint64_t t0;

	if (kv->parts == NULL)
		return kv->ops->incr(kv->impl, key, by, ttl_s, result);
	t0 = now_ns();
	return count(kv, KV_OP_INCR, t0,
	    kv->ops->incr(kv->impl, key, by, ttl_s, result));
}

int
kv_delete(struct kv_store *kv, const char *key)
{
	uint64_t t0;

	if (kv->parts == NULL)
		return kv->ops->del(kv->impl, key);
	t0 = now_ns();
	return count(kv, KV_OP_DELETE, t0, kv->ops->del(kv->impl, key));
}

int
kv_stats_enable(struct kv_store *kv)
{
	struct kv_stats_part *p;

	if (kv->parts != NULL)
		return 0;
	if ((p = aligned_alloc(64, STRIPES * sizeof *p)) == NULL)
		return -1;
	memset(p, 0, STRIPES * sizeof *p);
	kv->parts = p;
	return 0;
}

void
kv_stats(struct kv_store *kv, struct kv_stats *st)
{
	memset(st, 0, sizeof *st);
	st->backend = kv->ops->name;
	if (kv->parts != NULL) {
		st->calls_counted = true;
		for (size_t s = 0; s < STRIPES; s++) {
			struct kv_stats_part *p = &kv->parts[s];

			for (int op = 0; op < KV_OPS; op++) {
				for (int r = 0; r < KV_RESULTS; r++)
					st->calls[op][r] += GET(p->calls[op][r]);
				for (int b = 0; b < KV_TIME_BUCKETS; b++)
					st->buckets[op][b] +=
					    GET(p->buckets[op][b]);
				st->sum_ns[op] += GET(p->sum_ns[op]);
			}
		}
	}
	if (kv->ops->stats != NULL)
		kv->ops->stats(kv->impl, st);
}

/* Printable ASCII without spaces: what Redis and log lines take as is. */
bool
kv_key_ok(const char *key)
{
	size_t n = 0;

	for (; key[n] != '\0'; n++)
		if (key[n] <= ' ' || key[n] >= 127 || n >= MH_KV_KEY_MAX)
			return false;
	return n > 0;
}

/* As instance names: no ':', which ends the namespace in a full key. */
bool
kv_ns_ok(const char *name)
{
	size_t n = 0;

	for (; name[n] != '\0'; n++)
		if ((!isalnum((unsigned char)name[n]) && name[n] != '_' &&
		    name[n] != '.' && name[n] != '-') || n >= KV_NS_MAX)
			return false;
	return n > 0;
}

int
kv_full_key(char *buf, size_t size, const char *ns, const char *key)
{
	int n = snprintf(buf, size, "%s:%s", ns, key);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

bool
kv_parse_integer(const char *s, size_t len, long long *out)
{
	bool neg = len > 0 && s[0] == '-';
	unsigned long long n = 0, max;
	size_t i = neg ? 1 : 0;

	if (i == len || len > 20)
		return false;
	/* No "-0" and no leading zeros: the text must be the number's. */
	if (s[i] == '0' && (len > i + 1 || neg))
		return false;
	max = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	for (; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (!isdigit((unsigned char)s[i]) || n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = neg ? (long long)(0 - n) : (long long)n;
	return true;
}

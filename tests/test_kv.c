/*
 * test_kv - the key-value store (src/kv.c) and its memory backend
 * (src/kv_memory.c): every operation, expiry on a clock the test moves,
 * the eviction order at the size bound, exact counts from concurrent
 * increments, the statistics (calls by operation and result, their
 * times, size and evictions), and the settings' parsing.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kv.h"
#include "unit.h"

/* The store's clock: milliseconds the test sets. */
static uint64_t now_ms = 1000000;

static uint64_t
test_clock(void)
{
	return __atomic_load_n(&now_ms, __ATOMIC_RELAXED);
}

static void
advance(unsigned ms)
{
	__atomic_add_fetch(&now_ms, ms, __ATOMIC_RELAXED);
}

static struct kv_store *
open_store(size_t max, unsigned nshards)
{
	struct kv_store *kv = kv_memory_open(max, nshards, test_clock);

	CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
	return kv;
}

/* The value of key as a string, or NULL if absent. */
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

static void
test_set_get_delete(void)
{
	struct kv_store *kv = open_store(KV_DEFAULT_MEMORY_MAX, 64);
	char small[3];
	size_t len = 0;

	CU_ASSERT_EQUAL(kv_get(kv, "a:x", small, sizeof small, &len),
	    MH_E_NOTFOUND);
	CU_ASSERT_EQUAL(kv_set(kv, "a:x", "hello", 5, 0), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "a:x"), "hello");
	/* Cut to the buffer, the whole length in *len. */
	CU_ASSERT_EQUAL(kv_get(kv, "a:x", small, sizeof small, &len), MH_OK);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_EQUAL(memcmp(small, "hel", 3), 0);
	/* Only the length; no length at all. */
	CU_ASSERT_EQUAL(kv_get(kv, "a:x", NULL, 0, &len), MH_OK);
	CU_ASSERT_EQUAL(len, 5);
	CU_ASSERT_EQUAL(kv_get(kv, "a:x", small, sizeof small, NULL), MH_OK);
	/* Replaced; an empty value is a value. */
	CU_ASSERT_EQUAL(kv_set(kv, "a:x", "", 0, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_get(kv, "a:x", NULL, 0, &len), MH_OK);
	CU_ASSERT_EQUAL(len, 0);
	/* Binary values, the largest one. */
	{
		static char big[MH_KV_VALUE_MAX], back[MH_KV_VALUE_MAX];

		for (size_t i = 0; i < sizeof big; i++)
			big[i] = (char)(i * 7);
		CU_ASSERT_EQUAL(kv_set(kv, "a:big", big, sizeof big, 0),
		    MH_OK);
		CU_ASSERT_EQUAL(kv_get(kv, "a:big", back, sizeof back, &len),
		    MH_OK);
		CU_ASSERT_EQUAL(len, sizeof big);
		CU_ASSERT_EQUAL(memcmp(big, back, sizeof big), 0);
	}
	CU_ASSERT_EQUAL(kv_delete(kv, "a:x"), MH_OK);
	CU_ASSERT_EQUAL(kv_get(kv, "a:x", NULL, 0, &len), MH_E_NOTFOUND);
	/* Deleting what is not there is no error. */
	CU_ASSERT_EQUAL(kv_delete(kv, "a:x"), MH_OK);
	kv_close(kv);
}

static void
test_add(void)
{
	struct kv_store *kv = open_store(KV_DEFAULT_MEMORY_MAX, 64);

	CU_ASSERT_EQUAL(kv_add(kv, "k", "1", 1, 10), MH_OK);
	CU_ASSERT_EQUAL(kv_add(kv, "k", "2", 1, 0), MH_E_EXISTS);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "k"), "1");
	/* The refused add did not touch the expiry: gone after 10 s. */
	advance(10000);
	CU_ASSERT_PTR_NULL(value_of(kv, "k"));
	/* Expired is absent: add succeeds. */
	CU_ASSERT_EQUAL(kv_set(kv, "k", "3", 1, 1), MH_OK);
	advance(1000);
	CU_ASSERT_EQUAL(kv_add(kv, "k", "4", 1, 0), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "k"), "4");
	kv_close(kv);
}

static void
test_expiry(void)
{
	struct kv_store *kv = open_store(KV_DEFAULT_MEMORY_MAX, 64);

	CU_ASSERT_EQUAL(kv_set(kv, "t", "v", 1, 2), MH_OK);
	CU_ASSERT_EQUAL(kv_set(kv, "forever", "v", 1, 0), MH_OK);
	advance(1999);
	CU_ASSERT_PTR_NOT_NULL(value_of(kv, "t"));
	advance(1);
	CU_ASSERT_PTR_NULL(value_of(kv, "t"));
	advance(1000u * 86400 * 30);
	CU_ASSERT_PTR_NOT_NULL(value_of(kv, "forever"));
	/* set with 0 removes a time to live. */
	CU_ASSERT_EQUAL(kv_set(kv, "t", "v", 1, 1), MH_OK);
	CU_ASSERT_EQUAL(kv_set(kv, "t", "w", 1, 0), MH_OK);
	advance(5000);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "t"), "w");
	kv_close(kv);
}

/* Expired entries go without being read: the writes sweep them. */
static void
test_lazy_sweep(void)
{
	struct kv_store *kv = open_store(KV_DEFAULT_MEMORY_MAX, 1);
	size_t bytes, entries;
	char key[32];

	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "old%d", i);
		CU_ASSERT_EQUAL(kv_set(kv, key, "x", 1, 1), MH_OK);
	}
	advance(1000);
	for (int i = 0; i < 20; i++) {
		snprintf(key, sizeof key, "new%d", i);
		CU_ASSERT_EQUAL(kv_set(kv, key, "x", 1, 0), MH_OK);
	}
	kv_memory_usage(kv, &bytes, &entries);
	CU_ASSERT_EQUAL(entries, 20);
	kv_close(kv);
}

static void
test_incr(void)
{
	struct kv_store *kv = open_store(KV_DEFAULT_MEMORY_MAX, 64);
	long long n = 0;

	CU_ASSERT_EQUAL(kv_incr(kv, "c", 5, 60, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 5);
	/* A later ttl does not move the creation's. */
	advance(59000);
	CU_ASSERT_EQUAL(kv_incr(kv, "c", -7, 3600, &n), MH_OK);
	CU_ASSERT_EQUAL(n, -2);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "c"), "-2");
	advance(1000);
	CU_ASSERT_PTR_NULL(value_of(kv, "c"));
	/* After expiry it starts again, with the new ttl. */
	CU_ASSERT_EQUAL(kv_incr(kv, "c", 1, 0, NULL), MH_OK);
	advance(7200000);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "c"), "1");
	/* A set value that is an integer counts on, growing in length. */
	CU_ASSERT_EQUAL(kv_set(kv, "s", "9", 1, 5), MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "s", 1000000000000LL, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 1000000000009LL);
	advance(5000);
	CU_ASSERT_PTR_NULL(value_of(kv, "s"));
	/* Not a decimal integer, or out of range: invalid, unchanged. */
	static const char *const bad[] = { "abc", "1.5", " 1", "1 ", "+1",
	    "", "-", "01", "-0", "9223372036854775808" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CU_ASSERT_EQUAL(kv_set(kv, "b", bad[i], strlen(bad[i]), 0),
		    MH_OK);
		CU_ASSERT_EQUAL(kv_incr(kv, "b", 1, 0, &n), MH_E_INVALID);
		CU_ASSERT_STRING_EQUAL(value_of(kv, "b"), bad[i]);
	}
	CU_ASSERT_EQUAL(kv_set(kv, "b", "9223372036854775807", 19, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "b", 1, 0, &n), MH_E_INVALID);
	CU_ASSERT_EQUAL(kv_incr(kv, "b", -1, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, 9223372036854775806LL);
	CU_ASSERT_EQUAL(kv_set(kv, "b", "-9223372036854775808", 20, 0),
	    MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "b", -1, 0, &n), MH_E_INVALID);
	CU_ASSERT_EQUAL(kv_incr(kv, "b", 0, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, LLONG_MIN);
	kv_close(kv);
}

/*
 * One shard of a store of 4 entries' worth: what goes first when full.
 * Each entry costs the same (keys and values of one length).
 */
static size_t
one_cost(void)
{
	struct kv_store *kv = open_store(1 << 20, 1);
	size_t bytes, entries;

	kv_set(kv, "k0", "vv", 2, 0);
	kv_memory_usage(kv, &bytes, &entries);
	kv_close(kv);
	return bytes;
}

/* The live entries the store evicted for room, from its statistics. */
static uint64_t
evictions(struct kv_store *kv)
{
	struct kv_stats st;

	kv_stats(kv, &st);
	return st.memory_evictions;
}

static void
test_eviction_order(void)
{
	size_t cost = one_cost();
	struct kv_store *kv = open_store(4 * cost, 1);
	size_t bytes, entries;

	/* k1 no ttl, k2 ttl 100 s, k3 ttl 50 s, k4 no ttl (newer). */
	kv_set(kv, "k1", "vv", 2, 0);
	advance(1);
	kv_set(kv, "k2", "vv", 2, 100);
	advance(1);
	kv_set(kv, "k3", "vv", 2, 50);
	advance(1);
	kv_set(kv, "k4", "vv", 2, 0);
	kv_memory_usage(kv, &bytes, &entries);
	CU_ASSERT_EQUAL(entries, 4);
	CU_ASSERT_EQUAL(bytes, 4 * cost);
	CU_ASSERT_EQUAL(evictions(kv), 0);
	/* Full: the soonest to expire goes (k3), then k2. */
	kv_set(kv, "k5", "vv", 2, 0);
	CU_ASSERT_PTR_NULL(value_of(kv, "k3"));
	CU_ASSERT_PTR_NOT_NULL(value_of(kv, "k2"));
	CU_ASSERT_EQUAL(evictions(kv), 1);
	kv_set(kv, "k6", "vv", 2, 0);
	CU_ASSERT_PTR_NULL(value_of(kv, "k2"));
	/* Then the entries without ttl, oldest first: k1, k4. */
	kv_set(kv, "k7", "vv", 2, 0);
	CU_ASSERT_PTR_NULL(value_of(kv, "k1"));
	CU_ASSERT_PTR_NOT_NULL(value_of(kv, "k4"));
	kv_set(kv, "k8", "vv", 2, 0);
	CU_ASSERT_PTR_NULL(value_of(kv, "k4"));
	CU_ASSERT_PTR_NOT_NULL(value_of(kv, "k5"));
	CU_ASSERT_EQUAL(evictions(kv), 4);
	/* A key replaced is no eviction. */
	kv_set(kv, "k5", "vv", 2, 1);
	CU_ASSERT_EQUAL(evictions(kv), 4);
	/* An expired entry goes before one that would expire later, even
	 * before one without ttl that is older; it was gone anyway, so it
	 * is not counted as evicted. */
	advance(1000);
	kv_set(kv, "k9", "vv", 2, 0);
	CU_ASSERT_PTR_NULL(value_of(kv, "k5"));
	CU_ASSERT_PTR_NOT_NULL(value_of(kv, "k6"));
	CU_ASSERT_EQUAL(evictions(kv), 4);
	kv_memory_usage(kv, &bytes, &entries);
	CU_ASSERT(bytes <= 4 * cost);
	CU_ASSERT_EQUAL(entries, 4);
	/* A value larger than the whole shard is refused, evicting none. */
	{
		static char big[MH_KV_VALUE_MAX];

		CU_ASSERT_EQUAL(kv_set(kv, "huge", big, sizeof big, 0),
		    MH_E_NOMEM);
	}
	CU_ASSERT_EQUAL(evictions(kv), 4);
	/* An incr that moves a value to a larger entry evicts for it. */
	kv_set(kv, "k6", "1", 1, 0);
	kv_set(kv, "k9", "vvv", 3, 0);
	CU_ASSERT_EQUAL(kv_incr(kv, "k6", 1000, 0, NULL), MH_OK);
	CU_ASSERT_STRING_EQUAL(value_of(kv, "k6"), "1001");
	CU_ASSERT_EQUAL(evictions(kv), 5);
	kv_close(kv);
}

/*
 * Evictions count live entries only: with more expired entries than a
 * write's sweep takes (8), the write that needs their room removes the
 * rest of them by eviction, and they were gone anyway.
 */
static void
test_evictions_expired(void)
{
	size_t cost = one_cost();
	struct kv_store *kv = open_store(12 * cost, 1);
	static char val[MH_KV_VALUE_MAX];
	size_t bytes, entries;
	char key[32];

	/* Keys of 2 bytes, as one_cost()'s: 12 fit, none evicted. */
	for (int i = 0; i < 12; i++) {
		snprintf(key, sizeof key, "e%c", 'a' + i);
		CU_ASSERT_EQUAL(kv_set(kv, key, "vv", 2, 1), MH_OK);
	}
	CU_ASSERT_EQUAL(evictions(kv), 0);
	advance(1000);
	/* 8 swept, 4 left: an entry of nearly 12 costs evicts them. */
	CU_ASSERT_FATAL(11 * cost < sizeof val);
	CU_ASSERT_EQUAL(kv_set(kv, "bb", val, 11 * cost, 0), MH_OK);
	kv_memory_usage(kv, &bytes, &entries);
	CU_ASSERT_EQUAL(entries, 1);
	CU_ASSERT_EQUAL(evictions(kv), 0);
	/* A live one pushed out by the next is counted. */
	CU_ASSERT_EQUAL(kv_set(kv, "cc", val, 11 * cost, 0), MH_OK);
	CU_ASSERT_PTR_NULL(value_of(kv, "bb"));
	CU_ASSERT_EQUAL(evictions(kv), 1);
	kv_close(kv);
}

/* The bound holds over many writes, across shards. */
static void
test_bound_holds(void)
{
	struct kv_store *kv = open_store(KV_MEMORY_MIN, 64);
	static char val[1000];
	size_t bytes, entries;
	char key[32];

	for (int i = 0; i < 20000; i++) {
		snprintf(key, sizeof key, "key%d", i);
		CU_ASSERT_EQUAL_FATAL(kv_set(kv, key, val, sizeof val,
		    (unsigned)(i % 7)), MH_OK);
	}
	kv_memory_usage(kv, &bytes, &entries);
	CU_ASSERT(bytes <= KV_MEMORY_MIN);
	CU_ASSERT(entries > 1000 && entries < 20000);
	kv_close(kv);
}

/* The calls of a known sequence, by operation and result, with their
 * times; the memory store's size. */
static void
test_stats_calls(void)
{
	/* Shards of 32 KB: a value of 64 KB is refused. */
	struct kv_store *kv = open_store(KV_MEMORY_MIN, 256);
	static char big[MH_KV_VALUE_MAX];
	struct kv_stats st;
	size_t bytes, entries;

	/* Not counted before kv_stats_enable(): no cost, nothing to see. */
	CU_ASSERT_EQUAL(kv_set(kv, "n:early", "x", 1, 0), MH_OK);
	kv_stats(kv, &st);
	CU_ASSERT_STRING_EQUAL(st.backend, "memory");
	CU_ASSERT_FALSE(st.calls_counted);
	CU_ASSERT_EQUAL(st.calls[KV_OP_SET][KV_R_OK], 0);
	CU_ASSERT_EQUAL(st.memory_entries, 1);
	CU_ASSERT_EQUAL(kv_stats_enable(kv), 0);
	/* Twice is once. */
	CU_ASSERT_EQUAL(kv_stats_enable(kv), 0);

	CU_ASSERT_EQUAL(kv_get(kv, "n:a", NULL, 0, NULL), MH_E_NOTFOUND);
	CU_ASSERT_EQUAL(kv_set(kv, "n:a", "1", 1, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_get(kv, "n:a", NULL, 0, NULL), MH_OK);
	CU_ASSERT_EQUAL(kv_add(kv, "n:a", "2", 1, 0), MH_E_EXISTS);
	CU_ASSERT_EQUAL(kv_add(kv, "n:b", "2", 1, 60), MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "n:a", 1, 0, NULL), MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "n:new", 1, 0, NULL), MH_OK);
	CU_ASSERT_EQUAL(kv_set(kv, "n:c", "x", 1, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_incr(kv, "n:c", 1, 0, NULL), MH_E_INVALID);
	CU_ASSERT_EQUAL(kv_delete(kv, "n:a"), MH_OK);
	CU_ASSERT_EQUAL(kv_delete(kv, "n:none"), MH_OK);
	/* Larger than a shard: refused. */
	CU_ASSERT_EQUAL(kv_set(kv, "n:big", big, sizeof big, 0), MH_E_NOMEM);
	kv_stats(kv, &st);
	CU_ASSERT_TRUE(st.calls_counted);
	{
		static const uint64_t want[KV_OPS][KV_RESULTS] = {
			[KV_OP_GET] = { [KV_R_OK] = 1, [KV_R_NOTFOUND] = 1 },
			[KV_OP_SET] = { [KV_R_OK] = 2, [KV_R_NOMEM] = 1 },
			[KV_OP_ADD] = { [KV_R_OK] = 1, [KV_R_EXISTS] = 1 },
			[KV_OP_INCR] = { [KV_R_OK] = 2, [KV_R_INVALID] = 1 },
			[KV_OP_DELETE] = { [KV_R_OK] = 2 },
		};

		for (int op = 0; op < KV_OPS; op++)
			for (int r = 0; r < KV_RESULTS; r++)
				if (st.calls[op][r] != want[op][r]) {
					printf("\n    %s %s: %llu, want %llu",
					    kv_op_names[op], kv_result_names[r],
					    (unsigned long long)st.calls[op][r],
					    (unsigned long long)want[op][r]);
					CU_FAIL("calls by operation and result");
				}
	}
	/* Every call timed once, within a second (the last bucket is
	 * +Inf), and the buckets' bounds rise. */
	for (int op = 0; op < KV_OPS; op++) {
		uint64_t calls = 0, timed = 0;

		for (int r = 0; r < KV_RESULTS; r++)
			calls += st.calls[op][r];
		for (int b = 0; b < KV_TIME_BUCKETS; b++)
			timed += st.buckets[op][b];
		CU_ASSERT_EQUAL(timed, calls);
		CU_ASSERT_EQUAL(st.buckets[op][KV_TIME_BOUNDS], 0);
		CU_ASSERT_TRUE(st.sum_ns[op] > 0);
		CU_ASSERT_TRUE(st.sum_ns[op] < calls * 1000000000ULL);
	}
	for (int b = 1; b < KV_TIME_BOUNDS; b++)
		CU_ASSERT_TRUE(kv_time_le_ns[b] > kv_time_le_ns[b - 1]);
	CU_ASSERT_EQUAL(kv_time_le_ns[0], 1000);
	CU_ASSERT_EQUAL(kv_time_le_ns[KV_TIME_BOUNDS - 1], 1000000000);
	/* The size, as kv_memory_usage() says; the bound. */
	kv_memory_usage(kv, &bytes, &entries);
	CU_ASSERT_EQUAL(st.memory_bytes, bytes);
	CU_ASSERT_EQUAL(st.memory_entries, entries);
	CU_ASSERT_EQUAL(entries, 4); /* early, b, new, c */
	CU_ASSERT_EQUAL(st.memory_max, KV_MEMORY_MIN);
	CU_ASSERT_EQUAL(st.memory_evictions, 0);
	CU_ASSERT_EQUAL(st.redis_connects_ok + st.redis_connects_failed, 0);
	kv_close(kv);
}

/* A clock that takes 30 ms to read: every call of a store on it takes
 * that long at least (it reads the clock once). */
static uint64_t
slow_clock(void)
{
	struct timespec ts = { 0, 30000000 };

	while (nanosleep(&ts, &ts) < 0)
		continue;
	return test_clock();
}

/* The time of a call lands in its bucket: above 25 ms, within 1 s. */
static void
test_stats_times(void)
{
	struct kv_store *kv = kv_memory_open(KV_MEMORY_MIN, 64, slow_clock);
	struct kv_stats st;

	CU_ASSERT_PTR_NOT_NULL_FATAL(kv);
	CU_ASSERT_EQUAL_FATAL(kv_stats_enable(kv), 0);
	CU_ASSERT_EQUAL(kv_set(kv, "t:a", "1", 1, 0), MH_OK);
	CU_ASSERT_EQUAL(kv_set(kv, "t:a", "2", 1, 0), MH_OK);
	kv_stats(kv, &st);
	for (int b = 0; b < KV_TIME_BOUNDS && kv_time_le_ns[b] <= 25000000;
	    b++)
		CU_ASSERT_EQUAL(st.buckets[KV_OP_SET][b], 0);
	CU_ASSERT_EQUAL(st.buckets[KV_OP_SET][KV_TIME_BOUNDS], 0);
	{
		uint64_t timed = 0;

		for (int b = 0; b < KV_TIME_BUCKETS; b++)
			timed += st.buckets[KV_OP_SET][b];
		CU_ASSERT_EQUAL(timed, 2);
	}
	CU_ASSERT_TRUE(st.sum_ns[KV_OP_SET] >= 60000000);
	CU_ASSERT_EQUAL(st.sum_ns[KV_OP_GET], 0);
	kv_close(kv);
}

#define THREADS 64
#define INCREMENTS 5000

static void *
incr_many(void *arg)
{
	struct kv_store *kv = arg;

	for (int i = 0; i < INCREMENTS; i++)
		if (kv_incr(kv, "ns:hits", 1, 0, NULL) != MH_OK)
			return "incr failed";
	return NULL;
}

static void
test_concurrent_increments(void)
{
	struct kv_store *kv = open_store(KV_DEFAULT_MEMORY_MAX, 64);
	pthread_t t[THREADS];
	struct kv_stats st;
	long long n = 0;
	void *rc;

	/* Counted in parts by thread: the sum is exact all the same. */
	CU_ASSERT_EQUAL_FATAL(kv_stats_enable(kv), 0);
	for (int i = 0; i < THREADS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, incr_many,
		    kv), 0);
	for (int i = 0; i < THREADS; i++) {
		pthread_join(t[i], &rc);
		CU_ASSERT_PTR_NULL(rc);
	}
	CU_ASSERT_EQUAL(kv_incr(kv, "ns:hits", 0, 0, &n), MH_OK);
	CU_ASSERT_EQUAL(n, (long long)THREADS * INCREMENTS);
	kv_stats(kv, &st);
	CU_ASSERT_EQUAL(st.calls[KV_OP_INCR][KV_R_OK],
	    (uint64_t)THREADS * INCREMENTS + 1);
	{
		uint64_t timed = 0;

		for (int b = 0; b < KV_TIME_BUCKETS; b++)
			timed += st.buckets[KV_OP_INCR][b];
		CU_ASSERT_EQUAL(timed, (uint64_t)THREADS * INCREMENTS + 1);
	}
	kv_close(kv);
}

/* Keys with namespaces do not meet, whatever the key part holds. */
static void
test_namespaces(void)
{
	struct kv_store *kv = open_store(KV_DEFAULT_MEMORY_MAX, 64);
	char a[KV_FULL_KEY_MAX], b[KV_FULL_KEY_MAX], longname[KV_NS_MAX + 2];

	CU_ASSERT_EQUAL(kv_full_key(a, sizeof a, "one", "k:x"), 0);
	CU_ASSERT_EQUAL(kv_full_key(b, sizeof b, "two", "k:x"), 0);
	CU_ASSERT_STRING_EQUAL(a, "one:k:x");
	kv_set(kv, a, "1", 1, 0);
	kv_set(kv, b, "2", 1, 0);
	CU_ASSERT_STRING_EQUAL(value_of(kv, a), "1");
	CU_ASSERT_STRING_EQUAL(value_of(kv, b), "2");
	/* The longest namespace and key fit. */
	memset(longname, 'n', KV_NS_MAX);
	longname[KV_NS_MAX] = '\0';
	CU_ASSERT_TRUE(kv_ns_ok(longname));
	{
		char key[MH_KV_KEY_MAX + 2];

		memset(key, 'k', MH_KV_KEY_MAX);
		key[MH_KV_KEY_MAX] = '\0';
		CU_ASSERT_TRUE(kv_key_ok(key));
		CU_ASSERT_EQUAL(kv_full_key(a, sizeof a, longname, key), 0);
		key[MH_KV_KEY_MAX] = 'k';
		key[MH_KV_KEY_MAX + 1] = '\0';
		CU_ASSERT_FALSE(kv_key_ok(key));
	}
	longname[KV_NS_MAX] = 'n';
	longname[KV_NS_MAX + 1] = '\0';
	CU_ASSERT_FALSE(kv_ns_ok(longname));
	CU_ASSERT_FALSE(kv_ns_ok(""));
	CU_ASSERT_FALSE(kv_ns_ok("a:b"));
	CU_ASSERT_FALSE(kv_ns_ok("a b"));
	CU_ASSERT_TRUE(kv_ns_ok("rate-limit_1.x"));
	CU_ASSERT_FALSE(kv_key_ok(""));
	CU_ASSERT_FALSE(kv_key_ok("a b"));
	CU_ASSERT_FALSE(kv_key_ok("a\tb"));
	CU_ASSERT_FALSE(kv_key_ok("caf\xc3\xa9"));
	CU_ASSERT_FALSE(kv_key_ok("del\x7f"));
	CU_ASSERT_TRUE(kv_key_ok("rcpt:<a@example.org>|192.0.2.0/24"));
	kv_close(kv);
}

static void
test_spec(void)
{
	struct kv_spec s;

	kv_spec_default(&s);
	CU_ASSERT_EQUAL(s.type, KV_MEMORY);
	CU_ASSERT_EQUAL(s.timeout_ms, 250);
	CU_ASSERT_EQUAL(s.memory_max, (size_t)64 << 20);
	CU_ASSERT_TRUE(kv_parse_spec("redis://127.0.0.1:6379/2", &s));
	CU_ASSERT_EQUAL(s.type, KV_REDIS_TCP);
	CU_ASSERT_STRING_EQUAL(s.host, "127.0.0.1");
	CU_ASSERT_EQUAL(s.port, 6379);
	CU_ASSERT_EQUAL(s.db, 2);
	CU_ASSERT_TRUE(kv_parse_spec("redis://[::1]:6380", &s));
	CU_ASSERT_STRING_EQUAL(s.host, "::1");
	CU_ASSERT_EQUAL(s.port, 6380);
	CU_ASSERT_EQUAL(s.db, 0);
	CU_ASSERT_TRUE(kv_parse_spec("unix:/run/redis/redis.sock", &s));
	CU_ASSERT_EQUAL(s.type, KV_REDIS_UNIX);
	CU_ASSERT_STRING_EQUAL(s.path, "/run/redis/redis.sock");
	CU_ASSERT_TRUE(kv_parse_spec("memory", &s));
	CU_ASSERT_EQUAL(s.type, KV_MEMORY);
	static const char *const bad[] = { "", "Memory", "redis://",
	    "redis://host", "redis://host:0", "redis://host:65536",
	    "redis://:6379", "redis://host:6379/", "redis://host:6379/x",
	    "redis://u@host:6379", "unix:", "unix:relative", "redis" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CU_ASSERT_FALSE(kv_parse_spec(bad[i], &s));
}

static const struct unit_test tests[] = {
	TEST(test_set_get_delete),
	TEST(test_add),
	TEST(test_expiry),
	TEST(test_lazy_sweep),
	TEST(test_incr),
	TEST(test_eviction_order),
	TEST(test_evictions_expired),
	TEST(test_bound_holds),
	TEST(test_stats_calls),
	TEST(test_stats_times),
	TEST(test_concurrent_increments),
	TEST(test_namespaces),
	TEST(test_spec),
	TEST_END,
};

int
main(void)
{
	static const struct unit_suite suites[] = {
		{ "kv", NULL, NULL, tests },
		{ NULL, NULL, NULL, NULL },
	};

	return unit_run(suites);
}

/*
 * kv - the key-value store behind the plugins' mh_kv_* (ABI 1.4).
 *
 * One store per process, made from [milterhost]'s kv keys: it belongs to
 * the daemon, not to a plugin set, so that a reload (a new set) keeps
 * what the plugins stored; each set borrows it (struct plugin_set's kv).
 *
 * A store is a backend behind a table of functions, so that the Redis
 * backend slots in beside the memory one (kv_memory.c).  The store sees
 * full keys, "NAMESPACE:key": context.c checks the plugin's key and puts
 * the namespace in front.  Every function returns MH_OK or an MH_E_*
 * code of <milterhost/plugin.h>; none of them logs.
 */
#ifndef MILTERHOST_KV_H
#define MILTERHOST_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <milterhost/plugin.h>

/* A namespace: an instance name or one declared in init. */
#define KV_NS_MAX 128
/* NAMESPACE ":" key, and its NUL. */
#define KV_FULL_KEY_MAX (KV_NS_MAX + 1 + MH_KV_KEY_MAX + 1)

#define KV_DEFAULT_TIMEOUT_MS 250
#define KV_TIMEOUT_MS_MAX 10000
#define KV_DEFAULT_MEMORY_MAX ((size_t)64 << 20)
/* Every shard must hold a largest entry: 64 of them at 128 KB each. */
#define KV_MEMORY_MIN ((size_t)8 << 20)
#define KV_MEMORY_SHARDS 64

enum kv_type {
	KV_MEMORY = 0,
	KV_REDIS_TCP,  /* redis://HOST:PORT[/DB] */
	KV_REDIS_UNIX  /* unix:/PATH */
};

/* What [milterhost] says of the store. */
struct kv_spec {
	enum kv_type type;
	char host[256];        /* KV_REDIS_TCP */
	unsigned port;
	unsigned db;
	char path[108];        /* KV_REDIS_UNIX: a sun_path */
	char password[256];    /* kv_password: "" for none */
	unsigned timeout_ms;   /* kv_timeout_ms */
	size_t memory_max;     /* kv_memory_max_bytes */
};

/*
 * The store's statistics, for the daemon's /metrics (metrics.c reads
 * them with kv_stats(); the store knows nothing of metrics).  Calls are
 * counted by operation and result, and timed, only once kv_stats_enable()
 * was called: without it a call costs one test of a pointer more.  What
 * a backend counts of itself (the memory store's size and evictions, the
 * Redis connections) costs nothing on the calls and is always kept.
 */
enum kv_op { KV_OP_GET, KV_OP_SET, KV_OP_ADD, KV_OP_INCR, KV_OP_DELETE,
	KV_OPS };
/* A call's result: MH_OK or one of the MH_E_* codes the store returns. */
enum kv_result { KV_R_OK, KV_R_NOTFOUND, KV_R_EXISTS, KV_R_INVALID,
	KV_R_UNAVAILABLE, KV_R_NOMEM, KV_RESULTS };
extern const char *const kv_op_names[KV_OPS];
extern const char *const kv_result_names[KV_RESULTS];

/* Upper bounds of the call-time buckets, in ns, 1 us to 1 s; one more
 * bucket (+Inf) follows. */
#define KV_TIME_BOUNDS 18
#define KV_TIME_BUCKETS (KV_TIME_BOUNDS + 1)
extern const uint64_t kv_time_le_ns[KV_TIME_BOUNDS];

struct kv_stats {
	const char *backend;      /* the backend's name: memory, redis */
	bool calls_counted;       /* kv_stats_enable() was called */
	uint64_t calls[KV_OPS][KV_RESULTS];
	uint64_t buckets[KV_OPS][KV_TIME_BUCKETS]; /* not cumulative */
	uint64_t sum_ns[KV_OPS];
	/* The memory backend. */
	size_t memory_bytes;      /* counted as the bound counts them */
	size_t memory_max;        /* the bound it holds to */
	size_t memory_entries;
	uint64_t memory_evictions; /* live entries evicted for room */
	/* The Redis backend. */
	uint64_t redis_connects_ok;     /* connected, AUTH and SELECT done */
	uint64_t redis_connects_failed;
	uint64_t redis_connections;     /* open now, over all threads */
};

/*
 * A backend.  Keys are full keys (NUL-terminated, checked); values are
 * checked for size.  get copies up to size bytes into buf and sets *len
 * to the whole length.  Each function may be called from any thread at
 * any time: the backend does its own locking.
 */
struct kv_backend {
	const char *name;
	int (*get)(void *impl, const char *key, void *buf, size_t size,
		   size_t *len);
	int (*set)(void *impl, const char *key, const void *value, size_t len,
		   unsigned ttl_s);
	int (*add)(void *impl, const char *key, const void *value, size_t len,
		   unsigned ttl_s);
	int (*incr)(void *impl, const char *key, long long by, unsigned ttl_s,
		    long long *result);
	int (*del)(void *impl, const char *key);
	void (*free)(void *impl);
	/* Add what the backend counts of itself to st; may be NULL. */
	void (*stats)(void *impl, struct kv_stats *st);
};

struct kv_stats_part;

struct kv_store {
	const struct kv_backend *ops;
	void *impl;
	/* The calls' counters (kv.c), NULL until kv_stats_enable(). */
	struct kv_stats_part *parts;
};

/* The defaults: kv = memory, 250 ms, 64 MB. */
void kv_spec_default(struct kv_spec *spec);
/* Parse the value of the kv key into spec's type and address; false if
 * it is none of memory, redis://HOST:PORT[/DB] and unix:/PATH. */
bool kv_parse_spec(const char *value, struct kv_spec *spec);

/* Do two specs describe the same store? */
bool kv_spec_equal(const struct kv_spec *a, const struct kv_spec *b);

/* Make the store spec describes; NULL with the reason in err. */
struct kv_store *kv_open(const struct kv_spec *spec, char *err,
			 size_t errlen);
void kv_close(struct kv_store *kv);

/* The backend's functions, for whoever holds the store. */
int kv_get(struct kv_store *kv, const char *key, void *buf, size_t size,
	   size_t *len);
int kv_set(struct kv_store *kv, const char *key, const void *value,
	   size_t len, unsigned ttl_s);
int kv_add(struct kv_store *kv, const char *key, const void *value,
	   size_t len, unsigned ttl_s);
int kv_incr(struct kv_store *kv, const char *key, long long by,
	    unsigned ttl_s, long long *result);
int kv_delete(struct kv_store *kv, const char *key);

/* Count and time the calls from now on; 0, or -1 if out of memory.
 * Before the store is shared between threads. */
int kv_stats_enable(struct kv_store *kv);
/* The statistics as they are now (each counter read on its own: a call
 * in flight may show in one and not yet in another). */
void kv_stats(struct kv_store *kv, struct kv_stats *st);

/* A key a plugin may use, a namespace it may declare. */
bool kv_key_ok(const char *key);
bool kv_ns_ok(const char *name);
/* "NS:key" into buf (KV_FULL_KEY_MAX bytes); -1 if it does not fit. */
int kv_full_key(char *buf, size_t size, const char *ns, const char *key);

/* Parse a decimal long long as incr does (Redis's rule: an optional '-'
 * and digits, nothing else, in range); false if it is not one. */
bool kv_parse_integer(const char *s, size_t len, long long *out);

/*
 * The memory backend (kv_memory.c): max_bytes for the whole store, split
 * evenly between nshards shards (a power of two).  clock_ms: milliseconds
 * of a monotonic clock, NULL for CLOCK_MONOTONIC; tests pass their own.
 */
struct kv_store *kv_memory_open(size_t max_bytes, unsigned nshards,
				uint64_t (*clock_ms)(void));
/*
 * The Redis backend (kv_redis.c) for spec (KV_REDIS_TCP or KV_REDIS_UNIX):
 * connects lazily, per thread, so it only fails for want of memory.
 */
struct kv_store *kv_redis_open(const struct kv_spec *spec);
/* Bytes counted and entries held, over all shards (tests, metrics). */
void kv_memory_usage(struct kv_store *kv, size_t *bytes, size_t *entries);

#endif /* MILTERHOST_KV_H */

/*
 * kv_memory - the in-memory backend of the key-value store (kv = memory).
 *
 * The keys are spread over shards by a seeded hash; each shard is a mutex,
 * a chained hash table and a min-heap of its entries, and a call takes
 * the lock of its key's shard only: there is no lock over the whole
 * store, so that sessions on many threads do not queue behind each other.
 *
 * Expiry is checked on access (an expired entry is removed when found),
 * and swept lazily: every write first removes the expired entries at the
 * top of its shard's heap, a few at a time.
 *
 * Size: each shard may hold max_bytes / nshards, counting for every entry
 * its key, its value and ENTRY_OVERHEAD (the entry's header, its heap
 * slot and its share of the bucket array).  A write that does not fit
 * evicts in heap order, which is the eviction rule: expired entries
 * first, then the entry that expires soonest, entries without a time to
 * live last, and among equals the one stored longest ago (set, add or
 * created by incr; an incr does not renew it).  Evicting within the
 * shard keeps the rule local to one lock: a shard may evict while
 * another has room, and the whole store never holds more than max_bytes.
 * Each shard counts the live entries it evicted (an expired one that
 * goes first was gone anyway), under its lock: the statistics read the
 * shards one by one, as kv_memory_usage() does.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"

/* The lazy sweep's share of one write. */
#define SWEEP_PER_WRITE 8
#define INITIAL_BUCKETS 16
/* Room for any long long in decimal: an incr rewrites in place. */
#define INTEGER_ROOM 24

struct entry {
	struct entry *next;  /* in its bucket */
	uint64_t hash;
	uint64_t expires;    /* on the store's clock, ms; 0: never */
	uint64_t seq;        /* when stored, in the shard's count */
	size_t heap_at;      /* its index in the shard's heap */
	size_t klen;
	size_t vlen;
	size_t vroom;        /* bytes allocated for the value */
	char *value;         /* after the key and its NUL */
	char key[];
};

#define ENTRY_OVERHEAD (sizeof(struct entry) + 3 * sizeof(void *))

struct shard {
	pthread_mutex_t lock;
	struct entry **buckets;
	size_t nbuckets;     /* a power of two */
	struct entry **heap; /* count entries, by evict_before() */
	size_t heap_cap;
	size_t count;
	size_t bytes;
	uint64_t seq;
	uint64_t evictions;  /* live entries evicted for room */
} __attribute__((aligned(64))); /* one cache line per lock */

struct kv_memory {
	struct shard *shards;
	unsigned nshards;
	size_t shard_max;
	uint64_t seed;
	uint64_t (*clock_ms)(void);
};

static uint64_t
monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * FNV-1a over the key from a random basis, then MurmurHash3's finalizer
 * so that the high bits (the shard) mix too.  The random basis keeps the
 * hash from being known in advance to whoever picks the keys (sender
 * addresses), though it is no keyed hash in the cryptographic sense.
 */
static uint64_t
hash_key(const struct kv_memory *m, const char *key, size_t len)
{
	uint64_t h = m->seed;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

static size_t
entry_cost(const struct entry *e)
{
	return ENTRY_OVERHEAD + e->klen + 1 + e->vroom;
}

static bool
expired(const struct entry *e, uint64_t now)
{
	return e->expires != 0 && e->expires <= now;
}

static uint64_t
expiry_of(unsigned ttl_s, uint64_t now)
{
	return ttl_s == 0 ? 0 : now + (uint64_t)ttl_s * 1000;
}

/* ---- the heap: the eviction order -------------------------------------- */

static bool
evict_before(const struct entry *a, const struct entry *b)
{
	uint64_t ea = a->expires ? a->expires : UINT64_MAX;
	uint64_t eb = b->expires ? b->expires : UINT64_MAX;

	return ea != eb ? ea < eb : a->seq < b->seq;
}

static void
heap_place(struct shard *sh, size_t i, struct entry *e)
{
	sh->heap[i] = e;
	e->heap_at = i;
}

static void
sift_up(struct shard *sh, size_t i)
{
	struct entry *e = sh->heap[i];

	while (i > 0 && evict_before(e, sh->heap[(i - 1) / 2])) {
		heap_place(sh, i, sh->heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	heap_place(sh, i, e);
}

static void
sift_down(struct shard *sh, size_t i)
{
	struct entry *e = sh->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= sh->count)
			break;
		if (c + 1 < sh->count && evict_before(sh->heap[c + 1],
		    sh->heap[c]))
			c++;
		if (!evict_before(sh->heap[c], e))
			break;
		heap_place(sh, i, sh->heap[c]);
		i = c;
	}
	heap_place(sh, i, e);
}

/* ---- the table --------------------------------------------------------- */

static struct entry **
bucket_of(struct shard *sh, uint64_t hash)
{
	return &sh->buckets[hash & (sh->nbuckets - 1)];
}

static struct entry *
find(struct shard *sh, const char *key, size_t klen, uint64_t hash)
{
	for (struct entry *e = *bucket_of(sh, hash); e; e = e->next)
		if (e->hash == hash && e->klen == klen &&
		    memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

static void
unlink_entry(struct shard *sh, struct entry *e)
{
	struct entry **pp = bucket_of(sh, e->hash);
	size_t i = e->heap_at;

	while (*pp != e)
		pp = &(*pp)->next;
	*pp = e->next;
	sh->count--;
	if (i < sh->count) {
		struct entry *last = sh->heap[sh->count];

		heap_place(sh, i, last);
		sift_up(sh, i);
		sift_down(sh, last->heap_at);
	}
	sh->bytes -= entry_cost(e);
	free(e);
}

/* Double the buckets when the chains grow past one entry on average; a
 * failure only leaves them longer. */
static void
grow_buckets(struct shard *sh)
{
	size_t n = sh->nbuckets * 2;
	struct entry **b = calloc(n, sizeof *b);

	if (b == NULL)
		return;
	for (size_t i = 0; i < sh->nbuckets; i++) {
		struct entry *e = sh->buckets[i], *next;

		for (; e != NULL; e = next) {
			next = e->next;
			e->next = b[e->hash & (n - 1)];
			b[e->hash & (n - 1)] = e;
		}
	}
	free(sh->buckets);
	sh->buckets = b;
	sh->nbuckets = n;
}

static int
link_entry(struct shard *sh, struct entry *e)
{
	struct entry **pp;

	if (sh->count == sh->heap_cap) {
		size_t cap = sh->heap_cap ? sh->heap_cap * 2 : 16;
		struct entry **h = realloc(sh->heap, cap * sizeof *h);

		if (h == NULL)
			return MH_E_NOMEM;
		sh->heap = h;
		sh->heap_cap = cap;
	}
	if (sh->count >= sh->nbuckets)
		grow_buckets(sh);
	pp = bucket_of(sh, e->hash);
	e->next = *pp;
	*pp = e;
	heap_place(sh, sh->count++, e);
	sift_up(sh, e->heap_at);
	sh->bytes += entry_cost(e);
	return MH_OK;
}

/* The live entry of key, or NULL; an expired one is removed on the way. */
static struct entry *
lookup(struct shard *sh, const char *key, size_t klen, uint64_t hash,
    uint64_t now)
{
	struct entry *e = find(sh, key, klen, hash);

	if (e != NULL && expired(e, now)) {
		unlink_entry(sh, e);
		return NULL;
	}
	return e;
}

static void
sweep(struct shard *sh, uint64_t now, size_t max)
{
	while (max-- > 0 && sh->count > 0 && expired(sh->heap[0], now))
		unlink_entry(sh, sh->heap[0]);
}

/* Evict until need more bytes fit; false if they never can. */
static bool
make_room(const struct kv_memory *m, struct shard *sh, size_t need,
    uint64_t now)
{
	if (need > m->shard_max)
		return false;
	while (sh->bytes + need > m->shard_max && sh->count > 0) {
		if (!expired(sh->heap[0], now))
			sh->evictions++;
		unlink_entry(sh, sh->heap[0]);
	}
	return true;
}

static struct entry *
entry_new(const char *key, size_t klen, uint64_t hash, const void *value,
    size_t vlen, size_t vroom)
{
	struct entry *e = malloc(sizeof *e + klen + 1 + vroom);

	if (e == NULL)
		return NULL;
	memset(e, 0, sizeof *e);
	e->hash = hash;
	e->klen = klen;
	e->vlen = vlen;
	e->vroom = vroom;
	memcpy(e->key, key, klen + 1);
	e->value = e->key + klen + 1;
	if (vlen > 0)
		memcpy(e->value, value, vlen);
	return e;
}

/* Store a new entry for key (none is there); on failure it is freed. */
static int
insert(const struct kv_memory *m, struct shard *sh, struct entry *e,
    unsigned ttl_s, uint64_t now)
{
	e->expires = expiry_of(ttl_s, now);
	e->seq = sh->seq++;
	if (!make_room(m, sh, entry_cost(e), now)) {
		free(e);
		return MH_E_NOMEM;
	}
	if (link_entry(sh, e) != MH_OK) {
		free(e);
		return MH_E_NOMEM;
	}
	return MH_OK;
}

/* ---- the backend ------------------------------------------------------- */

struct call {
	struct kv_memory *m;
	struct shard *sh;
	const char *key;
	size_t klen;
	uint64_t hash;
	uint64_t now;
};

/* Find key's shard and lock it. */
static void
begin(struct call *c, void *impl, const char *key)
{
	c->m = impl;
	c->key = key;
	c->klen = strlen(key);
	c->hash = hash_key(c->m, key, c->klen);
	c->sh = &c->m->shards[(c->hash >> 40) & (c->m->nshards - 1)];
	c->now = c->m->clock_ms();
	pthread_mutex_lock(&c->sh->lock);
}

static int
end(struct call *c, int rc)
{
	pthread_mutex_unlock(&c->sh->lock);
	return rc;
}

static int
mem_get(void *impl, const char *key, void *buf, size_t size, size_t *len)
{
	struct call c;
	struct entry *e;

	begin(&c, impl, key);
	if ((e = lookup(c.sh, key, c.klen, c.hash, c.now)) == NULL)
		return end(&c, MH_E_NOTFOUND);
	if (size > 0)
		memcpy(buf, e->value, e->vlen < size ? e->vlen : size);
	if (len != NULL)
		*len = e->vlen;
	return end(&c, MH_OK);
}

static int
store(void *impl, const char *key, const void *value, size_t len,
    unsigned ttl_s, bool only_new)
{
	struct call c;
	struct entry *e, *old;

	/* Allocated before the lock: the shard waits for no malloc. */
	e = entry_new(key, strlen(key), 0, value, len, len);
	if (e == NULL)
		return MH_E_NOMEM;
	begin(&c, impl, key);
	e->hash = c.hash;
	sweep(c.sh, c.now, SWEEP_PER_WRITE);
	if ((old = lookup(c.sh, key, c.klen, c.hash, c.now)) != NULL) {
		if (only_new) {
			free(e);
			return end(&c, MH_E_EXISTS);
		}
		unlink_entry(c.sh, old);
	}
	return end(&c, insert(c.m, c.sh, e, ttl_s, c.now));
}

static int
mem_set(void *impl, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	return store(impl, key, value, len, ttl_s, false);
}

static int
mem_add(void *impl, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	return store(impl, key, value, len, ttl_s, true);
}

/* The value after adding by; MH_E_INVALID if it is no integer, or the
 * sum would overflow (as Redis refuses it). */
static int
add_to(const struct entry *e, long long by, long long *out)
{
	long long n;

	if (!kv_parse_integer(e->value, e->vlen, &n) ||
	    (by > 0 && n > LLONG_MAX - by) || (by < 0 && n < LLONG_MIN - by))
		return MH_E_INVALID;
	*out = n + by;
	return MH_OK;
}

static int
mem_incr(void *impl, const char *key, long long by, unsigned ttl_s,
    long long *result)
{
	char text[INTEGER_ROOM];
	struct call c;
	struct entry *e;
	long long n = by;
	int rc, len;

	begin(&c, impl, key);
	sweep(c.sh, c.now, SWEEP_PER_WRITE);
	if ((e = lookup(c.sh, key, c.klen, c.hash, c.now)) != NULL &&
	    (rc = add_to(e, by, &n)) != MH_OK)
		return end(&c, rc);
	len = snprintf(text, sizeof text, "%lld", n);
	if (e != NULL && (size_t)len <= e->vroom) {
		/* In place: the time to live is the creation's. */
		memcpy(e->value, text, (size_t)len);
		e->vlen = (size_t)len;
	} else if (e != NULL) {
		/* A set value shorter than the sum: move it, keeping its
		 * expiry and age. */
		struct entry *moved = entry_new(key, c.klen, c.hash, text,
		    (size_t)len, INTEGER_ROOM);

		if (moved == NULL)
			return end(&c, MH_E_NOMEM);
		moved->expires = e->expires;
		moved->seq = e->seq;
		unlink_entry(c.sh, e);
		if (!make_room(c.m, c.sh, entry_cost(moved), c.now) ||
		    link_entry(c.sh, moved) != MH_OK) {
			free(moved);
			return end(&c, MH_E_NOMEM);
		}
	} else {
		e = entry_new(key, c.klen, c.hash, text, (size_t)len,
		    INTEGER_ROOM);
		if (e == NULL)
			return end(&c, MH_E_NOMEM);
		if ((rc = insert(c.m, c.sh, e, ttl_s, c.now)) != MH_OK)
			return end(&c, rc);
	}
	if (result != NULL)
		*result = n;
	return end(&c, MH_OK);
}

static int
mem_del(void *impl, const char *key)
{
	struct call c;
	struct entry *e;

	begin(&c, impl, key);
	if ((e = find(c.sh, key, c.klen, c.hash)) != NULL)
		unlink_entry(c.sh, e);
	return end(&c, MH_OK);
}

static void
mem_free(void *impl)
{
	struct kv_memory *m = impl;

	for (unsigned i = 0; i < m->nshards; i++) {
		struct shard *sh = &m->shards[i];

		for (size_t k = 0; k < sh->count; k++)
			free(sh->heap[k]);
		free(sh->heap);
		free(sh->buckets);
		pthread_mutex_destroy(&sh->lock);
	}
	free(m->shards);
	free(m);
}

/* The shards one at a time: a scrape holds up one shard's calls at most,
 * and only for as long as a few additions take. */
static void
mem_stats(void *impl, struct kv_stats *st)
{
	struct kv_memory *m = impl;

	st->memory_max = m->shard_max * m->nshards;
	for (unsigned i = 0; i < m->nshards; i++) {
		struct shard *sh = &m->shards[i];

		pthread_mutex_lock(&sh->lock);
		st->memory_bytes += sh->bytes;
		st->memory_entries += sh->count;
		st->memory_evictions += sh->evictions;
		pthread_mutex_unlock(&sh->lock);
	}
}

static const struct kv_backend memory_backend = {
	.name = "memory",
	.get = mem_get,
	.set = mem_set,
	.add = mem_add,
	.incr = mem_incr,
	.del = mem_del,
	.free = mem_free,
	.stats = mem_stats,
};

static uint64_t
random_seed(void)
{
	uint64_t seed;

	if (getentropy(&seed, sizeof seed) == 0)
		return seed;
	return monotonic_ms() ^ (uint64_t)getpid() << 32 ^
	    0xcbf29ce484222325ULL;
}

static bool
shards_init(struct kv_memory *m)
{
	for (unsigned i = 0; i < m->nshards; i++) {
		struct shard *sh = &m->shards[i];

		pthread_mutex_init(&sh->lock, NULL);
		sh->nbuckets = INITIAL_BUCKETS;
		if ((sh->buckets = calloc(sh->nbuckets, sizeof *sh->buckets))
		    == NULL)
			return false;
	}
	return true;
}

struct kv_store *
kv_memory_open(size_t max_bytes, unsigned nshards, uint64_t (*clock_ms)(void))
{
	struct kv_store *kv = calloc(1, sizeof *kv);
	struct kv_memory *m = calloc(1, sizeof *m);

	if (kv == NULL || m == NULL || nshards == 0 ||
	    (nshards & (nshards - 1)) != 0)
		goto fail;
	m->nshards = nshards;
	m->shard_max = max_bytes / nshards;
	m->seed = random_seed();
	m->clock_ms = clock_ms ? clock_ms : monotonic_ms;
	if ((m->shards = aligned_alloc(64, nshards * sizeof *m->shards))
	    == NULL)
		goto fail;
	memset(m->shards, 0, nshards * sizeof *m->shards);
	if (!shards_init(m)) {
		mem_free(m);
		free(kv);
		return NULL;
	}
	kv->ops = &memory_backend;
	kv->impl = m;
	return kv;
fail:
	free(m);
	free(kv);
	return NULL;
}

void
kv_memory_usage(struct kv_store *kv, size_t *bytes, size_t *entries)
{
	struct kv_memory *m = kv->impl;

	*bytes = *entries = 0;
	if (kv->ops != &memory_backend)
		return;
	for (unsigned i = 0; i < m->nshards; i++) {
		pthread_mutex_lock(&m->shards[i].lock);
		*bytes += m->shards[i].bytes;
		*entries += m->shards[i].count;
		pthread_mutex_unlock(&m->shards[i].lock);
	}
}

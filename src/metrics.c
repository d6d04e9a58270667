/*
 * metrics - the daemon's counters.  See metrics.h.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stage.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define ADD(counter, n) __atomic_fetch_add(&(counter), (n), __ATOMIC_RELAXED)
#define GET(counter) __atomic_load_n(&(counter), __ATOMIC_RELAXED)

/* Upper bounds of the callback time buckets, in seconds; +Inf follows. */
static const double seconds_le[] = {
	0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1,
	0.5, 1, 5
};
#define TIME_BUCKETS (NELEM(seconds_le) + 1)

/* Upper bounds of the score buckets; +Inf follows. */
static const double score_le[] = {
	-10, -5, 0, 1, 2, 4, 6, 8, 10, 15, 20, 50
};
#define SCORE_BUCKETS (NELEM(score_le) + 1)

/* How a message ended, as the summary says (mh_status), named. */
enum result { R_ACCEPTED, R_REJECTED, R_TEMPFAILED, R_DISCARDED, R_ABORTED,
	RESULTS };
static const char *const result_names[RESULTS] = {
	"accepted", "rejected", "tempfailed", "discarded", "aborted"
};

/* The decisions an instance's callback may make (mh_status up to SKIP). */
#define DECISIONS (MH_SKIP + 1)
static const char *const decision_names[DECISIONS] = {
	[MH_CONTINUE] = "continue", [MH_REJECT] = "reject",
	[MH_DISCARD] = "discard", [MH_ACCEPT] = "accept",
	[MH_TEMPFAIL] = "tempfail", [MH_SKIP] = "skip",
};

static const char *const failure_names[CALL_FAILURES] = {
	[CALL_OK] = "none", [CALL_REFUSED] = "refused_request",
	[CALL_FAILED] = "callback_failed", [CALL_BAD_STATUS] = "bad_status",
	[CALL_OBSERVER] = "observer_decided",
};

static const char *const change_names[MOD_TYPE_COUNT] = {
	[MOD_ADD_HEADER] = "add_header", [MOD_INSERT_HEADER] = "insert_header",
	[MOD_CHANGE_HEADER] = "change_header",
	[MOD_REPLACE_BODY] = "replace_body", [MOD_ADD_RCPT] = "add_rcpt",
	[MOD_DELETE_RCPT] = "delete_rcpt", [MOD_CHANGE_FROM] = "change_from",
	[MOD_QUARANTINE] = "quarantine",
};

/*
 * One instance's counters, kept for as long as the process runs, in
 * parts: each thread that counts for the instance owns a part and is the
 * only one to write it (a plain add, no locked instruction, no cache line
 * shared with another CPU), and rendering sums the parts.  With one copy
 * under atomic adds, 10 instances cost a fifth of the throughput at 4
 * connections; with 8 shards under atomic adds, a tenth.  A thread that
 * ends hands its parts back; the next thread to count takes one over,
 * values and all, so the parts are as many as threads ever counted at
 * once.
 */
struct counters {
	struct counters *next;      /* the block's parts */
	struct counters *next_free; /* the block's parts no thread owns */
	uint64_t calls[MH_STAGE_COUNT];
	uint64_t decisions[DECISIONS];
	uint64_t failures[CALL_FAILURES];
	uint64_t changes[MOD_TYPE_COUNT];
	uint64_t slow[MH_STAGE_COUNT];
	uint64_t buckets[MH_STAGE_COUNT][TIME_BUCKETS]; /* not cumulative */
	uint64_t sum_ns[MH_STAGE_COUNT];
	uint64_t decided[RESULTS];  /* messages it decided */
} __attribute__((aligned(64)));

struct block {
	char *name;
	struct block *next;
	size_t id;                  /* its index in this thread's parts */
	struct counters *parts;
	struct counters *free;
};

/* The owner's add: only the owning thread writes, others only read. */
#define OWN_ADD(counter, n) __atomic_store_n(&(counter),                \
	__atomic_load_n(&(counter), __ATOMIC_RELAXED) + (n), __ATOMIC_RELAXED)

/* The parts this thread owns, by block id. */
struct owned {
	struct counters **part;
	size_t n;
};
static _Thread_local struct owned *mine;
static pthread_key_t mine_key;
static pthread_once_t mine_once = PTHREAD_ONCE_INIT;

/* The sum of one counter over the parts of b, given its offset. */
static uint64_t
sum(const struct block *b, size_t offset)
{
	uint64_t s = 0;

	for (const struct counters *c = b->parts; c != NULL; c = c->next)
		s += GET(*(const uint64_t *)(const void *)
		    ((const char *)c + offset));
	return s;
}
#define SUM(b, field) sum((b), offsetof(struct counters, field))

static bool enabled;
static char libmilter[32];
static pthread_mutex_t blocks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block *blocks;  /* in the order first seen */
static size_t nblocks;

static uint64_t connections_open, connections_total;
static uint64_t generation, reloads_ok, reloads_failed;
static uint64_t messages[RESULTS];
static uint64_t score_decided[RESULTS];
static uint64_t score_buckets[SCORE_BUCKETS];
static int64_t score_sum_milli;  /* thousandths of points */
static uint64_t score_count;
/* The daemon's store: set once before the httpd thread starts, and the
 * store counts its calls itself (kv.c), so nothing here is on its path. */
static struct kv_store *store;

void
metrics_enable(const char *libmilter_version)
{
	snprintf(libmilter, sizeof libmilter, "%s", libmilter_version);
	enabled = true;
}

bool
metrics_enabled(void)
{
	return enabled;
}

/* The block of name, made if new; NULL if out of memory.  Locked. */
static struct block *
block_of(const char *name)
{
	struct block *b, **tail = &blocks;

	for (b = blocks; b != NULL; b = b->next) {
		if (strcmp(b->name, name) == 0)
			return b;
		tail = &b->next;
	}
	if ((b = calloc(1, sizeof *b)) == NULL)
		return NULL;
	if ((b->name = strdup(name)) == NULL) {
		free(b);
		return NULL;
	}
	b->id = nblocks++;
	*tail = b;
	return b;
}

/* A thread ends: its parts go back to their blocks, values and all. */
static void
give_back(void *arg)
{
	struct owned *o = arg;

	pthread_mutex_lock(&blocks_lock);
	for (size_t i = 0; i < o->n; i++) {
		struct counters *c = o->part[i];
		struct block *b;

		if (c == NULL)
			continue;
		for (b = blocks; b != NULL && b->id != i; b = b->next)
			continue;
		if (b != NULL) {
			c->next_free = b->free;
			b->free = c;
		}
	}
	pthread_mutex_unlock(&blocks_lock);
	free(o->part);
	free(o);
}

static void
make_key(void)
{
	if (pthread_key_create(&mine_key, give_back) != 0)
		abort();
}

/*
 * The part of b this thread owns: found in one step once it has it, else
 * taken over from a thread that ended, or made.  NULL if out of memory.
 */
static struct counters *
part_of(struct block *b)
{
	struct counters *c = NULL;

	if (mine != NULL && b->id < mine->n && mine->part[b->id] != NULL)
		return mine->part[b->id];
	pthread_once(&mine_once, make_key);
	pthread_mutex_lock(&blocks_lock);
	if (mine == NULL && (mine = calloc(1, sizeof *mine)) != NULL)
		pthread_setspecific(mine_key, mine);
	if (mine != NULL && b->id >= mine->n) {
		size_t n = nblocks;
		struct counters **p = realloc(mine->part, n * sizeof *p);

		if (p != NULL) {
			memset(p + mine->n, 0, (n - mine->n) * sizeof *p);
			mine->part = p;
			mine->n = n;
		}
	}
	if (mine != NULL && b->id < mine->n) {
		if ((c = b->free) != NULL) {
			b->free = c->next_free;
		} else if (posix_memalign((void **)&c, 64, sizeof *c) == 0) {
			memset(c, 0, sizeof *c);
			c->next = b->parts;
			b->parts = c;
		} else {
			c = NULL;
		}
		mine->part[b->id] = c;
	}
	pthread_mutex_unlock(&blocks_lock);
	return c;
}

int
metrics_attach(struct plugin_set *set)
{
	int rc = 0;

	pthread_mutex_lock(&blocks_lock);
	for (size_t i = 0; i < set->ninstances; i++)
		if ((set->instances[i].host_data =
		    block_of(set->instances[i].name)) == NULL)
			rc = -1;
	pthread_mutex_unlock(&blocks_lock);
	return rc;
}

/* The bucket bounds in nanoseconds, for the hot path. */
static const uint64_t ns_le[] = {
	10000, 50000, 100000, 500000, 1000000, 5000000, 10000000, 50000000,
	100000000, 500000000, 1000000000, 5000000000
};
_Static_assert(NELEM(ns_le) == NELEM(seconds_le), "bucket bounds");

static size_t
time_bucket(uint64_t ns)
{
	size_t i = 0;

	while (i < NELEM(ns_le) && ns > ns_le[i])
		i++;
	return i;
}

void
metrics_call(void *arg, const struct call_report *r)
{
	struct block *b = r->inst->host_data;
	struct counters *c;
	mh_stage st = r->stage;

	(void)arg;
	if (b == NULL || (unsigned)st >= MH_STAGE_COUNT)
		return;
	if ((c = part_of(b)) == NULL)
		return;
	OWN_ADD(c->calls[st], 1);
	OWN_ADD(c->buckets[st][time_bucket(r->ns)], 1);
	OWN_ADD(c->sum_ns[st], r->ns);
	if (r->slow)
		OWN_ADD(c->slow[st], 1);
	/* abort and close decide nothing. */
	if (st != MH_STAGE_ABORT && st != MH_STAGE_CLOSE &&
	    (unsigned)r->status < DECISIONS)
		OWN_ADD(c->decisions[r->status], 1);
	if (r->failure != CALL_OK)
		OWN_ADD(c->failures[r->failure], 1);
	for (size_t i = 0; i < r->changes; i++)
		OWN_ADD(c->changes[r->new_changes[i].type], 1);
}

static enum result
result_of(mh_status st)
{
	switch (st) {
	case MH_ACCEPT:
		return R_ACCEPTED;
	case MH_REJECT:
		return R_REJECTED;
	case MH_TEMPFAIL:
		return R_TEMPFAILED;
	case MH_DISCARD:
		return R_DISCARDED;
	default:
		return R_ABORTED;
	}
}

void
metrics_message(void *arg, const struct msg_summary *m)
{
	enum result res = result_of(m->result);
	struct counters *c;
	struct block *b;
	size_t i = 0;

	(void)arg;
	ADD(messages[res], 1);
	if (m->decider_inst != NULL &&
	    (b = m->decider_inst->host_data) != NULL &&
	    (c = part_of(b)) != NULL)
		OWN_ADD(c->decided[res], 1);
	else if (m->score[0] != '\0')
		ADD(score_decided[res], 1);
	if (!m->scored)
		return;
	while (i < NELEM(score_le) && m->score_total > score_le[i])
		i++;
	ADD(score_buckets[i], 1);
	ADD(score_sum_milli, (int64_t)(m->score_total * 1000));
	ADD(score_count, 1);
}

void
metrics_connection(int delta)
{
	if (delta > 0) {
		ADD(connections_open, 1);
		ADD(connections_total, 1);
	} else {
		__atomic_fetch_sub(&connections_open, 1, __ATOMIC_RELAXED);
	}
}

int
metrics_set_kv(struct kv_store *kv)
{
	if (kv_stats_enable(kv) < 0)
		return -1;
	store = kv;
	return 0;
}

void
metrics_set_installed(void)
{
	ADD(generation, 1);
}

void
metrics_reload(bool succeeded)
{
	if (succeeded)
		ADD(reloads_ok, 1);
	else
		ADD(reloads_failed, 1);
}

/* ---- rendering --------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void __attribute__((format(printf, 2, 3)))
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = (o->cap + (size_t)n) * 2;
		char *p = realloc(o->buf, cap);

		if (p == NULL) {
			o->failed = true;
			return;
		}
		o->buf = p;
		o->cap = cap;
	}
}

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
render_process(struct out *o)
{
	family(o, "milterhost_build_info", "gauge", "The running milterhost: "
	    "its version, plugin ABI and libmilter version (always 1).");
	put(o, "milterhost_build_info{version=\"%s\",plugin_abi=\"%d.%d\","
	    "libmilter=\"%s\"} 1\n", PACKAGE_VERSION, MH_ABI_MAJOR,
	    MH_ABI_MINOR, libmilter);
	family(o, "milterhost_plugin_set_generation", "gauge", "How many "
	    "plugin sets were installed since the start: 1, plus one per "
	    "successful reload.");
	put(o, "milterhost_plugin_set_generation %llu\n",
	    (unsigned long long)GET(generation));
	family(o, "milterhost_reloads_total", "counter", "Reloads (SIGUSR1), "
	    "by result.");
	put(o, "milterhost_reloads_total{result=\"succeeded\"} %llu\n",
	    (unsigned long long)GET(reloads_ok));
	put(o, "milterhost_reloads_total{result=\"failed\"} %llu\n",
	    (unsigned long long)GET(reloads_failed));
	family(o, "milterhost_connections_open", "gauge", "SMTP sessions "
	    "open now.");
	put(o, "milterhost_connections_open %llu\n",
	    (unsigned long long)GET(connections_open));
	family(o, "milterhost_connections_total", "counter", "SMTP sessions "
	    "since the start.");
	put(o, "milterhost_connections_total %llu\n",
	    (unsigned long long)GET(connections_total));
}

static void
render_messages(struct out *o)
{
	family(o, "milterhost_messages_total", "counter", "Messages, by how "
	    "they ended: accepted (the MTA goes on with it), rejected, "
	    "tempfailed, discarded, or aborted by the MTA.");
	for (int r = 0; r < RESULTS; r++)
		put(o, "milterhost_messages_total{result=\"%s\"} %llu\n",
		    result_names[r], (unsigned long long)GET(messages[r]));
	family(o, "milterhost_messages_decided_total", "counter", "Messages "
	    "rejected, tempfailed or discarded, by the instance that decided "
	    "(\"(score)\": the score thresholds).");
	for (struct block *b = blocks; b != NULL; b = b->next)
		for (int r = R_REJECTED; r <= R_DISCARDED; r++)
			put(o, "milterhost_messages_decided_total{decider=\"%s\","
			    "result=\"%s\"} %llu\n", b->name, result_names[r],
			    (unsigned long long)SUM(b, decided[r]));
	for (int r = R_REJECTED; r <= R_DISCARDED; r++)
		put(o, "milterhost_messages_decided_total{decider=\"(score)\","
		    "result=\"%s\"} %llu\n", result_names[r],
		    (unsigned long long)GET(score_decided[r]));
	family(o, "milterhost_message_score", "histogram", "The score of the "
	    "messages that plugins gave points.");
	uint64_t cum = 0;
	for (size_t i = 0; i < SCORE_BUCKETS; i++) {
		cum += GET(score_buckets[i]);
		if (i < NELEM(score_le))
			put(o, "milterhost_message_score_bucket{le=\"%g\"} %llu\n",
			    score_le[i], (unsigned long long)cum);
		else
			put(o, "milterhost_message_score_bucket{le=\"+Inf\"} "
			    "%llu\n", (unsigned long long)cum);
	}
	put(o, "milterhost_message_score_sum %.3f\n",
	    (double)GET(score_sum_milli) / 1000);
	put(o, "milterhost_message_score_count %llu\n",
	    (unsigned long long)GET(score_count));
}

static void
render_instances(struct out *o)
{
	struct block *b;

	family(o, "milterhost_instance_callbacks_total", "counter",
	    "Callbacks of each plugin instance, by stage.");
	for (b = blocks; b != NULL; b = b->next)
		for (int st = 0; st < MH_STAGE_COUNT; st++)
			if (SUM(b, calls[st]) > 0)
				put(o, "milterhost_instance_callbacks_total{"
				    "instance=\"%s\",stage=\"%s\"} %llu\n",
				    b->name, stage_name((mh_stage)st),
				    (unsigned long long)SUM(b, calls[st]));
	family(o, "milterhost_instance_decisions_total", "counter", "What "
	    "each instance's callbacks decided (after on_error; a dry-run "
	    "instance's decisions as made), by kind.");
	for (b = blocks; b != NULL; b = b->next)
		for (int d = 0; d < DECISIONS; d++)
			put(o, "milterhost_instance_decisions_total{instance="
			    "\"%s\",decision=\"%s\"} %llu\n", b->name,
			    decision_names[d],
			    (unsigned long long)SUM(b, decisions[d]));
	family(o, "milterhost_instance_failures_total", "counter", "Failures "
	    "of each instance's callbacks (answered by its on_error), by "
	    "kind.");
	for (b = blocks; b != NULL; b = b->next)
		for (int f = CALL_REFUSED; f < CALL_FAILURES; f++)
			put(o, "milterhost_instance_failures_total{instance="
			    "\"%s\",kind=\"%s\"} %llu\n", b->name,
			    failure_names[f],
			    (unsigned long long)SUM(b, failures[f]));
	family(o, "milterhost_instance_changes_total", "counter", "Message "
	    "changes each instance queued, by kind.");
	for (b = blocks; b != NULL; b = b->next)
		for (int k = 0; k < MOD_TYPE_COUNT; k++)
			put(o, "milterhost_instance_changes_total{instance="
			    "\"%s\",kind=\"%s\"} %llu\n", b->name,
			    change_names[k],
			    (unsigned long long)SUM(b, changes[k]));
	family(o, "milterhost_instance_slow_callbacks_total", "counter",
	    "Callbacks that took longer than the instance's slow_ms, by "
	    "stage.");
	for (b = blocks; b != NULL; b = b->next)
		for (int st = 0; st < MH_STAGE_COUNT; st++)
			if (SUM(b, calls[st]) > 0)
				put(o, "milterhost_instance_slow_callbacks_total{"
				    "instance=\"%s\",stage=\"%s\"} %llu\n",
				    b->name, stage_name((mh_stage)st),
				    (unsigned long long)SUM(b, slow[st]));
	family(o, "milterhost_instance_callback_seconds", "histogram",
	    "Time in each instance's callbacks, by stage.");
	for (b = blocks; b != NULL; b = b->next)
		for (int st = 0; st < MH_STAGE_COUNT; st++) {
			const char *sn = stage_name((mh_stage)st);
			uint64_t cum = 0;

			if (SUM(b, calls[st]) == 0)
				continue;
			for (size_t i = 0; i < TIME_BUCKETS; i++) {
				cum += SUM(b, buckets[st][i]);
				if (i < NELEM(seconds_le))
					put(o, "milterhost_instance_callback_"
					    "seconds_bucket{instance=\"%s\","
					    "stage=\"%s\",le=\"%g\"} %llu\n",
					    b->name, sn, seconds_le[i],
					    (unsigned long long)cum);
				else
					put(o, "milterhost_instance_callback_"
					    "seconds_bucket{instance=\"%s\","
					    "stage=\"%s\",le=\"+Inf\"} %llu\n",
					    b->name, sn,
					    (unsigned long long)cum);
			}
			put(o, "milterhost_instance_callback_seconds_sum{"
			    "instance=\"%s\",stage=\"%s\"} %.9f\n", b->name, sn,
			    (double)SUM(b, sum_ns[st]) / 1e9);
			/* The buckets' total, so that the two always agree. */
			put(o, "milterhost_instance_callback_seconds_count{"
			    "instance=\"%s\",stage=\"%s\"} %llu\n", b->name, sn,
			    (unsigned long long)cum);
		}
}

static void
render_kv(struct out *o)
{
	struct kv_stats st;

	if (store == NULL)
		return;
	kv_stats(store, &st);
	family(o, "milterhost_kv_backend_info", "gauge", "The backend of the "
	    "plugins' key-value store, kv (always 1).");
	put(o, "milterhost_kv_backend_info{backend=\"%s\"} 1\n", st.backend);
	family(o, "milterhost_kv_operations_total", "counter", "Calls of the "
	    "key-value store (mh_kv_*), by operation and result; calls the "
	    "host refused before the store (a bad key or value) are not "
	    "counted.");
	for (int op = 0; op < KV_OPS; op++)
		for (int r = 0; r < KV_RESULTS; r++)
			put(o, "milterhost_kv_operations_total{op=\"%s\","
			    "result=\"%s\"} %llu\n", kv_op_names[op],
			    kv_result_names[r],
			    (unsigned long long)st.calls[op][r]);
	family(o, "milterhost_kv_operation_seconds", "histogram", "Time of "
	    "the key-value store's calls, by operation.");
	for (int op = 0; op < KV_OPS; op++) {
		uint64_t cum = 0;

		for (size_t i = 0; i < KV_TIME_BUCKETS; i++) {
			cum += st.buckets[op][i];
			if (i < KV_TIME_BOUNDS)
				put(o, "milterhost_kv_operation_seconds_bucket{"
				    "op=\"%s\",le=\"%g\"} %llu\n",
				    kv_op_names[op],
				    (double)kv_time_le_ns[i] / 1e9,
				    (unsigned long long)cum);
			else
				put(o, "milterhost_kv_operation_seconds_bucket{"
				    "op=\"%s\",le=\"+Inf\"} %llu\n",
				    kv_op_names[op], (unsigned long long)cum);
		}
		put(o, "milterhost_kv_operation_seconds_sum{op=\"%s\"} %.9f\n",
		    kv_op_names[op], (double)st.sum_ns[op] / 1e9);
		/* The buckets' total, so that the two always agree. */
		put(o, "milterhost_kv_operation_seconds_count{op=\"%s\"} "
		    "%llu\n", kv_op_names[op], (unsigned long long)cum);
	}
	if (strcmp(st.backend, "memory") == 0) {
		family(o, "milterhost_kv_memory_bytes", "gauge", "Bytes the "
		    "memory store holds, as its bound counts them (keys, "
		    "values and a header per entry).");
		put(o, "milterhost_kv_memory_bytes %zu\n", st.memory_bytes);
		family(o, "milterhost_kv_memory_max_bytes", "gauge", "The "
		    "memory store's bound (kv_memory_max_bytes).");
		put(o, "milterhost_kv_memory_max_bytes %zu\n", st.memory_max);
		family(o, "milterhost_kv_memory_entries", "gauge", "Entries "
		    "in the memory store (expired ones not yet removed "
		    "included).");
		put(o, "milterhost_kv_memory_entries %zu\n", st.memory_entries);
		family(o, "milterhost_kv_memory_evictions_total", "counter",
		    "Entries the memory store evicted, before they expired, "
		    "to make room for a write.");
		put(o, "milterhost_kv_memory_evictions_total %llu\n",
		    (unsigned long long)st.memory_evictions);
	} else {
		family(o, "milterhost_kv_redis_connects_total", "counter",
		    "Connection attempts to Redis (a thread's first call, and "
		    "each reconnect), by result: ok once AUTH and SELECT "
		    "succeeded.");
		put(o, "milterhost_kv_redis_connects_total{result=\"ok\"} "
		    "%llu\n", (unsigned long long)st.redis_connects_ok);
		put(o, "milterhost_kv_redis_connects_total{result=\"failed\"} "
		    "%llu\n", (unsigned long long)st.redis_connects_failed);
		family(o, "milterhost_kv_redis_connections", "gauge", "Connections "
		    "to Redis open now (one per daemon thread that used the "
		    "store).");
		put(o, "milterhost_kv_redis_connections %llu\n",
		    (unsigned long long)st.redis_connections);
	}
}

char *
metrics_render(size_t *len)
{
	struct out o = { .cap = 16384 };

	if ((o.buf = malloc(o.cap)) == NULL)
		return NULL;
	pthread_mutex_lock(&blocks_lock);
	render_process(&o);
	render_messages(&o);
	render_instances(&o);
	pthread_mutex_unlock(&blocks_lock);
	render_kv(&o);
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}

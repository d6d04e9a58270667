/*
 * misuse - a test plugin that misuses the host functions, for the wire
 * test tests/wire/misuse.sh: the daemon must refuse each misuse, log it,
 * answer as the instance's on_error says where a callback fails, and go
 * on.
 *
 * Settings (each optional):
 *
 *   thread = yes		connect starts a thread of the plugin's that,
 *				until close stops and joins it, logs with the
 *				connection's ctx ("misuse thread ROUND") and
 *				each round calls one of the host functions that
 *				only a callback may call, which must be refused
 *   bad_rcpt = ADDR		envrcpt for ADDR calls host functions with NULL
 *				and impossible arguments, each of which must be
 *				refused; the callback then counts as failed
 *   null_ctx = yes		data calls every host function with a NULL
 *				context, each refused, and logs a line without
 *				one ("misuse: a line without a context")
 *   log_lf = yes		eom logs a value with LFs ("misuse: value with
 *				LFs: one LF two LF three") and a 60 KB header
 *				value folded with LF ("misuse: big value: ...")
 *   empty_body_rcpt = ADDR	a message to ADDR gets an empty body:
 *				mh_body_replace(ctx, NULL, 0) at eom
 *
 * Each batch of misuse ends with the info line
 *
 *	misuse: WHAT: N calls, W not refused
 *
 * (WHAT: thread, bad arguments, NULL context); the test wants W = 0.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <milterhost/plugin.h>

#define ALL_ACTIONS (MH_ACT_ADDHDRS | MH_ACT_CHGBODY | MH_ACT_ADDRCPT |    \
	MH_ACT_DELRCPT | MH_ACT_CHGHDRS | MH_ACT_QUARANTINE |              \
	MH_ACT_CHGFROM | MH_ACT_ADDRCPT_PAR)

/* The thread's misuse rounds, one host function each (see round_ok). */
#define THREAD_CALLS 12
#define BIG_VALUE (60 * 1024)

struct misuse {
	bool thread;
	bool null_ctx;
	bool log_lf;
	char *bad_rcpt;
	char *empty_body_rcpt;
};

struct conn {
	mh_ctx *ctx;
	const struct misuse *m;
	const char *name;	/* the instance's, as the host gave it */
	pthread_t thread;
	bool running;
	bool stop;		/* atomic: close asks the thread to end */
	unsigned calls;		/* the thread's, read after the join */
	unsigned wrong;
};

struct msg {
	bool empty_body;
};

/* ---- init ----------------------------------------------------------------- */

static void
misuse_fini(void *state)
{
	struct misuse *m = state;

	free(m->bad_rcpt);
	free(m->empty_body_rcpt);
	free(m);
}

static int
set_key(const struct mh_init *init, struct misuse *m, const char *key,
	const char *value)
{
	bool *flag = strcmp(key, "thread") == 0 ? &m->thread :
	    strcmp(key, "null_ctx") == 0 ? &m->null_ctx :
	    strcmp(key, "log_lf") == 0 ? &m->log_lf : NULL;
	char **addr = strcmp(key, "bad_rcpt") == 0 ? &m->bad_rcpt :
	    strcmp(key, "empty_body_rcpt") == 0 ? &m->empty_body_rcpt : NULL;
	int b;

	if (flag != NULL) {
		if (mh_parse_bool(value, &b) < 0)
			return mh_init_error(init, key, "yes or no");
		*flag = b;
		return 0;
	}
	if (addr != NULL) {
		free(*addr);
		if ((*addr = strdup(value)) == NULL)
			return mh_init_error(init, key, "out of memory");
		return 0;
	}
	return mh_init_error(init, key, "unknown key");
}

static int
misuse_init(const struct mh_init *init, void **state)
{
	struct misuse *m = calloc(1, sizeof *m);

	if (m == NULL)
		return mh_init_error(init, NULL, "out of memory");
	for (size_t i = 0; i < init->nsettings; i++) {
		if (set_key(init, m, init->settings[i].key,
		    init->settings[i].value) < 0) {
			misuse_fini(m);
			return -1;
		}
	}
	*state = m;
	return 0;
}

/* ---- the thread -------------------------------------------------------- */

/* Round r's host call from the thread; true if it was refused. */
static bool
round_ok(mh_ctx *ctx, unsigned r)
{
	static const char *const lines[] = { "from a thread" };
	static int bogus;

	switch (r % THREAD_CALLS) {
	case 0:
		return mh_header_add(ctx, "X-Thread", "1") == MH_E_STAGE;
	case 1:
		return mh_set_reply(ctx, "550", "5.7.1", "thread") == MH_E_STAGE;
	case 2:
		return mh_set_reply_lines(ctx, "451", "4.7.1", lines, 1) ==
		    MH_E_STAGE;
	case 3:
		return mh_rcpt_add(ctx, "<thread@x>", NULL) == MH_E_STAGE;
	case 4:
		return mh_body_replace(ctx, "thread\r\n", 8) == MH_E_STAGE;
	case 5:
		return mh_quarantine(ctx, "thread") == MH_E_STAGE;
	case 6:
		return mh_progress(ctx) == MH_E_STAGE;
	case 7:
		return mh_macro(ctx, "i") == NULL;
	case 8:
		return mh_queue_id(ctx) == NULL;
	case 9:
		mh_set_conn_data(ctx, &bogus);
		return mh_conn_data(ctx) == NULL;
	case 10:
		mh_set_msg_data(ctx, &bogus);
		return mh_msg_data(ctx) == NULL;
	default:
		return mh_current_stage(ctx) == MH_STAGE_COUNT;
	}
}

static void *
misuse_thread(void *arg)
{
	struct timespec pause = { 0, 100 * 1000 };
	struct conn *c = arg;

	for (unsigned r = 0; !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE);
	    r++) {
		mh_log(c->ctx, MH_LOG_INFO, "misuse thread %u", r);
		if (!round_ok(c->ctx, r))
			c->wrong++;
		/* These two may be called from any thread. */
		if (mh_instance_state(c->ctx) != c->m ||
		    mh_instance_name(c->ctx) != c->name)
			c->wrong++;
		c->calls++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* ---- misuse on the session's thread ------------------------------------ */

static void
summary(mh_ctx *ctx, const char *what, unsigned calls, unsigned wrong)
{
	mh_log(ctx, MH_LOG_INFO, "misuse: %s: %u calls, %u not refused", what,
	    calls, wrong);
}

/* mh_vlog with a NULL format, which mh_log cannot be given uncaught. */
static void
vlog_null(mh_ctx *ctx, ...)
{
	va_list ap;

	va_start(ap, ctx);
	mh_vlog(ctx, MH_LOG_INFO, NULL, ap);
	va_end(ap);
}

/* Every host function with NULL and impossible arguments. */
static void
bad_arguments(mh_ctx *ctx)
{
	static const char *const hole[] = { "one", NULL, "three" };
	int rc[] = {
		mh_header_add(ctx, NULL, "v"),
		mh_header_add(ctx, "X-A", NULL),
		mh_header_insert(ctx, 0, NULL, "v"),
		mh_header_insert(ctx, 0, "X-A", NULL),
		mh_header_change(ctx, NULL, 1, "v"),
		mh_header_delete(ctx, NULL, 1),
		mh_body_replace(ctx, NULL, 5),
		mh_body_replace(ctx, "x", SIZE_MAX),
		mh_rcpt_add(ctx, NULL, NULL),
		mh_rcpt_delete(ctx, NULL),
		mh_from_change(ctx, NULL, NULL),
		mh_quarantine(ctx, NULL),
		mh_set_reply(ctx, NULL, NULL, "text"),
		mh_set_reply(ctx, "550", "5.7.1", NULL),
		mh_set_reply_lines(ctx, "550", "5.7.1", NULL, 3),
		mh_set_reply_lines(ctx, "550", "5.7.1", hole, 3),
		mh_set_mlreply(ctx, NULL, NULL, "one", (char *)NULL),
	};
	unsigned n = sizeof rc / sizeof rc[0], wrong = 0;

	for (unsigned i = 0; i < n; i++)
		if (rc[i] != MH_E_INVALID)
			wrong++;
	if (mh_progress(ctx) != MH_E_STAGE)
		wrong++;
	if (mh_macro(ctx, NULL) != NULL)
		wrong++;
	vlog_null(ctx);
	summary(ctx, "bad arguments", n + 3, wrong);
}

/* Every host function with a NULL context. */
static void
null_context(mh_ctx *ctx)
{
	static const char *const one[] = { "one" };
	int rc[] = {
		mh_set_reply(NULL, "550", "5.7.1", "x"),
		mh_set_mlreply(NULL, "550", "5.7.1", "a", (char *)NULL),
		mh_set_reply_lines(NULL, "550", "5.7.1", one, 1),
		mh_header_add(NULL, "X-A", "v"),
		mh_header_insert(NULL, 0, "X-A", "v"),
		mh_header_change(NULL, "X-A", 1, "v"),
		mh_header_delete(NULL, "X-A", 1),
		mh_body_replace(NULL, "b\r\n", 3),
		mh_rcpt_add(NULL, "<n@x>", NULL),
		mh_rcpt_delete(NULL, "<r@x>"),
		mh_from_change(NULL, "<f@x>", NULL),
		mh_quarantine(NULL, "held"),
		mh_progress(NULL),
	};
	unsigned n = sizeof rc / sizeof rc[0], wrong = 0;

	for (unsigned i = 0; i < n; i++)
		if (rc[i] != MH_E_INVALID)
			wrong++;
	mh_set_conn_data(NULL, &n);
	mh_set_msg_data(NULL, &n);
	if (mh_instance_state(NULL) != NULL || mh_instance_name(NULL) != NULL ||
	    mh_current_stage(NULL) != MH_STAGE_COUNT ||
	    mh_conn_data(NULL) != NULL || mh_msg_data(NULL) != NULL ||
	    mh_macro(NULL, "i") != NULL || mh_queue_id(NULL) != NULL ||
	    mh_client_address(NULL) != NULL)
		wrong++;
	mh_log(NULL, MH_LOG_INFO, "misuse: a line without a context");
	summary(ctx, "NULL context", n + 10, wrong);
}

/* A header value of BIG_VALUE bytes, folded with LF and tab. */
static void
log_big_value(mh_ctx *ctx)
{
	char *v = malloc(BIG_VALUE + 1);

	if (v == NULL)
		return;
	for (size_t i = 0; i < BIG_VALUE; i++)
		v[i] = i % 78 == 76 ? '\n' : i % 78 == 77 ? '\t' : 'b';
	v[BIG_VALUE] = '\0';
	mh_log(ctx, MH_LOG_INFO, "misuse: big value: %s", v);
	free(v);
}

/* ---- callbacks ----------------------------------------------------------- */

static mh_status
misuse_connect(mh_ctx *ctx, const char *hostname,
	       const struct sockaddr *addr)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return MH_FAIL;
	c->ctx = ctx;
	c->m = mh_instance_state(ctx);
	c->name = mh_instance_name(ctx);
	mh_set_conn_data(ctx, c);
	if (c->m->thread && pthread_create(&c->thread, NULL, misuse_thread,
	    c) == 0)
		c->running = true;
	return MH_CONTINUE;
}

/* The other stages only give the thread events to run beside. */
static mh_status
misuse_helo(mh_ctx *ctx, const char *name)
{
	return MH_CONTINUE;
}

static mh_status
misuse_header(mh_ctx *ctx, const char *name, const char *value)
{
	return MH_CONTINUE;
}

static mh_status
misuse_eoh(mh_ctx *ctx)
{
	return MH_CONTINUE;
}

static mh_status
misuse_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	return MH_CONTINUE;
}

static mh_status
misuse_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	free(mh_msg_data(ctx));
	mh_set_msg_data(ctx, calloc(1, sizeof(struct msg)));
	return mh_msg_data(ctx) != NULL ? MH_CONTINUE : MH_FAIL;
}

static mh_status
misuse_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	const struct misuse *m = mh_instance_state(ctx);
	struct msg *msg = mh_msg_data(ctx);

	if (m->bad_rcpt != NULL && strcmp(rcpt, m->bad_rcpt) == 0)
		bad_arguments(ctx);
	if (msg != NULL && m->empty_body_rcpt != NULL &&
	    strcmp(rcpt, m->empty_body_rcpt) == 0)
		msg->empty_body = true;
	return MH_CONTINUE;
}

static mh_status
misuse_data(mh_ctx *ctx)
{
	const struct misuse *m = mh_instance_state(ctx);

	if (m->null_ctx)
		null_context(ctx);
	return MH_CONTINUE;
}

static void
free_msg(mh_ctx *ctx)
{
	free(mh_msg_data(ctx));
	mh_set_msg_data(ctx, NULL);
}

static mh_status
misuse_eom(mh_ctx *ctx)
{
	const struct misuse *m = mh_instance_state(ctx);
	struct msg *msg = mh_msg_data(ctx);
	int rc = MH_OK;

	if (m->log_lf) {
		mh_log(ctx, MH_LOG_INFO, "misuse: value with LFs: %s",
		    "one\ntwo\nthree");
		log_big_value(ctx);
	}
	if (msg != NULL && msg->empty_body) {
		rc = mh_body_replace(ctx, NULL, 0);
		mh_log(ctx, MH_LOG_INFO, "misuse: empty body: %s",
		    mh_strerror(rc));
	}
	free_msg(ctx);
	return rc == MH_OK ? MH_CONTINUE : MH_FAIL;
}

static void
misuse_abort(mh_ctx *ctx)
{
	free_msg(ctx);
}

/* The thread must be gone before close returns: then the ctx is. */
static void
misuse_close(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	free_msg(ctx);
	if (c == NULL)
		return;
	if (c->running) {
		__atomic_store_n(&c->stop, true, __ATOMIC_RELEASE);
		pthread_join(c->thread, NULL);
		summary(ctx, "thread", c->calls, c->wrong);
	}
	free(c);
	mh_set_conn_data(ctx, NULL);
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "misuse",
	.version = "1.0",
	.description = "misuses the host functions",
	.actions = ALL_ACTIONS,
	.init = misuse_init,
	.fini = misuse_fini,
	.connect = misuse_connect,
	.helo = misuse_helo,
	.envfrom = misuse_envfrom,
	.envrcpt = misuse_envrcpt,
	.data = misuse_data,
	.header = misuse_header,
	.eoh = misuse_eoh,
	.body = misuse_body,
	.eom = misuse_eom,
	.abort = misuse_abort,
	.close = misuse_close,
};

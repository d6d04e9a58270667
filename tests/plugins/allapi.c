/*
 * allapi - a test plugin that calls every host function of
 * <milterhost/plugin.h>.
 *
 * Loading it with RTLD_NOW proves that the program exports all of them;
 * running it through a session shows that they work from a plugin.
 *
 * changes = yes	eom makes one message change of every kind.
 * reject_rcpt = ADDR	envrcpt refuses the recipient ADDR with a
 *			two-line reply (set three ways; the last wins).
 *
 * Per connection it counts messages, per message recipients, in the
 * data slots; a missing slot where one must be makes the callback fail.
 * At eom it counts the messages in the key-value store (ABI 1.4), under
 * the namespace "allapi" its init declares: key "messages".
 * So does a host function that refuses a request.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <milterhost/plugin.h>

struct allapi {
	bool changes;
	char *reject_rcpt;
};

struct conn {
	unsigned messages;
};

struct msg {
	unsigned rcpts;
};

static void
note(mh_ctx *ctx, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
note(mh_ctx *ctx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	mh_vlog(ctx, MH_LOG_DEBUG, fmt, ap);
	va_end(ap);
}

static void
allapi_fini(void *state)
{
	struct allapi *a = state;

	free(a->reject_rcpt);
	free(a);
}

static int
set_key(const struct mh_init *init, struct allapi *a, const char *key,
	const char *value)
{
	int flag;

	if (strcmp(key, "changes") == 0) {
		if (mh_parse_bool(value, &flag) < 0)
			return mh_init_error(init, key, "expected yes or no, "
			    "got '%s'", value);
		a->changes = flag;
		return 0;
	}
	if (strcmp(key, "reject_rcpt") == 0) {
		free(a->reject_rcpt);
		if ((a->reject_rcpt = strdup(value)) == NULL)
			return mh_init_error(init, key, "out of memory");
		return 0;
	}
	return mh_init_error(init, key, "unknown key (allapi takes changes "
	    "and reject_rcpt)");
}

static int
allapi_init(const struct mh_init *init, void **state)
{
	struct allapi *a = calloc(1, sizeof *a);

	if (a == NULL)
		return mh_init_error(init, NULL, "out of memory");
	for (size_t i = 0; i < init->nsettings; i++) {
		if (set_key(init, a, init->settings[i].key,
		    init->settings[i].value) < 0) {
			allapi_fini(a);
			return -1;
		}
	}
	if (mh_declare_kv_namespace(init, "allapi") != MH_OK) {
		allapi_fini(a);
		return -1;
	}
	*state = a;
	return 0;
}

static mh_status
allapi_connect(mh_ctx *ctx, const char *hostname,
	       const struct sockaddr *addr)
{
	struct conn *c = calloc(1, sizeof *c);
	const char *client = mh_client_address(ctx);

	if (c == NULL)
		return MH_FAIL;
	/* The host frees it after close (ABI 1.1). */
	if (mh_set_conn_data_free(ctx, c, free) != MH_OK) {
		free(c);
		return MH_FAIL;
	}
	mh_log(ctx, MH_LOG_DEBUG, "connect from %s [%s]", hostname,
	    client ? client : "unknown");
	return MH_CONTINUE;
}

static mh_status
allapi_helo(mh_ctx *ctx, const char *name)
{
	return mh_conn_data(ctx) != NULL ? MH_CONTINUE : MH_FAIL;
}

static mh_status
allapi_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	struct conn *c = mh_conn_data(ctx);
	struct msg *m;
	const char *qid = mh_queue_id(ctx);
	const char *addr = mh_macro(ctx, "{mail_addr}");

	if (c == NULL || (m = calloc(1, sizeof *m)) == NULL)
		return MH_FAIL;
	c->messages++;
	/* Freed by eom or abort itself; the destructor is not called then. */
	if (mh_set_msg_data_free(ctx, m, free) != MH_OK) {
		free(m);
		return MH_FAIL;
	}
	note(ctx, "message %u from %s (queue id %s, mail_addr %s)",
	    c->messages, sender, qid ? qid : "none", addr ? addr : "none");
	return MH_CONTINUE;
}

static mh_status
reject(mh_ctx *ctx)
{
	static const char *const lines[] = {
		"rejected by allapi", "as asked by its configuration"
	};

	if (mh_set_reply(ctx, "550", "5.7.1", "first try") != MH_OK ||
	    mh_set_mlreply(ctx, "550", "5.7.1", "second", "try", NULL) !=
	    MH_OK ||
	    mh_set_reply_lines(ctx, "550", "5.7.1", lines, 2) != MH_OK)
		return MH_FAIL;
	return MH_REJECT;
}

static mh_status
allapi_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	struct allapi *a = mh_instance_state(ctx);
	struct msg *m = mh_msg_data(ctx);

	if (m == NULL)
		return MH_FAIL;
	m->rcpts++;
	if (a->reject_rcpt != NULL && strcmp(rcpt, a->reject_rcpt) == 0)
		return reject(ctx);
	return MH_CONTINUE;
}

/* One change of every kind; MH_OK or the first refusal. */
static int
make_changes(mh_ctx *ctx)
{
	static const char body[] = "replaced by allapi\r\n";
	int rc;

	if ((rc = mh_header_add(ctx, "X-Allapi", "added")) != MH_OK ||
	    (rc = mh_header_insert(ctx, 0, "X-Allapi-Top", "inserted")) !=
	    MH_OK ||
	    (rc = mh_header_change(ctx, "Subject", 1, "changed")) != MH_OK ||
	    (rc = mh_header_delete(ctx, "X-Spam", 1)) != MH_OK ||
	    (rc = mh_body_replace(ctx, body, sizeof body - 1)) != MH_OK ||
	    (rc = mh_rcpt_add(ctx, "<added@example.org>", NULL)) != MH_OK ||
	    (rc = mh_rcpt_add(ctx, "<added2@example.org>", "NOTIFY=NEVER")) !=
	    MH_OK ||
	    (rc = mh_rcpt_delete(ctx, "<old@example.org>")) != MH_OK ||
	    (rc = mh_from_change(ctx, "<new@example.org>", NULL)) != MH_OK ||
	    (rc = mh_quarantine(ctx, "held by allapi")) != MH_OK)
		return rc;
	return mh_progress(ctx);
}

static void
free_msg(mh_ctx *ctx)
{
	free(mh_msg_data(ctx));
	mh_set_msg_data(ctx, NULL);
}

/* Every function of the key-value store, each with the answer it must
 * give; MH_OK if they all did. */
static int
use_store(mh_ctx *ctx)
{
	char buf[32];
	size_t len = 0;
	long long n = 0;

	if (mh_kv_set(ctx, "scratch", "x", 1, 60) != MH_OK ||
	    mh_kv_add(ctx, "scratch", "y", 1, 60) != MH_E_EXISTS ||
	    mh_kv_delete(ctx, "scratch") != MH_OK ||
	    mh_kv_get(ctx, "scratch", buf, sizeof buf, &len) !=
	    MH_E_NOTFOUND ||
	    mh_kv_incr(ctx, "messages", 1, 0, &n) != MH_OK ||
	    mh_kv_get(ctx, "messages", buf, sizeof buf, &len) != MH_OK)
		return MH_E_INVALID;
	mh_log(ctx, MH_LOG_DEBUG, "message %lld (%.*s)", n,
	    (int)(len < sizeof buf ? len : sizeof buf), buf);
	return MH_OK;
}

static mh_status
allapi_eom(mh_ctx *ctx)
{
	struct allapi *a = mh_instance_state(ctx);
	struct msg *m = mh_msg_data(ctx);
	int rc = MH_OK;

	if (m == NULL || mh_current_stage(ctx) != MH_STAGE_EOM) {
		free_msg(ctx);
		return MH_FAIL;
	}
	if (use_store(ctx) != MH_OK) {
		free_msg(ctx);
		return MH_FAIL;
	}
	if (a->changes)
		rc = make_changes(ctx);
	note(ctx, "instance %s: %u recipients, changes: %s",
	    mh_instance_name(ctx), m->rcpts, mh_strerror(rc));
	free_msg(ctx);
	return rc == MH_OK ? MH_CONTINUE : MH_FAIL;
}

static void
allapi_abort(mh_ctx *ctx)
{
	free_msg(ctx);
}

/* The connection slot is left to its destructor. */
static void
allapi_close(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	mh_log(ctx, MH_LOG_DEBUG, "close after %u messages",
	    c != NULL ? c->messages : 0);
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "allapi",
	.version = "1.0",
	.description = "calls every host function",
	.actions = MH_ACT_ADDHDRS | MH_ACT_CHGBODY | MH_ACT_ADDRCPT |
	    MH_ACT_DELRCPT | MH_ACT_CHGHDRS | MH_ACT_QUARANTINE |
	    MH_ACT_CHGFROM | MH_ACT_ADDRCPT_PAR,
	.macros = { [MH_STAGE_ENVFROM] = "{mail_addr} i" },
	.init = allapi_init,
	.fini = allapi_fini,
	.connect = allapi_connect,
	.helo = allapi_helo,
	.envfrom = allapi_envfrom,
	.envrcpt = allapi_envrcpt,
	.eom = allapi_eom,
	.abort = allapi_abort,
	.close = allapi_close,
};

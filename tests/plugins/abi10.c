/*
 * abi10 - a test plugin written to the plugin ABI 1.0, built against each
 * header kept as released: as abi10 against
 * tests/abi/milterhost-1.0/milterhost/plugin.h, as abi10_11 and abi10_12
 * against those of 1.1 and 1.2; and as abi10_now against the current
 * header.  test_loader runs them through the same session and requires the same
 * calls, verdicts, replies, changes and log lines: what keeps plugins
 * built for 1.0 working while later minors extend the ABI.  Use only what
 * the 1.0 header has.
 *
 * reject_rcpt = ADDR	envrcpt refuses ADDR (one-line 550 reply).
 * tempfail_rcpt = ADDR	envrcpt defers ADDR (two-line 451 reply).
 * changes = BOOL	eom makes a change of every kind, deleting the
 *			header X-Drop by a change to NULL as 1.0 allowed.
 *
 * A message with the subject "reject me" is refused at eom.  Per
 * connection it counts messages, per message recipients, headers and
 * body bytes, in the data slots.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <milterhost/plugin.h>

/* The build meant to use the 1.0 header must not get the current one. */
#if defined(ABI10_FIXTURE) && (MH_ABI_MAJOR != 1 || MH_ABI_MINOR != 0)
#error "abi10 must be built against the ABI 1.0 header fixture"
#endif
#if defined(ABI11_FIXTURE) && (MH_ABI_MAJOR != 1 || MH_ABI_MINOR != 1)
#error "abi10_11 must be built against the ABI 1.1 header fixture"
#endif
#if defined(ABI12_FIXTURE) && (MH_ABI_MAJOR != 1 || MH_ABI_MINOR != 2)
#error "abi10_12 must be built against the ABI 1.2 header fixture"
#endif
#if defined(ABI13_FIXTURE) && (MH_ABI_MAJOR != 1 || MH_ABI_MINOR != 3)
#error "abi10_13 must be built against the ABI 1.3 header fixture"
#endif

struct abi10 {
	char *reject_rcpt;
	char *tempfail_rcpt;
	bool changes;
};

struct conn {
	unsigned messages;
};

struct msg {
	unsigned rcpts;
	unsigned headers;
	size_t bytes;
	char first_rcpt[128];
	char subject[128];
};

static void
abi10_fini(void *state)
{
	struct abi10 *a = state;

	free(a->reject_rcpt);
	free(a->tempfail_rcpt);
	free(a);
}

static int
set_address(const struct mh_init *init, const char *key, const char *value,
	    char **to)
{
	free(*to);
	if ((*to = strdup(value)) == NULL)
		return mh_init_error(init, key, "out of memory");
	return 0;
}

static int
set_key(const struct mh_init *init, struct abi10 *a, const char *key,
	const char *value)
{
	int flag;

	if (strcmp(key, "reject_rcpt") == 0)
		return set_address(init, key, value, &a->reject_rcpt);
	if (strcmp(key, "tempfail_rcpt") == 0)
		return set_address(init, key, value, &a->tempfail_rcpt);
	if (strcmp(key, "changes") == 0) {
		if (mh_parse_bool(value, &flag) < 0)
			return mh_init_error(init, key, "expected yes or no, "
			    "got '%s'", value);
		a->changes = flag;
		return 0;
	}
	return mh_init_error(init, key, "unknown key");
}

static int
abi10_init(const struct mh_init *init, void **state)
{
	struct abi10 *a = calloc(1, sizeof *a);

	if (a == NULL)
		return mh_init_error(init, NULL, "out of memory");
	for (size_t i = 0; i < init->nsettings; i++) {
		if (set_key(init, a, init->settings[i].key,
		    init->settings[i].value) < 0) {
			abi10_fini(a);
			return -1;
		}
	}
	*state = a;
	return 0;
}

static const char *
or_none(const char *s)
{
	return s != NULL ? s : "none";
}

static mh_status
abi10_connect(mh_ctx *ctx, const char *hostname,
	      const struct sockaddr *addr)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL)
		return MH_FAIL;
	mh_set_conn_data(ctx, c);
	mh_log(ctx, MH_LOG_NOTICE, "connect from %s [%s] to %s, family %d",
	    hostname, or_none(mh_client_address(ctx)),
	    or_none(mh_macro(ctx, "j")), addr != NULL ? addr->sa_family : -1);
	return MH_CONTINUE;
}

static mh_status
abi10_helo(mh_ctx *ctx, const char *name)
{
	mh_log(ctx, MH_LOG_NOTICE, "helo %s at stage %d", name,
	    (int)mh_current_stage(ctx));
	return mh_conn_data(ctx) != NULL ? MH_CONTINUE : MH_FAIL;
}

static mh_status
abi10_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	struct conn *c = mh_conn_data(ctx);
	struct msg *m;

	if (c == NULL || (m = calloc(1, sizeof *m)) == NULL)
		return MH_FAIL;
	c->messages++;
	mh_set_msg_data(ctx, m);
	mh_log(ctx, MH_LOG_NOTICE, "message %u from %s (%s), mail_addr %s, "
	    "queue id %s", c->messages, sender, or_none(args[0]),
	    or_none(mh_macro(ctx, "{mail_addr}")), or_none(mh_queue_id(ctx)));
	return MH_CONTINUE;
}

static mh_status
refuse_rcpt(mh_ctx *ctx, const struct abi10 *a, const char *rcpt)
{
	if (a->reject_rcpt != NULL && strcmp(rcpt, a->reject_rcpt) == 0)
		return mh_set_reply(ctx, "550", "5.7.1", "no such user here")
		    == MH_OK ? MH_REJECT : MH_FAIL;
	if (a->tempfail_rcpt != NULL && strcmp(rcpt, a->tempfail_rcpt) == 0)
		return mh_set_mlreply(ctx, "451", "4.7.1", "mailbox busy",
		    "try again later", NULL) == MH_OK ? MH_TEMPFAIL : MH_FAIL;
	return MH_CONTINUE;
}

static mh_status
abi10_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	struct msg *m = mh_msg_data(ctx);
	mh_status st;

	if (m == NULL)
		return MH_FAIL;
	if ((st = refuse_rcpt(ctx, mh_instance_state(ctx), rcpt)) !=
	    MH_CONTINUE)
		return st;
	if (m->rcpts++ == 0)
		snprintf(m->first_rcpt, sizeof m->first_rcpt, "%s", rcpt);
	return MH_CONTINUE;
}

static mh_status
abi10_data(mh_ctx *ctx)
{
	return mh_current_stage(ctx) == MH_STAGE_DATA ? MH_CONTINUE : MH_FAIL;
}

static mh_status
abi10_unknown(mh_ctx *ctx, const char *command)
{
	mh_log(ctx, MH_LOG_NOTICE, "unknown command %s", command);
	return MH_CONTINUE;
}

static mh_status
abi10_header(mh_ctx *ctx, const char *name, const char *value)
{
	struct msg *m = mh_msg_data(ctx);

	if (m == NULL)
		return MH_FAIL;
	m->headers++;
	if (strcmp(name, "Subject") == 0)
		snprintf(m->subject, sizeof m->subject, "%s", value);
	return MH_CONTINUE;
}

static mh_status
abi10_eoh(mh_ctx *ctx)
{
	struct msg *m = mh_msg_data(ctx);

	mh_log(ctx, MH_LOG_NOTICE, "%u headers", m != NULL ? m->headers : 0);
	return m != NULL ? MH_CONTINUE : MH_FAIL;
}

static mh_status
abi10_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	struct msg *m = mh_msg_data(ctx);

	if (m == NULL)
		return MH_FAIL;
	m->bytes += len;
	return MH_CONTINUE;
}

/* A change of every kind; MH_OK or the first refusal. */
static int
make_changes(mh_ctx *ctx, const struct msg *m)
{
	static const char body[] = "body replaced by abi10\r\n";
	char text[160];
	int rc;

	snprintf(text, sizeof text, "rcpts=%u bytes=%zu", m->rcpts, m->bytes);
	if ((rc = mh_header_add(ctx, "X-Abi10", text)) != MH_OK ||
	    (rc = mh_header_insert(ctx, 0, "X-Abi10-Top", "first")) != MH_OK)
		return rc;
	snprintf(text, sizeof text, "[abi10] %s", m->subject);
	if ((rc = mh_header_change(ctx, "Subject", 1, text)) != MH_OK ||
	    (rc = mh_header_change(ctx, "X-Drop", 1, NULL)) != MH_OK ||
	    (rc = mh_header_delete(ctx, "X-Old", 1)) != MH_OK ||
	    (rc = mh_body_replace(ctx, body, sizeof body - 1)) != MH_OK ||
	    (rc = mh_rcpt_add(ctx, "<copy@example.org>", NULL)) != MH_OK ||
	    (rc = mh_rcpt_delete(ctx, m->first_rcpt)) != MH_OK ||
	    (rc = mh_from_change(ctx, "<abi10@example.org>", NULL)) !=
	    MH_OK ||
	    (rc = mh_quarantine(ctx, "held by abi10")) != MH_OK)
		return rc;
	return mh_progress(ctx);
}

static void
free_msg(mh_ctx *ctx)
{
	free(mh_msg_data(ctx));
	mh_set_msg_data(ctx, NULL);
}

static mh_status
abi10_eom(mh_ctx *ctx)
{
	struct abi10 *a = mh_instance_state(ctx);
	struct msg *m = mh_msg_data(ctx);
	mh_status st = MH_CONTINUE;
	int rc = MH_OK;

	if (m == NULL)
		return MH_FAIL;
	if (strcmp(m->subject, "reject me") == 0)
		st = mh_set_mlreply(ctx, "554", "5.7.0", "rejected by abi10",
		    "subject was: reject me", NULL) == MH_OK ? MH_REJECT :
		    MH_FAIL;
	else if (a->changes && (rc = make_changes(ctx, m)) != MH_OK)
		st = MH_FAIL;
	mh_log(ctx, MH_LOG_NOTICE, "eom of %s: %u rcpts, %zu bytes, changes: "
	    "%s, queue id %s", mh_instance_name(ctx), m->rcpts, m->bytes,
	    mh_strerror(rc), or_none(mh_macro(ctx, "i")));
	free_msg(ctx);
	return st;
}

static void
abi10_abort(mh_ctx *ctx)
{
	struct msg *m = mh_msg_data(ctx);

	mh_log(ctx, MH_LOG_NOTICE, "abort after %u rcpts",
	    m != NULL ? m->rcpts : 0);
	free_msg(ctx);
}

static void
abi10_close(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	mh_log(ctx, MH_LOG_NOTICE, "close after %u messages",
	    c != NULL ? c->messages : 0);
	free(c);
	mh_set_conn_data(ctx, NULL);
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "abi10",
	.version = "1.0",
	.description = "written to plugin ABI 1.0",
	.actions = MH_ACT_ADDHDRS | MH_ACT_CHGHDRS | MH_ACT_CHGBODY |
	    MH_ACT_ADDRCPT | MH_ACT_DELRCPT | MH_ACT_CHGFROM |
	    MH_ACT_QUARANTINE,
	.macros = {
		[MH_STAGE_CONNECT] = "j {client_addr}",
		[MH_STAGE_ENVFROM] = "{mail_addr} i",
		[MH_STAGE_EOM] = "i",
	},
	.init = abi10_init,
	.fini = abi10_fini,
	.connect = abi10_connect,
	.helo = abi10_helo,
	.envfrom = abi10_envfrom,
	.envrcpt = abi10_envrcpt,
	.data = abi10_data,
	.unknown = abi10_unknown,
	.header = abi10_header,
	.eoh = abi10_eoh,
	.body = abi10_body,
	.eom = abi10_eom,
	.abort = abi10_abort,
	.close = abi10_close,
};

/*
 * recorder - a test plugin that implements every callback and logs each
 * call, with its arguments, as one line at notice level, so that the wire
 * tests can compare what the MTA sent with what reached the plugin.
 *
 * The lines (mh_log adds the queue id and "[instance]" in front):
 *
 *	rec connect host=H family=4|6|unix|none addr=A sa=S
 *		A is mh_client_address or NULL; S is what the sockaddr
 *		holds: "ADDR port N", "PATH" for unix, or NULL
 *	rec helo NAME
 *	rec envfrom SENDER args=[A|B]	(also envrcpt; [] without args)
 *	rec data
 *	rec unknown COMMAND
 *	rec header NAME="VALUE"		value escaped: \n \t \r \" \\ \xHH
 *	rec eoh
 *	rec body len=N total=T cksum=C	T, C: bytes of body so far and their
 *					POSIX cksum(1) CRC
 *	rec eom total=T cksum=C
 *	rec abort
 *	rec close
 *	rec macro STAGE NAME=VALUE	(or NAME=NULL) for each "show" entry
 *					of the stage, after the line above
 *	rec error TEXT			a data slot the host should have
 *					cleared was not
 *
 * Settings:
 *	show = STAGE:NAME ...	macros to print at a stage (a list key),
 *				e.g. show = envfrom:i envfrom:{auth_authen}
 *	unused = STAGE		a stage the instance declares unused
 *				(mh_declare_unused, ABI 1.3; a list key):
 *				its callback there must never be called
 *
 * The descriptor is fixed per shared object, so variants are built from
 * this file with -D flags:
 *	REC_LEADSPC	flags MH_WANT_HDR_LEADSPC
 *	REC_REJRCPT	flags MH_WANT_REJECTED_RCPTS
 *	REC_MACROS	declares macros at every macro stage (see below)
 *	REC_ACTIONS=X	declares actions X (MH_ACT_* bits)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <milterhost/plugin.h>

#ifndef REC_ACTIONS
#define REC_ACTIONS 0UL
#endif
#ifdef REC_LEADSPC
#define REC_FLAG_LEADSPC MH_WANT_HDR_LEADSPC
#else
#define REC_FLAG_LEADSPC 0UL
#endif
#ifdef REC_REJRCPT
#define REC_FLAG_REJRCPT MH_WANT_REJECTED_RCPTS
#else
#define REC_FLAG_REJRCPT 0UL
#endif

#define SHOW_MAX 32

struct show {
	mh_stage stage;
	char *name;
};

struct recorder {
	struct show show[SHOW_MAX];
	size_t nshow;
};

/* Per message: the body seen so far. */
struct msg {
	unsigned long long total;
	uint32_t crc; /* CRC of the bytes, before the length is added */
};

static const char *const stage_names[MH_STAGE_COUNT] = {
	"connect", "helo", "envfrom", "envrcpt", "data", "unknown",
	"header", "eoh", "body", "eom", "abort", "close"
};

/* ---- POSIX cksum ------------------------------------------------------ */

static uint32_t
crc_byte(uint32_t crc, unsigned char c)
{
	crc ^= (uint32_t)c << 24;
	for (int i = 0; i < 8; i++)
		crc = crc & 0x80000000U ? (crc << 1) ^ 0x04C11DB7U : crc << 1;
	return crc;
}

/* What cksum(1) prints for the bytes whose running CRC is crc. */
static uint32_t
crc_final(uint32_t crc, unsigned long long len)
{
	for (; len != 0; len >>= 8)
		crc = crc_byte(crc, (unsigned char)(len & 0xff));
	return ~crc;
}

/* ---- init ------------------------------------------------------------- */

static void
rec_fini(void *state)
{
	struct recorder *r = state;

	for (size_t i = 0; i < r->nshow; i++)
		free(r->show[i].name);
	free(r);
}

static int
add_show(const struct mh_init *init, struct recorder *r, const char *word)
{
	const char *colon = strchr(word, ':');
	size_t n;

	if (colon == NULL || colon[1] == '\0')
		return mh_init_error(init, "show", "'%s' is not STAGE:MACRO",
		    word);
	n = (size_t)(colon - word);
	for (int s = 0; s < MH_STAGE_COUNT; s++) {
		if (strlen(stage_names[s]) != n ||
		    strncmp(stage_names[s], word, n) != 0)
			continue;
		if (r->nshow == SHOW_MAX)
			return mh_init_error(init, "show", "more than %d "
			    "macros", SHOW_MAX);
		if ((r->show[r->nshow].name = strdup(colon + 1)) == NULL)
			return mh_init_error(init, "show", "out of memory");
		r->show[r->nshow++].stage = (mh_stage)s;
		return 0;
	}
	return mh_init_error(init, "show", "unknown stage in '%s'", word);
}

static int
parse_show(const struct mh_init *init, struct recorder *r, const char *value)
{
	char *copy = strdup(value), *word, *last;
	int rc = 0;

	if (copy == NULL)
		return mh_init_error(init, "show", "out of memory");
	for (word = strtok_r(copy, " \t", &last); word != NULL && rc == 0;
	    word = strtok_r(NULL, " \t", &last))
		rc = add_show(init, r, word);
	free(copy);
	return rc;
}

/* The host reports its own refusal (eom, abort, close). */
static int
declare_unused(const struct mh_init *init, const char *value)
{
	for (int s = 0; s < MH_STAGE_COUNT; s++)
		if (strcmp(stage_names[s], value) == 0)
			return mh_declare_unused(init, (mh_stage)s) == MH_OK ?
			    0 : -1;
	return mh_init_error(init, "unused", "unknown stage '%s'", value);
}

static int
rec_init(const struct mh_init *init, void **state)
{
	struct recorder *r = calloc(1, sizeof *r);

	if (r == NULL)
		return mh_init_error(init, NULL, "out of memory");
	for (size_t i = 0; i < init->nsettings; i++) {
		const struct mh_setting *s = &init->settings[i];
		int rc;

		if (strcmp(s->key, "show") == 0)
			rc = parse_show(init, r, s->value);
		else if (strcmp(s->key, "unused") == 0)
			rc = declare_unused(init, s->value);
		else
			rc = mh_init_error(init, s->key, "unknown key "
			    "(recorder takes show and unused)");
		if (rc < 0) {
			rec_fini(r);
			return -1;
		}
	}
	*state = r;
	return 0;
}

/* ---- logging ---------------------------------------------------------- */

static void
show_macros(mh_ctx *ctx, mh_stage stage)
{
	struct recorder *r = mh_instance_state(ctx);

	for (size_t i = 0; i < r->nshow; i++) {
		const char *v;

		if (r->show[i].stage != stage)
			continue;
		v = mh_macro(ctx, r->show[i].name);
		mh_log(ctx, MH_LOG_NOTICE, "rec macro %s %s=%s",
		    stage_names[stage], r->show[i].name, v ? v : "NULL");
	}
}

/* s, escaped into buf so that the log line shows every byte. */
static const char *
escape(char *buf, size_t size, const char *s)
{
	size_t o = 0;

	for (; *s != '\0' && o + 5 < size; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '\n')
			o += (size_t)snprintf(buf + o, size - o, "\\n");
		else if (c == '\t')
			o += (size_t)snprintf(buf + o, size - o, "\\t");
		else if (c == '\r')
			o += (size_t)snprintf(buf + o, size - o, "\\r");
		else if (c == '"' || c == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		else
			buf[o++] = (char)c;
	}
	buf[o] = '\0';
	return buf;
}

/* The ESMTP arguments as [A|B]. */
static const char *
join_args(char *buf, size_t size, const char *const *args)
{
	size_t o = 0;

	buf[o++] = '[';
	for (size_t i = 0; args != NULL && args[i] != NULL; i++)
		o += (size_t)snprintf(buf + o, size - o, "%s%s",
		    i > 0 ? "|" : "", args[i]);
	if (o > size - 2)
		o = size - 2;
	buf[o++] = ']';
	buf[o] = '\0';
	return buf;
}

/* ---- per-message state ------------------------------------------------ */

static struct msg *
message(mh_ctx *ctx)
{
	struct msg *m = mh_msg_data(ctx);

	if (m == NULL && (m = calloc(1, sizeof *m)) != NULL)
		mh_set_msg_data(ctx, m);
	return m;
}

static void
end_message(mh_ctx *ctx)
{
	free(mh_msg_data(ctx));
	mh_set_msg_data(ctx, NULL);
}

/* ---- callbacks -------------------------------------------------------- */

static void
describe_sockaddr(char *buf, size_t size, const struct sockaddr *sa,
    const char **family)
{
	char text[INET6_ADDRSTRLEN];

	*family = "none";
	snprintf(buf, size, "NULL");
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		*family = "4";
		inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
		snprintf(buf, size, "%s port %u", text, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		*family = "6";
		inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
		snprintf(buf, size, "%s port %u", text, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *un = (const void *)sa;

		*family = "unix";
		snprintf(buf, size, "%.*s", (int)sizeof un->sun_path,
		    un->sun_path);
	} else {
		*family = "other";
		snprintf(buf, size, "family %d", sa->sa_family);
	}
}

static mh_status
rec_connect(mh_ctx *ctx, const char *hostname, const struct sockaddr *addr)
{
	char sa[200];
	const char *family, *client = mh_client_address(ctx);

	if (mh_conn_data(ctx) != NULL)
		mh_log(ctx, MH_LOG_NOTICE, "rec error connection slot set "
		    "at connect");
	/* Freed at close: a slot not fresh at the next connect shows. */
	mh_set_conn_data(ctx, strdup(hostname));
	describe_sockaddr(sa, sizeof sa, addr, &family);
	mh_log(ctx, MH_LOG_NOTICE, "rec connect host=%s family=%s addr=%s "
	    "sa=%s", hostname, family, client ? client : "NULL", sa);
	show_macros(ctx, MH_STAGE_CONNECT);
	return MH_CONTINUE;
}

static mh_status
rec_helo(mh_ctx *ctx, const char *name)
{
	mh_log(ctx, MH_LOG_NOTICE, "rec helo %s", name);
	show_macros(ctx, MH_STAGE_HELO);
	return MH_CONTINUE;
}

static mh_status
rec_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	char buf[512];

	if (mh_msg_data(ctx) != NULL)
		mh_log(ctx, MH_LOG_NOTICE, "rec error message slot not "
		    "cleared before envfrom");
	if (message(ctx) == NULL)
		return MH_FAIL;
	mh_log(ctx, MH_LOG_NOTICE, "rec envfrom %s args=%s", sender,
	    join_args(buf, sizeof buf, args));
	show_macros(ctx, MH_STAGE_ENVFROM);
	return MH_CONTINUE;
}

static mh_status
rec_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	char buf[512];

	if (message(ctx) == NULL)
		return MH_FAIL;
	mh_log(ctx, MH_LOG_NOTICE, "rec envrcpt %s args=%s", rcpt,
	    join_args(buf, sizeof buf, args));
	show_macros(ctx, MH_STAGE_ENVRCPT);
	return MH_CONTINUE;
}

static mh_status
rec_data(mh_ctx *ctx)
{
	mh_log(ctx, MH_LOG_NOTICE, "rec data");
	show_macros(ctx, MH_STAGE_DATA);
	return MH_CONTINUE;
}

static mh_status
rec_unknown(mh_ctx *ctx, const char *command)
{
	char buf[600];

	mh_log(ctx, MH_LOG_NOTICE, "rec unknown %s",
	    escape(buf, sizeof buf, command));
	show_macros(ctx, MH_STAGE_UNKNOWN);
	return MH_CONTINUE;
}

static mh_status
rec_header(mh_ctx *ctx, const char *name, const char *value)
{
	char buf[800];

	mh_log(ctx, MH_LOG_NOTICE, "rec header %s=\"%s\"", name,
	    escape(buf, sizeof buf, value));
	show_macros(ctx, MH_STAGE_HEADER);
	return MH_CONTINUE;
}

static mh_status
rec_eoh(mh_ctx *ctx)
{
	mh_log(ctx, MH_LOG_NOTICE, "rec eoh");
	show_macros(ctx, MH_STAGE_EOH);
	return MH_CONTINUE;
}

static mh_status
rec_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	struct msg *m = message(ctx);

	if (m == NULL)
		return MH_FAIL;
	for (size_t i = 0; i < len; i++)
		m->crc = crc_byte(m->crc, chunk[i]);
	m->total += len;
	mh_log(ctx, MH_LOG_NOTICE, "rec body len=%zu total=%llu cksum=%lu",
	    len, m->total, (unsigned long)crc_final(m->crc, m->total));
	show_macros(ctx, MH_STAGE_BODY);
	return MH_CONTINUE;
}

static mh_status
rec_eom(mh_ctx *ctx)
{
	struct msg *m = message(ctx);

	if (m == NULL)
		return MH_FAIL;
	mh_log(ctx, MH_LOG_NOTICE, "rec eom total=%llu cksum=%lu", m->total,
	    (unsigned long)crc_final(m->crc, m->total));
	show_macros(ctx, MH_STAGE_EOM);
	end_message(ctx);
	return MH_CONTINUE;
}

static void
rec_abort(mh_ctx *ctx)
{
	mh_log(ctx, MH_LOG_NOTICE, "rec abort");
	end_message(ctx);
}

static void
rec_close(mh_ctx *ctx)
{
	if (mh_msg_data(ctx) != NULL)
		mh_log(ctx, MH_LOG_NOTICE, "rec error message slot still set "
		    "at close");
	free(mh_conn_data(ctx));
	mh_set_conn_data(ctx, NULL);
	mh_log(ctx, MH_LOG_NOTICE, "rec close");
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "recorder",
	.version = "1.0",
	.description = "logs every callback and its arguments (test plugin)",
	.actions = REC_ACTIONS,
	.flags = REC_FLAG_LEADSPC | REC_FLAG_REJRCPT,
#ifdef REC_MACROS
	.macros = {
		[MH_STAGE_CONNECT] = "{rec_conn}",
		[MH_STAGE_HELO] = "{rec_helo}",
		[MH_STAGE_ENVFROM] = "{auth_authen} {rec_from} i",
		[MH_STAGE_ENVRCPT] = "{rec_rcpt}",
		[MH_STAGE_DATA] = "{rec_data}",
		[MH_STAGE_EOH] = "{rec_eoh}",
		[MH_STAGE_EOM] = "{rec_eom}",
	},
#endif
	.list_keys = "show unused",
	.init = rec_init,
	.fini = rec_fini,
	.connect = rec_connect,
	.helo = rec_helo,
	.envfrom = rec_envfrom,
	.envrcpt = rec_envrcpt,
	.data = rec_data,
	.unknown = rec_unknown,
	.header = rec_header,
	.eoh = rec_eoh,
	.body = rec_body,
	.eom = rec_eom,
	.abort = rec_abort,
	.close = rec_close,
};

/*
 * ratelimit - the bundled milterhost plugin: at most N messages (or
 * recipients) per client network, sender, authenticated user or
 * recipient domain in a window of time, counted in the host's key-value
 * store, so that every milterhost sharing a Redis enforces one limit.
 *
 *	[plugin:per_client]
 *	module = ratelimit
 *	key = client_address
 *	limit = 100
 *	window = 1h
 *
 * key		what is counted per (required): client_address (the
 *		client's network: ipv4_prefix, ipv6_prefix; from connect,
 *		or the macro {client_addr} at MAIL FROM), sender (the
 *		envelope sender, lowercased; the null sender is not
 *		counted), auth_user (the SASL login, {auth_authen}; clients
 *		that did not authenticate are not counted) or
 *		recipient_domain (the domain of each recipient, lowercased).
 * count	messages (default) or recipients.
 * limit	how many per window (required), 1 to 1000000000.
 * window	the length of the window (default 1h; 1s to 30d).
 * window_type	fixed (default): the window starts with the first count
 *		and the count starts again from zero when it ends; sliding:
 *		the count of the current window of that length plus the
 *		previous window's weighted by how much of it still overlaps
 *		(the approximation Redis rate limiters use: two counters).
 * ipv4_prefix, ipv6_prefix
 *		the client network of key = client_address (default 32 and
 *		64: one IPv4 address, one IPv6 /64 as a site gets it).
 * reply	what the client hears over the limit (default "451 4.7.1
 *		Rate limit exceeded, please try again later"): a 4xx reply.
 * exempt_networks	clients never counted (a list key).
 * exempt_authenticated	yes: clients that authenticated are never
 *		counted (default no).
 * fail_open	yes (default): when the store does not answer, let the
 *		message through (logged); no: tempfail it.
 * namespace	the store namespace to count in (default: the instance
 *		name): instances (and hosts) with the same namespace and key
 *		share their counts.
 *
 * Where it decides: at MAIL FROM for key = client_address, sender and
 * auth_user counting messages (the key is known there: the whole
 * transaction is tempfailed); at each RCPT TO counting recipients or for
 * key = recipient_domain (that recipient is tempfailed, so the client
 * sends it again later; for recipient_domain counting messages, the first
 * recipient of each domain in a message counts the message for that
 * domain, and the others of the domain follow its answer).
 *
 * The count: one mh_kv_incr per thing counted, which is atomic in the
 * store, also between hosts; what it returns decides (over the limit:
 * tempfail), so of 2N messages sent at once to several hosts exactly N
 * are accepted.  Attempts refused in a sliding window are taken back
 * (an incr of -1), so that a client retrying while over the limit does
 * not keep itself there; in a fixed window they stay (the window ends
 * anyway).  A fixed window is one key (TTL: the window); a sliding one
 * is a key per window period (TTL: two periods) and a get of the
 * previous one.  Both use wall-clock time, so hosts sharing a Redis
 * should keep time (NTP).
 *
 * The instance state is read-only after init, so sessions share it
 * without locks; per message state lives in the message data slot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <milterhost/plugin.h>

#include "support.h"

#define DEFAULT_REPLY "451 4.7.1 Rate limit exceeded, please try again later"
#define MAX_LIMIT 1000000000UL
#define MAX_WINDOW (30UL * 86400)
/* A key part (sender, user, domain, network): room for the rest. */
#define PART_MAX 160

enum rl_key {
	KEY_CLIENT,
	KEY_SENDER,
	KEY_AUTH_USER,
	KEY_RCPT_DOMAIN
};

static const char *const key_names[] = {
	[KEY_CLIENT] = "client_address",
	[KEY_SENDER] = "sender",
	[KEY_AUTH_USER] = "auth_user",
	[KEY_RCPT_DOMAIN] = "recipient_domain",
};

struct ratelimit {
	enum rl_key key;
	bool recipients;        /* count = recipients */
	bool sliding;
	unsigned long limit;
	unsigned long window;   /* seconds */
	unsigned long v4bits, v6bits;
	struct bundled_tempfail reply;
	struct bundled_nets exempt;
	bool exempt_auth;
	bool fail_open;
};

/* Per message. */
struct message {
	bool exempt;            /* not counted at all */
	char what[PART_MAX];    /* that key's part, "" if not counted */
	/* recipient_domain counting messages: the domains of this message
	 * and their answers. */
	struct domain {
		char name[PART_MAX];
		mh_status answer;
	} *domains;
	size_t ndomains;
	bool store_failed;      /* logged once per message */
};

static void
rl_fini(void *state)
{
	struct ratelimit *rl = state;

	if (rl == NULL)
		return;
	bundled_tempfail_free(&rl->reply);
	bundled_nets_free(&rl->exempt);
	free(rl);
}

/* ---- init: the settings ------------------------------------------------ */

struct settings {
	const char *key, *count, *limit, *window, *window_type;
	const char *ipv4_prefix, *ipv6_prefix, *reply, *exempt_auth;
	const char *fail_open, *namespace;
};

static int
parse_choice(const struct mh_init *init, const char *key, const char *value,
	     const char *const *names, size_t n, int *out)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(value, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	if (n == 2)
		return mh_init_error(init, key, "bad value '%s': expected %s "
		    "or %s", value, names[0], names[1]);
	return mh_init_error(init, key, "bad value '%s': expected %s, %s, %s "
	    "or %s", value, names[0], names[1], names[2], names[3]);
}

/* Every setting but the list key exempt_networks, read here one by one. */
static int
read_settings(const struct mh_init *init, struct settings *s,
	      struct ratelimit *rl)
{
	static const struct bundled_key keys[] = {
		{ "key", NULL }, { "count", NULL }, { "limit", NULL },
		{ "window", NULL }, { "window_type", NULL },
		{ "ipv4_prefix", NULL }, { "ipv6_prefix", NULL },
		{ "reply", NULL }, { "exempt_networks", NULL },
		{ "exempt_authenticated", NULL }, { "fail_open", NULL },
		{ "namespace", NULL }, { NULL, NULL },
	};
	const char **values[] = {
		&s->key, &s->count, &s->limit, &s->window, &s->window_type,
		&s->ipv4_prefix, &s->ipv6_prefix, &s->reply, NULL,
		&s->exempt_auth, &s->fail_open, &s->namespace,
	};

	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < init->nsettings; i++) {
		const char *k = init->settings[i].key;
		const char *v = init->settings[i].value;
		int idx = bundled_find_key(init, "ratelimit", keys, k);

		if (idx < 0)
			return -1;
		if (values[idx] != NULL)
			*values[idx] = v;
		else if (bundled_parse_nets(init, k, v, &rl->exempt) < 0)
			return -1;
	}
	return 0;
}

static int
rl_configure(const struct mh_init *init, struct ratelimit *rl)
{
	static const char *const counts[] = { "messages", "recipients" };
	static const char *const types[] = { "fixed", "sliding" };
	struct settings s;
	int choice = 0;

	if (read_settings(init, &s, rl) < 0)
		return -1;
	if (s.key == NULL)
		return mh_init_error(init, "key", "missing: say what is "
		    "counted per: client_address, sender, auth_user or "
		    "recipient_domain");
	if (parse_choice(init, "key", s.key, key_names, 4, &choice) < 0)
		return -1;
	rl->key = (enum rl_key)choice;
	if (s.count != NULL) {
		if (parse_choice(init, "count", s.count, counts, 2,
		    &choice) < 0)
			return -1;
		rl->recipients = choice == 1;
	}
	if (s.window_type != NULL) {
		if (parse_choice(init, "window_type", s.window_type, types, 2,
		    &choice) < 0)
			return -1;
		rl->sliding = choice == 1;
	}
	if (s.limit == NULL)
		return mh_init_error(init, "limit", "missing: give how many "
		    "%s a %s may send per window, e.g. limit = 100",
		    rl->recipients ? "recipients" : "messages",
		    key_names[rl->key]);
	rl->window = 3600;
	rl->v4bits = 32;
	rl->v6bits = 64;
	if (bundled_parse_number(init, "limit", s.limit, 1, MAX_LIMIT,
	    &rl->limit) < 0 ||
	    (s.window != NULL && bundled_parse_duration(init, "window",
	    s.window, 1, MAX_WINDOW, &rl->window) < 0) ||
	    (s.ipv4_prefix != NULL && bundled_parse_number(init,
	    "ipv4_prefix", s.ipv4_prefix, 0, 32, &rl->v4bits) < 0) ||
	    (s.ipv6_prefix != NULL && bundled_parse_number(init,
	    "ipv6_prefix", s.ipv6_prefix, 0, 128, &rl->v6bits) < 0) ||
	    bundled_parse_tempfail(init, "reply", s.reply != NULL ? s.reply :
	    DEFAULT_REPLY, DEFAULT_REPLY, &rl->reply) < 0 ||
	    bundled_parse_yesno(init, "exempt_authenticated", s.exempt_auth,
	    false, &rl->exempt_auth) < 0 ||
	    bundled_parse_yesno(init, "fail_open", s.fail_open, true,
	    &rl->fail_open) < 0)
		return -1;
	if (rl->key == KEY_AUTH_USER && rl->exempt_auth)
		return mh_init_error(init, "exempt_authenticated", "yes with "
		    "key = auth_user would exempt everything counted");
	if (rl->key != KEY_CLIENT && (s.ipv4_prefix != NULL ||
	    s.ipv6_prefix != NULL))
		return mh_init_error(init, s.ipv4_prefix != NULL ?
		    "ipv4_prefix" : "ipv6_prefix", "only for key = "
		    "client_address");
	if (s.namespace != NULL &&
	    bundled_declare_namespace(init, "namespace", s.namespace) < 0)
		return -1;
	/* Counting messages per client, sender or user: MAIL decides. */
	if (!rl->recipients && rl->key != KEY_RCPT_DOMAIN &&
	    mh_declare_unused(init, MH_STAGE_ENVRCPT) != MH_OK)
		return -1;
	return 0;
}

static int
rl_init(const struct mh_init *init, void **state)
{
	struct ratelimit *rl;

	if ((rl = calloc(1, sizeof *rl)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	if (rl_configure(init, rl) < 0) {
		rl_fini(rl);
		return -1;
	}
	*state = rl;
	return 0;
}

/* ---- counting ----------------------------------------------------------- */

static void
message_free(void *data)
{
	struct message *m = data;

	free(m->domains);
	free(m);
}

/* What the store says when it failed: fail open, or tempfail. */
static mh_status
store_failed(mh_ctx *ctx, const struct ratelimit *rl, struct message *m,
	     const char *what, int err)
{
	if (!m->store_failed)
		mh_log(ctx, MH_LOG_WARNING, "%s %s not counted: the store "
		    "failed (%s): %s", key_names[rl->key], what,
		    mh_strerror(err), rl->fail_open ? "let through "
		    "(fail_open = yes)" : "tempfailed (fail_open = no)");
	m->store_failed = true;
	if (rl->fail_open)
		return MH_CONTINUE;
	return bundled_tempfail(ctx, &rl->reply);
}

/* Wall-clock milliseconds: windows are shared between hosts. */
static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Count one for part and decide: MH_CONTINUE under the limit, MH_TEMPFAIL
 * with the reply over it, or what store_failed() says.
 */
static mh_status
count_one(mh_ctx *ctx, const struct ratelimit *rl, struct message *m,
	  const char *part)
{
	char key[MH_KV_KEY_MAX + 1];
	long long count, prev = 0, ms = 0;
	double seen;
	int rc;

	if (!rl->sliding) {
		snprintf(key, sizeof key, "f:%s", part);
		rc = mh_kv_incr(ctx, key, 1, (unsigned)rl->window, &count);
		if (rc != MH_OK)
			return store_failed(ctx, rl, m, part, rc);
		seen = (double)count;
	} else {
		long long win = (long long)rl->window * 1000, period;
		char prevkey[MH_KV_KEY_MAX + 1], buf[32];
		size_t len;

		ms = now_ms();
		period = ms / win;
		snprintf(key, sizeof key, "s:%lld:%s", period, part);
		snprintf(prevkey, sizeof prevkey, "s:%lld:%s", period - 1,
		    part);
		rc = mh_kv_incr(ctx, key, 1, (unsigned)(2 * rl->window),
		    &count);
		if (rc != MH_OK)
			return store_failed(ctx, rl, m, part, rc);
		rc = mh_kv_get(ctx, prevkey, buf, sizeof buf - 1, &len);
		if (rc == MH_OK && len < sizeof buf) {
			buf[len] = '\0';
			prev = strtoll(buf, NULL, 10);
		} else if (rc != MH_E_NOTFOUND) {
			return store_failed(ctx, rl, m, part, rc);
		}
		/* The part of the previous period still in the window. */
		seen = (double)count + (double)prev *
		    (double)(win - (ms - period * win)) / (double)win;
	}
	if (seen <= (double)rl->limit)
		return MH_CONTINUE;
	if (rl->sliding)
		(void)mh_kv_incr(ctx, key, -1, (unsigned)(2 * rl->window),
		    NULL);
	mh_log(ctx, MH_LOG_INFO, "%s %s: %.0f %s in %s window of %lus "
	    "(limit %lu): %s %s%s%s", key_names[rl->key], part, seen,
	    rl->recipients ? "recipients" : "messages",
	    rl->sliding ? "the sliding" : "a fixed", rl->window, rl->limit,
	    rl->reply.rcode, rl->reply.xcode,
	    rl->reply.xcode[0] != '\0' ? " " : "", rl->reply.text);
	return bundled_tempfail(ctx, &rl->reply);
}

/* The key part of this message for client, sender or user; false if the
 * message is not counted (no address, null sender, not authenticated). */
static bool
message_part(mh_ctx *ctx, const struct ratelimit *rl, const char *sender,
	     char *part, size_t size)
{
	char net[NETADDR_NETWORK_MAX];
	const char *user;
	struct netaddr addr;

	switch (rl->key) {
	case KEY_CLIENT:
		if (!netaddr_parse(mh_client_address(ctx), &addr))
			return false;
		netaddr_network(&addr, (int)rl->v4bits, (int)rl->v6bits, net,
		    sizeof net);
		bundled_key_part(net, false, part, size);
		return true;
	case KEY_SENDER:
		return bundled_address_part(sender, part, size);
	case KEY_AUTH_USER:
		user = mh_macro(ctx, "{auth_authen}");
		if (user == NULL || *user == '\0')
			return false;
		bundled_key_part(user, true, part, size);
		return true;
	case KEY_RCPT_DOMAIN:
		break;
	}
	return false;
}

static mh_status
rl_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	const struct ratelimit *rl = mh_instance_state(ctx);
	const char *user = mh_macro(ctx, "{auth_authen}");
	struct message *m;

	(void)args;
	if ((m = calloc(1, sizeof *m)) == NULL ||
	    mh_set_msg_data_free(ctx, m, message_free) != MH_OK) {
		free(m);
		mh_log(ctx, MH_LOG_ERR, "out of memory");
		return MH_FAIL;
	}
	if ((rl->exempt_auth && user != NULL && *user != '\0') ||
	    bundled_nets_contain(&rl->exempt, mh_client_address(ctx))) {
		m->exempt = true;
		return MH_CONTINUE;
	}
	if (!message_part(ctx, rl, sender, m->what, sizeof m->what)) {
		m->what[0] = '\0';
		return MH_CONTINUE;
	}
	if (rl->recipients)
		return MH_CONTINUE;
	return count_one(ctx, rl, m, m->what);
}

/* recipient_domain counting messages: once per domain and message. */
static mh_status
count_domain(mh_ctx *ctx, const struct ratelimit *rl, struct message *m,
	     const char *domain)
{
	struct domain *d;

	for (size_t i = 0; i < m->ndomains; i++)
		if (strcmp(m->domains[i].name, domain) == 0)
			return m->domains[i].answer == MH_TEMPFAIL ?
			    bundled_tempfail(ctx, &rl->reply) :
			    m->domains[i].answer;
	if ((d = realloc(m->domains, (m->ndomains + 1) * sizeof *d)) == NULL) {
		mh_log(ctx, MH_LOG_ERR, "out of memory");
		return MH_FAIL;
	}
	m->domains = d;
	d = &m->domains[m->ndomains++];
	snprintf(d->name, sizeof d->name, "%s", domain);
	d->answer = count_one(ctx, rl, m, domain);
	return d->answer;
}

static mh_status
rl_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	const struct ratelimit *rl = mh_instance_state(ctx);
	struct message *m = mh_msg_data(ctx);
	char domain[PART_MAX];

	(void)args;
	if (m == NULL || m->exempt)
		return MH_CONTINUE;
	if (rl->key != KEY_RCPT_DOMAIN)
		return m->what[0] != '\0' ? count_one(ctx, rl, m, m->what) :
		    MH_CONTINUE;
	if (!bundled_domain_part(rcpt, domain, sizeof domain))
		return MH_CONTINUE;
	if (rl->recipients)
		return count_one(ctx, rl, m, domain);
	return count_domain(ctx, rl, m, domain);
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "ratelimit",
	.version = "1.0",
	.description = "tempfail messages or recipients over a rate per "
	    "client, sender, user or recipient domain",
	.init = rl_init,
	.fini = rl_fini,
	.envfrom = rl_envfrom,
	.envrcpt = rl_envrcpt,
	.list_keys = "exempt_networks",
	/* {client_addr}: mh_client_address's when no instance takes connect
	 * (the MTA is then asked not to send it). */
	.macros = { [MH_STAGE_ENVFROM] = "{auth_authen} {client_addr}" },
};

/*
 * greylist - the bundled milterhost plugin: greylisting on the host's
 * key-value store.
 *
 *	[plugin:greylist]
 *	module = greylist
 *	delay = 5m
 *	retry_window = 1d
 *	pass_for = 36d
 *	exempt_networks = 127.0.0.0/8 ::1 192.0.2.0/24
 *
 * A triplet is (client network, envelope sender, recipient).  The first
 * attempt of a triplet is tempfailed; a retry at least delay and less
 * than retry_window after the first attempt passes, and from then on
 * the triplet (pass_scope = triplet) or the whole client network
 * (pass_scope = network) passes at once for pass_for, renewed by every
 * message that passes through it.  A triplet not retried within
 * retry_window is new again.
 *
 * delay		a retry earlier than this is tempfailed again (default
 *			5m, 1s to 1d).
 * retry_window		a retry from delay to this after the first attempt
 *			passes (default 1d, more than delay, up to 30d).
 * pass_for		how long a passed triplet or network passes without
 *			delay, renewed at each message (default 36d, 1s to
 *			365d).
 * pass_scope		triplet (default) or network.
 * ipv4_prefix,		the client network of the triplet (default 24 and
 * ipv6_prefix		64): the bits of the address that count, so that a
 *			client retrying from another address of its pool
 *			is the same client.
 * reply		what a greylisted recipient hears (default "451 4.7.1
 *			Greylisted, please try again later"), 4xx only.
 * exempt_networks	clients never greylisted, addresses or networks
 *			separated by blanks or commas; a list key.
 * exempt_authenticated	a client that authenticated ({auth_authen} at MAIL
 *			FROM) is never greylisted (default yes).
 * fail_open		when the store fails: yes (default) lets the
 *			recipient through, no tempfails it with the reply.
 * namespace		the store's namespace of the keys (default: the
 *			instance name), for instances and hosts that share
 *			their greylisting through one Redis.
 *
 * A client without an IP address (a unix socket, local submission) is
 * not greylisted: there is nothing to key on.
 *
 * Keys (within the namespace): "s:NET/SENDER/RCPT", the first attempt,
 * its value the wall-clock unix time of that attempt in decimal, its time
 * to live retry_window; "t:NET/SENDER/RCPT", a passed triplet, and
 * "n:NET", a passed network, each with the time to live pass_for.  The
 * first attempt is written with mh_kv_add, so that two hosts racing on
 * one Redis agree on one first attempt; the time in it is compared with
 * each host's own clock, so hosts sharing a store must keep time (NTP).
 *
 * The sender and the client's network live in the message data slot,
 * from MAIL FROM to the end of the message; the instance state is
 * read-only after init, so sessions share it without locks.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <milterhost/plugin.h>

#include "support.h"

#define DEFAULT_REPLY "451 4.7.1 Greylisted, please try again later"
#define MINUTE 60UL
#define DAY 86400UL

/*
 * A key is "s:" NET "/" SENDER "/" RCPT: the address parts get what the
 * network leaves of MH_KV_KEY_MAX.  bundled_key_part() replaces a part
 * that does not fit with a hash of it, so every triplet has a key.
 */
#define PART_MAX ((MH_KV_KEY_MAX - 4 - (NETADDR_NETWORK_MAX - 1)) / 2 + 1)
_Static_assert(2 + (NETADDR_NETWORK_MAX - 1) + 1 + (PART_MAX - 1) + 1 +
    (PART_MAX - 1) <= MH_KV_KEY_MAX, "a triplet's key fits the store");
_Static_assert(PART_MAX >= 20, "bundled_key_part needs 20 bytes");

struct greylist {
	unsigned long delay, window, pass_for;	/* seconds */
	bool network_scope;	/* pass_scope = network */
	int v4bits, v6bits;
	struct bundled_tempfail reply;
	struct bundled_nets exempt;
	bool exempt_auth;
	bool fail_open;
};

/* Per message: what MAIL FROM told, and what was done once already. */
struct msg {
	bool store_failed;	/* once in the message: logged, not asked
				 * again for its later recipients */
	bool network_passed;	/* n:NET found (and renewed) */
	char net[NETADDR_NETWORK_MAX];
	char sender_part[PART_MAX];
	char sender[];		/* as the MTA gave it, for the log */
};

static void
gl_fini(void *state)
{
	struct greylist *gl = state;

	if (gl == NULL)
		return;
	bundled_tempfail_free(&gl->reply);
	bundled_nets_free(&gl->exempt);
	free(gl);
}

/* ---- init: the settings ------------------------------------------------ */

enum key {
	KEY_DELAY,
	KEY_WINDOW,
	KEY_PASS_FOR,
	KEY_PASS_SCOPE,
	KEY_IPV4_PREFIX,
	KEY_IPV6_PREFIX,
	KEY_REPLY,
	KEY_EXEMPT_NETWORKS,
	KEY_EXEMPT_AUTH,
	KEY_FAIL_OPEN,
	KEY_NAMESPACE,
	NKEYS
};

static const struct bundled_key greylist_keys[] = {
	[KEY_DELAY] = { "delay", NULL },
	[KEY_WINDOW] = { "retry_window", NULL },
	[KEY_PASS_FOR] = { "pass_for", NULL },
	[KEY_PASS_SCOPE] = { "pass_scope", NULL },
	[KEY_IPV4_PREFIX] = { "ipv4_prefix", NULL },
	[KEY_IPV6_PREFIX] = { "ipv6_prefix", NULL },
	[KEY_REPLY] = { "reply", NULL },
	[KEY_EXEMPT_NETWORKS] = { "exempt_networks", NULL },
	[KEY_EXEMPT_AUTH] = { "exempt_authenticated", NULL },
	[KEY_FAIL_OPEN] = { "fail_open", NULL },
	[KEY_NAMESPACE] = { "namespace", NULL },
	{ NULL, NULL },
};

static int
parse_prefix(const struct mh_init *init, const char *key, const char *value,
	     unsigned long dflt, unsigned long max, int *out)
{
	unsigned long n = dflt;

	if (value != NULL &&
	    bundled_parse_number(init, key, value, 0, max, &n) < 0)
		return -1;
	*out = (int)n;
	return 0;
}

static int
parse_duration(const struct mh_init *init, const char *key,
	       const char *value, unsigned long dflt, unsigned long min,
	       unsigned long max, unsigned long *out)
{
	if (value == NULL) {
		*out = dflt;
		return 0;
	}
	return bundled_parse_duration(init, key, value, min, max, out);
}

static int
read_settings(const struct mh_init *init, struct greylist *gl)
{
	const char *v[NKEYS] = { NULL };

	for (size_t i = 0; i < init->nsettings; i++) {
		const struct mh_setting *s = &init->settings[i];
		int k = bundled_find_key(init, "greylist", greylist_keys,
		    s->key);

		if (k < 0)
			return -1;
		/* A list key: each value adds its networks, its own line
		 * named on error.  The host refuses any other key twice. */
		if (k == KEY_EXEMPT_NETWORKS) {
			if (bundled_parse_nets(init, s->key, s->value,
			    &gl->exempt) < 0)
				return -1;
		} else {
			v[k] = s->value;
		}
	}
	if (parse_duration(init, "delay", v[KEY_DELAY], 5 * MINUTE, 1, DAY,
	    &gl->delay) < 0 ||
	    parse_duration(init, "retry_window", v[KEY_WINDOW], DAY, 1,
	    30 * DAY, &gl->window) < 0 ||
	    parse_duration(init, "pass_for", v[KEY_PASS_FOR], 36 * DAY, 1,
	    365 * DAY, &gl->pass_for) < 0)
		return -1;
	if (gl->window <= gl->delay)
		return mh_init_error(init, v[KEY_WINDOW] != NULL ?
		    "retry_window" : "delay", "retry_window (%lus) must be "
		    "longer than delay (%lus): a retry must have a time to "
		    "pass", gl->window, gl->delay);
	if (v[KEY_PASS_SCOPE] == NULL ||
	    strcmp(v[KEY_PASS_SCOPE], "triplet") == 0)
		gl->network_scope = false;
	else if (strcmp(v[KEY_PASS_SCOPE], "network") == 0)
		gl->network_scope = true;
	else
		return mh_init_error(init, "pass_scope", "bad value '%s': "
		    "expected triplet or network", v[KEY_PASS_SCOPE]);
	if (parse_prefix(init, "ipv4_prefix", v[KEY_IPV4_PREFIX], 24, 32,
	    &gl->v4bits) < 0 ||
	    parse_prefix(init, "ipv6_prefix", v[KEY_IPV6_PREFIX], 64, 128,
	    &gl->v6bits) < 0)
		return -1;
	if (bundled_parse_tempfail(init, "reply", v[KEY_REPLY] != NULL ?
	    v[KEY_REPLY] : DEFAULT_REPLY, DEFAULT_REPLY, &gl->reply) < 0)
		return -1;
	if (bundled_parse_yesno(init, "exempt_authenticated",
	    v[KEY_EXEMPT_AUTH], true, &gl->exempt_auth) < 0 ||
	    bundled_parse_yesno(init, "fail_open", v[KEY_FAIL_OPEN], true,
	    &gl->fail_open) < 0)
		return -1;
	if (v[KEY_NAMESPACE] != NULL &&
	    bundled_declare_namespace(init, "namespace",
	    v[KEY_NAMESPACE]) < 0)
		return -1;
	return 0;
}

static int
gl_init(const struct mh_init *init, void **state)
{
	struct greylist *gl;

	if ((gl = calloc(1, sizeof *gl)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	if (read_settings(init, gl) < 0) {
		gl_fini(gl);
		return -1;
	}
	*state = gl;
	return 0;
}

/* ---- MAIL FROM: who is greylisted ------------------------------------- */

/* addr as a key part (bundled_address_part()), the null sender "<>". */
static void
address_part(const char *addr, char *buf, size_t size)
{
	if (!bundled_address_part(addr, buf, size))
		bundled_key_part("<>", false, buf, size);
}

static mh_status
gl_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	const struct greylist *gl = mh_instance_state(ctx);
	const char *addr = mh_client_address(ctx), *auth;
	struct netaddr ip;
	struct msg *m;

	(void)args;
	if (gl->exempt_auth && (auth = mh_macro(ctx, "{auth_authen}")) !=
	    NULL && *auth != '\0') {
		mh_log(ctx, MH_LOG_DEBUG, "not greylisted: the client "
		    "authenticated as %s", auth);
		return MH_ACCEPT;
	}
	if (addr == NULL || !netaddr_parse(addr, &ip)) {
		mh_log(ctx, MH_LOG_DEBUG, "not greylisted: the client has no "
		    "IP address (%s) to key on", addr != NULL ? addr :
		    "unknown");
		return MH_ACCEPT;
	}
	if (bundled_nets_contain(&gl->exempt, addr)) {
		mh_log(ctx, MH_LOG_DEBUG, "not greylisted: client %s is in "
		    "exempt_networks", addr);
		return MH_ACCEPT;
	}
	if ((m = calloc(1, sizeof *m + strlen(sender) + 1)) == NULL) {
		mh_log(ctx, MH_LOG_ERR, "out of memory");
		return MH_FAIL;
	}
	memcpy(m->sender, sender, strlen(sender) + 1);
	netaddr_network(&ip, gl->v4bits, gl->v6bits, m->net, sizeof m->net);
	address_part(sender, m->sender_part, sizeof m->sender_part);
	if (mh_set_msg_data_free(ctx, m, free) != MH_OK) {
		free(m);
		return MH_FAIL;
	}
	return MH_CONTINUE;
}

/* ---- recipients --------------------------------------------------------- */

/* The decimal unix time now, for a value. */
static size_t
time_value(time_t now, char *buf, size_t size)
{
	int n = snprintf(buf, size, "%jd", (intmax_t)now);

	return n > 0 ? (size_t)n : 0;
}

/*
 * The store failed (rc): fail_open decides.  Logged once per message,
 * and the message's later recipients are answered alike without asking
 * the store again: a store that is down fails them all, and each call
 * would wait up to kv_timeout_ms and be logged by the host.
 */
static mh_status
store_failed(mh_ctx *ctx, const struct greylist *gl, struct msg *m,
	     const char *what, int rc)
{
	if (!m->store_failed) {
		m->store_failed = true;
		mh_log(ctx, MH_LOG_WARNING, "the store failed (%s: %s): %s "
		    "the message's recipients (fail_open = %s)", what,
		    mh_strerror(rc), gl->fail_open ? "letting through" :
		    "tempfailing", gl->fail_open ? "yes" : "no");
	}
	if (gl->fail_open)
		return MH_CONTINUE;
	return bundled_tempfail(ctx, &gl->reply);
}

/*
 * Is key (a pass) there?  Renewed if so: a pass lasts pass_for from the
 * last message through it.  1 there, 0 absent, or an MH_E_* failure.
 */
static int
pass_present(mh_ctx *ctx, const struct greylist *gl, const char *key,
	     time_t now)
{
	char val[32];
	size_t len;
	int rc;

	rc = mh_kv_get(ctx, key, NULL, 0, NULL);
	if (rc == MH_E_NOTFOUND)
		return 0;
	if (rc != MH_OK)
		return rc;
	len = time_value(now, val, sizeof val);
	rc = mh_kv_set(ctx, key, val, len, (unsigned)gl->pass_for);
	return rc == MH_OK ? 1 : rc;
}

/* The first attempt's time in a value, or false for something else. */
static bool
parse_time(const char *buf, size_t len, size_t size, time_t *out)
{
	intmax_t t = 0;

	if (len == 0 || len > size || len > 18)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)buf[i]))
			return false;
		t = t * 10 + (buf[i] - '0');
	}
	*out = (time_t)t;
	return true;
}

static mh_status
gl_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	const struct greylist *gl = mh_instance_state(ctx);
	struct msg *m = mh_msg_data(ctx);
	char rcpt_part[PART_MAX], triplet[MH_KV_KEY_MAX - 1];
	char seen[MH_KV_KEY_MAX + 1], pass[MH_KV_KEY_MAX + 1];
	char netkey[NETADDR_NETWORK_MAX + 2], val[32], buf[32];
	time_t now = time(NULL), first;
	size_t len;
	int rc;

	(void)args;
	netkey[0] = '\0';
	if (m == NULL) {
		/* Only when MAIL FROM passed the message (ACCEPT) would
		 * there be no envrcpt; without its data something failed. */
		mh_log(ctx, MH_LOG_ERR, "recipient %s without the message's "
		    "data", rcpt);
		return MH_FAIL;
	}
	if (m->network_passed)
		return MH_CONTINUE;
	if (m->store_failed)
		return store_failed(ctx, gl, m, NULL, MH_E_UNAVAILABLE);
	address_part(rcpt, rcpt_part, sizeof rcpt_part);
	snprintf(triplet, sizeof triplet, "%s/%s/%s", m->net, m->sender_part,
	    rcpt_part);
	snprintf(seen, sizeof seen, "s:%s", triplet);
	snprintf(pass, sizeof pass, "t:%s", triplet);

	if (gl->network_scope) {
		snprintf(netkey, sizeof netkey, "n:%s", m->net);
		if ((rc = pass_present(ctx, gl, netkey, now)) < 0)
			return store_failed(ctx, gl, m, "network pass", rc);
		if (rc == 1) {
			mh_log(ctx, MH_LOG_DEBUG, "network %s passed before: "
			    "the message passes, the pass renewed", m->net);
			m->network_passed = true;
			return MH_CONTINUE;
		}
	}
	/* Also with pass_scope = network: a triplet passed while the scope
	 * was triplet, or by a host sharing the namespace, still passes. */
	if ((rc = pass_present(ctx, gl, pass, now)) < 0)
		return store_failed(ctx, gl, m, "triplet pass", rc);
	if (rc == 1) {
		mh_log(ctx, MH_LOG_DEBUG, "%s %s %s: passed before, the pass "
		    "renewed", m->net, m->sender, rcpt);
		return MH_CONTINUE;
	}

	len = time_value(now, val, sizeof val);
	/* Twice at most: the first attempt may vanish between the add and
	 * the get (it expired, or another host passed it). */
	for (int tries = 0; tries < 2; tries++) {
		rc = mh_kv_add(ctx, seen, val, len, (unsigned)gl->window);
		if (rc == MH_OK) {
			mh_log(ctx, MH_LOG_INFO, "%s %s %s: first attempt, "
			    "greylisted for %lus", m->net, m->sender, rcpt,
			    gl->delay);
			return bundled_tempfail(ctx, &gl->reply);
		}
		if (rc != MH_E_EXISTS)
			return store_failed(ctx, gl, m, "first attempt", rc);
		rc = mh_kv_get(ctx, seen, buf, sizeof buf, &len);
		if (rc == MH_E_NOTFOUND) {
			len = time_value(now, val, sizeof val);
			continue;
		}
		if (rc != MH_OK)
			return store_failed(ctx, gl, m, "first attempt", rc);
		break;
	}
	if (rc != MH_OK)
		return store_failed(ctx, gl, m, "first attempt", rc);
	if (!parse_time(buf, len, sizeof buf, &first) ||
	    now - first >= (time_t)gl->window) {
		/* Not ours, or older than the window (another host's clock,
		 * or a window shortened since): a first attempt now. */
		len = time_value(now, val, sizeof val);
		if ((rc = mh_kv_set(ctx, seen, val, len,
		    (unsigned)gl->window)) != MH_OK)
			return store_failed(ctx, gl, m, "first attempt", rc);
		mh_log(ctx, MH_LOG_INFO, "%s %s %s: first attempt (the one "
		    "stored was out of the window), greylisted for %lus",
		    m->net, m->sender, rcpt, gl->delay);
		return bundled_tempfail(ctx, &gl->reply);
	}
	if (now - first < (time_t)gl->delay) {
		mh_log(ctx, MH_LOG_INFO, "%s %s %s: retry too early, %jds "
		    "before the delay ends", m->net, m->sender, rcpt,
		    (intmax_t)((time_t)gl->delay - (now - first)));
		return bundled_tempfail(ctx, &gl->reply);
	}

	/* Passed: remember it, then forget the first attempt. */
	len = time_value(now, val, sizeof val);
	rc = gl->network_scope ?
	    mh_kv_set(ctx, netkey, val, len, (unsigned)gl->pass_for) :
	    mh_kv_set(ctx, pass, val, len, (unsigned)gl->pass_for);
	if (rc != MH_OK)
		return store_failed(ctx, gl, m, "pass", rc);
	if ((rc = mh_kv_delete(ctx, seen)) != MH_OK)
		/* It expires by itself; the pass is what counts. */
		mh_log(ctx, MH_LOG_DEBUG, "the first attempt stays until it "
		    "expires: %s", mh_strerror(rc));
	mh_log(ctx, MH_LOG_INFO, "%s %s %s: passed, retried after %jds; "
	    "%s passes for %lus", m->net, m->sender, rcpt,
	    (intmax_t)(now - first), gl->network_scope ? "the network" :
	    "the triplet", gl->pass_for);
	if (gl->network_scope)
		m->network_passed = true;
	return MH_CONTINUE;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "greylist",
	.version = "1.0",
	.description = "greylisting: tempfail a new (client network, "
	    "sender, recipient) until it is retried",
	.macros = {
		[MH_STAGE_ENVFROM] = "{auth_authen} {client_addr}",
	},
	.list_keys = "exempt_networks",
	.init = gl_init,
	.fini = gl_fini,
	.envfrom = gl_envfrom,
	.envrcpt = gl_envrcpt,
};

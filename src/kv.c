/*
 * kv - the key-value store: its settings, its keys, and the choice of a
 * backend.  See kv.h.
 */
#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

void
kv_spec_default(struct kv_spec *spec)
{
	memset(spec, 0, sizeof *spec);
	spec->type = KV_MEMORY;
	spec->timeout_ms = KV_DEFAULT_TIMEOUT_MS;
	spec->memory_max = KV_DEFAULT_MEMORY_MAX;
}

/* Digits only, into 0..max. */
static bool
parse_unsigned(const char *s, size_t len, unsigned long max,
    unsigned long *out)
{
	unsigned long n = 0;

	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		if (n > (max - (unsigned long)(s[i] - '0')) / 10)
			return false;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	*out = n;
	return true;
}

/* HOST:PORT[/DB] after "redis://"; HOST may be [IPv6]. */
static bool
parse_redis_tcp(const char *s, struct kv_spec *spec)
{
	const char *slash = strchr(s, '/'), *end, *colon;
	unsigned long port, db = 0;
	size_t hostlen;

	end = slash ? slash : s + strlen(s);
	if (slash != NULL && !parse_unsigned(slash + 1, strlen(slash + 1),
	    1000000, &db))
		return false;
	colon = NULL;
	for (const char *p = s; p < end; p++)
		if (*p == ':')
			colon = p;
	if (colon == NULL || !parse_unsigned(colon + 1,
	    (size_t)(end - colon - 1), 65535, &port) || port == 0)
		return false;
	hostlen = (size_t)(colon - s);
	if (hostlen >= 2 && s[0] == '[' && s[hostlen - 1] == ']') {
		s++;
		hostlen -= 2;
	}
	if (hostlen == 0 || hostlen >= sizeof spec->host)
		return false;
	for (size_t i = 0; i < hostlen; i++)
		if (!isgraph((unsigned char)s[i]) || s[i] == '@')
			return false;
	memcpy(spec->host, s, hostlen);
	spec->host[hostlen] = '\0';
	spec->port = (unsigned)port;
	spec->db = (unsigned)db;
	spec->type = KV_REDIS_TCP;
	return true;
}

bool
kv_parse_spec(const char *value, struct kv_spec *spec)
{
	if (strcmp(value, "memory") == 0) {
		spec->type = KV_MEMORY;
		return true;
	}
	if (strncmp(value, "redis://", 8) == 0)
		return parse_redis_tcp(value + 8, spec);
	if (strncmp(value, "unix:/", 6) == 0) {
		if (strlen(value + 5) >= sizeof spec->path)
			return false;
		strcpy(spec->path, value + 5);
		spec->type = KV_REDIS_UNIX;
		return true;
	}
	return false;
}

bool
kv_spec_equal(const struct kv_spec *a, const struct kv_spec *b)
{
	return a->type == b->type && strcmp(a->host, b->host) == 0 &&
	    a->port == b->port && a->db == b->db &&
	    strcmp(a->path, b->path) == 0 &&
	    strcmp(a->password, b->password) == 0 &&
	    a->timeout_ms == b->timeout_ms && a->memory_max == b->memory_max;
}

struct kv_store *
kv_open(const struct kv_spec *spec, char *err, size_t errlen)
{
	struct kv_store *kv;

	if (spec->type != KV_MEMORY) {
		if ((kv = kv_redis_open(spec)) == NULL)
			snprintf(err, errlen, "kv: out of memory for the "
			    "store");
		return kv;
	}
	if ((kv = kv_memory_open(spec->memory_max, KV_MEMORY_SHARDS,
	    NULL)) == NULL)
		snprintf(err, errlen, "kv: out of memory for the store");
	return kv;
}

void
kv_close(struct kv_store *kv)
{
	if (kv == NULL)
		return;
	kv->ops->free(kv->impl);
	free(kv);
}

int
kv_get(struct kv_store *kv, const char *key, void *buf, size_t size,
    size_t *len)
{
	return kv->ops->get(kv->impl, key, buf, size, len);
}

int
kv_set(struct kv_store *kv, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	return kv->ops->set(kv->impl, key, value, len, ttl_s);
}

int
kv_add(struct kv_store *kv, const char *key, const void *value, size_t len,
    unsigned ttl_s)
{
	return kv->ops->add(kv->impl, key, value, len, ttl_s);
}

int
kv_incr(struct kv_store *kv, const char *key, long long by, unsigned ttl_s,
    long long *result)
{
	return kv->ops->incr(kv->impl, key, by, ttl_s, result);
}

int
kv_delete(struct kv_store *kv, const char *key)
{
	return kv->ops->del(kv->impl, key);
}

/* Printable ASCII without spaces: what Redis and log lines take as is. */
bool
kv_key_ok(const char *key)
{
	size_t n = 0;

	for (; key[n] != '\0'; n++)
		if (key[n] <= ' ' || key[n] >= 127 || n >= MH_KV_KEY_MAX)
			return false;
	return n > 0;
}

/* As instance names: no ':', which ends the namespace in a full key. */
bool
kv_ns_ok(const char *name)
{
	size_t n = 0;

	for (; name[n] != '\0'; n++)
		if ((!isalnum((unsigned char)name[n]) && name[n] != '_' &&
		    name[n] != '.' && name[n] != '-') || n >= KV_NS_MAX)
			return false;
	return n > 0;
}

int
kv_full_key(char *buf, size_t size, const char *ns, const char *key)
{
	int n = snprintf(buf, size, "%s:%s", ns, key);

	return n < 0 || (size_t)n >= size ? -1 : 0;
}

bool
kv_parse_integer(const char *s, size_t len, long long *out)
{
	bool neg = len > 0 && s[0] == '-';
	unsigned long long n = 0, max;
	size_t i = neg ? 1 : 0;

	if (i == len || len > 20)
		return false;
	/* No "-0" and no leading zeros: the text must be the number's. */
	if (s[i] == '0' && (len > i + 1 || neg))
		return false;
	max = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	for (; i < len; i++) {
		unsigned d = (unsigned)(s[i] - '0');

		if (!isdigit((unsigned char)s[i]) || n > (max - d) / 10)
			return false;
		n = n * 10 + d;
	}
	*out = neg ? (long long)(0 - n) : (long long)n;
	return true;
}

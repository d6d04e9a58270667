/*
 * support - what the init functions of the bundled plugins share.  See
 * support.h.
 */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <milterhost/plugin.h>

#include "support.h"

/* ---- the keys of the section ------------------------------------------ */

/* The names of keys as a list for a message: "a", "a and b", "a, b and c". */
static void
list_names(const struct bundled_key *keys, char *buf, size_t len)
{
	size_t n = 0, used = 0;

	while (keys[n].name != NULL)
		n++;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		const char *sep = i == 0 ? "" : i == n - 1 ? " and " : ", ";
		int w = snprintf(buf + used, len - used, "%s%s", sep,
		    keys[i].name);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

int
bundled_find_key(const struct mh_init *init, const char *plugin,
		 const struct bundled_key *keys, const char *key)
{
	char names[512];

	for (int i = 0; keys[i].name != NULL; i++)
		if (strcmp(key, keys[i].name) == 0)
			return i;
	list_names(keys, names, sizeof names);
	return mh_init_error(init, key, "unknown key: %s takes %s", plugin,
	    names);
}

int
bundled_read_settings(const struct mh_init *init, const char *plugin,
		      const struct bundled_key *keys)
{
	for (size_t i = 0; keys[i].name != NULL; i++)
		*keys[i].value = NULL;
	for (size_t i = 0; i < init->nsettings; i++) {
		const struct mh_setting *s = &init->settings[i];
		int k = bundled_find_key(init, plugin, keys, s->key);

		if (k < 0)
			return -1;
		*keys[k].value = s->value;
	}
	return 0;
}

/* ---- replies ------------------------------------------------------------ */

/* "c.x.y": the class c, then two runs of 1 to 3 digits. */
static bool
good_xcode(const char *s, size_t len, char class)
{
	size_t i = 2, run;

	if (len < 5 || s[0] != class || s[1] != '.')
		return false;
	for (int part = 0; part < 2; part++) {
		for (run = 0; i < len && isdigit((unsigned char)s[i]); i++)
			run++;
		if (run < 1 || run > 3)
			return false;
		if (part == 0 && (i >= len || s[i++] != '.'))
			return false;
	}
	return i == len;
}

bool
bundled_reply_has_code(const char *value)
{
	return strspn(value, "0123456789") == 3 &&
	    (value[3] == '\0' || value[3] == ' ' || value[3] == '\t');
}

int
bundled_parse_reply(const char *value, const char *example,
		    struct bundled_reply *reply, char *err, size_t errlen)
{
	const char *p = value + 3;
	size_t n;

	memcpy(reply->rcode, value, 3);
	reply->rcode[3] = '\0';
	reply->xcode[0] = '\0';
	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n > 0 && strspn(p, "0123456789.") >= n &&
	    memchr(p, '.', n) != NULL) {
		if (n >= sizeof reply->xcode || !good_xcode(p, n, value[0])) {
			snprintf(err, errlen, "bad enhanced status code "
			    "'%.*s': write %c.X.Y, X and Y of 1 to 3 digits, "
			    "to go with %s", (int)n, p, value[0],
			    reply->rcode);
			return -1;
		}
		memcpy(reply->xcode, p, n);
		reply->xcode[n] = '\0';
		p += n;
		p += strspn(p, " \t");
	}
	if (*p == '\0') {
		snprintf(err, errlen, "the reply %s needs a text after its "
		    "code, e.g. %s", reply->rcode, example);
		return -1;
	}
	reply->text = p;
	return bundled_check_reply_text(p, err, errlen);
}

int
bundled_check_reply_text(const char *text, char *err, size_t errlen)
{
	if (strlen(text) <= BUNDLED_REPLY_TEXT_MAX)
		return 0;
	snprintf(err, errlen, "the reply's text is %zu bytes long, more than "
	    "%d", strlen(text), BUNDLED_REPLY_TEXT_MAX);
	return -1;
}

int
bundled_parse_tempfail(const struct mh_init *init, const char *key,
		       const char *value, const char *example,
		       struct bundled_tempfail *reply)
{
	struct bundled_reply parsed;
	char err[1024];

	memset(reply, 0, sizeof *reply);
	if (!bundled_reply_has_code(value))
		return mh_init_error(init, key, "bad reply '%s': expected "
		    "'4xx [4.x.y] text', e.g. '%s'", value, example);
	if (value[0] == '5')
		return mh_init_error(init, key, "reply code %.3s is "
		    "permanent: a client gives up what it hears it for and "
		    "the mail is lost; use a 4xx code, such as %.3s, so that "
		    "it tries again later", value, example);
	if (value[0] != '4')
		return mh_init_error(init, key, "reply code %.3s is not 4xx: "
		    "this reply tempfails", value);
	if (bundled_parse_reply(value, example, &parsed, err, sizeof err) < 0)
		return mh_init_error(init, key, "%s", err);
	memcpy(reply->rcode, parsed.rcode, sizeof reply->rcode);
	memcpy(reply->xcode, parsed.xcode, sizeof reply->xcode);
	if ((reply->text = strdup(parsed.text)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	return 0;
}

void
bundled_tempfail_free(struct bundled_tempfail *reply)
{
	free(reply->text);
	reply->text = NULL;
}

mh_status
bundled_tempfail(mh_ctx *ctx, const struct bundled_tempfail *reply)
{
	return mh_set_reply(ctx, reply->rcode, reply->xcode[0] != '\0' ?
	    reply->xcode : NULL, reply->text) == MH_OK ? MH_TEMPFAIL : MH_FAIL;
}

/* ---- numbers, durations and other values ------------------------------- */

int
bundled_parse_yesno(const struct mh_init *init, const char *key,
		    const char *value, bool dflt, bool *out)
{
	int yes;

	if (value == NULL) {
		*out = dflt;
		return 0;
	}
	if (mh_parse_bool(value, &yes) < 0)
		return mh_init_error(init, key, "bad value '%s': expected yes "
		    "or no", value);
	*out = yes != 0;
	return 0;
}

int
bundled_declare_namespace(const struct mh_init *init, const char *key,
			  const char *value)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	size_t len = strlen(value);

	/* The rule is plugin.h's: as instance names. */
	if (len == 0 || len > 128 || strspn(value, allowed) != len)
		return mh_init_error(init, key, "bad namespace '%s': 1 to 128 "
		    "letters, digits, '_', '.' and '-'", value);
	return mh_declare_kv_namespace(init, value) == MH_OK ? 0 : -1;
}

/* Leading digits of s into *out (saturating above max); the end in *end. */
static bool
digits(const char *s, unsigned long max, unsigned long *out,
       const char **end)
{
	unsigned long n = 0;
	bool over = false;

	if (!isdigit((unsigned char)*s))
		return false;
	for (; isdigit((unsigned char)*s); s++) {
		if (n > (ULONG_MAX - 9) / 10 || n > max)
			over = true;
		else
			n = n * 10 + (unsigned long)(*s - '0');
	}
	*out = over ? ULONG_MAX : n;
	*end = s;
	return true;
}

int
bundled_parse_number(const struct mh_init *init, const char *key,
		     const char *value, unsigned long min, unsigned long max,
		     unsigned long *out)
{
	const char *end;
	unsigned long n;

	if (!digits(value, max, &n, &end) || *end != '\0' || n < min ||
	    n > max)
		return mh_init_error(init, key, "bad number '%s': expected a "
		    "number from %lu to %lu", value, min, max);
	*out = n;
	return 0;
}

int
bundled_parse_duration(const struct mh_init *init, const char *key,
		       const char *value, unsigned long min,
		       unsigned long max, unsigned long *out)
{
	const char *end;
	unsigned long n, unit = 1;

	if (!digits(value, max, &n, &end))
		goto bad;
	switch (*end) {
	case '\0':
	case 's':
		break;
	case 'm':
		unit = 60;
		break;
	case 'h':
		unit = 3600;
		break;
	case 'd':
		unit = 86400;
		break;
	default:
		goto bad;
	}
	if (*end != '\0' && end[1] != '\0')
		goto bad;
	if (n > max / unit || n * unit < min)
		return mh_init_error(init, key, "duration '%s' out of range: "
		    "from %lus to %lus", value, min, max);
	*out = n * unit;
	return 0;
bad:
	return mh_init_error(init, key, "bad duration '%s': expected a number "
	    "of seconds, or a number and a unit: s, m, h or d (e.g. 90s, 5m, "
	    "4h, 36d)", value);
}

/* ---- networks ------------------------------------------------------------ */

int
bundled_parse_nets(const struct mh_init *init, const char *key,
		   const char *value, struct bundled_nets *nets)
{
	const char *p = value;

	for (;;) {
		char word[128], err[256];
		size_t len;
		struct netmask *v;

		p += strspn(p, " \t,");
		if (*p == '\0')
			break;
		len = strcspn(p, " \t,");
		if (len >= sizeof word)
			return mh_init_error(init, key, "'%.*s' is not an IPv4 "
			    "or IPv6 address or a network (ADDRESS/BITS)",
			    (int)len, p);
		memcpy(word, p, len);
		word[len] = '\0';
		p += len;
		if ((v = realloc(nets->v, (nets->n + 1) * sizeof *v)) == NULL)
			return mh_init_error(init, NULL, "out of memory");
		nets->v = v;
		if (netmask_parse(word, &nets->v[nets->n], err, sizeof err) < 0)
			return mh_init_error(init, key, "%s", err);
		nets->n++;
	}
	return 0;
}

bool
bundled_nets_contain(const struct bundled_nets *nets, const char *address)
{
	struct netaddr addr;

	if (nets->n == 0 || !netaddr_parse(address, &addr))
		return false;
	for (size_t i = 0; i < nets->n; i++)
		if (netmask_contains(&nets->v[i], &addr))
			return true;
	return false;
}

void
bundled_nets_free(struct bundled_nets *nets)
{
	free(nets->v);
	nets->v = NULL;
	nets->n = 0;
}

/* ---- keys of the key-value store --------------------------------------- */

/* bundled_key_part() of the len bytes at text. */
static void
key_part(const char *text, size_t len, bool lower, char *buf, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)text;
	uint64_t hash = 0xcbf29ce484222325ULL;
	size_t used = 0;
	bool fits = true;

	for (size_t i = 0; i < len; i++) {
		unsigned char c = lower ? (unsigned char)tolower(p[i]) : p[i];

		hash = (hash ^ c) * 0x100000001b3ULL;
		if (!fits)
			continue;
		if (c > 32 && c < 127 && c != '%') {
			if (used + 1 >= size)
				fits = false;
			else
				buf[used++] = (char)c;
		} else if (used + 3 >= size) {
			fits = false;
		} else {
			buf[used++] = '%';
			buf[used++] = hex[c >> 4];
			buf[used++] = hex[c & 15];
		}
	}
	if (fits) {
		buf[used] = '\0';
		return;
	}
	buf[0] = '#';
	for (int i = 0; i < 16; i++)
		buf[1 + i] = hex[(hash >> (60 - 4 * i)) & 15];
	buf[17] = '\0';
}

void
bundled_key_part(const char *text, bool lower, char *buf, size_t size)
{
	key_part(text, strlen(text), lower, buf, size);
}

/* The address without one pair of angle brackets. */
static void
bare(const char **addr, size_t *len)
{
	*len = strlen(*addr);
	if (*len >= 2 && (*addr)[0] == '<' && (*addr)[*len - 1] == '>') {
		(*addr)++;
		*len -= 2;
	}
}

bool
bundled_address_part(const char *addr, char *buf, size_t size)
{
	size_t len;

	bare(&addr, &len);
	key_part(addr, len, true, buf, size);
	return len > 0;
}

bool
bundled_domain_part(const char *addr, char *buf, size_t size)
{
	size_t len, at;

	buf[0] = '\0';
	bare(&addr, &len);
	for (at = len; at > 0 && addr[at - 1] != '@'; at--)
		continue;
	if (at == 0 || at == len)
		return false;
	key_part(addr + at, len - at, true, buf, size);
	return true;
}

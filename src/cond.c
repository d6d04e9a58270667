/*
 * cond - the conditions of a plugin instance.  See cond.h.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pcre2.h>

#include <milterhost/plugin.h>

#include "array.h"
#include "cond.h"
#include "config.h"
#include "netaddr.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* One entry of if_client: a network, or the word "unknown". */
struct net {
	bool exclude;   /* written with '!' */
	bool unknown;   /* "unknown": a client without an IP address */
	struct netmask mask;
};

/* One entry of if_daemon. */
struct name {
	bool exclude;
	char *text;
};

/* A pattern; "!PATTERN" holds when it does not match. */
struct pattern {
	pcre2_code *re;
	bool negated;
};

/* One if_macro: the macro's value must match. */
struct macro_cond {
	char *name;     /* as the MTA side looks it up: "{x}" or "j" */
	struct pattern pat;
};

struct cond {
	unsigned refs;  /* atomic */
	struct net *nets;
	size_t nnets;
	struct name *names;
	size_t nnames;
	int auth;       /* -1: no if_auth; 0: must not be, 1: must be */
	struct pattern sender;
	struct pattern rcpt;
	struct macro_cond *macros;
	size_t nmacros;
	char *macro_list; /* what the conditions read, for negotiation */
};

/* Where a compile error goes. */
struct compiler {
	const char *file;
	const char *section;
	const struct config_setting *key;
	char *err;
	size_t errlen;
};

static int __attribute__((format(printf, 2, 3)))
refuse(struct compiler *cc, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(cc->err, cc->errlen, "%s:%d: [%s] key '%s': ", cc->file,
	    cc->key->line, cc->section, cc->key->key);
	if (n < 0 || (size_t)n >= cc->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(cc->err + n, cc->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- the list keys: if_client, if_daemon ------------------------------ */

/* The next word of *p (blanks or commas between words) into buf. */
static bool
next_word(const char **p, char *buf, size_t size)
{
	const char *s = *p + strspn(*p, " \t,");
	size_t n = strcspn(s, " \t,");

	if (n == 0)
		return false;
	snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), s);
	*p = s + n;
	return n < size;
}

static int
parse_net(struct compiler *cc, const char *word, struct net *net)
{
	char err[256];

	memset(net, 0, sizeof *net);
	if ((net->exclude = word[0] == '!'))
		word++;
	if (strcasecmp(word, "unknown") == 0) {
		net->unknown = true;
		return 0;
	}
	if (netmask_parse(word, &net->mask, err, sizeof err) < 0)
		return refuse(cc, "%s, nor the word 'unknown'", err);
	return 0;
}

static int
parse_client(struct compiler *cc, struct cond *c, const char *value)
{
	char word[128];
	const char *p = value;
	size_t cap = 0;

	while (next_word(&p, word, sizeof word)) {
		struct net *nets = array_grow(c->nets, &cap, c->nnets,
		    sizeof *nets);

		if (nets == NULL)
			return refuse(cc, "out of memory");
		c->nets = nets;
		if (parse_net(cc, word, &c->nets[c->nnets]) < 0)
			return -1;
		c->nnets++;
	}
	if (c->nnets == 0)
		return refuse(cc, "no network given");
	return 0;
}

static int
parse_daemon(struct compiler *cc, struct cond *c, const char *value)
{
	char word[128];
	const char *p = value;
	size_t cap = 0;

	while (next_word(&p, word, sizeof word)) {
		struct name *names = array_grow(c->names, &cap, c->nnames,
		    sizeof *names);
		bool exclude = word[0] == '!';

		if (names == NULL)
			return refuse(cc, "out of memory");
		c->names = names;
		if (word[exclude] == '\0')
			return refuse(cc, "'!' without a service name");
		if ((names[c->nnames].text = strdup(word + exclude)) == NULL)
			return refuse(cc, "out of memory");
		names[c->nnames].exclude = exclude;
		c->nnames++;
	}
	if (c->nnames == 0)
		return refuse(cc, "no service name given");
	return 0;
}

/* ---- patterns ------------------------------------------------------------ */

/* Compile [!]pattern, caseless (addresses and most macros are). */
static int
compile_re(struct compiler *cc, const char *pattern, struct pattern *out)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE offset;
	int code;

	if ((out->negated = pattern[0] == '!'))
		pattern++;
	if (*pattern == '\0')
		return refuse(cc, "empty regular expression");
	out->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
	    PCRE2_CASELESS, &code, &offset, NULL);
	if (out->re != NULL)
		return 0;
	pcre2_get_error_message(code, msg, sizeof msg);
	return refuse(cc, "bad regular expression at offset %zu: %s: %s",
	    (size_t)offset, (const char *)msg, pattern);
}

/* Does the pattern hold for subject (it matches, or it is negated and
 * does not)?  A failure to match (no memory) counts as no match. */
static bool
pattern_holds(const struct pattern *p, const char *subject, size_t len)
{
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	int rc = PCRE2_ERROR_NOMATCH;

	if (md != NULL)
		rc = pcre2_match(p->re, (PCRE2_SPTR)subject, len, 0, 0, md,
		    NULL);
	pcre2_match_data_free(md);
	return (rc >= 0) != p->negated;
}

/* An address without the angle brackets the MTA gives it in. */
static bool
address_holds(const struct pattern *p, const char *addr)
{
	size_t len = strlen(addr);

	if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>')
		return pattern_holds(p, addr + 1, len - 2);
	return pattern_holds(p, addr, len);
}

/* "NAME REGEX": a macro, as the MTA side looks it up, and its pattern. */
static int
parse_macro(struct compiler *cc, struct cond *c, const char *value,
    size_t *cap)
{
	struct macro_cond *m;
	const char *re;
	size_t n = strcspn(value, " \t");
	const char *name = value;

	re = value + n + strspn(value + n, " \t");
	if (n >= 2 && name[0] == '{' && name[n - 1] == '}') {
		name++;
		n -= 2;
	}
	if (n == 0 || *re == '\0')
		return refuse(cc, "expected a macro name and a regular "
		    "expression, e.g. {daemon_name} ^submission$");
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)name[i]) && name[i] != '_')
			return refuse(cc, "bad macro name '%.*s'", (int)n,
			    name);
	if ((m = array_grow(c->macros, cap, c->nmacros, sizeof *m)) == NULL)
		return refuse(cc, "out of memory");
	c->macros = m;
	m = &c->macros[c->nmacros];
	memset(m, 0, sizeof *m);
	if ((m->name = malloc(n + 3)) == NULL)
		return refuse(cc, "out of memory");
	/* One-letter macros go bare, longer ones in braces. */
	if (n == 1)
		snprintf(m->name, n + 3, "%.*s", (int)n, name);
	else
		snprintf(m->name, n + 3, "{%.*s}", (int)n, name);
	c->nmacros++;
	return compile_re(cc, re, &m->pat);
}

/* ---- compiling ------------------------------------------------------------ */

enum key_id { K_CLIENT, K_DAEMON, K_AUTH, K_SENDER, K_RCPT, K_MACRO };

static const struct {
	const char *name;
	enum key_id id;
	bool repeat; /* may be given more than once */
} keys[] = {
	{ "if_client", K_CLIENT, false },
	{ "if_daemon", K_DAEMON, false },
	{ "if_auth", K_AUTH, false },
	{ "if_sender", K_SENDER, false },
	{ "if_rcpt", K_RCPT, false },
	{ "if_macro", K_MACRO, true },
};

bool
cond_is_key(const char *key)
{
	for (size_t i = 0; i < NELEM(keys); i++)
		if (strcmp(keys[i].name, key) == 0)
			return true;
	return false;
}

static int
parse_auth(struct compiler *cc, struct cond *c, const char *value)
{
	int yes;

	if (mh_parse_bool(value, &yes) < 0)
		return refuse(cc, "bad value '%s': expected yes (the client "
		    "authenticated) or no", value);
	c->auth = yes != 0;
	return 0;
}

/* Append name to c's macro list unless it is there. */
static int
want_macro(struct cond *c, const char *name)
{
	size_t have = c->macro_list ? strlen(c->macro_list) : 0;
	char *list;

	if (c->macro_list != NULL) {
		size_t n = strlen(name);

		for (const char *p = c->macro_list; (p = strstr(p, name));
		    p += n)
			if ((p == c->macro_list || p[-1] == ' ') &&
			    (p[n] == ' ' || p[n] == '\0'))
				return 0;
	}
	if ((list = realloc(c->macro_list, have + strlen(name) + 2)) == NULL)
		return -1;
	snprintf(list + have, strlen(name) + 2, "%s%s", have ? " " : "",
	    name);
	c->macro_list = list;
	return 0;
}

static int
collect_macros(struct cond *c)
{
	if ((c->nnets > 0 && want_macro(c, "{client_addr}") < 0) ||
	    (c->nnames > 0 && want_macro(c, "{daemon_name}") < 0) ||
	    (c->auth >= 0 && want_macro(c, "{auth_authen}") < 0) ||
	    (c->sender.re != NULL && want_macro(c, "{mail_addr}") < 0))
		return -1;
	for (size_t i = 0; i < c->nmacros; i++)
		if (want_macro(c, c->macros[i].name) < 0)
			return -1;
	return 0;
}

static int
compile_key(struct compiler *cc, struct cond *c, enum key_id id,
    size_t *macro_cap)
{
	const char *value = cc->key->value;

	if (*value == '\0')
		return refuse(cc, "needs a value");
	switch (id) {
	case K_CLIENT:
		return parse_client(cc, c, value);
	case K_DAEMON:
		return parse_daemon(cc, c, value);
	case K_AUTH:
		return parse_auth(cc, c, value);
	case K_SENDER:
		return compile_re(cc, value, &c->sender);
	case K_RCPT:
		return compile_re(cc, value, &c->rcpt);
	case K_MACRO:
		return parse_macro(cc, c, value, macro_cap);
	}
	return -1;
}

int
cond_compile(const struct config_setting *set, size_t n, const char *file,
    const char *section, struct cond **out, char *err, size_t errlen)
{
	struct compiler cc = { file, section, NULL, err, errlen };
	int seen[NELEM(keys)] = { 0 };
	size_t macro_cap = 0;
	struct cond *c;

	*out = NULL;
	if (n == 0)
		return 0;
	if ((c = calloc(1, sizeof *c)) == NULL) {
		snprintf(err, errlen, "%s: out of memory", file);
		return -1;
	}
	c->refs = 1;
	c->auth = -1;
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;

		cc.key = &set[i];
		while (k < NELEM(keys) && strcmp(keys[k].name, set[i].key))
			k++;
		if (k == NELEM(keys)) {
			refuse(&cc, "not a condition key");
			goto fail;
		}
		if (seen[k] && !keys[k].repeat) {
			refuse(&cc, "given twice (first on line %d)", seen[k]);
			goto fail;
		}
		seen[k] = set[i].line;
		if (compile_key(&cc, c, keys[k].id, &macro_cap) < 0)
			goto fail;
	}
	if (collect_macros(c) < 0) {
		snprintf(err, errlen, "%s: out of memory", file);
		goto fail;
	}
	*out = c;
	return 0;
fail:
	cond_release(c);
	return -1;
}

struct cond *
cond_retain(struct cond *c)
{
	if (c != NULL)
		__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

void
cond_release(struct cond *c)
{
	if (c == NULL || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	free(c->nets);
	for (size_t i = 0; i < c->nnames; i++)
		free(c->names[i].text);
	free(c->names);
	pcre2_code_free(c->sender.re);
	pcre2_code_free(c->rcpt.re);
	for (size_t i = 0; i < c->nmacros; i++) {
		free(c->macros[i].name);
		pcre2_code_free(c->macros[i].pat.re);
	}
	free(c->macros);
	free(c->macro_list);
	free(c);
}

bool
cond_has_connection(const struct cond *c)
{
	return c != NULL && (c->nnets > 0 || c->nnames > 0);
}

bool
cond_has_message(const struct cond *c)
{
	return c != NULL && (c->auth >= 0 || c->sender.re != NULL ||
	    c->nmacros > 0);
}

bool
cond_has_rcpt(const struct cond *c)
{
	return c != NULL && c->rcpt.re != NULL;
}

const char *
cond_macros(const struct cond *c)
{
	return c != NULL && c->macro_list != NULL ? c->macro_list : "";
}

/* ---- checking -------------------------------------------------------- */

static const char *
get_macro(struct cond_data *d, const char *name)
{
	const char *v = d->macro != NULL ? d->macro(d->arg, name) : NULL;

	if (v == NULL && d->missing == NULL)
		d->missing = name;
	return v;
}

/* Does the client address (text) match the if_client list? */
static bool
client_matches(const struct cond *c, const char *text)
{
	struct netaddr addr;
	bool known = netaddr_parse(text, &addr);
	bool have_include = false, included = false;

	for (size_t i = 0; i < c->nnets; i++) {
		const struct net *net = &c->nets[i];
		bool hit = net->unknown ? !known :
		    known && netmask_contains(&net->mask, &addr);

		if (hit && net->exclude)
			return false;
		if (!net->exclude) {
			have_include = true;
			included = included || hit;
		}
	}
	return included || !have_include;
}

static bool
daemon_matches(const struct cond *c, const char *daemon)
{
	bool have_include = false, included = false;

	for (size_t i = 0; i < c->nnames; i++) {
		bool hit = daemon != NULL &&
		    strcmp(c->names[i].text, daemon) == 0;

		if (hit && c->names[i].exclude)
			return false;
		if (!c->names[i].exclude) {
			have_include = true;
			included = included || hit;
		}
	}
	return included || !have_include;
}

bool
cond_connection_holds(const struct cond *c, struct cond_data *d,
    const char **failed)
{
	const char *addr;

	if (c == NULL)
		return true;
	if (c->nnets > 0) {
		addr = d->client_known ? d->client_addr :
		    get_macro(d, "{client_addr}");
		if (!client_matches(c, addr)) {
			*failed = "if_client";
			return false;
		}
	}
	if (c->nnames > 0 &&
	    !daemon_matches(c, get_macro(d, "{daemon_name}"))) {
		*failed = "if_daemon";
		return false;
	}
	return true;
}

bool
cond_message_holds(const struct cond *c, struct cond_data *d,
    const char **failed)
{
	const char *v;

	if (c == NULL)
		return true;
	if (c->auth >= 0) {
		/* Postfix sends it only for an authenticated client. */
		v = d->macro != NULL ? d->macro(d->arg, "{auth_authen}") : NULL;
		if ((v != NULL && *v != '\0') != (c->auth == 1)) {
			*failed = "if_auth";
			return false;
		}
	}
	if (c->sender.re != NULL) {
		v = d->sender != NULL ? d->sender : get_macro(d, "{mail_addr}");
		if (v == NULL || !address_holds(&c->sender, v)) {
			*failed = "if_sender";
			return false;
		}
	}
	for (size_t i = 0; i < c->nmacros; i++) {
		v = get_macro(d, c->macros[i].name);
		if (v == NULL ||
		    !pattern_holds(&c->macros[i].pat, v, strlen(v))) {
			*failed = "if_macro";
			return false;
		}
	}
	return true;
}

bool
cond_rcpt_matches(const struct cond *c, const char *rcpt)
{
	return c == NULL || c->rcpt.re == NULL ||
	    (rcpt != NULL && address_holds(&c->rcpt, rcpt));
}

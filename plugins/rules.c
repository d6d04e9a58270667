/*
 * rules - the bundled milterhost plugin: ordered rules, each "where,
 * pattern, action", checked against the client, the HELO name, the
 * envelope, the headers and the body lines of every message.
 *
 *	[plugin:rules]
 *	module = rules
 *	rule = client_addr /^192\.0\.2\./ reject 550 5.7.1 Go away
 *	rule = header:X-Originating-IP // delete
 *	rules_file = /etc/milterhost/rules
 *	body_limit = 1M
 *
 * rule		one rule (a list key: give it as often as needed, or
 *		continue it with indented lines, one rule a line).
 * rules_file	a file of rules, one a line, '#' comment lines (a list
 *		key too).  A relative path is taken from the configuration
 *		file's directory.  Rules keep the order of the keys and of
 *		the files' lines.
 * body_limit	how much of the body body rules see: bytes, or with k or
 *		m (KiB, MiB); 0 is the whole body.  Default 1M.
 *
 * The README ("Bundled plugins") is the administrator's reference for the
 * syntax; rules_parse.c parses it.  How the rules run:
 *
 * Each event (connect, HELO, MAIL, RCPT, a header, a body line) checks
 * the rules of its where, in their order.  A matching rule with a
 * non-terminal action (addheader, delete, quarantine, score) acts and the
 * checks go on; the first matching terminal one (reject, tempfail,
 * discard, accept) decides and ends them.  addheader, quarantine and
 * score act once per message and rule however often the rule matches;
 * delete acts on every header that matches.
 *
 * The client and HELO come before any message: their non-terminal
 * actions are remembered for the connection (conn->deferred) and carried
 * out at the start of each message, and so are accept and discard
 * (conn->verdict): discard throws every message away, accept makes the
 * instance pass them (after the remembered actions).  reject and tempfail
 * refuse the connection at once.
 *
 * Header deletions are queued until the instance leaves the message and
 * then sent in decreasing index order: Postfix renumbers the later headers
 * of a name when one is deleted (sendmail does not), and deleting from the
 * last one down means the same headers for both.  So headers are counted
 * per name as they arrive (struct counts), only when some rule deletes.
 *
 * Body lines are cut at LF, without the CR before it, across chunk
 * boundaries (struct lines keeps the unfinished one); a line longer than
 * LINE_PIECE bytes is checked in pieces of that size.  After body_limit
 * bytes the rest of the line is checked as it is and no more body is
 * looked at.
 *
 * Stages where no rule can decide are declared observed (ABI 1.1), so
 * that the MTA need not wait for the instance's answer there.
 *
 * Instance state is read-only after init; per-connection state (the
 * match data, the remembered actions, a buffer) and per-message state
 * live in the data slots, freed by their destructors.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <milterhost/plugin.h>

#include "rules.h"
#include "support.h"

#define DEFAULT_BODY_LIMIT (1024 * 1024)
/* Body lines longer than this are checked in pieces of this size. */
#define LINE_PIECE 8192
/* How much of a matched text the log shows. */
#define SHOWN_MAX 200

/* The events rules are checked at, one per where (the client's two). */
enum event {
	EVENT_CONNECT,
	EVENT_HELO,
	EVENT_ENVFROM,
	EVENT_ENVRCPT,
	EVENT_HEADER,
	EVENT_BODY,
	EVENT_COUNT
};

static const mh_stage event_stage[EVENT_COUNT] = {
	[EVENT_CONNECT] = MH_STAGE_CONNECT,
	[EVENT_HELO] = MH_STAGE_HELO,
	[EVENT_ENVFROM] = MH_STAGE_ENVFROM,
	[EVENT_ENVRCPT] = MH_STAGE_ENVRCPT,
	[EVENT_HEADER] = MH_STAGE_HEADER,
	[EVENT_BODY] = MH_STAGE_BODY,
};

struct rules {
	struct rule_list list;
	size_t *at[EVENT_COUNT]; /* the rules of each event, in list order */
	size_t nat[EVENT_COUNT];
	size_t setbytes;         /* bytes of a set of rules (one bit each) */
	size_t body_limit;       /* 0: no limit */
	bool count_headers;      /* some rule deletes headers */
	unsigned observed;       /* 1 << stage: only observed there */
};

/* What the client and HELO rules decided for the connection's messages. */
enum verdict {
	VERDICT_NONE,
	VERDICT_ACCEPT,
	VERDICT_DISCARD
};

struct conn {
	pcre2_match_data *md;
	unsigned char *deferred; /* client and HELO rules that matched */
	enum verdict verdict;
	const struct rule *verdict_rule;
	char *buf;               /* a header as the rules see it */
	size_t cap;
};

/* Occurrences of each header name so far (case-insensitive). */
struct name_count {
	char *name;
	uint32_t hash;
	int count;
};

struct counts {
	struct name_count *slots; /* open addressing; cap a power of 2 */
	size_t cap;
	size_t used;
};

struct deletion {
	char *name;
	int index;
};

/* The body's unfinished line and how much of the body was looked at. */
struct lines {
	char *carry;             /* LINE_PIECE + 1 bytes, made at need */
	size_t len;
	size_t scanned;
	bool done;               /* body_limit reached */
};

struct msg {
	unsigned char *fired;    /* rules whose once-a-message action acted */
	bool done;               /* an accept: no more rules */
	struct counts counts;
	struct deletion *dels;
	size_t ndels;
	size_t capdels;
	struct lines body;
};

/* What an event's rules look at. */
struct subject {
	const char *what;        /* for the log: "sender", "body line" */
	const char *text;        /* the value; for a header, unfolded */
	size_t len;
	const char *header;      /* header: its name as received */
	const char *line;        /* header: "Name: value", for any-header rules */
	size_t linelen;
	int index;               /* header: its number among its name's */
};

static bool
bit_get(const unsigned char *set, size_t i)
{
	return (set[i / 8] >> (i % 8)) & 1;
}

static void
bit_set(unsigned char *set, size_t i)
{
	set[i / 8] |= (unsigned char)(1U << (i % 8));
}

static void
bit_clear(unsigned char *set, size_t i)
{
	set[i / 8] &= (unsigned char)~(1U << (i % 8));
}

static enum event
event_of(enum where where)
{
	switch (where) {
	case WHERE_CLIENT:
	case WHERE_CLIENT_NAME:
	case WHERE_CLIENT_ADDR:
		return EVENT_CONNECT;
	case WHERE_HELO:
		return EVENT_HELO;
	case WHERE_SENDER:
		return EVENT_ENVFROM;
	case WHERE_RECIPIENT:
		return EVENT_ENVRCPT;
	case WHERE_HEADER:
		return EVENT_HEADER;
	case WHERE_BODY:
		break;
	}
	return EVENT_BODY;
}

/* ---- instance ---------------------------------------------------------- */

static void
rl_fini(void *state)
{
	struct rules *st = state;

	if (st == NULL)
		return;
	rule_list_free(&st->list);
	for (int ev = 0; ev < EVENT_COUNT; ev++)
		free(st->at[ev]);
	free(st);
}

/* "1048576", "1024k", "1m"; 0 for no limit. */
static int
parse_body_limit(const struct mh_init *init, const char *value, size_t *out)
{
	size_t n = strspn(value, "0123456789"), mult = 1, limit = 0;

	if (value[n] == 'k' || value[n] == 'K')
		mult = 1024;
	else if (value[n] == 'm' || value[n] == 'M')
		mult = 1024 * 1024;
	if (n == 0 || value[n + (mult > 1)] != '\0')
		goto bad;
	for (size_t i = 0; i < n; i++) {
		size_t digit = (size_t)(value[i] - '0');

		if (limit > (SIZE_MAX / mult - digit) / 10)
			goto bad;
		limit = limit * 10 + digit;
	}
	*out = limit * mult;
	return 0;
bad:
	return mh_init_error(init, "body_limit", "bad size '%s': give bytes, "
	    "or KiB or MiB with k or m (e.g. 512k); 0 scans the whole body",
	    value);
}

/* A relative rules_file is taken from the configuration file's
 * directory.  Returns a string to free, or NULL when out of memory. */
static char *
rules_path(const struct mh_init *init, const char *value)
{
	const char *slash = strrchr(init->config_file, '/');
	size_t dirlen;
	char *path;

	if (value[0] == '/' || slash == NULL)
		return strdup(value);
	dirlen = (size_t)(slash - init->config_file) + 1;
	if ((path = malloc(dirlen + strlen(value) + 1)) == NULL)
		return NULL;
	memcpy(path, init->config_file, dirlen);
	strcpy(path + dirlen, value);
	return path;
}

/* key: the setting's own key string, so that an error names its line. */
static int
add_rules_file(const struct mh_init *init, struct rules *st,
	       const char *key, const char *value)
{
	char err[1024], *path;

	if (*value == '\0')
		return mh_init_error(init, key, "is empty: name a file of "
		    "rules");
	if ((path = rules_path(init, value)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	if (rule_list_read_file(&st->list, path, err, sizeof err) < 0) {
		free(path);
		return mh_init_error(init, key, "%s", err);
	}
	free(path);
	return 0;
}

static int
add_rule(const struct mh_init *init, struct rules *st, const char *key,
	 const char *value, size_t number)
{
	char label[32], err[1024];

	snprintf(label, sizeof label, "rule %zu", number);
	if (rule_list_add(&st->list, value, label, err, sizeof err) < 0)
		return mh_init_error(init, key, "rule %zu, '%s': %s", number,
		    value, err);
	return 0;
}

/* The keys of the section; rule and rules_file are list keys. */
enum key {
	KEY_RULE,
	KEY_RULES_FILE,
	KEY_BODY_LIMIT
};

static const struct bundled_key rules_keys[] = {
	[KEY_RULE] = { "rule", NULL },
	[KEY_RULES_FILE] = { "rules_file", NULL },
	[KEY_BODY_LIMIT] = { "body_limit", NULL },
	{ NULL, NULL },
};

/* The section's keys, in order: rules and files of rules keep it. */
static int
read_settings(const struct mh_init *init, struct rules *st)
{
	size_t nrule = 0;
	bool have_rules = false;

	for (size_t i = 0; i < init->nsettings; i++) {
		const char *key = init->settings[i].key;
		const char *value = init->settings[i].value;
		int rc;

		switch (bundled_find_key(init, "rules", rules_keys, key)) {
		case KEY_RULE:
			rc = add_rule(init, st, key, value, ++nrule);
			have_rules = true;
			break;
		case KEY_RULES_FILE:
			rc = add_rules_file(init, st, key, value);
			have_rules = true;
			break;
		case KEY_BODY_LIMIT:
			rc = parse_body_limit(init, value, &st->body_limit);
			break;
		default: /* an unknown key, reported */
			return -1;
		}
		if (rc < 0)
			return -1;
	}
	if (!have_rules)
		return mh_init_error(init, "rule", "no rules: give rule = WHERE "
		    "/PATTERN/ ACTION (as often as needed) or rules_file = "
		    "PATH");
	return 0;
}

/* Sort the rules by event, keeping their order. */
static int
index_rules(struct rules *st)
{
	for (size_t i = 0; i < st->list.n; i++) {
		const struct rule *r = &st->list.rules[i];
		enum event ev = event_of(r->where);
		size_t *grown;

		grown = realloc(st->at[ev], (st->nat[ev] + 1) * sizeof *grown);
		if (grown == NULL)
			return -1;
		grown[st->nat[ev]++] = i;
		st->at[ev] = grown;
		if (r->action == ACTION_DELETE)
			st->count_headers = true;
	}
	st->setbytes = st->list.n / 8 + 1;
	return 0;
}

/* The message changes the rules make: declare exactly those. */
static int
declare_actions(const struct mh_init *init, const struct rules *st)
{
	unsigned long actions = 0;

	for (size_t i = 0; i < st->list.n; i++) {
		switch (st->list.rules[i].action) {
		case ACTION_ADDHEADER:
			actions |= MH_ACT_ADDHDRS;
			break;
		case ACTION_DELETE:
			actions |= MH_ACT_CHGHDRS;
			break;
		case ACTION_QUARANTINE:
			actions |= MH_ACT_QUARANTINE;
			break;
		default:
			break;
		}
	}
	return actions == 0 ? MH_OK : mh_declare_actions(init, actions);
}

/*
 * A stage where no rule can decide is only observed.  At connect and HELO
 * a discard decides nothing (it is carried out at MAIL), at MAIL it does.
 */
static int
declare_observers(const struct mh_init *init, struct rules *st)
{
	bool decides[EVENT_COUNT] = { false };

	for (size_t i = 0; i < st->list.n; i++) {
		const struct rule *r = &st->list.rules[i];
		enum event ev = event_of(r->where);

		if (!action_is_terminal(r->action))
			continue;
		if (r->action == ACTION_DISCARD &&
		    (ev == EVENT_CONNECT || ev == EVENT_HELO))
			ev = EVENT_ENVFROM;
		decides[ev] = true;
	}
	for (int ev = 0; ev < EVENT_COUNT; ev++) {
		if (decides[ev])
			continue;
		if (mh_declare_observer(init, event_stage[ev]) != MH_OK)
			return -1;
		st->observed |= 1U << event_stage[ev];
	}
	return 0;
}

static int
rl_init(const struct mh_init *init, void **state)
{
	struct rules *st;

	if ((st = calloc(1, sizeof *st)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	st->body_limit = DEFAULT_BODY_LIMIT;
	if (read_settings(init, st) < 0)
		goto fail;
	if (index_rules(st) < 0) {
		mh_init_error(init, NULL, "out of memory");
		goto fail;
	}
	if (declare_actions(init, st) != MH_OK ||
	    declare_observers(init, st) < 0)
		goto fail;
	if (st->list.n == 0)
		mh_log(NULL, MH_LOG_WARNING, "no rules: the rules files are "
		    "empty");
	*state = st;
	return 0;
fail:
	rl_fini(st);
	return -1;
}

/* ---- per-connection and per-message data ------------------------------ */

static void
conn_free(void *data)
{
	struct conn *c = data;

	pcre2_match_data_free(c->md);
	free(c->deferred);
	free(c->buf);
	free(c);
}

/* The connection's data, made at its first use; NULL when out of
 * memory (logged). */
static struct conn *
connection(mh_ctx *ctx, const struct rules *st)
{
	struct conn *c = mh_conn_data(ctx);

	if (c != NULL)
		return c;
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->md = pcre2_match_data_create(1, NULL)) == NULL ||
	    (c->deferred = calloc(st->setbytes, 1)) == NULL ||
	    mh_set_conn_data_free(ctx, c, conn_free) != MH_OK) {
		if (c != NULL)
			conn_free(c);
		mh_log(ctx, MH_LOG_ERR, "out of memory");
		return NULL;
	}
	return c;
}

static void
counts_free(struct counts *counts)
{
	for (size_t i = 0; i < counts->cap; i++)
		free(counts->slots[i].name);
	free(counts->slots);
}

static void
msg_free(void *data)
{
	struct msg *m = data;

	free(m->fired);
	counts_free(&m->counts);
	for (size_t i = 0; i < m->ndels; i++)
		free(m->dels[i].name);
	free(m->dels);
	free(m->body.carry);
	free(m);
}

/* The message's data, made at its first use; NULL when out of memory
 * (logged). */
static struct msg *
message(mh_ctx *ctx, const struct rules *st)
{
	struct msg *m = mh_msg_data(ctx);

	if (m != NULL)
		return m;
	if ((m = calloc(1, sizeof *m)) == NULL ||
	    (m->fired = calloc(st->setbytes, 1)) == NULL ||
	    mh_set_msg_data_free(ctx, m, msg_free) != MH_OK) {
		if (m != NULL)
			msg_free(m);
		mh_log(ctx, MH_LOG_ERR, "out of memory");
		return NULL;
	}
	return m;
}

/* ---- header counts ------------------------------------------------------ */

static uint32_t
name_hash(const char *name)
{
	uint32_t h = 2166136261U; /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ (uint32_t)tolower(*p)) * 16777619U;
	return h;
}

/* The slot of name in a table of cap slots: its own, or the empty one
 * where it goes. */
static struct name_count *
find_slot(struct name_count *slots, size_t cap, const char *name,
	  uint32_t hash)
{
	size_t i = hash & (cap - 1);

	while (slots[i].name != NULL && (slots[i].hash != hash ||
	    strcasecmp(slots[i].name, name) != 0))
		i = (i + 1) & (cap - 1);
	return &slots[i];
}

static int
counts_grow(struct counts *counts)
{
	size_t cap = counts->cap ? counts->cap * 2 : 16;
	struct name_count *slots = calloc(cap, sizeof *slots);

	if (slots == NULL)
		return -1;
	for (size_t i = 0; i < counts->cap; i++) {
		const struct name_count *old = &counts->slots[i];

		if (old->name != NULL)
			*find_slot(slots, cap, old->name, old->hash) = *old;
	}
	free(counts->slots);
	counts->slots = slots;
	counts->cap = cap;
	return 0;
}

/* Count one more header called name; returns its number among the
 * headers of that name (from 1), or 0 when out of memory. */
static int
count_header(struct counts *counts, const char *name)
{
	uint32_t hash = name_hash(name);
	struct name_count *slot;

	if ((counts->used + 1) * 2 > counts->cap && counts_grow(counts) < 0)
		return 0;
	slot = find_slot(counts->slots, counts->cap, name, hash);
	if (slot->name == NULL) {
		if ((slot->name = strdup(name)) == NULL)
			return 0;
		slot->hash = hash;
		counts->used++;
	}
	return ++slot->count;
}

/* ---- header deletions ---------------------------------------------------- */

static int
queue_deletion(struct msg *m, const char *name, int index)
{
	if (m->ndels == m->capdels) {
		size_t cap = m->capdels ? m->capdels * 2 : 4;
		struct deletion *grown = realloc(m->dels, cap * sizeof *grown);

		if (grown == NULL)
			return MH_E_NOMEM;
		m->dels = grown;
		m->capdels = cap;
	}
	if ((m->dels[m->ndels].name = strdup(name)) == NULL)
		return MH_E_NOMEM;
	m->dels[m->ndels++].index = index;
	return MH_OK;
}

static int
later_first(const void *a, const void *b)
{
	const struct deletion *x = a, *y = b;

	return (x->index < y->index) - (x->index > y->index);
}

/* Send the queued deletions, the last header of a name first (see the
 * top of the file).  Returns MH_OK or the host's refusal (logged by it). */
static int
send_deletions(mh_ctx *ctx, struct msg *m)
{
	int rc = MH_OK;

	if (m->ndels == 0)
		return MH_OK;
	qsort(m->dels, m->ndels, sizeof *m->dels, later_first);
	for (size_t i = 0; i < m->ndels && rc == MH_OK; i++)
		rc = mh_header_delete(ctx, m->dels[i].name, m->dels[i].index);
	for (size_t i = 0; i < m->ndels; i++)
		free(m->dels[i].name);
	m->ndels = 0;
	return rc;
}

/* ---- matching -------------------------------------------------------------- */

/* 1 if r's pattern matches the text, 0 if not, -1 if the match failed
 * (a PCRE2 limit: logged, and the rule counts as not matching). */
static int
pattern_matches(mh_ctx *ctx, struct conn *c, const struct rule *r,
		const char *text, size_t len)
{
	PCRE2_UCHAR msg[256];
	int rc;

	rc = pcre2_match(r->code, (PCRE2_SPTR)text, len, 0, 0, c->md, NULL);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (pcre2_get_error_message(rc, msg, sizeof msg) < 0)
		snprintf((char *)msg, sizeof msg, "error %d", rc);
	mh_log(ctx, MH_LOG_WARNING, "%s: skipped, its pattern failed on %zu "
	    "bytes: %s", r->label, len, (char *)msg);
	return -1;
}

static bool
text_matches(mh_ctx *ctx, struct conn *c, const struct rule *r,
	     const char *text, size_t len)
{
	int m = pattern_matches(ctx, c, r, text, len);

	return m >= 0 && (m == 1) != r->negate;
}

/* A client rule: the name, the address, or either (a rule on what the
 * MTA did not give does not match, negated or not). */
static bool
client_matches(mh_ctx *ctx, struct conn *c, const struct rule *r,
	       const char *name, const char *addr)
{
	int by_name = -1, by_addr = -1;

	if (r->where != WHERE_CLIENT_ADDR && name != NULL)
		by_name = pattern_matches(ctx, c, r, name, strlen(name));
	if (r->where != WHERE_CLIENT_NAME && addr != NULL)
		by_addr = pattern_matches(ctx, c, r, addr, strlen(addr));
	if (by_name < 0 && by_addr < 0)
		return false;
	return (by_name == 1 || by_addr == 1) != r->negate;
}

/* A message rule against the event's subject. */
static bool
subject_matches(mh_ctx *ctx, struct conn *c, const struct rule *r,
		const struct subject *sub)
{
	if (r->where != WHERE_HEADER)
		return text_matches(ctx, c, r, sub->text, sub->len);
	if (r->header == NULL)
		return text_matches(ctx, c, r, sub->line, sub->linelen);
	return strcasecmp(r->header, sub->header) == 0 &&
	    text_matches(ctx, c, r, sub->text, sub->len);
}

static void
log_match(mh_ctx *ctx, const struct rule *r, const char *what,
	  const char *text, size_t len)
{
	int level = action_is_terminal(r->action) ||
	    r->action == ACTION_QUARANTINE ? MH_LOG_INFO : MH_LOG_DEBUG;

	mh_log(ctx, level, "%s: %s '%.*s'%s: %s", r->label, what,
	    (int)(len < SHOWN_MAX ? len : SHOWN_MAX), text,
	    len > SHOWN_MAX ? "..." : "", action_name(r->action));
}

/* ---- actions --------------------------------------------------------------- */

/* A stage the instance is done with: MH_ACCEPT, or for an observer
 * MH_CONTINUE (its only answer). */
static mh_status
done_here(mh_ctx *ctx, const struct rules *st)
{
	mh_stage stage = mh_current_stage(ctx);

	if (stage < MH_STAGE_COUNT && (st->observed & (1U << stage)))
		return MH_CONTINUE;
	return MH_ACCEPT;
}

static mh_status
refuse(mh_ctx *ctx, const struct rule *r)
{
	if (r->rcode[0] != '\0' && mh_set_reply(ctx, r->rcode,
	    r->xcode[0] != '\0' ? r->xcode : NULL, r->text) != MH_OK)
		return MH_FAIL;
	return r->action == ACTION_REJECT ? MH_REJECT : MH_TEMPFAIL;
}

/* The instance is done with the message: its deletions go out now. */
static mh_status
leave_message(mh_ctx *ctx, const struct rules *st, struct msg *m)
{
	m->done = true;
	if (send_deletions(ctx, m) != MH_OK)
		return MH_FAIL;
	return done_here(ctx, st);
}

/*
 * A non-terminal action in the message; sub is the header that matched
 * (for delete) or NULL.  Returns MH_OK, or the host's refusal or
 * MH_E_NOMEM (both logged).
 */
static int
act(mh_ctx *ctx, const struct rules *st, struct msg *m, const struct rule *r,
    const struct subject *sub)
{
	size_t i = (size_t)(r - st->list.rules);

	if (r->action == ACTION_DELETE) {
		if (queue_deletion(m, sub->header, sub->index) != MH_OK) {
			mh_log(ctx, MH_LOG_ERR, "out of memory");
			return MH_E_NOMEM;
		}
		return MH_OK;
	}
	if (bit_get(m->fired, i))
		return MH_OK;
	bit_set(m->fired, i);
	switch (r->action) {
	case ACTION_ADDHEADER:
		return mh_header_add(ctx, r->name, r->text);
	case ACTION_QUARANTINE:
		return mh_quarantine(ctx, r->text);
	case ACTION_SCORE:
		return mh_score_add(ctx, r->points, r->text);
	default:
		return MH_OK;
	}
}

/* The rules of a message event, in order, until one decides. */
static mh_status
check_message(mh_ctx *ctx, const struct rules *st, struct conn *c,
	      struct msg *m, enum event ev, const struct subject *sub)
{
	for (size_t k = 0; k < st->nat[ev]; k++) {
		const struct rule *r = &st->list.rules[st->at[ev][k]];

		if (!subject_matches(ctx, c, r, sub))
			continue;
		if (r->where == WHERE_HEADER)
			log_match(ctx, r, sub->what, sub->line, sub->linelen);
		else
			log_match(ctx, r, sub->what, sub->text, sub->len);
		switch (r->action) {
		case ACTION_REJECT:
		case ACTION_TEMPFAIL:
			return refuse(ctx, r);
		case ACTION_DISCARD:
			return MH_DISCARD;
		case ACTION_ACCEPT:
			return leave_message(ctx, st, m);
		default:
			if (act(ctx, st, m, r, sub) != MH_OK)
				return MH_FAIL;
		}
	}
	return MH_CONTINUE;
}

/*
 * The rules of the connection's events: a refusal answers at once; the
 * other actions wait for the messages.
 */
static mh_status
check_connection(mh_ctx *ctx, const struct rules *st, struct conn *c,
		 enum event ev, const char *name, const char *addr)
{
	char shown[SHOWN_MAX + 64];

	if (ev == EVENT_CONNECT)
		snprintf(shown, sizeof shown, "%s [%s]", name != NULL ? name :
		    "", addr != NULL ? addr : "");
	else
		snprintf(shown, sizeof shown, "%s", name);
	for (size_t k = 0; k < st->nat[ev]; k++) {
		size_t i = st->at[ev][k];
		const struct rule *r = &st->list.rules[i];

		if (ev == EVENT_CONNECT ? !client_matches(ctx, c, r, name, addr)
		    : !text_matches(ctx, c, r, name, strlen(name)))
			continue;
		log_match(ctx, r, ev == EVENT_CONNECT ? "client" : "helo",
		    shown, strlen(shown));
		switch (r->action) {
		case ACTION_REJECT:
		case ACTION_TEMPFAIL:
			return refuse(ctx, r);
		case ACTION_ACCEPT:
		case ACTION_DISCARD:
			c->verdict = r->action == ACTION_ACCEPT ?
			    VERDICT_ACCEPT : VERDICT_DISCARD;
			c->verdict_rule = r;
			return MH_CONTINUE;
		default:
			bit_set(c->deferred, i);
		}
	}
	return MH_CONTINUE;
}

/* After the connection's rules: an accept with nothing left to do for
 * the messages is the end of the instance for the connection. */
static mh_status
connection_outcome(const struct rules *st, const struct conn *c,
		   mh_status status)
{
	if (status != MH_CONTINUE || c->verdict != VERDICT_ACCEPT)
		return status;
	for (size_t i = 0; i < st->setbytes; i++)
		if (c->deferred[i] != 0)
			return MH_CONTINUE;
	return MH_ACCEPT;
}

/* The start of a message: what the client and HELO rules left for it. */
static mh_status
start_message(mh_ctx *ctx, const struct rules *st, struct conn *c,
	      struct msg *m)
{
	for (size_t i = 0; i < st->list.n; i++) {
		if (!bit_get(c->deferred, i))
			continue;
		if (act(ctx, st, m, &st->list.rules[i], NULL) != MH_OK)
			return MH_FAIL;
	}
	if (c->verdict == VERDICT_DISCARD) {
		mh_log(ctx, MH_LOG_INFO, "%s: discarding the message, as the "
		    "connection's rule said", c->verdict_rule->label);
		return MH_DISCARD;
	}
	if (c->verdict == VERDICT_ACCEPT)
		return leave_message(ctx, st, m);
	return MH_CONTINUE;
}

/* ---- callbacks: connection -------------------------------------------------- */

static mh_status
rl_connect(mh_ctx *ctx, const char *hostname, const struct sockaddr *addr)
{
	const struct rules *st = mh_instance_state(ctx);
	struct conn *c = connection(ctx, st);

	(void)addr; /* mh_client_address gives it as text */
	if (c == NULL)
		return MH_FAIL;
	return connection_outcome(st, c, check_connection(ctx, st, c,
	    EVENT_CONNECT, hostname, mh_client_address(ctx)));
}

static mh_status
rl_helo(mh_ctx *ctx, const char *name)
{
	const struct rules *st = mh_instance_state(ctx);
	struct conn *c = connection(ctx, st);

	if (c == NULL)
		return MH_FAIL;
	if (c->verdict != VERDICT_NONE)
		return MH_CONTINUE;
	/* A new HELO replaces what the last one's rules left. */
	for (size_t k = 0; k < st->nat[EVENT_HELO]; k++)
		bit_clear(c->deferred, st->at[EVENT_HELO][k]);
	return connection_outcome(st, c, check_connection(ctx, st, c,
	    EVENT_HELO, name, NULL));
}

/* ---- callbacks: envelope ------------------------------------------------------ */

/* An address without the angle brackets the client wrote around it. */
static struct subject
address(const char *what, const char *addr)
{
	struct subject sub = { .what = what, .text = addr };
	size_t len = strlen(addr);

	if (len >= 2 && addr[0] == '<' && addr[len - 1] == '>') {
		sub.text = addr + 1;
		len -= 2;
	}
	sub.len = len;
	return sub;
}

static mh_status
rl_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	const struct rules *st = mh_instance_state(ctx);
	struct conn *c = connection(ctx, st);
	struct msg *m = message(ctx, st);
	struct subject sub = address("sender", sender);
	mh_status status;

	(void)args;
	if (c == NULL || m == NULL)
		return MH_FAIL;
	status = start_message(ctx, st, c, m);
	if (status != MH_CONTINUE || m->done)
		return status;
	return check_message(ctx, st, c, m, EVENT_ENVFROM, &sub);
}

static mh_status
rl_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	const struct rules *st = mh_instance_state(ctx);
	struct conn *c = connection(ctx, st);
	struct msg *m = message(ctx, st);
	struct subject sub = address("recipient", rcpt);

	(void)args;
	if (c == NULL || m == NULL)
		return MH_FAIL;
	if (m->done)
		return done_here(ctx, st);
	return check_message(ctx, st, c, m, EVENT_ENVRCPT, &sub);
}

/* ---- callbacks: headers ---------------------------------------------------------- */

/*
 * "Name: value" in c->buf, the value unfolded (the LF of each folding
 * removed, the blank after it kept).  Returns its length, or 0 when out
 * of memory.
 */
static size_t
header_line(struct conn *c, const char *name, const char *value)
{
	size_t nlen = strlen(name), need = nlen + 2 + strlen(value) + 1, n;

	if (need > c->cap) {
		char *grown = realloc(c->buf, need);

		if (grown == NULL)
			return 0;
		c->buf = grown;
		c->cap = need;
	}
	memcpy(c->buf, name, nlen);
	memcpy(c->buf + nlen, ": ", 2);
	n = nlen + 2;
	for (const char *p = value; *p != '\0'; p++)
		if (*p != '\n')
			c->buf[n++] = *p;
	c->buf[n] = '\0';
	return n;
}

static mh_status
rl_header(mh_ctx *ctx, const char *name, const char *value)
{
	const struct rules *st = mh_instance_state(ctx);
	struct conn *c = connection(ctx, st);
	struct msg *m = message(ctx, st);
	struct subject sub = { .what = "header", .header = name };
	size_t skip = strlen(name) + 2; /* "Name: " */

	if (c == NULL || m == NULL)
		return MH_FAIL;
	if (m->done)
		return done_here(ctx, st);
	if (st->nat[EVENT_HEADER] == 0)
		return MH_CONTINUE;
	if (st->count_headers &&
	    (sub.index = count_header(&m->counts, name)) == 0)
		goto nomem;
	if ((sub.linelen = header_line(c, name, value)) == 0)
		goto nomem;
	sub.line = c->buf;
	sub.text = c->buf + skip;
	sub.len = sub.linelen - skip;
	return check_message(ctx, st, c, m, EVENT_HEADER, &sub);
nomem:
	mh_log(ctx, MH_LOG_ERR, "out of memory");
	return MH_FAIL;
}

/* ---- callbacks: body --------------------------------------------------------------- */

/* The body rules on one line (or piece of a line). */
static mh_status
check_line(mh_ctx *ctx, const struct rules *st, struct conn *c,
	   struct msg *m, const char *text, size_t len)
{
	struct subject sub = { .what = "body line", .text = text,
	    .len = len };

	return check_message(ctx, st, c, m, EVENT_BODY, &sub);
}

/* The line in the carry is complete: check it without its CR. */
static mh_status
end_line(mh_ctx *ctx, const struct rules *st, struct conn *c, struct msg *m)
{
	struct lines *b = &m->body;
	size_t len = b->len;

	if (len > 0 && b->carry[len - 1] == '\r')
		len--;
	b->len = 0;
	return check_line(ctx, st, c, m, b->carry, len);
}

/*
 * Add len bytes of a line (no LF among them) to the carry.  The carry
 * holds LINE_PIECE + 1 bytes: when more come, its first LINE_PIECE are
 * checked as a piece and the last one stays, so that a line's last piece
 * is never only the CR of its CRLF.
 */
static mh_status
extend_line(mh_ctx *ctx, const struct rules *st, struct conn *c,
	    struct msg *m, const unsigned char *data, size_t len)
{
	struct lines *b = &m->body;
	mh_status status;

	if (b->carry == NULL && (b->carry = malloc(LINE_PIECE + 1)) == NULL) {
		mh_log(ctx, MH_LOG_ERR, "out of memory");
		return MH_FAIL;
	}
	while (len > 0) {
		size_t take;

		if (b->len == LINE_PIECE + 1) {
			status = check_line(ctx, st, c, m, b->carry,
			    LINE_PIECE);
			if (status != MH_CONTINUE || m->done)
				return status;
			b->carry[0] = b->carry[LINE_PIECE];
			b->len = 1;
		}
		take = LINE_PIECE + 1 - b->len;
		if (take > len)
			take = len;
		memcpy(b->carry + b->len, data, take);
		b->len += take;
		data += take;
		len -= take;
	}
	return MH_CONTINUE;
}

/* Cut len bytes of body into lines and check each. */
static mh_status
scan_body(mh_ctx *ctx, const struct rules *st, struct conn *c, struct msg *m,
	  const unsigned char *data, size_t len)
{
	while (len > 0) {
		const unsigned char *lf = memchr(data, '\n', len);
		size_t n = lf != NULL ? (size_t)(lf - data) : len;
		mh_status status = extend_line(ctx, st, c, m, data, n);

		if (status == MH_CONTINUE && !m->done && lf != NULL) {
			status = end_line(ctx, st, c, m);
			n++;
		}
		if (status != MH_CONTINUE || m->done)
			return status;
		data += n;
		len -= n;
	}
	return MH_CONTINUE;
}

/* The body is not looked at any further: no more chunks, please (an
 * observer can only go on). */
static mh_status
body_done(const struct rules *st)
{
	return (st->observed & (1U << MH_STAGE_BODY)) ? MH_CONTINUE : MH_SKIP;
}

static mh_status
rl_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	const struct rules *st = mh_instance_state(ctx);
	struct conn *c = connection(ctx, st);
	struct msg *m = message(ctx, st);
	struct lines *b;
	mh_status status;

	if (c == NULL || m == NULL)
		return MH_FAIL;
	b = &m->body;
	if (m->done)
		return done_here(ctx, st);
	if (st->nat[EVENT_BODY] == 0 || b->done)
		return body_done(st);
	if (st->body_limit > 0 && len > st->body_limit - b->scanned)
		len = st->body_limit - b->scanned;
	b->scanned += len;
	status = scan_body(ctx, st, c, m, chunk, len);
	if (status != MH_CONTINUE || m->done)
		return status;
	if (st->body_limit == 0 || b->scanned < st->body_limit)
		return MH_CONTINUE;
	b->done = true;
	mh_log(ctx, MH_LOG_DEBUG, "body_limit: looked at the first %zu bytes "
	    "of the body", b->scanned);
	if (b->len > 0 && ((status = end_line(ctx, st, c, m)) != MH_CONTINUE ||
	    m->done))
		return status;
	return body_done(st);
}

static mh_status
rl_eom(mh_ctx *ctx)
{
	const struct rules *st = mh_instance_state(ctx);
	struct conn *c = connection(ctx, st);
	struct msg *m = message(ctx, st);
	mh_status status;

	if (c == NULL || m == NULL)
		return MH_FAIL;
	if (m->done)
		return MH_CONTINUE;
	/* The last line, without CRLF. */
	if (!m->body.done && m->body.len > 0) {
		status = end_line(ctx, st, c, m);
		if (status != MH_CONTINUE || m->done)
			return status;
	}
	return send_deletions(ctx, m) == MH_OK ? MH_CONTINUE : MH_FAIL;
}

/*
 * The actions and the observed stages are declared by each instance in
 * init (rl_init): exactly what its rules use.  No macros are needed: the
 * client's name and address come with connect.
 */
const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "rules",
	.version = "1.0",
	.description = "ordered where/pattern/action rules on the client, "
	    "envelope, headers and body",
	.list_keys = "rule rules_file",
	.init = rl_init,
	.fini = rl_fini,
	.connect = rl_connect,
	.helo = rl_helo,
	.envfrom = rl_envfrom,
	.envrcpt = rl_envrcpt,
	.header = rl_header,
	.body = rl_body,
	.eom = rl_eom,
};

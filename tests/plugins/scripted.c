/*
 * scripted - a test plugin that does, at each stage, what its
 * configuration says: decide, set replies, make message changes, or
 * misbehave.  The wire tests (tests/wire/decisions*, mods*, misbehave*)
 * run it in the daemon and check what the MTA hears.
 *
 * Built twice from this file: scripted.so declares every action;
 * scripted_few.so (-DFEW_ACTIONS) declares only MH_ACT_ADDHDRS, so that
 * its other changes are undeclared actions.
 *
 * Every callback logs, at info level,
 *
 *	SCEN call STAGE [ARGUMENT]
 *
 * where SCEN is the client host name the connection gave at connect (the
 * tests name a scenario with it), and every step it runs logs
 *
 *	SCEN STAGE ACTION -> RESULT
 *
 * with the host function's return value (0 is MH_OK).
 *
 * Settings: "do" (a list key, given once per step):
 *
 *	do = [@SCEN] STAGE[:MATCH] ACTION [ARGUMENTS]
 *
 *   @SCEN	the step applies only in connections from host name SCEN
 *   @SCEN#N	the same, and only in the N-th message (from 1) of the
 *		connection (its envfrom and later stages)
 *   STAGE	connect helo envfrom envrcpt data unknown header eoh body eom
 *   :MATCH	the step applies only if the callback's argument is MATCH:
 *		the host name (connect), the HELO name, the sender, the
 *		recipient, the command (unknown), the header name, or the
 *		number of the body chunk in the message, from 1 (body)
 *
 * The steps that apply run in file order; the callback returns the status
 * of the last status step, MH_CONTINUE if there is none.  Actions:
 *
 *   continue, accept, discard, skip, fail	status MH_CONTINUE, ...
 *   reject [RCODE XCODE TEXT]	set the reply if given; status MH_REJECT
 *   tempfail [RCODE XCODE TEXT]	the same with MH_TEMPFAIL
 *   return VALUE		status VALUE: a name above or a number
 *   reply RCODE XCODE TEXT	mh_set_reply (XCODE "-" is NULL)
 *   reply_ml RCODE XCODE L1|L2|...	mh_set_reply_lines
 *   add_header NAME VALUE		mh_header_add
 *   insert_header IDX NAME VALUE	mh_header_insert
 *   change_header NAME IDX VALUE	mh_header_change
 *   delete_header NAME IDX		mh_header_delete
 *   replace_body TEXT		mh_body_replace of TEXT
 *   replace_body_size N		mh_body_replace of the first N bytes of
 *				the lines "%07u " + BODY_LETTERS + CRLF
 *				for 0, 1, 2, ..., in calls of at most
 *				BODY_PIECE bytes
 *   add_rcpt RCPT			mh_rcpt_add without arguments
 *   add_rcpt_args RCPT ARGS	mh_rcpt_add with arguments
 *   delete_rcpt RCPT		mh_rcpt_delete
 *   change_from SENDER [ARGS]	mh_from_change
 *   quarantine REASON		mh_quarantine
 *   progress			mh_progress
 *   sleep MS			sleep MS milliseconds (a slow callback)
 *   kv_count KEY NAME		mh_kv_incr of KEY by 1 (ABI 1.4), then
 *				mh_header_add NAME with the count
 *   kv_get KEY			mh_kv_get of KEY (the value is dropped)
 *   kv_set KEY VALUE		mh_kv_set of KEY to VALUE, no time to live
 *   kv_add KEY VALUE		mh_kv_add, the same
 *   kv_delete KEY			mh_kv_delete of KEY
 *
 * Settings: "observe" (a list key): a stage where the instance declares
 * it only observes (mh_declare_observer, ABI 1.1).
 *
 * TEXT, VALUE, REASON and ARGS run to the end of the line, and "\r",
 * "\n", "\t" and "\\" in them stand for CR, LF, tab and a backslash.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <milterhost/plugin.h>

#ifdef FEW_ACTIONS
#define SCRIPTED_NAME "scripted_few"
#define SCRIPTED_ACTIONS MH_ACT_ADDHDRS
#else
#define SCRIPTED_NAME "scripted"
#define SCRIPTED_ACTIONS (MH_ACT_ADDHDRS | MH_ACT_CHGBODY |                \
	MH_ACT_ADDRCPT | MH_ACT_DELRCPT | MH_ACT_CHGHDRS |                 \
	MH_ACT_QUARANTINE | MH_ACT_CHGFROM | MH_ACT_ADDRCPT_PAR)
#endif

/* The generated body: see replace_body_size above. */
#define BODY_LETTERS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01"
#define BODY_LINE 64
#define BODY_PIECE 50000

#define MAX_LINES 32

enum action {
	A_STATUS, A_REPLY_STATUS, A_RETURN, A_REPLY, A_REPLY_ML,
	A_ADD_HEADER, A_INSERT_HEADER, A_CHANGE_HEADER, A_DELETE_HEADER,
	A_REPLACE_BODY, A_REPLACE_BODY_SIZE, A_ADD_RCPT, A_ADD_RCPT_ARGS,
	A_DELETE_RCPT, A_CHANGE_FROM, A_QUARANTINE, A_PROGRESS, A_SLEEP,
	A_KV_COUNT, A_KV_GET, A_KV_SET, A_KV_ADD, A_KV_DELETE
};

/* How an action's words after its name are split: the number of single
 * words, and whether the rest of the line follows (needed or optional). */
static const struct action_def {
	const char *name;
	enum action action;
	int status;
	int words;
	int rest;		/* 0 none, 1 required, 2 optional */
} actions[] = {
	{ "continue", A_STATUS, MH_CONTINUE, 0, 0 },
	{ "accept", A_STATUS, MH_ACCEPT, 0, 0 },
	{ "discard", A_STATUS, MH_DISCARD, 0, 0 },
	{ "skip", A_STATUS, MH_SKIP, 0, 0 },
	{ "fail", A_STATUS, MH_FAIL, 0, 0 },
	{ "reject", A_REPLY_STATUS, MH_REJECT, 0, 2 },
	{ "tempfail", A_REPLY_STATUS, MH_TEMPFAIL, 0, 2 },
	{ "return", A_RETURN, 0, 1, 0 },
	{ "reply", A_REPLY, 0, 2, 1 },
	{ "reply_ml", A_REPLY_ML, 0, 2, 1 },
	{ "add_header", A_ADD_HEADER, 0, 1, 2 },
	{ "insert_header", A_INSERT_HEADER, 0, 2, 2 },
	{ "change_header", A_CHANGE_HEADER, 0, 2, 2 },
	{ "delete_header", A_DELETE_HEADER, 0, 2, 0 },
	{ "replace_body", A_REPLACE_BODY, 0, 0, 2 },
	{ "replace_body_size", A_REPLACE_BODY_SIZE, 0, 1, 0 },
	{ "add_rcpt", A_ADD_RCPT, 0, 1, 0 },
	{ "add_rcpt_args", A_ADD_RCPT_ARGS, 0, 1, 1 },
	{ "delete_rcpt", A_DELETE_RCPT, 0, 1, 0 },
	{ "change_from", A_CHANGE_FROM, 0, 1, 2 },
	{ "quarantine", A_QUARANTINE, 0, 0, 1 },
	{ "progress", A_PROGRESS, 0, 0, 0 },
	{ "sleep", A_SLEEP, 0, 1, 0 },
	{ "kv_count", A_KV_COUNT, 0, 2, 0 },
	{ "kv_get", A_KV_GET, 0, 1, 0 },
	{ "kv_set", A_KV_SET, 0, 2, 0 },
	{ "kv_add", A_KV_ADD, 0, 2, 0 },
	{ "kv_delete", A_KV_DELETE, 0, 1, 0 },
};

static const char *const stage_names[MH_STAGE_COUNT] = {
	"connect", "helo", "envfrom", "envrcpt", "data", "unknown",
	"header", "eoh", "body", "eom", "abort", "close"
};

static const struct {
	const char *name;
	int status;
} status_names[] = {
	{ "continue", MH_CONTINUE }, { "reject", MH_REJECT },
	{ "discard", MH_DISCARD }, { "accept", MH_ACCEPT },
	{ "tempfail", MH_TEMPFAIL }, { "skip", MH_SKIP }, { "fail", MH_FAIL },
};

struct step {
	char *scen;		/* NULL: every connection */
	unsigned long message;	/* 0: every message */
	mh_stage stage;
	char *match;		/* NULL: every call */
	const struct action_def *def;
	char *word[2];
	char *rest;		/* unescaped; NULL if absent */
	size_t restlen;
	long number;		/* return, index, size */
};

struct scripted {
	struct step *steps;
	size_t nsteps;
};

struct conn {
	char *scen;
	unsigned long messages;	/* envfrom calls so far */
};

struct msg {
	unsigned chunks;
};

static void
free_step(struct step *st)
{
	free(st->scen);
	free(st->match);
	free(st->word[0]);
	free(st->word[1]);
	free(st->rest);
}

static void
scripted_fini(void *state)
{
	struct scripted *sc = state;

	for (size_t i = 0; i < sc->nsteps; i++)
		free_step(&sc->steps[i]);
	free(sc->steps);
	free(sc);
}

/* The next word of *p (split at spaces), or NULL; advances *p. */
static char *
next_word(const char **p)
{
	const char *s = *p, *e;
	char *w;

	s += strspn(s, " \t");
	if (*s == '\0')
		return NULL;
	e = s + strcspn(s, " \t");
	if ((w = strndup(s, (size_t)(e - s))) == NULL)
		return NULL;
	*p = e;
	return w;
}

/* Copy s with \r \n \t \\ replaced; sets *len. */
static char *
unescape(const char *s, size_t *len)
{
	char *out = malloc(strlen(s) + 1), *o = out;

	if (out == NULL)
		return NULL;
	for (; *s != '\0'; s++) {
		if (*s != '\\' || s[1] == '\0') {
			*o++ = *s;
			continue;
		}
		s++;
		switch (*s) {
		case 'r':
			*o++ = '\r';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 't':
			*o++ = '\t';
			break;
		default:
			*o++ = *s;
			break;
		}
	}
	*o = '\0';
	*len = (size_t)(o - out);
	return out;
}

static int
parse_stage(const char *name, mh_stage *out)
{
	for (int i = 0; i <= MH_STAGE_EOM; i++) {
		if (strcmp(stage_names[i], name) == 0) {
			*out = (mh_stage)i;
			return 0;
		}
	}
	return -1;
}

static const struct action_def *
find_action(const char *name)
{
	for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
		if (strcmp(actions[i].name, name) == 0)
			return &actions[i];
	return NULL;
}

static int
parse_number(const char *s, long *out)
{
	char *end;

	errno = 0;
	*out = strtol(s, &end, 10);
	return errno != 0 || end == s || *end != '\0' ? -1 : 0;
}

/* The number an action takes from its words, if any. */
static int
step_number(struct step *st)
{
	switch (st->def->action) {
	case A_RETURN:
		for (size_t i = 0; i < sizeof status_names /
		    sizeof status_names[0]; i++) {
			if (strcmp(status_names[i].name, st->word[0]) == 0) {
				st->number = status_names[i].status;
				return 0;
			}
		}
		return parse_number(st->word[0], &st->number);
	case A_INSERT_HEADER:
	case A_REPLACE_BODY_SIZE:
	case A_SLEEP:
		return parse_number(st->word[0], &st->number);
	case A_CHANGE_HEADER:
	case A_DELETE_HEADER:
		return parse_number(st->word[1], &st->number);
	default:
		return 0;
	}
}

/* "[@SCEN] STAGE[:MATCH]": the first one or two words of a step. */
static int
parse_where(const struct mh_init *init, struct step *st, const char **p)
{
	char *w = next_word(p), *colon;

	if (w != NULL && w[0] == '@') {
		char *hash = strchr(w, '#'), *end;

		if (hash != NULL) {
			*hash++ = '\0';
			st->message = strtoul(hash, &end, 10);
			if (*end != '\0' || st->message == 0) {
				mh_init_error(init, "do", "bad message number "
				    "'%s'", hash);
				free(w);
				return -1;
			}
		}
		st->scen = strdup(w + 1);
		free(w);
		w = next_word(p);
	}
	if (w == NULL)
		return mh_init_error(init, "do", "missing stage");
	if ((colon = strchr(w, ':')) != NULL) {
		*colon = '\0';
		st->match = strdup(colon + 1);
	}
	if (parse_stage(w, &st->stage) < 0) {
		mh_init_error(init, "do", "unknown stage '%s'", w);
		free(w);
		return -1;
	}
	free(w);
	return 0;
}

static int
parse_step(const struct mh_init *init, struct step *st, const char *value)
{
	const char *p = value;
	char *w;

	if (parse_where(init, st, &p) < 0)
		return -1;
	if ((w = next_word(&p)) == NULL)
		return mh_init_error(init, "do", "missing action in '%s'",
		    value);
	st->def = find_action(w);
	free(w);
	if (st->def == NULL)
		return mh_init_error(init, "do", "unknown action in '%s'",
		    value);
	for (int i = 0; i < st->def->words; i++)
		if ((st->word[i] = next_word(&p)) == NULL)
			return mh_init_error(init, "do", "too few words in "
			    "'%s'", value);
	p += strspn(p, " \t");
	if (*p != '\0' && st->def->rest == 0)
		return mh_init_error(init, "do", "too many words in '%s'",
		    value);
	if (*p == '\0' && st->def->rest == 1)
		return mh_init_error(init, "do", "too few words in '%s'",
		    value);
	if (*p != '\0' && (st->rest = unescape(p, &st->restlen)) == NULL)
		return mh_init_error(init, "do", "out of memory");
	if (step_number(st) < 0)
		return mh_init_error(init, "do", "bad number in '%s'", value);
	return 0;
}

static int
scripted_init(const struct mh_init *init, void **state)
{
	struct scripted *sc = calloc(1, sizeof *sc);

	if (sc == NULL)
		return mh_init_error(init, NULL, "out of memory");
	sc->steps = calloc(init->nsettings + 1, sizeof *sc->steps);
	if (sc->steps == NULL) {
		free(sc);
		return mh_init_error(init, NULL, "out of memory");
	}
	for (size_t i = 0; i < init->nsettings; i++) {
		struct step *st;
		mh_stage observed;

		/* observe = STAGE: mh_declare_observer (ABI 1.1). */
		if (strcmp(init->settings[i].key, "observe") == 0) {
			if (parse_stage(init->settings[i].value, &observed) <
			    0 || mh_declare_observer(init, observed) != MH_OK) {
				scripted_fini(sc);
				return mh_init_error(init, "observe", "cannot "
				    "observe '%s'", init->settings[i].value);
			}
			continue;
		}
		st = &sc->steps[sc->nsteps++];
		if (strcmp(init->settings[i].key, "do") != 0) {
			scripted_fini(sc);
			return mh_init_error(init, init->settings[i].key,
			    "unknown key (" SCRIPTED_NAME " takes do and "
			    "observe)");
		}
		if (parse_step(init, st, init->settings[i].value) < 0) {
			scripted_fini(sc);
			return -1;
		}
	}
	*state = sc;
	return 0;
}

static const char *
scenario(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	return c != NULL && c->scen != NULL ? c->scen : "-";
}

/* Split "L1|L2|..." and set it as a multi-line reply. */
static int
reply_lines(mh_ctx *ctx, const struct step *st, const char *xcode)
{
	char *copy = strdup(st->rest), *p, *lines[MAX_LINES + 1];
	size_t n = 0;
	int rc;

	if (copy == NULL)
		return MH_E_NOMEM;
	for (p = copy; n < MAX_LINES + 1; n++) {
		lines[n] = p;
		if ((p = strchr(p, '|')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	rc = mh_set_reply_lines(ctx, st->word[0], xcode,
	    (const char *const *)lines, n);
	free(copy);
	return rc;
}

/* The replace_body_size body, in calls of at most BODY_PIECE bytes. */
static int
replace_body_size(mh_ctx *ctx, size_t size)
{
	char *body = malloc(size + BODY_LINE + 1), *p = body;
	int rc = MH_OK;

	if (body == NULL)
		return MH_E_NOMEM;
	for (unsigned k = 0; (size_t)(p - body) < size; k++) {
		snprintf(p, BODY_LINE + 1, "%07u %s\r\n", k, BODY_LETTERS);
		p += BODY_LINE;
	}
	for (size_t off = 0; off < size && rc == MH_OK; off += BODY_PIECE) {
		size_t n = size - off < BODY_PIECE ? size - off : BODY_PIECE;

		rc = mh_body_replace(ctx, body + off, n);
	}
	free(body);
	return rc;
}

/* The reply of "reject RCODE XCODE TEXT": rest holds all three. */
static int
status_reply(mh_ctx *ctx, const char *rest)
{
	char rcode[8], xcode[32];
	int off = 0;

	if (sscanf(rest, "%7s %31s %n", rcode, xcode, &off) < 2 || off == 0)
		return MH_E_INVALID;
	return mh_set_reply(ctx, rcode, strcmp(xcode, "-") == 0 ? NULL : xcode,
	    rest + off);
}

/* Count in the key-value store and show the count in a header: a test
 * sees what the store kept (across a reload, not across a restart). */
static int
kv_count(mh_ctx *ctx, const char *key, const char *header)
{
	char value[32];
	long long n = 0;
	int rc;

	if ((rc = mh_kv_incr(ctx, key, 1, 0, &n)) != MH_OK)
		return rc;
	snprintf(value, sizeof value, "%lld", n);
	return mh_header_add(ctx, header, value);
}

/* Run one step's host call; returns its result. */
static int
host_call(mh_ctx *ctx, const struct step *st)
{
	const char *rest = st->rest != NULL ? st->rest : "";
	const char *xcode = st->word[1] != NULL &&
	    strcmp(st->word[1], "-") == 0 ? NULL : st->word[1];

	switch (st->def->action) {
	case A_REPLY_STATUS:
		return st->rest != NULL ? status_reply(ctx, st->rest) : MH_OK;
	case A_REPLY:
		return mh_set_reply(ctx, st->word[0], xcode, rest);
	case A_REPLY_ML:
		return reply_lines(ctx, st, xcode);
	case A_ADD_HEADER:
		return mh_header_add(ctx, st->word[0], rest);
	case A_INSERT_HEADER:
		return mh_header_insert(ctx, (int)st->number, st->word[1],
		    rest);
	case A_CHANGE_HEADER:
		return mh_header_change(ctx, st->word[0], (int)st->number,
		    rest);
	case A_DELETE_HEADER:
		return mh_header_delete(ctx, st->word[0], (int)st->number);
	case A_REPLACE_BODY:
		return mh_body_replace(ctx, rest, st->restlen);
	case A_REPLACE_BODY_SIZE:
		return replace_body_size(ctx, (size_t)st->number);
	case A_ADD_RCPT:
		return mh_rcpt_add(ctx, st->word[0], NULL);
	case A_ADD_RCPT_ARGS:
		return mh_rcpt_add(ctx, st->word[0], rest);
	case A_DELETE_RCPT:
		return mh_rcpt_delete(ctx, st->word[0]);
	case A_CHANGE_FROM:
		return mh_from_change(ctx, st->word[0], st->rest);
	case A_QUARANTINE:
		return mh_quarantine(ctx, rest);
	case A_PROGRESS:
		return mh_progress(ctx);
	case A_KV_COUNT:
		return kv_count(ctx, st->word[0], st->word[1]);
	case A_KV_GET: {
		char value[64];
		size_t len;

		return mh_kv_get(ctx, st->word[0], value, sizeof value, &len);
	}
	case A_KV_SET:
		return mh_kv_set(ctx, st->word[0], st->word[1],
		    strlen(st->word[1]), 0);
	case A_KV_ADD:
		return mh_kv_add(ctx, st->word[0], st->word[1],
		    strlen(st->word[1]), 0);
	case A_KV_DELETE:
		return mh_kv_delete(ctx, st->word[0]);
	case A_SLEEP: {
		struct timespec ts = { st->number / 1000,
		    (st->number % 1000) * 1000000 };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			continue;
		return MH_OK;
	}
	default:
		return MH_OK;
	}
}

static bool
applies(mh_ctx *ctx, const struct step *st, mh_stage stage,
	const char *arg)
{
	const struct conn *c = mh_conn_data(ctx);

	if (st->stage != stage)
		return false;
	if (st->scen != NULL && strcmp(st->scen, scenario(ctx)) != 0)
		return false;
	if (st->message != 0 && (c == NULL || c->messages != st->message))
		return false;
	return st->match == NULL ||
	    (arg != NULL && strcmp(st->match, arg) == 0);
}

/* Log the call, run the steps that apply, return the status. */
static mh_status
run(mh_ctx *ctx, mh_stage stage, const char *arg)
{
	const struct scripted *sc = mh_instance_state(ctx);
	int status = MH_CONTINUE;

	mh_log(ctx, MH_LOG_INFO, "%s call %s%s%s", scenario(ctx),
	    stage_names[stage], arg != NULL ? " " : "", arg ? arg : "");
	for (size_t i = 0; i < sc->nsteps; i++) {
		const struct step *st = &sc->steps[i];
		int rc;

		if (!applies(ctx, st, stage, arg))
			continue;
		rc = host_call(ctx, st);
		mh_log(ctx, MH_LOG_INFO, "%s %s %s -> %d", scenario(ctx),
		    stage_names[stage], st->def->name, rc);
		if (st->def->action == A_RETURN)
			status = (int)st->number;
		else if (st->def->action == A_STATUS ||
		    st->def->action == A_REPLY_STATUS)
			status = st->def->status;
	}
	return (mh_status)status;
}

static mh_status
scripted_connect(mh_ctx *ctx, const char *hostname,
		 const struct sockaddr *addr)
{
	struct conn *c = calloc(1, sizeof *c);

	if (c == NULL || (c->scen = strdup(hostname)) == NULL) {
		free(c);
		return MH_FAIL;
	}
	mh_set_conn_data(ctx, c);
	return run(ctx, MH_STAGE_CONNECT, hostname);
}

static mh_status
scripted_helo(mh_ctx *ctx, const char *name)
{
	return run(ctx, MH_STAGE_HELO, name);
}

static mh_status
scripted_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	struct msg *m = calloc(1, sizeof *m);
	struct conn *c = mh_conn_data(ctx);

	if (m == NULL)
		return MH_FAIL;
	if (c != NULL)
		c->messages++;
	free(mh_msg_data(ctx));
	mh_set_msg_data(ctx, m);
	return run(ctx, MH_STAGE_ENVFROM, sender);
}

static mh_status
scripted_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	return run(ctx, MH_STAGE_ENVRCPT, rcpt);
}

static mh_status
scripted_data(mh_ctx *ctx)
{
	return run(ctx, MH_STAGE_DATA, NULL);
}

static mh_status
scripted_unknown(mh_ctx *ctx, const char *command)
{
	return run(ctx, MH_STAGE_UNKNOWN, command);
}

static mh_status
scripted_header(mh_ctx *ctx, const char *name, const char *value)
{
	return run(ctx, MH_STAGE_HEADER, name);
}

static mh_status
scripted_eoh(mh_ctx *ctx)
{
	return run(ctx, MH_STAGE_EOH, NULL);
}

static mh_status
scripted_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	struct msg *m = mh_msg_data(ctx);
	char num[24];

	snprintf(num, sizeof num, "%u", m != NULL ? ++m->chunks : 0);
	return run(ctx, MH_STAGE_BODY, num);
}

static void
free_msg(mh_ctx *ctx)
{
	free(mh_msg_data(ctx));
	mh_set_msg_data(ctx, NULL);
}

static mh_status
scripted_eom(mh_ctx *ctx)
{
	mh_status st = run(ctx, MH_STAGE_EOM, NULL);

	free_msg(ctx);
	return st;
}

static void
scripted_abort(mh_ctx *ctx)
{
	mh_log(ctx, MH_LOG_INFO, "%s call abort", scenario(ctx));
	free_msg(ctx);
}

static void
scripted_close(mh_ctx *ctx)
{
	struct conn *c = mh_conn_data(ctx);

	mh_log(ctx, MH_LOG_INFO, "%s call close", scenario(ctx));
	free_msg(ctx);
	if (c != NULL)
		free(c->scen);
	free(c);
	mh_set_conn_data(ctx, NULL);
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = SCRIPTED_NAME,
	.version = "1.0",
	.description = "does at each stage what its configuration says",
	.actions = SCRIPTED_ACTIONS,
	.list_keys = "do observe",
	.init = scripted_init,
	.fini = scripted_fini,
	.connect = scripted_connect,
	.helo = scripted_helo,
	.envfrom = scripted_envfrom,
	.envrcpt = scripted_envrcpt,
	.data = scripted_data,
	.unknown = scripted_unknown,
	.header = scripted_header,
	.eoh = scripted_eoh,
	.body = scripted_body,
	.eom = scripted_eom,
	.abort = scripted_abort,
	.close = scripted_close,
};

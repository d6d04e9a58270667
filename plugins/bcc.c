/*
 * bcc - the bundled milterhost plugin: add a recipient (an archive or
 * journaling copy) to every message, or to the messages whose sender or
 * recipients match a pattern.
 *
 *	[plugin:archive]
 *	module = bcc
 *	rcpt = archive@example.com
 *	args = NOTIFY=NEVER
 *	sender = @example\.com$
 *	recipient = @example\.com$
 *	match = any
 *
 * rcpt		the address to add (required), with or without angle
 *		brackets; it is sent to the MTA as <address>, the form of
 *		an SMTP path (Postfix takes both, Sendmail wants brackets).
 * args		ESMTP arguments of the added recipient, space-separated
 *		KEYWORD or KEYWORD=VALUE words (RFC 5321 esmtp-param), e.g.
 *		"NOTIFY=NEVER".  Only with args does the instance declare
 *		MH_ACT_ADDRCPT_PAR; without, MH_ACT_ADDRCPT.
 * sender	a PCRE2 regular expression: only messages whose envelope
 *		sender matches get the copy.  It is matched against the
 *		address without its angle brackets; the null sender (<>)
 *		is the empty string.
 * recipient	a PCRE2 regular expression: only messages with at least
 *		one recipient that matches (without angle brackets) get the
 *		copy, once.
 * match	with both sender and recipient: "all" (the default), the
 *		copy when both match; "any", when either does.
 *
 * Patterns are compiled by init, case-insensitively ("(?-i)" at the
 * start of a pattern turns that off), and match anywhere in the address
 * unless anchored (^, $).  They match bytes: an address in UTF-8 is a
 * string of bytes to them.  No JIT: the systemd unit forbids writable
 * executable memory.  A bad pattern fails init with the key, PCRE2's
 * reason and where in the pattern it is.
 *
 * Recipients are those this instance sees at envrcpt: not the ones the
 * MTA rejected (no MH_WANT_REJECTED_RCPTS), nor those an earlier instance
 * of the chain refused; a later instance's refusal comes too late for
 * this one to know.  Put bcc after the instances that refuse recipients.
 * When the address to add is already one of those recipients (compared
 * without brackets, ignoring case) it is not added again.
 *
 * The recipient is added at the end of the message, once the sender and
 * every recipient are known.  The instance only observes at envfrom and
 * envrcpt (mh_declare_observer): when no other instance decides there,
 * the MTA need not wait for an answer to MAIL and RCPT.  An error while
 * matching (PCRE2's match limit, say) or an allocation failure fails the
 * callback, and the instance's on_error decides about the message.
 *
 * Instance state (the compiled patterns and the strings) is read-only
 * after init and shared by the sessions; a compiled pattern may be used
 * by several threads at once, each with match data of its own, kept here
 * in the message slot.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <milterhost/plugin.h>

#include "pattern.h"
#include "support.h"

struct bcc {
	char *rcpt;    /* "<archive@example.com>", as sent to the MTA */
	char *bare;    /* "archive@example.com", compared to recipients */
	size_t bare_len;
	char *args;    /* ESMTP arguments, or NULL */
	pcre2_code *sender;    /* NULL: any sender */
	pcre2_code *recipient; /* NULL: any recipients */
	bool any;      /* match = any */
};

/* One message: what has matched so far. */
struct message {
	pcre2_match_data *md; /* NULL when the instance has no pattern */
	bool sender_matched;
	bool rcpt_matched;
	bool present; /* the address to add is already a recipient */
};

static void
bcc_fini(void *state)
{
	struct bcc *b = state;

	if (b == NULL)
		return;
	free(b->rcpt);
	free(b->bare);
	free(b->args);
	pcre2_code_free(b->sender);
	pcre2_code_free(b->recipient);
	free(b);
}

/*
 * The address without one pair of enclosing angle brackets: a pointer
 * into addr and its length.
 */
static const char *
unbracket(const char *addr, size_t *len)
{
	size_t n = strlen(addr);

	if (n >= 2 && addr[0] == '<' && addr[n - 1] == '>') {
		*len = n - 2;
		return addr + 1;
	}
	*len = n;
	return addr;
}

/* ---- init: the settings ------------------------------------------------ */

/* rcpt: an address, bracketed or not; no blanks, controls or brackets in
 * it. */
static int
parse_rcpt(const struct mh_init *init, const char *value, struct bcc *b)
{
	const char *addr;
	size_t len;

	addr = unbracket(value, &len);
	if (len == 0)
		return mh_init_error(init, "rcpt", "needs an address, e.g. "
		    "rcpt = archive@example.com");
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)addr[i];

		if (c <= ' ' || c == 127 || c == '<' || c == '>')
			return mh_init_error(init, "rcpt", "bad address "
			    "'%s': one address, without blanks, with or "
			    "without enclosing angle brackets", value);
	}
	b->bare_len = len;
	if ((b->bare = strndup(addr, len)) == NULL ||
	    (b->rcpt = malloc(len + 3)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	b->rcpt[0] = '<';
	memcpy(b->rcpt + 1, addr, len);
	b->rcpt[len + 1] = '>';
	b->rcpt[len + 2] = '\0';
	return 0;
}

/*
 * One ESMTP parameter of RFC 5321: a keyword of letters, digits and '-'
 * (starting with a letter or digit), then optionally '=' and a value of
 * printable ASCII without '=' or blanks.
 */
static bool
is_esmtp_param(const char *word, size_t len)
{
	size_t i = 0;

	if (len == 0 || !isalnum((unsigned char)word[0]))
		return false;
	while (i < len && (isalnum((unsigned char)word[i]) || word[i] == '-'))
		i++;
	if (i == len)
		return true;
	if (word[i++] != '=' || i == len)
		return false;
	for (; i < len; i++)
		if (word[i] < 33 || word[i] > 126 || word[i] == '=')
			return false;
	return true;
}

/* args: ESMTP parameters, stored one space apart. */
static int
parse_args(const struct mh_init *init, const char *value, struct bcc *b)
{
	const char *p = value;
	size_t n = 0;

	if ((b->args = malloc(strlen(value) + 1)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	while (*(p += strspn(p, " \t")) != '\0') {
		size_t len = strcspn(p, " \t");

		if (!is_esmtp_param(p, len))
			return mh_init_error(init, "args", "bad ESMTP "
			    "argument '%.*s': expected KEYWORD or "
			    "KEYWORD=VALUE, e.g. NOTIFY=NEVER", (int)len, p);
		if (n > 0)
			b->args[n++] = ' ';
		memcpy(b->args + n, p, len);
		n += len;
		p += len;
	}
	if (n == 0)
		return mh_init_error(init, "args", "is empty: leave the key "
		    "out for a recipient without arguments");
	b->args[n] = '\0';
	return 0;
}

/* Compile a pattern, case-insensitively. */
static int
compile(const struct mh_init *init, const char *key, const char *pattern,
	pcre2_code **out)
{
	char err[1024];

	if (*pattern == '\0')
		return mh_init_error(init, key, "is empty: leave the key out "
		    "to take every message");
	*out = bundled_compile(pattern, strlen(pattern), PCRE2_CASELESS, err,
	    sizeof err);
	if (*out == NULL)
		return mh_init_error(init, key, "%s", err);
	return 0;
}

/* The settings of the section, checked one by one. */
struct settings {
	const char *rcpt;
	const char *args;
	const char *sender;
	const char *recipient;
	const char *match;
};

static int
collect_settings(const struct mh_init *init, struct settings *s)
{
	const struct bundled_key keys[] = {
		{ "rcpt", &s->rcpt },
		{ "args", &s->args },
		{ "sender", &s->sender },
		{ "recipient", &s->recipient },
		{ "match", &s->match },
		{ NULL, NULL },
	};

	if (bundled_read_settings(init, "bcc", keys) < 0)
		return -1;
	if (s->rcpt == NULL)
		return mh_init_error(init, "rcpt", "missing: give the address "
		    "to add, e.g. rcpt = archive@example.com");
	return 0;
}

static int
parse_match(const struct mh_init *init, const struct settings *s,
	    struct bcc *b)
{
	if (s->sender == NULL || s->recipient == NULL)
		return mh_init_error(init, "match", "needs both sender and "
		    "recipient: it says how they combine");
	if (strcasecmp(s->match, "any") == 0)
		b->any = true;
	else if (strcasecmp(s->match, "all") != 0)
		return mh_init_error(init, "match", "bad value '%s': expected "
		    "all (both patterns must match) or any (either)",
		    s->match);
	return 0;
}

static int
bcc_init(const struct mh_init *init, void **state)
{
	struct settings s;
	struct bcc *b;

	if (collect_settings(init, &s) < 0)
		return -1;
	if ((b = calloc(1, sizeof *b)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	if (parse_rcpt(init, s.rcpt, b) < 0 ||
	    (s.args != NULL && parse_args(init, s.args, b) < 0) ||
	    (s.sender != NULL &&
	    compile(init, "sender", s.sender, &b->sender) < 0) ||
	    (s.recipient != NULL &&
	    compile(init, "recipient", s.recipient, &b->recipient) < 0) ||
	    (s.match != NULL && parse_match(init, &s, b) < 0) ||
	    mh_declare_actions(init, b->args != NULL ? MH_ACT_ADDRCPT_PAR :
	    MH_ACT_ADDRCPT) != MH_OK ||
	    mh_declare_observer(init, MH_STAGE_ENVFROM) != MH_OK ||
	    mh_declare_observer(init, MH_STAGE_ENVRCPT) != MH_OK) {
		bcc_fini(b);
		return -1;
	}
	*state = b;
	return 0;
}

/* ---- the message ------------------------------------------------------ */

static void
free_message(void *data)
{
	struct message *m = data;

	pcre2_match_data_free(m->md);
	free(m);
}

/* This message's state, made at its first callback; NULL when out of
 * memory (logged). */
static struct message *
message_state(mh_ctx *ctx, const struct bcc *b)
{
	struct message *m = mh_msg_data(ctx);

	if (m != NULL)
		return m;
	if ((m = calloc(1, sizeof *m)) == NULL)
		goto nomem;
	/* Whether it matches is all we ask: one pair of offsets. */
	if ((b->sender != NULL || b->recipient != NULL) &&
	    (m->md = pcre2_match_data_create(1, NULL)) == NULL) {
		free(m);
		goto nomem;
	}
	if (mh_set_msg_data_free(ctx, m, free_message) != MH_OK) {
		free_message(m);
		return NULL;
	}
	return m;
nomem:
	mh_log(ctx, MH_LOG_ERR, "out of memory");
	return NULL;
}

/*
 * Does the address (brackets removed) match the pattern of key?  1 or 0,
 * or -1 on an error of PCRE2's (logged).
 */
static int
matches(mh_ctx *ctx, const char *key, const pcre2_code *code,
	struct message *m, const char *address)
{
	PCRE2_UCHAR reason[256];
	const char *s;
	size_t len;
	int rc;

	s = unbracket(address, &len);
	rc = pcre2_match(code, (PCRE2_SPTR)s, len, 0, 0, m->md, NULL);
	if (rc >= 0)
		return 1;
	if (rc == PCRE2_ERROR_NOMATCH)
		return 0;
	if (pcre2_get_error_message(rc, reason, sizeof reason) < 0)
		strcpy((char *)reason, "unknown error");
	mh_log(ctx, MH_LOG_ERR, "%s pattern on %s: %s", key, address,
	    (const char *)reason);
	return -1;
}

static mh_status
bcc_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	const struct bcc *b = mh_instance_state(ctx);
	struct message *m;
	int rc;

	(void)args;
	if ((m = message_state(ctx, b)) == NULL)
		return MH_FAIL;
	if (b->sender == NULL)
		return MH_CONTINUE;
	if ((rc = matches(ctx, "sender", b->sender, m, sender)) < 0)
		return MH_FAIL;
	m->sender_matched = rc == 1;
	return MH_CONTINUE;
}

static mh_status
bcc_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	const struct bcc *b = mh_instance_state(ctx);
	struct message *m;
	const char *addr;
	size_t len;
	int rc;

	(void)args;
	if ((m = message_state(ctx, b)) == NULL)
		return MH_FAIL;
	addr = unbracket(rcpt, &len);
	if (len == b->bare_len && strncasecmp(addr, b->bare, len) == 0)
		m->present = true;
	if (b->recipient == NULL || m->rcpt_matched)
		return MH_CONTINUE;
	if ((rc = matches(ctx, "recipient", b->recipient, m, rcpt)) < 0)
		return MH_FAIL;
	m->rcpt_matched = rc == 1;
	return MH_CONTINUE;
}

/* How a pattern fared in this message, for the log. */
static const char *
outcome(const pcre2_code *code, bool matched)
{
	if (code == NULL)
		return "no pattern";
	return matched ? "matches" : "does not match";
}

/* Do the message's sender and recipients call for the copy? */
static bool
wanted(const struct bcc *b, const struct message *m)
{
	bool sender_ok = b->sender == NULL || m->sender_matched;
	bool rcpt_ok = b->recipient == NULL || m->rcpt_matched;

	if (b->any)
		return m->sender_matched || m->rcpt_matched;
	return sender_ok && rcpt_ok;
}

static mh_status
bcc_eom(mh_ctx *ctx)
{
	const struct bcc *b = mh_instance_state(ctx);
	struct message *m;

	if ((m = message_state(ctx, b)) == NULL)
		return MH_FAIL;
	if (!wanted(b, m)) {
		mh_log(ctx, MH_LOG_DEBUG, "not adding %s: sender %s, "
		    "recipients %s (match = %s)", b->rcpt,
		    outcome(b->sender, m->sender_matched),
		    outcome(b->recipient, m->rcpt_matched),
		    b->any ? "any" : "all");
		return MH_CONTINUE;
	}
	if (m->present) {
		mh_log(ctx, MH_LOG_DEBUG, "not adding %s: already a recipient",
		    b->rcpt);
		return MH_CONTINUE;
	}
	/* A refused change is logged by the host with its reason. */
	if (mh_rcpt_add(ctx, b->rcpt, b->args) != MH_OK)
		return MH_FAIL;
	mh_log(ctx, MH_LOG_DEBUG, "adding recipient %s%s%s", b->rcpt,
	    b->args != NULL ? " " : "", b->args != NULL ? b->args : "");
	return MH_CONTINUE;
}

/*
 * The actions are declared per instance (bcc_init): MH_ACT_ADDRCPT_PAR
 * only for an instance with args, since an MTA that does not offer it
 * would switch the instance off.
 */
const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "bcc",
	.version = "1.0",
	.description = "add a recipient (an archive copy) to every message "
	    "or to those whose sender or recipients match",
	.init = bcc_init,
	.fini = bcc_fini,
	.envfrom = bcc_envfrom,
	.envrcpt = bcc_envrcpt,
	.eom = bcc_eom,
};

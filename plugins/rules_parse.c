/*
 * rules_parse - the text of a rule, and files of rules, made into struct
 * rule (rules.h).  Everything here runs in init, once per instance.
 *
 * A rule is
 *
 *	WHERE [!]/PATTERN/FLAGS ACTION [ARGUMENTS]
 *
 * with blanks (spaces or tabs) between the parts.  WHERE and ACTION are
 * words in any case (WHERE "header:*" and "header" are any header); the
 * pattern is PCRE2 syntax between two '/', in
 * which "\/" stands for a '/' (PCRE2 itself reads "\/" as a '/', so the
 * text between the slashes is handed to pcre2_compile as it is); FLAGS
 * are "i" (ignore case) and "x" (extended: blanks and #-comments in the
 * pattern are ignored).  A leading '!' makes the rule match where the
 * pattern does not.
 *
 * Each error message says what is wrong and what would be right; the
 * caller adds where the rule was (the key or the file and line).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <milterhost/plugin.h>

#include "pattern.h"
#include "rules.h"
#include "support.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* What the host takes: a score's points and reason. */
#define POINTS_MAX 1000.0
#define REASON_MAX 200

static const char *const where_names[] = {
	[WHERE_CLIENT] = "client",
	[WHERE_CLIENT_NAME] = "client_name",
	[WHERE_CLIENT_ADDR] = "client_addr",
	[WHERE_HELO] = "helo",
	[WHERE_SENDER] = "sender",
	[WHERE_RECIPIENT] = "recipient",
	[WHERE_HEADER] = "header",
	[WHERE_BODY] = "body",
};

static const char *const action_names[] = {
	[ACTION_REJECT] = "reject",
	[ACTION_TEMPFAIL] = "tempfail",
	[ACTION_DISCARD] = "discard",
	[ACTION_ACCEPT] = "accept",
	[ACTION_ADDHEADER] = "addheader",
	[ACTION_DELETE] = "delete",
	[ACTION_QUARANTINE] = "quarantine",
	[ACTION_SCORE] = "score",
};

bool
action_is_terminal(enum action action)
{
	return action == ACTION_REJECT || action == ACTION_TEMPFAIL ||
	    action == ACTION_DISCARD || action == ACTION_ACCEPT;
}

const char *
where_name(enum where where)
{
	return where_names[where];
}

const char *
action_name(enum action action)
{
	return action_names[action];
}

/* Write the reason into err; returns -1. */
static int
bad(char *err, size_t errlen, const char *fmt, ...) MH_PRINTF(3, 4);

static int
bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *
skip_blanks(const char *p)
{
	return p + strspn(p, " \t");
}

/* The length of the word at p: up to a blank or the end. */
static size_t
word_length(const char *p)
{
	return strcspn(p, " \t");
}

/* A header name: printable ASCII without ':' (and, being a word, without
 * blanks). */
static bool
good_header_name(const char *name, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];

		if (ch <= ' ' || ch >= 127 || ch == ':')
			return false;
	}
	return true;
}

static void
rule_free(struct rule *r)
{
	free(r->label);
	free(r->header);
	free(r->text);
	free(r->name);
	pcre2_code_free(r->code);
	memset(r, 0, sizeof *r);
}

void
rule_list_free(struct rule_list *list)
{
	for (size_t i = 0; i < list->n; i++)
		rule_free(&list->rules[i]);
	free(list->rules);
	memset(list, 0, sizeof *list);
}

/* ---- WHERE ---------------------------------------------------------------- */

static int
parse_where(struct rule *r, const char *w, size_t len, char *err,
	    size_t errlen)
{
	static const char prefix[] = "header:";
	size_t plen = sizeof prefix - 1;

	if (len == plen + 1 && strncasecmp(w, "header:*", len) == 0) {
		r->where = WHERE_HEADER;
		return 0;
	}
	if (len > plen && strncasecmp(w, prefix, plen) == 0) {
		if (!good_header_name(w + plen, len - plen))
			return bad(err, errlen, "bad header name '%.*s' in "
			    "'%.*s': use printable ASCII without ':'",
			    (int)(len - plen), w + plen, (int)len, w);
		r->where = WHERE_HEADER;
		if ((r->header = strndup(w + plen, len - plen)) == NULL)
			return bad(err, errlen, "out of memory");
		return 0;
	}
	for (size_t i = 0; i < NELEM(where_names); i++) {
		if (strlen(where_names[i]) == len &&
		    strncasecmp(w, where_names[i], len) == 0) {
			r->where = (enum where)i;
			return 0;
		}
	}
	return bad(err, errlen, "unknown where '%.*s': use client, "
	    "client_name, client_addr, helo, sender, recipient, header:NAME, "
	    "header:* (or header) or body", (int)len, w);
}

/* ---- [!]/PATTERN/FLAGS ------------------------------------------------------ */

/*
 * The pattern at *pp, with its '!' and its flags: compile it into r and
 * advance *pp past the flags.
 */
static int
parse_pattern(struct rule *r, const char **pp, char *err, size_t errlen)
{
	const char *p = *pp, *start;
	uint32_t options = 0;

	if (*p == '!') {
		r->negate = true;
		p++;
	}
	if (*p != '/')
		return bad(err, errlen, "expected a pattern between slashes "
		    "after '%s', e.g. /^spam@/", where_names[r->where]);
	start = ++p;
	while (*p != '/') {
		if (*p == '\0')
			return bad(err, errlen, "the pattern /%s has no "
			    "closing '/' (write \\/ for a '/' in it)", start);
		if (*p == '\\' && p[1] != '\0')
			p++;
		p++;
	}
	for (*pp = p + 1; **pp != '\0' && **pp != ' ' && **pp != '\t';
	    (*pp)++) {
		if (**pp == 'i')
			options |= PCRE2_CASELESS;
		else if (**pp == 'x')
			options |= PCRE2_EXTENDED;
		else
			return bad(err, errlen, "unknown flag '%c' after the "
			    "pattern: the flags are i (ignore case) and x "
			    "(extended)", **pp);
	}
	r->code = bundled_compile(start, (size_t)(p - start), options, err,
	    errlen);
	return r->code != NULL ? 0 : -1;
}

/* ---- ACTION [ARGUMENTS] ------------------------------------------------------ */

/*
 * The arguments of reject (class '5') and tempfail ('4'): nothing (the
 * MTA's reply), a text (with the default code), or CODE [X.Y.Z] TEXT.
 */
static int
parse_reply(struct rule *r, const char *args, char class, char *err,
	    size_t errlen)
{
	const char *name = action_names[r->action], *text = args;
	struct bundled_reply reply;
	char example[64];

	if (*args == '\0')
		return 0;
	if (!bundled_reply_has_code(args)) {
		/* Only a text: the usual code for a policy refusal. */
		snprintf(r->rcode, sizeof r->rcode, "%c%s", class,
		    class == '5' ? "50" : "51");
		snprintf(r->xcode, sizeof r->xcode, "%c.7.1", class);
		if (bundled_check_reply_text(args, err, errlen) < 0)
			return -1;
	} else {
		if (args[0] != class)
			return bad(err, errlen, "%s takes a %cxx reply code, "
			    "not %.3s", name, class, args);
		snprintf(example, sizeof example, "%s %.3s %c.7.1 Go away",
		    name, args, class);
		if (bundled_parse_reply(args, example, &reply, err,
		    errlen) < 0)
			return -1;
		memcpy(r->rcode, reply.rcode, sizeof r->rcode);
		memcpy(r->xcode, reply.xcode, sizeof r->xcode);
		text = reply.text;
	}
	if ((r->text = strdup(text)) == NULL)
		return bad(err, errlen, "out of memory");
	return 0;
}

static int
parse_addheader(struct rule *r, const char *args, char *err, size_t errlen)
{
	size_t n = word_length(args);
	const char *value = skip_blanks(args + n);

	if (n == 0 || *value == '\0')
		return bad(err, errlen, "addheader needs a header name and a "
		    "value, e.g. addheader X-Listed yes");
	if (!good_header_name(args, n))
		return bad(err, errlen, "bad header name '%.*s': use "
		    "printable ASCII without ':'", (int)n, args);
	if ((r->name = strndup(args, n)) == NULL ||
	    (r->text = strdup(value)) == NULL)
		return bad(err, errlen, "out of memory");
	return 0;
}

/* A reason for the log and the score header: printable, as the host
 * wants it. */
static int
check_reason(const char *reason, size_t max, char *err, size_t errlen)
{
	if (*reason == '\0')
		return bad(err, errlen, "a reason is missing");
	if (strlen(reason) > max)
		return bad(err, errlen, "the reason is %zu bytes long, more "
		    "than %zu", strlen(reason), max);
	for (const unsigned char *p = (const unsigned char *)reason; *p; p++)
		if (*p < ' ' || *p == 127)
			return bad(err, errlen, "the reason holds a control "
			    "character (0x%02x)", *p);
	return 0;
}

/* "[+-]digits[.digits]", from -1000 to 1000. */
static int
parse_points(struct rule *r, const char *s, size_t len, char *err,
	     size_t errlen)
{
	char buf[32];
	size_t i = 0, digits;

	if (len > 0 && (s[0] == '+' || s[0] == '-'))
		i++;
	digits = strspn(s + i, "0123456789");
	i += digits;
	if (digits > 0 && i < len && s[i] == '.') {
		digits = strspn(s + i + 1, "0123456789");
		i += 1 + digits;
	}
	if (digits == 0 || i != len || len >= sizeof buf)
		goto bad;
	memcpy(buf, s, len);
	buf[len] = '\0';
	r->points = strtod(buf, NULL);
	if (r->points >= -POINTS_MAX && r->points <= POINTS_MAX)
		return 0;
bad:
	return bad(err, errlen, "bad points '%.*s': give a number from "
	    "-1000 to 1000, e.g. score 2.5 listed sender", (int)len, s);
}

static int
parse_score(struct rule *r, const char *args, char *err, size_t errlen)
{
	size_t n = word_length(args);
	const char *reason = skip_blanks(args + n);

	if (n == 0)
		return bad(err, errlen, "score needs points and a reason, "
		    "e.g. score 5 listed sender");
	if (parse_points(r, args, n, err, errlen) < 0)
		return -1;
	if (*reason == '\0')
		return bad(err, errlen, "score %.*s needs a reason after the "
		    "points: it names them in the log and the score header",
		    (int)n, args);
	if (check_reason(reason, REASON_MAX, err, errlen) < 0)
		return -1;
	if ((r->text = strdup(reason)) == NULL)
		return bad(err, errlen, "out of memory");
	return 0;
}

static int
parse_quarantine(struct rule *r, const char *args, char *err, size_t errlen)
{
	if (*args == '\0')
		return bad(err, errlen, "quarantine needs a reason, e.g. "
		    "quarantine suspicious attachment");
	if (check_reason(args, BUNDLED_REPLY_TEXT_MAX, err, errlen) < 0)
		return -1;
	if ((r->text = strdup(args)) == NULL)
		return bad(err, errlen, "out of memory");
	return 0;
}

static int
parse_action(struct rule *r, const char *word, size_t len, const char *args,
	     char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < NELEM(action_names); i++)
		if (strlen(action_names[i]) == len &&
		    strncasecmp(word, action_names[i], len) == 0)
			break;
	if (i == NELEM(action_names))
		return bad(err, errlen, "unknown action '%.*s': use reject, "
		    "tempfail, discard, accept, addheader, delete, quarantine "
		    "or score", (int)len, word);
	r->action = (enum action)i;
	switch (r->action) {
	case ACTION_REJECT:
		return parse_reply(r, args, '5', err, errlen);
	case ACTION_TEMPFAIL:
		return parse_reply(r, args, '4', err, errlen);
	case ACTION_ADDHEADER:
		return parse_addheader(r, args, err, errlen);
	case ACTION_QUARANTINE:
		return parse_quarantine(r, args, err, errlen);
	case ACTION_SCORE:
		return parse_score(r, args, err, errlen);
	case ACTION_DELETE:
		if (r->where != WHERE_HEADER)
			return bad(err, errlen, "delete works on headers "
			    "only (header:NAME or header:*), not on %s: it "
			    "deletes the header that matched",
			    where_names[r->where]);
		break;
	case ACTION_DISCARD:
	case ACTION_ACCEPT:
		break;
	}
	if (*args != '\0')
		return bad(err, errlen, "%s takes no arguments, but '%s' "
		    "follows it", action_names[r->action], args);
	return 0;
}

/* ---- a whole rule --------------------------------------------------------------- */

/* The rule's text, blanks around it already removed. */
static int
parse_rule(struct rule *r, const char *text, char *err, size_t errlen)
{
	const char *p = text, *action;
	char *args;
	size_t n, end;
	int rc;

	if (*p == '\0')
		return bad(err, errlen, "empty rule: write WHERE /PATTERN/ "
		    "ACTION, e.g. sender /@spam\\.example$/ reject");
	n = word_length(p);
	if (parse_where(r, p, n, err, errlen) < 0)
		return -1;
	p = skip_blanks(p + n);
	if (parse_pattern(r, &p, err, errlen) < 0)
		return -1;
	action = skip_blanks(p);
	if (*action == '\0')
		return bad(err, errlen, "an action is missing after the "
		    "pattern: reject, tempfail, discard, accept, addheader, "
		    "delete, quarantine or score");
	n = word_length(action);
	/* The arguments without the blanks around them. */
	if ((args = strdup(skip_blanks(action + n))) == NULL)
		return bad(err, errlen, "out of memory");
	end = strlen(args);
	while (end > 0 && (args[end - 1] == ' ' || args[end - 1] == '\t'))
		end--;
	args[end] = '\0';
	rc = parse_action(r, action, n, args, err, errlen);
	free(args);
	return rc;
}

int
rule_list_add(struct rule_list *list, const char *text, const char *label,
	      char *err, size_t errlen)
{
	struct rule *r;

	if (list->n == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 8;
		struct rule *grown = realloc(list->rules, cap * sizeof *grown);

		if (grown == NULL)
			return bad(err, errlen, "out of memory");
		list->rules = grown;
		list->cap = cap;
	}
	r = &list->rules[list->n];
	memset(r, 0, sizeof *r);
	if ((r->label = strdup(label)) == NULL) {
		rule_free(r);
		return bad(err, errlen, "out of memory");
	}
	if (parse_rule(r, skip_blanks(text), err, errlen) < 0) {
		rule_free(r);
		return -1;
	}
	list->n++;
	return 0;
}

/* ---- files of rules ------------------------------------------------------------- */

/* One line of a file: a rule, a comment or blank. */
static int
read_line(struct rule_list *list, const char *path, unsigned lineno,
	  char *line, size_t len, char *err, size_t errlen)
{
	char label[64 + 4096], why[1024];
	const char *p;

	if (memchr(line, '\0', len) != NULL)
		return bad(err, errlen, "%s:%u: the line holds a NUL byte",
		    path, lineno);
	/* Also a CR: a file written with CRLF line ends reads the same. */
	while (len > 0 && isspace((unsigned char)line[len - 1]))
		len--;
	line[len] = '\0';
	p = skip_blanks(line);
	if (*p == '\0' || *p == '#')
		return 0;
	snprintf(label, sizeof label, "%s:%u", path, lineno);
	if (rule_list_add(list, p, label, why, sizeof why) < 0)
		return bad(err, errlen, "%s:%u: %s", path, lineno, why);
	return 0;
}

int
rule_list_read_file(struct rule_list *list, const char *path, char *err,
		    size_t errlen)
{
	struct stat sb;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	FILE *f;
	int rc = 0;

	if ((f = fopen(path, "r")) == NULL)
		return bad(err, errlen, "%s: cannot open it: %s", path,
		    strerror(errno));
	if (fstat(fileno(f), &sb) < 0 || !S_ISREG(sb.st_mode)) {
		fclose(f);
		return bad(err, errlen, "%s: not a regular file", path);
	}
	while (rc == 0 && (len = getline(&line, &cap, f)) >= 0)
		rc = read_line(list, path, ++lineno, line, (size_t)len, err,
		    errlen);
	if (rc == 0 && ferror(f))
		rc = bad(err, errlen, "%s: cannot read it: %s", path,
		    strerror(errno));
	free(line);
	fclose(f);
	return rc;
}

/*
 * rules.h - the rules of the bundled "rules" plugin, as init reads them
 * (rules_parse.c) and the callbacks use them (rules.c).
 *
 * A rule is one line of text,
 *
 *	WHERE [!]/PATTERN/FLAGS ACTION [ARGUMENTS]
 *
 * parsed and compiled once, by init.  After init a rule is read-only:
 * sessions on several threads share it (pcre2_match is safe on a shared
 * compiled pattern, each session matching with its own match data).
 */
#ifndef RULES_H
#define RULES_H

#include <stdbool.h>
#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* What a rule looks at. */
enum where {
	WHERE_CLIENT,      /* the client's host name or its address */
	WHERE_CLIENT_NAME,
	WHERE_CLIENT_ADDR,
	WHERE_HELO,
	WHERE_SENDER,
	WHERE_RECIPIENT,
	WHERE_HEADER,      /* header:NAME, or any header */
	WHERE_BODY
};

/*
 * What a matching rule does.  The first four end the checks of the event
 * (they are "terminal"); the others apply and let the checks go on.
 */
enum action {
	ACTION_REJECT,
	ACTION_TEMPFAIL,
	ACTION_DISCARD,
	ACTION_ACCEPT,
	ACTION_ADDHEADER,
	ACTION_DELETE,
	ACTION_QUARANTINE,
	ACTION_SCORE
};

struct rule {
	char *label;        /* "rule 3" or "FILE:12": names it in the log */
	enum where where;
	char *header;       /* WHERE_HEADER: the name; NULL for any header */
	bool negate;        /* "!/.../": the rule matches where PATTERN fails */
	pcre2_code *code;
	enum action action;
	/*
	 * reject, tempfail: the reply; an empty rcode leaves it to the MTA
	 * (and then xcode and text are empty too).
	 */
	char rcode[4];
	char xcode[12];
	/* The reply's text, the added header's value, the reason of a
	 * quarantine or a score; NULL for the other actions. */
	char *text;
	char *name;         /* addheader: the header's name */
	double points;      /* score */
};

/* A growing list of rules, in the order they were given. */
struct rule_list {
	struct rule *rules;
	size_t n;
	size_t cap;
};

/* Does the action end the checks of the event? */
bool action_is_terminal(enum action action);

/* The where's name as a rule writes it ("client_addr", "header"). */
const char *where_name(enum where where);
/* The action's name as a rule writes it ("reject"). */
const char *action_name(enum action action);

/*
 * Parse one rule and append it to list, labelled label (copied).  Returns
 * 0, or -1 with the reason in err (without the label).
 */
int rule_list_add(struct rule_list *list, const char *text,
		  const char *label, char *err, size_t errlen);

/*
 * Append the rules of the file at path, one a line; '#' starts a comment
 * line, blank lines are skipped.  Each rule is labelled "PATH:LINE".
 * Returns 0, or -1 with the reason in err ("PATH:LINE: why" for a bad
 * rule, "PATH: why" when the file cannot be read).
 */
int rule_list_read_file(struct rule_list *list, const char *path, char *err,
			size_t errlen);

/* Free the rules and the list's array; the list is then empty. */
void rule_list_free(struct rule_list *list);

#endif /* RULES_H */

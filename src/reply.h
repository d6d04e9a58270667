/*
 * reply - SMTP replies set by plugins.
 *
 * A reply is checked when a plugin sets it, so that nothing libmilter
 * would refuse, or Postfix would treat as a malformed reply, reaches the
 * MTA: a 4xx or 5xx code, an enhanced status code of the same class,
 * 1 to 32 lines of at most 980 bytes with no CR or LF.  The text is
 * stored with every '%' doubled, as libmilter expects.
 */
#ifndef MILTERHOST_REPLY_H
#define MILTERHOST_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#define REPLY_MAX_LINES 32
#define REPLY_MAX_LINE 980

struct reply {
	char rcode[4];          /* "550" */
	char xcode[12];         /* "5.7.1", or "" for none */
	char *lines[REPLY_MAX_LINES];
	size_t nlines;          /* 0: no reply set */
};

/*
 * Check and store a reply in r, replacing what it held.  Returns 0, or -1
 * with the reason in err (r is then left empty).
 */
int reply_set(struct reply *r, const char *rcode, const char *xcode,
	      const char *const *lines, size_t nlines, char *err,
	      size_t errlen);
void reply_clear(struct reply *r);
/* Move src's reply into dst (emptying src). */
void reply_move(struct reply *dst, struct reply *src);
/* Copy src into dst (which it replaces); -1 if out of memory. */
int reply_copy(struct reply *dst, const struct reply *src);
/*
 * A reply written as one line, "550 5.7.1 text" (the enhanced status
 * code optional; no text: "rejected"), checked as reply_set checks.
 * Returns 0, or -1 with the reason in err.
 */
int reply_parse(struct reply *r, const char *text, char *err,
    size_t errlen);
/* The class digit of the reply ('4' or '5'), or 0 when empty. */
char reply_class(const struct reply *r);

#endif /* MILTERHOST_REPLY_H */

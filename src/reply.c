/*
 * reply - SMTP replies set by plugins.  See reply.h.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

/*
 * Called for every plugin at every event, nearly always on an empty reply:
 * only what is set is undone (no memset of the 32 line pointers).
 */
void
reply_clear(struct reply *r)
{
	for (size_t i = 0; i < r->nlines; i++)
		free(r->lines[i]);
	r->nlines = 0;
	r->rcode[0] = '\0';
	r->xcode[0] = '\0';
}

void
reply_move(struct reply *dst, struct reply *src)
{
	reply_clear(dst);
	*dst = *src;
	memset(src, 0, sizeof *src);
}

char
reply_class(const struct reply *r)
{
	return r->nlines > 0 ? r->rcode[0] : 0;
}

static int
check_rcode(const char *rcode)
{
	return rcode != NULL && strlen(rcode) == 3 &&
	    (rcode[0] == '4' || rcode[0] == '5') &&
	    isdigit((unsigned char)rcode[1]) && isdigit((unsigned char)rcode[2]);
}

/* A run of 1 to 3 digits at *p; advances *p. */
static int
digits(const char **p)
{
	int n = 0;

	while (isdigit((unsigned char)**p) && n < 4) {
		(*p)++;
		n++;
	}
	return n >= 1 && n <= 3;
}

/* "c.ddd.ddd" with class c equal to the reply code's first digit. */
static int
check_xcode(const char *xcode, char class)
{
	const char *p = xcode + 1;

	if (xcode[0] != class)
		return 0;
	if (*p++ != '.' || !digits(&p) || *p++ != '.' || !digits(&p))
		return 0;
	return *p == '\0';
}

/* Copy text with every '%' doubled, as libmilter's format expects. */
static char *
escape_percent(const char *text)
{
	size_t n = strlen(text), extra = 0;
	char *out, *o;

	for (const char *p = text; *p; p++)
		if (*p == '%')
			extra++;
	if ((out = malloc(n + extra + 1)) == NULL)
		return NULL;
	o = out;
	for (const char *p = text; *p; p++) {
		*o++ = *p;
		if (*p == '%')
			*o++ = '%';
	}
	*o = '\0';
	return out;
}

static int
check_line(const char *line, size_t i, char *err, size_t errlen)
{
	if (line == NULL) {
		snprintf(err, errlen, "reply line %zu is NULL", i + 1);
		return -1;
	}
	if (strpbrk(line, "\r\n") != NULL) {
		snprintf(err, errlen, "reply line %zu contains CR or LF", i + 1);
		return -1;
	}
	if (strlen(line) > REPLY_MAX_LINE) {
		snprintf(err, errlen, "reply line %zu is %zu bytes long, "
		    "more than %d", i + 1, strlen(line), REPLY_MAX_LINE);
		return -1;
	}
	return 0;
}

int
reply_set(struct reply *r, const char *rcode, const char *xcode,
    const char *const *lines, size_t nlines, char *err, size_t errlen)
{
	reply_clear(r);
	if (!check_rcode(rcode)) {
		snprintf(err, errlen, "reply code '%s' is not 4xx or 5xx",
		    rcode ? rcode : "(null)");
		return -1;
	}
	if (xcode != NULL && *xcode != '\0' && !check_xcode(xcode, rcode[0])) {
		snprintf(err, errlen, "enhanced status code '%s' is not "
		    "%c.x.y as reply code %s requires", xcode, rcode[0], rcode);
		return -1;
	}
	if (nlines < 1 || nlines > REPLY_MAX_LINES) {
		snprintf(err, errlen, "a reply has 1 to %d lines, not %zu",
		    REPLY_MAX_LINES, nlines);
		return -1;
	}
	for (size_t i = 0; i < nlines; i++)
		if (check_line(lines[i], i, err, errlen) < 0)
			return -1;
	for (size_t i = 0; i < nlines; i++) {
		if ((r->lines[i] = escape_percent(lines[i])) == NULL) {
			reply_clear(r);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		r->nlines = i + 1;
	}
	memcpy(r->rcode, rcode, 4);
	snprintf(r->xcode, sizeof r->xcode, "%s", xcode ? xcode : "");
	return 0;
}

int
reply_copy(struct reply *dst, const struct reply *src)
{
	reply_clear(dst);
	for (size_t i = 0; i < src->nlines; i++) {
		if ((dst->lines[i] = strdup(src->lines[i])) == NULL) {
			reply_clear(dst);
			return -1;
		}
		dst->nlines = i + 1;
	}
	memcpy(dst->rcode, src->rcode, sizeof dst->rcode);
	memcpy(dst->xcode, src->xcode, sizeof dst->xcode);
	return 0;
}

int
reply_parse(struct reply *r, const char *text, char *err, size_t errlen)
{
	char rcode[4] = "", xcode[12] = "";
	const char *p = text, *line;
	size_t n;

	n = strspn(p, "0123456789");
	if (n != 3 || (p[3] != ' ' && p[3] != '\0')) {
		snprintf(err, errlen, "'%s' does not start with a 3-digit reply "
		    "code", text);
		return -1;
	}
	memcpy(rcode, p, 3);
	p += 3;
	p += strspn(p, " ");
	/* An enhanced status code is digits and dots up to a space. */
	n = strcspn(p, " ");
	if (n > 0 && n < sizeof xcode && strspn(p, "0123456789.") == n &&
	    memchr(p, '.', n) != NULL) {
		memcpy(xcode, p, n);
		p += n;
		p += strspn(p, " ");
	}
	line = *p ? p : "rejected";
	return reply_set(r, rcode, xcode, &line, 1, err, errlen);
}

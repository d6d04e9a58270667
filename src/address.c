/*
 * address - the addresses of an RFC 5322 address list.  See address.h.
 *
 * One pass over the value.  A mailbox ends at a comma or at a group's
 * semicolon outside quotes, comments and angle brackets; a colon there
 * starts a group, whose display name is dropped.  Within a mailbox the
 * text in angle brackets wins; without one, the bare address is what is
 * left once comments and blanks outside quotes are removed.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"

struct scan {
	char *bare;       /* the mailbox outside angle brackets */
	size_t nbare;
	char *angle;      /* inside the angle brackets */
	size_t nangle;
	bool has_angle;
	bool in_angle;
};

static void
reset(struct scan *sc)
{
	sc->nbare = sc->nangle = 0;
	sc->has_angle = sc->in_angle = false;
}

/* The mailbox scanned so far, if any, to fn. */
static int
emit(struct scan *sc, address_fn fn, void *arg)
{
	int rc = 0;

	sc->bare[sc->nbare] = '\0';
	sc->angle[sc->nangle] = '\0';
	if (sc->has_angle)
		rc = fn(arg, sc->angle);
	else if (sc->nbare > 0)
		rc = fn(arg, sc->bare);
	reset(sc);
	return rc;
}

static void
keep(struct scan *sc, char c)
{
	if (sc->in_angle)
		sc->angle[sc->nangle++] = c;
	else
		sc->bare[sc->nbare++] = c;
}

int
address_list(const char *value, address_fn fn, void *arg)
{
	struct scan sc = { 0 };
	size_t n = strlen(value);
	bool quoted = false;
	int depth = 0, rc = 0;

	if ((sc.bare = malloc(n + 1)) == NULL ||
	    (sc.angle = malloc(n + 1)) == NULL) {
		free(sc.bare);
		return -1;
	}
	for (const char *p = value; *p != '\0' && rc == 0; p++) {
		char c = *p;

		if (c == '\\' && (quoted || depth > 0) && p[1] != '\0') {
			if (depth == 0) {
				keep(&sc, c);
				keep(&sc, *++p);
			} else
				p++;
		} else if (depth > 0) {
			depth += c == '(' ? 1 : c == ')' ? -1 : 0;
		} else if (c == '"') {
			quoted = !quoted;
			keep(&sc, c);
		} else if (quoted) {
			keep(&sc, c);
		} else if (c == '(') {
			depth = 1;
		} else if (c == '<' && !sc.in_angle) {
			sc.in_angle = sc.has_angle = true;
			sc.nangle = 0;
		} else if (c == '>' && sc.in_angle) {
			sc.in_angle = false;
		} else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
			continue;
		} else if (sc.in_angle) {
			keep(&sc, c);
		} else if (c == ',' || c == ';') {
			rc = emit(&sc, fn, arg);
		} else if (c == ':') {
			reset(&sc);     /* a group's display name */
		} else {
			keep(&sc, c);
		}
	}
	if (rc == 0)
		rc = emit(&sc, fn, arg);
	free(sc.bare);
	free(sc.angle);
	return rc;
}

/*
 * score - the message's score.  See score.h.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "score.h"

void
score_clear(struct score *sc)
{
	for (size_t i = 0; i < sc->n; i++)
		free(sc->v[i].reason);
	sc->n = 0;
	sc->total = 0;
}

void
score_free(struct score *sc)
{
	score_clear(sc);
	free(sc->v);
	sc->v = NULL;
	sc->cap = 0;
}

int
score_add(struct score *sc, const char *instance, double points,
    const char *reason)
{
	struct score_entry *e;

	if (sc->n == sc->cap) {
		size_t cap = sc->cap ? sc->cap * 2 : 8;

		if ((e = realloc(sc->v, cap * sizeof *e)) == NULL)
			return -1;
		sc->v = e;
		sc->cap = cap;
	}
	e = &sc->v[sc->n];
	if ((e->reason = strdup(reason)) == NULL)
		return -1;
	e->instance = instance;
	e->points = points;
	sc->n++;
	sc->total += points;
	return 0;
}

bool
score_points_ok(double points)
{
	return isfinite(points) && fabs(points) <= SCORE_POINTS_MAX;
}

bool
score_policy_active(const struct score_policy *p)
{
	return p->reject_set || p->tempfail_set || p->header != NULL;
}

mh_status
score_decide(const struct score_policy *p, const struct score *sc,
    const struct reply **reply)
{
	*reply = NULL;
	if (p->reject_set && sc->total >= p->reject) {
		if (p->reject_reply.nlines > 0)
			*reply = &p->reject_reply;
		return MH_REJECT;
	}
	if (p->tempfail_set && sc->total >= p->tempfail) {
		if (p->tempfail_reply.nlines > 0)
			*reply = &p->tempfail_reply;
		return MH_TEMPFAIL;
	}
	return MH_CONTINUE;
}

void
score_explain(const struct score *sc, double threshold, char *buf,
    size_t len)
{
	/* The three largest contributions, by points, first come first. */
	size_t top[3], ntop = 0, off;

	for (size_t i = 0; i < sc->n; i++) {
		size_t at = ntop;

		while (at > 0 && sc->v[top[at - 1]].points < sc->v[i].points)
			at--;
		if (at >= 3)
			continue;
		if (ntop < 3)
			ntop++;
		memmove(&top[at + 1], &top[at], (ntop - 1 - at) * sizeof *top);
		top[at] = i;
	}
	off = (size_t)snprintf(buf, len, "%g >= %g", sc->total, threshold);
	for (size_t k = 0; k < ntop && off < len; k++)
		off += (size_t)snprintf(buf + off, len - off, "%s[%s] %g",
		    k ? ", " : ": ", sc->v[top[k]].instance,
		    sc->v[top[k]].points);
}

char *
score_header_value(const struct score *sc)
{
	size_t len = 32;
	char *buf, *p;

	for (size_t i = 0; i < sc->n; i++)
		len += strlen(sc->v[i].instance) + strlen(sc->v[i].reason) +
		    40;
	if ((buf = malloc(len)) == NULL)
		return NULL;
	p = buf + snprintf(buf, len, "total %g", sc->total);
	/* One contribution per folded line keeps lines short. */
	for (size_t i = 0; i < sc->n; i++)
		p += snprintf(p, len - (size_t)(p - buf), ";\n\t[%s] %g %s",
		    sc->v[i].instance, sc->v[i].points, sc->v[i].reason);
	return buf;
}

void
score_policy_free(struct score_policy *p)
{
	reply_clear(&p->reject_reply);
	reply_clear(&p->tempfail_reply);
	free(p->header);
	p->header = NULL;
}

int
score_policy_copy(struct score_policy *dst, const struct score_policy *src)
{
	*dst = *src;
	memset(&dst->reject_reply, 0, sizeof dst->reject_reply);
	memset(&dst->tempfail_reply, 0, sizeof dst->tempfail_reply);
	dst->header = NULL;
	if (reply_copy(&dst->reject_reply, &src->reject_reply) < 0 ||
	    reply_copy(&dst->tempfail_reply, &src->tempfail_reply) < 0 ||
	    (src->header != NULL &&
	    (dst->header = strdup(src->header)) == NULL)) {
		score_policy_free(dst);
		return -1;
	}
	return 0;
}

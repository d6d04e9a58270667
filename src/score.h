/*
 * score - the message's score: points that plugin instances add, with
 * reasons (mh_score_add, ABI 1.2), their total, and the decision the
 * host's thresholds make of it.
 *
 * The policy (thresholds, their replies, the header) belongs to a plugin
 * set, read from [milterhost] with it: a reload changes it for new
 * connections.  The engine (chain.c) asks for the decision at the end of
 * the message, or as soon as no instance is left to add points, and adds
 * the header to the message's changes if it goes on.
 */
#ifndef MILTERHOST_SCORE_H
#define MILTERHOST_SCORE_H

#include <stdbool.h>
#include <stddef.h>

#include <milterhost/plugin.h>

#include "reply.h"

/* The bounds of one contribution and the length of its reason. */
#define SCORE_POINTS_MAX 1000.0
#define SCORE_REASON_MAX 200

/* What [milterhost] says about scores. */
struct score_policy {
	bool reject_set;          /* score_reject given */
	double reject;            /* reject at or above this total */
	struct reply reject_reply; /* empty: the MTA's default 5xx */
	bool tempfail_set;        /* score_tempfail given */
	double tempfail;
	struct reply tempfail_reply;
	char *header;             /* score_header, or NULL */
};

struct score_entry {
	const char *instance;     /* borrowed from the plugin set */
	double points;
	char *reason;
};

/* The score of one message. */
struct score {
	struct score_entry *v;
	size_t n, cap;
	double total;
};

/* Forget the message's score (keeps the room). */
void score_clear(struct score *sc);
void score_free(struct score *sc);
/* Add one contribution; -1 if out of memory. */
int score_add(struct score *sc, const char *instance, double points,
    const char *reason);

/* Is points a contribution mh_score_add accepts? */
bool score_points_ok(double points);

/*
 * The decision of the policy on the score: MH_REJECT, MH_TEMPFAIL, or
 * MH_CONTINUE (no threshold reached, or none set).  *reply is the reply
 * configured for it, or NULL for the MTA's default.
 */
mh_status score_decide(const struct score_policy *p, const struct score *sc,
    const struct reply **reply);

/* Does the policy want the message to end where the engine can check it
 * (a threshold or a header is configured)? */
bool score_policy_active(const struct score_policy *p);

/*
 * "12.5 >= 10: [rules] 8, [rbl] 4.5": the total, the threshold and the
 * largest contributors (up to three, largest first), into buf; for the
 * log when the score decided.
 */
void score_explain(const struct score *sc, double threshold, char *buf,
    size_t len);

/*
 * The header value: "total 7.5; [rules] 5 sender on list; [rbl] 2.5
 * listed", folded every few contributions, malloc'ed; NULL if out of
 * memory.
 */
char *score_header_value(const struct score *sc);

/* Copy a policy (-1 if out of memory, dst then empty); free one. */
int score_policy_copy(struct score_policy *dst,
    const struct score_policy *src);
void score_policy_free(struct score_policy *p);

#endif /* MILTERHOST_SCORE_H */

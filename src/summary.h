/*
 * summary - the one log line per message, as Postfix's own logs have it:
 * the queue id, the client, the sender, how many recipients were taken,
 * how the message ended (accepted, rejected, tempfailed or discarded, by
 * which instance at which stage, or aborted), the changes applied, and
 * the time each instance spent in its callbacks.  This is the line an
 * administrator greps first.
 */
#ifndef MILTERHOST_SUMMARY_H
#define MILTERHOST_SUMMARY_H

#include <stdbool.h>

#include <milterhost/plugin.h>

#include "mods.h"

struct session;
struct instance;

/* What the engine notes of the message as it goes. */
struct msg_summary {
	char sender[256];
	unsigned rcpts;          /* recipients taken */
	bool rcpts_seen;         /* the MTA sent recipients at all */
	mh_status result;        /* how it ended; CONTINUE: not decided */
	const char *decider;     /* the instance that decided, or NULL */
	const struct instance *decider_inst;
	mh_stage stage;          /* where it decided */
	/* When the score decided: "12 >= 10: [a] 8, [b] 4", else "". */
	char score[256];
	unsigned changes[MOD_TYPE_COUNT]; /* applied, by kind */
	bool scored;             /* plugins gave points (ABI 1.2) */
	double score_total;      /* their total */
};

/* Forget the last message. */
void summary_reset(struct msg_summary *m);
/* Note the changes of the list the MTA is given. */
void summary_note_changes(struct msg_summary *m, const struct mod_list *l);
/* Log the line of s's message (at info level), then forget it. */
void summary_log(struct session *s);

#endif /* MILTERHOST_SUMMARY_H */

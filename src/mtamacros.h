/*
 * mtamacros - the macros milterhost-replay's MTA knows, what it sends at
 * each stage, and what a milter then finds (smfi_getsymval).
 *
 * The MTA knows a table of values: its own (the client, the sender, each
 * recipient, the queue id once known) and the user's (-D), which the MTA
 * never replaces.  At each event it sends the stage's list of names (the
 * list negotiated, else Postfix's default), with the values it knows;
 * Postfix does so even for an event the milter asked not to get, and
 * sends nothing when no name has a value.  libmilter keeps each stage's
 * last values, forgets the later stages' when a connect, HELO, MAIL or
 * RCPT event arrives, and looks a name up from the newest stage (end of
 * headers) down to connect, "x" and "{x}" alike for one-letter names.
 */
#ifndef MILTERHOST_MTAMACROS_H
#define MILTERHOST_MTAMACROS_H

#include <stdbool.h>

#include "stage.h"

struct mtamacros;

struct mtamacros *mtamacros_new(void);
void mtamacros_free(struct mtamacros *mm);

/*
 * The user's value of name ("{x}" or "x"), or with value NULL none:
 * the MTA sends it as given, or not at all.  -1 if out of memory.
 */
int mtamacros_fix(struct mtamacros *mm, const char *name, const char *value);
/* The MTA's own value (NULL: unknown), unless the user fixed it.  -1 if
 * out of memory. */
int mtamacros_set(struct mtamacros *mm, const char *name, const char *value);

/* Send stage's macros: the names of list (space-separated) that have a
 * value; with none, nothing (the stage keeps what it had).  -1 if out
 * of memory. */
int mtamacros_send(struct mtamacros *mm, enum macro_stage stage,
		   const char *list);
/* The event of stage arrived: libmilter forgets the later stages'. */
void mtamacros_event(struct mtamacros *mm, enum macro_stage stage);
/* Forget everything sent (a new connection). */
void mtamacros_forget(struct mtamacros *mm);

/* What smfi_getsymval(name) returns now, or NULL. */
const char *mtamacros_get(const struct mtamacros *mm, const char *name);

#endif /* MILTERHOST_MTAMACROS_H */

/*
 * view - the message as the instances before one in the chain left it,
 * for an instance that wants to see their changes (ABI 1.3,
 * MH_WANT_EARLIER_CHANGES), as a milter listed after another in Postfix's
 * smtpd_milters sees that one's edits.
 *
 * The engine keeps what the MTA sent of the message's content (its
 * headers and body) while such an instance waits; at the end of the
 * message it applies to the headers the changes the earlier instances
 * queued, in the order and with the meaning the MTA will give them, and
 * takes the body an earlier instance replaced it with, if any.  Header
 * values are kept and given in the MTA's form (with the leading space
 * when the MTA sends it, as the changes hold them).
 */
#ifndef MILTERHOST_VIEW_H
#define MILTERHOST_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include "mods.h"

/* The body goes to an instance in pieces of this size, as MTAs send it. */
#define VIEW_BODY_CHUNK 65535

struct view_header {
	char *name;
	char *value;
};

/* Headers and a body, owned. */
struct view {
	struct view_header *headers;
	size_t nheaders, cap;
	unsigned char *body;
	size_t len, body_cap;
};

/* Append a copy of a header or of a piece of the body; -1 if out of
 * memory (v is then as it was). */
int view_add_header(struct view *v, const char *name, const char *value);
int view_add_body(struct view *v, const void *data, size_t len);
/* Forget the content, keeping the room; view_free also frees it. */
void view_clear(struct view *v);
void view_free(struct view *v);

/*
 * Make out the message kept in held after the changes of list, applied
 * one after another as the MTA applies them: a header added goes last, a
 * header inserted at index i goes before the i-th header from 0 (or
 * last), a change or deletion finds the index-th header of its name from
 * 1 (no such header: a change adds it, a deletion does nothing); a
 * replaced body replaces the body.  Other changes do not touch the
 * content.  out is cleared first.  0, or -1 if out of memory.
 */
int view_apply(struct view *out, const struct view *held,
	       const struct mod_list *list);

#endif /* MILTERHOST_VIEW_H */

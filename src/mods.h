/*
 * mods - message modifications queued by plugins.
 *
 * Each plugin instance has a queue of the changes it asked for during a
 * message, already checked and already in the form they go to the MTA.
 * At the end of the message mods_merge() builds the one list the adapter
 * applies, following the merge rule of doc/design.md ("Chain and merge
 * rules"): chain order, each plugin's changes in the order it made them;
 * the body replacement of the last plugin in the chain that replaced it,
 * sent as one contiguous run; the last change of sender; the first
 * quarantine reason.
 */
#ifndef MILTERHOST_MODS_H
#define MILTERHOST_MODS_H

#include <stdbool.h>
#include <stddef.h>

enum mod_type {
	MOD_ADD_HEADER,
	MOD_INSERT_HEADER,
	MOD_CHANGE_HEADER, /* value NULL: delete */
	MOD_REPLACE_BODY,
	MOD_ADD_RCPT,      /* args NULL: plain; else with ESMTP args */
	MOD_DELETE_RCPT,
	MOD_CHANGE_FROM,
	MOD_QUARANTINE
};
#define MOD_TYPE_COUNT (MOD_QUARANTINE + 1)

/* A change as a plugin asks for it: borrowed strings, copied when queued. */
struct mod_request {
	enum mod_type type;
	int index;        /* header index (insert: position, change: nth) */
	const char *name; /* header name */
	const char *value; /* header value, recipient, sender or reason */
	const char *args; /* ESMTP arguments or NULL */
	const char *owner; /* instance name, for logging */
};

/* A queued change: it owns its strings and body. */
struct mod {
	enum mod_type type;
	int index;        /* header index (insert: position, change: nth) */
	char *name;       /* header name */
	char *value;      /* header value, recipient, sender or reason */
	char *args;       /* ESMTP arguments or NULL */
	unsigned char *body; /* replacement body */
	size_t len;
	const char *owner;   /* instance name, for logging */
};

struct mod_queue {
	struct mod *items;
	size_t n, cap;
	/* Its owner saw the changes of the queues before it applied (ABI
	 * 1.3, MH_WANT_EARLIER_CHANGES): its header indexes count the
	 * headers after those, so no change of its is ordered before
	 * theirs.  Set by the engine, kept across messages. */
	bool new_view;
};

/* Append a copy of request r (not a body: see below).  -1: no memory. */
int mod_queue_push(struct mod_queue *q, const struct mod_request *r);
/* Append to the body replacement this queue already holds, or start one. */
int mod_queue_append_body(struct mod_queue *q, const void *data, size_t len,
			  const char *owner);
/* Drop every change (new_view stays). */
void mod_queue_clear(struct mod_queue *q);
size_t mod_queue_count(const struct mod_queue *q);

/*
 * The merged list: pointers into the queues, valid until they change.
 * Warnings about conflicts (two body replacements, several changes of
 * sender, several quarantines) go to the log with the queue id qid (the
 * log text for the message, e.g. "NOQUEUE"); with qid NULL, none.
 */
struct mod_list {
	const struct mod **items;
	size_t n, cap;
};

int mods_merge(struct mod_list *out, struct mod_queue *const *queues,
	       size_t nqueues, const char *qid);
void mod_list_free(struct mod_list *l);

const char *mod_type_name(enum mod_type t);

/* Is name a header name the MTA takes: printable ASCII without ':' or
 * space (the empty name passes: callers that care refuse it first)? */
bool mod_header_name_ok(const char *name);

#endif /* MILTERHOST_MODS_H */

/*
 * mods - message modifications queued by plugins.  See mods.h.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "mods.h"

/*
 * The merge policy: what becomes of several changes of one kind in a
 * message.  Every one goes to the MTA, in chain order, or only one: the
 * last in chain and call order, or the first.
 */
enum merge_policy {
	MERGE_ALL,
	MERGE_LAST_WINS,
	MERGE_FIRST_WINS
};

static const struct {
	const char *name;
	enum merge_policy merge;
} mod_types[MOD_TYPE_COUNT] = {
	[MOD_ADD_HEADER] = { "add header", MERGE_ALL },
	[MOD_INSERT_HEADER] = { "insert header", MERGE_ALL },
	[MOD_CHANGE_HEADER] = { "change header", MERGE_ALL },
	[MOD_REPLACE_BODY] = { "replace body", MERGE_LAST_WINS },
	[MOD_ADD_RCPT] = { "add recipient", MERGE_ALL },
	[MOD_DELETE_RCPT] = { "delete recipient", MERGE_ALL },
	[MOD_CHANGE_FROM] = { "change sender", MERGE_LAST_WINS },
	[MOD_QUARANTINE] = { "quarantine", MERGE_FIRST_WINS },
};

static char *
dup_or_null(const char *s, int *failed)
{
	char *d;

	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*failed = 1;
	return d;
}

static void
mod_free(struct mod *m)
{
	free(m->name);
	free(m->value);
	free(m->args);
	free(m->body);
}

static struct mod *
queue_grow(struct mod_queue *q)
{
	if (q->n == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 4;
		struct mod *items = realloc(q->items, cap * sizeof *items);

		if (items == NULL)
			return NULL;
		q->items = items;
		q->cap = cap;
	}
	return &q->items[q->n];
}

int
mod_queue_push(struct mod_queue *q, const struct mod_request *r)
{
	struct mod *slot;
	int failed = 0;

	if ((slot = queue_grow(q)) == NULL)
		return -1;
	memset(slot, 0, sizeof *slot);
	slot->type = r->type;
	slot->index = r->index;
	slot->owner = r->owner;
	slot->name = dup_or_null(r->name, &failed);
	slot->value = dup_or_null(r->value, &failed);
	slot->args = dup_or_null(r->args, &failed);
	if (failed) {
		mod_free(slot);
		return -1;
	}
	q->n++;
	return 0;
}

int
mod_queue_append_body(struct mod_queue *q, const void *data, size_t len,
    const char *owner)
{
	struct mod *body = NULL;
	unsigned char *grown;

	for (size_t i = 0; i < q->n; i++)
		if (q->items[i].type == MOD_REPLACE_BODY)
			body = &q->items[i];
	if (body == NULL) {
		struct mod_request fresh = { .type = MOD_REPLACE_BODY,
		    .owner = owner };

		if (mod_queue_push(q, &fresh) < 0)
			return -1;
		body = &q->items[q->n - 1];
	}
	if (len == 0)
		return 0;
	/* A bogus length must fail, not wrap around to a small buffer. */
	if (len > SIZE_MAX - body->len)
		return -1;
	if ((grown = realloc(body->body, body->len + len)) == NULL)
		return -1;
	memcpy(grown + body->len, data, len);
	body->body = grown;
	body->len += len;
	return 0;
}

void
mod_queue_clear(struct mod_queue *q)
{
	bool new_view = q->new_view;

	for (size_t i = 0; i < q->n; i++)
		mod_free(&q->items[i]);
	free(q->items);
	memset(q, 0, sizeof *q);
	q->new_view = new_view;
}

size_t
mod_queue_count(const struct mod_queue *q)
{
	return q->n;
}

static int
list_push(struct mod_list *l, const struct mod *m)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		const struct mod **items = realloc(l->items,
		    cap * sizeof *items);

		if (items == NULL)
			return -1;
		l->items = items;
		l->cap = cap;
	}
	l->items[l->n++] = m;
	return 0;
}

/*
 * The one change of type t that survives, by its merge policy; warns when
 * others are dropped.  NULL if the message has none.
 */
static const struct mod *
pick_single(struct mod_queue *const *queues, size_t nqueues,
    enum mod_type t, const char *qid)
{
	bool first_wins = mod_types[t].merge == MERGE_FIRST_WINS;
	const struct mod *chosen = NULL;
	size_t count = 0;

	for (size_t i = 0; i < nqueues; i++) {
		for (size_t j = 0; j < queues[i]->n; j++) {
			const struct mod *m = &queues[i]->items[j];

			if (m->type != t)
				continue;
			count++;
			if (chosen == NULL || !first_wins)
				chosen = m;
		}
	}
	if (count > 1 && qid != NULL)
		log_msg(LOG_WARNING, "%s: %zu requests to %s: the one of "
		    "instance %s is used, as the %s in the chain",
		    qid, count, mod_types[t].name,
		    chosen->owner, first_wins ? "first" : "last");
	return chosen;
}

/*
 * Changes and deletions of headers name them by their index among the
 * headers of that name as received.  Postfix counts the headers it has
 * now: once the first X is deleted, the second is X #1.  So the changes
 * of each name go out from the highest index down (a change at a higher
 * index never moves a lower one); those of one index keep their order,
 * and every other change keeps its place.  Only within items from .. to
 * - 1: the changes of an instance that saw the earlier ones applied
 * (new_view) count the headers after them, and go out after them.
 */
static void
order_header_changes(struct mod_list *l, size_t from, size_t to)
{
	for (size_t i = from; i < to; i++) {
		if (l->items[i]->type != MOD_CHANGE_HEADER)
			continue;
		/* Insertion sort of this name's entries, in their slots. */
		for (size_t j = i + 1; j < to; j++) {
			const struct mod *m = l->items[j];
			size_t k = j;

			if (m->type != MOD_CHANGE_HEADER ||
			    strcasecmp(m->name, l->items[i]->name) != 0)
				continue;
			for (size_t p = j; p-- > i;) {
				const struct mod *q = l->items[p];

				if (q->type != MOD_CHANGE_HEADER ||
				    strcasecmp(q->name, m->name) != 0)
					continue;
				if (q->index >= m->index)
					break;
				l->items[k] = q;
				k = p;
			}
			l->items[k] = m;
		}
	}
}

int
mods_merge(struct mod_list *out, struct mod_queue *const *queues,
    size_t nqueues, const char *qid)
{
	const struct mod *chosen[MOD_TYPE_COUNT] = { NULL };
	size_t view_start = 0;

	out->n = 0;
	for (int t = 0; t < MOD_TYPE_COUNT; t++)
		if (mod_types[t].merge != MERGE_ALL)
			chosen[t] = pick_single(queues, nqueues, t, qid);
	for (size_t i = 0; i < nqueues; i++) {
		if (queues[i]->new_view) {
			order_header_changes(out, view_start, out->n);
			view_start = out->n;
		}
		for (size_t j = 0; j < queues[i]->n; j++) {
			const struct mod *m = &queues[i]->items[j];

			if (mod_types[m->type].merge != MERGE_ALL &&
			    m != chosen[m->type])
				continue;
			if (list_push(out, m) < 0)
				return -1;
		}
	}
	order_header_changes(out, view_start, out->n);
	return 0;
}

void
mod_list_free(struct mod_list *l)
{
	free(l->items);
	memset(l, 0, sizeof *l);
}

bool
mod_header_name_ok(const char *name)
{
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p <= ' ' || *p >= 127 || *p == ':')
			return false;
	return true;
}

const char *
mod_type_name(enum mod_type t)
{
	return (unsigned)t < MOD_TYPE_COUNT ? mod_types[t].name : "?";
}

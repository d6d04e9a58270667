/*
 * view - the message as the instances before one left it.  See view.h.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "view.h"

static int
room_for_header(struct view *v)
{
	struct view_header *p;
	size_t cap;

	if (v->nheaders < v->cap)
		return 0;
	cap = v->cap ? 2 * v->cap : 16;
	if ((p = realloc(v->headers, cap * sizeof *p)) == NULL)
		return -1;
	v->headers = p;
	v->cap = cap;
	return 0;
}

/* Put a copy of name: value at position at (0 .. nheaders). */
static int
insert_header(struct view *v, size_t at, const char *name, const char *value)
{
	char *n = strdup(name), *val = strdup(value);

	if (n == NULL || val == NULL || room_for_header(v) < 0) {
		free(n);
		free(val);
		return -1;
	}
	memmove(&v->headers[at + 1], &v->headers[at],
	    (v->nheaders - at) * sizeof v->headers[0]);
	v->headers[at].name = n;
	v->headers[at].value = val;
	v->nheaders++;
	return 0;
}

int
view_add_header(struct view *v, const char *name, const char *value)
{
	return insert_header(v, v->nheaders, name, value);
}

static int
set_body(struct view *v, const void *data, size_t len, bool append)
{
	size_t need = (append ? v->len : 0) + len;

	if (need > v->body_cap) {
		size_t cap = v->body_cap ? v->body_cap : 65536;
		unsigned char *p;

		while (cap < need)
			cap *= 2;
		if ((p = realloc(v->body, cap)) == NULL)
			return -1;
		v->body = p;
		v->body_cap = cap;
	}
	if (!append)
		v->len = 0;
	if (len > 0)
		memcpy(v->body + v->len, data, len);
	v->len += len;
	return 0;
}

int
view_add_body(struct view *v, const void *data, size_t len)
{
	return set_body(v, data, len, true);
}

static void
free_headers(struct view *v)
{
	for (size_t i = 0; i < v->nheaders; i++) {
		free(v->headers[i].name);
		free(v->headers[i].value);
	}
	v->nheaders = 0;
}

void
view_clear(struct view *v)
{
	free_headers(v);
	v->len = 0;
}

void
view_free(struct view *v)
{
	free_headers(v);
	free(v->headers);
	free(v->body);
	memset(v, 0, sizeof *v);
}

/* The position of the index-th (from 1) header called name, or -1. */
static long
find_header(const struct view *v, const char *name, int index)
{
	int seen = 0;

	for (size_t i = 0; i < v->nheaders; i++)
		if (strcasecmp(v->headers[i].name, name) == 0 &&
		    ++seen == index)
			return (long)i;
	return -1;
}

static int
change_header(struct view *v, const struct mod *m)
{
	long at = find_header(v, m->name, m->index < 1 ? 1 : m->index);
	char *value;

	if (at < 0)
		return m->value != NULL ?
		    view_add_header(v, m->name, m->value) : 0;
	if (m->value == NULL) {
		free(v->headers[at].name);
		free(v->headers[at].value);
		memmove(&v->headers[at], &v->headers[at + 1],
		    (v->nheaders - (size_t)at - 1) * sizeof v->headers[0]);
		v->nheaders--;
		return 0;
	}
	if ((value = strdup(m->value)) == NULL)
		return -1;
	free(v->headers[at].value);
	v->headers[at].value = value;
	return 0;
}

static int
apply_one(struct view *out, const struct mod *m)
{
	size_t at;

	switch (m->type) {
	case MOD_ADD_HEADER:
		return view_add_header(out, m->name, m->value);
	case MOD_INSERT_HEADER:
		at = m->index < 0 ? 0 : (size_t)m->index;
		if (at > out->nheaders)
			at = out->nheaders;
		return insert_header(out, at, m->name, m->value);
	case MOD_CHANGE_HEADER:
		return change_header(out, m);
	case MOD_REPLACE_BODY:
		return set_body(out, m->body, m->len, false);
	default:
		return 0;
	}
}

int
view_apply(struct view *out, const struct view *held,
	   const struct mod_list *list)
{
	view_clear(out);
	for (size_t i = 0; i < held->nheaders; i++)
		if (view_add_header(out, held->headers[i].name,
		    held->headers[i].value) < 0)
			return -1;
	if (set_body(out, held->body, held->len, false) < 0)
		return -1;
	for (size_t i = 0; i < list->n; i++)
		if (apply_one(out, list->items[i]) < 0)
			return -1;
	return 0;
}

/*
 * mtamacros - the macros of milterhost-replay's MTA.  See mtamacros.h.
 *
 * Values are keyed by the bare name ("daemon_name", "i"); what a stage
 * sent keeps each name as its list wrote it, as libmilter keeps what the
 * MTA sent.
 */
#include <stdlib.h>
#include <string.h>

#include "mtamacros.h"

struct value {
	char *name;       /* bare */
	char *value;      /* NULL: not known */
	bool fixed;       /* the user's: the MTA keeps it */
};

struct sent {
	char *name;       /* as the list wrote it */
	char *value;
};

struct mtamacros {
	struct value *values;
	size_t nvalues;
	struct sent *sent[MACRO_STAGES];
	size_t nsent[MACRO_STAGES];
};

struct mtamacros *
mtamacros_new(void)
{
	return calloc(1, sizeof(struct mtamacros));
}

static void
forget_stage(struct mtamacros *mm, int st)
{
	for (size_t i = 0; i < mm->nsent[st]; i++) {
		free(mm->sent[st][i].name);
		free(mm->sent[st][i].value);
	}
	free(mm->sent[st]);
	mm->sent[st] = NULL;
	mm->nsent[st] = 0;
}

void
mtamacros_forget(struct mtamacros *mm)
{
	for (int st = 0; st < MACRO_STAGES; st++)
		forget_stage(mm, st);
}

void
mtamacros_free(struct mtamacros *mm)
{
	if (mm == NULL)
		return;
	mtamacros_forget(mm);
	for (size_t i = 0; i < mm->nvalues; i++) {
		free(mm->values[i].name);
		free(mm->values[i].value);
	}
	free(mm->values);
	free(mm);
}

/* name without its braces, n bytes of it: *len. */
static const char *
bare(const char *name, size_t *len)
{
	size_t n = strlen(name);

	if (n >= 2 && name[0] == '{' && name[n - 1] == '}') {
		*len = n - 2;
		return name + 1;
	}
	*len = n;
	return name;
}

static struct value *
find(const struct mtamacros *mm, const char *name, size_t len)
{
	for (size_t i = 0; i < mm->nvalues; i++)
		if (strlen(mm->values[i].name) == len &&
		    memcmp(mm->values[i].name, name, len) == 0)
			return &mm->values[i];
	return NULL;
}

static int
store(struct mtamacros *mm, const char *name, const char *value, bool fix)
{
	size_t len;
	const char *b = bare(name, &len);
	struct value *v = find(mm, b, len);
	char *copy = NULL;

	if (v != NULL && v->fixed && !fix)
		return 0;
	if (value != NULL && (copy = strdup(value)) == NULL)
		return -1;
	if (v == NULL) {
		struct value *p = realloc(mm->values,
		    (mm->nvalues + 1) * sizeof *p);

		if (p == NULL) {
			free(copy);
			return -1;
		}
		mm->values = p;
		v = &mm->values[mm->nvalues];
		if ((v->name = strndup(b, len)) == NULL) {
			free(copy);
			return -1;
		}
		v->value = NULL;
		v->fixed = false;
		mm->nvalues++;
	}
	free(v->value);
	v->value = copy;
	v->fixed = v->fixed || fix;
	return 0;
}

int
mtamacros_fix(struct mtamacros *mm, const char *name, const char *value)
{
	return store(mm, name, value, true);
}

int
mtamacros_set(struct mtamacros *mm, const char *name, const char *value)
{
	return store(mm, name, value, false);
}

/* The names of list that have a value, as the MTA sends them. */
static int
collect(const struct mtamacros *mm, const char *list, struct sent **out,
    size_t *n)
{
	const char *p = list;

	*out = NULL;
	*n = 0;
	while (*(p += strspn(p, " \t")) != '\0') {
		size_t len = strcspn(p, " \t"), blen;
		char *name = strndup(p, len);
		const char *b;
		struct value *v;
		struct sent *s;

		p += len;
		if (name == NULL)
			return -1;
		b = bare(name, &blen);
		if ((v = find(mm, b, blen)) == NULL || v->value == NULL) {
			free(name);
			continue;
		}
		if ((s = realloc(*out, (*n + 1) * sizeof *s)) == NULL) {
			free(name);
			return -1;
		}
		*out = s;
		s[*n].name = name;
		if ((s[*n].value = strdup(v->value)) == NULL) {
			free(name);
			return -1;
		}
		(*n)++;
	}
	return 0;
}

int
mtamacros_send(struct mtamacros *mm, enum macro_stage stage,
    const char *list)
{
	struct sent *s;
	size_t n;

	if (collect(mm, list, &s, &n) < 0) {
		for (size_t i = 0; i < n; i++) {
			free(s[i].name);
			free(s[i].value);
		}
		free(s);
		return -1;
	}
	/* Nothing to send: no macro packet, the stage keeps its values. */
	if (n == 0)
		return 0;
	forget_stage(mm, stage);
	mm->sent[stage] = s;
	mm->nsent[stage] = n;
	return 0;
}

void
mtamacros_event(struct mtamacros *mm, enum macro_stage stage)
{
	if (stage != MACRO_CONNECT && stage != MACRO_HELO &&
	    stage != MACRO_ENVFROM && stage != MACRO_ENVRCPT)
		return;
	for (int st = stage + 1; st < MACRO_STAGES; st++)
		forget_stage(mm, st);
}

/* Does the sent name match the one asked for, as libmilter compares? */
static bool
same(const char *sent, const char *asked)
{
	size_t n = strlen(asked);

	if (strcmp(sent, asked) == 0)
		return true;
	if (n == 1)
		return strlen(sent) == 3 && sent[0] == '{' &&
		    sent[1] == asked[0] && sent[2] == '}';
	if (n == 3 && asked[0] == '{' && asked[2] == '}')
		return strlen(sent) == 1 && sent[0] == asked[1];
	return false;
}

const char *
mtamacros_get(const struct mtamacros *mm, const char *name)
{
	if (name == NULL || *name == '\0')
		return NULL;
	for (int st = MACRO_STAGES - 1; st >= 0; st--)
		for (size_t i = 0; i < mm->nsent[st]; i++)
			if (same(mm->sent[st][i].name, name))
				return mm->sent[st][i].value;
	return NULL;
}

/*
 * deliver - a message as the MTA would deliver it.  See deliver.h.
 *
 * The header section is a list of fields, each the file's own text or one
 * a change made; the list is edited in place, change by change, then
 * written.  The body is streamed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deliver.h"

struct field {
	const char *name;
	const char *text;    /* "Name: value", folded lines joined by LF */
	char *made;          /* text when a change made it (owned) */
};

struct fields {
	struct field *items;
	size_t n, cap;
};

static int
fields_insert(struct fields *f, size_t at, const struct field *x)
{
	if (f->n == f->cap) {
		size_t cap = f->cap ? f->cap * 2 : 32;
		struct field *p = realloc(f->items, cap * sizeof *p);

		if (p == NULL)
			return -1;
		f->items = p;
		f->cap = cap;
	}
	memmove(f->items + at + 1, f->items + at, (f->n - at) * sizeof *x);
	f->items[at] = *x;
	f->n++;
	return 0;
}

static void
fields_remove(struct fields *f, size_t at)
{
	free(f->items[at].made);
	memmove(f->items + at, f->items + at + 1,
	    (f->n - at - 1) * sizeof *f->items);
	f->n--;
}

static void
fields_free(struct fields *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->items[i].made);
	free(f->items);
}

/* "Name: value" as the MTA writes a header a milter gave it. */
static char *
make_text(const char *name, const char *value, bool leadspc)
{
	size_t n = strlen(name) + strlen(value) + 3;
	char *text = malloc(n);

	if (text != NULL)
		snprintf(text, n, "%s:%s%s", name, leadspc ? "" : " ", value);
	return text;
}

/* Where the index-th field called name is (index from 1), or n. */
static size_t
find_field(const struct fields *f, const char *name, int index)
{
	int seen = 0;

	for (size_t i = 0; i < f->n; i++)
		if (strcasecmp(f->items[i].name, name) == 0 &&
		    ++seen == (index < 1 ? 1 : index))
			return i;
	return f->n;
}

static int
apply(struct fields *f, const struct mod *m, bool leadspc)
{
	struct field x = { .name = m->name };
	size_t at;

	switch (m->type) {
	case MOD_ADD_HEADER:
	case MOD_INSERT_HEADER:
		at = m->type == MOD_ADD_HEADER || m->index < 0 ||
		    (size_t)m->index > f->n ? f->n : (size_t)m->index;
		break;
	case MOD_CHANGE_HEADER:
		at = find_field(f, m->name, m->index);
		if (m->value == NULL || m->value[0] == '\0') {
			if (at < f->n)
				fields_remove(f, at);
			return 0;
		}
		if (at < f->n) {
			if ((x.made = make_text(m->name, m->value, leadspc)) ==
			    NULL)
				return -1;
			free(f->items[at].made);
			f->items[at].made = x.made;
			f->items[at].text = x.made;
			f->items[at].name = m->name;
			return 0;
		}
		break;
	default:
		return 0;        /* the body and the envelope */
	}
	if ((x.made = make_text(m->name, m->value, leadspc)) == NULL)
		return -1;
	x.text = x.made;
	if (fields_insert(f, at, &x) < 0) {
		free(x.made);
		return -1;
	}
	return 0;
}

/* text with every LF written as eol, then eol. */
static void
write_field(FILE *out, const char *text, const char *eol)
{
	for (const char *p = text; *p != '\0'; p++) {
		if (*p == '\n')
			fputs(eol, out);
		else
			putc(*p, out);
	}
	fputs(eol, out);
}

/* The replacement body, with line ends eol. */
static void
write_replacement(FILE *out, const struct mod *body, const char *eol)
{
	unsigned char buf[2 * 4096 + 2];
	struct lineconv c;
	size_t n;

	lineconv_init(&c, eol);
	for (size_t off = 0; off < body->len; off += 4096) {
		size_t len = body->len - off < 4096 ? body->len - off : 4096;

		n = lineconv_feed(&c, body->body + off, len, buf);
		fwrite(buf, 1, n, out);
	}
	n = lineconv_end(&c, buf);
	fwrite(buf, 1, n, out);
}

/* The body received, read again from the file. */
static int
write_received(FILE *out, struct message *msg, const char *eol, char *err,
    size_t errlen)
{
	struct body_reader *r = malloc(sizeof *r);
	const unsigned char *piece;
	ssize_t n;

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (body_start(r, msg, eol, err, errlen) < 0) {
		free(r);
		return -1;
	}
	while ((n = body_next(r, &piece, err, errlen)) > 0)
		fwrite(piece, 1, (size_t)n, out);
	free(r);
	return n < 0 ? -1 : 0;
}

int
deliver_write(FILE *out, struct message *msg, const struct mod_list *mods,
    bool leadspc, char *err, size_t errlen)
{
	const char *eol = msg->crlf ? "\r\n" : "\n";
	const struct mod *body = NULL;
	struct fields f = { 0 };
	int rc = 0;

	for (size_t i = 0; i < msg->nheaders && rc == 0; i++) {
		struct field x = { .name = msg->headers[i].name,
		    .text = msg->headers[i].text };

		rc = fields_insert(&f, f.n, &x);
	}
	for (size_t i = 0; i < mods->n && rc == 0; i++) {
		if (mods->items[i]->type == MOD_REPLACE_BODY)
			body = mods->items[i];
		rc = apply(&f, mods->items[i], leadspc);
	}
	if (rc < 0) {
		fields_free(&f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < f.n; i++)
		write_field(out, f.items[i].text, eol);
	fields_free(&f);
	fputs(eol, out);
	if (body != NULL)
		write_replacement(out, body, eol);
	else if (write_received(out, msg, eol, err, errlen) < 0)
		return -1;
	if (fflush(out) == EOF || ferror(out)) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

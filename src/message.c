/*
 * message - a message file read as an MTA passes it to milters.  See
 * message.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

/* One line of the header section, without its line end. */
struct line {
	char *text;
	size_t len, cap;
	bool ended;       /* by LF (not by the end of the file) */
	bool crlf;        /* by CR LF */
	bool cut;         /* longer than the limit: not read to its end */
};

/*
 * Read one line of at most max bytes.  Returns 1, 0 at the end of the
 * file with nothing read, -1 on a read error or out of memory.
 */
static int
read_line(FILE *f, struct line *l, size_t max)
{
	int c;

	l->len = 0;
	l->ended = l->crlf = l->cut = false;
	while ((c = getc(f)) != EOF) {
		if (c == '\n') {
			l->ended = true;
			break;
		}
		if (l->len == max) {
			l->cut = true;
			break;
		}
		if (l->len + 1 >= l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 256;
			char *p = realloc(l->text, cap);

			if (p == NULL)
				return -1;
			l->text = p;
			l->cap = cap;
		}
		l->text[l->len++] = (char)c;
	}
	if (ferror(f))
		return -1;
	if (l->ended && l->len > 0 && l->text[l->len - 1] == '\r') {
		l->len--;
		l->crlf = true;
	}
	if (l->text != NULL)
		l->text[l->len] = '\0';
	return l->len > 0 || l->ended || l->cut ? 1 : 0;
}

/* The length of the field name the line starts with ("Name:"), or 0. */
static size_t
field_name_len(const struct line *l)
{
	size_t i = 0;

	while (i < l->len && l->text[i] > ' ' && l->text[i] < 127 &&
	    l->text[i] != ':')
		i++;
	return i > 0 && i < l->len && l->text[i] == ':' ? i : 0;
}

static int
add_field(struct message *m, const struct line *l, size_t namelen)
{
	struct header *h;

	if (m->nheaders == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct header *p = realloc(m->headers, cap * sizeof *p);

		if (p == NULL)
			return -1;
		m->headers = p;
		m->cap = cap;
	}
	h = &m->headers[m->nheaders];
	if ((h->name = strndup(l->text, namelen)) == NULL)
		return -1;
	if ((h->text = strndup(l->text, l->len)) == NULL) {
		free(h->name);
		return -1;
	}
	h->value_at = namelen + 1;
	m->nheaders++;
	return 0;
}

/* Append a continuation line to the last field, joined by LF. */
static int
continue_field(struct message *m, const struct line *l)
{
	struct header *h = &m->headers[m->nheaders - 1];
	size_t n = strlen(h->text);
	char *p;

	if (n + 1 + l->len > MESSAGE_HEADER_MAX)
		return 1;
	if ((p = realloc(h->text, n + 1 + l->len + 1)) == NULL)
		return -1;
	p[n] = '\n';
	memcpy(p + n + 1, l->text, l->len + 1);
	h->text = p;
	return 0;
}

/*
 * Read the header section; set m->body_at.  Returns 0, or -1 with the
 * reason in err.
 */
static int
read_headers(struct message *m, char *err, size_t errlen)
{
	struct line l = { 0 };
	off_t at = 0;
	unsigned lineno = 0;
	int rc;

	while ((rc = read_line(m->file, &l, MESSAGE_HEADER_MAX)) > 0) {
		size_t namelen = field_name_len(&l);
		off_t next = at + (off_t)l.len + (l.crlf ? 1 : 0) +
		    (l.ended ? 1 : 0);
		bool folded = m->nheaders > 0 && l.len > 0 &&
		    (l.text[0] == ' ' || l.text[0] == '\t');

		if (++lineno == 1) {
			m->crlf = l.crlf;
			if (l.len >= 5 && memcmp(l.text, "From ", 5) == 0 &&
			    !l.cut) {
				at = next;
				continue;
			}
		}
		if (l.len == 0 && !l.cut) {
			at = next;      /* the empty line ends the headers */
			break;
		}
		if (!folded && namelen == 0)
			break;          /* this line is the body's first */
		if (l.cut || memchr(l.text, '\0', l.len) != NULL) {
			snprintf(err, errlen, "line %u: %s", lineno, l.cut ?
			    "a header field longer than 102400 bytes (Postfix's "
			    "header_size_limit)" : "a NUL byte in the headers");
			free(l.text);
			return -1;
		}
		rc = folded ? continue_field(m, &l) : add_field(m, &l, namelen);
		if (rc != 0) {
			snprintf(err, errlen, rc > 0 ? "line %u: a header field "
			    "longer than 102400 bytes (Postfix's "
			    "header_size_limit)" : "line %u: out of memory",
			    lineno);
			free(l.text);
			return -1;
		}
		at = next;
	}
	free(l.text);
	if (rc < 0) {
		snprintf(err, errlen, "%s", ferror(m->file) ? strerror(errno) :
		    "out of memory");
		return -1;
	}
	m->body_at = at;
	return 0;
}

int
message_open(struct message *m, const char *path, char *err, size_t errlen)
{
	memset(m, 0, sizeof *m);
	if ((m->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((m->file = fopen(path, "rb")) == NULL) {
		snprintf(err, errlen, "%s", strerror(errno));
		message_close(m);
		return -1;
	}
	if (read_headers(m, err, errlen) < 0) {
		message_close(m);
		return -1;
	}
	return 0;
}

void
message_close(struct message *m)
{
	for (size_t i = 0; i < m->nheaders; i++) {
		free(m->headers[i].name);
		free(m->headers[i].text);
	}
	free(m->headers);
	if (m->file != NULL)
		fclose(m->file);
	free(m->path);
	memset(m, 0, sizeof *m);
}

const char *
header_value(const struct header *h)
{
	return h->text + h->value_at;
}

/* ---- line ends ------------------------------------------------------ */

void
lineconv_init(struct lineconv *c, const char *eol)
{
	c->eol = eol;
	c->eollen = strlen(eol);
	c->cr = c->open_line = false;
}

static size_t
put_eol(struct lineconv *c, unsigned char *out)
{
	memcpy(out, c->eol, c->eollen);
	c->open_line = false;
	return c->eollen;
}

size_t
lineconv_feed(struct lineconv *c, const unsigned char *in, size_t n,
    unsigned char *out)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char b = in[i];

		if (c->cr) {
			c->cr = false;
			if (b == '\n') {
				o += put_eol(c, out + o);
				continue;
			}
			out[o++] = '\r';
			c->open_line = true;
		}
		if (b == '\r') {
			c->cr = true;
		} else if (b == '\n') {
			o += put_eol(c, out + o);
		} else {
			out[o++] = b;
			c->open_line = true;
		}
	}
	return o;
}

size_t
lineconv_end(struct lineconv *c, unsigned char *out)
{
	bool open = c->cr || c->open_line;

	c->cr = false;
	return open ? put_eol(c, out) : 0;
}

/* ---- the body ------------------------------------------------------- */

int
body_start(struct body_reader *r, struct message *m, const char *eol,
    char *err, size_t errlen)
{
	r->m = m;
	lineconv_init(&r->conv, eol);
	r->eof = false;
	r->off = r->len = 0;
	if (fseeko(m->file, m->body_at, SEEK_SET) < 0) {
		snprintf(err, errlen, "%s", strerror(errno));
		return -1;
	}
	return 0;
}

ssize_t
body_next(struct body_reader *r, const unsigned char **piece, char *err,
    size_t errlen)
{
	size_t n;

	while (r->len - r->off < BODY_CHUNK && !r->eof) {
		if (r->off > 0) {
			memmove(r->buf, r->buf + r->off, r->len - r->off);
			r->len -= r->off;
			r->off = 0;
		}
		n = fread(r->raw, 1, sizeof r->raw, r->m->file);
		if (n < sizeof r->raw) {
			if (ferror(r->m->file)) {
				snprintf(err, errlen, "%s", strerror(errno));
				return -1;
			}
			r->eof = true;
		}
		r->len += lineconv_feed(&r->conv, r->raw, n, r->buf + r->len);
		if (r->eof)
			r->len += lineconv_end(&r->conv, r->buf + r->len);
	}
	n = r->len - r->off < BODY_CHUNK ? r->len - r->off : BODY_CHUNK;
	*piece = r->buf + r->off;
	r->off += n;
	return (ssize_t)n;
}

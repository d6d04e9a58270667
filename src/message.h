/*
 * message - a message file (.eml, or one file of a Maildir) read as an
 * MTA passes it to milters, for milterhost-replay.
 *
 * message_open() reads the header section into memory, one field at a
 * time: its name, and its text with folded lines joined by LF (the CR of
 * a CR LF line end removed), which is how Postfix and libmilter hand a
 * header to a milter.  The header section ends at the first empty line,
 * or at the first line that is neither a field ("Name:") nor the
 * continuation of one (that line starts the body); a first line "From "
 * (an mbox separator) is skipped.  The body stays in the file: a
 * body_reader streams it in pieces, every line end turned into the one
 * asked for (CR LF for the MTA, the file's own for the delivered copy),
 * the last line ended too.  Nothing holds the whole body.
 */
#ifndef MILTERHOST_MESSAGE_H
#define MILTERHOST_MESSAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* Postfix's header_size_limit: a longer field is refused. */
#define MESSAGE_HEADER_MAX 102400

struct header {
	char *name;       /* the field name */
	char *text;       /* "Name: value", folded lines joined by "\n" */
	size_t value_at;  /* where the value starts in text (after ':') */
};

struct message {
	char *path;
	FILE *file;
	struct header *headers;
	size_t nheaders, cap;
	off_t body_at;    /* where the body starts in the file */
	bool crlf;        /* the file's first line ends in CR LF */
};

/*
 * Open path and read its headers into *m.  Returns 0, or -1 with the
 * reason in err (a field longer than MESSAGE_HEADER_MAX, a NUL byte in
 * the headers, a read error); *m is then empty.
 */
int message_open(struct message *m, const char *path, char *err,
		 size_t errlen);
void message_close(struct message *m);

/* The header's value as in the file: after the colon, with its blanks. */
const char *header_value(const struct header *h);

/*
 * Line ends turned into eol ("\r\n" or "\n"): a CR LF or a lone LF ends
 * a line, a lone CR inside a line is data.
 */
struct lineconv {
	const char *eol;
	size_t eollen;
	bool cr;          /* a CR was seen and not yet placed */
	bool open_line;   /* bytes written since the last line end */
};

void lineconv_init(struct lineconv *c, const char *eol);
/* Convert n bytes into out, which has room for 2n + 2; returns the
 * bytes written. */
size_t lineconv_feed(struct lineconv *c, const unsigned char *in, size_t n,
		     unsigned char *out);
/* End the last line if it is open; out has room for 2.  Returns the
 * bytes written. */
size_t lineconv_end(struct lineconv *c, unsigned char *out);

/* The body of a message in pieces of at most BODY_CHUNK bytes. */
#define BODY_CHUNK 65535
#define BODY_READ 32768

struct body_reader {
	struct message *m;
	struct lineconv conv;
	bool eof;
	size_t off, len;  /* what buf holds and has not handed out */
	unsigned char raw[BODY_READ];
	unsigned char buf[BODY_CHUNK + 2 * BODY_READ + 4];
};

/* Start reading m's body (again), with line ends eol.  -1 with the
 * reason in err if the file cannot seek. */
int body_start(struct body_reader *r, struct message *m, const char *eol,
	       char *err, size_t errlen);
/*
 * The next piece: BODY_CHUNK bytes, fewer only for the last.  *piece is
 * valid until the next call.  Returns its length, 0 at the end of the
 * body, -1 with the reason in err on a read error.
 */
ssize_t body_next(struct body_reader *r, const unsigned char **piece,
		  char *err, size_t errlen);

#endif /* MILTERHOST_MESSAGE_H */

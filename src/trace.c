/*
 * trace - milterhost-replay's output.  See trace.h.
 */
#include <stdio.h>
#include <string.h>

#include "trace.h"

/* Up to this many bytes of a replacement body are shown. */
#define BODY_SHOWN 64

bool
trace_begin(struct trace *t, const char *kind)
{
	t->on = !t->quiet || strcmp(kind, "result") == 0 ||
	    strcmp(kind, "total") == 0 || strcmp(kind, "error") == 0;
	if (t->on)
		fprintf(t->out, "%s %u", kind, t->msg);
	return t->on;
}

static void
put_escaped(struct trace *t, const char *s, size_t len, bool quoted)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '\r')
			fputs("\\r", t->out);
		else if (c == '\n')
			fputs("\\n", t->out);
		else if (c == '\t')
			fputs("\\t", t->out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(t->out, "\\x%02X", c);
		else if (quoted && (c == '"' || c == '\\'))
			fprintf(t->out, "\\%c", c);
		else
			putc(c, t->out);
	}
}

void
trace_word(struct trace *t, const char *s)
{
	if (!t->on || s == NULL)
		return;
	putc(' ', t->out);
	put_escaped(t, s, strlen(s), false);
}

void
trace_quoted(struct trace *t, const char *s, size_t len)
{
	if (!t->on)
		return;
	fputs(" \"", t->out);
	put_escaped(t, s, len, true);
	putc('"', t->out);
}

void
trace_fmt(struct trace *t, const char *fmt, ...)
{
	va_list ap;

	if (!t->on)
		return;
	va_start(ap, fmt);
	vfprintf(t->out, fmt, ap);
	va_end(ap);
}

void
trace_end(struct trace *t)
{
	if (t->on)
		putc('\n', t->out);
	t->on = false;
}

void
trace_event(struct trace *t, mh_stage stage, const char *word,
    const char *quoted)
{
	if (!trace_begin(t, "event"))
		return;
	trace_word(t, stage_name(stage));
	trace_word(t, word);
	if (quoted != NULL)
		trace_quoted(t, quoted, strlen(quoted));
	trace_end(t);
}

/* Append s (without its doubled '%') to buf at *off, within len. */
static void
append_undoubled(char *buf, size_t len, size_t *off, const char *s)
{
	for (; *s != '\0' && *off + 1 < len; s++) {
		if (s[0] == '%' && s[1] == '%')
			s++;
		buf[(*off)++] = *s;
	}
	buf[*off] = '\0';
}

void
trace_reply_text(const struct reply *r, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < r->nlines; i++) {
		char head[32];
		bool last = i + 1 == r->nlines;

		if (r->nlines == 1 && r->xcode[0] == '\0')
			snprintf(head, sizeof head, "%s ", r->rcode);
		else if (r->xcode[0] == '\0')
			snprintf(head, sizeof head, "%s%c%c.0.0 ", r->rcode,
			    last ? ' ' : '-', r->rcode[0]);
		else
			snprintf(head, sizeof head, "%s%c%s ", r->rcode,
			    last ? ' ' : '-', r->xcode);
		append_undoubled(buf, len, &off, head);
		append_undoubled(buf, len, &off, r->lines[i]);
		if (!last)
			append_undoubled(buf, len, &off, "\r\n");
	}
}

static const char *
failure_name(enum call_failure f)
{
	switch (f) {
	case CALL_REFUSED:
		return "refused";
	case CALL_FAILED:
		return "failed";
	case CALL_BAD_STATUS:
		return "bad-status";
	case CALL_OBSERVER:
		return "observer";
	default:
		return "none";
	}
}

/* A callback's return value: its status name, else the number. */
static void
put_raw(struct trace *t, int raw)
{
	if (raw >= MH_CONTINUE && raw <= MH_FAIL)
		trace_fmt(t, " returned=%s", status_name(raw));
	else
		trace_fmt(t, " returned=%d", raw);
}

void
trace_call(struct trace *t, const struct call_report *r)
{
	char reply[4096];

	if (!trace_begin(t, "call"))
		return;
	trace_word(t, stage_name(r->stage));
	trace_fmt(t, " [");
	put_escaped(t, r->name, strlen(r->name), false);
	trace_fmt(t, "]");
	/* abort and close have no status: only their time is told */
	if (r->stage != MH_STAGE_ABORT && r->stage != MH_STAGE_CLOSE)
		trace_word(t, status_name(r->status));
	if (r->dry_run)
		trace_fmt(t, " dry-run");
	if (r->failure != CALL_OK) {
		trace_fmt(t, " failure=%s", failure_name(r->failure));
		put_raw(t, r->raw);
	}
	if (r->changes > 0)
		trace_fmt(t, " changes=%zu", r->changes);
	if (r->reply != NULL) {
		trace_reply_text(r->reply, reply, sizeof reply);
		trace_quoted(t, reply, strlen(reply));
	}
	trace_fmt(t, " %lluus", (unsigned long long)(r->ns / 1000));
	trace_end(t);
}

void
trace_answer(struct trace *t, mh_stage stage, const struct verdict *v)
{
	char reply[4096];

	if (!trace_begin(t, "answer"))
		return;
	trace_word(t, stage_name(stage));
	if (v->unanswered) {
		trace_word(t, "noreply");
	} else {
		trace_word(t, status_name(v->status));
		if (v->reply != NULL && v->reply->nlines > 0) {
			trace_reply_text(v->reply, reply, sizeof reply);
			trace_quoted(t, reply, strlen(reply));
		}
	}
	trace_end(t);
}

static const char *const change_names[MOD_TYPE_COUNT] = {
	[MOD_ADD_HEADER] = "add_header",
	[MOD_INSERT_HEADER] = "insert_header",
	[MOD_CHANGE_HEADER] = "change_header",
	[MOD_REPLACE_BODY] = "replace_body",
	[MOD_ADD_RCPT] = "add_rcpt",
	[MOD_DELETE_RCPT] = "delete_rcpt",
	[MOD_CHANGE_FROM] = "change_from",
	[MOD_QUARANTINE] = "quarantine",
};

void
trace_change(struct trace *t, const struct mod *m)
{
	const char *v = m->value != NULL ? m->value : "";
	bool deletes = m->type == MOD_CHANGE_HEADER && *v == '\0';

	if (!trace_begin(t, "change"))
		return;
	trace_fmt(t, " [");
	put_escaped(t, m->owner, strlen(m->owner), false);
	trace_fmt(t, "] %s", deletes ? "delete_header" : change_names[m->type]);
	switch (m->type) {
	case MOD_ADD_HEADER:
		trace_word(t, m->name);
		trace_quoted(t, v, strlen(v));
		break;
	case MOD_INSERT_HEADER:
		trace_fmt(t, " %d", m->index);
		trace_word(t, m->name);
		trace_quoted(t, v, strlen(v));
		break;
	case MOD_CHANGE_HEADER:
		trace_word(t, m->name);
		trace_fmt(t, " %d", m->index);
		if (!deletes)
			trace_quoted(t, v, strlen(v));
		break;
	case MOD_REPLACE_BODY:
		trace_fmt(t, " %zu bytes", m->len);
		trace_quoted(t, (const char *)m->body,
		    m->len < BODY_SHOWN ? m->len : BODY_SHOWN);
		if (m->len > BODY_SHOWN)
			trace_fmt(t, "...");
		break;
	case MOD_QUARANTINE:
		trace_quoted(t, v, strlen(v));
		break;
	default:
		trace_word(t, v);
		trace_word(t, m->args);
		break;
	}
	trace_end(t);
}

const char *
trace_action_name(unsigned long bit)
{
	switch (bit) {
	case MH_ACT_ADDHDRS:
		return "add_headers";
	case MH_ACT_CHGHDRS:
		return "change_headers";
	case MH_ACT_CHGBODY:
		return "replace_body";
	case MH_ACT_ADDRCPT:
		return "add_rcpt";
	case MH_ACT_ADDRCPT_PAR:
		return "add_rcpt_args";
	case MH_ACT_DELRCPT:
		return "delete_rcpt";
	case MH_ACT_CHGFROM:
		return "change_from";
	case MH_ACT_QUARANTINE:
		return "quarantine";
	case ACT_SETSYMLIST:
		return "setsymlist";
	default:
		return NULL;
	}
}

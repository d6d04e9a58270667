/*
 * trace - milterhost-replay's output: one line per event, per callback,
 * per answer and per change, then the result of each message.
 *
 * Every line starts with its kind and the number of the message (from
 * 1, in the order replayed); the README ("Testing a plugin or a
 * configuration offline") documents each kind.  Text from the message,
 * the plugins or the command line is escaped: CR, LF and tab as \r, \n
 * and \t, other control bytes as \xHH; in quotes also \" and \\.  So
 * a line is always one line, and grep finds what it looks for.
 *
 * A line is built by trace_begin(), words and quoted strings, then
 * trace_end().  Quiet, only the kinds "result", "total" and "error" are
 * written.
 */
#ifndef MILTERHOST_TRACE_H
#define MILTERHOST_TRACE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "chain.h"
#include "mods.h"
#include "reply.h"

struct trace {
	FILE *out;
	bool quiet;
	unsigned msg;     /* the message being replayed, from 1 */
	bool on;          /* the line being built is written */
};

/* Start a line "KIND N"; returns whether it is written. */
bool trace_begin(struct trace *t, const char *kind);
/* Append " " and s, escaped. */
void trace_word(struct trace *t, const char *s);
/* Append " " and len bytes of s in quotes, escaped. */
void trace_quoted(struct trace *t, const char *s, size_t len);
/* Append formatted text as is (numbers, fixed words). */
void trace_fmt(struct trace *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void trace_end(struct trace *t);

/* "event N STAGE [WORD] ["QUOTED"]" */
void trace_event(struct trace *t, mh_stage stage, const char *word,
		 const char *quoted);
/* "call N STAGE [INSTANCE] STATUS ..." from the engine's report. */
void trace_call(struct trace *t, const struct call_report *r);
/* "answer N STAGE STATUS ["REPLY"]" or "answer N STAGE noreply". */
void trace_answer(struct trace *t, mh_stage stage, const struct verdict *v);
/* "change N [INSTANCE] KIND ..." */
void trace_change(struct trace *t, const struct mod *m);

/*
 * The reply as libmilter sends it and the SMTP client hears it: "550
 * 5.7.1 text", lines joined by CR LF ("550-5.7.1 one\r\n550 5.7.1
 * two"; libmilter gives a multi-line reply without an enhanced code
 * X.0.0), every '%%' a '%' again.  Cut to fit len.
 */
void trace_reply_text(const struct reply *r, char *buf, size_t len);

/* The name of an action bit (MH_ACT_*, ACT_SETSYMLIST), or NULL. */
const char *trace_action_name(unsigned long bit);

#endif /* MILTERHOST_TRACE_H */

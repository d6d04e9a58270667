/*
 * summary - the one log line per message.  See summary.h.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "session.h"
#include "stage.h"
#include "summary.h"

void
summary_reset(struct msg_summary *m)
{
	memset(m, 0, sizeof *m);
	m->result = MH_CONTINUE;
}

void
summary_note_changes(struct msg_summary *m, const struct mod_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		m->changes[l->items[i]->type]++;
}

/* "accepted", "rejected by [x] at data", ... into buf. */
static void
result_text(const struct msg_summary *m, char *buf, size_t len)
{
	static const char *const names[] = {
		[MH_REJECT] = "rejected", [MH_TEMPFAIL] = "tempfailed",
		[MH_DISCARD] = "discarded",
	};

	if (m->result == MH_ACCEPT)
		snprintf(buf, len, "accepted");
	else if (m->result == MH_CONTINUE)
		snprintf(buf, len, "aborted");
	else if (m->decider != NULL)
		snprintf(buf, len, "%s by [%s] at %s", names[m->result],
		    m->decider, stage_name(m->stage));
	else if (m->score[0] != '\0')
		snprintf(buf, len, "%s by score %s at %s", names[m->result],
		    m->score, stage_name(m->stage));
	else
		snprintf(buf, len, "%s", names[m->result]);
}

/* ", 3 changes (add header 2, change sender 1)" or "" into buf. */
static void
changes_text(const struct msg_summary *m, char *buf, size_t len)
{
	size_t off = 0, total = 0;

	buf[0] = '\0';
	for (int t = 0; t < MOD_TYPE_COUNT; t++)
		total += m->changes[t];
	if (total == 0)
		return;
	off = (size_t)snprintf(buf, len, ", %zu change%s (", total,
	    total == 1 ? "" : "s");
	for (int t = 0; t < MOD_TYPE_COUNT && off < len; t++)
		if (m->changes[t] > 0)
			off += (size_t)snprintf(buf + off, len - off, "%s%s %u",
			    buf[off - 1] == '(' ? "" : ", ",
			    mod_type_name((enum mod_type)t), m->changes[t]);
	if (off < len)
		snprintf(buf + off, len - off, ")");
}

/* The client as connect gave it, else as the MTA's macro says, else ?. */
static const char *
client_of(struct session *s)
{
	const char *v;

	if (s->client_addr[0] != '\0')
		return s->client_addr;
	v = session_macro(s, "{client_addr}");
	return v != NULL && *v != '\0' ? v : "?";
}

/* The sender as MAIL FROM gave it, else from the MTA's macro (in angle
 * brackets, as MAIL FROM gives it), else ?. */
static const char *
sender_of(struct session *s, const struct msg_summary *m, char *buf,
    size_t len)
{
	const char *v;

	if (m->sender[0] != '\0')
		return m->sender;
	if ((v = session_macro(s, "{mail_addr}")) == NULL)
		return "?";
	snprintf(buf, len, "<%s>", v);
	return buf;
}

void
summary_log(struct session *s)
{
	const struct msg_summary *m = &s->summary;
	char result[512], changes[256], times[1024], rcpts[16], from[260];
	size_t off = 0;

	if (log_enabled(LOG_INFO)) {
		result_text(m, result, sizeof result);
		changes_text(m, changes, sizeof changes);
		times[0] = '\0';
		for (size_t i = 0; i < s->nctx && off < sizeof times; i++) {
			if (s->ctx[i].msg_ns == 0)
				continue;
			off += (size_t)snprintf(times + off, sizeof times -
			    off, " [%s] %.3f ms", s->ctx[i].inst->name,
			    (double)s->ctx[i].msg_ns / 1e6);
		}
		/* "?": the MTA did not send it (its stage not taken). */
		if (m->rcpts_seen)
			snprintf(rcpts, sizeof rcpts, "%u", m->rcpts);
		else
			snprintf(rcpts, sizeof rcpts, "?");
		log_msg(LOG_INFO, "%s: message: client=%s from=%s rcpts=%s "
		    "%s%s; time%s", session_qid(s), client_of(s),
		    sender_of(s, m, from, sizeof from), rcpts, result,
		    changes, times[0] ? times : " none");
	}
	summary_reset(&s->summary);
	for (size_t i = 0; i < s->nctx; i++)
		s->ctx[i].msg_ns = 0;
}

/*
 * session - the life of a session and of its plugin contexts: creating and
 * freeing them, the queue id kept for log lines, and the state of a
 * context around each callback.  See session.h.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "session.h"

/* ---- sessions ---------------------------------------------------------- */

const char *
session_macro(struct session *s, const char *name)
{
	if (!s->have_io || s->io.macro == NULL)
		return NULL;
	return s->io.macro(s->io.arg, name);
}

void
session_forget_envfrom(struct session *s)
{
	if (s->envfrom_argv == NULL)
		return;
	for (char **a = s->envfrom_argv; *a != NULL; a++)
		free(*a);
	free(s->envfrom_argv);
	s->envfrom_argv = NULL;
}

int
session_keep_envfrom(struct session *s, char *const *argv)
{
	size_t n = 0;

	session_forget_envfrom(s);
	while (argv[n] != NULL)
		n++;
	if ((s->envfrom_argv = calloc(n + 1, sizeof *s->envfrom_argv)) == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((s->envfrom_argv[i] = strdup(argv[i])) == NULL) {
			session_forget_envfrom(s);
			return -1;
		}
	return 0;
}

/* Only the session's thread writes s->qid: it reads it without the lock. */
const char *
session_qid(struct session *s)
{
	return s->qid[0] ? s->qid : "NOQUEUE";
}

void
session_qid_copy(struct session *s, char *buf, size_t len)
{
	pthread_mutex_lock(&s->qid_lock);
	snprintf(buf, len, "%s", s->qid[0] ? s->qid : "NOQUEUE");
	pthread_mutex_unlock(&s->qid_lock);
}

void
session_set_qid(struct session *s, const char *qid)
{
	pthread_mutex_lock(&s->qid_lock);
	snprintf(s->qid, sizeof s->qid, "%s", qid);
	pthread_mutex_unlock(&s->qid_lock);
}

/*
 * Copy macro i for log lines before an event's callbacks run.  It runs at
 * every event, so it takes the lock only when the value changed (compared
 * as session_set_qid would have cut it).
 */
void
session_note_qid(struct session *s)
{
	const char *qid = session_macro(s, "i");
	size_t n = strlen(s->qid);

	if (qid == NULL || *qid == '\0')
		return;
	if (strncmp(s->qid, qid, n) == 0 &&
	    (qid[n] == '\0' || n == sizeof s->qid - 1))
		return;
	session_set_qid(s, qid);
}

void
session_set_leadspc_fix(struct session *s)
{
	for (size_t i = 0; i < s->nctx; i++) {
		bool wants = s->ctx[i].inst->flags & MH_WANT_HDR_LEADSPC;

		s->ctx[i].leadspc_fix = wants != s->leadspc;
	}
}

struct session *
session_new(struct plugin_set *set, const struct chain_io *io)
{
	struct session *s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return NULL;
	if (set->ninstances > 0 &&
	    ((s->ctx = calloc(set->ninstances, sizeof *s->ctx)) == NULL ||
	    (s->queues = calloc(set->ninstances + 1, sizeof *s->queues)) ==
	    NULL)) {
		free(s->ctx);
		free(s);
		return NULL;
	}
	if (set->ninstances == 0 &&
	    (s->queues = calloc(1, sizeof *s->queues)) == NULL) {
		free(s);
		return NULL;
	}
	pthread_mutex_init(&s->qid_lock, NULL);
	s->set = plugin_set_retain(set);
	s->nctx = set->ninstances;
	for (size_t i = 0; i < s->nctx; i++) {
		s->ctx[i].session = s;
		s->ctx[i].inst = &set->instances[i];
		if (cond_has_rcpt(set->instances[i].cond))
			s->keep_envfrom = true;
	}
	if (io != NULL) {
		s->io = *io;
		s->have_io = true;
	}
	summary_reset(&s->summary);
	s->refused = MH_CONTINUE;
	s->msg_over = MH_CONTINUE;
	s->mta_sends_mail = true;
	s->score_header_ok = true;
	session_set_leadspc_fix(s);
	return s;
}

void
session_free(struct session *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nctx; i++)
		ctx_destroy(&s->ctx[i]);
	for (int m = 0; m < MACRO_STAGES; m++)
		free(s->macro_lists[m]);
	reply_clear(&s->verdict_reply);
	reply_clear(&s->deferred_reply);
	mod_list_free(&s->merged);
	mod_queue_clear(&s->host_mods);
	score_free(&s->score);
	session_forget_envfrom(s);
	free(s->scratch);
	view_free(&s->held);
	view_free(&s->seen);
	plugin_set_release(s->set);
	pthread_mutex_destroy(&s->qid_lock);
	free(s->queues);
	free(s->ctx);
	free(s);
}

/* ---- contexts ---------------------------------------------------------- */

void
ctx_begin_callback(struct mh_ctx *ctx)
{
	ctx->failed = false;
	ctx->fail_reason[0] = '\0';
	reply_clear(&ctx->reply);
}

void
ctx_callback_starts(struct mh_ctx *ctx)
{
	pthread_t self = pthread_self();

	__atomic_store(&ctx->cb_thread, &self, __ATOMIC_RELAXED);
	__atomic_store_n(&ctx->in_callback, true, __ATOMIC_RELEASE);
}

void
ctx_callback_ended(struct mh_ctx *ctx)
{
	__atomic_store_n(&ctx->in_callback, false, __ATOMIC_RELEASE);
}

/*
 * Is the caller the thread running a callback of ctx?  A thread id read
 * while in_callback is set belongs to a thread that is running or ran one
 * of ctx's callbacks after the caller existed, so it is never the
 * caller's own unless the caller runs the callback.
 */
bool
ctx_in_own_callback(const struct mh_ctx *ctx)
{
	pthread_t t;

	if (!__atomic_load_n(&ctx->in_callback, __ATOMIC_ACQUIRE))
		return false;
	__atomic_load(&ctx->cb_thread, &t, __ATOMIC_RELAXED);
	return pthread_equal(t, pthread_self()) != 0;
}

/*
 * Empty a data slot at the end of its life.  What the plugin left in it is
 * freed by the destructor it gave (mh_set_*_data_free), if any; the slot is
 * emptied first, so a destructor finds it empty as the plugin's next
 * callback would.
 */
static void
drop_slot(void **data, void (**destroy)(void *))
{
	void *d = *data;
	void (*fn)(void *) = *destroy;

	*data = NULL;
	*destroy = NULL;
	if (d != NULL && fn != NULL)
		fn(d);
}

void
ctx_end_message(struct mh_ctx *ctx)
{
	drop_slot(&ctx->msg_data, &ctx->msg_free);
	ctx->msg_open = false;
	ctx->msg_done = false;
	ctx->body_skip = false;
	ctx->cond_msg = COND_OPEN;
	ctx->rcpt_now = false;
	ctx->rcpt_entered = false;
	ctx->rcpt_taken = 0;
	ctx->rcpt_refused = MH_CONTINUE;
	reply_clear(&ctx->refused_reply);
}

void
ctx_end_connection(struct mh_ctx *ctx)
{
	drop_slot(&ctx->conn_data, &ctx->conn_free);
}

/* Before the session drops its set reference: the destructors are the
 * plugin's code, which the last release unloads. */
void
ctx_destroy(struct mh_ctx *ctx)
{
	drop_slot(&ctx->msg_data, &ctx->msg_free);
	drop_slot(&ctx->conn_data, &ctx->conn_free);
	mod_queue_clear(&ctx->mods);
	reply_clear(&ctx->reply);
	reply_clear(&ctx->refused_reply);
}

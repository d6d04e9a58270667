/*
 * rcptlimit - the bundled milterhost plugin: at most N recipients per
 * message.
 *
 *	[plugin:limit]
 *	module = rcptlimit
 *	max = 100
 *	reply = 452 4.5.3 Too many recipients
 *
 * max		the number of recipients a message may have (required), from
 *		1 to 100000.
 * reply	what a recipient beyond max hears (default "452 4.5.3 Too
 *		many recipients"): a 4xx reply code, an optional enhanced
 *		status code of class 4 and a text.  The recipient is
 *		tempfailed, so the client sends it again in a later
 *		transaction (RFC 5321 4.5.3.1.10).  A 5xx reply is refused:
 *		the client would give those recipients up and mail would be
 *		lost.
 *
 * What counts: per message (one MAIL FROM to the end of the message, or
 * to its abort), the recipients this instance let through, that is those
 * it answered MH_CONTINUE at envrcpt.  A recipient the MTA rejected
 * itself never reaches a plugin (no MH_WANT_REJECTED_RCPTS), and one an
 * earlier instance of the chain refused never reaches this one; a
 * recipient a later instance refuses is counted all the same, since a
 * plugin cannot know what the later links decide.  Put rcptlimit last
 * among the instances that refuse recipients to count exactly those the
 * chain took.  The recipients this instance tempfails do not count.
 *
 * The count lives in the message data slot, freed by the host when the
 * message ends; the instance state (max and the parsed reply) is
 * read-only after init, so sessions share it without locks.
 */
#include <stdlib.h>
#include <string.h>

#include <milterhost/plugin.h>

#include "support.h"

#define MAX_LIMIT 100000
#define DEFAULT_REPLY "452 4.5.3 Too many recipients"

struct rcptlimit {
	unsigned long max;
	struct bundled_tempfail reply;
};

/* Per message: the recipients let through so far. */
struct count {
	unsigned long rcpts;
};

static void
rl_fini(void *state)
{
	struct rcptlimit *rl = state;

	if (rl == NULL)
		return;
	bundled_tempfail_free(&rl->reply);
	free(rl);
}

/* ---- init: the settings ------------------------------------------------ */

/* The settings of the section, checked one by one. */
struct settings {
	const char *max;
	const char *reply;
};

static int
collect_settings(const struct mh_init *init, struct settings *s)
{
	const struct bundled_key keys[] = {
		{ "max", &s->max },
		{ "reply", &s->reply },
		{ NULL, NULL },
	};

	if (bundled_read_settings(init, "rcptlimit", keys) < 0)
		return -1;
	if (s->max == NULL)
		return mh_init_error(init, "max", "missing: give the number "
		    "of recipients a message may have, e.g. max = 100");
	return 0;
}

static int
rl_init(const struct mh_init *init, void **state)
{
	struct settings s;
	struct rcptlimit *rl;

	if (collect_settings(init, &s) < 0)
		return -1;
	if ((rl = calloc(1, sizeof *rl)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	if (bundled_parse_number(init, "max", s.max, 1, MAX_LIMIT,
	    &rl->max) < 0 || bundled_parse_tempfail(init, "reply",
	    s.reply != NULL ? s.reply : DEFAULT_REPLY, DEFAULT_REPLY,
	    &rl->reply) < 0) {
		rl_fini(rl);
		return -1;
	}
	*state = rl;
	return 0;
}

/* ---- recipients ------------------------------------------------------- */

/* This message's count, made at its first recipient; NULL when out of
 * memory. */
static struct count *
message_count(mh_ctx *ctx)
{
	struct count *c = mh_msg_data(ctx);

	if (c != NULL)
		return c;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	if (mh_set_msg_data_free(ctx, c, free) != MH_OK) {
		free(c);
		return NULL;
	}
	return c;
}

static mh_status
rl_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	const struct rcptlimit *rl = mh_instance_state(ctx);
	struct count *c;

	(void)args;
	if ((c = message_count(ctx)) == NULL) {
		mh_log(ctx, MH_LOG_ERR, "out of memory counting recipients");
		return MH_FAIL;
	}
	if (c->rcpts < rl->max) {
		c->rcpts++;
		return MH_CONTINUE;
	}
	mh_log(ctx, MH_LOG_INFO, "recipient %s: the message has %lu "
	    "already (max %lu): %s %s%s%s", rcpt, c->rcpts, rl->max,
	    rl->reply.rcode, rl->reply.xcode, rl->reply.xcode[0] != '\0' ?
	    " " : "", rl->reply.text);
	return bundled_tempfail(ctx, &rl->reply);
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "rcptlimit",
	.version = "1.0",
	.description = "tempfail the recipients of a message beyond a limit",
	.init = rl_init,
	.fini = rl_fini,
	.envrcpt = rl_envrcpt,
};

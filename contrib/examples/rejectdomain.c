/*
 * rejectdomain - an example milterhost plugin: refuse mail from one
 * sender domain with a custom reply.
 *
 *	[plugin:no-spammers]
 *	module = rejectdomain
 *	domain = spam.example
 *
 * Build: cc -shared -fPIC $(pkg-config --cflags milterhost) \
 *	-o rejectdomain.so rejectdomain.c
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <milterhost/plugin.h>

struct state {
	char *domain; /* "@spam.example" */
};

static int
rd_init(const struct mh_init *init, void **state)
{
	struct state *st;
	const char *domain = NULL;

	for (size_t i = 0; i < init->nsettings; i++) {
		const struct mh_setting *s = &init->settings[i];

		if (strcmp(s->key, "domain") != 0)
			return mh_init_error(init, s->key, "unknown key");
		domain = s->value;
	}
	if (domain == NULL || *domain == '\0')
		return mh_init_error(init, "domain", "a domain is required");
	if ((st = malloc(sizeof *st)) == NULL ||
	    (st->domain = malloc(strlen(domain) + 2)) == NULL) {
		free(st);
		return mh_init_error(init, NULL, "out of memory");
	}
	st->domain[0] = '@';
	strcpy(st->domain + 1, domain);
	*state = st;
	return 0;
}

static void
rd_fini(void *state)
{
	struct state *st = state;

	free(st->domain);
	free(st);
}

static mh_status
rd_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	struct state *st = mh_instance_state(ctx);
	size_t n = strlen(sender), d = strlen(st->domain);

	(void)args; /* ESMTP arguments: not needed here */

	/* sender is "<user@domain>" as the client wrote it */
	if (n > d + 1 && sender[n - 1] == '>' &&
	    strncasecmp(sender + n - 1 - d, st->domain, d) == 0) {
		mh_log(ctx, MH_LOG_INFO, "refusing %s", sender);
		mh_set_reply(ctx, "550", "5.7.1", "mail from this domain "
		    "is not accepted here");
		return MH_REJECT;
	}
	return MH_CONTINUE;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "rejectdomain",
	.version = "1.0",
	.description = "refuse mail from one sender domain",
	.init = rd_init,
	.fini = rd_fini,
	.envfrom = rd_envfrom,
};

/*
 * noop - a test plugin that implements every callback and does nothing.
 *
 * It is the loader tests' model of a good plugin.  Its init takes one
 * key, "greeting", and the list key "tag" (any number of times); any other
 * key is refused, naming the key.  The instance state records what init
 * received: a line "instance=NAME file=CONFIG_FILE", then the settings in
 * order as "key=value" lines.  The tests read it with noop_settings_seen()
 * (found with dlsym) to check what the host passed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <milterhost/plugin.h>

const char *noop_settings_seen(const void *state);

struct noop {
	char *seen; /* "instance=...", then "key=value\n" per setting */
};

const char *
noop_settings_seen(const void *state)
{
	const struct noop *n = state;

	return n->seen;
}

static void
noop_fini(void *state)
{
	struct noop *n = state;

	free(n->seen);
	free(n);
}

static int
noop_init(const struct mh_init *init, void **state)
{
	struct noop *n;
	size_t len = strlen(init->instance) + strlen(init->config_file) + 32;

	for (size_t i = 0; i < init->nsettings; i++) {
		const char *key = init->settings[i].key;

		if (strcmp(key, "greeting") != 0 && strcmp(key, "tag") != 0)
			return mh_init_error(init, key, "unknown key (noop "
			    "takes greeting and tag)");
		len += strlen(key) + strlen(init->settings[i].value) + 2;
	}
	if ((n = calloc(1, sizeof *n)) == NULL ||
	    (n->seen = malloc(len)) == NULL) {
		free(n);
		return mh_init_error(init, NULL, "out of memory");
	}
	snprintf(n->seen, len, "instance=%s file=%s\n", init->instance,
	    init->config_file);
	for (size_t i = 0; i < init->nsettings; i++) {
		strcat(n->seen, init->settings[i].key);
		strcat(n->seen, "=");
		strcat(n->seen, init->settings[i].value);
		strcat(n->seen, "\n");
	}
	*state = n;
	return 0;
}

static mh_status
noop_connect(mh_ctx *ctx, const char *hostname, const struct sockaddr *addr)
{
	return MH_CONTINUE;
}

static mh_status
noop_helo(mh_ctx *ctx, const char *name)
{
	return MH_CONTINUE;
}

static mh_status
noop_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	return MH_CONTINUE;
}

static mh_status
noop_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	return MH_CONTINUE;
}

static mh_status
noop_data(mh_ctx *ctx)
{
	return MH_CONTINUE;
}

static mh_status
noop_unknown(mh_ctx *ctx, const char *command)
{
	return MH_CONTINUE;
}

static mh_status
noop_header(mh_ctx *ctx, const char *name, const char *value)
{
	return MH_CONTINUE;
}

static mh_status
noop_eoh(mh_ctx *ctx)
{
	return MH_CONTINUE;
}

static mh_status
noop_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	return MH_CONTINUE;
}

static mh_status
noop_eom(mh_ctx *ctx)
{
	return MH_CONTINUE;
}

static void
noop_abort(mh_ctx *ctx)
{
}

static void
noop_close(mh_ctx *ctx)
{
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "noop",
	.version = "1.0",
	.description = "does nothing, in every callback",
	.list_keys = "tag",
	.init = noop_init,
	.fini = noop_fini,
	.connect = noop_connect,
	.helo = noop_helo,
	.envfrom = noop_envfrom,
	.envrcpt = noop_envrcpt,
	.data = noop_data,
	.unknown = noop_unknown,
	.header = noop_header,
	.eoh = noop_eoh,
	.body = noop_body,
	.eom = noop_eom,
	.abort = noop_abort,
	.close = noop_close,
};

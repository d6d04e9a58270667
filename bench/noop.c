/*
 * noop - a benchmark plugin for milterhost that implements every stage
 * from connect to eom and answers MH_CONTINUE, making no change.
 *
 * It is the milterhost counterpart of bare_milter: what a filter costs
 * when its own code costs nothing.  It takes no settings.
 */
#include <milterhost/plugin.h>

static int
noop_init(const struct mh_init *init, void **state)
{
	if (init->nsettings > 0)
		return mh_init_error(init, init->settings[0].key,
		    "unknown key (noop takes none)");
	*state = NULL;
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

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "noop",
	.version = "1.0",
	.description = "benchmark: continues at every stage, changes nothing",
	.init = noop_init,
	.connect = noop_connect,
	.helo = noop_helo,
	.envfrom = noop_envfrom,
	.envrcpt = noop_envrcpt,
	.data = noop_data,
	.header = noop_header,
	.eoh = noop_eoh,
	.body = noop_body,
	.eom = noop_eom,
};

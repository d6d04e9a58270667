/*
 * hdr - a benchmark plugin for milterhost that adds "X-Bench: milterhost"
 * at the end of every message, and does nothing else.
 *
 * It is the milterhost counterpart of "bare_milter -H": over TCP, its
 * end-of-message answer is a change and then the verdict, the answer that
 * stalls on Nagle's algorithm when the milter's socket lacks TCP_NODELAY.
 * It takes no settings.
 */
#include <milterhost/plugin.h>

static int
hdr_init(const struct mh_init *init, void **state)
{
	if (init->nsettings > 0)
		return mh_init_error(init, init->settings[0].key,
		    "unknown key (hdr takes none)");
	*state = NULL;
	return 0;
}

static mh_status
hdr_eom(mh_ctx *ctx)
{
	return mh_header_add(ctx, "X-Bench", "milterhost") == MH_OK ?
	    MH_CONTINUE : MH_FAIL;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "hdr",
	.version = "1.0",
	.description = "benchmark: adds one header at the end of the message",
	.actions = MH_ACT_ADDHDRS,
	.init = hdr_init,
	.eom = hdr_eom,
};

/*
 * gen - a test plugin built twice, as gen1.so and gen2.so (-DGEN=1, 2):
 * it adds the header "X-Gen: GEN" at the end of every message, so that a
 * test can tell which build of a plugin file served a message after the
 * file was replaced and milterhost reloaded.
 */
#include <milterhost/plugin.h>

#ifndef GEN
#define GEN 1
#endif
#define STR(x) #x
#define XSTR(x) STR(x)

static mh_status
gen_eom(mh_ctx *ctx)
{
	return mh_header_add(ctx, "X-Gen", XSTR(GEN)) == MH_OK ? MH_CONTINUE :
	    MH_FAIL;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "gen",
	.version = XSTR(GEN),
	.description = "adds X-Gen: its build number (test plugin)",
	.actions = MH_ACT_ADDHDRS,
	.eom = gen_eom,
};

/*
 * badmacro - a test plugin that asks for macros at the header stage,
 * where the MTA sends none.  The host must refuse it, naming the stage.
 */
#include <milterhost/plugin.h>

static mh_status
badmacro_header(mh_ctx *ctx, const char *name, const char *value)
{
	return MH_CONTINUE;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "badmacro",
	.description = "wants macros at the header stage",
	.macros = {
		[MH_STAGE_CONNECT] = "j {client_addr}",
		[MH_STAGE_HEADER] = "{header_macro}",
	},
	.header = badmacro_header,
};

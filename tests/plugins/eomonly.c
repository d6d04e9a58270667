/*
 * eomonly - a test plugin that implements only the eom callback, so that
 * a configuration of it alone must make milterhost ask the MTA not to send
 * any other stage (every SMFIP_NO* bit the MTA offers).  It logs
 * "rec eom" at notice level.  No settings.
 */
#include <milterhost/plugin.h>

static mh_status
eomonly_eom(mh_ctx *ctx)
{
	mh_log(ctx, MH_LOG_NOTICE, "rec eom");
	return MH_CONTINUE;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "eomonly",
	.version = "1.0",
	.description = "implements only eom (test plugin)",
	.eom = eomonly_eom,
};

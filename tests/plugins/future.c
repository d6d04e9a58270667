/*
 * future - a test plugin built for the next minor plugin ABI that uses
 * what that minor might add to the host: a function and a variable this
 * milterhost does not have.  dlopen() fails on them ("undefined symbol",
 * even with RTLD_LAZY for the variable); the host must refuse the plugin
 * for its version before it gets there.
 *
 * Built with -DFUTURE_NOW as future_now, it claims the host's own minor:
 * then dlopen()'s error is the right one, and the host must give it.
 */
#include <milterhost/plugin.h>

#ifdef FUTURE_NOW
#define FUTURE_MINOR MH_ABI_MINOR
#else
#define FUTURE_MINOR (MH_ABI_MINOR + 1)
#endif

/* Host interfaces of a future minor, unknown to this milterhost. */
int mh_future_call(mh_ctx *ctx);
extern const int mh_future_limit;

static mh_status
future_eom(mh_ctx *ctx)
{
	return mh_future_call(ctx) > mh_future_limit ? MH_REJECT : MH_CONTINUE;
}

const struct mh_plugin milterhost_plugin = {
	.abi_major = MH_ABI_MAJOR,
	.abi_minor = FUTURE_MINOR,
	.size = sizeof(struct mh_plugin),
	.name = "future",
	.description = "uses host functions of the next minor plugin ABI",
	.eom = future_eom,
};

/*
 * badabi - a test plugin built for a plugin ABI of the next major
 * version, which the host must refuse, naming both versions.
 */
#include <milterhost/plugin.h>

const struct mh_plugin milterhost_plugin = {
	.abi_major = MH_ABI_MAJOR + 1,
	.abi_minor = 0,
	.size = sizeof(struct mh_plugin),
	.name = "badabi",
	.description = "claims the next major plugin ABI",
};

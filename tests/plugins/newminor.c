/*
 * newminor - a test plugin built for a newer minor plugin ABI than the
 * host's.  It may use fields and host functions the host does not have,
 * so the host must refuse it, naming both versions.
 */
#include <milterhost/plugin.h>

const struct mh_plugin milterhost_plugin = {
	.abi_major = MH_ABI_MAJOR,
	.abi_minor = MH_ABI_MINOR + 1,
	.size = sizeof(struct mh_plugin),
	.name = "newminor",
	.description = "claims the next minor plugin ABI",
};

/*
 * elfdesc - read the ABI version of a plugin's descriptor from its file,
 * without loading it.
 *
 * The loader asks this before dlopen(): a plugin built for a newer minor
 * ABI may use host functions and variables this milterhost lacks, and
 * dlopen() would fail on them ("undefined symbol") before the descriptor
 * could say why.  Only files of the host's own ELF class and byte order
 * are read; for anything else the caller leaves the verdict to dlopen().
 */
#ifndef MILTERHOST_ELFDESC_H
#define MILTERHOST_ELFDESC_H

#include <stddef.h>
#include <stdint.h>

/* The first fields of struct mh_plugin, the same in every ABI version. */
struct elfdesc_version {
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;
};

/*
 * Read the version fields of the object symbol, defined in the dynamic
 * symbol table of the shared object path.  Returns 0 with them in *out,
 * or -1 with the reason in why (no such file, no ELF shared object this
 * host could load, malformed, no such symbol).
 */
int elfdesc_read(const char *path, const char *symbol,
		 struct elfdesc_version *out, char *why, size_t whylen);

#endif /* MILTERHOST_ELFDESC_H */

/*
 * netaddr - IP addresses and networks as configurations write them:
 * "192.0.2.1", "2001:db8::/32".
 *
 * Shared by the host's if_client condition (cond.c) and the bundled
 * plugins' exempt networks and address prefixes (plugins/support.c
 * links this file too): it uses only the C library, so that it can be
 * part of a plugin like any of the plugin's own files.
 */
#ifndef MILTERHOST_NETADDR_H
#define MILTERHOST_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* An address: family AF_INET (the first 4 bytes) or AF_INET6. */
struct netaddr {
	int family;
	uint8_t bytes[16];
};

/* A network: an address and a prefix length (0 to 32, or 0 to 128). */
struct netmask {
	struct netaddr addr;
	int bits;
};

/* The longest text netaddr_network() writes, with its NUL. */
#define NETADDR_NETWORK_MAX 64

/*
 * Parse an IPv4 or IPv6 address.  An IPv4-mapped IPv6 address
 * ("::ffff:192.0.2.1") is the IPv4 address: the same client, whichever
 * socket it came through.  false for NULL or anything else.
 */
bool netaddr_parse(const char *text, struct netaddr *out);

/*
 * Parse "ADDRESS" (the address alone: all its bits) or "ADDRESS/BITS".
 * Returns 0, or -1 with the reason in err.
 */
int netmask_parse(const char *text, struct netmask *out, char *err,
		  size_t errlen);

/* Is addr within mask?  Never across families. */
bool netmask_contains(const struct netmask *mask, const struct netaddr *addr);

/*
 * The network of addr with the prefix length for its family, as text:
 * "192.0.2.0/24", "2001:db8::/64", or the address alone for a full
 * prefix (32 or 128).  buf: NETADDR_NETWORK_MAX bytes.
 */
void netaddr_network(const struct netaddr *addr, int v4bits, int v6bits,
		     char *buf, size_t size);

#endif /* MILTERHOST_NETADDR_H */

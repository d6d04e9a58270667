/*
 * netaddr - IP addresses and networks.  See netaddr.h.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netaddr.h"

bool
netaddr_parse(const char *text, struct netaddr *out)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0xFF, 0xFF };

	memset(out, 0, sizeof *out);
	if (text == NULL)
		return false;
	if (inet_pton(AF_INET, text, out->bytes) == 1) {
		out->family = AF_INET;
		return true;
	}
	if (inet_pton(AF_INET6, text, out->bytes) != 1)
		return false;
	out->family = AF_INET6;
	if (memcmp(out->bytes, v4mapped, sizeof v4mapped) == 0) {
		memmove(out->bytes, out->bytes + 12, 4);
		memset(out->bytes + 4, 0, 12);
		out->family = AF_INET;
	}
	return true;
}

int
netmask_parse(const char *text, struct netmask *out, char *err,
	      size_t errlen)
{
	char addr[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(text, '/');
	size_t alen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	int max;
	char *end;
	long bits;

	memset(out, 0, sizeof *out);
	if (alen >= sizeof addr)
		goto bad;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	/* A network is written as it is: no IPv4-mapped spelling. */
	if (inet_pton(AF_INET, addr, out->addr.bytes) == 1)
		out->addr.family = AF_INET;
	else if (inet_pton(AF_INET6, addr, out->addr.bytes) == 1)
		out->addr.family = AF_INET6;
	else
		goto bad;
	max = out->addr.family == AF_INET ? 32 : 128;
	out->bits = max;
	if (slash == NULL)
		return 0;
	bits = strtol(slash + 1, &end, 10);
	if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || bits < 0 ||
	    bits > max) {
		snprintf(err, errlen, "'%s': the prefix length must be 0 to %d",
		    text, max);
		return -1;
	}
	out->bits = (int)bits;
	return 0;
bad:
	snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 address or a "
	    "network (ADDRESS/BITS)", text);
	return -1;
}

bool
netmask_contains(const struct netmask *mask, const struct netaddr *addr)
{
	int full = mask->bits / 8, rest = mask->bits % 8;

	if (mask->addr.family != addr->family)
		return false;
	if (memcmp(mask->addr.bytes, addr->bytes, (size_t)full) != 0)
		return false;
	return rest == 0 || ((mask->addr.bytes[full] ^ addr->bytes[full]) &
	    (0xFF << (8 - rest))) == 0;
}

void
netaddr_network(const struct netaddr *addr, int v4bits, int v6bits,
		char *buf, size_t size)
{
	int max = addr->family == AF_INET ? 32 : 128;
	int bits = addr->family == AF_INET ? v4bits : v6bits;
	struct netaddr net = *addr;
	char text[INET6_ADDRSTRLEN];

	if (bits < 0 || bits > max)
		bits = max;
	for (int i = 0; i < 16; i++) {
		int keep = bits - i * 8;

		if (keep <= 0)
			net.bytes[i] = 0;
		else if (keep < 8)
			net.bytes[i] &= (uint8_t)(0xFF << (8 - keep));
	}
	if (inet_ntop(addr->family, net.bytes, text, sizeof text) == NULL)
		text[0] = '\0';
	if (bits == max)
		snprintf(buf, size, "%s", text);
	else
		snprintf(buf, size, "%s/%d", text, bits);
}

/*
 * address - the addresses of an RFC 5322 address list, read from a
 * header value (To, Cc, Bcc, From, Return-Path), for milterhost-replay's
 * envelope when the command line gives none.
 *
 * Forgiving, as a mail client is: display names, comments, groups and
 * the blanks and line breaks of folding are skipped; each mailbox yields
 * the address between its angle brackets, else its bare address.  Not a
 * validator: what is not an address is passed on as found.
 */
#ifndef MILTERHOST_ADDRESS_H
#define MILTERHOST_ADDRESS_H

/*
 * Called for each address, in order: the address without angle brackets,
 * "" for "<>" (Return-Path's null sender).  Return 0 to go on, anything
 * else to stop the walk with that value.
 */
typedef int (*address_fn)(void *arg, const char *address);

/*
 * Walk the addresses of the list value.  Returns 0 at its end, fn's
 * value if fn stopped the walk, -1 if out of memory.
 */
int address_list(const char *value, address_fn fn, void *arg);

#endif /* MILTERHOST_ADDRESS_H */

/*
 * deliver - a message as the MTA would deliver it, after the chain's
 * changes, for milterhost-replay -o.
 *
 * The header changes of the list are applied in its order, as Postfix's
 * cleanup applies them to its queue file: an added header goes to the
 * end, an inserted one before the header at its index (0 the top, past
 * the end appends), a change or deletion to the index-th header of that
 * name (from 1, counted among the headers there are at that moment; a
 * change of a header that is not there adds it, an empty value deletes).
 * A new value follows "Name:" and, unless the MTA was told the plugins
 * handle the leading space (HDR_LEADSPC), one space.  The body is the one
 * received, read again from the file, or the replacement.  Envelope
 * changes do not touch the message (the trace lists them).  Everything
 * is written with the line ends of the file's first line, so that
 * unchanged parts of a file with consistent line ends are copied byte
 * for byte; no header of the MTA's own (Received, Return-Path) is added.
 */
#ifndef MILTERHOST_DELIVER_H
#define MILTERHOST_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "message.h"
#include "mods.h"

/* Write msg with mods applied to out.  Returns 0, or -1 with the reason
 * in err. */
int deliver_write(FILE *out, struct message *msg, const struct mod_list *mods,
		  bool leadspc, char *err, size_t errlen);

#endif /* MILTERHOST_DELIVER_H */

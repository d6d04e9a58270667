/*
 * runfiles - the files milterhost keeps on disk while it runs: its pidfile
 * and a unix socket's path.
 *
 * Both are made as the user milterhost starts as (root, usually), before
 * it takes the ini's user and group, and removed at a stop by that user:
 * so removing needs the file's directory to be writable by the ini's user
 * (as /var/spool/postfix/milterhost is when made as the README says).
 * After the drop, milterhost warns at start-up about a file it will not be
 * able to remove, except in a runtime directory systemd removes itself.
 *
 * A socket path is taken over only from a dead server: a socket file no
 * one listens on (left by a crash) is replaced, one a server still listens
 * on is refused as in use, and anything that is not a socket is refused
 * and left alone.  At a stop a path is removed only while it is still the
 * file milterhost made (not that of a milterhost started since).
 */
#ifndef MILTERHOST_RUNFILES_H
#define MILTERHOST_RUNFILES_H

#include <stddef.h>

#include "config.h"

/*
 * Before the socket at path is opened: 0 if there is no file there or a
 * stale socket (which the opening replaces); -1 with the reason in err if
 * the path is in use, is not a socket, or cannot be looked at.
 */
int runfiles_check_socket(const char *path, char *err, size_t errlen);

/*
 * The socket at path was just opened: give it cfg's socket_mode and group
 * and remember it.  Returns 0, or -1 with the reason in err.
 */
int runfiles_socket_made(const struct config *cfg, const char *path,
    char *err, size_t errlen);

/*
 * Write this process's id to path (never through a symbolic link, only
 * into a regular file) and remember it.  Returns 0, or -1 with the reason
 * in err.
 */
int runfiles_write_pidfile(const char *path, char *err, size_t errlen);

/* After the privilege drop: warn about a file that cannot be removed at a
 * stop. */
void runfiles_check_removable(void);

/* Remove the socket's path and the pidfile, each if it is still ours. */
void runfiles_remove_socket(void);
void runfiles_remove_pidfile(void);

#endif /* MILTERHOST_RUNFILES_H */

/*
 * dlfile - open a plugin file with dlopen() as the file it is now.
 *
 * glibc's dlopen() hands back the object already loaded under the same
 * path string, even when a new build was renamed over that path since: a
 * reload would keep running the old code.  dlfile_open therefore opens
 * the file through a name of its own for each file (device and inode): a
 * symbolic link, made in a private directory just for the call.  The same
 * file gets the same name, so glibc shares its object between plugin
 * sets; a replaced file is a new inode, a new name, a new object.  An
 * inode cannot be reused while the old object maps its file.
 *
 * Plugin files must be replaced by rename (install(1) does), never
 * overwritten in place: a running object's code would change under it.
 */
#ifndef MILTERHOST_DLFILE_H
#define MILTERHOST_DLFILE_H

#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/*
 * Make the private directory now and give it to owner and group: called
 * before milterhost drops its privileges, since the directory's parent
 * ($RUNTIME_DIRECTORY, made by systemd for root) may not be writable by
 * the user it becomes.  Without this call the first dlfile_open() makes
 * it as whoever runs.  Returns 0, or -1 with the reason in err.
 */
int dlfile_prepare(uid_t owner, gid_t group, char *err, size_t errlen);

/*
 * dlopen(RTLD_NOW | RTLD_LOCAL) the file path, whose stat is st.  Returns
 * the handle, or NULL with the reason in err (dlerror()'s text, naming
 * path).  Not thread-safe: plugin sets are loaded by one thread at a time.
 */
void *dlfile_open(const char *path, const struct stat *st, char *err,
		  size_t errlen);

#endif /* MILTERHOST_DLFILE_H */

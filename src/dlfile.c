/*
 * dlfile - open a plugin file with dlopen() as the file it is now.  See
 * dlfile.h.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlfile.h"

/* The private directory of the links, made at the first call. */
static char dir[PATH_MAX];

static void
remove_dir(void)
{
	if (dir[0] != '\0')
		rmdir(dir);
}

static int
make_dir(char *err, size_t errlen)
{
	const char *base = getenv("RUNTIME_DIRECTORY");

	if (dir[0] != '\0')
		return 0;
	if (base == NULL || *base == '\0' || strchr(base, ':') != NULL)
		base = getenv("TMPDIR");
	if (base == NULL || *base == '\0')
		base = "/tmp";
	if ((size_t)snprintf(dir, sizeof dir, "%s/milterhost-so.XXXXXX",
	    base) >= sizeof dir || mkdtemp(dir) == NULL) {
		snprintf(err, errlen, "cannot make a directory in %s for "
		    "loading plugins: %s", base, strerror(errno));
		dir[0] = '\0';
		return -1;
	}
	atexit(remove_dir);
	return 0;
}

int
dlfile_prepare(uid_t owner, gid_t group, char *err, size_t errlen)
{
	if (make_dir(err, errlen) < 0)
		return -1;
	if (chown(dir, owner, group) < 0) {
		snprintf(err, errlen, "cannot give %s to the user milterhost "
		    "runs as: %s", dir, strerror(errno));
		return -1;
	}
	return 0;
}

/* dlerror()'s text with the link's name replaced by the file's path. */
static void
report(const char *link, const char *path, char *err, size_t errlen)
{
	const char *text = dlerror();
	size_t n = strlen(link);

	if (text == NULL)
		text = "unknown error";
	if (strncmp(text, link, n) == 0)
		snprintf(err, errlen, "%s%s", path, text + n);
	else
		snprintf(err, errlen, "%s", text);
}

void *
dlfile_open(const char *path, const struct stat *st, char *err,
    size_t errlen)
{
	char real[PATH_MAX], link[PATH_MAX + 64];
	void *handle;

	if (make_dir(err, errlen) < 0)
		return NULL;
	if (realpath(path, real) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	snprintf(link, sizeof link, "%s/%llx-%llx.so", dir,
	    (unsigned long long)st->st_dev, (unsigned long long)st->st_ino);
	if (symlink(real, link) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot link %s: %s", link,
		    strerror(errno));
		return NULL;
	}
	handle = dlopen(link, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL)
		report(link, path, err, errlen);
	/* glibc finds a loaded object by its name, not through the link. */
	unlink(link);
	return handle;
}

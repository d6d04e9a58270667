/*
 * runfiles - the pidfile and a unix socket's path.  See runfiles.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "runfiles.h"

/* A file milterhost made: its path, and what the path was then. */
struct runfile {
	const char *what;
	char *path;
	struct stat made;
};

static struct runfile socket_file = { "socket", NULL, { 0 } };
static struct runfile pid_file = { "pidfile", NULL, { 0 } };

int
runfiles_check_socket(const char *path, char *err, size_t errlen)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc, saved;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s exists and is not a socket: left "
		    "alone (remove it or choose another path)", path);
		return -1;
	}
	if (strlen(path) >= sizeof addr.sun_path) {
		snprintf(err, errlen, "%s: path too long for a unix socket",
		    path);
		return -1;
	}
	strcpy(addr.sun_path, path);
	/* Non-blocking: a live server with a full backlog answers EAGAIN
	 * instead of keeping us waiting. */
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	rc = connect(fd, (struct sockaddr *)&addr, sizeof addr);
	saved = errno;
	close(fd);
	if (rc == 0 || saved == EAGAIN) {
		snprintf(err, errlen, "%s is in use: a server listens on it "
		    "(another milterhost?)", path);
		return -1;
	}
	if (saved != ECONNREFUSED) {
		snprintf(err, errlen, "%s: cannot tell whether the socket is "
		    "in use: %s", path, strerror(saved));
		return -1;
	}
	log_msg(LOG_NOTICE, "%s: replacing a stale socket (no one listens on "
	    "it)", path);
	return 0;
}

/* Remember that path is the file f now. */
static int
remember(struct runfile *f, const char *path, const struct stat *st,
    char *err, size_t errlen)
{
	free(f->path);
	if ((f->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f->made = *st;
	return 0;
}

int
runfiles_socket_made(const struct config *cfg, const char *path, char *err,
    size_t errlen)
{
	struct stat st;

	if (cfg->socket_mode >= 0 && chmod(path, (mode_t)cfg->socket_mode) < 0) {
		snprintf(err, errlen, "chmod %s: %s", path, strerror(errno));
		return -1;
	}
	if (cfg->group != NULL) {
		struct group *gr = getgrnam(cfg->group);

		if (gr == NULL || chown(path, (uid_t)-1, gr->gr_gid) < 0) {
			snprintf(err, errlen, "cannot give %s to group %s: %s",
			    path, cfg->group, gr ? strerror(errno) :
			    "no such group");
			return -1;
		}
	}
	if (lstat(path, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return remember(&socket_file, path, &st, err, errlen);
}

int
runfiles_write_pidfile(const char *path, char *err, size_t errlen)
{
	char line[32];
	struct stat st;
	int fd, n;

	/* Its directory may belong to the user milterhost runs as: never
	 * follow a link planted there into another file. */
	if ((fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0644)) < 0) {
		snprintf(err, errlen, "pidfile %s: %s", path,
		    errno == ELOOP ? "is a symbolic link" : strerror(errno));
		return -1;
	}
	n = snprintf(line, sizeof line, "%ld\n", (long)getpid());
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "pidfile %s: not a regular file", path);
		close(fd);
		return -1;
	}
	if (ftruncate(fd, 0) < 0 || write(fd, line, (size_t)n) != n) {
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (close(fd) < 0) {
		snprintf(err, errlen, "pidfile %s: %s", path, strerror(errno));
		return -1;
	}
	return remember(&pid_file, path, &st, err, errlen);
}

/* Whether dir is one of the runtime directories systemd made for the
 * service ($RUNTIME_DIRECTORY, colon-separated): systemd removes it. */
static bool
systemd_removes(const char *dir)
{
	const char *list = getenv("RUNTIME_DIRECTORY"), *p, *end;
	size_t len = strlen(dir);

	for (p = list; p != NULL && *p != '\0'; p = *end ? end + 1 : end) {
		end = p + strcspn(p, ":");
		if ((size_t)(end - p) == len && strncmp(p, dir, len) == 0)
			return true;
	}
	return false;
}

static void
check_removable(const struct runfile *f)
{
	struct passwd *pw;
	char *copy, *dir;
	int saved;

	if (f->path == NULL || (copy = strdup(f->path)) == NULL)
		return;
	dir = dirname(copy);
	if (!systemd_removes(dir) && access(dir, W_OK | X_OK) < 0) {
		saved = errno;
		pw = getpwuid(getuid());
		log_msg(LOG_WARNING, "%s %s cannot be removed at a stop: its "
		    "directory %s is not writable by user %s (%s); make the "
		    "directory the user's", f->what, f->path, dir,
		    pw ? pw->pw_name : "?", strerror(saved));
	}
	free(copy);
}

void
runfiles_check_removable(void)
{
	check_removable(&socket_file);
	check_removable(&pid_file);
}

static void
remove_file(struct runfile *f)
{
	struct stat now;

	if (f->path == NULL)
		return;
	/* Not the file of a milterhost started since. */
	if (lstat(f->path, &now) == 0 && now.st_dev == f->made.st_dev &&
	    now.st_ino == f->made.st_ino && unlink(f->path) < 0)
		log_msg(LOG_WARNING, "cannot remove %s %s: %s", f->what,
		    f->path, strerror(errno));
	free(f->path);
	f->path = NULL;
}

void
runfiles_remove_socket(void)
{
	remove_file(&socket_file);
}

void
runfiles_remove_pidfile(void)
{
	remove_file(&pid_file);
}

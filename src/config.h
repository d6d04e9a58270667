/*
 * config - read milterhost's ini file.
 *
 * config_load() parses the file with libinih and returns the host settings
 * of [milterhost] and the plugin instances ([plugin:NAME] sections) in file
 * order.  It knows nothing of plugins: the keys that are not host keys are
 * kept, with their line numbers, for the plugin's init to judge.
 *
 * Errors name the file, the line and the key.  Lines longer than libinih's
 * limit are an error, not silently split; a host key given twice, or
 * continued by an indented line, is an error.
 */
#ifndef MILTERHOST_CONFIG_H
#define MILTERHOST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "cond.h"
#include "kv.h"
#include "score.h"

/* What the host does when a plugin's callback fails. */
enum on_error {
	ON_ERROR_TEMPFAIL = 0,
	ON_ERROR_CONTINUE,
	ON_ERROR_ACCEPT,
	ON_ERROR_REJECT
};

enum log_destination {
	LOG_DEST_AUTO = 0, /* stderr in the foreground, syslog otherwise */
	LOG_DEST_SYSLOG,
	LOG_DEST_STDERR
};

/* One plugin key as written in the file. */
struct config_setting {
	char *key;
	char *value;
	int line;
	bool continuation; /* an indented line continuing the key above */
};

/* One [plugin:NAME] section. */
struct config_instance {
	char *name;   /* NAME */
	char *module; /* as written: a file name in plugin_dir or a path */
	int line;     /* line of the section header */
	int module_line;
	bool enabled;
	enum on_error on_error;
	bool on_error_set; /* false: inherits the host default */
	bool dry_run;
	int slow_ms;       /* -1: the host's slow_ms */
	struct config_setting *settings;
	size_t nsettings;
	/* The condition keys (if_*), as written, and compiled. */
	struct config_setting *conds;
	size_t nconds;
	struct cond *cond;  /* NULL: none; shared with the plugin sets */
};

struct config {
	char *file;        /* the path given to config_load */
	char *socket;      /* libmilter connection spec */
	char *plugin_dir;  /* absolute, or relative to the config file's dir */
	int timeout;       /* libmilter I/O timeout, seconds */
	int stop_timeout;  /* how long a stop waits for open sessions, s */
	int backlog;       /* listen backlog, 0 = libmilter's default */
	char *user;        /* NULL: keep the current user */
	char *group;       /* NULL: the user's primary group */
	int socket_mode;   /* unix socket permissions, -1 = umask */
	char *pidfile;     /* NULL: none */
	int log_level;     /* syslog priority, LOG_ERR..LOG_DEBUG */
	int log_facility;  /* syslog facility, LOG_MAIL by default */
	enum log_destination log_destination;
	enum on_error on_error; /* default for instances */
	bool autoload;     /* load the other *.so of plugin_dir too */
	bool strict_modes; /* refuse plugin files others could replace */
	int autoload_line; /* of the autoload key, for errors; 0 if none */
	struct score_policy score; /* score_* keys */
	int slow_ms;       /* log callbacks slower than this; 0: never */
	char *metrics_listen; /* "HOST:PORT" of /metrics, or NULL: none */
	struct sockaddr_storage metrics_addr; /* the same, parsed */
	/* kv, kv_timeout_ms, kv_memory_max_bytes: the plugins' store. */
	struct kv_spec kv;
	struct config_instance *instances;
	size_t ninstances;
};

/*
 * Parse path.  Returns a config to free with config_free, or NULL with a
 * message of the form "FILE:LINE: ..." in err (which is always set on
 * failure).
 */
struct config *config_load(const char *path, char *err, size_t errlen);
void config_free(struct config *cfg);

/* Parse the value of an on_error key; returns -1 if it is not one. */
int config_parse_on_error(const char *value, enum on_error *out);
const char *config_on_error_name(enum on_error e);

/*
 * The plugin directory as a usable path: plugin_dir if absolute, else
 * joined to the directory of the config file.  Caller frees.
 */
char *config_plugin_dir(const struct config *cfg);

#endif /* MILTERHOST_CONFIG_H */

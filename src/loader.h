/*
 * loader - turn the plugin sections of a config into a plugin set.
 *
 * A plugin set is the ordered chain of instances that sessions run.  Each
 * instance is one [plugin:NAME] section: a module (one loaded .so, shared
 * by all instances of it), a private copy of the module's descriptor, the
 * state its init returned and the host keys of the section.
 *
 * plugin_set_load() opens every module, checks its descriptor and ABI
 * version, inits every enabled instance in chain order (autoloaded modules
 * after the listed ones, in file-name order), and on any failure finis
 * what it did and reports why with the config file, line and key.
 *
 * Sets are reference counted so that a connection can keep the set it
 * started with: plugin_set_release() of the last reference finis the
 * instances and unloads the modules.
 */
#ifndef MILTERHOST_LOADER_H
#define MILTERHOST_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <milterhost/plugin.h>

#include "config.h"

struct module {
	char *path;           /* the file as opened */
	void *handle;         /* dlopen handle, NULL for built-in descriptors */
	struct mh_plugin desc; /* the plugin's descriptor, zero-extended */
	unsigned refs;        /* instances using it */
};

struct instance {
	char *name;          /* NAME of [plugin:NAME] */
	struct module *module;
	const struct mh_plugin *desc; /* == &module->desc */
	void *state;         /* what init returned */
	/*
	 * What the instance needs: the descriptor's declarations and what
	 * its init added (ABI 1.1, mh_declare_*).  macros[stage] is a
	 * space-separated list, or NULL.
	 */
	unsigned long actions; /* MH_ACT_* */
	unsigned long flags;   /* MH_WANT_* */
	char *macros[MH_STAGE_COUNT];
	unsigned observes;     /* bit 1 << stage: only observes there */
	unsigned unused;       /* bit 1 << stage: not called there (1.3) */
	enum on_error on_error;
	bool dry_run;
	struct cond *cond;   /* when it takes part (if_* keys), or NULL */
	uint64_t slow_ns;    /* a callback slower is logged; 0: never */
	void *host_data;     /* the daemon's (its metrics), or NULL */
	/* The namespace of its mh_kv_* keys (ABI 1.4), or NULL: its name. */
	char *kv_ns;
	size_t index;        /* position in the chain */
};

struct plugin_set {
	struct instance *instances;
	size_t ninstances;
	size_t instances_cap; /* room in instances */
	struct module **modules;
	size_t nmodules;
	size_t modules_cap;  /* room in modules */
	unsigned refs;       /* atomic */
	struct score_policy score; /* [milterhost]'s score_* keys */
	/*
	 * The key-value store of mh_kv_*, borrowed: it belongs to the
	 * program (the daemon keeps one across reloads, kv.h) and outlives
	 * every set it is given to.  NULL: mh_kv_* answer MH_E_UNAVAILABLE.
	 */
	struct kv_store *kv;
};

/*
 * Load and init every enabled instance of cfg.  Returns a set holding one
 * reference, or NULL with the reason in err.
 */
struct plugin_set *plugin_set_load(const struct config *cfg, char *err,
				   size_t errlen);

/*
 * Build a set by hand, from descriptors linked into the program (for the
 * offline tester and the unit tests).  plugin_set_add copies desc the way
 * loading a module does, validates it, calls init with the given settings
 * and appends the instance.  Returns 0, or -1 with the reason in err.
 */
struct plugin_set *plugin_set_new(void);
int plugin_set_add(struct plugin_set *set, const char *name,
		   const struct mh_plugin *desc,
		   const struct mh_setting *settings, size_t nsettings,
		   enum on_error on_error, bool dry_run, char *err,
		   size_t errlen);

/* Take and drop references; the last release finis and unloads. */
struct plugin_set *plugin_set_retain(struct plugin_set *set);
void plugin_set_release(struct plugin_set *set);

/*
 * Check a descriptor of size bytes as found in a module: ABI version,
 * required fields, known action and flag bits, macro stages.  On success
 * copy it, zero-extended, into *out and return 0; else -1 with the reason
 * in err.
 */
int plugin_check_descriptor(const struct mh_plugin *found, struct mh_plugin *out,
			    char *err, size_t errlen);

/*
 * The name of the instance whose init or fini the calling thread runs, or
 * NULL: mh_log(NULL, ...) from there tags its line with it.
 */
const char *loader_running_instance(void);

/*
 * Does the instance take stage's events: is its callback there called?
 * Only if the descriptor has it and init did not declare the stage unused
 * (ABI 1.3).  Whatever asks which stages to run, negotiate, show or trace
 * for an instance asks this, not its descriptor.
 */
bool instance_takes(const struct instance *inst, mh_stage stage);

#endif /* MILTERHOST_LOADER_H */

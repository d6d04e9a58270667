/*
 * loader - turn the plugin sections of a config into a plugin set.  See
 * loader.h, and doc/design.md "Plugin ABI".
 *
 * Loading one instance goes: resolve the section's module value to a file,
 * read the ABI version of its descriptor from the file, open the file
 * (once per file: instances of one module share it), find and check its
 * descriptor, check the section's keys against the descriptor's list
 * keys, and call init.  The first failure stops everything: what was
 * inited is finied, what was opened is closed, and the message names the
 * config file, the line, the section and the key.
 *
 * The settings a plugin's init sees are the section's non-host keys in
 * file order.  A key given twice, or continued by an indented line, is an
 * error unless the descriptor lists it in list_keys; for a list key each
 * occurrence and each continuation line is one value.  An empty value
 * directly followed by continuation lines ("key =" then one value per
 * indented line) is only the list's head and is not passed on.
 *
 * With autoload, every other "*.so" of the plugin directory follows the
 * listed instances, in strcmp() order of the file names, as an instance
 * named after the file (without ".so"), with no settings and the host's
 * on_error.  A file that any section names as its module, even a disabled
 * section, is skipped: disabling an instance must switch it off.  Errors
 * of autoloaded instances, which have no section, give the line of the
 * autoload key.
 *
 * Nothing is found by a scan of all sections, instances or modules, which
 * would make loading quadratic in the number of sections: the loader keeps
 * tsearch trees of the modules it opened and, for autoload, of the files
 * the sections name and of the instance names.
 *
 * This file also holds the host functions of init time: mh_init_error,
 * the mh_declare_* family and mh_parse_bool.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <search.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "array.h"
#include "dlfile.h"
#include "elfdesc.h"
#include "kv.h"
#include "loader.h"
#include "stage.h"
#include "log.h"

/*
 * The smallest descriptor accepted: everything up to the last field of ABI
 * 1.0 (close).  Later minor versions only append fields after it, so this
 * stays the minimum for good; the descriptor of a plugin built against an
 * older minor is zero-extended to the host's, and the fields it lacks read
 * as 0 or NULL ("not implemented").
 */
#define DESC_SIZE_1_0 (offsetof(struct mh_plugin, close) + \
	sizeof(((struct mh_plugin *)0)->close))

/* Every action and protocol-wish bit ABI 1.0 knows. */
#define KNOWN_ACTIONS (MH_ACT_ADDHDRS | MH_ACT_CHGBODY | MH_ACT_ADDRCPT | \
	MH_ACT_DELRCPT | MH_ACT_CHGHDRS | MH_ACT_QUARANTINE | MH_ACT_CHGFROM | \
	MH_ACT_ADDRCPT_PAR)
#define KNOWN_FLAGS (MH_WANT_HDR_LEADSPC | MH_WANT_REJECTED_RCPTS | \
	MH_WANT_EARLIER_CHANGES)

/* Longest macro name (without braces) the chain engine will ask for. */
#define MACRO_NAME_MAX 60

#define SO_SUFFIX ".so"
#define BUILTIN_PATH "(builtin)"

/*
 * One call of a plugin's init.  The plugin gets &call->init; mh_init_error
 * finds the rest from it.
 */
struct init_call {
	struct mh_init init;
	/* The instance's declarations so far (see struct instance). */
	unsigned long actions;
	unsigned long flags;
	char *macros[MH_STAGE_COUNT];
	unsigned observes;
	unsigned unused;
	char *kv_ns;            /* mh_declare_kv_namespace's, or NULL */
	bool bad_declaration;   /* an mh_declare_* call was refused */
	bool reported;          /* mh_init_error was called */
	bool has_key;
	char key[256];          /* the key it named */
	const char *key_ptr;    /* as passed: settings[i].key names line i */
	char message[1024];
};

/*
 * The instance whose init or fini this thread is running, for mh_log with
 * a NULL ctx (context.c): its lines are tagged as a callback's are.  Per
 * thread, so that a plugin's own thread logging meanwhile is not tagged,
 * and a last release finishing a set on another thread tags its own.
 */
static _Thread_local const char *running_instance;

const char *
loader_running_instance(void)
{
	return running_instance;
}

/*
 * Calls of init and fini never overlap, as plugin.h promises: a reload
 * inits on the service thread while the last session of an older set may
 * fini it on its own.  Rare and short: one lock for the process.
 */
static pthread_mutex_t lifecycle_lock = PTHREAD_MUTEX_INITIALIZER;

static void
lifecycle_enter(const char *instance)
{
	pthread_mutex_lock(&lifecycle_lock);
	running_instance = instance;
}

static void
lifecycle_leave(void)
{
	running_instance = NULL;
	pthread_mutex_unlock(&lifecycle_lock);
}

static struct init_call *
init_call_of(const struct mh_init *init)
{
	return (struct init_call *)((char *)init -
	    offsetof(struct init_call, init));
}

/* ---- host functions for init ------------------------------------------ */

/*
 * The first report wins: it is the most precise about the cause.  Without
 * the init it came with, the report cannot reach the config error, so it
 * is logged instead.
 */
int
mh_init_error(const struct mh_init *init, const char *key,
	      const char *fmt, ...)
{
	struct init_call *call;
	va_list ap;

	if (fmt == NULL)
		fmt = "(no message: mh_init_error called with a NULL format)";
	if (init == NULL) {
		va_start(ap, fmt);
		log_vmsg_prefixed(LOG_ERR, "mh_init_error called with a NULL "
		    "init; its message: ", fmt, ap);
		va_end(ap);
		return -1;
	}
	call = init_call_of(init);
	if (call->reported)
		return -1;
	call->reported = true;
	call->has_key = key != NULL && *key != '\0';
	if (call->has_key)
		snprintf(call->key, sizeof call->key, "%s", key);
	call->key_ptr = key;
	va_start(ap, fmt);
	vsnprintf(call->message, sizeof call->message, fmt, ap);
	va_end(ap);
	return -1;
}

int
mh_parse_bool(const char *value, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	if (value == NULL || out == NULL) {
		log_msg(LOG_ERR, "mh_parse_bool called with a NULL %s: refused",
		    value == NULL ? "value" : "result pointer");
		return -1;
	}
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (strcasecmp(value, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(value, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return -1;
}

/* ---- descriptors ------------------------------------------------------- */

/* A macro name as MTAs write it: "j", "{auth_type}", or bare "auth_type". */
static bool
valid_macro_name(const char *tok, size_t len)
{
	if (len >= 2 && tok[0] == '{' && tok[len - 1] == '}') {
		tok++;
		len -= 2;
	}
	if (len == 0 || len > MACRO_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!(tok[i] >= 'a' && tok[i] <= 'z') &&
		    !(tok[i] >= 'A' && tok[i] <= 'Z') &&
		    !(tok[i] >= '0' && tok[i] <= '9') && tok[i] != '_')
			return false;
	return true;
}

/*
 * Check a list of macro names for stage st; who says who declared it.
 * Returns 0, or -1 with the reason in err.
 */
static int
check_macro_list(const char *who, int st, const char *p, char *err,
		 size_t errlen)
{
	if ((unsigned)st >= MH_STAGE_COUNT ||
	    stage_info(st)->macros == NO_MACROS) {
		snprintf(err, errlen, "%s declares macros for stage %s, where "
		    "the MTA sends none (macros are sent at connect, helo, "
		    "envfrom, envrcpt, data, eoh and eom)", who,
		    stage_name(st));
		return -1;
	}
	while (*p != '\0') {
		size_t n;

		p += strspn(p, " \t");
		n = strcspn(p, " \t");
		if (n > 0 && !valid_macro_name(p, n)) {
			snprintf(err, errlen, "%s: bad macro name '%.*s' for "
			    "stage %s: use letters, digits and '_' (at most "
			    "%d), optionally in braces", who, (int)n, p,
			    stage_name(st), MACRO_NAME_MAX);
			return -1;
		}
		p += n;
	}
	return 0;
}

static int
check_macros(const struct mh_plugin *d, char *err, size_t errlen)
{
	char who[128];

	snprintf(who, sizeof who, "plugin '%s'", d->name);
	for (int st = 0; st < MH_STAGE_COUNT; st++)
		if (d->macros[st] != NULL &&
		    check_macro_list(who, st, d->macros[st], err, errlen) < 0)
			return -1;
	return 0;
}

/* The fields of a copied descriptor. */
static int
check_fields(const struct mh_plugin *d, char *err, size_t errlen)
{
	if (d->name == NULL || *d->name == '\0') {
		snprintf(err, errlen, "the plugin's descriptor has no name");
		return -1;
	}
	if (d->actions & ~KNOWN_ACTIONS) {
		snprintf(err, errlen, "plugin '%s' declares unknown actions "
		    "0x%lx (known: 0x%lx)", d->name,
		    d->actions & ~KNOWN_ACTIONS, KNOWN_ACTIONS);
		return -1;
	}
	if (d->flags & ~KNOWN_FLAGS) {
		snprintf(err, errlen, "plugin '%s' declares unknown flags "
		    "0x%lx (known: 0x%lx)", d->name, d->flags & ~KNOWN_FLAGS,
		    KNOWN_FLAGS);
		return -1;
	}
	return check_macros(d, err, errlen);
}

/* Can this host run a plugin built for ABI major.minor? */
static int
check_version(unsigned major, unsigned minor, char *err, size_t errlen)
{
	if (major != MH_ABI_MAJOR || minor > MH_ABI_MINOR) {
		snprintf(err, errlen, "built for plugin ABI %u.%u, this "
		    "milterhost supports %d.%d (major must match, minor up to "
		    "%d)", major, minor, MH_ABI_MAJOR, MH_ABI_MINOR,
		    MH_ABI_MINOR);
		return -1;
	}
	return 0;
}

/*
 * Only the version fields are read before the version is known to be
 * ours: a descriptor of another major version may be laid out otherwise.
 */
int
plugin_check_descriptor(const struct mh_plugin *found, struct mh_plugin *out,
			char *err, size_t errlen)
{
	struct mh_plugin copy;

	if (check_version(found->abi_major, found->abi_minor, err, errlen) < 0)
		return -1;
	if (found->size < DESC_SIZE_1_0) {
		snprintf(err, errlen, "descriptor of %u bytes is smaller than "
		    "ABI 1.0's %zu: not built with MH_PLUGIN_ABI?",
		    found->size, (size_t)DESC_SIZE_1_0);
		return -1;
	}
	if (found->size > sizeof(struct mh_plugin)) {
		snprintf(err, errlen, "descriptor of %u bytes is larger than "
		    "ABI %d.%d allows (%zu)", found->size, MH_ABI_MAJOR,
		    MH_ABI_MINOR, sizeof(struct mh_plugin));
		return -1;
	}
	memset(&copy, 0, sizeof copy);
	memcpy(&copy, found, found->size);
	if (check_fields(&copy, err, errlen) < 0)
		return -1;
	*out = copy;
	return 0;
}

/* ---- arrays and trees ------------------------------------------------- */

/*
 * Empty a tsearch tree, freeing its keys if they belong to it.  POSIX has
 * no tdestroy(); the first member of a node is the pointer to its key.
 */
static void
tree_free(void **root, int (*compare)(const void *, const void *),
	  bool free_keys)
{
	while (*root != NULL) {
		void *key = *(void **)*root;

		tdelete(key, root, compare);
		if (free_keys)
			free(key);
	}
}

static int
compare_strings(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* ---- declarations of init (ABI 1.1; unused stages 1.3) ------------- */

/*
 * A refused declaration is a plugin bug: it is reported like an init
 * error and fails the instance's load even if init then succeeds, for an
 * instance that runs without what it needs would fail in every session.
 */
static int
refuse_declaration(const struct mh_init *init, const char *fn,
		   const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
refuse_declaration(const struct mh_init *init, const char *fn,
		   const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	if (init == NULL) {
		log_msg(LOG_ERR, "%s called with a NULL init: refused", fn);
		return MH_E_INVALID;
	}
	init_call_of(init)->bad_declaration = true;
	mh_init_error(init, NULL, "%s: %s", fn, why);
	return MH_E_INVALID;
}

int
mh_declare_actions(const struct mh_init *init, unsigned long actions)
{
	if (init == NULL || (actions & ~KNOWN_ACTIONS) != 0)
		return refuse_declaration(init, __func__, "unknown actions "
		    "0x%lx (known: 0x%lx)", actions & ~KNOWN_ACTIONS,
		    KNOWN_ACTIONS);
	init_call_of(init)->actions |= actions;
	return MH_OK;
}

int
mh_declare_wishes(const struct mh_init *init, unsigned long flags)
{
	if (init == NULL || (flags & ~KNOWN_FLAGS) != 0)
		return refuse_declaration(init, __func__, "unknown wishes "
		    "0x%lx (known: 0x%lx)", flags & ~KNOWN_FLAGS, KNOWN_FLAGS);
	init_call_of(init)->flags |= flags;
	return MH_OK;
}

int
mh_declare_observer(const struct mh_init *init, mh_stage stage)
{
	if (init == NULL || (unsigned)stage >= MH_STAGE_COUNT ||
	    stage_info(stage)->nr_bit == 0)
		return refuse_declaration(init, __func__, "stage %s: an "
		    "instance can only observe at connect, helo, envfrom, "
		    "envrcpt, data, unknown, header, eoh and body",
		    stage_name(stage));
	init_call_of(init)->observes |= 1U << stage;
	return MH_OK;
}

/* A stage for a refusal: its name, or the number that is no stage. */
static const char *
stage_label(mh_stage stage, char *buf, size_t size)
{
	if ((unsigned)stage < MH_STAGE_COUNT)
		return stage_name(stage);
	snprintf(buf, size, "%d", (int)stage);
	return buf;
}

/*
 * Only a stage the MTA can be asked not to send may go unused (ABI 1.3):
 * eom, where the message is decided and changed, abort and close always
 * come.  The bit is applied when the instance is made (instance_init()).
 */
int
mh_declare_unused(const struct mh_init *init, mh_stage stage)
{
	char num[16];

	if (init == NULL || (unsigned)stage >= MH_STAGE_COUNT ||
	    stage_info(stage)->no_bit == 0)
		return refuse_declaration(init, __func__, "stage %s: only "
		    "connect, helo, envfrom, envrcpt, data, unknown, header, "
		    "eoh and body can be unused", stage_label(stage, num,
		    sizeof num));
	init_call_of(init)->unused |= 1U << stage;
	return MH_OK;
}

int
mh_declare_macros(const struct mh_init *init, mh_stage stage,
		  const char *names)
{
	struct init_call *call;
	char err[512], *list;
	size_t have, add;

	if (init == NULL || names == NULL)
		return refuse_declaration(init, __func__, "NULL names");
	if (check_macro_list("the instance", (int)stage, names, err,
	    sizeof err) < 0)
		return refuse_declaration(init, __func__, "%s", err);
	call = init_call_of(init);
	have = call->macros[stage] ? strlen(call->macros[stage]) : 0;
	add = strlen(names);
	if ((list = realloc(call->macros[stage], have + add + 2)) == NULL)
		return refuse_declaration(init, __func__, "out of memory");
	if (have > 0)
		list[have++] = ' ';
	memcpy(list + have, names, add + 1);
	call->macros[stage] = list;
	return MH_OK;
}

/*
 * (ABI 1.4) One namespace per instance: a second declaration would leave
 * the keys of the first unreachable, which is a plugin bug.
 */
int
mh_declare_kv_namespace(const struct mh_init *init, const char *name)
{
	struct init_call *call;

	if (init == NULL || name == NULL)
		return refuse_declaration(init, __func__, "NULL name");
	call = init_call_of(init);
	if (call->kv_ns != NULL)
		return refuse_declaration(init, __func__, "namespace '%.80s' "
		    "declared after '%s': one per instance", name,
		    call->kv_ns);
	if (!kv_ns_ok(name))
		return refuse_declaration(init, __func__, "bad namespace "
		    "'%.80s': 1 to %d letters, digits, '_', '.' and '-'",
		    name, KV_NS_MAX);
	if ((call->kv_ns = strdup(name)) == NULL)
		return refuse_declaration(init, __func__, "out of memory");
	return MH_OK;
}

/* ---- what an instance takes ------------------------------------------ */

bool
instance_takes(const struct instance *inst, mh_stage stage)
{
	return (inst->unused & (1U << stage)) == 0 &&
	    stage_implemented(inst->desc, stage);
}

/* ---- sets ---------------------------------------------------------------- */

struct plugin_set *
plugin_set_new(void)
{
	struct plugin_set *set = calloc(1, sizeof *set);

	if (set == NULL)
		return NULL;
	set->refs = 1;
	return set;
}

struct plugin_set *
plugin_set_retain(struct plugin_set *set)
{
	__atomic_add_fetch(&set->refs, 1, __ATOMIC_RELAXED);
	return set;
}

static void
free_macros(char *macros[MH_STAGE_COUNT])
{
	for (int st = 0; st < MH_STAGE_COUNT; st++) {
		free(macros[st]);
		macros[st] = NULL;
	}
}

/*
 * Fini the instances, last first, then unload the modules.  The debug
 * line lets a test see that a set was released (tests/wire/reload_load.sh
 * counts one per reload).
 */
static void
plugin_set_destroy(struct plugin_set *set)
{
	size_t ninstances = set->ninstances, nmodules = set->nmodules;

	for (size_t i = set->ninstances; i-- > 0;) {
		struct instance *in = &set->instances[i];

		if (in->desc->fini != NULL) {
			lifecycle_enter(in->name);
			in->desc->fini(in->state);
			lifecycle_leave();
		}
		free(in->name);
		free(in->kv_ns);
		free_macros(in->macros);
		cond_release(in->cond);
	}
	free(set->instances);
	for (size_t i = 0; i < set->nmodules; i++) {
		struct module *m = set->modules[i];

		if (m->handle != NULL)
			dlclose(m->handle);
		free(m->path);
		free(m);
	}
	free(set->modules);
	score_policy_free(&set->score);
	free(set);
	log_msg(LOG_DEBUG, "plugin set unloaded: %zu instance%s finied, %zu "
	    "module%s closed", ninstances, ninstances == 1 ? "" : "s",
	    nmodules, nmodules == 1 ? "" : "s");
}

void
plugin_set_release(struct plugin_set *set)
{
	if (set == NULL)
		return;
	if (__atomic_sub_fetch(&set->refs, 1, __ATOMIC_ACQ_REL) == 0)
		plugin_set_destroy(set);
}

/* Take a new module into set; it owns path and handle from now on. */
static struct module *
module_add(struct plugin_set *set, char *path, void *handle,
	   const struct mh_plugin *desc)
{
	struct module **mods, *m;

	mods = array_grow(set->modules, &set->modules_cap, set->nmodules,
	    sizeof *mods);
	if (mods == NULL)
		return NULL;
	set->modules = mods;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return NULL;
	m->path = path;
	m->handle = handle;
	m->desc = *desc;
	set->modules[set->nmodules++] = m;
	return m;
}

/* The declarations an instance starts with: its descriptor's. */
static int
start_declarations(struct init_call *call, const struct mh_plugin *d)
{
	call->actions = d->actions;
	call->flags = d->flags;
	call->observes = 0;
	call->unused = 0;
	for (int st = 0; st < MH_STAGE_COUNT; st++)
		if (d->macros[st] != NULL &&
		    (call->macros[st] = strdup(d->macros[st])) == NULL)
			return -1;
	return 0;
}

/*
 * Call m's init for an instance called name with the given settings, and
 * append the instance to set.  On failure, call tells why.
 */
static int
instance_init(struct plugin_set *set, const char *name, struct module *m,
	      const struct mh_setting *settings, size_t nsettings,
	      const char *config_file, enum on_error on_error, bool dry_run,
	      struct init_call *call)
{
	struct instance *ins, *in;
	void *state = NULL;
	char *copy;
	int rc = 0;

	memset(call, 0, sizeof *call);
	ins = array_grow(set->instances, &set->instances_cap, set->ninstances,
	    sizeof *ins);
	if (ins == NULL)
		return mh_init_error(&call->init, NULL, "out of memory");
	set->instances = ins;
	if ((copy = strdup(name)) == NULL)
		return mh_init_error(&call->init, NULL, "out of memory");
	call->init.instance = copy;
	call->init.config_file = config_file;
	call->init.settings = settings;
	call->init.nsettings = nsettings;
	if (start_declarations(call, &m->desc) < 0) {
		free(copy);
		free_macros(call->macros);
		return mh_init_error(&call->init, NULL, "out of memory");
	}
	if (m->desc.init != NULL) {
		lifecycle_enter(copy);
		rc = m->desc.init(&call->init, &state);
		lifecycle_leave();
	}
	if (rc != 0) {
		free(copy);
		free(call->kv_ns);
		free_macros(call->macros);
		return -1;
	}
	if (call->bad_declaration) {
		/* init succeeded, but the instance cannot run as declared */
		if (m->desc.fini != NULL) {
			lifecycle_enter(copy);
			m->desc.fini(state);
			lifecycle_leave();
		}
		free(copy);
		free(call->kv_ns);
		free_macros(call->macros);
		return -1;
	}
	in = &set->instances[set->ninstances];
	memset(in, 0, sizeof *in);
	in->actions = call->actions;
	in->flags = call->flags;
	/* A stage both observed and unused is unused: not called, it has
	 * nothing to observe, and must not count as taken by an observer. */
	in->unused = call->unused;
	in->observes = call->observes & ~call->unused;
	memcpy(in->macros, call->macros, sizeof in->macros);
	in->kv_ns = call->kv_ns;
	in->name = copy;
	in->module = m;
	in->desc = &m->desc;
	in->state = state;
	in->on_error = on_error;
	in->dry_run = dry_run;
	in->index = set->ninstances++;
	m->refs++;
	return 0;
}

/* "init failed", or what the plugin said through mh_init_error. */
static const char *
init_message(const struct init_call *call)
{
	return call->reported ? call->message : "init failed";
}

int
plugin_set_add(struct plugin_set *set, const char *name,
	       const struct mh_plugin *desc,
	       const struct mh_setting *settings, size_t nsettings,
	       enum on_error on_error, bool dry_run, char *err, size_t errlen)
{
	struct mh_plugin copy;
	struct init_call call;
	struct module *m;
	char *path;
	char why[1024];

	if (plugin_check_descriptor(desc, &copy, why, sizeof why) < 0) {
		snprintf(err, errlen, "[plugin:%s] %s", name, why);
		return -1;
	}
	if ((path = strdup(BUILTIN_PATH)) == NULL ||
	    (m = module_add(set, path, NULL, &copy)) == NULL) {
		free(path);
		snprintf(err, errlen, "[plugin:%s] out of memory", name);
		return -1;
	}
	if (instance_init(set, name, m, settings, nsettings, BUILTIN_PATH,
	    on_error, dry_run, &call) < 0) {
		/* Leave the set as it was: the module has no instance. */
		set->nmodules--;
		free(m->path);
		free(m);
		if (call.has_key)
			snprintf(err, errlen, "[plugin:%s] %s: %s", name,
			    call.key, init_message(&call));
		else
			snprintf(err, errlen, "[plugin:%s] %s", name,
			    init_message(&call));
		return -1;
	}
	return 0;
}

/* ---- the loader and its modules --------------------------------------- */

struct loader {
	const struct config *cfg;
	char *dir;              /* the plugin directory */
	struct plugin_set *set;
	char *err;
	size_t errlen;

	/* tsearch trees; one that "owns" its keys frees them with it. */
	void *module_paths;     /* the modules opened, by path */
	void *module_files;     /* and by file: struct file_id, owns */
	void *named_paths;      /* autoload: the files sections name, owns */
	void *named_files;      /* and by file: struct file_id, owns */
	void *names;            /* autoload: the names of the set's instances */
};

/*
 * Two paths are the same file if they are equal, or name the same inode:
 * a section may give a module's file name and another its absolute path.
 */
struct file_id {
	dev_t dev;
	ino_t ino;
	struct module *module;  /* in module_files */
};

static int
compare_file_ids(const void *a, const void *b)
{
	const struct file_id *x = a, *y = b;

	if (x->dev != y->dev)
		return x->dev < y->dev ? -1 : 1;
	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return 0;
}

static int
compare_module_paths(const void *a, const void *b)
{
	const struct module *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* Add a file_id for st, of module m, to *tree unless there is one. */
static int
add_file_id(void **tree, const struct stat *st, struct module *m)
{
	struct file_id *id, **found;

	if ((id = malloc(sizeof *id)) == NULL)
		return -1;
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->module = m;
	if ((found = tsearch(id, tree, compare_file_ids)) == NULL) {
		free(id);
		return -1;
	}
	if (*found != id)
		free(id);
	return 0;
}

/* The file_id in tree of the file path names, or NULL. */
static struct file_id *
find_file_id(void *const *tree, const char *path)
{
	struct file_id key, **found;
	struct stat st;

	if (*tree == NULL || stat(path, &st) < 0)
		return NULL;
	key.dev = st.st_dev;
	key.ino = st.st_ino;
	found = tfind(&key, tree, compare_file_ids);
	return found != NULL ? *found : NULL;
}

/* The module open already for path, or NULL. */
static struct module *
find_module(const struct loader *ld, const char *path)
{
	struct module key = { .path = (char *)path }, **found;
	struct file_id *id;

	found = tfind(&key, &ld->module_paths, compare_module_paths);
	if (found != NULL)
		return *found;
	id = find_file_id(&ld->module_files, path);
	return id != NULL ? id->module : NULL;
}

/* Index m, whose file is st, for find_module. */
static int
index_module(struct loader *ld, struct module *m, const struct stat *st)
{
	if (tsearch(m, &ld->module_paths, compare_module_paths) == NULL)
		return -1;
	return add_file_id(&ld->module_files, st, m);
}

/* "dir/namesuffix", to free; NULL if out of memory. */
static char *
join_path(const char *dir, const char *name, const char *suffix)
{
	size_t len = strlen(dir) + 1 + strlen(name) + strlen(suffix) + 1;
	char *path = malloc(len);

	if (path != NULL)
		snprintf(path, len, "%s/%s%s", dir, name, suffix);
	return path;
}

/*
 * The file a module value names: an absolute path as is, "NAME" and
 * "NAME.so" in dir.  NULL with errno EINVAL for a relative path, ENOMEM.
 */
static char *
resolve_module(const char *dir, const char *module)
{
	size_t len = strlen(module), slen = strlen(SO_SUFFIX);
	bool has_suffix = len > slen &&
	    strcmp(module + len - slen, SO_SUFFIX) == 0;

	if (module[0] == '/')
		return strdup(module);
	if (strchr(module, '/') != NULL || len == 0) {
		errno = EINVAL;
		return NULL;
	}
	return join_path(dir, module, has_suffix ? "" : SO_SUFFIX);
}

/*
 * Is path a file dlopen can be asked for?  0 with its status in st, or -1
 * with the reason.
 */
static int
check_file(const char *path, struct stat *st, char *why, size_t whylen)
{
	if (stat(path, st) < 0) {
		if (errno == ENOENT)
			snprintf(why, whylen, "no such file %s", path);
		else
			snprintf(why, whylen, "cannot access %s: %s", path,
			    strerror(errno));
		return -1;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, whylen, "%s is not a file", path);
		return -1;
	}
	if (access(path, R_OK) < 0) {
		snprintf(why, whylen, "cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * Plugin file trust, as sshd's StrictModes: code loaded into a daemon that
 * root may have started must not be replaceable by anybody else.  stat of
 * path (a file or directory) must show it owned by root or by the user
 * milterhost runs as, and writable by no one else: not by others, nor by
 * a group but root's.  A directory writable by others but sticky (/tmp)
 * is allowed: nobody else can rename or remove what is in it.
 */
static int
check_owner_and_mode(const char *path, const struct stat *st, char *why,
		     size_t whylen)
{
	bool sticky_dir = S_ISDIR(st->st_mode) && (st->st_mode & S_ISVTX);
	unsigned mode = (unsigned)st->st_mode & 07777;

	if (st->st_uid != 0 && st->st_uid != geteuid()) {
		snprintf(why, whylen, "%.1024s is owned by uid %u, neither root nor "
		    "the user milterhost runs as (uid %u); strict_modes = no "
		    "allows it", path, (unsigned)st->st_uid,
		    (unsigned)geteuid());
		return -1;
	}
	if ((st->st_mode & S_IWOTH) && !sticky_dir) {
		snprintf(why, whylen, "%.1024s is writable by others (mode %04o); "
		    "strict_modes = no allows it", path, mode);
		return -1;
	}
	if ((st->st_mode & S_IWGRP) && st->st_gid != 0 && !sticky_dir) {
		snprintf(why, whylen, "%.1024s is writable by group %u (mode %04o); "
		    "strict_modes = no allows it", path, (unsigned)st->st_gid,
		    mode);
		return -1;
	}
	return 0;
}

/* Check path (absolute) and every directory above it; symbolic links
 * themselves are skipped (their targets are checked through realpath). */
static int
check_path_trust(const char *path, char *why, size_t whylen)
{
	char prefix[PATH_MAX];
	size_t len = strlen(path);
	struct stat st;

	if (len >= sizeof prefix) {
		snprintf(why, whylen, "%.1024s: path too long", path);
		return -1;
	}
	for (size_t end = 1; end <= len; end++) {
		if (end < len && path[end] != '/')
			continue;
		memcpy(prefix, path, end);
		prefix[end] = '\0';
		if (lstat(prefix, &st) < 0) {
			snprintf(why, whylen, "cannot access %.1024s: %s", prefix,
			    strerror(errno));
			return -1;
		}
		if (!S_ISLNK(st.st_mode) &&
		    check_owner_and_mode(prefix, &st, why, whylen) < 0)
			return -1;
	}
	return 0;
}

/* The trust check of a plugin file, unless strict_modes is off. */
static int
check_trust(const struct loader *ld, const char *path, char *why,
	    size_t whylen)
{
	char real[PATH_MAX];

	if (!ld->cfg->strict_modes)
		return 0;
	if (realpath(path, real) == NULL) {
		snprintf(why, whylen, "cannot resolve %.1024s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (check_path_trust(real, why, whylen) < 0)
		return -1;
	/* The links on the way, and the directories holding them. */
	if (path[0] == '/' && strcmp(path, real) != 0)
		return check_path_trust(path, why, whylen);
	return 0;
}

/*
 * Refuse the plugin file path if its descriptor, read from the file, is of
 * an ABI version this host cannot run: before dlopen(), which would bind
 * the symbols of a plugin built for a newer minor first and fail on a host
 * function only that minor has, with "undefined symbol" instead of the
 * version.  RTLD_LAZY would not help: references to data, and everything
 * in a plugin linked with -z now, are bound at load time all the same (see
 * elfdesc.c).  A file elfdesc cannot read is left to dlopen() and dlsym(),
 * which refuse it with their own reasons or find a descriptor to check.
 */
static int
check_file_version(const char *path, char *why, size_t whylen)
{
	struct elfdesc_version v;
	char reason[512];

	if (elfdesc_read(path, MH_PLUGIN_SYMBOL, &v, reason,
	    sizeof reason) < 0) {
		log_msg(LOG_DEBUG, "%s: ABI version not read from the file "
		    "(%s); dlopen decides", path, reason);
		return 0;
	}
	if (check_version(v.abi_major, v.abi_minor, reason,
	    sizeof reason) < 0) {
		snprintf(why, whylen, "%s: %s", path, reason);
		return -1;
	}
	return 0;
}

/*
 * The module for the file path: the one of the set if the file is open
 * already, else the file opened, checked and added to the set.  Takes
 * path (frees it or gives it to the module).  NULL with the reason in why.
 */
static struct module *
module_open(struct loader *ld, char *path, char *why, size_t whylen)
{
	struct module *m;
	struct mh_plugin desc;
	const struct mh_plugin *found;
	struct stat st;
	char reason[1024];
	void *handle;

	if ((m = find_module(ld, path)) != NULL) {
		free(path);
		return m;
	}
	if (check_file(path, &st, why, whylen) < 0 ||
	    check_trust(ld, path, why, whylen) < 0 ||
	    check_file_version(path, why, whylen) < 0)
		goto fail;
	if ((handle = dlfile_open(path, &st, reason, sizeof reason)) ==
	    NULL) {
		snprintf(why, whylen, "cannot load: %s", reason);
		goto fail;
	}
	found = dlsym(handle, MH_PLUGIN_SYMBOL);
	if (found == NULL) {
		snprintf(why, whylen, "%s has no %s descriptor: not a "
		    "milterhost plugin", path, MH_PLUGIN_SYMBOL);
		goto close;
	}
	if (plugin_check_descriptor(found, &desc, reason, sizeof reason) < 0) {
		snprintf(why, whylen, "%s: %s", path, reason);
		goto close;
	}
	if ((m = module_add(ld->set, path, handle, &desc)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto close;
	}
	/* The set owns m now: it is unloaded with the set. */
	if (index_module(ld, m, &st) < 0) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	return m;
close:
	dlclose(handle);
fail:
	free(path);
	return NULL;
}

/* ---- listed sections -------------------------------------------------- */

/* Is the word key in the space-separated list? */
static bool
in_list(const char *list, const char *key)
{
	size_t klen = strlen(key);

	if (list == NULL)
		return false;
	while (*list != '\0') {
		size_t n;

		list += strspn(list, " \t");
		n = strcspn(list, " \t");
		if (n == klen && strncmp(list, key, n) == 0)
			return true;
		list += n;
	}
	return false;
}

/* The first occurrence of the key of ci->settings[i] before it, or NULL. */
static const struct config_setting *
earlier_setting(const struct config_instance *ci, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (!ci->settings[j].continuation &&
		    strcmp(ci->settings[j].key, ci->settings[i].key) == 0)
			return &ci->settings[j];
	return NULL;
}

/* A key given twice or continued must be a list key. */
static int
check_repeats(struct loader *ld, const struct config_instance *ci,
	      const struct mh_plugin *d)
{
	for (size_t i = 0; i < ci->nsettings; i++) {
		const struct config_setting *s = &ci->settings[i];
		const struct config_setting *first;

		if (in_list(d->list_keys, s->key))
			continue;
		if (s->continuation) {
			snprintf(ld->err, ld->errlen, "%s:%d: [plugin:%s] "
			    "indented line continues key '%s', which is not "
			    "a list", ld->cfg->file, s->line, ci->name, s->key);
			return -1;
		}
		if ((first = earlier_setting(ci, i)) != NULL) {
			snprintf(ld->err, ld->errlen, "%s:%d: [plugin:%s] key "
			    "'%s' given twice (first on line %d)",
			    ld->cfg->file, s->line, ci->name, s->key,
			    first->line);
			return -1;
		}
	}
	return 0;
}

/* The head of a list written as "key =" with the values indented below. */
static bool
is_list_head(const struct config_instance *ci, size_t i)
{
	return ci->settings[i].value[0] == '\0' && i + 1 < ci->nsettings &&
	    ci->settings[i + 1].continuation;
}

/* The settings init gets: borrowed from ci.  Caller frees the array. */
static struct mh_setting *
make_settings(const struct config_instance *ci, size_t *n)
{
	struct mh_setting *out;

	*n = 0;
	if ((out = calloc(ci->nsettings + 1, sizeof *out)) == NULL)
		return NULL;
	for (size_t i = 0; i < ci->nsettings; i++) {
		if (is_list_head(ci, i))
			continue;
		out[*n].key = ci->settings[i].key;
		out[(*n)++].value = ci->settings[i].value;
	}
	return out;
}

/*
 * The line of the key init named: the very setting when the plugin passed
 * its key string (a key given several times has a line per value), else
 * the first line of a key of that name, else the section's.
 */
static int
key_line(const struct config_instance *ci, const struct init_call *call)
{
	for (size_t i = 0; i < ci->nsettings; i++)
		if (ci->settings[i].key == call->key_ptr)
			return ci->settings[i].line;
	for (size_t i = 0; i < ci->nsettings; i++)
		if (strcmp(ci->settings[i].key, call->key) == 0)
			return ci->settings[i].line;
	return ci->line;
}

static void
report_init_failure(struct loader *ld, const struct config_instance *ci,
		    const struct init_call *call)
{
	if (call->has_key)
		snprintf(ld->err, ld->errlen, "%s:%d: [plugin:%s] %s: %s",
		    ld->cfg->file, key_line(ci, call), ci->name,
		    call->key, init_message(call));
	else
		snprintf(ld->err, ld->errlen, "%s:%d: [plugin:%s] %s",
		    ld->cfg->file, ci->line, ci->name, init_message(call));
}

/* Load and init the instance of section ci. */
static int
load_listed(struct loader *ld, const struct config_instance *ci)
{
	struct init_call call;
	struct mh_setting *settings;
	struct module *m;
	char why[2048];
	char *path;
	size_t n;
	int rc;

	if ((path = resolve_module(ld->dir, ci->module)) == NULL) {
		snprintf(why, sizeof why, "%s", errno == EINVAL ? "expected a "
		    "file name in plugin_dir or an absolute path" :
		    "out of memory");
		goto fail;
	}
	if ((m = module_open(ld, path, why, sizeof why)) == NULL)
		goto fail;
	if (check_repeats(ld, ci, &m->desc) < 0)
		return -1;
	if ((settings = make_settings(ci, &n)) == NULL) {
		snprintf(why, sizeof why, "out of memory");
		goto fail;
	}
	rc = instance_init(ld->set, ci->name, m, settings, n, ld->cfg->file,
	    ci->on_error, ci->dry_run, &call);
	free(settings);
	if (rc < 0)
		report_init_failure(ld, ci, &call);
	else {
		struct instance *in =
		    &ld->set->instances[ld->set->ninstances - 1];

		in->cond = cond_retain(ci->cond);
		in->slow_ns = (uint64_t)ci->slow_ms * 1000000;
	}
	return rc;
fail:
	snprintf(ld->err, ld->errlen, "%s:%d: [plugin:%s] module = %s: %s",
	    ld->cfg->file, ci->module_line, ci->name, ci->module, why);
	return -1;
}

/* ---- autoload --------------------------------------------------------- */

/*
 * Report an autoload error as "FILE:LINE: " and the message, LINE being
 * that of the autoload key ("FILE: " for a config not read from a file).
 * Returns -1.
 */
static int __attribute__((format(printf, 2, 3)))
autoload_fail(struct loader *ld, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ld->cfg->autoload_line > 0)
		n = snprintf(ld->err, ld->errlen, "%s:%d: ", ld->cfg->file,
		    ld->cfg->autoload_line);
	else
		n = snprintf(ld->err, ld->errlen, "%s: ", ld->cfg->file);
	if (n < 0 || (size_t)n >= ld->errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Index the module files of all sections (enabled or not), for
 * named_by_section, and the names of the instances loaded so far, for
 * instance_exists.  -1 if out of memory.
 */
static int
index_for_autoload(struct loader *ld)
{
	const struct config *cfg = ld->cfg;
	struct stat st;
	char *path, **found;

	for (size_t i = 0; i < cfg->ninstances; i++) {
		path = resolve_module(ld->dir, cfg->instances[i].module);
		if (path == NULL) {
			if (errno == EINVAL)
				continue; /* names no file */
			return -1;
		}
		found = tsearch(path, &ld->named_paths, compare_strings);
		if (found == NULL) {
			free(path);
			return -1;
		}
		if (*found != path) {
			free(path); /* named by a section before */
			continue;
		}
		if (stat(path, &st) == 0 &&
		    add_file_id(&ld->named_files, &st, NULL) < 0)
			return -1;
	}
	for (size_t i = 0; i < ld->set->ninstances; i++)
		if (tsearch(ld->set->instances[i].name, &ld->names,
		    compare_strings) == NULL)
			return -1;
	return 0;
}

/*
 * Is path the module of a section (enabled or not)?  A disabled section
 * keeps its module from being autoloaded: disabling must switch it off.
 */
static bool
named_by_section(const struct loader *ld, const char *path)
{
	return tfind(path, &ld->named_paths, compare_strings) != NULL ||
	    find_file_id(&ld->named_files, path) != NULL;
}

static bool
instance_exists(const struct loader *ld, const char *name)
{
	return tfind(name, &ld->names, compare_strings) != NULL;
}

/* Load file (a "*.so" name in the plugin directory) as instance name. */
static int
load_autoloaded(struct loader *ld, const char *file, const char *name)
{
	struct init_call call;
	struct module *m;
	char why[2048];
	char *path;

	if ((path = join_path(ld->dir, file, "")) == NULL)
		return autoload_fail(ld, "autoload: out of memory");
	if (named_by_section(ld, path)) {
		free(path);
		return 0;
	}
	if (instance_exists(ld, name)) {
		autoload_fail(ld, "autoload: %s would be instance "
		    "[plugin:%s], which exists already", path, name);
		free(path);
		return -1;
	}
	if ((m = module_open(ld, path, why, sizeof why)) == NULL)
		return autoload_fail(ld, "autoload [plugin:%s]: %s", name, why);
	if (instance_init(ld->set, name, m, NULL, 0, ld->cfg->file,
	    ld->cfg->on_error, false, &call) < 0)
		return autoload_fail(ld, "autoload [plugin:%s]: %s%s%s", name,
		    call.has_key ? call.key : "", call.has_key ? ": " : "",
		    init_message(&call));
	ld->set->instances[ld->set->ninstances - 1].slow_ns =
	    (uint64_t)ld->cfg->slow_ms * 1000000;
	/* The tree holds the instance's copy of the name. */
	if (tsearch(ld->set->instances[ld->set->ninstances - 1].name,
	    &ld->names, compare_strings) == NULL)
		return autoload_fail(ld, "autoload: out of memory");
	return 0;
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A plugin file: "*.so" with a name before the suffix, not hidden. */
static bool
is_plugin_file(const char *name)
{
	size_t len = strlen(name), slen = strlen(SO_SUFFIX);

	return name[0] != '.' && len > slen &&
	    strcmp(name + len - slen, SO_SUFFIX) == 0;
}

static void
free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/*
 * The plugin files of the directory, sorted.  Returns 0 with the array
 * (caller frees it with free_names), or -1 with errno set.
 */
static int
list_plugin_files(const char *dir, char ***out, size_t *nout)
{
	DIR *d;
	struct dirent *e;
	char **names = NULL, **grown;
	size_t n = 0, cap = 0;
	int saved;

	if ((d = opendir(dir)) == NULL)
		return -1;
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (!is_plugin_file(e->d_name))
			continue;
		grown = array_grow(names, &cap, n, sizeof *names);
		if (grown == NULL)
			goto fail;
		names = grown;
		if ((names[n] = strdup(e->d_name)) == NULL)
			goto fail;
		n++;
		errno = 0;
	}
	if (errno != 0)
		goto fail;
	closedir(d);
	if (n > 0)
		qsort(names, n, sizeof *names, compare_names);
	*out = names;
	*nout = n;
	return 0;
fail:
	saved = errno;
	closedir(d);
	free_names(names, n);
	errno = saved;
	return -1;
}

/* Every plugin file of the directory not named by a section, in order. */
static int
autoload(struct loader *ld)
{
	char **files, *name;
	size_t n;
	int rc = 0;

	if (list_plugin_files(ld->dir, &files, &n) < 0)
		return autoload_fail(ld, "autoload: cannot read plugin_dir "
		    "%s: %s", ld->dir, strerror(errno));
	if (index_for_autoload(ld) < 0) {
		free_names(files, n);
		return autoload_fail(ld, "autoload: out of memory");
	}
	for (size_t i = 0; i < n && rc == 0; i++) {
		name = strndup(files[i], strlen(files[i]) - strlen(SO_SUFFIX));
		if (name == NULL) {
			rc = autoload_fail(ld, "autoload: out of memory");
			break;
		}
		rc = load_autoloaded(ld, files[i], name);
		free(name);
	}
	free_names(files, n);
	return rc;
}

/* ---- loading a config ------------------------------------------------- */

/*
 * Free what the loader holds besides the set.  Some trees hold keys that
 * the set owns: this must come before the set is released.
 */
static void
loader_free(struct loader *ld)
{
	tree_free(&ld->module_paths, compare_module_paths, false);
	tree_free(&ld->module_files, compare_file_ids, true);
	tree_free(&ld->named_paths, compare_strings, true);
	tree_free(&ld->named_files, compare_file_ids, true);
	tree_free(&ld->names, compare_strings, false);
	free(ld->dir);
}

struct plugin_set *
plugin_set_load(const struct config *cfg, char *err, size_t errlen)
{
	struct loader ld = { .cfg = cfg, .err = err, .errlen = errlen };

	ld.set = plugin_set_new();
	ld.dir = config_plugin_dir(cfg);
	if (ld.set == NULL || ld.dir == NULL ||
	    score_policy_copy(&ld.set->score, &cfg->score) < 0) {
		snprintf(err, errlen, "%s: out of memory", cfg->file);
		goto fail;
	}
	for (size_t i = 0; i < cfg->ninstances; i++)
		if (cfg->instances[i].enabled &&
		    load_listed(&ld, &cfg->instances[i]) < 0)
			goto fail;
	if (cfg->autoload && autoload(&ld) < 0)
		goto fail;
	loader_free(&ld);
	return ld.set;
fail:
	loader_free(&ld);
	plugin_set_release(ld.set);
	return NULL;
}

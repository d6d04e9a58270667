/*
 * support - what the init functions of the bundled plugins share:
 * reading the keys of the plugin's section.
 *
 * Built as a convenience library linked into each bundled plugin, so
 * every plugin file has its own copy; the plugins export nothing but
 * their descriptor (plugins/plugin.sym), so these functions never meet
 * another plugin's or the host's.  They use only <milterhost/plugin.h>,
 * like any plugin.  The names start with bundled_, for the reader.
 */
#ifndef PLUGINS_SUPPORT_H
#define PLUGINS_SUPPORT_H

#include <stddef.h>

#include <milterhost/plugin.h>

/* ---- the keys of the section ------------------------------------------ */

/*
 * One key a plugin takes.  value is where bundled_read_settings() stores
 * the key's value; NULL in a table the plugin reads itself with
 * bundled_find_key() (its list keys come several times).  A table ends
 * with a NULL name.
 */
struct bundled_key {
	const char *name;
	const char **value;
};

/*
 * The index of key in keys.  An unknown key is reported with
 * mh_init_error, naming the setting and every key the plugin takes
 * ("unknown key: rcptlimit takes max and reply"), and gives -1.  Pass
 * the setting's own key string (init->settings[i].key), so that the
 * error names its line.
 */
int bundled_find_key(const struct mh_init *init, const char *plugin,
		     const struct bundled_key *keys, const char *key);

/*
 * Store the value of each setting of init in its key's value (borrowed
 * from init: valid during init only), and NULL in those of the keys not
 * given.  Every key of the table needs a value, and none may be in the
 * descriptor's list_keys: the host refuses any other key given twice, so
 * there is one value at most.  Returns 0, or -1 with an unknown key
 * reported.
 */
int bundled_read_settings(const struct mh_init *init, const char *plugin,
			  const struct bundled_key *keys);

#endif /* PLUGINS_SUPPORT_H */

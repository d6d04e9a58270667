/*
 * support - what the init functions of the bundled plugins share.  See
 * support.h.
 */
#include <stdio.h>
#include <string.h>

#include <milterhost/plugin.h>

#include "support.h"

/* ---- the keys of the section ------------------------------------------ */

/* The names of keys as a list for a message: "a", "a and b", "a, b and c". */
static void
list_names(const struct bundled_key *keys, char *buf, size_t len)
{
	size_t n = 0, used = 0;

	while (keys[n].name != NULL)
		n++;
	buf[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		const char *sep = i == 0 ? "" : i == n - 1 ? " and " : ", ";
		int w = snprintf(buf + used, len - used, "%s%s", sep,
		    keys[i].name);

		if (w < 0)
			break;
		used += (size_t)w;
	}
}

int
bundled_find_key(const struct mh_init *init, const char *plugin,
		 const struct bundled_key *keys, const char *key)
{
	char names[512];

	for (int i = 0; keys[i].name != NULL; i++)
		if (strcmp(key, keys[i].name) == 0)
			return i;
	list_names(keys, names, sizeof names);
	return mh_init_error(init, key, "unknown key: %s takes %s", plugin,
	    names);
}

int
bundled_read_settings(const struct mh_init *init, const char *plugin,
		      const struct bundled_key *keys)
{
	for (size_t i = 0; keys[i].name != NULL; i++)
		*keys[i].value = NULL;
	for (size_t i = 0; i < init->nsettings; i++) {
		const struct mh_setting *s = &init->settings[i];
		int k = bundled_find_key(init, plugin, keys, s->key);

		if (k < 0)
			return -1;
		*keys[k].value = s->value;
	}
	return 0;
}

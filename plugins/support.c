/*
 * support - what the init functions of the bundled plugins share.  See
 * support.h.
 */
#include <ctype.h>
#include <stdbool.h>
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

/* ---- replies ------------------------------------------------------------ */

/* "c.x.y": the class c, then two runs of 1 to 3 digits. */
static bool
good_xcode(const char *s, size_t len, char class)
{
	size_t i = 2, run;

	if (len < 5 || s[0] != class || s[1] != '.')
		return false;
	for (int part = 0; part < 2; part++) {
		for (run = 0; i < len && isdigit((unsigned char)s[i]); i++)
			run++;
		if (run < 1 || run > 3)
			return false;
		if (part == 0 && (i >= len || s[i++] != '.'))
			return false;
	}
	return i == len;
}

bool
bundled_reply_has_code(const char *value)
{
	return strspn(value, "0123456789") == 3 &&
	    (value[3] == '\0' || value[3] == ' ' || value[3] == '\t');
}

int
bundled_parse_reply(const char *value, const char *example,
		    struct bundled_reply *reply, char *err, size_t errlen)
{
	const char *p = value + 3;
	size_t n;

	memcpy(reply->rcode, value, 3);
	reply->rcode[3] = '\0';
	reply->xcode[0] = '\0';
	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n > 0 && strspn(p, "0123456789.") >= n &&
	    memchr(p, '.', n) != NULL) {
		if (n >= sizeof reply->xcode || !good_xcode(p, n, value[0])) {
			snprintf(err, errlen, "bad enhanced status code "
			    "'%.*s': write %c.X.Y, X and Y of 1 to 3 digits, "
			    "to go with %s", (int)n, p, value[0],
			    reply->rcode);
			return -1;
		}
		memcpy(reply->xcode, p, n);
		reply->xcode[n] = '\0';
		p += n;
		p += strspn(p, " \t");
	}
	if (*p == '\0') {
		snprintf(err, errlen, "the reply %s needs a text after its "
		    "code, e.g. %s", reply->rcode, example);
		return -1;
	}
	reply->text = p;
	return bundled_check_reply_text(p, err, errlen);
}

int
bundled_check_reply_text(const char *text, char *err, size_t errlen)
{
	if (strlen(text) <= BUNDLED_REPLY_TEXT_MAX)
		return 0;
	snprintf(err, errlen, "the reply's text is %zu bytes long, more than "
	    "%d", strlen(text), BUNDLED_REPLY_TEXT_MAX);
	return -1;
}

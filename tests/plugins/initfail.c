/*
 * initfail - a test plugin whose init fails on request, in each of the
 * ways a plugin can report it:
 *
 * threshold = N	must be a number; otherwise init fails naming the
 *			key threshold.
 * fail = yes		init fails without naming a key ("cannot start").
 * quiet = yes		init fails without saying why.
 *
 * Any other key is refused, naming the key.  An instance whose name starts
 * with "fail-" fails as with fail = yes: so an autoloaded instance, which
 * has no settings and is named after its file, can fail too.  Otherwise,
 * init succeeds.
 */
#include <ctype.h>
#include <string.h>

#include <milterhost/plugin.h>

static int
check_number(const struct mh_init *init, const char *value)
{
	const char *p = value;

	if (*p == '\0')
		goto bad;
	for (; *p != '\0'; p++)
		if (!isdigit((unsigned char)*p))
			goto bad;
	return 0;
bad:
	return mh_init_error(init, "threshold", "must be a number, got '%s'",
	    value);
}

static int
check_flag(const struct mh_init *init, const char *key, const char *value,
	   int *out)
{
	if (mh_parse_bool(value, out) < 0)
		return mh_init_error(init, key, "expected yes or no, got '%s'",
		    value);
	return 0;
}

static int
initfail_init(const struct mh_init *init, void **state)
{
	int fail = 0, quiet = 0;

	for (size_t i = 0; i < init->nsettings; i++) {
		const char *key = init->settings[i].key;
		const char *value = init->settings[i].value;
		int rc;

		if (strcmp(key, "threshold") == 0)
			rc = check_number(init, value);
		else if (strcmp(key, "fail") == 0)
			rc = check_flag(init, key, value, &fail);
		else if (strcmp(key, "quiet") == 0)
			rc = check_flag(init, key, value, &quiet);
		else
			rc = mh_init_error(init, key, "unknown key");
		if (rc < 0)
			return -1;
	}
	if (strncmp(init->instance, "fail-", strlen("fail-")) == 0)
		fail = 1;
	if (fail)
		return mh_init_error(init, NULL, "cannot start: asked to fail "
		    "by instance %s", init->instance);
	if (quiet)
		return -1;
	*state = NULL;
	return 0;
}

const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "initfail",
	.description = "fails init on request",
	.init = initfail_init,
};

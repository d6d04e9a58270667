/*
 * addheader - the bundled milterhost plugin: add one header to every
 * message.
 *
 *	[plugin:tag]
 *	module = addheader
 *	header = X-Milterhost
 *	value = processed by %{j} for queue id %{i}
 *	position = 0
 *
 * header	the header name (required): printable ASCII without ':' or
 *		space.
 * value	the header value (required), a template: %{name} stands for
 *		the MTA macro name ("j", "i", "client_addr", "daemon_name",
 *		...), written without the braces the MTA uses for long names;
 *		"%%" is one '%'.  A macro the MTA did not send expands to
 *		nothing.  CR and LF in a macro's value become spaces, so that
 *		the header stays one line.
 * position	"append" (the default) adds the header after the last one;
 *		a number N inserts it before the N-th header of the message
 *		as the MTA received it (0 = above all).
 *
 * The template is parsed once, by init, into literal text and macro
 * names; a lone '%' or an unterminated "%{" is a configuration error.
 * The instance asks the MTA for exactly the macros its template names,
 * at the end of the message (ABI 1.1, mh_declare_macros).
 * The value is built at the end of the message, the only time the
 * header can be known to be wanted, and handed to the host, which
 * sends it to the MTA with the other plugins' changes.
 *
 * Instance state is read-only after init, so sessions share it without
 * locks.  Several instances of the module run as independent links of
 * the chain.
 */
#include <ctype.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <milterhost/plugin.h>

#include "support.h"

#define APPEND (-1) /* position: after the last header */

/* One piece of the value template. */
struct part {
	bool is_macro;
	char *text; /* literal text, or the macro name as mh_macro wants it */
};

struct addheader {
	char *header;
	struct part *parts;
	size_t nparts;
	int position; /* APPEND or an index for mh_header_insert */
};

static void
free_parts(struct part *parts, size_t nparts)
{
	for (size_t i = 0; i < nparts; i++)
		free(parts[i].text);
	free(parts);
}

static void
ah_fini(void *state)
{
	struct addheader *ah = state;

	if (ah == NULL)
		return;
	free(ah->header);
	free_parts(ah->parts, ah->nparts);
	free(ah);
}

/* ---- init: the settings ------------------------------------------------ */

static int
check_header_name(const struct mh_init *init, const char *name)
{
	if (*name == '\0')
		return mh_init_error(init, "header", "needs a header name");
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p <= ' ' || *p >= 127 || *p == ':')
			return mh_init_error(init, "header", "bad header name "
			    "'%s': use printable ASCII without ':' or space",
			    name);
	return 0;
}

/* "append", or the digits of an index from 0 to INT_MAX. */
static int
parse_position(const struct mh_init *init, const char *value, int *out)
{
	long n = 0;

	if (strcasecmp(value, "append") == 0) {
		*out = APPEND;
		return 0;
	}
	if (*value == '\0')
		goto bad;
	for (const char *p = value; *p != '\0'; p++) {
		int digit = *p - '0';

		if (!isdigit((unsigned char)*p) || n > (INT_MAX - digit) / 10)
			goto bad;
		n = n * 10 + digit;
	}
	*out = (int)n;
	return 0;
bad:
	return mh_init_error(init, "position", "bad position '%s': expected "
	    "'append' or a header index from 0 (the top) to %d", value,
	    INT_MAX);
}

/* ---- init: the value template ----------------------------------------- */

/*
 * Append a part to *parts: the len bytes at s, as literal text or as a
 * macro name.  Returns 0, or -1 when out of memory.
 */
static int
add_part(struct part **parts, size_t *nparts, bool is_macro, const char *s,
	 size_t len)
{
	struct part *grown;
	char *text;

	grown = realloc(*parts, (*nparts + 1) * sizeof *grown);
	if (grown == NULL)
		return -1;
	*parts = grown;
	if ((text = strndup(s, len)) == NULL)
		return -1;
	grown[*nparts].is_macro = is_macro;
	grown[*nparts].text = text;
	(*nparts)++;
	return 0;
}

/*
 * The macro name as libmilter looks it up: one letter as it is ("j"),
 * longer names in braces ("{client_addr}").
 */
static int
add_macro(struct part **parts, size_t *nparts, const char *name, size_t len)
{
	char braced[128];

	if (len == 1)
		return add_part(parts, nparts, true, name, len);
	braced[0] = '{';
	memcpy(braced + 1, name, len);
	braced[len + 1] = '}';
	return add_part(parts, nparts, true, braced, len + 2);
}

/*
 * The macro reference at tmpl[at], which is "%{": check it, add it, and
 * return the offset just after its '}', or 0 with the error reported.
 */
static size_t
parse_macro(const struct mh_init *init, const char *tmpl, size_t at,
	    struct part **parts, size_t *nparts)
{
	const char *name = tmpl + at + 2;
	size_t len = strcspn(name, "}");

	if (name[len] != '}') {
		mh_init_error(init, "value", "unterminated '%%{' at character "
		    "%zu: write %%{name} for a macro, %%%% for a '%%'",
		    at + 1);
		return 0;
	}
	if (len == 0) {
		mh_init_error(init, "value", "empty macro name '%%{}' at "
		    "character %zu", at + 1);
		return 0;
	}
	if (len > 100) {
		mh_init_error(init, "value", "macro name at character %zu is "
		    "longer than 100 characters", at + 1);
		return 0;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isalnum((unsigned char)name[i]) && name[i] != '_') {
			mh_init_error(init, "value", "bad macro name '%.*s' "
			    "at character %zu: use letters, digits and '_' "
			    "(no braces: %%{client_addr})", (int)len, name,
			    at + 1);
			return 0;
		}
	}
	if (add_macro(parts, nparts, name, len) < 0) {
		mh_init_error(init, NULL, "out of memory");
		return 0;
	}
	return at + 2 + len + 1;
}

/*
 * Split tmpl into parts: runs of literal text ("%%" folded to '%') and
 * macro references.  Returns 0, or -1 with the error reported.
 */
static int
parse_template(const struct mh_init *init, const char *tmpl,
	       struct part **parts, size_t *nparts)
{
	char *lit;
	size_t i = 0, n = 0;

	if ((lit = malloc(strlen(tmpl) + 1)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	while (tmpl[i] != '\0') {
		if (tmpl[i] != '%') {
			lit[n++] = tmpl[i++];
			continue;
		}
		if (tmpl[i + 1] == '%') {
			lit[n++] = '%';
			i += 2;
			continue;
		}
		if (tmpl[i + 1] != '{') {
			mh_init_error(init, "value", "lone '%%' at character "
			    "%zu: write %%%% for a '%%', %%{name} for a macro",
			    i + 1);
			goto fail;
		}
		if (n > 0 && add_part(parts, nparts, false, lit, n) < 0)
			goto nomem;
		n = 0;
		if ((i = parse_macro(init, tmpl, i, parts, nparts)) == 0)
			goto fail;
	}
	if (n > 0 && add_part(parts, nparts, false, lit, n) < 0)
		goto nomem;
	free(lit);
	return 0;
nomem:
	mh_init_error(init, NULL, "out of memory");
fail:
	free(lit);
	return -1;
}

/* ---- init ------------------------------------------------------------- */

/* The settings of the section, checked one by one. */
struct settings {
	const char *header;
	const char *value;
	const char *position;
};

static int
collect_settings(const struct mh_init *init, struct settings *s)
{
	const struct bundled_key keys[] = {
		{ "header", &s->header },
		{ "value", &s->value },
		{ "position", &s->position },
		{ NULL, NULL },
	};

	if (bundled_read_settings(init, "addheader", keys) < 0)
		return -1;
	if (s->header == NULL)
		return mh_init_error(init, "header", "missing: name the "
		    "header to add, e.g. header = X-Milterhost");
	if (s->value == NULL)
		return mh_init_error(init, "value", "missing: give the "
		    "header's value, e.g. value = processed by %%{j}");
	if (*s->value == '\0')
		return mh_init_error(init, "value", "is empty");
	return 0;
}

/* Ask for the template's macros at the end of the message. */
static int
declare_macros(const struct mh_init *init, const struct addheader *ah)
{
	for (size_t i = 0; i < ah->nparts; i++)
		if (ah->parts[i].is_macro && mh_declare_macros(init,
		    MH_STAGE_EOM, ah->parts[i].text) != MH_OK)
			return -1;
	return 0;
}

static int
ah_init(const struct mh_init *init, void **state)
{
	struct settings s;
	struct addheader *ah;

	if (collect_settings(init, &s) < 0 ||
	    check_header_name(init, s.header) < 0)
		return -1;
	if ((ah = calloc(1, sizeof *ah)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	ah->position = APPEND;
	if ((s.position != NULL &&
	    parse_position(init, s.position, &ah->position) < 0) ||
	    parse_template(init, s.value, &ah->parts, &ah->nparts) < 0) {
		ah_fini(ah);
		return -1;
	}
	if ((ah->header = strdup(s.header)) == NULL) {
		ah_fini(ah);
		return mh_init_error(init, NULL, "out of memory");
	}
	if (declare_macros(init, ah) < 0) {
		ah_fini(ah);
		return -1;
	}
	*state = ah;
	return 0;
}

/* ---- end of message --------------------------------------------------- */

/* The text a part stands for in this message; never NULL. */
static const char *
part_text(mh_ctx *ctx, const struct part *part)
{
	const char *v;

	if (!part->is_macro)
		return part->text;
	v = mh_macro(ctx, part->text);
	return v != NULL ? v : "";
}

/*
 * Expand the template.  Returns a string to free, or NULL when out of
 * memory.  The host refuses a value with a CR, or an LF not followed by
 * a blank; a macro's CR and LF are turned into spaces here.
 */
static char *
expand(mh_ctx *ctx, const struct addheader *ah)
{
	size_t len = 0, n = 0;
	char *out;

	for (size_t i = 0; i < ah->nparts; i++)
		len += strlen(part_text(ctx, &ah->parts[i]));
	if ((out = malloc(len + 1)) == NULL)
		return NULL;
	for (size_t i = 0; i < ah->nparts; i++) {
		const char *t = part_text(ctx, &ah->parts[i]);
		size_t tlen = strlen(t);

		memcpy(out + n, t, tlen);
		if (ah->parts[i].is_macro)
			for (size_t j = n; j < n + tlen; j++)
				if (out[j] == '\r' || out[j] == '\n')
					out[j] = ' ';
		n += tlen;
	}
	out[n] = '\0';
	return out;
}

static mh_status
ah_eom(mh_ctx *ctx)
{
	const struct addheader *ah = mh_instance_state(ctx);
	char *value;
	int rc;

	if ((value = expand(ctx, ah)) == NULL) {
		mh_log(ctx, MH_LOG_ERR, "out of memory building header %s",
		    ah->header);
		return MH_FAIL;
	}
	if (ah->position == APPEND)
		rc = mh_header_add(ctx, ah->header, value);
	else
		rc = mh_header_insert(ctx, ah->position, ah->header, value);
	if (rc == MH_OK)
		mh_log(ctx, MH_LOG_DEBUG, "header %s: %s", ah->header, value);
	free(value);
	/* A refused change is logged by the host with its reason. */
	return rc == MH_OK ? MH_CONTINUE : MH_FAIL;
}

/*
 * Macros: each instance declares the ones its template names at the end
 * of the message (ah_init).  The descriptor also asks for the usual ones
 * at connect, where Postfix knows them all; the host adds Postfix's
 * defaults for each stage (connect: j {daemon_name} {daemon_addr} v _;
 * eom: i), and Postfix sends the defaults of the other stages unasked.
 * Macros of earlier stages of the connection and the message stay
 * visible at the end of the message.
 */
const struct mh_plugin milterhost_plugin = {
	MH_PLUGIN_ABI,
	.name = "addheader",
	.version = "1.0",
	.description = "add one header, with macros, to every message",
	.actions = MH_ACT_ADDHDRS,
	.macros = {
		[MH_STAGE_CONNECT] = "j {daemon_name} {client_addr} "
		    "{client_name}",
		[MH_STAGE_EOM] = "i",
	},
	.init = ah_init,
	.fini = ah_fini,
	.eom = ah_eom,
};

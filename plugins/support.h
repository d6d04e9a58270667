/*
 * support - what the bundled plugins share: reading the keys of the
 * plugin's section, SMTP replies, numbers, durations and networks
 * written in a setting, and parts of store keys.
 *
 * Built as a convenience library linked into each bundled plugin, so
 * every plugin file has its own copy; the plugins export nothing but
 * their descriptor (plugins/plugin.sym), so these functions never meet
 * another plugin's or the host's.  They use only <milterhost/plugin.h>,
 * like any plugin, and the host's src/netaddr.c, which needs only the C
 * library and is linked into this library as one of its files.  The names start with bundled_, for the reader.
 */
#ifndef PLUGINS_SUPPORT_H
#define PLUGINS_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>

#include <milterhost/plugin.h>

#include "../src/netaddr.h"

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

/* ---- replies ------------------------------------------------------------ */

/* The longest reply text mh_set_reply takes on one line. */
#define BUNDLED_REPLY_TEXT_MAX 980

/* A reply as written in a setting, "CODE [X.Y.Z] TEXT", split. */
struct bundled_reply {
	char rcode[4];    /* "452" */
	char xcode[12];   /* "4.5.3", or "" for none */
	const char *text; /* within the value parsed */
};

/* Does value start with a reply code: three digits, then a blank or the
 * end? */
bool bundled_reply_has_code(const char *value);

/*
 * Split value, which starts with a reply code (the caller has checked it
 * and its class), into reply: the code; an enhanced status code, if the
 * next word is digits and dots with a dot (as the host reads one), which
 * must be of the code's class with 1 to 3 digits in each of its last two
 * parts; and the text after the blanks, which must not be empty (the
 * message then shows example, a whole reply) and is checked by
 * bundled_check_reply_text().  Returns 0, or -1 with the reason in err.
 */
int bundled_parse_reply(const char *value, const char *example,
			struct bundled_reply *reply, char *err,
			size_t errlen);

/*
 * A reply's text: at most BUNDLED_REPLY_TEXT_MAX bytes.  Returns 0, or -1
 * with the reason in err.
 */
int bundled_check_reply_text(const char *text, char *err, size_t errlen);

/*
 * A tempfail reply written in a setting (key), owned: a 4xx code, an
 * optional enhanced status code of class 4 and a text.  A 5xx code is
 * refused: the client would give up what it was told to send again, and
 * mail would be lost.  Returns 0, or -1 reported with mh_init_error.
 */
struct bundled_tempfail {
	char rcode[4];
	char xcode[12];
	char *text;     /* malloc'd: bundled_tempfail_free() */
};

int bundled_parse_tempfail(const struct mh_init *init, const char *key,
			   const char *value, const char *example,
			   struct bundled_tempfail *reply);
void bundled_tempfail_free(struct bundled_tempfail *reply);
/*
 * Set reply as the callback's and return MH_TEMPFAIL, for the callback to
 * return; MH_FAIL if the host refused the reply (it logs why, and the
 * instance's on_error answers).
 */
mh_status bundled_tempfail(mh_ctx *ctx, const struct bundled_tempfail *reply);

/* ---- numbers, durations and other values ------------------------------- */

/*
 * A yes/no setting (mh_parse_bool's words) into *out; dflt if value is
 * NULL (not given).  Returns 0, or -1 reported for key.
 */
int bundled_parse_yesno(const struct mh_init *init, const char *key,
			const char *value, bool dflt, bool *out);

/*
 * The namespace setting: mh_declare_kv_namespace(value), with the name
 * checked here first so that the error names the key and its line (the
 * host's refusal of a declaration names none).  Returns 0, or -1
 * reported.
 */
int bundled_declare_namespace(const struct mh_init *init, const char *key,
			      const char *value);

/*
 * A number from min to max in decimal digits.  Returns 0, or -1 reported
 * with mh_init_error for key.
 */
int bundled_parse_number(const struct mh_init *init, const char *key,
			 const char *value, unsigned long min,
			 unsigned long max, unsigned long *out);

/*
 * A duration in seconds from min to max: digits, then optionally one of
 * s (seconds, the default), m (minutes), h (hours) or d (days): "90",
 * "90s", "5m", "4h", "36d".  Returns 0, or -1 reported for key.
 */
int bundled_parse_duration(const struct mh_init *init, const char *key,
			   const char *value, unsigned long min,
			   unsigned long max, unsigned long *out);

/* ---- networks ------------------------------------------------------------ */

/* A list of networks (exempt_networks); zeroed: empty. */
struct bundled_nets {
	struct netmask *v;
	size_t n;
};

/*
 * Add the networks of value to nets: addresses or ADDRESS/BITS, IPv4 or
 * IPv6, separated by blanks or commas.  key: the setting's own key
 * string (init->settings[i].key) for the line of the error.  Returns 0,
 * or -1 reported with mh_init_error.
 */
int bundled_parse_nets(const struct mh_init *init, const char *key,
		       const char *value, struct bundled_nets *nets);
/* Is the client address (text, NULL for none) in one of the networks? */
bool bundled_nets_contain(const struct bundled_nets *nets,
			  const char *address);
void bundled_nets_free(struct bundled_nets *nets);

/* ---- keys of the key-value store --------------------------------------- */

/*
 * Write text as a part of a store key into buf (size bytes, at least
 * 20): printable ASCII (33 to 126) as it is, lowercased if lower, other
 * bytes and '%' as %XX; and, if that does not fit, "#" and 16 hex digits
 * of a 64-bit hash of the whole text (FNV-1a, after lowercasing), so
 * that a long or odd address still has a key of its own.
 */
void bundled_key_part(const char *text, bool lower, char *buf, size_t size);

/*
 * An envelope address (as the MTA gives it, in angle brackets or not) as
 * a key part: without its brackets, lowercased, as bundled_key_part()
 * writes it.  Returns false for the null sender "<>" (buf then "").
 */
bool bundled_address_part(const char *addr, char *buf, size_t size);
/* Its domain, after the last '@', the same way; false if it has none. */
bool bundled_domain_part(const char *addr, char *buf, size_t size);

#endif /* PLUGINS_SUPPORT_H */

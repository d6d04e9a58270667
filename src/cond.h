/*
 * cond - the conditions of a plugin instance: when it takes part.
 *
 * The host keys if_client, if_daemon, if_auth, if_sender, if_rcpt and
 * if_macro of a [plugin:NAME] section, all optional; every one given must
 * hold.  config.c hands them over as written, with their lines; cond.c
 * parses and compiles them (networks, names, PCRE2 patterns) once, and
 * the chain (chain.c) asks it whether they hold, each at its own moment
 * (README "Conditions"):
 *
 *   connection  if_client, if_daemon: at the instance's first event of
 *               the SMTP session;
 *   message     if_auth, if_sender, if_macro: at its first event of each
 *               message;
 *   recipient   if_rcpt: at each recipient.
 *
 * Compiled conditions are immutable and shared (a reference count):
 * between the configuration that checked them and the plugin sets that
 * use them, and by every session of a set.
 */
#ifndef MILTERHOST_COND_H
#define MILTERHOST_COND_H

#include <stdbool.h>
#include <stddef.h>

struct config_setting;
struct cond;

/* Is key one of the condition keys? */
bool cond_is_key(const char *key);

/*
 * Compile the condition keys of one section (keys[0..n), each with its
 * line).  Returns 0 with *out set (NULL when n is 0), or -1 with
 * "FILE:LINE: [plugin:NAME] key 'if_x': ..." in err (a bad pattern says
 * where in the pattern).
 */
int cond_compile(const struct config_setting *keys, size_t n,
    const char *file, const char *section, struct cond **out, char *err,
    size_t errlen);
struct cond *cond_retain(struct cond *c);
void cond_release(struct cond *c);

/* Which kinds of conditions c has. */
bool cond_has_connection(const struct cond *c);
bool cond_has_message(const struct cond *c);
bool cond_has_rcpt(const struct cond *c);
/* The macros the conditions read, space-separated ("" for none). */
const char *cond_macros(const struct cond *c);

/* What the chain knows when it asks. */
struct cond_data {
	/* The value of a macro, or NULL (the MTA did not send it). */
	const char *(*macro)(void *arg, const char *name);
	void *arg;
	/* The client's address as text, from connect, or NULL (then the
	 * macro {client_addr} is read). */
	const char *client_addr;
	bool client_known;  /* connect came: client_addr is all there is */
	/* The envelope sender as the MTA gave it ("<a@b>"), or NULL
	 * (then the macro {mail_addr} is read). */
	const char *sender;
	/* Set by the check: the first macro it needed and did not get. */
	const char *missing;
};

/*
 * Do c's connection conditions hold?  Its message conditions?  (True
 * when there are none.)  On false, *failed names the key that failed.
 */
bool cond_connection_holds(const struct cond *c, struct cond_data *d,
    const char **failed);
bool cond_message_holds(const struct cond *c, struct cond_data *d,
    const char **failed);
/* Does rcpt ("<a@b>" as the MTA gave it) match if_rcpt? */
bool cond_rcpt_matches(const struct cond *c, const char *rcpt);

#endif /* MILTERHOST_COND_H */

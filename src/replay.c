/*
 * replay - milterhost-replay: run messages through a milterhost
 * configuration's chain offline, as the MTA would, and tell what the MTA
 * would have done.
 *
 * It loads the configuration and its plugins as the daemon does (the
 * same engine library, no libmilter), then replays each message given
 * (a file, or the files of a Maildir or of a directory) through mta.c's
 * simulated Postfix, writing a trace (trace.c) and, with -o, the
 * delivered message (deliver.c).  The exit status sums up the results
 * for scripts: see exit_code() and the README.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "address.h"
#include "config.h"
#include "deliver.h"
#include "loader.h"
#include "log.h"
#include "message.h"
#include "mta.h"
#include "mtamacros.h"
#include "paths.h"
#include "trace.h"

/* Exit statuses: the results' bits, or a failure to start. */
#define EXIT_REJECTED 1
#define EXIT_TEMPFAILED 2
#define EXIT_DISCARDED 4
#define EXIT_NOT_REPLAYED 8
#define EXIT_USAGE 64
#define EXIT_CONFIG 78

/* The MTA's offer: Postfix with milter_protocol = 6. */
#define OFFER_ACTIONS 0x1FFUL
#define OFFER_STEPS 0x1FFFFFUL

struct options {
	const char *config;
	const char *from;
	char **rcpts;
	size_t nrcpts;
	const char *out;       /* -o, or NULL */
	bool out_dir;          /* -o names a directory */
	bool quiet;
	struct mta_options mta;
	struct mtamacros *macros;
};

/* What -x takes away from the offer. */
static const struct {
	const char *name;
	unsigned long actions, steps;
} features[] = {
	{ "add_headers", MH_ACT_ADDHDRS, 0 },
	{ "change_headers", MH_ACT_CHGHDRS, 0 },
	{ "replace_body", MH_ACT_CHGBODY, 0 },
	{ "add_rcpt", MH_ACT_ADDRCPT, 0 },
	{ "add_rcpt_args", MH_ACT_ADDRCPT_PAR, 0 },
	{ "delete_rcpt", MH_ACT_DELRCPT, 0 },
	{ "change_from", MH_ACT_CHGFROM, 0 },
	{ "quarantine", MH_ACT_QUARANTINE, 0 },
	{ "setsymlist", ACT_SETSYMLIST, 0 },
	{ "skip", 0, PROTO_SKIP },
	{ "rcpt_rej", 0, PROTO_RCPT_REJ },
	{ "leadspc", 0, PROTO_HDR_LEADSPC },
	{ "noreply", 0, PROTO_NR_ALL },
};

/* The stages -A may stop at. */
static const mh_stage abort_stages[] = { MH_STAGE_ENVFROM, MH_STAGE_ENVRCPT,
    MH_STAGE_DATA, MH_STAGE_HEADER, MH_STAGE_EOH, MH_STAGE_BODY };

static void
usage(FILE *f)
{
	fprintf(f, "usage: milterhost-replay [-kq] [-c file] [-a address] "
	    "[-n name] [-H helo]\n"
	    "         [-u user] [-f sender] [-r recipient]... "
	    "[-D name=value]...\n"
	    "         [-x feature]... [-A stage] [-o path] message...\n"
	    "       milterhost-replay -V | -h\n"
	    "  -c file       configuration (default %s)\n"
	    "  -a address    client address: IPv4, IPv6, /socket/path or "
	    "unknown\n"
	    "                (default 192.0.2.1)\n"
	    "  -n name       client host name (default: not verified)\n"
	    "  -H helo       HELO name (default: the host name, else "
	    "client.example)\n"
	    "  -u user       authenticated user ({auth_authen})\n"
	    "  -f sender     MAIL FROM (default: Return-Path, else From)\n"
	    "  -r recipient  RCPT TO, repeatable (default: To, Cc and Bcc)\n"
	    "  -D name=value a macro the MTA sends (-D name: none)\n"
	    "  -x feature    not offered: skip, rcpt_rej, leadspc, noreply,\n"
	    "                setsymlist or an action (add_headers, ...)\n"
	    "  -k            one connection for every message\n"
	    "  -A stage      send each message up to stage, abort it, then "
	    "send it\n"
	    "  -o path       write the delivered message (a directory: one "
	    "file each)\n"
	    "  -q            print only the results\n"
	    "  -V            print the version\n"
	    "  -h            print this help\n", CONF_FILE);
}

static int
usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "milterhost-replay: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	usage(stderr);
	return -1;
}

static int
take_feature(struct options *o, const char *name)
{
	for (size_t i = 0; i < sizeof features / sizeof features[0]; i++)
		if (strcmp(name, features[i].name) == 0) {
			o->mta.actions &= ~features[i].actions;
			o->mta.steps &= ~features[i].steps;
			return 0;
		}
	return usage_error("-x %s: no such feature", name);
}

static int
take_abort_stage(struct options *o, const char *name)
{
	for (size_t i = 0; i < sizeof abort_stages / sizeof abort_stages[0];
	    i++)
		if (strcmp(name, stage_name(abort_stages[i])) == 0) {
			o->mta.abort_after = abort_stages[i];
			return 0;
		}
	return usage_error("-A %s: not one of envfrom, envrcpt, data, header, "
	    "eoh, body", name);
}

/* -D name=value, or -D name: the MTA sends no such macro. */
static int
take_macro(struct options *o, char *arg)
{
	char *eq = strchr(arg, '=');
	int rc;

	if (eq != NULL)
		*eq = '\0';
	if (*arg == '\0' || strcmp(arg, "{}") == 0)
		return usage_error("-D: no macro name");
	rc = mtamacros_fix(o->macros, arg, eq != NULL ? eq + 1 : NULL);
	if (eq != NULL)
		*eq = '=';
	return rc < 0 ? usage_error("out of memory") : 0;
}

static int
take_rcpt(struct options *o, char *arg)
{
	char **p = realloc(o->rcpts, (o->nrcpts + 1) * sizeof *p);

	if (p == NULL)
		return usage_error("out of memory");
	o->rcpts = p;
	o->rcpts[o->nrcpts++] = arg;
	return 0;
}

/* Parse the options; returns optind, -1 after a usage error, 0 when
 * done (-V, -h). */
static int
parse_options(int argc, char **argv, struct options *o)
{
	struct sockaddr_storage ss;
	char err[256];
	bool known;
	int ch;

	while ((ch = getopt(argc, argv, "a:A:c:D:f:hH:kn:o:qr:u:Vx:")) != -1) {
		int rc = 0;

		switch (ch) {
		case 'a': o->mta.client_addr = optarg; break;
		case 'A': rc = take_abort_stage(o, optarg); break;
		case 'c': o->config = optarg; break;
		case 'D': rc = take_macro(o, optarg); break;
		case 'f': o->from = optarg; break;
		case 'H': o->mta.helo = optarg; break;
		case 'k': o->mta.keep = true; break;
		case 'n': o->mta.client_name = optarg; break;
		case 'o': o->out = optarg; break;
		case 'q': o->quiet = true; break;
		case 'r': rc = take_rcpt(o, optarg); break;
		case 'u': o->mta.auth_user = optarg; break;
		case 'x': rc = take_feature(o, optarg); break;
		case 'V':
			printf("milterhost-replay %s (plugin ABI %d.%d)\n",
			    PACKAGE_VERSION, MH_ABI_MAJOR, MH_ABI_MINOR);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return -1;
		}
		if (rc < 0)
			return -1;
	}
	if (optind == argc)
		return usage_error("no message given");
	if (mta_client_address(o->mta.client_addr, &ss, &known, err,
	    sizeof err) < 0)
		return usage_error("-a: %s", err);
	if (o->mta.helo == NULL)
		o->mta.helo = o->mta.client_name != NULL ?
		    o->mta.client_name : "client.example";
	return optind;
}

/* ---- the messages -------------------------------------------------------- */

/* A string made by printf, or NULL if out of memory. */
static char *
format(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static char *
format(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

struct inputs {
	char **paths;
	size_t n, cap;
};

/* Add path (taken over) to the messages. */
static int
add_input(struct inputs *in, char *path)
{
	if (path == NULL)
		return -1;
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 16;
		char **p = realloc(in->paths, cap * sizeof *p);

		if (p == NULL) {
			free(path);
			return -1;
		}
		in->paths = p;
		in->cap = cap;
	}
	in->paths[in->n++] = path;
	return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int
not_hidden(const struct dirent *d)
{
	return d->d_name[0] != '.';
}

static bool
is_directory(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The regular files of dir, by name. */
static int
add_directory(struct inputs *in, const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, not_hidden, by_name), rc = 0;

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		char *path = rc == 0 ? format("%s/%s", dir, list[i]->d_name) :
		    NULL;
		struct stat st;

		if (path != NULL && stat(path, &st) == 0 &&
		    S_ISREG(st.st_mode))
			rc = add_input(in, path);
		else
			free(path);
		free(list[i]);
	}
	free(list);
	return rc;
}

/* A file, a Maildir (its new/, then its cur/) or a directory of files. */
static int
add_argument(struct inputs *in, const char *arg)
{
	char *new = format("%s/new", arg), *cur = format("%s/cur", arg);
	int rc;

	if (new == NULL || cur == NULL)
		rc = -1;
	else if (!is_directory(arg))
		rc = add_input(in, strdup(arg));
	else if (is_directory(new) || is_directory(cur))
		rc = (is_directory(new) ? add_directory(in, new) : 0) < 0 ||
		    (is_directory(cur) ? add_directory(in, cur) : 0) < 0 ?
		    -1 : 0;
	else
		rc = add_directory(in, arg);
	free(new);
	free(cur);
	return rc;
}

/* ---- the envelope -------------------------------------------------------- */

struct collect {
	struct envelope *env;
	bool first_only;
};

static bool
already(const struct envelope *env, const char *address)
{
	for (size_t i = 0; i < env->nrcpts; i++)
		if (strlen(env->rcpts[i]) == strlen(address) + 2 &&
		    strncasecmp(env->rcpts[i] + 1, address,
		    strlen(address)) == 0)
			return true;
	return false;
}

/* One address of a header: the sender, or one more recipient. */
static int
collect(void *arg, const char *address)
{
	struct collect *c = arg;
	char *line, **p;

	if (c->first_only)
		return (c->env->from = format("<%s>", address)) != NULL ? 1 :
		    -1;
	if (*address == '\0' || already(c->env, address))
		return 0;
	if ((p = realloc(c->env->rcpts, (c->env->nrcpts + 1) * sizeof *p)) ==
	    NULL)
		return -1;
	c->env->rcpts = p;
	if ((line = format("<%s>", address)) == NULL)
		return -1;
	c->env->rcpts[c->env->nrcpts++] = line;
	return 0;
}

/* arg as MAIL FROM or RCPT TO's argument: the address in brackets. */
static char *
envelope_arg(const char *arg)
{
	char *line;

	arg += strspn(arg, " \t");
	if (*arg == '\0' || *arg == '<')
		line = strdup(*arg == '\0' ? "<>" : arg);
	else {
		size_t n = strcspn(arg, " \t");

		line = format("<%.*s>%s", (int)n, arg, arg + n);
	}
	return line;
}

static void
free_envelope(struct envelope *env)
{
	free(env->from);
	for (size_t i = 0; i < env->nrcpts; i++)
		free(env->rcpts[i]);
	free(env->rcpts);
	free(env->refused);
	memset(env, 0, sizeof *env);
}

/* The header fields called name, their addresses to c. */
static int
addresses_of(const struct message *msg, const char *name, struct collect *c)
{
	for (size_t i = 0; i < msg->nheaders; i++) {
		int rc;

		if (strcasecmp(msg->headers[i].name, name) != 0)
			continue;
		rc = address_list(header_value(&msg->headers[i]), collect, c);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/*
 * The envelope: the options', else the message's (the sender from
 * Return-Path, else From, else <>; the recipients of To, Cc and Bcc).
 * Returns 0, or -1 with the reason in err.
 */
static int
make_envelope(const struct options *o, const struct message *msg,
    struct envelope *env, char *err, size_t errlen)
{
	struct collect c = { env, true };
	int rc = 0;

	memset(env, 0, sizeof *env);
	if (o->from != NULL)
		env->from = envelope_arg(o->from);
	else if ((rc = addresses_of(msg, "Return-Path", &c)) == 0 &&
	    (rc = addresses_of(msg, "From", &c)) == 0)
		env->from = strdup("<>");
	if (rc < 0 || env->from == NULL)
		goto nomem;
	c.first_only = false;
	for (size_t i = 0; i < o->nrcpts; i++) {
		char **p = realloc(env->rcpts, (i + 1) * sizeof *p);

		if (p == NULL)
			goto nomem;
		env->rcpts = p;
		if ((env->rcpts[i] = envelope_arg(o->rcpts[i])) == NULL)
			goto nomem;
		env->nrcpts++;
	}
	if (o->nrcpts == 0 && ((rc = addresses_of(msg, "To", &c)) < 0 ||
	    (rc = addresses_of(msg, "Cc", &c)) < 0 ||
	    (rc = addresses_of(msg, "Bcc", &c)) < 0))
		goto nomem;
	if (env->nrcpts == 0) {
		snprintf(err, errlen, "no recipient: the message has no "
		    "address in To, Cc or Bcc (give -r)");
		free_envelope(env);
		return -1;
	}
	if ((env->refused = calloc(env->nrcpts, sizeof *env->refused)) ==
	    NULL)
		goto nomem;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	free_envelope(env);
	return -1;
}

/* ---- what was delivered ---------------------------------------------------- */

/* arg's address without brackets and arguments, n bytes: *len. */
static const char *
address_part(const char *arg, size_t *len)
{
	const char *p = arg + (*arg == '<');

	*len = strcspn(p, "> \t");
	return p;
}

static bool
same_address(const char *a, const char *b)
{
	size_t na, nb;
	const char *pa = address_part(a, &na), *pb = address_part(b, &nb);

	return na == nb && strncasecmp(pa, pb, na) == 0;
}

/* A recipient line of the delivered envelope. */
static void
trace_recipient(struct trace *t, const char *rcpt, const char *args)
{
	if (!trace_begin(t, "envelope"))
		return;
	trace_word(t, "to");
	trace_word(t, rcpt);
	trace_word(t, args);
	trace_end(t);
}

/* The envelope the message is delivered with: the changes applied. */
static void
trace_delivered(struct trace *t, const struct envelope *env,
    const struct mod_list *mods)
{
	const struct mod *from = NULL, *held = NULL;

	for (size_t i = 0; i < mods->n; i++) {
		if (mods->items[i]->type == MOD_CHANGE_FROM)
			from = mods->items[i];
		else if (mods->items[i]->type == MOD_QUARANTINE && held == NULL)
			held = mods->items[i];
	}
	if (trace_begin(t, "envelope")) {
		trace_word(t, "from");
		trace_word(t, from != NULL ? from->value : env->from);
		if (from != NULL)
			trace_word(t, from->args);
		trace_end(t);
	}
	for (size_t i = 0; i < env->nrcpts; i++) {
		bool deleted = env->refused[i];

		for (size_t k = 0; k < mods->n && !deleted; k++)
			deleted = mods->items[k]->type == MOD_DELETE_RCPT &&
			    same_address(mods->items[k]->value, env->rcpts[i]);
		if (!deleted)
			trace_recipient(t, env->rcpts[i], NULL);
	}
	for (size_t i = 0; i < mods->n; i++)
		if (mods->items[i]->type == MOD_ADD_RCPT)
			trace_recipient(t, mods->items[i]->value,
			    mods->items[i]->args);
	if (held != NULL && trace_begin(t, "envelope")) {
		trace_word(t, "held");
		trace_quoted(t, held->value, strlen(held->value));
		trace_end(t);
	}
}

/* Write the delivered message where -o says.  -1: it was not. */
static int
write_delivered(const struct options *o, struct message *msg,
    const struct outcome *out, char *err, size_t errlen)
{
	const char *base = strrchr(msg->path, '/');
	char *path;
	FILE *f;
	int rc;

	if (o->out == NULL)
		return 0;
	if (strcmp(o->out, "-") == 0)
		return deliver_write(stdout, msg, out->mods, out->leadspc, err,
		    errlen);
	path = o->out_dir ? format("%s/%s", o->out, base != NULL ?
	    base + 1 : msg->path) : strdup(o->out);
	if (path == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((f = fopen(path, "wb")) == NULL) {
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
		free(path);
		return -1;
	}
	rc = deliver_write(f, msg, out->mods, out->leadspc, err, errlen);
	if (fclose(f) == EOF && rc == 0) {
		snprintf(err, errlen, "cannot write %s: %s", path,
		    strerror(errno));
		rc = -1;
	}
	free(path);
	return rc;
}

/* ---- results -------------------------------------------------------------- */

struct totals {
	unsigned n[MH_FAIL + 1];   /* by status; MH_FAIL: not replayed */
	int code;
};

static int
exit_code(mh_status st)
{
	switch (st) {
	case MH_REJECT:
		return EXIT_REJECTED;
	case MH_TEMPFAIL:
		return EXIT_TEMPFAILED;
	case MH_DISCARD:
		return EXIT_DISCARDED;
	case MH_ACCEPT:
		return 0;
	default:
		return EXIT_NOT_REPLAYED;
	}
}

static void
trace_result(struct trace *t, const struct outcome *out)
{
	static const char *const words[] = { [MH_REJECT] = "rejected",
	    [MH_TEMPFAIL] = "tempfailed", [MH_DISCARD] = "discarded",
	    [MH_ACCEPT] = "accepted" };

	if (!trace_begin(t, "result"))
		return;
	trace_fmt(t, " %s at %s", words[out->status], stage_name(out->stage));
	if (out->no_rcpt)
		trace_fmt(t, " (no recipient taken)");
	if (out->decider != NULL) {
		trace_fmt(t, " by [");
		trace_fmt(t, "%s", out->decider);
		trace_fmt(t, "]");
	} else if (out->score[0] != '\0') {
		trace_fmt(t, " by score");
		trace_quoted(t, out->score, strlen(out->score));
	}
	if (out->reply[0] != '\0')
		trace_quoted(t, out->reply, strlen(out->reply));
	if (out->status == MH_ACCEPT)
		trace_fmt(t, " changes=%zu", out->changes);
	trace_fmt(t, " rcpts=%zu/%zu", out->taken, out->rcpts);
	trace_end(t);
}

static void
trace_failure(struct trace *t, const char *path, const char *why)
{
	fprintf(stderr, "milterhost-replay: %s: %s\n", path, why);
	if (trace_begin(t, "error")) {
		trace_word(t, path);
		trace_quoted(t, why, strlen(why));
		trace_end(t);
	}
	if (trace_begin(t, "result")) {
		trace_fmt(t, " failed");
		trace_end(t);
	}
}

/* "message N FILE from <..> to <..> ...". */
static void
trace_message(struct trace *t, const struct message *msg,
    const struct envelope *env)
{
	if (!trace_begin(t, "message"))
		return;
	trace_word(t, msg->path);
	trace_fmt(t, " headers=%zu from", msg->nheaders);
	trace_word(t, env->from);
	for (size_t i = 0; i < env->nrcpts; i++) {
		trace_fmt(t, " to");
		trace_word(t, env->rcpts[i]);
	}
	trace_end(t);
}

/* Replay one file; its result into tot. */
static void
replay_one(const struct options *o, struct mta *mta, struct trace *t,
    const char *path, struct totals *tot)
{
	struct message msg;
	struct envelope env;
	struct outcome out;
	char err[1024];
	int rc;

	if (message_open(&msg, path, err, sizeof err) < 0) {
		trace_failure(t, path, err);
		tot->n[MH_FAIL]++;
		tot->code |= EXIT_NOT_REPLAYED;
		return;
	}
	if (make_envelope(o, &msg, &env, err, sizeof err) < 0) {
		trace_failure(t, path, err);
		message_close(&msg);
		tot->n[MH_FAIL]++;
		tot->code |= EXIT_NOT_REPLAYED;
		return;
	}
	trace_message(t, &msg, &env);
	rc = mta_replay(mta, &msg, &env, &out, err, sizeof err);
	if (rc == 0 && out.status == MH_ACCEPT) {
		trace_delivered(t, &env, out.mods);
		if (write_delivered(o, &msg, &out, err, sizeof err) < 0)
			rc = -1;
	}
	mta_finish(mta);
	if (rc < 0) {
		trace_failure(t, path, err);
		tot->n[MH_FAIL]++;
		tot->code |= EXIT_NOT_REPLAYED;
	} else {
		trace_result(t, &out);
		tot->n[out.status]++;
		tot->code |= exit_code(out.status);
	}
	free_envelope(&env);
	message_close(&msg);
}

/* The process's peak resident memory in kB (VmHWM), or 0 if unknown. */
static unsigned long
peak_rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "VmHWM: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void
trace_totals(struct trace *t, const struct totals *tot, size_t messages)
{
	unsigned long kb = peak_rss_kb();

	t->msg = (unsigned)messages;
	if (!trace_begin(t, "total"))
		return;
	trace_fmt(t, " accepted=%u rejected=%u tempfailed=%u discarded=%u "
	    "failed=%u", tot->n[MH_ACCEPT], tot->n[MH_REJECT],
	    tot->n[MH_TEMPFAIL], tot->n[MH_DISCARD], tot->n[MH_FAIL]);
	if (kb > 0)
		trace_fmt(t, " peak_rss=%lukB", kb);
	trace_end(t);
}

/* Load the configuration and its plugins; NULL (said why) if they do
 * not load. */
static struct plugin_set *
load(const struct options *o, struct config **cfg)
{
	char err[1024];
	struct plugin_set *set;

	if ((*cfg = config_load(o->config, err, sizeof err)) == NULL) {
		fprintf(stderr, "milterhost-replay: %s\n", err);
		return NULL;
	}
	log_open(true, (*cfg)->log_facility, (*cfg)->log_level);
	if ((set = plugin_set_load(*cfg, err, sizeof err)) == NULL) {
		fprintf(stderr, "milterhost-replay: %s\n", err);
		config_free(*cfg);
		*cfg = NULL;
	}
	return set;
}

/* Check -o against the messages: a directory, or one message. */
static int
check_output(struct options *o, size_t messages)
{
	struct stat st;

	if (o->out == NULL)
		return 0;
	o->out_dir = stat(o->out, &st) == 0 && S_ISDIR(st.st_mode);
	if (!o->out_dir && messages > 1)
		return usage_error("-o %s: not a directory, and there are "
		    "several messages", o->out);
	return 0;
}

int
main(int argc, char **argv)
{
	struct options o = { .config = CONF_FILE };
	struct trace t = { .out = stdout };
	struct inputs in = { 0 };
	struct totals tot = { { 0 }, 0 };
	struct plugin_set *set;
	struct config *cfg;
	struct kv_store *kv;
	struct mta *mta;
	int first;

	o.mta = (struct mta_options){ .actions = OFFER_ACTIONS,
	    .steps = OFFER_STEPS, .client_addr = "192.0.2.1",
	    .abort_after = MH_STAGE_COUNT };
	if ((o.macros = mtamacros_new()) == NULL)
		return EXIT_USAGE;
	if ((first = parse_options(argc, argv, &o)) <= 0) {
		mtamacros_free(o.macros);
		free(o.rcpts);
		return first == 0 ? 0 : EXIT_USAGE;
	}
	for (int i = first; i < argc; i++)
		if (add_argument(&in, argv[i]) < 0) {
			fprintf(stderr, "milterhost-replay: %s: %s\n", argv[i],
			    strerror(errno));
			tot.code |= EXIT_NOT_REPLAYED;
		}
	if (check_output(&o, in.n) < 0) {
		tot.code = EXIT_USAGE;
		goto out;
	}
	/* The delivered message on stdout: the trace goes to stderr. */
	if (o.out != NULL && strcmp(o.out, "-") == 0)
		t.out = stderr;
	t.quiet = o.quiet;
	if ((set = load(&o, &cfg)) == NULL) {
		tot.code = EXIT_CONFIG;
		goto out;
	}
	/* Its own store, in memory whatever kv says: a replay must not
	 * count into the daemons' state.  The messages of one run share it. */
	kv = kv_memory_open(cfg->kv.memory_max, KV_MEMORY_SHARDS, NULL);
	set->kv = kv;
	if (kv != NULL && (mta = mta_new(set, &o.mta, o.macros, &t)) != NULL) {
		for (size_t i = 0; i < in.n; i++) {
			t.msg = (unsigned)i + 1;
			replay_one(&o, mta, &t, in.paths[i], &tot);
			fflush(t.out);
		}
		mta_free(mta);
	} else {
		fprintf(stderr, "milterhost-replay: out of memory\n");
		tot.code |= EXIT_NOT_REPLAYED;
	}
	plugin_set_release(set);
	kv_close(kv);
	config_free(cfg);
	trace_totals(&t, &tot, in.n);
out:
	for (size_t i = 0; i < in.n; i++)
		free(in.paths[i]);
	free(in.paths);
	free(o.rcpts);
	mtamacros_free(o.macros);
	return tot.code;
}

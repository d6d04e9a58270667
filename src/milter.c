/*
 * milter - the libmilter adapter.  See milter.h.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "chain.h"
#include "log.h"
#include "metrics.h"
#include "milter.h"
#include "reuse.h"
#include "runfiles.h"

/*
 * The engine speaks the milter protocol's values without including
 * libmilter (chain.h, <milterhost/plugin.h>): they must be libmilter's.
 */
_Static_assert(PROTO_NOCONNECT == SMFIP_NOCONNECT, "SMFIP_NOCONNECT");
_Static_assert(PROTO_NOHELO == SMFIP_NOHELO, "SMFIP_NOHELO");
_Static_assert(PROTO_NOMAIL == SMFIP_NOMAIL, "SMFIP_NOMAIL");
_Static_assert(PROTO_NORCPT == SMFIP_NORCPT, "SMFIP_NORCPT");
_Static_assert(PROTO_NOBODY == SMFIP_NOBODY, "SMFIP_NOBODY");
_Static_assert(PROTO_NOHDRS == SMFIP_NOHDRS, "SMFIP_NOHDRS");
_Static_assert(PROTO_NOEOH == SMFIP_NOEOH, "SMFIP_NOEOH");
_Static_assert(PROTO_NOUNKNOWN == SMFIP_NOUNKNOWN, "SMFIP_NOUNKNOWN");
_Static_assert(PROTO_NODATA == SMFIP_NODATA, "SMFIP_NODATA");
_Static_assert(PROTO_SKIP == SMFIP_SKIP, "SMFIP_SKIP");
_Static_assert(PROTO_RCPT_REJ == SMFIP_RCPT_REJ, "SMFIP_RCPT_REJ");
_Static_assert(PROTO_HDR_LEADSPC == SMFIP_HDR_LEADSPC, "SMFIP_HDR_LEADSPC");
_Static_assert(ACT_SETSYMLIST == SMFIF_SETSYMLIST, "SMFIF_SETSYMLIST");
_Static_assert(MH_ACT_ADDHDRS == SMFIF_ADDHDRS, "SMFIF_ADDHDRS");
_Static_assert(MH_ACT_CHGBODY == SMFIF_CHGBODY, "SMFIF_CHGBODY");
_Static_assert(MH_ACT_ADDRCPT == SMFIF_ADDRCPT, "SMFIF_ADDRCPT");
_Static_assert(MH_ACT_DELRCPT == SMFIF_DELRCPT, "SMFIF_DELRCPT");
_Static_assert(MH_ACT_CHGHDRS == SMFIF_CHGHDRS, "SMFIF_CHGHDRS");
_Static_assert(MH_ACT_QUARANTINE == SMFIF_QUARANTINE, "SMFIF_QUARANTINE");
_Static_assert(MH_ACT_CHGFROM == SMFIF_CHGFROM, "SMFIF_CHGFROM");
_Static_assert(MH_ACT_ADDRCPT_PAR == SMFIF_ADDRCPT_PAR, "SMFIF_ADDRCPT_PAR");
_Static_assert(MACRO_CONNECT == SMFIM_CONNECT && MACRO_HELO == SMFIM_HELO &&
    MACRO_ENVFROM == SMFIM_ENVFROM && MACRO_ENVRCPT == SMFIM_ENVRCPT &&
    MACRO_DATA == SMFIM_DATA && MACRO_EOM == SMFIM_EOM &&
    MACRO_EOH == SMFIM_EOH, "SMFIM_*");

/* libmilter refuses a single command larger than this. */
#define CHUNK_MAX 65535

/* libmilter's pool closes a connection idle for longer than its I/O
 * timeout, looking every 600 s: a record older than both is dead. */
#define POOL_CHECK_SECONDS 600

static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static struct plugin_set *current_set;
/* The plugins' key-value store: the daemon's, given to every set. */
static struct kv_store *daemon_kv;
static unsigned open_sessions; /* atomic */

/* Set once, before smfi_main. */
static bool over_tcp;
static int listen_fd = -1;     /* libmilter's listening socket */
static unsigned idle_limit;    /* seconds a reuse record may live */

void
milter_set_store(struct kv_store *kv)
{
	daemon_kv = kv;
}

/* Every set gets the one store: what plugins stored survives a reload. */
void
milter_set_plugins(struct plugin_set *set)
{
	struct plugin_set *old;

	if (set != NULL)
		set->kv = daemon_kv;
	pthread_mutex_lock(&set_lock);
	old = current_set;
	if (set != NULL && metrics_enabled()) {
		if (metrics_attach(set) < 0)
			log_msg(LOG_ERR, "out of memory for the metrics of the "
			    "plugin instances");
		metrics_set_installed();
	}
	current_set = set ? plugin_set_retain(set) : NULL;
	pthread_mutex_unlock(&set_lock);
	if (old != NULL)
		plugin_set_release(old);
}

static struct plugin_set *
take_current_set(void)
{
	struct plugin_set *set;

	pthread_mutex_lock(&set_lock);
	set = current_set ? plugin_set_retain(current_set) : NULL;
	pthread_mutex_unlock(&set_lock);
	return set;
}

static const char *
io_macro(void *arg, const char *name)
{
	return smfi_getsymval(arg, (char *)name);
}

static int
io_progress(void *arg)
{
	return smfi_progress(arg) == MI_SUCCESS ? 0 : -1;
}

/* A session for ctx, bound to the plugin set of the moment. */
static struct session *
start_session(SMFICTX *ctx)
{
	struct chain_io io = { .macro = io_macro, .progress = io_progress,
	    .arg = ctx };

	if (metrics_enabled()) {
		io.report = metrics_call;
		io.message_end = metrics_message;
	}
	struct plugin_set *set = take_current_set();
	struct session *s;

	if (set == NULL)
		return NULL;
	s = session_new(set, &io);
	plugin_set_release(set);
	if (s == NULL) {
		log_msg(LOG_ERR, "out of memory starting a session");
		return NULL;
	}
	__atomic_add_fetch(&open_sessions, 1, __ATOMIC_SEQ_CST);
	if (metrics_enabled())
		metrics_connection(1);
	smfi_setpriv(ctx, s);
	return s;
}

static sfsistat
to_sfsistat(mh_status st)
{
	switch (st) {
	case MH_REJECT:
		return SMFIS_REJECT;
	case MH_DISCARD:
		return SMFIS_DISCARD;
	case MH_ACCEPT:
		return SMFIS_ACCEPT;
	case MH_TEMPFAIL:
		return SMFIS_TEMPFAIL;
	case MH_SKIP:
		return SMFIS_SKIP;
	default:
		return SMFIS_CONTINUE;
	}
}

static void
send_reply(SMFICTX *ctx, const struct reply *r)
{
	const char *l[REPLY_MAX_LINES] = { 0 };
	char *xcode = r->xcode[0] ? (char *)r->xcode : NULL;
	int rc;

	if (r->nlines == 1) {
		rc = smfi_setreply(ctx, (char *)r->rcode, xcode, r->lines[0]);
	} else {
		for (size_t i = 0; i < r->nlines; i++)
			l[i] = r->lines[i];
		rc = smfi_setmlreply(ctx, r->rcode, xcode, l[0], l[1], l[2],
		    l[3], l[4], l[5], l[6], l[7], l[8], l[9], l[10], l[11],
		    l[12], l[13], l[14], l[15], l[16], l[17], l[18], l[19],
		    l[20], l[21], l[22], l[23], l[24], l[25], l[26], l[27],
		    l[28], l[29], l[30], l[31], (char *)NULL);
	}
	if (rc != MI_SUCCESS)
		log_msg(LOG_WARNING, "libmilter refused the reply %s %s",
		    r->rcode, r->xcode);
}

static sfsistat
answer(SMFICTX *ctx, struct verdict v)
{
	if (v.unanswered)
		return SMFIS_NOREPLY;
	if (v.reply != NULL && v.reply->nlines > 0)
		send_reply(ctx, v.reply);
	return to_sfsistat(v.status);
}

/*
 * The engine's answer to the MTA's offer for session s.  Over TCP, never
 * let the MTA skip DATA: Postfix still sends the DATA stage's macros when
 * the command is skipped, and a message that gets no reply leaves its ACK
 * delayed by up to 40 ms; the next write (the end-of-message command,
 * from Postfix's cleanup) then waits that long on Nagle's algorithm.
 * Taking DATA, answered by the plugins that want it (or at once by none),
 * costs one round trip and keeps every packet acknowledged.  A unix
 * socket has no Nagle: there DATA is skipped when no plugin wants it.
 */
static void
negotiate(struct session *s, const struct mta_offer *offer,
    struct negotiation *n)
{
	n->mta_actions = offer->actions;
	n->mta_steps = offer->steps;
	chain_negotiate(s, n);
	if (over_tcp)
		n->steps &= ~(unsigned long)SMFIP_NODATA;
}

static sfsistat
xx_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	struct mta_offer offer = { f0, f1 };
	struct negotiation n;
	struct session *s = start_session(ctx);

	*pf2 = *pf3 = 0;
	if (s == NULL) {
		/*
		 * Out of memory.  Never fail negotiation (the MTA would apply
		 * its default action to the whole session, which may be
		 * "accept"): ask for connect only, and tempfail it there.
		 */
		*pf0 = 0;
		*pf1 = f1 & (SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
		    SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH |
		    SMFIP_NOUNKNOWN | SMFIP_NODATA);
		return SMFIS_CONTINUE;
	}
	if (!reuse_remember(ctx, &offer, idle_limit))
		log_msg(LOG_WARNING, "out of memory: a second SMTP session on "
		    "this milter connection will be tempfailed");
	negotiate(s, &offer, &n);
	for (int m = 0; m < MACRO_STAGES; m++) {
		if (n.macros[m] == NULL)
			continue;
		if (smfi_setsymlist(ctx, m, (char *)n.macros[m]) != MI_SUCCESS)
			log_msg(LOG_WARNING, "smfi_setsymlist(%d, \"%s\") "
			    "failed", m, n.macros[m]);
	}
	*pf0 = n.actions;
	*pf1 = n.steps;
	return SMFIS_CONTINUE;
}

/*
 * An event without a session: the MTA ended the previous SMTP session
 * with SMFIC_QUIT_NC and starts another on this connection, without a
 * new negotiation.  Its first event is connect, or whichever later one
 * the plugins take (the MTA skips the stages none implements).  The new
 * session is negotiated as the first was, from the MTA's offer kept since
 * then, so that it is filtered the same way.
 */
static struct session *
resume_session(SMFICTX *ctx)
{
	struct mta_offer offer;
	struct negotiation n;
	struct session *s;

	if (!reuse_recall(ctx, &offer)) {
		log_msg(LOG_ERR, "no session for this connection (out of "
		    "memory, or an SMTP session on a reused milter connection "
		    "whose negotiation is not known): answering tempfail");
		return NULL;
	}
	if ((s = start_session(ctx)) == NULL)
		return NULL;
	negotiate(s, &offer, &n);
	return s;
}

/* The session of ctx, or NULL: then nothing is lost by a tempfail. */
static struct session *
session_of(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);

	return s != NULL ? s : resume_session(ctx);
}

static sfsistat
xx_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *addr)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_connect(s, hostname, addr)) :
	    SMFIS_TEMPFAIL;
}

static sfsistat
xx_helo(SMFICTX *ctx, char *name)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_helo(s, name)) : SMFIS_TEMPFAIL;
}

static sfsistat
xx_envfrom(SMFICTX *ctx, char **argv)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_envfrom(s, argv)) : SMFIS_TEMPFAIL;
}

static sfsistat
xx_envrcpt(SMFICTX *ctx, char **argv)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_envrcpt(s, argv)) : SMFIS_TEMPFAIL;
}

static sfsistat
xx_data(SMFICTX *ctx)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_data(s)) : SMFIS_TEMPFAIL;
}

static sfsistat
xx_unknown(SMFICTX *ctx, const char *command)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_unknown(s, command)) : SMFIS_TEMPFAIL;
}

/* Without a session the MTA hears tempfail at the next answered event
 * (libmilter does not send one here if no reply was negotiated). */
static sfsistat
xx_header(SMFICTX *ctx, char *name, char *value)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_header(s, name, value)) : SMFIS_TEMPFAIL;
}

static sfsistat
xx_eoh(SMFICTX *ctx)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_eoh(s)) : SMFIS_TEMPFAIL;
}

static sfsistat
xx_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	struct session *s = session_of(ctx);

	return s ? answer(ctx, chain_body(s, chunk, len)) : SMFIS_TEMPFAIL;
}

static int
apply_body(SMFICTX *ctx, const struct mod *m)
{
	size_t off = 0;

	do {
		size_t n = m->len - off > CHUNK_MAX ? CHUNK_MAX : m->len - off;

		if (smfi_replacebody(ctx, m->body ? m->body + off :
		    (unsigned char *)"", (int)n) != MI_SUCCESS)
			return -1;
		off += n;
	} while (off < m->len);
	return 0;
}

static int
apply_mod(SMFICTX *ctx, const struct mod *m)
{
	int rc = MI_FAILURE;

	switch (m->type) {
	case MOD_ADD_HEADER:
		rc = smfi_addheader(ctx, m->name, m->value);
		break;
	case MOD_INSERT_HEADER:
		rc = smfi_insheader(ctx, m->index, m->name, m->value);
		break;
	case MOD_CHANGE_HEADER:
		rc = smfi_chgheader(ctx, m->name, m->index, m->value);
		break;
	case MOD_REPLACE_BODY:
		return apply_body(ctx, m);
	case MOD_ADD_RCPT:
		rc = m->args ? smfi_addrcpt_par(ctx, m->value, m->args) :
		    smfi_addrcpt(ctx, m->value);
		break;
	case MOD_DELETE_RCPT:
		rc = smfi_delrcpt(ctx, m->value);
		break;
	case MOD_CHANGE_FROM:
		rc = smfi_chgfrom(ctx, m->value, m->args);
		break;
	case MOD_QUARANTINE:
		rc = smfi_quarantine(ctx, m->value);
		break;
	}
	return rc == MI_SUCCESS ? 0 : -1;
}

/* Send the merged changes to the MTA; false if it refused one. */
static bool
apply_mods(SMFICTX *ctx, const struct mod_list *mods)
{
	for (size_t i = 0; i < mods->n; i++) {
		if (apply_mod(ctx, mods->items[i]) < 0) {
			const char *qid = smfi_getsymval(ctx, "i");

			log_msg(LOG_ERR, "%s: cannot send %s of [%s] to the "
			    "MTA: answering tempfail", qid ? qid : "NOQUEUE",
			    mod_type_name(mods->items[i]->type),
			    mods->items[i]->owner);
			return false;
		}
	}
	return true;
}

static sfsistat
xx_eom(SMFICTX *ctx)
{
	struct session *s = session_of(ctx);
	const struct mod_list *mods;
	struct verdict v;
	bool sent;

	if (s == NULL)
		return SMFIS_TEMPFAIL;
	v = chain_eom(s, &mods);
	sent = apply_mods(ctx, mods);
	chain_eom_applied(s);
	/* The MTA went away or refused a change: nothing is lost if the
	 * client is told to try again. */
	return sent ? answer(ctx, v) : SMFIS_TEMPFAIL;
}

static sfsistat
xx_abort(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);

	if (s != NULL)
		chain_abort(s);
	return SMFIS_CONTINUE;
}

static sfsistat
xx_close(SMFICTX *ctx)
{
	struct session *s = smfi_getpriv(ctx);

	if (s == NULL) {
		/*
		 * After SMFIC_QUIT_NC the connection's end brings a second
		 * close: the last session had its close already.
		 */
		if (reuse_forget(ctx))
			return SMFIS_CONTINUE;
		/* Plugins get close even when negotiation never happened. */
		if ((s = start_session(ctx)) == NULL)
			return SMFIS_CONTINUE;
	}
	chain_close(s);
	session_free(s);
	smfi_setpriv(ctx, NULL);
	__atomic_sub_fetch(&open_sessions, 1, __ATOMIC_SEQ_CST);
	if (metrics_enabled())
		metrics_connection(-1);
	return SMFIS_CONTINUE;
}

static struct smfiDesc description = {
	.xxfi_name = "milterhost",
	.xxfi_version = SMFI_VERSION,
	.xxfi_flags = SMFI_CURR_ACTS,
	.xxfi_connect = xx_connect,
	.xxfi_helo = xx_helo,
	.xxfi_envfrom = xx_envfrom,
	.xxfi_envrcpt = xx_envrcpt,
	.xxfi_header = xx_header,
	.xxfi_eoh = xx_eoh,
	.xxfi_body = xx_body,
	.xxfi_eom = xx_eom,
	.xxfi_abort = xx_abort,
	.xxfi_close = xx_close,
	.xxfi_unknown = xx_unknown,
	.xxfi_data = xx_data,
	.xxfi_negotiate = xx_negotiate,
};

/*
 * The socket smfi_opensocket() opened: at that point the process's one
 * socket in the listening state (no plugin is loaded yet).  Returns its
 * descriptor, or -1.
 */
static int
find_listener(void)
{
	int found = -1;

	for (int fd = 0; fd < 1024; fd++) {
		int listening = 0;
		socklen_t len = sizeof listening;

		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening,
		    &len) < 0 || !listening)
			continue;
		if (found >= 0)
			return -1;
		found = fd;
	}
	return found;
}

/*
 * libmilter does not set TCP_NODELAY, so an end-of-message answer of
 * several packets waits ~40 ms for a delayed ACK.  Accepted sockets
 * inherit the option from the listening one.
 */
static int
set_nodelay(int fd)
{
	int one = 1;

	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

/* The path of a unix:/local: socket spec, or NULL. */
static const char *
unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "local:", 6) == 0)
		return spec + 6;
	return NULL;
}

int
milter_setup(const struct config *cfg, char *err, size_t errlen)
{
	const char *path;

	if (smfi_setconn((char *)cfg->socket) != MI_SUCCESS) {
		snprintf(err, errlen, "bad socket %s", cfg->socket);
		return -1;
	}
	smfi_settimeout(cfg->timeout);
	if (cfg->backlog > 0)
		smfi_setbacklog(cfg->backlog);
	if (smfi_register(description) != MI_SUCCESS) {
		snprintf(err, errlen, "smfi_register failed");
		return -1;
	}
	path = unix_path(cfg->socket);
	if (path != NULL && runfiles_check_socket(path, err, errlen) < 0)
		return -1;
	/* true: libmilter replaces the stale socket checked above. */
	if (smfi_opensocket(true) != MI_SUCCESS) {
		snprintf(err, errlen, "cannot listen on %s (in use, or no "
		    "permission?)", cfg->socket);
		return -1;
	}
	if ((listen_fd = find_listener()) < 0) {
		snprintf(err, errlen, "cannot find libmilter's listening "
		    "socket for %s", cfg->socket);
		return -1;
	}
	over_tcp = path == NULL;
	if (over_tcp && set_nodelay(listen_fd) < 0) {
		snprintf(err, errlen, "cannot set TCP_NODELAY on %s: %s",
		    cfg->socket, strerror(errno));
		return -1;
	}
	idle_limit = (unsigned)cfg->timeout + POOL_CHECK_SECONDS;
	return path == NULL ? 0 : runfiles_socket_made(cfg, path, err, errlen);
}

int
milter_run(void)
{
	smfi_main();
	return -1;
}

/*
 * libmilter's listener goes on polling its descriptor until the process
 * ends; it must neither accept nor see an error there (an error makes it
 * stop libmilter, and Debian's libmilter then stops serving the open
 * sessions too).  So the descriptor is pointed at an empty pipe whose
 * writing end stays open, and the real socket, reached through a copy,
 * is shut down: the kernel refuses new connections at once.  A unix
 * socket's path is removed if it is still ours.
 */
void
milter_stop_accepting(void)
{
	static int quiet[2] = { -1, -1 };
	int real;

	if (listen_fd < 0)
		return;
	if ((real = dup(listen_fd)) < 0 || pipe(quiet) < 0 ||
	    dup2(quiet[0], listen_fd) < 0) {
		log_msg(LOG_ERR, "cannot close the listening socket (%s): new "
		    "connections are served until milterhost exits",
		    strerror(errno));
		if (real >= 0)
			close(real);
		return;
	}
	close(quiet[0]);
	if (shutdown(real, SHUT_RDWR) < 0)
		log_msg(LOG_WARNING, "shutdown of the listening socket: %s",
		    strerror(errno));
	runfiles_remove_socket();
	close(real);
	listen_fd = -1;
}

unsigned
milter_open_sessions(void)
{
	return __atomic_load_n(&open_sessions, __ATOMIC_SEQ_CST);
}

const char *
milter_library_version(void)
{
	static char buf[32];
	unsigned int major = 0, minor = 0, patch = 0;

	smfi_version(&major, &minor, &patch);
	snprintf(buf, sizeof buf, "%u.%u.%u", major, minor, patch);
	return buf;
}

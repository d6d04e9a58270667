/*
 * milterhost/plugin.h - the interface between milterhost and its plugins.
 *
 * A plugin is a shared object that exports one descriptor,
 *
 *	const struct mh_plugin milterhost_plugin = { MH_PLUGIN_ABI, ... };
 *
 * naming the plugin, the callbacks it implements, the message changes it
 * may make and the macros it wants.  The host loads it with dlopen(), checks
 * the ABI version, creates one instance per configuration section that
 * names it (calling init with that section's keys), and then calls the
 * instance's callbacks for every SMTP connection as one link of a chain.
 *
 * Life cycle of an SMTP session: each instance gets connect, helo, for
 * each message envfrom to eom (or abort), and close, as far as it has
 * these callbacks and the chain's decisions leave it in (README "How the
 * chain decides" says which decision ends what).  close comes exactly
 * once per SMTP session, also when the MTA runs several sessions on one
 * milter connection (SMFIC_QUIT_NC): each session ends with its own close
 * and the next one starts again at connect, with a fresh connection slot.
 * close may come without connect:
 *
 *   - the instance was switched off for the connection at negotiation (it
 *     declares an action the MTA does not offer): it gets close only;
 *   - the negotiation failed, or the MTA ended the connection before its
 *     connect: every instance gets close only;
 *   - the chain stopped early: an earlier instance refused the connection
 *     at connect (MH_REJECT, MH_TEMPFAIL, or a failure its on_error turned
 *     into one), and the later ones get close only.
 *
 * So free per-connection data in close whether or not connect came.
 *
 * Everything a callback may ask of the host goes through the context handle
 * (mh_ctx) it receives.  Plugins never see the host's structures.
 *
 * Memory: every string and buffer the host passes to a callback is borrowed
 * for the duration of that call.  Every string a plugin passes to the host
 * is copied before the call returns.
 *
 * Threads: callbacks of one connection never run at the same time, but may
 * run on different threads.  Keep per-connection and per-message state in
 * the data slots (mh_conn_data, mh_msg_data), never in thread-local or
 * static variables.  Instance state shared between connections must be
 * thread-safe.  Calls of init and fini never overlap, and an instance's
 * callbacks run only between its init and its fini.  At start-up and stop
 * nothing else runs; but a reload (SIGUSR1) inits the new instances while
 * the old ones serve their last sessions, and the old ones are finied
 * after the last of those, on its thread: state a module shares between
 * its instances (globals) must be thread-safe.
 *
 * Which host function may be called from which thread, and when:
 *
 *   mh_log, mh_vlog,		from any thread, while the ctx's connection
 *   mh_instance_name,		is open: from its first callback until its
 *   mh_instance_state		close callback returned.  A thread of the
 *				plugin's that uses a ctx must be finished
 *				(joined) by the close callback: afterwards
 *				the ctx is freed.
 *
 *   every other function	only from within a callback of that ctx, on
 *   taking a ctx: replies,	the thread running it.  A call from another
 *   message changes, macros,	thread, or between callbacks, is refused
 *   mh_queue_id,		without touching the connection: it returns
 *   mh_client_address, the	MH_E_STAGE (NULL, MH_STAGE_COUNT or nothing
 *   data slots,		for the functions without a status) and is
 *   mh_current_stage,		logged, naming the instance and the
 *   mh_progress, scores,	function.  It does not make the callback
 *   mh_kv_*			running meanwhile fail.
 *
 *   mh_init_error,		only from within init, on its thread.
 *   mh_declare_*
 *
 *   mh_parse_bool,		from any thread, at any time.
 *   mh_strerror
 *
 * Signals: milterhost takes SIGHUP, SIGTERM and SIGINT (stop) and SIGUSR1
 * (reload) for itself; a plugin must not handle, unblock or
 * wait for them (a sigwait() for SIGTERM never returns in milterhost).
 *
 * Build a plugin out of tree with
 *
 *	cc -shared -fPIC $(pkg-config --cflags milterhost) -o foo.so foo.c
 */
#ifndef MILTERHOST_PLUGIN_H
#define MILTERHOST_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Compiler attributes, for the compilers that know them (GCC and Clang);
 * others see standard C or C++ only.
 */
#if defined(__GNUC__) || defined(__clang__)
#define MH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define MH_PRINTF(fmt, args)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/*
 * ABI version.  The major part must equal the host's; the minor part may be
 * anything up to the host's own.  A later minor version only adds fields at
 * the end of the structures below and adds host functions, so a plugin built
 * against an older minor keeps loading and working.
 *
 *   1.0  the descriptor, the callbacks and the host functions below
 *   1.1  per-instance declarations in init: mh_declare_actions,
 *        mh_declare_wishes, mh_declare_macros, mh_declare_observer; data slots with a
 *        destructor: mh_set_conn_data_free, mh_set_msg_data_free;
 *        mh_log(NULL, ...) from init and fini tagged with the instance
 *   1.2  the message's score: mh_score_add, mh_score_get
 *   1.3  mh_declare_unused: stages whose callback an instance does not
 *        need; the wish MH_WANT_EARLIER_CHANGES
 *   1.4  the key-value store: mh_kv_get, mh_kv_set, mh_kv_add,
 *        mh_kv_incr, mh_kv_delete, mh_declare_kv_namespace; the codes
 *        MH_E_NOTFOUND, MH_E_EXISTS, MH_E_UNAVAILABLE
 */
#define MH_ABI_MAJOR 1
#define MH_ABI_MINOR 4

/* Start every descriptor with this: it records the ABI the plugin was
 * built against and how large the descriptor is. */
#define MH_PLUGIN_ABI                                                      \
	.abi_major = MH_ABI_MAJOR, .abi_minor = MH_ABI_MINOR,              \
	.size = sizeof(struct mh_plugin)

/*
 * The same values without designators, for C++ before C++20 (which has no
 * designated initializers): the first three fields of the descriptor, in
 * order.  Either start a positional initializer with them (g++ -Wextra
 * then warns about every field left out), or, to name the fields, fill
 * the descriptor in a constexpr function (C++14 and later), which still
 * initializes it at compile time:
 *
 *	static constexpr mh_plugin
 *	descriptor()
 *	{
 *		mh_plugin d{};	// every other field 0 or NULL
 *
 *		d.abi_major = MH_ABI_MAJOR;
 *		d.abi_minor = MH_ABI_MINOR;
 *		d.size = sizeof d;
 *		d.name = "foo";
 *		d.envfrom = foo_envfrom;
 *		return d;
 *	}
 *	extern "C" const mh_plugin milterhost_plugin = descriptor();
 *
 * The descriptor needs C linkage (extern "C"): the host looks it up by
 * its C name.  No C++ exception may leave init, fini or a callback: catch
 * it there (return mh_init_error(...) from init, MH_FAIL from a callback).
 */
#define MH_PLUGIN_ABI_VALUES                                               \
	MH_ABI_MAJOR, MH_ABI_MINOR, sizeof(struct mh_plugin)

/* The name of the descriptor symbol the host looks up. */
#define MH_PLUGIN_SYMBOL "milterhost_plugin"

/*
 * What a callback returns.  The meaning follows libmilter's SMFIS_* codes,
 * with the scopes described in the README ("How the chain decides"):
 *
 * MH_CONTINUE  go on; the next plugin in the chain is called.
 * MH_REJECT    refuse (5xx) the connection (connect, helo), this
 *              recipient (envrcpt) or the message (other message stages).
 *              Ends the stage: later plugins are not called for it.
 * MH_TEMPFAIL  as MH_REJECT, with a 4xx.
 * MH_DISCARD   accept the message and throw it away (envrcpt and later
 *              message stages only).
 * MH_ACCEPT    this plugin is done: for the connection at connect and
 *              helo, for the message at later stages.  It is called again
 *              only for abort and close (and, after a message accept, for
 *              the next message).
 * MH_SKIP      (body only) send this plugin no more body chunks.
 * MH_FAIL      the callback failed; the host applies the instance's
 *              on_error setting and logs it.
 *
 * Any other value, or a value not allowed at the stage, is treated as
 * MH_FAIL.
 */
typedef enum mh_status {
	MH_CONTINUE = 0,
	MH_REJECT = 1,
	MH_DISCARD = 2,
	MH_ACCEPT = 3,
	MH_TEMPFAIL = 4,
	MH_SKIP = 5,
	MH_FAIL = 6
} mh_status;

/* The stages of an SMTP session, in the order they happen. */
typedef enum mh_stage {
	MH_STAGE_CONNECT = 0,
	MH_STAGE_HELO,
	MH_STAGE_ENVFROM,
	MH_STAGE_ENVRCPT,
	MH_STAGE_DATA,
	MH_STAGE_UNKNOWN,
	MH_STAGE_HEADER,
	MH_STAGE_EOH,
	MH_STAGE_BODY,
	MH_STAGE_EOM,
	MH_STAGE_ABORT,
	MH_STAGE_CLOSE,
	MH_STAGE_COUNT /* 12; fixed for ABI major 1 */
} mh_stage;

/*
 * Message changes a plugin may make (the values are libmilter's SMFIF_*).
 * Declare in the descriptor every action the plugin may use; the host
 * refuses the calls of undeclared ones.
 */
#define MH_ACT_ADDHDRS 0x01UL    /* mh_header_add, mh_header_insert */
#define MH_ACT_CHGBODY 0x02UL    /* mh_body_replace */
#define MH_ACT_ADDRCPT 0x04UL    /* mh_rcpt_add without arguments */
#define MH_ACT_DELRCPT 0x08UL    /* mh_rcpt_delete */
#define MH_ACT_CHGHDRS 0x10UL    /* mh_header_change, mh_header_delete */
#define MH_ACT_QUARANTINE 0x20UL /* mh_quarantine */
#define MH_ACT_CHGFROM 0x40UL    /* mh_from_change */
#define MH_ACT_ADDRCPT_PAR 0x80UL /* mh_rcpt_add with ESMTP arguments */

/* Protocol wishes (descriptor field "flags"). */
/* Header values arrive with their leading space, and values the plugin
 * adds are sent as given (no space is added after the colon). */
#define MH_WANT_HDR_LEADSPC 0x01UL
/* Recipients that the MTA already rejected are passed to envrcpt too
 * (their macro {rcpt_mailer} is "error"). */
#define MH_WANT_REJECTED_RCPTS 0x02UL
/*
 * (ABI 1.3) The instance sees the message as the instances before it in
 * the chain left it, as a milter listed after another in Postfix's
 * smtpd_milters sees that one's edits: its header, eoh and body callbacks
 * are called at the end of the message, just before its eom, with the
 * headers after the earlier instances' header changes (added, inserted,
 * changed, deleted) and the body an earlier instance replaced, if one did.
 * Its own header indexes then count those headers, and its changes go to
 * the MTA after theirs.  A decision at one of these calls ends the
 * message at its end (the SMTP client hears it after DATA anyway).  The
 * host keeps the message's headers and body in memory meanwhile; when no
 * earlier instance may change them (none declares MH_ACT_ADDHDRS,
 * MH_ACT_CHGHDRS or MH_ACT_CHGBODY), the calls come as they arrive.
 * Changes the earlier instances make in their own eom are seen only if
 * they come before this instance in the chain, which is what "earlier"
 * means: put the instance after those whose changes it must see (a
 * signing milter after the plugins that add headers).
 */
#define MH_WANT_EARLIER_CHANGES 0x04UL

/* Log levels for mh_log (the syslog priorities). */
#define MH_LOG_ERR 3
#define MH_LOG_WARNING 4
#define MH_LOG_NOTICE 5
#define MH_LOG_INFO 6
#define MH_LOG_DEBUG 7

/*
 * Return values of the host functions below.
 *
 * A plugin bug never crashes the host: a NULL ctx, a NULL or otherwise
 * invalid argument where the function needs a valid one, is refused with
 * MH_E_INVALID (functions without a status return NULL, MH_STAGE_COUNT
 * or nothing) and logged.  Only a pointer to freed or foreign memory
 * (a ctx after its close callback returned) cannot be detected.
 */
#define MH_OK 0
#define MH_E_INVALID (-1) /* bad argument: the message says which */
#define MH_E_ACTION (-2)  /* the action is not declared in the descriptor */
#define MH_E_STAGE (-3)   /* not allowed at this stage */
#define MH_E_NOMEM (-4)   /* out of memory */
/* (ABI 1.4) Results of the key-value store (mh_kv_*). */
#define MH_E_NOTFOUND (-5)    /* no such key, or it expired */
#define MH_E_EXISTS (-6)      /* mh_kv_add: the key is there already */
#define MH_E_UNAVAILABLE (-7) /* the store did not answer in time */

typedef struct mh_ctx mh_ctx;

/* One "key = value" of the plugin's configuration section. */
struct mh_setting {
	const char *key;
	const char *value;
};

/*
 * What init receives.  The arrays and strings are valid during init only.
 * Host keys (module, enabled, on_error, dry_run) are not included.  A key
 * appears several times only if the descriptor lists it in list_keys.
 */
struct mh_init {
	const char *instance;              /* "tag" of [plugin:tag] */
	const char *config_file;           /* the ini file being read */
	const struct mh_setting *settings; /* in file order */
	size_t nsettings;
};

/*
 * The descriptor.  Fields may be added at the end in later minor versions;
 * "size" tells the host how much of it the plugin has.  Unused callbacks
 * are NULL; the host asks the MTA not to send stages no plugin implements
 * (or, since ABI 1.3, only implements where its instances declared them
 * unused: mh_declare_unused).
 */
struct mh_plugin {
	uint16_t abi_major;
	uint16_t abi_minor;
	uint32_t size;

	const char *name;        /* short name, e.g. "addheader" */
	const char *version;     /* the plugin's own version */
	const char *description; /* one line, shown by milterhost -t */

	unsigned long actions;   /* MH_ACT_* the plugin may use */
	unsigned long flags;     /* MH_WANT_* */

	/*
	 * Macros wanted per stage, space-separated, e.g.
	 *   .macros = { [MH_STAGE_CONNECT] = "j {client_addr}" }.
	 * Allowed at connect, helo, envfrom, envrcpt, data, eoh and eom.  The
	 * host asks the MTA for the union of all plugins' lists plus Postfix's
	 * defaults for that stage.
	 */
	const char *macros[MH_STAGE_COUNT];

	/* Configuration keys that may be given more than once (each
	 * occurrence, and each indented continuation line, is one value),
	 * space-separated.  Any other key given twice is a config error. */
	const char *list_keys;

	/*
	 * Create an instance.  Validate every setting; on error call
	 * mh_init_error (naming the key) and return -1.  On success store
	 * the instance state (may be NULL) in *state and return 0.  Since
	 * ABI 1.1, mh_log(NULL, ...) from init (and fini), on its thread,
	 * tags the line with the instance name.
	 */
	int (*init)(const struct mh_init *init, void **state);
	/* Free the instance state.  Called once for every successful init. */
	void (*fini)(void *state);

	/*
	 * addr is NULL when the MTA does not know the client's address
	 * family; AF_INET and AF_INET6 carry the port in network order.
	 * mh_client_address gives it as text.
	 */
	mh_status (*connect)(mh_ctx *ctx, const char *hostname,
			     const struct sockaddr *addr);
	mh_status (*helo)(mh_ctx *ctx, const char *name);
	/* args: the ESMTP arguments, NULL-terminated (args[0] may be NULL) */
	mh_status (*envfrom)(mh_ctx *ctx, const char *sender,
			     const char *const *args);
	mh_status (*envrcpt)(mh_ctx *ctx, const char *rcpt,
			     const char *const *args);
	mh_status (*data)(mh_ctx *ctx);
	mh_status (*unknown)(mh_ctx *ctx, const char *command);
	/* value: folded with LF only, without the trailing CRLF */
	mh_status (*header)(mh_ctx *ctx, const char *name, const char *value);
	mh_status (*eoh)(mh_ctx *ctx);
	/* chunk: up to 64 KB of CRLF body text, not NUL-terminated */
	mh_status (*body)(mh_ctx *ctx, const unsigned char *chunk, size_t len);
	mh_status (*eom)(mh_ctx *ctx);
	/* The message ended without eom: free per-message data here. */
	void (*abort)(mh_ctx *ctx);
	/*
	 * The SMTP session ended: free per-connection data here.  Exactly
	 * once per SMTP session, also for each of several sessions on one
	 * milter connection (SMFIC_QUIT_NC).  It may come without connect:
	 * for an instance switched off at negotiation (an action the MTA
	 * does not offer), when the negotiation failed or the MTA ended the
	 * connection before connect, and when an earlier instance refused
	 * the connection at connect.  See "Life cycle" at the top.
	 */
	void (*close)(mh_ctx *ctx);
};

/* ---- Host functions for init ------------------------------------------ */

/*
 * Report why init failed; key is the offending setting or NULL.  The host
 * prints it with the config file, line, section and key.  For a key given
 * several times (list_keys), pass the setting's own key string,
 * init->settings[i].key, and the line is that value's.  Returns -1 so
 * that init can "return mh_init_error(...)".  Called with a NULL init, it
 * only logs the message.
 */
int mh_init_error(const struct mh_init *init, const char *key,
		  const char *fmt, ...) MH_PRINTF(3, 4);

/*
 * Declarations of one instance (ABI 1.1), during init only.  The
 * descriptor's actions, wishes (MH_WANT_*) and macros hold for every
 * instance of the module; an instance whose settings need more declares
 * it here, e.g. the macros its configured template names, or an action
 * only some settings use (an instance that needs an action the MTA does
 * not offer is switched off for the connection, so declare only what the
 * settings need).  Each call adds to what is declared.  Returns MH_OK, or
 * MH_E_INVALID for unknown bits, a stage without macros or a bad macro
 * name: the refusal is reported like mh_init_error's, and the instance is
 * not loaded even if init then succeeds.
 */
int mh_declare_actions(const struct mh_init *init, unsigned long actions);
int mh_declare_wishes(const struct mh_init *init, unsigned long wishes);
/* names: space-separated, as in the descriptor's macros[stage]. */
int mh_declare_macros(const struct mh_init *init, mh_stage stage,
		      const char *names);
/*
 * The instance only observes at stage (connect, helo, envfrom, envrcpt,
 * data, unknown, header, eoh or body): its callback there always returns
 * MH_CONTINUE.  When every instance taking a stage observes there, the
 * MTA need not wait for an answer to it (milterhost claims the stage's
 * "no reply" bit): one round trip less per event.  Anything but
 * MH_CONTINUE from an observer there counts as a failure: it is logged,
 * and the instance's on_error answers at the next event the MTA waits
 * for (see README "How the chain decides").
 */
int mh_declare_observer(const struct mh_init *init, mh_stage stage);
/*
 * (ABI 1.3) The instance does not need stage's events (connect, helo,
 * envfrom, envrcpt, data, unknown, header, eoh or body) although the
 * descriptor has its callback there: for a plugin that implements every
 * callback for something its settings name, e.g. an external milter that
 * asked for no body.  The host then treats the instance at that stage as
 * if the callback were NULL: it never calls it there, and asks the MTA
 * not to send the stage when no other instance takes it.  A stage also
 * declared with mh_declare_observer is unused (unused wins); a stage
 * without a callback stays as it was.  eom, abort and close cannot be
 * unused: MH_E_INVALID, refused as above.
 */
int mh_declare_unused(const struct mh_init *init, mh_stage stage);

/*
 * (ABI 1.4) Share the instance's keys in the key-value store (mh_kv_*)
 * under namespace name instead of its own: every instance that declares
 * the same name reads and writes the same keys.  name: 1 to 128 letters,
 * digits, '_', '.' and '-' (as instance names).  Call it once at most.
 * Returns MH_OK, or MH_E_INVALID for a bad name or a second call, refused
 * as above.  See "Key-value store" below.
 */
int mh_declare_kv_namespace(const struct mh_init *init, const char *name);

/* Parse a boolean setting (yes/no, true/false, on/off, 1/0).  Returns 0
 * and sets *out, or -1 if value is none of these (or value or out is
 * NULL, which is logged). */
int mh_parse_bool(const char *value, int *out);

/* ---- Host functions for callbacks ------------------------------------- */

/*
 * Unless said otherwise, these may be called only from within a callback
 * of ctx, on the thread running it (see "Threads" at the top).  A
 * refused call of a function without a status (a getter or a data slot
 * setter) is logged but does not make the callback fail.
 */

/* The instance state init stored.  From any thread (see "Threads"). */
void *mh_instance_state(mh_ctx *ctx);
/* The instance name ("tag" of [plugin:tag]).  From any thread. */
const char *mh_instance_name(mh_ctx *ctx);
/* The stage of the callback running now; MH_STAGE_COUNT if the call is
 * refused. */
mh_stage mh_current_stage(mh_ctx *ctx);

/*
 * Data slots.  The connection slot lives until close, the message slot
 * until eom or abort; the host clears a slot after the callback that ends
 * its life, so free what it points to there.
 */
void *mh_conn_data(mh_ctx *ctx);
void mh_set_conn_data(mh_ctx *ctx, void *data);
void *mh_msg_data(mh_ctx *ctx);
void mh_set_msg_data(mh_ctx *ctx, void *data);

/* ---- Data slots with a destructor (ABI 1.1) --------------------------- */

/*
 * (ABI 1.1) Set a data slot as mh_set_conn_data and mh_set_msg_data do,
 * and give the host a destructor for it (NULL for none): if the slot
 * still holds data (not NULL) when its life ends, the host calls
 * destroy(data) once, after the callback that ends it (eom or abort for
 * the message slot, close for the connection slot), also for an instance
 * without an abort or close callback, and when the session ends without
 * close.  A plugin that frees its data itself just sets the slot to NULL.
 *
 * Setting a slot again, by either function, replaces its destructor (the
 * plain setters leave none) and does not call the old destructor for the
 * old data: the plugin still owns what it replaced.
 *
 * destroy runs on the session's thread, outside any callback: it gets no
 * ctx and must not use one.  Returns MH_OK, or MH_E_INVALID (NULL ctx) or
 * MH_E_STAGE (as for the other slot functions, see "Threads"), leaving
 * the slot as it was; the callback does not fail.
 */
int mh_set_conn_data_free(mh_ctx *ctx, void *data,
			  void (*destroy)(void *data));
int mh_set_msg_data_free(mh_ctx *ctx, void *data,
			 void (*destroy)(void *data));

/* ---- end of data slots with a destructor ------------------------------ */

/*
 * The value of a macro, or NULL if the MTA did not send it (or name is
 * NULL, which is logged).  Names may be given with or without braces
 * ("i" or "{i}", "client_addr" or "{client_addr}").  Valid until the
 * callback returns.
 */
const char *mh_macro(mh_ctx *ctx, const char *name);
/* The queue id (macro i), or NULL before the MTA assigned one. */
const char *mh_queue_id(mh_ctx *ctx);
/* The client address as text ("192.0.2.1", "2001:db8::1", the socket
 * path for a unix client), or NULL if unknown.  When the MTA sent no
 * connect event (none of the chain's instances takes connect, so it was
 * asked not to), the value of the macro {client_addr} if the MTA sent
 * it: a plugin that needs the address without a connect callback
 * declares that macro in its descriptor's macros, at the stage where it
 * asks. */
const char *mh_client_address(mh_ctx *ctx);

/*
 * Log a line tagged with the instance name and queue id.  From any thread
 * while the connection is open (see "Threads"); the queue id is the one
 * the host saw at the latest event of the connection, or NOQUEUE.
 * One call is one line whatever the text holds: control characters are
 * escaped (CR as \r, LF as \n, tab as \t, others as \xHH), and a line
 * longer than 2 KB is cut, ending with "...".  level: MH_LOG_ERR to
 * MH_LOG_DEBUG; a smaller number counts as MH_LOG_ERR, a larger one as
 * MH_LOG_DEBUG.  With a NULL ctx the line is logged without instance and
 * queue id, except (ABI 1.1) on the thread running the instance's init or
 * fini: there it is tagged with the instance ("[tag] text").  A NULL fmt
 * is refused and logged.
 */
void mh_log(mh_ctx *ctx, int level, const char *fmt, ...) MH_PRINTF(3, 4);
void mh_vlog(mh_ctx *ctx, int level, const char *fmt, va_list ap);

/*
 * The reply the MTA sends if this callback returns MH_REJECT (rcode 5xx)
 * or MH_TEMPFAIL (4xx).  rcode: three digits, "4xx" or "5xx".  xcode: an
 * enhanced status code of the same class ("5.7.1") or NULL.  text: at most
 * 980 bytes, no CR or LF; it is sent literally (the host escapes '%').  A
 * reply lasts only for the current callback; one whose class does not
 * match the decision is dropped with a warning.  Not at abort and close
 * (MH_E_STAGE).  A refused reply (a NULL rcode, text or line is
 * MH_E_INVALID) makes the callback fail, as a refused change does.
 */
int mh_set_reply(mh_ctx *ctx, const char *rcode, const char *xcode,
		 const char *text);
/* A multi-line reply: 1 to 32 lines, ending with a NULL argument. */
int mh_set_mlreply(mh_ctx *ctx, const char *rcode, const char *xcode, ...);
/* The same with an array of nlines lines. */
int mh_set_reply_lines(mh_ctx *ctx, const char *rcode, const char *xcode,
		       const char *const *lines, size_t nlines);

/*
 * Message changes.  Allowed from envfrom to eom; each call is checked and
 * queued at once, and applied at the end of the message only if no plugin
 * rejected, tempfailed or discarded it.  They go to the MTA in chain order,
 * each plugin's in the order it made them.
 *
 * A call that is refused returns MH_E_* and is logged; the callback then
 * counts as failed and the instance's on_error setting applies.
 *
 * Header names: printable ASCII without ':' or space.  Values: no CR;
 * fold with "\n\t" (an LF must be followed by a space or tab); "" is a
 * value, NULL is not.  Indexes count the headers of the message as
 * received.  Recipients, senders and reasons must not be NULL or empty.
 */
int mh_header_add(mh_ctx *ctx, const char *name, const char *value);
/* idx 0 inserts before the first header. */
int mh_header_insert(mh_ctx *ctx, int idx, const char *name,
		     const char *value);
/* Change the idx-th (from 1) header called name; past the last one adds.
 * A NULL value deletes the header, as mh_header_delete does. */
int mh_header_change(mh_ctx *ctx, const char *name, int idx,
		     const char *value);
/* Delete the idx-th (from 1) header called name. */
int mh_header_delete(mh_ctx *ctx, const char *name, int idx);
/*
 * Replace the body (CRLF line ends).  Repeated calls in one message
 * append.  If two plugins replace the body, the later in the chain wins.
 * len 0 is allowed, and data may then be NULL: as the first call of the
 * message, it makes the body empty; after others it adds nothing.
 */
int mh_body_replace(mh_ctx *ctx, const void *data, size_t len);
/* args: ESMTP arguments ("NOTIFY=NEVER") or NULL; with arguments the
 * plugin must declare MH_ACT_ADDRCPT_PAR. */
int mh_rcpt_add(mh_ctx *ctx, const char *rcpt, const char *args);
/* rcpt exactly as the MTA gave it to envrcpt. */
int mh_rcpt_delete(mh_ctx *ctx, const char *rcpt);
/* args may be NULL.  If two plugins change the sender, the later wins. */
int mh_from_change(mh_ctx *ctx, const char *sender, const char *args);
/* Put the message on hold; reason must not be empty.  The first wins. */
int mh_quarantine(mh_ctx *ctx, const char *reason);
/* Tell the MTA the filter is still working (restarts its timeout).  Only
 * at eom, as libmilter allows; elsewhere it is refused (MH_E_STAGE) and
 * the callback fails, as with other refusals. */
int mh_progress(mh_ctx *ctx);

/* ---- The message's score (ABI 1.2) ------------------------------------ */

/*
 * (ABI 1.2) Add points to the message's score, with a reason.  Several
 * instances add to one score per message; the host compares its total
 * with the thresholds of [milterhost] (score_reject, score_tempfail) at
 * the end of the message, or as soon as no instance is left to add points,
 * and records it in the score header if one is configured (README
 * "Scores").  A plugin's own MH_REJECT or MH_TEMPFAIL still decides at its
 * stage, whatever the score.
 *
 * points: finite, from -1000 to 1000 (negative points lower the score).
 * reason: 1 to 200 bytes of printable text (no CR, LF or other control
 * characters), copied; it names the contribution in the log line and the
 * score header.  From envfrom to eom; elsewhere MH_E_STAGE.  The points of
 * a dry_run instance are logged and not counted (the call returns MH_OK).
 * Returns MH_OK, MH_E_INVALID (bad points or reason), MH_E_STAGE or
 * MH_E_NOMEM; a refused call makes the callback fail, as a refused
 * message change does.
 */
int mh_score_add(mh_ctx *ctx, double points, const char *reason);

/*
 * (ABI 1.2) The message's score so far: the total of the points counted,
 * by every instance, into *total.  From envfrom to eom; elsewhere
 * MH_E_STAGE.  Returns MH_OK, MH_E_INVALID (NULL total) or MH_E_STAGE;
 * a refusal does not make the callback fail.
 */
int mh_score_get(mh_ctx *ctx, double *total);

/* ---- end of scores ----------------------------------------------------- */

/* ---- Key-value store (ABI 1.4) ----------------------------------------- */

/*
 * (ABI 1.4) A store of byte strings by key, with a time to live, shared
 * by the sessions of the daemon: counters and memories that outlive one
 * message or connection (rate limits, greylisting).  [milterhost]'s kv
 * key says where it lives (README "Configuration reference"): in the
 * daemon's memory (kv = memory, the default: bounded by
 * kv_memory_max_bytes, the entries expiring soonest evicted first when
 * full; lost at restart, kept across reload), or on a Redis server that
 * several hosts share.
 *
 * Keys: 1 to MH_KV_KEY_MAX bytes of printable ASCII without spaces
 * (33 to 126).  Values: 0 to MH_KV_VALUE_MAX bytes of any kind.
 *
 * Namespaces: the store prefixes every key with a namespace and a colon.
 * By default the namespace is the instance's name ("tag" of
 * [plugin:tag]), so two instances never see each other's keys, whatever
 * they call them; an instance that declared a namespace in init
 * (mh_declare_kv_namespace) uses that one instead, and shares its keys
 * with every instance that declared the same name: instances of one
 * plugin in the chain, and, through Redis, the instances of every host
 * that uses it.  A namespace named like an instance shares that
 * instance's keys.  The stored key is "NAMESPACE:key".
 *
 * Times to live: ttl_s seconds from the write, 0 for none.  An entry is
 * gone once it expired: reads return MH_E_NOTFOUND and mh_kv_add and
 * mh_kv_incr see it absent.
 *
 * Callable from any callback of ctx (connection or message stages, abort
 * and close included), on its thread, as the other functions taking a
 * ctx (see "Threads"): elsewhere MH_E_STAGE.  Unlike message changes, a
 * call that is refused (MH_E_INVALID, MH_E_STAGE) or fails (MH_E_NOMEM,
 * MH_E_UNAVAILABLE) does not make the callback fail: the plugin decides
 * what an answer means (fail open, or tempfail), and returns its status
 * as usual.  Refusals and failures are logged (MH_E_UNAVAILABLE at debug
 * level: the store logs an outage when it begins and when it ends);
 * MH_OK, MH_E_NOTFOUND and MH_E_EXISTS, which are answers, are not.  A dry_run instance's calls
 * are made as any other's: the store is not a change to the message.
 *
 * MH_E_UNAVAILABLE: the store did not answer within [milterhost]'s
 * kv_timeout_ms (Redis down or slow); the memory store never returns it.
 * Each call stands alone: there are no transactions, but mh_kv_add and
 * mh_kv_incr are atomic, also between hosts sharing a Redis.
 */
#define MH_KV_KEY_MAX 200
#define MH_KV_VALUE_MAX 65536

/*
 * Copy key's value into buf, up to size bytes (buf may be NULL when size
 * is 0), and its whole length into *len (len may be NULL): a value longer
 * than size is cut, and *len > size says so.  The value is not
 * NUL-terminated.  Returns MH_OK, MH_E_NOTFOUND (absent or expired),
 * MH_E_INVALID, MH_E_STAGE or MH_E_UNAVAILABLE.
 */
int mh_kv_get(mh_ctx *ctx, const char *key, void *buf, size_t size,
	      size_t *len);
/* Store len bytes at value as key's value (value may be NULL when len is
 * 0), replacing any value and its time to live.  ttl_s 0: no expiry. */
int mh_kv_set(mh_ctx *ctx, const char *key, const void *value, size_t len,
	      unsigned ttl_s);
/* The same if key is absent (or expired): MH_OK; else MH_E_EXISTS and the
 * entry stays as it was. */
int mh_kv_add(mh_ctx *ctx, const char *key, const void *value, size_t len,
	      unsigned ttl_s);
/*
 * Add by (may be negative) to key's value, a decimal integer ("-12"),
 * and store the sum into *result (result may be NULL).  An absent key is
 * created with the value by and the time to live ttl_s; an existing one
 * keeps its time to live (ttl_s applies only at creation: a fixed window
 * starts with the first count).  A value that is not a decimal integer
 * of the range of long long, or a sum out of it, is MH_E_INVALID and
 * leaves the value as it was.
 */
int mh_kv_incr(mh_ctx *ctx, const char *key, long long by, unsigned ttl_s,
	       long long *result);
/* Remove key: MH_OK whether or not it was there. */
int mh_kv_delete(mh_ctx *ctx, const char *key);

/* ---- end of the key-value store --------------------------------------- */

/* A short English text for an MH_E_* value. */
const char *mh_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* MILTERHOST_PLUGIN_H */

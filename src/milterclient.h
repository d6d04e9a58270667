/*
 * milterclient - the MTA side of the milter protocol (version 6), as
 * Postfix speaks it: connect to a milter, negotiate, send events with
 * their macros, read and check its answers and message changes.
 *
 * One library for every MTA side in the tree: the `milter` plugin (which
 * hosts an external milter as a link of the chain), the benchmark's load
 * generator and the wire tests' client.  It has no libmilter in it: the
 * protocol's numbers are the wire's, defined below.
 *
 * I/O is blocking and bounded: every read and write waits at most the
 * connection's timeout (the socket is blocking, with SO_RCVTIMEO and
 * SO_SNDTIMEO; a caller may poll mc_fd, but see mc_pending).
 * Commands are queued (mc_put*) and written by mc_flush, so that the
 * macros of an event and the event go out in one write.  Every function
 * returning int returns 0 (or a count) on success and -1 on an error,
 * whose text mc_error() then gives; after an I/O error, a timeout or a
 * protocol error the connection is unusable and must be closed.
 *
 * A connection is used by one thread at a time.
 */
#ifndef MILTERHOST_MILTERCLIENT_H
#define MILTERHOST_MILTERCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* ---- the protocol's numbers ------------------------------------------- */

#define MC_VERSION 6

/* Commands, MTA to milter (libmilter's SMFIC_*). */
#define MC_CMD_ABORT 'A'
#define MC_CMD_BODY 'B'
#define MC_CMD_CONNECT 'C'
#define MC_CMD_MACRO 'D'
#define MC_CMD_EOM 'E'      /* end of body: end of message */
#define MC_CMD_HELO 'H'
#define MC_CMD_QUIT_NC 'K'  /* quit, a new SMTP session follows */
#define MC_CMD_HEADER 'L'
#define MC_CMD_MAIL 'M'
#define MC_CMD_EOH 'N'
#define MC_CMD_OPTNEG 'O'
#define MC_CMD_QUIT 'Q'
#define MC_CMD_RCPT 'R'
#define MC_CMD_DATA 'T'
#define MC_CMD_UNKNOWN 'U'

/* Replies, milter to MTA (libmilter's SMFIR_*). */
#define MC_R_ADDRCPT '+'
#define MC_R_DELRCPT '-'
#define MC_R_ADDRCPT_PAR '2'
#define MC_R_SHUTDOWN '4'
#define MC_R_ACCEPT 'a'
#define MC_R_REPLBODY 'b'
#define MC_R_CONTINUE 'c'
#define MC_R_DISCARD 'd'
#define MC_R_CHGFROM 'e'
#define MC_R_CONN_FAIL 'f'
#define MC_R_ADDHEADER 'h'
#define MC_R_INSHEADER 'i'
#define MC_R_SETSYMLIST 'l'
#define MC_R_CHGHEADER 'm'
#define MC_R_PROGRESS 'p'
#define MC_R_QUARANTINE 'q'
#define MC_R_REJECT 'r'
#define MC_R_SKIP 's'
#define MC_R_TEMPFAIL 't'
#define MC_R_REPLYCODE 'y'
#define MC_R_OPTNEG 'O'

/* Actions (SMFIF_*; the same values as milterhost's MH_ACT_*). */
#define MC_ACT_ADDHDRS 0x01U
#define MC_ACT_CHGBODY 0x02U
#define MC_ACT_ADDRCPT 0x04U
#define MC_ACT_DELRCPT 0x08U
#define MC_ACT_CHGHDRS 0x10U
#define MC_ACT_QUARANTINE 0x20U
#define MC_ACT_CHGFROM 0x40U
#define MC_ACT_ADDRCPT_PAR 0x80U
#define MC_ACT_SETSYMLIST 0x100U
#define MC_ACT_ALL 0x1FFU     /* what Postfix offers */

/* Steps (SMFIP_*). */
#define MC_P_NOCONNECT 0x1U
#define MC_P_NOHELO 0x2U
#define MC_P_NOMAIL 0x4U
#define MC_P_NORCPT 0x8U
#define MC_P_NOBODY 0x10U
#define MC_P_NOHDRS 0x20U
#define MC_P_NOEOH 0x40U
#define MC_P_NR_HDR 0x80U
#define MC_P_NOUNKNOWN 0x100U
#define MC_P_NODATA 0x200U
#define MC_P_SKIP 0x400U
#define MC_P_RCPT_REJ 0x800U
#define MC_P_NR_CONN 0x1000U
#define MC_P_NR_HELO 0x2000U
#define MC_P_NR_MAIL 0x4000U
#define MC_P_NR_RCPT 0x8000U
#define MC_P_NR_DATA 0x10000U
#define MC_P_NR_UNKN 0x20000U
#define MC_P_NR_EOH 0x40000U
#define MC_P_NR_BODY 0x80000U
#define MC_P_HDR_LEADSPC 0x100000U
#define MC_P_ALL 0x1FFFFFU    /* every step: what Postfix 3.x offers */

/* Macro stages, numbered as on the wire (SMFIM_*). */
enum mc_macro_stage {
	MC_M_CONNECT = 0,
	MC_M_HELO,
	MC_M_MAIL,
	MC_M_RCPT,
	MC_M_DATA,
	MC_M_EOM,
	MC_M_EOH,
	MC_M_STAGES,
	MC_M_NONE = -1
};

/* Postfix's default macro list of a macro stage (milter_*_macros, 3.5
 * and later), space-separated; "" for MC_M_NONE. */
const char *mc_default_macros(int macro_stage);

/* ---- events ------------------------------------------------------------- */

/* The events an MTA sends, in the order of an SMTP session. */
enum mc_event {
	MC_EV_CONNECT = 0,
	MC_EV_HELO,
	MC_EV_MAIL,
	MC_EV_RCPT,
	MC_EV_DATA,
	MC_EV_UNKNOWN,
	MC_EV_HEADER,
	MC_EV_EOH,
	MC_EV_BODY,
	MC_EV_EOM,
	MC_EV_COUNT
};

/* What one event is on the wire. */
struct mc_event_info {
	const char *name;       /* "connect", "helo", "mail", ... */
	char cmd;               /* MC_CMD_* */
	int macro_stage;        /* MC_M_*, MC_M_NONE for header and body */
	uint32_t no_step;       /* MC_P_NO*: the milter does not want it;
				 * 0 for end of message */
	uint32_t no_reply;      /* MC_P_NR_*: the milter does not answer
				 * it; 0 for end of message */
	bool connection;        /* connect, helo: accept and reject are the
				 * connection's */
};

/* The row of event ev (0 <= ev < MC_EV_COUNT). */
const struct mc_event_info *mc_event_info(enum mc_event ev);

/* ---- replies ------------------------------------------------------------- */

/*
 * One packet from the milter, checked and split into its fields.  The
 * pointers are into the connection's buffer: valid until the next read.
 */
struct mc_reply {
	char code;                 /* MC_R_* */
	const unsigned char *data; /* the packet's data, after the letter */
	size_t len;
	/*
	 * The fields, by code:
	 *   MC_R_REPLYCODE        text: "550 5.7.1 text", as sent; lines of
	 *                         a multi-line reply separated by CR LF
	 *   MC_R_ADDHEADER        name, value
	 *   MC_R_INSHEADER        index, name, value
	 *   MC_R_CHGHEADER        index, name, value ("" deletes)
	 *   MC_R_REPLBODY         data, len (a chunk of the new body)
	 *   MC_R_ADDRCPT          text (the recipient)
	 *   MC_R_ADDRCPT_PAR      text (the recipient), args (or NULL)
	 *   MC_R_DELRCPT          text (the recipient)
	 *   MC_R_CHGFROM          text (the sender), args (or NULL)
	 *   MC_R_QUARANTINE       text (the reason)
	 *   MC_R_OPTNEG           see mc_negotiate
	 * Unused fields are NULL or 0.
	 */
	uint32_t index;
	const char *name;
	const char *value;
	const char *text;
	const char *args;
};

/* Is code a message change (add header ... quarantine)?  Its action
 * (MC_ACT_*) into *action, if not NULL. */
bool mc_is_change(char code, uint32_t *action);

/* Is code a final answer to an event: continue, accept, reject,
 * tempfail, discard, skip, reply code, shutdown, connection failure? */
bool mc_is_final(char code);

/*
 * May the milter answer ev with the final answer code?  Continue,
 * accept, reject, tempfail, reply code, shutdown and connection failure
 * answer any event; discard all but connect and helo; skip only body.
 */
bool mc_answers(enum mc_event ev, char code);

/* ---- a connection ------------------------------------------------------ */

struct mc_conn;

/*
 * Connect to a milter: spec is "inet:PORT@HOST", "inet6:PORT@HOST",
 * "unix:PATH", "local:PATH" or an absolute PATH (HOST: a name or an
 * address; inet6 takes IPv6 addresses only).  TCP connections get
 * TCP_NODELAY.  Waits at most timeout_ms for the connection; that is
 * also the connection's I/O timeout until mc_set_timeout changes it.
 * Returns the connection, or NULL with the reason (naming spec) in err.
 */
struct mc_conn *mc_open(const char *spec, int timeout_ms, char *err,
			size_t errlen);

/* The address mc_open would connect to for spec, looked up now (for
 * checking a spec before any connection); 0, or -1 with the reason
 * (naming spec) in err. */
int mc_resolve(const char *spec, struct sockaddr_storage *addr,
	       socklen_t *len, char *err, size_t errlen);

/* A connection over a socket the caller opened (a socketpair in the unit
 * tests); it is made blocking, its SO_RCVTIMEO and SO_SNDTIMEO set to
 * timeout_ms, and closed by mc_close.  NULL if out of memory (fd is then
 * left open). */
struct mc_conn *mc_wrap(int fd, int timeout_ms);

/* Close the socket (without a QUIT: send one first if the milter should
 * hear it) and free c.  c may be NULL. */
void mc_close(struct mc_conn *c);

/* How long a read or write may wait from now on, in milliseconds; 0 or
 * less: no limit.  (Sets the socket's SO_RCVTIMEO and SO_SNDTIMEO.) */
void mc_set_timeout(struct mc_conn *c, int timeout_ms);

/* The socket (for poll), and the text of the last error ("" if none). */
int mc_fd(const struct mc_conn *c);
const char *mc_error(const struct mc_conn *c);

/* ---- negotiation -------------------------------------------------------- */

/*
 * Send the options (version, actions and steps offered) and read the
 * milter's answer: its version (2 to 6), the actions and steps it asks
 * for, and the macro lists it asks for per stage.  An answer asking for
 * more than offered, a version out of range or a malformed macro list is
 * an error.  The results stay with the connection.
 */
int mc_negotiate(struct mc_conn *c, uint32_t version, uint32_t actions,
		 uint32_t steps);
uint32_t mc_version(const struct mc_conn *c);
uint32_t mc_actions(const struct mc_conn *c);
uint32_t mc_steps(const struct mc_conn *c);
/* The macro list the milter asked for at macro_stage (space-separated,
 * as sent), or NULL if it asked for none there. */
const char *mc_macro_list(const struct mc_conn *c, int macro_stage);

/* Does the milter want ev (no MC_P_NO* bit for it), and does it answer
 * it (no MC_P_NR_* bit)?  End of message is always wanted and answered. */
bool mc_wants(const struct mc_conn *c, enum mc_event ev);
bool mc_answers_event(const struct mc_conn *c, enum mc_event ev);

/* ---- sending ------------------------------------------------------------ */

/* Queue one command with its data as it is.  -1 only if out of memory. */
int mc_put(struct mc_conn *c, char cmd, const void *data, size_t len);

/*
 * Queue the macros of an event (cmd: the event's MC_CMD_*): for each
 * name of list (space- or comma-separated, with or without braces), the
 * value value(arg, name) gives, name being NUL-terminated as written in
 * list; names without a value (NULL) are left out, and nothing is
 * queued when none has one.  Names longer than one letter go out in
 * braces, as Postfix sends them.
 */
int mc_put_macros(struct mc_conn *c, char cmd, const char *list,
		  const char *(*value)(void *arg, const char *name),
		  void *arg);

/*
 * Queue an event's command.  connect: hostname, and addr (AF_INET,
 * AF_INET6 with the port, AF_UNIX with the path) or NULL for an unknown
 * address ("U").  mail, rcpt: argv[0] the address in angle brackets,
 * then the ESMTP arguments, NULL-terminated.  header: the value as the
 * milter should get it.  body: up to 65535 bytes per chunk.
 */
int mc_put_connect(struct mc_conn *c, const char *hostname,
		   const struct sockaddr *addr);
int mc_put_helo(struct mc_conn *c, const char *name);
int mc_put_argv(struct mc_conn *c, char cmd, const char *const *argv);
int mc_put_header(struct mc_conn *c, const char *name, const char *value);
int mc_put_body(struct mc_conn *c, const void *chunk, size_t len);
int mc_put_unknown(struct mc_conn *c, const char *command);

/* Write everything queued. */
int mc_flush(struct mc_conn *c);

/* ---- reading ------------------------------------------------------------ */

/*
 * Read one packet into *r and check it: a known letter, its fields
 * well-formed (NUL-terminated strings, an index where the command has
 * one, a reply code of three digits starting 4 or 5), and a change only
 * if its action was negotiated.  Waits at most the connection's timeout.
 */
int mc_read(struct mc_conn *c, struct mc_reply *r);

/*
 * The answer to an event just flushed: read packets until a final one,
 * passing over progress (each counted in *progress if not NULL), and
 * check it answers ev (mc_answers).  A change is an error here: for the
 * end of message, whose changes come before its answer, read with
 * mc_read until mc_is_final instead.
 */
int mc_read_answer(struct mc_conn *c, enum mc_event ev, struct mc_reply *r,
		   unsigned *progress);

/*
 * Has the milter sent anything that no mc_read took yet: bytes in the
 * connection's read buffer (which mc_read fills as far as the socket
 * has them) or waiting in the socket?  Does not wait.  A reply there
 * when every event sent was answered answers nothing.  (Polling mc_fd
 * alone misses what sits in the buffer.)
 */
bool mc_pending(const struct mc_conn *c);

/*
 * Has the milter closed the connection (or has it failed), as far as the
 * socket tells without waiting?  Unread data is not a close: the close
 * shows once it is read.
 */
bool mc_closed(const struct mc_conn *c);

#endif /* MILTERHOST_MILTERCLIENT_H */

/*
 * test_chain - unit tests of the chain engine (chain.c, context.c, mods.c,
 * reply.c), without libmilter.
 *
 * The plugins are descriptors compiled into this file and put into a set
 * with plugin_set_add().  Each instance's state, created by its init, says
 * what its callbacks do at each stage: the status to return, a reply to
 * set, and optionally a hook that makes host calls (modifications, data
 * slots, macros) and notes what it saw.  Every callback call is appended to
 * one call log ("p1:envfrom p2:envfrom p1:abort"), which the tests compare
 * after each event together with the verdict, its reply, the negotiation
 * result and the modification list returned at the end of the message.
 * Macros come from a table of the test through a struct chain_io; the log
 * module's stderr is captured where a test checks what was logged.
 *
 * Each test is named for the rule of the engine's semantics it checks.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/CUnit.h>

#include "unit.h"

#include <milterhost/plugin.h>

#include "chain.h"
#include "cond.h"
#include "config.h"
#include "loader.h"
#include "log.h"
#include "mods.h"
#include "reply.h"
#include "score.h"
#include "summary.h"

/* What Postfix offers with milter_protocol = 6. */
#define OFFER_ACTIONS 0x1FFUL
#define OFFER_STEPS 0x1FFFFFUL
#define ALL_MH_ACTIONS 0xFFUL

#define NO_BITS (PROTO_NOCONNECT | PROTO_NOHELO | PROTO_NOMAIL |           \
		 PROTO_NORCPT | PROTO_NOBODY | PROTO_NOHDRS | PROTO_NOEOH |  \
		 PROTO_NOUNKNOWN | PROTO_NODATA)
#define NR_BITS (0x80UL | 0x1000UL | 0x2000UL | 0x4000UL | 0x8000UL |      \
		 0x10000UL | 0x20000UL | 0x40000UL | 0x80000UL)

#define QID "QID4711"
#define MAXPLUG 6

static const char *const stage_names[MH_STAGE_COUNT] = {
	"connect", "helo", "envfrom", "envrcpt", "data", "unknown",
	"header", "eoh", "body", "eom", "abort", "close"
};

/* ---- the scripted plugin ---------------------------------------------- */

struct tplug;
typedef mh_status (*hook_fn)(mh_ctx *ctx, struct tplug *p, const char *arg);

struct treply {
	const char *rcode;
	const char *xcode;
	const char *text;
};

struct tplug {
	char name[32];
	mh_status status[MH_STAGE_COUNT];   /* returned at each stage */
	struct treply reply[MH_STAGE_COUNT]; /* set at each stage if rcode */
	hook_fn hook[MH_STAGE_COUNT];       /* replaces status if set */
	const void *aux;                    /* the hook's parameter */
	int n;                              /* another one */
	int count;                          /* the hook's own counter */
	char rcs[512];    /* results of the hooks' host calls, by name */
	char seen[2048];  /* arguments received: senders, rcpts, headers */
	char notes[2048]; /* what hooks observed */
	mh_ctx *saved_ctx;  /* kept by hook_save_ctx */
	pthread_t thread;   /* started by a hook */
	unsigned logged;    /* lines the thread logged (atomic) */
};

static char calls[8192];

static void
append(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
append(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n >= size - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

static const char *
nz(const char *s)
{
	return s == NULL ? "(null)" : s;
}

/* s (len bytes) with CR, LF, tab and NUL made visible. */
static const char *
esc(const char *s, size_t len, char *out, size_t size)
{
	size_t o = 0;

	if (s == NULL)
		return "(null)";
	for (size_t i = 0; i < len && o + 3 < size; i++) {
		const char *e = NULL;

		switch (s[i]) {
		case '\r': e = "\\r"; break;
		case '\n': e = "\\n"; break;
		case '\t': e = "\\t"; break;
		case '\0': e = "\\0"; break;
		}
		if (e != NULL) {
			out[o++] = e[0];
			out[o++] = e[1];
		} else
			out[o++] = s[i];
	}
	out[o] = '\0';
	return out;
}

static const char *
rc_name(int rc)
{
	switch (rc) {
	case MH_OK: return "OK";
	case MH_E_INVALID: return "E_INVALID";
	case MH_E_ACTION: return "E_ACTION";
	case MH_E_STAGE: return "E_STAGE";
	case MH_E_NOMEM: return "E_NOMEM";
	case MH_E_NOTFOUND: return "E_NOTFOUND";
	case MH_E_EXISTS: return "E_EXISTS";
	case MH_E_UNAVAILABLE: return "E_UNAVAILABLE";
	default: return "E_?";
	}
}

/* Record the result of a host call made by a hook. */
static int
keep(struct tplug *p, int rc)
{
	append(p->rcs, sizeof p->rcs, "%s%s", p->rcs[0] ? " " : "",
	    rc_name(rc));
	return rc;
}

static void
note(struct tplug *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void
note(struct tplug *p, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	append(p->notes, sizeof p->notes, "%s%s", p->notes[0] ? " " : "",
	    line);
}

static mh_status
callback(mh_ctx *ctx, mh_stage stage, const char *arg)
{
	struct tplug *p = mh_instance_state(ctx);
	const struct treply *r = &p->reply[stage];

	CU_ASSERT_EQUAL(mh_current_stage(ctx), stage);
	CU_ASSERT_STRING_EQUAL(nz(mh_instance_name(ctx)), p->name);
	append(calls, sizeof calls, "%s%s:%s", calls[0] ? " " : "", p->name,
	    stage_names[stage]);
	if (r->rcode != NULL)
		mh_set_reply(ctx, r->rcode, r->xcode, r->text);
	if (p->hook[stage] != NULL)
		return p->hook[stage](ctx, p, arg);
	return p->status[stage];
}

static void
see_address(mh_ctx *ctx, const char *addr, const char *const *args)
{
	struct tplug *p = mh_instance_state(ctx);

	append(p->seen, sizeof p->seen, "%s", nz(addr));
	for (size_t i = 0; args != NULL && args[i] != NULL; i++)
		append(p->seen, sizeof p->seen, " %s", args[i]);
	append(p->seen, sizeof p->seen, ";");
}

static mh_status
tp_connect(mh_ctx *ctx, const char *hostname, const struct sockaddr *addr)
{
	return callback(ctx, MH_STAGE_CONNECT, hostname);
}

static mh_status
tp_helo(mh_ctx *ctx, const char *name)
{
	return callback(ctx, MH_STAGE_HELO, name);
}

static mh_status
tp_envfrom(mh_ctx *ctx, const char *sender, const char *const *args)
{
	see_address(ctx, sender, args);
	return callback(ctx, MH_STAGE_ENVFROM, sender);
}

static mh_status
tp_envrcpt(mh_ctx *ctx, const char *rcpt, const char *const *args)
{
	see_address(ctx, rcpt, args);
	return callback(ctx, MH_STAGE_ENVRCPT, rcpt);
}

static mh_status
tp_data(mh_ctx *ctx)
{
	return callback(ctx, MH_STAGE_DATA, NULL);
}

static mh_status
tp_unknown(mh_ctx *ctx, const char *command)
{
	return callback(ctx, MH_STAGE_UNKNOWN, command);
}

static mh_status
tp_header(mh_ctx *ctx, const char *name, const char *value)
{
	struct tplug *p = mh_instance_state(ctx);
	char v[1024];

	append(p->seen, sizeof p->seen, "[%s=%s]", nz(name),
	    value == NULL ? "(null)" : esc(value, strlen(value), v, sizeof v));
	return callback(ctx, MH_STAGE_HEADER, name);
}

static mh_status
tp_eoh(mh_ctx *ctx)
{
	return callback(ctx, MH_STAGE_EOH, NULL);
}

static mh_status
tp_body(mh_ctx *ctx, const unsigned char *chunk, size_t len)
{
	struct tplug *p = mh_instance_state(ctx);
	char v[1024];

	append(p->seen, sizeof p->seen, "[body:%zu:%s]", len,
	    esc((const char *)chunk, len < 200 ? len : 200, v, sizeof v));
	return callback(ctx, MH_STAGE_BODY, NULL);
}

static mh_status
tp_eom(mh_ctx *ctx)
{
	return callback(ctx, MH_STAGE_EOM, NULL);
}

static void
tp_abort(mh_ctx *ctx)
{
	(void)callback(ctx, MH_STAGE_ABORT, NULL);
}

static void
tp_close(mh_ctx *ctx)
{
	(void)callback(ctx, MH_STAGE_CLOSE, NULL);
}

/* What the next instances' init declares (ABI 1.1), if set. */
static int (*declare)(const struct mh_init *init);

static int
tp_init(const struct mh_init *init, void **state)
{
	struct tplug *p;

	if (declare != NULL && declare(init) != 0)
		return -1;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return mh_init_error(init, NULL, "out of memory");
	snprintf(p->name, sizeof p->name, "%s", init->instance);
	*state = p;
	return 0;
}

static void
tp_fini(void *state)
{
	free(state);
}

/* Every callback, every action; tests copy it and take parts away. */
static const struct mh_plugin test_plugin = {
	MH_PLUGIN_ABI,
	.name = "scripted",
	.version = "1.0",
	.description = "a plugin scripted by test_chain",
	.actions = ALL_MH_ACTIONS,
	.init = tp_init,
	.fini = tp_fini,
	.connect = tp_connect,
	.helo = tp_helo,
	.envfrom = tp_envfrom,
	.envrcpt = tp_envrcpt,
	.data = tp_data,
	.unknown = tp_unknown,
	.header = tp_header,
	.eoh = tp_eoh,
	.body = tp_body,
	.eom = tp_eom,
	.abort = tp_abort,
	.close = tp_close,
};

/* Only envfrom, eom and the end callbacks. */
static const struct mh_plugin envfrom_eom_plugin = {
	MH_PLUGIN_ABI,
	.name = "envfrom-eom",
	.version = "1.0",
	.description = "envfrom and eom only",
	.init = tp_init,
	.fini = tp_fini,
	.envfrom = tp_envfrom,
	.eom = tp_eom,
	.abort = tp_abort,
	.close = tp_close,
};

/* Only header and the end callbacks. */
static const struct mh_plugin header_plugin = {
	MH_PLUGIN_ABI,
	.name = "header-only",
	.version = "1.0",
	.description = "header only",
	.init = tp_init,
	.fini = tp_fini,
	.header = tp_header,
	.abort = tp_abort,
	.close = tp_close,
};

/* ---- the MTA side: macros and progress -------------------------------- */

struct macro {
	char name[64];
	char value[256];
};

static struct macro macro_table[16];
static size_t nmacros;
static int progress_calls;
/* Only the session's thread may read macros (libmilter changes them
 * there); calls from other threads are counted, atomically. */
static pthread_t main_thread;
static unsigned foreign_macro_calls;

/* name without its braces, and its length */
static const char *
bare(const char *name, size_t *len)
{
	size_t n = strlen(name);

	if (n >= 2 && name[0] == '{' && name[n - 1] == '}') {
		*len = n - 2;
		return name + 1;
	}
	*len = n;
	return name;
}

static bool
same_macro(const char *a, const char *b)
{
	size_t la, lb;
	const char *ba = bare(a, &la), *bb = bare(b, &lb);

	return la == lb && memcmp(ba, bb, la) == 0;
}

static void
set_macro(const char *name, const char *value)
{
	size_t i;

	for (i = 0; i < nmacros; i++)
		if (same_macro(macro_table[i].name, name))
			break;
	if (i == nmacros) {
		CU_ASSERT_FATAL(nmacros < sizeof macro_table / sizeof macro_table[0]);
		nmacros++;
	}
	snprintf(macro_table[i].name, sizeof macro_table[i].name, "%s", name);
	snprintf(macro_table[i].value, sizeof macro_table[i].value, "%s", value);
}

static const char *
io_macro(void *arg, const char *name)
{
	if (!pthread_equal(pthread_self(), main_thread)) {
		__atomic_add_fetch(&foreign_macro_calls, 1, __ATOMIC_SEQ_CST);
		return NULL;
	}
	CU_ASSERT_PTR_EQUAL(arg, &progress_calls);
	if (name == NULL)
		return NULL;
	for (size_t i = 0; i < nmacros; i++)
		if (same_macro(macro_table[i].name, name))
			return macro_table[i].value;
	return NULL;
}

static int
io_progress(void *arg)
{
	CU_ASSERT_PTR_EQUAL(arg, &progress_calls);
	progress_calls++;
	return 0;
}

static const struct chain_io test_io = {
	.macro = io_macro,
	.progress = io_progress,
	.arg = &progress_calls,
};

/* ---- fixture ------------------------------------------------------------ */

static struct plugin_set *set;
static struct session *sess;
static struct negotiation neg;
static bool closed;
static struct tplug *P[MAXPLUG];
static size_t nplug;

static void
fixture(void)
{
	calls[0] = '\0';
	memset(P, 0, sizeof P);
	nplug = 0;
	sess = NULL;
	closed = false;
	nmacros = 0;
	set_macro("i", QID);
	set_macro("j", "mx.example.net");
	set_macro("{rcpt_mailer}", "smtp");
	progress_calls = 0;
	__atomic_store_n(&foreign_macro_calls, 0, __ATOMIC_SEQ_CST);
	set = plugin_set_new();
	CU_ASSERT_FATAL(set != NULL);
}

static struct tplug *
add(const char *name, const struct mh_plugin *desc, enum on_error on_error,
    bool dry_run)
{
	char err[512] = "";
	int rc;

	rc = plugin_set_add(set, name, desc, NULL, 0, on_error, dry_run, err,
	    sizeof err);
	if (rc != 0)
		fprintf(stderr, "plugin_set_add %s: %s\n", name, err);
	CU_ASSERT_FATAL(rc == 0);
	CU_ASSERT_FATAL(nplug < MAXPLUG);
	P[nplug] = set->instances[set->ninstances - 1].state;
	CU_ASSERT_FATAL(P[nplug] != NULL);
	return P[nplug++];
}

static struct tplug *
add_plain(const char *name)
{
	return add(name, &test_plugin, ON_ERROR_TEMPFAIL, false);
}

/* A plugin with every callback that declares only actions. */
static struct tplug *
add_with_actions(const char *name, unsigned long actions,
		 enum on_error on_error)
{
	struct mh_plugin d = test_plugin;

	d.actions = actions;
	return add(name, &d, on_error, false);
}

static void
start_offer(unsigned long actions, unsigned long steps)
{
	sess = session_new(set, &test_io);
	CU_ASSERT_FATAL(sess != NULL);
	memset(&neg, 0, sizeof neg);
	neg.mta_actions = actions;
	neg.mta_steps = steps;
	chain_negotiate(sess, &neg);
}

static void
start(void)
{
	start_offer(OFFER_ACTIONS, OFFER_STEPS);
}

/*
 * As the adapter does: once the test looked at the changes chain_eom
 * handed out, they are "applied" before the session's next event.
 */
static bool eom_handed_out;

static void
applied(void)
{
	if (eom_handed_out)
		chain_eom_applied(sess);
	eom_handed_out = false;
}

static void
finish(void)
{
	applied();
	if (sess != NULL) {
		if (!closed)
			chain_close(sess);
		session_free(sess);
	}
	sess = NULL;
	plugin_set_release(set);
	set = NULL;
}

/* ---- events -------------------------------------------------------------- */

static struct verdict
ev_connect_addr(const struct sockaddr *addr)
{
	applied();
	return chain_connect(sess, "client.example.com", addr);
}

static struct verdict
ev_connect(void)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons(54321);
	inet_pton(AF_INET, "192.0.2.1", &sin.sin_addr);
	return ev_connect_addr((const struct sockaddr *)&sin);
}

static struct verdict
ev_helo(const char *name)
{
	applied();
	return chain_helo(sess, name);
}

static struct verdict
ev_address(bool from, const char *addr, const char *arg)
{
	char a[256], b[256];
	char *argv[3] = { a, NULL, NULL };

	applied();
	snprintf(a, sizeof a, "%s", addr);
	if (arg != NULL) {
		snprintf(b, sizeof b, "%s", arg);
		argv[1] = b;
	}
	return from ? chain_envfrom(sess, argv) : chain_envrcpt(sess, argv);
}

static struct verdict
ev_from(const char *addr)
{
	return ev_address(true, addr, NULL);
}

static struct verdict
ev_rcpt(const char *addr)
{
	return ev_address(false, addr, NULL);
}

static struct verdict
ev_data(void)
{
	applied();
	return chain_data(sess);
}

static struct verdict
ev_unknown(const char *command)
{
	applied();
	return chain_unknown(sess, command);
}

static struct verdict
ev_header(const char *name, const char *value)
{
	applied();
	return chain_header(sess, name, value);
}

static struct verdict
ev_eoh(void)
{
	applied();
	return chain_eoh(sess);
}

static struct verdict
ev_body(const char *text)
{
	applied();
	return chain_body(sess, (const unsigned char *)text, strlen(text));
}

static struct verdict
ev_eom(const struct mod_list **mods)
{
	applied();
	*mods = NULL;
	eom_handed_out = true;
	return chain_eom(sess, mods);
}

static void
ev_abort(void)
{
	applied();
	chain_abort(sess);
}

static void
ev_close(void)
{
	applied();
	chain_close(sess);
	closed = true;
}

/* ---- checks ------------------------------------------------------------- */

static void
check(bool ok, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
check(bool ok, int line, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg,
	    __FILE__, "", CU_FALSE);
}

static void
check_str(const char *got, const char *want, int line, const char *what)
{
	bool ok;

	if (got == NULL || want == NULL)
		ok = got == want;
	else
		ok = strcmp(got, want) == 0;
	check(ok, line, "%s: got \"%s\", want \"%s\"", what, nz(got),
	    nz(want));
}

static const char *
status_label(mh_status s)
{
	static const char *const names[] = {
		"CONTINUE", "REJECT", "DISCARD", "ACCEPT", "TEMPFAIL", "SKIP",
		"FAIL"
	};

	if ((unsigned)s < sizeof names / sizeof names[0])
		return names[s];
	return "(invalid)";
}

/* The call log so far, which is then emptied. */
static const char *
take_calls(void)
{
	static char out[sizeof calls];

	memcpy(out, calls, sizeof calls);
	calls[0] = '\0';
	return out;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The words of s, sorted, one space between. */
static void
sorted_words(const char *s, char *out, size_t size)
{
	char copy[8192];
	char *words[512], *save = NULL, *w;
	size_t n = 0;

	snprintf(copy, sizeof copy, "%s", s);
	for (w = strtok_r(copy, " ", &save); w != NULL && n < 512;
	     w = strtok_r(NULL, " ", &save))
		words[n++] = w;
	qsort(words, n, sizeof words[0], cmp_str);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		append(out, size, "%s%s", i ? " " : "", words[i]);
}

static void
check_calls_unordered(const char *want, int line)
{
	char got_sorted[8192], want_sorted[8192];
	const char *got = take_calls();

	sorted_words(got, got_sorted, sizeof got_sorted);
	sorted_words(want, want_sorted, sizeof want_sorted);
	check(strcmp(got_sorted, want_sorted) == 0, line,
	    "calls (any order): got \"%s\", want \"%s\"", got, want);
}

/* "550 5.7.1 line1|line2", or NULL for no reply. */
static const char *
reply_text(const struct reply *r)
{
	static char buf[40000];

	if (r == NULL || r->nlines == 0)
		return NULL;
	snprintf(buf, sizeof buf, "%s", r->rcode);
	if (r->xcode[0] != '\0')
		append(buf, sizeof buf, " %s", r->xcode);
	for (size_t i = 0; i < r->nlines; i++)
		append(buf, sizeof buf, "%s%s", i ? "|" : " ", nz(r->lines[i]));
	return buf;
}

/* The list as "add:X-A=1(p1) | body=...(p2)"; "" when empty. */
static const char *
mods_text(const struct mod_list *l)
{
	static char buf[16384];
	char one[4096], v[2048], a[512];

	buf[0] = '\0';
	if (l == NULL)
		return buf;
	for (size_t i = 0; i < l->n; i++) {
		const struct mod *m = l->items[i];
		const char *value = m->value == NULL ? NULL :
		    esc(m->value, strlen(m->value), v, sizeof v);
		const char *args = m->args == NULL ? NULL :
		    esc(m->args, strlen(m->args), a, sizeof a);

		switch (m->type) {
		case MOD_ADD_HEADER:
			snprintf(one, sizeof one, "add:%s=%s", nz(m->name),
			    nz(value));
			break;
		case MOD_INSERT_HEADER:
			snprintf(one, sizeof one, "ins:%d:%s=%s", m->index,
			    nz(m->name), nz(value));
			break;
		case MOD_CHANGE_HEADER:
			if (value == NULL)
				snprintf(one, sizeof one, "del:%s:%d",
				    nz(m->name), m->index);
			else
				snprintf(one, sizeof one, "chg:%s:%d=%s",
				    nz(m->name), m->index, value);
			break;
		case MOD_REPLACE_BODY:
			snprintf(one, sizeof one, "body=%s", m->len == 0 ? "" :
			    esc((const char *)m->body, m->len, v, sizeof v));
			break;
		case MOD_ADD_RCPT:
			snprintf(one, sizeof one, "rcpt+:%s%s%s", nz(value),
			    args ? " " : "", args ? args : "");
			break;
		case MOD_DELETE_RCPT:
			snprintf(one, sizeof one, "rcpt-:%s", nz(value));
			break;
		case MOD_CHANGE_FROM:
			snprintf(one, sizeof one, "from:%s%s%s", nz(value),
			    args ? " " : "", args ? args : "");
			break;
		case MOD_QUARANTINE:
			snprintf(one, sizeof one, "quar:%s", nz(value));
			break;
		default:
			snprintf(one, sizeof one, "type%d", (int)m->type);
			break;
		}
		append(buf, sizeof buf, "%s%s(%s)", i ? " | " : "", one,
		    nz(m->owner));
	}
	return buf;
}

static void
check_status(mh_status got, mh_status want, int line)
{
	check(got == want, line, "status: got %s (%d), want %s", status_label(got),
	    (int)got, status_label(want));
}

static void
check_has(const char *text, const char *needle, int line)
{
	check(strstr(text, needle) != NULL, line,
	    "log lacks \"%s\"; it was: \"%s\"", needle, text);
}

#define EXPECT_CALLS(want) check_str(take_calls(), (want), __LINE__, "calls")
#define EXPECT_CALLS_ANY_ORDER(want) check_calls_unordered((want), __LINE__)
#define EXPECT_STATUS(v, want) check_status((v).status, (want), __LINE__)
#define EXPECT_REPLY(v, want)                                              \
	check_str(reply_text((v).reply), (want), __LINE__, "reply")
#define EXPECT_MODS(l, want) check_str(mods_text(l), (want), __LINE__, "mods")
#define EXPECT_STR(got, want) check_str((got), (want), __LINE__, #got)
#define EXPECT_LOGGED(text, needle) check_has((text), (needle), __LINE__)

/* connect and helo, both answered CONTINUE; the calls are forgotten. */
static void
connected(void)
{
	struct verdict v;

	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	take_calls();
}

/* "p1 p2" and "data" -> "p1:data p2:data" */
static const char *
each(const char *who, const char *stage)
{
	static char buf[1024];
	char copy[256];
	char *save = NULL, *w;

	buf[0] = '\0';
	snprintf(copy, sizeof copy, "%s", who);
	for (w = strtok_r(copy, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save))
		append(buf, sizeof buf, "%s%s:%s", buf[0] ? " " : "", w, stage);
	return buf;
}

/*
 * data, one header, eoh and one body chunk, each answered CONTINUE and
 * seen by exactly the plugins in who; then eom, whose calls and verdict
 * the caller checks.
 */
static struct verdict
message_tail(const char *who, const struct mod_list **mods, int line)
{
	struct verdict v;

	v = ev_data();
	check_status(v.status, MH_CONTINUE, line);
	check_str(take_calls(), each(who, "data"), line, "calls");
	v = ev_header("Subject", "hello");
	check_status(v.status, MH_CONTINUE, line);
	check_str(take_calls(), each(who, "header"), line, "calls");
	v = ev_eoh();
	check_status(v.status, MH_CONTINUE, line);
	check_str(take_calls(), each(who, "eoh"), line, "calls");
	v = ev_body("hello\r\n");
	check_status(v.status, MH_CONTINUE, line);
	check_str(take_calls(), each(who, "body"), line, "calls");
	return ev_eom(mods);
}

#define MESSAGE_TAIL(who, mods) message_tail((who), (mods), __LINE__)

/* ---- hooks ---------------------------------------------------------------- */

/* The stage's status if the argument is p->aux, else CONTINUE. */
static mh_status
hook_match(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	if (arg != NULL && strcmp(arg, (const char *)p->aux) == 0)
		return p->status[mh_current_stage(ctx)];
	return MH_CONTINUE;
}

/* Add "X-<instance>: <stage>", then return the stage's status. */
static mh_status
hook_add(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	mh_stage st = mh_current_stage(ctx);
	char name[64];

	snprintf(name, sizeof name, "X-%s", p->name);
	keep(p, mh_header_add(ctx, name, stage_names[st]));
	return p->status[st];
}

/* SKIP from the p->n-th call on. */
static mh_status
hook_skip_from(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	return ++p->count >= p->n ? MH_SKIP : MH_CONTINUE;
}

/* Note the state of both data slots; set the connection slot at connect
 * and the message slot at envfrom. */
static mh_status
hook_slots(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	mh_stage st = mh_current_stage(ctx);

	note(p, "%s(%s,%s)", stage_names[st],
	    mh_conn_data(ctx) == NULL ? "-" : mh_conn_data(ctx) == &p->n ?
	    "c" : "?",
	    mh_msg_data(ctx) == NULL ? "-" : mh_msg_data(ctx) == &p->count ?
	    "m" : "?");
	if (st == MH_STAGE_CONNECT)
		mh_set_conn_data(ctx, &p->n);
	if (st == MH_STAGE_ENVFROM)
		mh_set_msg_data(ctx, &p->count);
	return p->status[st];
}

/* Every kind of modification, where none is allowed. */
static mh_status
hook_try_mods(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "X-Early", "v"));
	keep(p, mh_header_insert(ctx, 0, "X-Early", "v"));
	keep(p, mh_header_change(ctx, "Subject", 1, "v"));
	keep(p, mh_header_delete(ctx, "Subject", 1));
	keep(p, mh_body_replace(ctx, "b\r\n", 3));
	keep(p, mh_rcpt_add(ctx, "<n@example.org>", NULL));
	keep(p, mh_rcpt_delete(ctx, "<b@example.org>"));
	keep(p, mh_from_change(ctx, "<f@example.org>", NULL));
	keep(p, mh_quarantine(ctx, "held"));
	return p->status[mh_current_stage(ctx)];
}

/* ---- tests: the message's score (ABI 1.2) -------------------------------- */

/* mh_score_add(p->n points, reason p->aux); note the total it sees. */
static mh_status
hook_score(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	double total = -1;

	keep(p, mh_score_add(ctx, p->n, (const char *)p->aux));
	if (mh_score_get(ctx, &total) == MH_OK)
		note(p, "total=%g", total);
	return p->status[mh_current_stage(ctx)];
}

/* The set's policy: thresholds (a negative value: not set), replies
 * (NULL: none) and header (NULL: none). */
static void
score_policy(double reject, const char *reject_reply, double tempfail,
    const char *tempfail_reply, const char *header)
{
	char err[256];

	set->score.reject_set = reject >= 0;
	set->score.reject = reject;
	set->score.tempfail_set = tempfail >= 0;
	set->score.tempfail = tempfail;
	if (reject_reply != NULL)
		CU_ASSERT_FATAL(reply_parse(&set->score.reject_reply,
		    reject_reply, err, sizeof err) == 0);
	if (tempfail_reply != NULL)
		CU_ASSERT_FATAL(reply_parse(&set->score.tempfail_reply,
		    tempfail_reply, err, sizeof err) == 0);
	if (header != NULL)
		CU_ASSERT_FATAL((set->score.header = strdup(header)) != NULL);
}

/* A message from envfrom to eom with one recipient; eom's verdict. */
static struct verdict
scored_message(const struct mod_list **mods)
{
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	ev_header("Subject", "hello");
	ev_eoh();
	ev_body("hello\r\n");
	return ev_eom(mods);
}

/*
 * Points of several instances add up; at the end of the message a total
 * at or above score_reject rejects it with the configured reply, the
 * decision is logged naming the largest contributors, and the message's
 * line says the score decided.  The next message starts from zero.
 */
static void
test_score_reject_threshold(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_score;
	P[0]->n = 4;
	P[0]->aux = "sender looks odd";
	P[1]->hook[MH_STAGE_EOM] = hook_score;
	P[1]->n = 7;
	P[1]->aux = "listed";
	P[2]->hook[MH_STAGE_EOM] = hook_score;
	P[2]->n = -1;
	P[2]->aux = "known client";
	score_policy(10, "550 5.7.1 too spammy", -1, NULL, "X-Score");
	start();
	connected();
	unit_capture_start();
	v = scored_message(&mods);
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.7.1 too spammy");
	EXPECT_MODS(mods, "");
	EXPECT_STR(P[0]->rcs, "OK");
	EXPECT_STR(P[0]->notes, "total=4");
	EXPECT_STR(P[1]->notes, "total=11");
	EXPECT_STR(P[2]->notes, "total=10");
	EXPECT_LOGGED(log, "notice: " QID ": score 10 >= 10: [p2] 7, [p1] 4, "
	    "[p3] -1: rejected");
	EXPECT_LOGGED(log, "rejected by score 10 >= 10: [p2] 7, [p1] 4, "
	    "[p3] -1 at eom;");
	/* The next message: p1 alone gives 4. */
	P[1]->hook[MH_STAGE_EOM] = NULL;
	P[2]->hook[MH_STAGE_EOM] = NULL;
	P[0]->notes[0] = '\0';
	v = scored_message(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->notes, "total=4");
	EXPECT_MODS(mods, "add:X-Score=total 4;\\n\\t[p1] 4 sender looks "
	    "odd(score)");
	finish();
}

/* Below score_reject but at score_tempfail: tempfailed, with the MTA's
 * default reply when none is configured. */
static void
test_score_tempfail_threshold(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_EOM] = hook_score;
	P[0]->n = 6;
	P[0]->aux = "suspicious";
	score_policy(10, NULL, 5, NULL, NULL);
	start();
	connected();
	v = scored_message(&mods);
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_REPLY(v, NULL);
	finish();
}

/*
 * Below the thresholds the message goes on, and the score header, last
 * of the changes, records the total and each contribution in the order
 * made.  The header needs the MTA to let milters add headers: milterhost
 * asks for that action itself.
 */
static void
test_score_header_records_contributions(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_with_actions("p2", MH_ACT_ADDHDRS, ON_ERROR_TEMPFAIL);
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_score;
	P[0]->n = 2;
	P[0]->aux = "first";
	P[1]->hook[MH_STAGE_EOM] = hook_add;
	score_policy(10, NULL, -1, NULL, "X-Score");
	start();
	CU_ASSERT(neg.actions & MH_ACT_ADDHDRS);
	connected();
	P[1]->status[MH_STAGE_EOM] = MH_CONTINUE;
	v = scored_message(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-p2=eom(p2) | add:X-Score=total 2;\\n\\t[p1] 2 "
	    "first(score)");
	finish();
	/* A header alone is enough to ask for the action. */
	fixture();
	add_with_actions("p1", 0, ON_ERROR_TEMPFAIL);
	score_policy(-1, NULL, -1, NULL, "X-Score");
	start();
	CU_ASSERT(neg.actions & MH_ACT_ADDHDRS);
	finish();
	fixture();
	add_with_actions("p1", 0, ON_ERROR_TEMPFAIL);
	start();
	CU_ASSERT(!(neg.actions & MH_ACT_ADDHDRS));
	finish();
}

/* A dry_run instance's points are logged, not counted. */
static void
test_score_dry_run_not_counted(void)
{
	const struct mod_list *mods;
	struct tplug *p;
	struct verdict v;
	const char *log;

	fixture();
	p = add("p1", &test_plugin, ON_ERROR_TEMPFAIL, true);
	p->hook[MH_STAGE_EOM] = hook_score;
	p->n = 50;
	p->aux = "would be a lot";
	score_policy(10, NULL, -1, NULL, "X-Score");
	start();
	connected();
	unit_capture_start();
	v = scored_message(&mods);
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(p->rcs, "OK");
	EXPECT_STR(p->notes, "total=0");
	EXPECT_MODS(mods, "");
	EXPECT_LOGGED(log, "[p1] dry run: would add 50 to the score: would be "
	    "a lot");
	finish();
}

/* A plugin's own REJECT decides, with its reply, whatever the score. */
static void
test_score_plugin_reject_wins(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_score;
	P[0]->n = 20;
	P[0]->aux = "bad";
	P[1]->status[MH_STAGE_EOM] = MH_REJECT;
	P[1]->reply[MH_STAGE_EOM] =
	    (struct treply){ "554", "5.7.0", "my own reason" };
	score_policy(10, "550 5.7.1 by score", -1, NULL, NULL);
	start();
	connected();
	unit_capture_start();
	v = scored_message(&mods);
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "554 5.7.0 my own reason");
	EXPECT_LOGGED(log, "rejected by [p2] at eom;");
	finish();
}

/*
 * When no instance is left in the message (all accepted it), points
 * still wait for their thresholds: the message is not accepted early but
 * goes on to its end, where the score rejects it.  Without a policy the
 * same message is accepted at once.
 */
static void
test_score_keeps_message_to_its_end(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_score;
	P[0]->n = 12;
	P[0]->aux = "bad sender";
	P[0]->status[MH_STAGE_ENVFROM] = MH_ACCEPT;
	score_policy(10, NULL, -1, NULL, NULL);
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_REJECT);
	/* It left the message with MH_ACCEPT: abort, at its end. */
	EXPECT_CALLS("p1:abort");
	finish();

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_score;
	P[0]->n = 12;
	P[0]->aux = "bad sender";
	P[0]->status[MH_STAGE_ENVFROM] = MH_ACCEPT;
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_ACCEPT);
	finish();
}

/* Points are checked: a message stage only, finite, at most 1000 either
 * way, and a reason of printable text up to 200 bytes. */
static mh_status
hook_bad_scores(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	char longer[SCORE_REASON_MAX + 2];
	double total;

	memset(longer, 'x', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	keep(p, mh_score_add(ctx, 0.0 / 0.0, "nan"));
	keep(p, mh_score_add(ctx, 1000.5, "too many"));
	keep(p, mh_score_add(ctx, -1000, "fewest allowed"));
	keep(p, mh_score_add(ctx, 1, NULL));
	keep(p, mh_score_add(ctx, 1, ""));
	keep(p, mh_score_add(ctx, 1, "two\nlines"));
	keep(p, mh_score_add(ctx, 1, longer));
	keep(p, mh_score_get(ctx, NULL));
	keep(p, mh_score_get(ctx, &total));
	note(p, "total=%g", total);
	return MH_CONTINUE;
}

static mh_status
hook_score_outside(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	double total;

	keep(p, mh_score_get(ctx, &total));
	keep(p, mh_score_add(ctx, 1, "at connect"));
	return MH_CONTINUE;
}

static void
test_score_arguments_checked(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_EOM] = hook_bad_scores;
	start();
	connected();
	v = scored_message(&mods);
	/* A refused call fails the callback: on_error = tempfail. */
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_STR(P[0]->rcs, "E_INVALID E_INVALID OK E_INVALID E_INVALID "
	    "E_INVALID E_INVALID E_INVALID OK");
	EXPECT_STR(P[0]->notes, "total=-1000");
	finish();

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_CONNECT] = hook_score_outside;
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_STR(P[0]->rcs, "E_STAGE E_STAGE");
	finish();
}

/* ---- tests: the key-value store (ABI 1.4) ------------------------------ */

/* Count in key aux with mh_kv_incr; note the count. */
static mh_status
hook_kv_count(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	long long n = 0;

	keep(p, mh_kv_incr(ctx, p->aux, 1, 0, &n));
	note(p, "%s=%lld", (const char *)p->aux, n);
	return MH_CONTINUE;
}

static int
declare_shared(const struct mh_init *init)
{
	return mh_declare_kv_namespace(init, "shared");
}

static struct kv_store *
fixture_kv(void)
{
	struct kv_store *kv;

	fixture();
	kv = kv_memory_open(KV_MEMORY_MIN, KV_MEMORY_SHARDS, NULL);
	CU_ASSERT_FATAL(kv != NULL);
	set->kv = kv;
	return kv;
}

/* The value the store holds under a full key, or "(none)". */
static const char *
stored(struct kv_store *kv, const char *full)
{
	static char buf[64];
	size_t len;

	if (kv_get(kv, full, buf, sizeof buf - 1, &len) != MH_OK)
		return "(none)";
	buf[len < sizeof buf - 1 ? len : sizeof buf - 1] = '\0';
	return buf;
}

/*
 * Keys are the instance's own unless it declared a namespace: p1 and p2
 * count apart under one key name, s1 and s2 (namespace "shared") count
 * together.  Every callback may use the store: connect, a message stage,
 * close.
 */
static void
test_kv_namespaces(void)
{
	struct kv_store *kv = fixture_kv();
	static const mh_stage stages[] = { MH_STAGE_CONNECT,
	    MH_STAGE_ENVRCPT, MH_STAGE_CLOSE };
	const struct mod_list *mods;

	add_plain("p1");
	add_plain("p2");
	declare = declare_shared;
	add_plain("s1");
	add_plain("s2");
	declare = NULL;
	CU_ASSERT_PTR_NULL(set->instances[0].kv_ns);
	CU_ASSERT_STRING_EQUAL(set->instances[2].kv_ns, "shared");
	for (size_t i = 0; i < nplug; i++) {
		P[i]->aux = "n";
		for (size_t k = 0; k < sizeof stages / sizeof stages[0]; k++)
			P[i]->hook[stages[k]] = hook_kv_count;
	}
	start();
	connected();
	scored_message(&mods);
	applied();
	ev_close();
	closed = true;
	EXPECT_STR(P[0]->notes, "n=1 n=2 n=3");
	EXPECT_STR(P[1]->notes, "n=1 n=2 n=3");
	EXPECT_STR(P[2]->notes, "n=1 n=3 n=5");
	EXPECT_STR(P[3]->notes, "n=2 n=4 n=6");
	EXPECT_STR(stored(kv, "p1:n"), "3");
	EXPECT_STR(stored(kv, "p2:n"), "3");
	EXPECT_STR(stored(kv, "shared:n"), "6");
	EXPECT_STR(stored(kv, "s1:n"), "(none)");
	finish();
	/* The store outlives the set: a new set (a reload) counts on. */
	set = plugin_set_new();
	CU_ASSERT_FATAL(set != NULL);
	set->kv = kv;
	nplug = 0;
	add_plain("p1");
	P[0]->aux = "n";
	P[0]->hook[MH_STAGE_CONNECT] = hook_kv_count;
	start();
	ev_connect();
	EXPECT_STR(P[0]->notes, "n=4");
	finish();
	kv_close(kv);
}

/* Every operation through the host functions, answers not logged. */
static mh_status
hook_kv_all(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	char buf[4];
	size_t len = 0;
	long long n = 0;

	keep(p, mh_kv_get(ctx, "k", buf, sizeof buf, &len));
	keep(p, mh_kv_add(ctx, "k", "hello", 5, 60));
	keep(p, mh_kv_add(ctx, "k", "again", 5, 60));
	keep(p, mh_kv_get(ctx, "k", buf, sizeof buf, &len));
	note(p, "%.*s/%zu", (int)sizeof buf, buf, len);
	keep(p, mh_kv_get(ctx, "k", NULL, 0, NULL));
	keep(p, mh_kv_set(ctx, "k", "", 0, 0));
	keep(p, mh_kv_get(ctx, "k", NULL, 0, &len));
	note(p, "%zu", len);
	keep(p, mh_kv_set(ctx, "c", "41", 2, 0));
	keep(p, mh_kv_incr(ctx, "c", 1, 0, &n));
	note(p, "%lld", n);
	keep(p, mh_kv_delete(ctx, "c"));
	keep(p, mh_kv_delete(ctx, "c"));
	keep(p, mh_kv_get(ctx, "c", buf, sizeof buf, &len));
	return MH_CONTINUE;
}

static void
test_kv_operations(void)
{
	struct kv_store *kv = fixture_kv();
	const char *log;
	struct verdict v;

	add_plain("p1");
	P[0]->hook[MH_STAGE_HELO] = hook_kv_all;
	start();
	ev_connect();
	unit_capture_start();
	v = ev_helo("client.example.com");
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "E_NOTFOUND OK E_EXISTS OK OK OK OK OK OK "
	    "OK OK E_NOTFOUND");
	EXPECT_STR(P[0]->notes, "hell/5 0 42");
	EXPECT_STR(log, "");
	finish();
	kv_close(kv);
}

/*
 * A refused kv call is logged and returned, and unlike a refused message
 * change it does not fail the callback: the plugin's status stands (a
 * score call at the same stage fails it, for comparison).
 */
static mh_status
hook_kv_bad(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	static char big[MH_KV_VALUE_MAX + 1];
	char longkey[MH_KV_KEY_MAX + 2];
	long long n;

	memset(longkey, 'k', sizeof longkey - 1);
	longkey[sizeof longkey - 1] = '\0';
	keep(p, mh_kv_get(ctx, NULL, NULL, 0, NULL));
	keep(p, mh_kv_get(ctx, "a b", NULL, 0, NULL));
	keep(p, mh_kv_set(ctx, longkey, "v", 1, 0));
	keep(p, mh_kv_set(ctx, "k", NULL, 1, 0));
	keep(p, mh_kv_add(ctx, "k", big, sizeof big, 0));
	keep(p, mh_kv_get(ctx, "k", NULL, 4, NULL));
	keep(p, mh_kv_set(ctx, "k", "ten", 3, 0));
	keep(p, mh_kv_incr(ctx, "k", 1, 0, &n));
	keep(p, mh_kv_delete(ctx, "caf\xc3\xa9"));
	return p->status[MH_STAGE_CONNECT];
}

static mh_status
hook_kv_none(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_kv_set(ctx, "k", "v", 1, 0));
	keep(p, mh_kv_incr(ctx, "k", 1, 0, NULL));
	return MH_CONTINUE;
}

static void
test_kv_refusal_does_not_fail_the_callback(void)
{
	struct kv_store *kv = fixture_kv();
	const char *log;
	struct verdict v;

	add_plain("p1");
	P[0]->hook[MH_STAGE_CONNECT] = hook_kv_bad;
	start();
	unit_capture_start();
	v = ev_connect();
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "E_INVALID E_INVALID E_INVALID E_INVALID "
	    "E_INVALID E_INVALID OK E_INVALID E_INVALID");
	EXPECT_LOGGED(log, "error: " QID ": [p1] mh_kv_get at connect: NULL "
	    "key (invalid argument)\n");
	EXPECT_LOGGED(log, "[p1] mh_kv_get at connect: bad key 'a b': 1 to "
	    "200 bytes of printable ASCII without spaces");
	EXPECT_LOGGED(log, "[p1] mh_kv_add at connect: value of 65537 bytes: "
	    "at most 65536");
	EXPECT_LOGGED(log, "[p1] mh_kv_incr at connect: key 'k': the value "
	    "is not a decimal integer");
	/* The value the refused incr found stays. */
	EXPECT_STR(stored(kv, "p1:k"), "ten");
	finish();
	kv_close(kv);

	/* The plugin's own decision stands as it made it. */
	kv = fixture_kv();
	add_plain("p1");
	P[0]->hook[MH_STAGE_CONNECT] = hook_kv_bad;
	P[0]->status[MH_STAGE_CONNECT] = MH_REJECT;
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_REJECT);
	finish();
	kv_close(kv);

	/* Without a store (a program that made none): unavailable. */
	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_CONNECT] = hook_kv_none;
	start();
	unit_capture_start();
	v = ev_connect();
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "E_UNAVAILABLE E_UNAVAILABLE");
	EXPECT_LOGGED(log, "[p1] mh_kv_set at connect: no key-value store");
	finish();
}

/* mh_declare_kv_namespace checks its name, and takes one per instance. */
static int
declare_bad_namespace(const struct mh_init *init)
{
	return mh_declare_kv_namespace(init, "a:b") == MH_E_INVALID ? 0 : -1;
}

static int
declare_two_namespaces(const struct mh_init *init)
{
	if (mh_declare_kv_namespace(init, "one") != MH_OK)
		return -1;
	return mh_declare_kv_namespace(init, "two") == MH_E_INVALID ? 0 : -1;
}

static void
test_kv_namespace_declarations_checked(void)
{
	char err[512];

	fixture();
	declare = declare_bad_namespace;
	CU_ASSERT_EQUAL(plugin_set_add(set, "p1", &test_plugin, NULL, 0,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
	EXPECT_LOGGED(err, "mh_declare_kv_namespace: bad namespace 'a:b'");
	declare = declare_two_namespaces;
	CU_ASSERT_EQUAL(plugin_set_add(set, "p2", &test_plugin, NULL, 0,
	    ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
	EXPECT_LOGGED(err, "namespace 'two' declared after 'one': one per "
	    "instance");
	declare = NULL;
	CU_ASSERT_EQUAL(set->ninstances, 0);
	CU_ASSERT_EQUAL(mh_declare_kv_namespace(NULL, "x"), MH_E_INVALID);
	finish();
}

/* ---- tests: conditions (cond.c; README "Conditions") --------------------- */

/* Give instance i the conditions "key", "value", ... (NULL-ended). */
static void
add_cond(size_t i, const char *key, ...)
{
	struct config_setting keys[6];
	struct cond *c = NULL;
	char cerr[512];
	size_t n = 0;
	va_list ap;

	va_start(ap, key);
	for (const char *k = key; k != NULL && n < 6;
	     k = va_arg(ap, const char *)) {
		keys[n].key = (char *)k;
		keys[n].value = va_arg(ap, char *);
		keys[n].line = (int)n + 1;
		keys[n].continuation = false;
		n++;
	}
	va_end(ap);
	if (cond_compile(keys, n, "test.ini", "plugin:x", &c, cerr,
	    sizeof cerr) < 0)
		fprintf(stderr, "cond_compile: %s\n", cerr);
	CU_ASSERT_FATAL(c != NULL);
	CU_ASSERT_FATAL(i < set->ninstances);
	set->instances[i].cond = c;
}

/* A message: MAIL FROM from, the recipients (NULL-ended), DATA to eom;
 * each recipient's verdict into rv (if not NULL), eom's returned. */
static struct verdict
message_to(const char *from, const char *const *rcpts, struct verdict *rv,
    const struct mod_list **mods)
{
	struct verdict v;

	ev_from(from);
	for (size_t i = 0; rcpts[i] != NULL; i++) {
		v = ev_rcpt(rcpts[i]);
		if (rv != NULL)
			rv[i] = v;
	}
	ev_data();
	ev_header("Subject", "hello");
	ev_eoh();
	ev_body("hello\r\n");
	return ev_eom(mods);
}

/*
 * if_client: decided at the instance's first event; when it does not
 * hold, the instance gets close only, and the other instances run
 * exactly as they would without it.
 */
static void
test_cond_client_out_for_the_connection(void)
{
	static const char *const rcpts[] = { "<r@example.org>", NULL };
	const struct mod_list *mods;
	const char *log;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_client", "198.51.100.0/24", NULL);
	start();
	unit_capture_start();
	connected();
	message_to("<s@example.com>", rcpts, NULL, &mods);
	EXPECT_CALLS("p2:envfrom p2:envrcpt p2:data p2:header p2:eoh p2:body "
	    "p2:eom");
	ev_close();
	log = unit_capture_end(true);
	EXPECT_CALLS("p1:close p2:close");
	EXPECT_LOGGED(log, "debug: " QID ": [p1] if_client does not hold: not "
	    "taking part in this connection");
	finish();

	/* The client in the network: p1 takes part. */
	fixture();
	add_plain("p1");
	add_cond(0, "if_client", "192.0.2.0/24 !192.0.2.99", NULL);
	start();
	ev_connect();
	EXPECT_CALLS("p1:connect");
	finish();
}

/* if_daemon reads {daemon_name}: at connect, from connect's macros. */
static void
test_cond_daemon_name(void)
{
	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_daemon", "submission", NULL);
	add_cond(1, "if_daemon", "!submission", NULL);
	set_macro("{daemon_name}", "submission");
	start();
	ev_connect();
	EXPECT_CALLS("p1:connect");
	finish();
}

/*
 * Message conditions (if_auth, if_sender, if_macro) are decided at the
 * instance's first event of each message: one that does not hold keeps it
 * out of that message (no callback, no abort: it saw none of it), the
 * next message is decided anew, and the connection stages are not
 * affected.
 */
static void
test_cond_message_conditions_per_message(void)
{
	static const char *const rcpts[] = { "<r@example.org>", NULL };
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_sender", "@example\\.com$", "if_auth", "yes", NULL);
	start();
	ev_connect();
	EXPECT_CALLS("p1:connect p2:connect");
	/* Not authenticated: out. */
	message_to("<s@example.com>", rcpts, NULL, &mods);
	EXPECT_CALLS("p2:envfrom p2:envrcpt p2:data p2:header p2:eoh p2:body "
	    "p2:eom");
	set_macro("{auth_authen}", "alice");
	/* Authenticated, but another sender: out. */
	message_to("<s@example.net>", rcpts, NULL, &mods);
	EXPECT_CALLS("p2:envfrom p2:envrcpt p2:data p2:header p2:eoh p2:body "
	    "p2:eom");
	/* Both hold: in. */
	v = message_to("<s@EXAMPLE.com>", rcpts, NULL, &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom p1:envrcpt p2:envrcpt p1:data "
	    "p2:data p1:header p2:header p1:eoh p2:eoh p1:body p2:body "
	    "p1:eom p2:eom");
	finish();
}

/*
 * When every instance is out of the message by its conditions, the MTA
 * hears ACCEPT at once, as when every instance accepted it.
 */
static void
test_cond_all_out_accepts_the_message(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_cond(0, "if_sender", "^nobody@", NULL);
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_ACCEPT);
	EXPECT_CALLS("");
	finish();
}

/* A condition on a macro the MTA did not send does not hold, and says so
 * once, at debug level. */
static void
test_cond_missing_macro_is_false_logged_once(void)
{
	static const char *const rcpts[] = { "<r@example.org>", NULL };
	const struct mod_list *mods;
	const char *log, *first;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_macro", "{tls_version} ^TLSv1\\.3$", NULL);
	start();
	connected();
	unit_capture_start();
	message_to("<s@example.com>", rcpts, NULL, &mods);
	message_to("<s@example.com>", rcpts, NULL, &mods);
	log = unit_capture_end(true);
	EXPECT_CALLS("p2:envfrom p2:envrcpt p2:data p2:header p2:eoh p2:body "
	    "p2:eom p2:envfrom p2:envrcpt p2:data p2:header p2:eoh p2:body "
	    "p2:eom");
	first = strstr(log, "did not send the macro {tls_version}");
	CU_ASSERT_PTR_NOT_NULL(first);
	if (first != NULL)
		CU_ASSERT_PTR_NULL(strstr(first + 1, "did not send the macro"));
	EXPECT_LOGGED(log, "debug: " QID ": [p1] if_macro: the MTA did not "
	    "send the macro {tls_version}");
	finish();
}

/*
 * if_rcpt, row by row (README "Conditions"): MAIL FROM reaches the
 * instance only with its first matching recipient; recipients that do
 * not match never reach it; from DATA on it takes part if the chain took
 * at least one matching recipient.
 */
static void
test_cond_rcpt_sees_matching_recipients(void)
{
	static const char *const mixed[] = { "<a@example.org>",
	    "<postmaster@example.org>", "<b@example.org>",
	    "<abuse@example.org>", NULL };
	static const char *const none[] = { "<a@example.org>", NULL };
	const struct mod_list *mods;
	struct verdict rv[4], v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_rcpt", "^(postmaster|abuse)@", NULL);
	P[0]->hook[MH_STAGE_EOM] = hook_add;
	start();
	connected();
	v = message_to("<s@example.com>", mixed, rv, &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:envfrom p2:envrcpt p1:envfrom p1:envrcpt p2:envrcpt "
	    "p2:envrcpt p1:envrcpt p2:envrcpt p1:data p2:data p1:header "
	    "p2:header p1:eoh p2:eoh p1:body p2:body p1:eom p2:eom");
	EXPECT_STR(P[0]->seen, "<s@example.com>;<postmaster@example.org>;"
	    "<abuse@example.org>;[Subject=hello][body:7:hello\\r\\n]");
	EXPECT_MODS(mods, "add:X-p1=eom(p1)");
	for (int i = 0; i < 4; i++)
		EXPECT_STATUS(rv[i], MH_CONTINUE);
	/* No recipient matches: p1 sees nothing of the message. */
	v = message_to("<s@example.com>", none, NULL, &mods);
	EXPECT_CALLS("p2:envfrom p2:envrcpt p2:data p2:header p2:eoh p2:body "
	    "p2:eom");
	EXPECT_MODS(mods, "");
	finish();
}

/*
 * A matching recipient counts only if the chain took it: refused by an
 * earlier instance it never reaches the instance; refused by a later one
 * it reached it, and the instance, without another match, gets abort
 * instead of the rest of the message.
 */
static void
test_cond_rcpt_refused_recipients_do_not_count(void)
{
	static const char *const rcpts[] = { "<postmaster@example.org>",
	    "<other@example.org>", NULL };
	const struct mod_list *mods;
	struct verdict rv[2];

	/* Refused by an earlier instance. */
	fixture();
	add_plain("p0");
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[0]->aux = "<postmaster@example.org>";
	P[0]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	add_cond(1, "if_rcpt", "^postmaster@", NULL);
	start();
	connected();
	message_to("<s@example.com>", rcpts, rv, &mods);
	EXPECT_STATUS(rv[0], MH_REJECT);
	EXPECT_STATUS(rv[1], MH_CONTINUE);
	EXPECT_CALLS("p0:envfrom p0:envrcpt p0:envrcpt p0:data p0:header "
	    "p0:eoh p0:body p0:eom");
	finish();

	/* Refused by a later instance. */
	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_rcpt", "^postmaster@", NULL);
	P[1]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[1]->aux = "<postmaster@example.org>";
	P[1]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	start();
	connected();
	message_to("<s@example.com>", rcpts, rv, &mods);
	EXPECT_STATUS(rv[0], MH_REJECT);
	EXPECT_STATUS(rv[1], MH_CONTINUE);
	EXPECT_CALLS("p2:envfrom p1:envfrom p1:envrcpt p2:envrcpt p2:envrcpt "
	    "p2:data p2:header p2:eoh p2:body p2:eom p1:abort");
	finish();
}

/*
 * The instance's MAIL FROM, called at its first matching recipient, may
 * refuse its message: that refuses every matching recipient (with its
 * reply), and no other; the instance is not called again for them.
 */
static void
test_cond_rcpt_envfrom_refusal_refuses_matching_recipients(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_rcpt", "^(postmaster|abuse)@", NULL);
	P[0]->status[MH_STAGE_ENVFROM] = MH_REJECT;
	P[0]->reply[MH_STAGE_ENVFROM] =
	    (struct treply){ "550", "5.7.1", "not from you" };
	start();
	connected();
	ev_from("<s@example.com>");
	v = ev_rcpt("<a@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_rcpt("<abuse@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.7.1 not from you");
	v = ev_rcpt("<b@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_rcpt("<postmaster@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.7.1 not from you");
	EXPECT_CALLS("p2:envfrom p2:envrcpt p1:envfrom p2:envrcpt");
	v = MESSAGE_TAIL("p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:eom p1:abort");
	finish();
}

/* A discard from that envfrom discards the message, as a discard at a
 * recipient does for any instance. */
static void
test_cond_rcpt_envfrom_discard_discards_the_message(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_cond(0, "if_rcpt", "^abuse@", NULL);
	P[0]->status[MH_STAGE_ENVFROM] = MH_DISCARD;
	start();
	connected();
	ev_from("<s@example.com>");
	v = ev_rcpt("<a@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_rcpt("<abuse@example.org>");
	EXPECT_STATUS(v, MH_DISCARD);
	EXPECT_CALLS("p2:envfrom p2:envrcpt p1:envfrom p1:abort p2:abort");
	finish();
}

/* The calls and verdicts of a message whose recipients come in order. */
static void
rcpt_order_run(const char *const *rcpts, char *out, size_t len)
{
	const struct mod_list *mods;
	struct verdict rv[4], v;
	char words[8192];

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	add_cond(0, "if_rcpt", "@partner\\.example$", NULL);
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[0]->aux = "<x@partner.example>";
	P[0]->status[MH_STAGE_ENVRCPT] = MH_TEMPFAIL;
	P[0]->hook[MH_STAGE_EOM] = hook_add;
	add_cond(1, "if_rcpt", "^y@", NULL);
	P[1]->hook[MH_STAGE_EOM] = hook_add;
	start();
	connected();
	v = message_to("<s@example.com>", rcpts, rv, &mods);
	sorted_words(take_calls(), words, sizeof words);
	out[0] = '\0';
	append(out, len, "%s | eom %s | %s", words, status_label(v.status),
	    mods_text(mods));
	for (size_t i = 0; rcpts[i] != NULL; i++)
		append(out, len, " | %s %s", rcpts[i],
		    status_label(rv[i].status));
	finish();
}

/* The outcome does not depend on the order of the recipients. */
static void
test_cond_rcpt_order_does_not_matter(void)
{
	static const char *const order1[] = { "<a@example.org>",
	    "<x@partner.example>", "<y@partner.example>", NULL };
	static const char *const order2[] = { "<y@partner.example>",
	    "<a@example.org>", "<x@partner.example>", NULL };
	static const char *const order3[] = { "<x@partner.example>",
	    "<y@partner.example>", "<a@example.org>", NULL };
	char one[8192], two[8192], three[8192];
	char s1[8192], s2[8192], s3[8192];

	rcpt_order_run(order1, one, sizeof one);
	rcpt_order_run(order2, two, sizeof two);
	rcpt_order_run(order3, three, sizeof three);
	/* Same calls (as a multiset), same verdicts per recipient, same
	 * changes. */
	sorted_words(one, s1, sizeof s1);
	sorted_words(two, s2, sizeof s2);
	sorted_words(three, s3, sizeof s3);
	EXPECT_STR(s2, s1);
	EXPECT_STR(s3, s1);
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "<x@partner.example> TEMPFAIL"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "<y@partner.example> CONTINUE"));
	CU_ASSERT_PTR_NOT_NULL(strstr(one, "add:X-p1=eom(p1) | "
	    "add:X-p2=eom(p2)"));
}

/*
 * Negotiation: conditions make no stage requested that no instance
 * implements (they read macros, asked for at the stages sent), except
 * the recipients for if_rcpt, and DATA when no envelope event (connect to
 * DATA, Postfix's smtpd) would be sent.
 */
static void
test_cond_negotiation(void)
{
	fixture();
	add("p1", &envfrom_eom_plugin, ON_ERROR_TEMPFAIL, false);
	add_cond(0, "if_client", "192.0.2.0/24", "if_daemon", "smtpd",
	    "if_macro", "{tls_version} x", NULL);
	start();
	CU_ASSERT(neg.steps & PROTO_NOCONNECT);
	CU_ASSERT(neg.steps & PROTO_NOHELO);
	CU_ASSERT(neg.steps & PROTO_NORCPT);
	CU_ASSERT(neg.steps & PROTO_NODATA);
	CU_ASSERT_PTR_NOT_NULL_FATAL(neg.macros[MACRO_ENVFROM]);
	CU_ASSERT_PTR_NOT_NULL(strstr(neg.macros[MACRO_ENVFROM],
	    "{client_addr} {daemon_name} {tls_version}"));
	CU_ASSERT_PTR_NOT_NULL_FATAL(neg.macros[MACRO_EOM]);
	CU_ASSERT_PTR_NOT_NULL(strstr(neg.macros[MACRO_EOM], "{tls_version}"));
	CU_ASSERT_PTR_NULL(neg.macros[MACRO_CONNECT]);
	CU_ASSERT_PTR_NULL(neg.macros[MACRO_ENVRCPT]);
	finish();

	/* if_rcpt: the recipients are asked for. */
	fixture();
	add("p1", &envfrom_eom_plugin, ON_ERROR_TEMPFAIL, false);
	add_cond(0, "if_rcpt", "^a@", NULL);
	start();
	CU_ASSERT(!(neg.steps & PROTO_NORCPT));
	CU_ASSERT(neg.steps & PROTO_NODATA);
	finish();

	/* Only header, which carries no macros: DATA brings them. */
	fixture();
	add("p1", &header_plugin, ON_ERROR_TEMPFAIL, false);
	add_cond(0, "if_auth", "yes", NULL);
	start();
	CU_ASSERT(!(neg.steps & PROTO_NODATA));
	CU_ASSERT(neg.steps & PROTO_NOMAIL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(neg.macros[MACRO_DATA]);
	CU_ASSERT_PTR_NOT_NULL(strstr(neg.macros[MACRO_DATA],
	    "{auth_authen}"));
	finish();

	/* Without conditions, the same instance leaves DATA alone. */
	fixture();
	add("p1", &header_plugin, ON_ERROR_TEMPFAIL, false);
	start();
	CU_ASSERT(neg.steps & PROTO_NODATA);
	finish();

	/* Only eom, which carries cleanup's macros in Postfix: DATA. */
	{
		struct mh_plugin eom_only = test_plugin;

		eom_only.connect = NULL;
		eom_only.helo = NULL;
		eom_only.envfrom = NULL;
		eom_only.envrcpt = NULL;
		eom_only.data = NULL;
		eom_only.unknown = NULL;
		eom_only.header = NULL;
		eom_only.eoh = NULL;
		eom_only.body = NULL;
		fixture();
		add("p1", &eom_only, ON_ERROR_TEMPFAIL, false);
		add_cond(0, "if_daemon", "submission", NULL);
		start();
		CU_ASSERT(!(neg.steps & PROTO_NODATA));
		CU_ASSERT(neg.steps & PROTO_NOMAIL);
		CU_ASSERT(neg.steps & PROTO_NOCONNECT);
		finish();
		fixture();
		add("p1", &eom_only, ON_ERROR_TEMPFAIL, false);
		start();
		CU_ASSERT(neg.steps & PROTO_NODATA);
		finish();
	}
}

/* Without MAIL FROM (not negotiated), if_sender reads {mail_addr}. */
static void
test_cond_sender_from_macro(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add("p1", &header_plugin, ON_ERROR_TEMPFAIL, false);
	add_cond(0, "if_sender", "^s@example\\.com$", NULL);
	start();
	set_macro("{mail_addr}", "s@example.com");
	v = ev_data();
	EXPECT_STATUS(v, MH_CONTINUE);
	ev_header("Subject", "hi");
	EXPECT_CALLS("p1:header");
	ev_eom(&mods);
	/* Decided at DATA, before the instance saw any of the message: no
	 * abort either. */
	set_macro("{mail_addr}", "t@example.com");
	ev_data();
	ev_header("Subject", "hi");
	ev_eom(&mods);
	EXPECT_CALLS("");
	finish();
}

/* ---- tests: decisions and their scope ------------------------------------ */

static void
test_reject_at_rcpt_is_per_recipient(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[0]->aux = "<bad@example.org>";
	P[0]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_add;
	start();
	connected();

	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	v = ev_rcpt("<good@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");

	P[0]->reply[MH_STAGE_ENVRCPT] =
	    (struct treply){ "550", "5.1.1", "no such user" };
	v = ev_rcpt("<bad@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.1.1 no such user");
	EXPECT_CALLS("p1:envrcpt");

	P[0]->reply[MH_STAGE_ENVRCPT].rcode = NULL;
	v = ev_rcpt("<other@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");

	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");
	EXPECT_MODS(mods, "add:X-p2=envfrom(p2)");
	EXPECT_STR(P[1]->seen, "<s@example.com>;<good@example.org>;"
	    "<other@example.org>;[Subject=hello][body:7:hello\\r\\n]");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

/*
 * One log line per message (summary.c): queue id, client, sender, the
 * recipients taken, how it ended and by whom, the changes, the times.
 */
static void
test_one_summary_line_per_message(void)
{
	const struct mod_list *mods;
	const char *log;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[0]->aux = "<bad@example.org>";
	P[0]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	P[1]->hook[MH_STAGE_EOM] = hook_add;
	start();
	connected();
	unit_capture_start();
	ev_from("<s@example.com>");
	ev_rcpt("<a@example.org>");
	ev_rcpt("<bad@example.org>");
	ev_rcpt("<b@example.org>");
	ev_eom(&mods);
	/* The second message: refused at data by p2. */
	P[1]->status[MH_STAGE_DATA] = MH_REJECT;
	ev_from("<t@example.com>");
	ev_rcpt("<a@example.org>");
	ev_data();
	/* The third: aborted by the MTA. */
	ev_from("<u@example.com>");
	ev_abort();
	log = unit_capture_end(true);
	EXPECT_LOGGED(log, "info: " QID ": message: client=192.0.2.1 "
	    "from=<s@example.com> rcpts=2 accepted, 1 change (add header 1); "
	    "time [p1] ");
	EXPECT_LOGGED(log, ": message: client=192.0.2.1 from=<t@example.com> "
	    "rcpts=1 rejected by [p2] at data; time [p1] ");
	EXPECT_LOGGED(log, ": message: client=192.0.2.1 from=<u@example.com> "
	    "rcpts=? aborted; time [p1] ");
	finish();
}

/* Without connect and MAIL FROM, the line takes the client and the sender
 * from the MTA's macros when it sent them. */
static void
test_summary_line_from_macros(void)
{
	const struct mod_list *mods;
	const char *log;

	fixture();
	add("p1", &header_plugin, ON_ERROR_TEMPFAIL, false);
	start();
	set_macro("{client_addr}", "198.51.100.7");
	set_macro("{mail_addr}", "s@example.com");
	unit_capture_start();
	ev_data();
	ev_header("Subject", "hi");
	ev_eom(&mods);
	log = unit_capture_end(true);
	EXPECT_LOGGED(log, ": message: client=198.51.100.7 from=<s@example.com> "
	    "rcpts=? accepted;");
	finish();
}

static void
test_tempfail_at_rcpt_is_per_recipient(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[1]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[1]->aux = "<later@example.org>";
	P[1]->status[MH_STAGE_ENVRCPT] = MH_TEMPFAIL;
	P[1]->reply[MH_STAGE_ENVRCPT] =
	    (struct treply){ "452", "4.2.2", "mailbox full" };
	start();
	connected();
	ev_from("<s@example.com>");
	take_calls();
	v = ev_rcpt("<later@example.org>");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_REPLY(v, "452 4.2.2 mailbox full");
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	v = ev_rcpt("<now@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");
	finish();
}

static void
test_first_terminal_decision_wins(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	P[1]->status[MH_STAGE_ENVFROM] = MH_TEMPFAIL;
	P[1]->reply[MH_STAGE_ENVFROM] =
	    (struct treply){ "451", "4.7.1", "try later" };
	P[2]->status[MH_STAGE_ENVFROM] = MH_REJECT;
	P[2]->reply[MH_STAGE_ENVFROM] =
	    (struct treply){ "550", "5.7.1", "go away" };
	start();
	connected();

	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_REPLY(v, "451 4.7.1 try later");
	/* p3 was never reached, so it has nothing to abort. */
	EXPECT_CALLS("p1:envfrom p2:envfrom p1:abort p2:abort");
	/* The message is over: later events of it reach nobody. */
	ev_rcpt("<r@example.org>");
	EXPECT_CALLS("");

	P[1]->status[MH_STAGE_ENVFROM] = MH_CONTINUE;
	P[1]->reply[MH_STAGE_ENVFROM].rcode = NULL;
	v = ev_from("<s2@example.com>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.7.1 go away");
	EXPECT_CALLS("p1:envfrom p2:envfrom p3:envfrom "
	    "p1:abort p2:abort p3:abort");
	ev_close();
	EXPECT_CALLS("p1:close p2:close p3:close");
	finish();
}

static void
test_accept_removes_only_that_plugin(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_ENVFROM] = MH_ACCEPT;
	start();
	connected();

	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:envrcpt");
	v = MESSAGE_TAIL("p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	/* p1 left the message: it gets abort instead of eom. */
	EXPECT_CALLS_ANY_ORDER("p2:eom p1:abort");

	/* The next message reaches p1 again. */
	P[0]->status[MH_STAGE_ENVFROM] = MH_CONTINUE;
	v = ev_from("<s2@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	ev_rcpt("<r@example.org>");
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");
	finish();
}

static void
test_accept_at_connect_or_helo_is_for_the_connection(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	P[0]->status[MH_STAGE_CONNECT] = MH_ACCEPT;
	P[1]->status[MH_STAGE_HELO] = MH_ACCEPT;
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:connect p2:connect p3:connect");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:helo p3:helo");
	v = ev_helo("again.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p3:helo");

	for (int msg = 0; msg < 2; msg++) {
		v = ev_from("<s@example.com>");
		EXPECT_STATUS(v, MH_CONTINUE);
		EXPECT_CALLS("p3:envfrom");
		ev_rcpt("<r@example.org>");
		EXPECT_CALLS("p3:envrcpt");
		v = MESSAGE_TAIL("p3", &mods);
		EXPECT_STATUS(v, MH_CONTINUE);
		/* p1 and p2 were never reached: no abort for them. */
		EXPECT_CALLS("p3:eom");
	}
	v = ev_unknown("XYZZY");
	EXPECT_CALLS("p3:unknown");
	ev_close();
	EXPECT_CALLS("p1:close p2:close p3:close");
	finish();
}

static void
test_all_accept_answers_accept(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_ENVRCPT] = MH_ACCEPT;
	P[1]->status[MH_STAGE_ENVRCPT] = MH_ACCEPT;
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	take_calls();
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_ACCEPT);
	EXPECT_REPLY(v, NULL);
	/* Nobody is left and nothing is queued: the message ends. */
	EXPECT_CALLS("p1:envrcpt p2:envrcpt p1:abort p2:abort");
	ev_data();
	EXPECT_CALLS("");
	ev_abort();
	EXPECT_CALLS("");

	/* Both are back for the next message. */
	P[0]->status[MH_STAGE_ENVRCPT] = MH_CONTINUE;
	v = ev_from("<s2@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	ev_close();
	EXPECT_CALLS("p1:abort p2:abort p1:close p2:close");
	finish();
}

static void
test_all_accept_at_connect_answers_accept(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_CONNECT] = MH_ACCEPT;
	P[1]->status[MH_STAGE_CONNECT] = MH_ACCEPT;
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_ACCEPT);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:connect p2:connect");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();

	/* The last one leaving at helo. */
	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_CONNECT] = MH_ACCEPT;
	P[1]->status[MH_STAGE_HELO] = MH_ACCEPT;
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:connect p2:connect");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_ACCEPT);
	EXPECT_CALLS("p2:helo");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_accept_with_queued_mods_answers_continue(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_add;
	P[0]->status[MH_STAGE_ENVFROM] = MH_ACCEPT;
	P[1]->status[MH_STAGE_ENVFROM] = MH_ACCEPT;
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STR(P[0]->rcs, "OK");
	/* Nobody is left, but a change is queued: the message goes on. */
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_data();
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_header("Subject", "hi");
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_eoh();
	EXPECT_STATUS(v, MH_CONTINUE);
	/* Nobody wants the body and the MTA offered SKIP. */
	v = ev_body("hello\r\n");
	EXPECT_STATUS(v, MH_SKIP);
	EXPECT_CALLS("");
	v = ev_eom(&mods);
	/* Nobody is left at eom: accept, with the queued change. */
	EXPECT_STATUS(v, MH_ACCEPT);
	EXPECT_MODS(mods, "add:X-p1=envfrom(p1)");
	EXPECT_CALLS_ANY_ORDER("p1:abort p2:abort");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_accept_at_eom_gets_no_abort(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_EOM] = hook_add;
	P[0]->status[MH_STAGE_EOM] = MH_ACCEPT;
	P[1]->status[MH_STAGE_EOM] = MH_ACCEPT;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2", &mods);
	/* All accepted at eom: accept; the change still goes out. */
	EXPECT_STATUS(v, MH_ACCEPT);
	EXPECT_MODS(mods, "add:X-p1=eom(p1)");
	EXPECT_CALLS("p1:eom p2:eom");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_skip_in_body(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_BODY] = MH_SKIP;
	P[1]->hook[MH_STAGE_BODY] = hook_skip_from;
	P[1]->n = 2;
	start();
	CU_ASSERT(neg.steps & PROTO_SKIP);
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	ev_eoh();
	take_calls();
	v = ev_body("chunk 1\r\n");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:body p2:body");
	v = ev_body("chunk 2\r\n");
	EXPECT_STATUS(v, MH_SKIP);
	EXPECT_CALLS("p2:body");
	v = ev_body("chunk 3\r\n");
	EXPECT_STATUS(v, MH_SKIP);
	EXPECT_CALLS("");
	/* Skipping the body is not leaving the message. */
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");

	/* body_skip lasts one message. */
	P[1]->count = 0;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	ev_eoh();
	take_calls();
	v = ev_body("chunk 1\r\n");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:body p2:body");
	finish();
}

static void
test_skip_answer_needs_negotiated_skip(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->status[MH_STAGE_BODY] = MH_SKIP;
	start_offer(OFFER_ACTIONS, OFFER_STEPS & ~PROTO_SKIP);
	CU_ASSERT_FALSE(neg.steps & PROTO_SKIP);
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	ev_eoh();
	take_calls();
	v = ev_body("chunk 1\r\n");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:body");
	v = ev_body("chunk 2\r\n");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom");
	finish();
}

static void
test_skip_ignores_plugins_without_body(void)
{
	struct mh_plugin nobody = test_plugin;
	const struct mod_list *mods;
	struct verdict v;

	nobody.body = NULL;
	fixture();
	add("p1", &nobody, ON_ERROR_TEMPFAIL, false);
	add_plain("p2");
	P[1]->status[MH_STAGE_BODY] = MH_SKIP;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_data();
	take_calls();
	v = ev_body("chunk 1\r\n");
	EXPECT_STATUS(v, MH_SKIP);
	EXPECT_CALLS("p2:body");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");

	/* A plugin that accepted leaves nobody with a body callback. */
	P[1]->status[MH_STAGE_BODY] = MH_ACCEPT;
	ev_from("<s@example.com>");
	ev_data();
	take_calls();
	v = ev_body("chunk 1\r\n");
	EXPECT_STATUS(v, MH_SKIP);
	EXPECT_CALLS("p2:body");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS_ANY_ORDER("p1:eom p2:abort");
	finish();
}

/* ---- tests: failures and on_error ---------------------------------------- */

/*
 * p1 sets a reply and fails at envfrom; p2 is plain.  Returns the log of
 * the envfrom event, after checking that it names p1, the stage and the
 * queue id at error level.
 */
static struct verdict
fail_at_envfrom(enum on_error on_error)
{
	struct verdict v;
	const char *log;

	fixture();
	add("p1", &test_plugin, on_error, false);
	add_plain("p2");
	P[0]->status[MH_STAGE_ENVFROM] = MH_FAIL;
	P[0]->reply[MH_STAGE_ENVFROM] =
	    (struct treply){ "550", "5.7.1", "custom" };
	start();
	connected();
	unit_capture_start();
	v = ev_from("<s@example.com>");
	log = unit_capture_end(true);
	EXPECT_LOGGED(log, "error");
	EXPECT_LOGGED(log, "p1");
	EXPECT_LOGGED(log, "envfrom");
	EXPECT_LOGGED(log, QID);
	/* No custom reply goes with an on_error decision. */
	EXPECT_REPLY(v, NULL);
	return v;
}

static void
test_on_error_tempfail_default(void)
{
	struct verdict v;

	v = fail_at_envfrom(ON_ERROR_TEMPFAIL);
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_CALLS("p1:envfrom p1:abort");
	finish();
}

static void
test_on_error_continue(void)
{
	struct verdict v;

	v = fail_at_envfrom(ON_ERROR_CONTINUE);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	finish();
}

static void
test_on_error_accept(void)
{
	struct verdict v;

	v = fail_at_envfrom(ON_ERROR_ACCEPT);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:envrcpt");
	ev_close();
	EXPECT_CALLS_ANY_ORDER("p1:abort p2:abort p1:close p2:close");
	finish();

	/* At unknown, accept means continue: p1 stays in the chain. */
	fixture();
	add("p1", &test_plugin, ON_ERROR_ACCEPT, false);
	add_plain("p2");
	P[0]->status[MH_STAGE_UNKNOWN] = MH_FAIL;
	start();
	connected();
	v = ev_unknown("XYZZY");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:unknown p2:unknown");
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	finish();
}

static void
test_on_error_reject(void)
{
	struct verdict v;

	v = fail_at_envfrom(ON_ERROR_REJECT);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:envfrom p1:abort");
	finish();
}

static void
test_on_error_at_connect_refuses_connection(void)
{
	struct verdict v;

	fixture();
	add("p1", &test_plugin, ON_ERROR_TEMPFAIL, false);
	add_plain("p2");
	P[0]->status[MH_STAGE_CONNECT] = MH_FAIL;
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:connect");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_CALLS("");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static mh_status
hook_bad_status(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	if (strcmp(arg, "<skip@example.org>") == 0)
		return MH_SKIP;
	if (strcmp(arg, "<fail@example.org>") == 0)
		return MH_FAIL;
	if (strcmp(arg, "<out-of-range@example.org>") == 0)
		return (mh_status)42;
	return MH_CONTINUE;
}

static void
test_invalid_status_goes_to_on_error(void)
{
	struct verdict v;
	const char *log;

	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	add_plain("p2");
	P[0]->status[MH_STAGE_ENVFROM] = (mh_status)42;
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_bad_status;
	start();
	connected();
	unit_capture_start();
	v = ev_from("<s@example.com>");
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:envfrom p1:abort");
	EXPECT_LOGGED(log, "p1");

	P[0]->status[MH_STAGE_ENVFROM] = MH_CONTINUE;
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	take_calls();
	/* At envrcpt, on_error reject refuses that recipient only. */
	v = ev_rcpt("<skip@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:envrcpt");
	v = ev_rcpt("<out-of-range@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:envrcpt");
	v = ev_rcpt("<fail@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:envrcpt");
	v = ev_rcpt("<ok@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	/* SKIP is for body only. */
	P[0]->status[MH_STAGE_DATA] = MH_SKIP;
	v = ev_data();
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:data p1:abort p2:abort");
	finish();
}

static void
test_discard_at_connect_is_an_error(void)
{
	struct verdict v;
	const char *log;

	fixture();
	add("p1", &test_plugin, ON_ERROR_CONTINUE, false);
	add_plain("p2");
	P[0]->status[MH_STAGE_CONNECT] = MH_DISCARD;
	start();
	unit_capture_start();
	v = ev_connect();
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:connect p2:connect");
	EXPECT_LOGGED(log, "error");
	EXPECT_LOGGED(log, "p1");
	EXPECT_LOGGED(log, "connect");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:helo p2:helo");
	finish();

	/* With the default on_error the connection is refused. */
	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_HELO] = MH_DISCARD;
	start();
	ev_connect();
	take_calls();
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_CALLS("p1:helo");
	ev_from("<s@example.com>");
	EXPECT_CALLS("");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_illegal_statuses_at_unknown_go_to_on_error(void)
{
	struct verdict v;

	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	add_plain("p2");
	start();
	connected();
	P[0]->status[MH_STAGE_UNKNOWN] = MH_DISCARD;
	v = ev_unknown("XYZZY");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:unknown");
	P[0]->status[MH_STAGE_UNKNOWN] = MH_ACCEPT;
	v = ev_unknown("XYZZY");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:unknown");
	/* Nothing else was affected. */
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	finish();
}

/* ---- tests: refused host calls --------------------------------------------- */

static void
test_undeclared_action_is_refused_and_on_error(void)
{
	struct verdict v;
	const char *log;

	fixture();
	add_with_actions("p1", MH_ACT_ADDHDRS, ON_ERROR_REJECT);
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_try_mods;
	start();
	connected();
	unit_capture_start();
	v = ev_from("<s@example.com>");
	log = unit_capture_end(true);
	/* Only the header additions were declared. */
	EXPECT_STR(P[0]->rcs, "OK OK E_ACTION E_ACTION E_ACTION E_ACTION "
	    "E_ACTION E_ACTION E_ACTION");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:envfrom p1:abort");
	EXPECT_LOGGED(log, "p1");
	finish();
}

struct action_case {
	const char *call;
	unsigned long actions;
	const char *want_rc;
	const char *want_mods;
};

static const struct action_case action_cases[] = {
	{ "header_add", ALL_MH_ACTIONS & ~MH_ACT_ADDHDRS, "E_ACTION", "" },
	{ "header_add", MH_ACT_ADDHDRS, "OK", "add:X-A=v(p1)" },
	{ "header_insert", ALL_MH_ACTIONS & ~MH_ACT_ADDHDRS, "E_ACTION", "" },
	{ "header_insert", MH_ACT_ADDHDRS, "OK", "ins:0:X-A=v(p1)" },
	{ "header_change", ALL_MH_ACTIONS & ~MH_ACT_CHGHDRS, "E_ACTION", "" },
	{ "header_change", MH_ACT_CHGHDRS, "OK", "chg:Subject:1=v(p1)" },
	{ "header_delete", ALL_MH_ACTIONS & ~MH_ACT_CHGHDRS, "E_ACTION", "" },
	{ "header_delete", MH_ACT_CHGHDRS, "OK", "del:Subject:1(p1)" },
	{ "body_replace", ALL_MH_ACTIONS & ~MH_ACT_CHGBODY, "E_ACTION", "" },
	{ "body_replace", MH_ACT_CHGBODY, "OK", "body=b\\r\\n(p1)" },
	{ "rcpt_add", ALL_MH_ACTIONS & ~MH_ACT_ADDRCPT, "E_ACTION", "" },
	{ "rcpt_add", MH_ACT_ADDRCPT, "OK", "rcpt+:<n@example.org>(p1)" },
	{ "rcpt_add_par", ALL_MH_ACTIONS & ~MH_ACT_ADDRCPT_PAR, "E_ACTION",
	  "" },
	{ "rcpt_add_par", MH_ACT_ADDRCPT_PAR, "OK",
	  "rcpt+:<n@example.org> NOTIFY=NEVER(p1)" },
	{ "rcpt_delete", ALL_MH_ACTIONS & ~MH_ACT_DELRCPT, "E_ACTION", "" },
	{ "rcpt_delete", MH_ACT_DELRCPT, "OK", "rcpt-:<b@example.org>(p1)" },
	{ "from_change", ALL_MH_ACTIONS & ~MH_ACT_CHGFROM, "E_ACTION", "" },
	{ "from_change", MH_ACT_CHGFROM, "OK", "from:<f@example.org>(p1)" },
	{ "quarantine", ALL_MH_ACTIONS & ~MH_ACT_QUARANTINE, "E_ACTION", "" },
	{ "quarantine", MH_ACT_QUARANTINE, "OK", "quar:held(p1)" },
};

static mh_status
hook_action_case(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	const char *call = ((const struct action_case *)p->aux)->call;

	if (strcmp(call, "header_add") == 0)
		keep(p, mh_header_add(ctx, "X-A", "v"));
	else if (strcmp(call, "header_insert") == 0)
		keep(p, mh_header_insert(ctx, 0, "X-A", "v"));
	else if (strcmp(call, "header_change") == 0)
		keep(p, mh_header_change(ctx, "Subject", 1, "v"));
	else if (strcmp(call, "header_delete") == 0)
		keep(p, mh_header_delete(ctx, "Subject", 1));
	else if (strcmp(call, "body_replace") == 0)
		keep(p, mh_body_replace(ctx, "b\r\n", 3));
	else if (strcmp(call, "rcpt_add") == 0)
		keep(p, mh_rcpt_add(ctx, "<n@example.org>", NULL));
	else if (strcmp(call, "rcpt_add_par") == 0)
		keep(p, mh_rcpt_add(ctx, "<n@example.org>", "NOTIFY=NEVER"));
	else if (strcmp(call, "rcpt_delete") == 0)
		keep(p, mh_rcpt_delete(ctx, "<b@example.org>"));
	else if (strcmp(call, "from_change") == 0)
		keep(p, mh_from_change(ctx, "<f@example.org>", NULL));
	else if (strcmp(call, "quarantine") == 0)
		keep(p, mh_quarantine(ctx, "held"));
	return MH_CONTINUE;
}

static void
test_each_action_needs_its_declaration(void)
{
	const size_t ncases = sizeof action_cases / sizeof action_cases[0];

	for (size_t i = 0; i < ncases; i++) {
		const struct action_case *c = &action_cases[i];
		const struct mod_list *mods;
		struct verdict v;
		char what[128];

		fixture();
		add_with_actions("p1", c->actions, ON_ERROR_CONTINUE);
		P[0]->hook[MH_STAGE_EOH] = hook_action_case;
		P[0]->aux = c;
		start();
		connected();
		ev_from("<s@example.com>");
		ev_rcpt("<b@example.org>");
		ev_data();
		ev_header("Subject", "hello");
		ev_eoh();
		v = ev_eom(&mods);
		EXPECT_STATUS(v, MH_CONTINUE);
		snprintf(what, sizeof what, "%s with actions 0x%lx: rc",
		    c->call, c->actions);
		check_str(P[0]->rcs, c->want_rc, __LINE__, what);
		snprintf(what, sizeof what, "%s with actions 0x%lx: mods",
		    c->call, c->actions);
		check_str(mods_text(mods), c->want_mods, __LINE__, what);
		finish();
	}
}

static mh_status
hook_bad_names(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	static const char *const names[] = {
		"", "X Bad", "X:Bad", "X-Tab\t", "X-\x01", "X-\x7f",
		"X-\xc3\xa9", " X", "X-Bad:"
	};

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		keep(p, mh_header_add(ctx, names[i], "v"));
	keep(p, mh_header_insert(ctx, 0, "Bad Name", "v"));
	keep(p, mh_header_change(ctx, "", 1, "v"));
	keep(p, mh_header_delete(ctx, "a:b", 1));
	return MH_CONTINUE;
}

static mh_status
hook_good_name(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "X-Good_Name.1~!", "v"));
	return MH_CONTINUE;
}

static void
test_bad_header_name_refused(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add("p1", &test_plugin, ON_ERROR_CONTINUE, false);
	P[0]->hook[MH_STAGE_ENVFROM] = hook_bad_names;
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_good_name;
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "E_INVALID E_INVALID E_INVALID E_INVALID "
	    "E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "
	    "E_INVALID E_INVALID");
	P[0]->rcs[0] = '\0';
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "OK");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-Good_Name.1~!=v(p1)");
	finish();

	/* The refusal makes the callback fail: on_error applies. */
	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_bad_names;
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:envfrom p1:abort");
	finish();
}

static mh_status
hook_bad_values(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "X-A", "a\rb"));
	keep(p, mh_header_add(ctx, "X-A", "a\nb"));
	keep(p, mh_header_add(ctx, "X-A", "a\n"));
	keep(p, mh_header_add(ctx, "X-A", "a\r\n\tb"));
	keep(p, mh_header_insert(ctx, -1, "X-A", "v"));
	keep(p, mh_header_change(ctx, "X-A", 0, "v"));
	keep(p, mh_header_delete(ctx, "X-A", 0));
	keep(p, mh_header_change(ctx, "X-A", 1, "a\nb"));
	keep(p, mh_rcpt_add(ctx, "", NULL));
	keep(p, mh_rcpt_add(ctx, "<a\r@example.org>", NULL));
	keep(p, mh_rcpt_add(ctx, "<a\n@example.org>", NULL));
	keep(p, mh_rcpt_add(ctx, "<a@example.org>", "NOTIFY=NEVER\r\n"));
	keep(p, mh_rcpt_delete(ctx, ""));
	keep(p, mh_rcpt_delete(ctx, "<a\n@example.org>"));
	keep(p, mh_from_change(ctx, "", NULL));
	keep(p, mh_from_change(ctx, "<a\r@example.org>", NULL));
	keep(p, mh_from_change(ctx, "<a@example.org>", "SIZE=1\n"));
	keep(p, mh_quarantine(ctx, ""));
	keep(p, mh_quarantine(ctx, "why\n"));
	return MH_CONTINUE;
}

static mh_status
hook_good_values(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "X-Fold", "a\n\tb\n c"));
	keep(p, mh_header_add(ctx, "X-Empty", ""));
	keep(p, mh_header_insert(ctx, 0, "X-First", "v"));
	keep(p, mh_header_change(ctx, "Subject", 1, "new"));
	keep(p, mh_header_delete(ctx, "Received", 2));
	/* A NULL value deletes, as in ABI 1.0. */
	keep(p, mh_header_change(ctx, "X-Gone", 1, NULL));
	keep(p, mh_rcpt_add(ctx, "<n@example.org>", "NOTIFY=NEVER"));
	keep(p, mh_rcpt_delete(ctx, "<r@example.org>"));
	keep(p, mh_from_change(ctx, "<f@example.org>", "SIZE=100"));
	keep(p, mh_quarantine(ctx, "held for review"));
	return MH_CONTINUE;
}

static void
test_bad_values_refused(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add("p1", &test_plugin, ON_ERROR_CONTINUE, false);
	P[0]->hook[MH_STAGE_ENVFROM] = hook_bad_values;
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_good_values;
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "E_INVALID E_INVALID E_INVALID E_INVALID "
	    "E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "
	    "E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "
	    "E_INVALID E_INVALID E_INVALID");
	P[0]->rcs[0] = '\0';
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "OK OK OK OK OK OK OK OK OK OK");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-Fold=a\\n\\tb\\n c(p1) | add:X-Empty=(p1) | "
	    "ins:0:X-First=v(p1) | chg:Subject:1=new(p1) | "
	    "del:Received:2(p1) | del:X-Gone:1(p1) | rcpt+:<n@example.org> NOTIFY=NEVER(p1) | "
	    "rcpt-:<r@example.org>(p1) | "
	    "from:<f@example.org> SIZE=100(p1) | quar:held for review(p1)");
	finish();
}

static void
test_modification_at_connect_is_refused(void)
{
	struct verdict v;
	const char *log;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_CONNECT] = hook_add;
	start();
	unit_capture_start();
	v = ev_connect();
	log = unit_capture_end(true);
	EXPECT_STR(P[0]->rcs, "E_STAGE");
	/* A refused call fails the callback: tempfail, the default. */
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_CALLS("p1:connect");
	EXPECT_LOGGED(log, "p1");
	EXPECT_LOGGED(log, "connect");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_modification_outside_message_stages_refused(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *nine = "E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE "
	    "E_STAGE E_STAGE E_STAGE";

	fixture();
	add("p1", &test_plugin, ON_ERROR_CONTINUE, false);
	P[0]->hook[MH_STAGE_HELO] = hook_try_mods;
	P[0]->hook[MH_STAGE_UNKNOWN] = hook_try_mods;
	P[0]->hook[MH_STAGE_ABORT] = hook_try_mods;
	P[0]->hook[MH_STAGE_CLOSE] = hook_try_mods;
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, nine);
	P[0]->rcs[0] = '\0';
	v = ev_unknown("XYZZY");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, nine);
	P[0]->rcs[0] = '\0';
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_abort();
	EXPECT_STR(P[0]->rcs, nine);
	P[0]->rcs[0] = '\0';
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "");
	ev_close();
	EXPECT_STR(P[0]->rcs, nine);
	finish();
}

/* ---- tests: dry run ----------------------------------------------------------- */

static void
test_dry_run_reject_not_enforced(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, true);
	add_plain("p2");
	P[0]->status[MH_STAGE_CONNECT] = MH_REJECT;
	P[0]->reply[MH_STAGE_CONNECT] =
	    (struct treply){ "554", "5.7.1", "not you" };
	P[0]->status[MH_STAGE_ENVFROM] = MH_TEMPFAIL;
	P[0]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	P[0]->reply[MH_STAGE_ENVRCPT] =
	    (struct treply){ "550", "5.1.1", "from the dry run" };
	P[0]->status[MH_STAGE_DATA] = MH_DISCARD;
	P[0]->status[MH_STAGE_HEADER] = MH_FAIL; /* on_error reject */
	P[0]->status[MH_STAGE_EOM] = MH_REJECT;
	P[1]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	start();

	unit_capture_start();
	v = ev_connect();
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:connect p2:connect");
	EXPECT_LOGGED(log, "dry run");
	EXPECT_LOGGED(log, "p1");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:helo p2:helo");

	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	/* p2 decides; the dry run's reply does not go out. */
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static mh_status
hook_dry_mods(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "X-Dry", "1"));
	keep(p, mh_body_replace(ctx, "dry\r\n", 5));
	keep(p, mh_quarantine(ctx, "dry"));
	keep(p, mh_from_change(ctx, "<dry@example.org>", NULL));
	return MH_CONTINUE;
}

static mh_status
hook_real_mods(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "X-Real", "1"));
	keep(p, mh_body_replace(ctx, "real\r\n", 6));
	keep(p, mh_quarantine(ctx, "real"));
	return MH_CONTINUE;
}

static mh_status
hook_dry_bad(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "Bad Name", "1"));
	return MH_CONTINUE;
}

static void
test_dry_run_mods_not_queued(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add_plain("p1");
	add("p2", &test_plugin, ON_ERROR_REJECT, true);
	P[0]->hook[MH_STAGE_ENVFROM] = hook_real_mods;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_dry_mods;
	P[1]->hook[MH_STAGE_ENVRCPT] = hook_dry_bad;
	start();
	connected();
	unit_capture_start();
	v = ev_from("<s@example.com>");
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[1]->rcs, "OK OK OK OK");
	EXPECT_LOGGED(log, "dry run");
	EXPECT_LOGGED(log, "p2");
	/* Checked like anybody's: refused, on_error reject, not enforced. */
	v = ev_rcpt("<r@example.org>");
	EXPECT_STR(P[1]->rcs, "OK OK OK OK E_INVALID");
	EXPECT_STATUS(v, MH_CONTINUE);
	take_calls();
	unit_capture_start();
	v = MESSAGE_TAIL("p1 p2", &mods);
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	/* p1's body alone was queued: no conflict, no warning. */
	EXPECT_MODS(mods, "add:X-Real=1(p1) | body=real\\r\\n(p1) | "
	    "quar:real(p1)");
	CU_ASSERT_PTR_NULL(strstr(log, "warning"));
	finish();
}

/* ---- tests: the modification list ------------------------------------------ */

static void
test_mod_order_chain_then_call_order(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_add;
	P[0]->hook[MH_STAGE_EOM] = hook_add;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_add;
	P[1]->hook[MH_STAGE_ENVRCPT] = hook_add;
	P[2]->hook[MH_STAGE_DATA] = hook_add;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2 p3", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-p1=envfrom(p1) | add:X-p1=eom(p1) | "
	    "add:X-p2=envfrom(p2) | add:X-p2=envrcpt(p2) | "
	    "add:X-p3=data(p3)");
	finish();
}

/* Delete the headers called p->aux at the indexes in p->notes' digits
 * (one digit each, in that order), and change "Subject" #1. */
static mh_status
hook_delete_headers(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	for (const char *d = (const char *)p->aux + strlen(p->aux) + 1; *d;
	     d++)
		keep(p, mh_header_delete(ctx, p->aux, *d - '0'));
	keep(p, mh_header_change(ctx, "Subject", 1, p->name));
	return MH_CONTINUE;
}

/*
 * Header changes and deletions name headers by their index as received,
 * but the MTA counts those left: each name's go out from the highest
 * index down, other changes keep their places and chain order.
 */
static void
test_header_changes_go_highest_index_first(void)
{
	const struct mod_list *mods;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	/* "name\0indexes" */
	P[0]->aux = "X-Old\0" "1";
	P[1]->aux = "x-old\0" "32";
	P[2]->aux = "X-Other\0" "12";
	for (int i = 0; i < 3; i++)
		P[i]->hook[MH_STAGE_EOM] = hook_delete_headers;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_add;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	MESSAGE_TAIL("p1 p2 p3", &mods);
	EXPECT_MODS(mods, "del:x-old:3(p2) | chg:Subject:1=p1(p1) | "
	    "add:X-p2=envfrom(p2) | del:x-old:2(p2) | del:X-Old:1(p1) | "
	    "chg:Subject:1=p2(p2) | del:X-Other:2(p3) | del:X-Other:1(p3) | "
	    "chg:Subject:1=p3(p3)");
	finish();
}

static void
test_mods_queued_before_eom_arrive_at_eom(void)
{
	static const mh_stage stages[] = {
		MH_STAGE_ENVFROM, MH_STAGE_ENVRCPT, MH_STAGE_DATA,
		MH_STAGE_HEADER, MH_STAGE_EOH, MH_STAGE_BODY, MH_STAGE_EOM
	};
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		P[0]->hook[stages[i]] = hook_add;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "OK OK OK OK OK OK OK");
	EXPECT_MODS(mods, "add:X-p1=envfrom(p1) | add:X-p1=envrcpt(p1) | "
	    "add:X-p1=data(p1) | add:X-p1=header(p1) | add:X-p1=eoh(p1) | "
	    "add:X-p1=body(p1) | add:X-p1=eom(p1)");
	finish();
}

static mh_status
hook_replace_then_add(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_body_replace(ctx, "one\r\n", 5));
	keep(p, mh_header_add(ctx, "X-p1", "after-body"));
	return MH_CONTINUE;
}

static mh_status
hook_replace_aux(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	const char *text = p->aux;

	keep(p, mh_body_replace(ctx, text, strlen(text)));
	return MH_CONTINUE;
}

static mh_status
hook_replace_more_then_add(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_body_replace(ctx, "two-b\r\n", 7));
	keep(p, mh_header_add(ctx, "X-p2", "eom"));
	return MH_CONTINUE;
}

static void
test_body_replacement_later_plugin_wins(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_replace_then_add;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_add;
	P[1]->hook[MH_STAGE_BODY] = hook_replace_aux;
	P[1]->aux = "two-a\r\n";
	P[1]->hook[MH_STAGE_EOM] = hook_replace_more_then_add;
	P[2]->hook[MH_STAGE_EOM] = hook_add;
	start();
	connected();
	unit_capture_start();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2 p3", &mods);
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	/* p2's chunks as one entry where p2 first replaced the body. */
	EXPECT_MODS(mods, "add:X-p1=after-body(p1) | add:X-p2=envfrom(p2) | "
	    "body=two-a\\r\\ntwo-b\\r\\n(p2) | add:X-p2=eom(p2) | "
	    "add:X-p3=eom(p3)");
	EXPECT_LOGGED(log, "warning");
	finish();
}

static mh_status
hook_from_twice(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_from_change(ctx, "<a1@example.org>", NULL));
	keep(p, mh_from_change(ctx, "<a2@example.org>", NULL));
	return MH_CONTINUE;
}

static mh_status
hook_from_b1(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_from_change(ctx, "<b1@example.org>", "SIZE=1"));
	return MH_CONTINUE;
}

static mh_status
hook_from_b2(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_from_change(ctx, "<b2@example.org>", "SIZE=2"));
	return MH_CONTINUE;
}

static void
test_change_from_later_wins(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_from_twice;
	P[0]->hook[MH_STAGE_EOM] = hook_from_twice;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_from_b1;
	P[1]->hook[MH_STAGE_EOM] = hook_from_b2;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2 p3", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "from:<b2@example.org> SIZE=2(p2)");
	finish();

	/* Within one plugin the later call wins. */
	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_from_twice;
	start();
	connected();
	ev_from("<s@example.com>");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "from:<a2@example.org>(p1)");
	finish();
}

static mh_status
hook_quarantine(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	char reason[64];

	snprintf(reason, sizeof reason, "%s-%s", p->name,
	    stage_names[mh_current_stage(ctx)]);
	keep(p, mh_quarantine(ctx, reason));
	return MH_CONTINUE;
}

static void
test_quarantine_first_wins(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_quarantine;
	P[0]->hook[MH_STAGE_EOM] = hook_quarantine;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_quarantine;
	P[1]->hook[MH_STAGE_EOM] = hook_quarantine;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "OK OK");
	EXPECT_STR(P[1]->rcs, "OK OK");
	EXPECT_MODS(mods, "quar:p1-envfrom(p1)");
	finish();
}

static void
test_queued_mods_dropped_on_reject(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_add;
	P[1]->status[MH_STAGE_EOM] = MH_REJECT;
	P[1]->reply[MH_STAGE_EOM] = (struct treply){ "550", "5.7.0", "spam" };
	start();
	connected();

	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.7.0 spam");
	EXPECT_MODS(mods, "");
	EXPECT_CALLS("p1:eom p2:eom");

	P[1]->status[MH_STAGE_EOM] = MH_DISCARD;
	P[1]->reply[MH_STAGE_EOM].rcode = NULL;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_DISCARD);
	EXPECT_MODS(mods, "");

	P[1]->status[MH_STAGE_EOM] = MH_CONTINUE;
	P[1]->status[MH_STAGE_DATA] = MH_TEMPFAIL;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = ev_data();
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_CALLS("p1:data p2:data p1:abort p2:abort");

	/* Nothing of the three messages above comes back. */
	P[1]->status[MH_STAGE_DATA] = MH_CONTINUE;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-p1=envfrom(p1)");
	finish();
}

static mh_status
hook_all_kinds(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_insert(ctx, 3, "X-Ins", "i"));
	keep(p, mh_header_change(ctx, "Subject", 2, "changed"));
	keep(p, mh_header_delete(ctx, "Received", 1));
	keep(p, mh_rcpt_add(ctx, "<n@example.org>", NULL));
	keep(p, mh_rcpt_add(ctx, "<m@example.org>", "NOTIFY=NEVER"));
	keep(p, mh_rcpt_delete(ctx, "<r@example.org>"));
	keep(p, mh_header_add(ctx, "X-Add", "a"));
	keep(p, mh_body_replace(ctx, "new\0body\r\n", 10));
	keep(p, mh_from_change(ctx, "<f@example.org>", "SIZE=100"));
	keep(p, mh_quarantine(ctx, "held"));
	return MH_CONTINUE;
}

static void
test_mod_entries_carry_their_arguments(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_EOM] = hook_all_kinds;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "OK OK OK OK OK OK OK OK OK OK");
	EXPECT_MODS(mods, "ins:3:X-Ins=i(p1) | chg:Subject:2=changed(p1) | "
	    "del:Received:1(p1) | rcpt+:<n@example.org>(p1) | "
	    "rcpt+:<m@example.org> NOTIFY=NEVER(p1) | "
	    "rcpt-:<r@example.org>(p1) | add:X-Add=a(p1) | "
	    "body=new\\0body\\r\\n(p1) | from:<f@example.org> SIZE=100(p1) | "
	    "quar:held(p1)");
	finish();
}

/* ---- tests: replies ---------------------------------------------------------- */

struct reply_case {
	const char *what;
	int kind;             /* 0 mh_set_reply, 1 _lines, 2 mh_set_mlreply */
	const char *rcode;
	const char *xcode;
	const char *text;
	size_t len;           /* > 0: text is len 'x's */
	size_t nlines;        /* kind 1 */
	mh_status status;     /* returned after setting it */
	const char *want_rc;
	const char *want_reply; /* NULL: only count lines */
	size_t want_lines;
};

static const struct reply_case reply_cases[] = {
	{ "plain 5xx", 0, "550", "5.7.1", "denied", 0, 0, MH_REJECT, "OK",
	  "550 5.7.1 denied", 1 },
	{ "plain 4xx", 0, "451", "4.3.0", "later", 0, 0, MH_TEMPFAIL, "OK",
	  "451 4.3.0 later", 1 },
	{ "no xcode", 0, "554", NULL, "no", 0, 0, MH_REJECT, "OK",
	  "554 no", 1 },
	{ "percent doubled", 0, "550", "5.7.1", "100% sure, 50%s", 0, 0,
	  MH_REJECT, "OK", "550 5.7.1 100%% sure, 50%%s", 1 },
	{ "2xx", 0, "250", NULL, "ok", 0, 0, MH_REJECT, "E_INVALID", NULL, 0 },
	{ "3xx", 0, "354", NULL, "go", 0, 0, MH_REJECT, "E_INVALID", NULL, 0 },
	{ "6xx", 0, "650", NULL, "no", 0, 0, MH_REJECT, "E_INVALID", NULL, 0 },
	{ "two digits", 0, "55", NULL, "no", 0, 0, MH_REJECT, "E_INVALID",
	  NULL, 0 },
	{ "four digits", 0, "5500", NULL, "no", 0, 0, MH_REJECT, "E_INVALID",
	  NULL, 0 },
	{ "letter", 0, "5x0", NULL, "no", 0, 0, MH_REJECT, "E_INVALID", NULL,
	  0 },
	{ "xcode of class 4 with 5xx", 0, "550", "4.7.1", "no", 0, 0,
	  MH_REJECT, "E_INVALID", NULL, 0 },
	{ "xcode of class 5 with 4xx", 0, "451", "5.7.1", "no", 0, 0,
	  MH_TEMPFAIL, "E_INVALID", NULL, 0 },
	{ "xcode of class 2", 0, "550", "2.0.0", "no", 0, 0, MH_REJECT,
	  "E_INVALID", NULL, 0 },
	{ "short xcode", 0, "550", "5.7", "no", 0, 0, MH_REJECT, "E_INVALID",
	  NULL, 0 },
	{ "xcode with letters", 0, "550", "5.a.1", "no", 0, 0, MH_REJECT,
	  "E_INVALID", NULL, 0 },
	{ "CR in text", 0, "550", "5.7.1", "a\rb", 0, 0, MH_REJECT,
	  "E_INVALID", NULL, 0 },
	{ "LF in text", 0, "550", "5.7.1", "a\nb", 0, 0, MH_REJECT,
	  "E_INVALID", NULL, 0 },
	{ "980-byte line", 0, "550", "5.7.1", NULL, 980, 0, MH_REJECT, "OK",
	  NULL, 1 },
	{ "981-byte line", 0, "550", "5.7.1", NULL, 981, 0, MH_REJECT,
	  "E_INVALID", NULL, 0 },
	{ "32 lines", 1, "550", "5.7.1", "line", 0, 32, MH_REJECT, "OK", NULL,
	  32 },
	{ "33 lines", 1, "550", "5.7.1", "line", 0, 33, MH_REJECT,
	  "E_INVALID", NULL, 0 },
	{ "0 lines", 1, "550", "5.7.1", "line", 0, 0, MH_REJECT, "E_INVALID",
	  NULL, 0 },
	{ "981-byte line among several", 1, "550", "5.7.1", NULL, 981, 2,
	  MH_REJECT, "E_INVALID", NULL, 0 },
	{ "LF in one of several", 1, "550", "5.7.1", "x\ny", 0, 2, MH_REJECT,
	  "E_INVALID", NULL, 0 },
	{ "mlreply", 2, "550", "5.7.1", NULL, 0, 0, MH_REJECT, "OK",
	  "550 5.7.1 one|two 100%%", 2 },
	{ "mlreply 4xx", 2, "421", "4.7.0", NULL, 0, 0, MH_TEMPFAIL, "OK",
	  "421 4.7.0 one|two 100%%", 2 },
};

static mh_status
hook_reply_case(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	static char longline[2048];
	static const char *lines[64];
	const struct reply_case *c = p->aux;
	const char *text = c->text;
	int rc;

	if (c->len > 0) {
		memset(longline, 'x', c->len);
		longline[c->len] = '\0';
		text = longline;
	}
	switch (c->kind) {
	case 0:
		rc = mh_set_reply(ctx, c->rcode, c->xcode, text);
		break;
	case 1:
		for (size_t i = 0; i < c->nlines; i++)
			lines[i] = i == 0 && c->len > 0 ? "first" : text;
		rc = mh_set_reply_lines(ctx, c->rcode, c->xcode, lines,
		    c->nlines);
		break;
	default:
		rc = mh_set_mlreply(ctx, c->rcode, c->xcode, "one", "two 100%",
		    (char *)NULL);
		break;
	}
	keep(p, rc);
	return c->status;
}

static void
test_reply_validation(void)
{
	const size_t ncases = sizeof reply_cases / sizeof reply_cases[0];

	fixture();
	add("p1", &test_plugin, ON_ERROR_CONTINUE, false);
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_reply_case;
	start();
	connected();
	ev_from("<s@example.com>");
	for (size_t i = 0; i < ncases; i++) {
		const struct reply_case *c = &reply_cases[i];
		bool ok = strcmp(c->want_rc, "OK") == 0;
		struct verdict v;
		char what[128];

		P[0]->aux = c;
		P[0]->rcs[0] = '\0';
		v = ev_rcpt("<r@example.org>");
		snprintf(what, sizeof what, "%s: rc", c->what);
		check_str(P[0]->rcs, c->want_rc, __LINE__, what);
		/* A refused reply fails the callback: on_error continue. */
		check(v.status == (ok ? c->status : MH_CONTINUE), __LINE__,
		    "%s: status %s", c->what, status_label(v.status));
		snprintf(what, sizeof what, "%s: reply", c->what);
		if (!ok || c->want_reply != NULL)
			check_str(reply_text(v.reply), c->want_reply, __LINE__,
			    what);
		if (ok)
			check(v.reply != NULL &&
			    v.reply->nlines == c->want_lines, __LINE__,
			    "%s: %zu lines, want %zu", c->what,
			    v.reply == NULL ? 0 : v.reply->nlines,
			    c->want_lines);
		if (ok && c->len > 0 && v.reply != NULL && v.reply->nlines > 0)
			check(strlen(v.reply->lines[0]) == c->len, __LINE__,
			    "%s: line of %zu bytes", c->what,
			    strlen(v.reply->lines[0]));
	}
	finish();
}

static void
test_reply_class_mismatch_with_decision_dropped(void)
{
	struct verdict v;
	const char *log;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_match;
	start();
	connected();
	ev_from("<s@example.com>");

	P[0]->aux = "<a@example.org>";
	P[0]->status[MH_STAGE_ENVRCPT] = MH_TEMPFAIL;
	P[0]->reply[MH_STAGE_ENVRCPT] = (struct treply){ "550", "5.7.1", "no" };
	unit_capture_start();
	v = ev_rcpt("<a@example.org>");
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_REPLY(v, NULL);
	EXPECT_LOGGED(log, "warning");
	EXPECT_LOGGED(log, "p1");

	P[0]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	P[0]->reply[MH_STAGE_ENVRCPT] =
	    (struct treply){ "451", "4.7.1", "later" };
	unit_capture_start();
	v = ev_rcpt("<a@example.org>");
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	EXPECT_LOGGED(log, "warning");
	finish();
}

static void
test_reply_does_not_outlive_stage(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->reply[MH_STAGE_ENVFROM] =
	    (struct treply){ "550", "5.7.1", "stale from envfrom" };
	P[1]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	start();
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_REPLY(v, NULL);
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);

	/* Nor one recipient's callback. */
	P[1]->status[MH_STAGE_ENVRCPT] = MH_CONTINUE;
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[0]->aux = "<second@example.org>";
	P[0]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	P[0]->reply[MH_STAGE_ENVRCPT] =
	    (struct treply){ "550", "5.1.1", "stale from first" };
	v = ev_rcpt("<first@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_REPLY(v, NULL);
	P[0]->reply[MH_STAGE_ENVRCPT].rcode = NULL;
	v = ev_rcpt("<second@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	finish();
}

static void
test_only_deciders_reply_sent(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->reply[MH_STAGE_ENVRCPT] =
	    (struct treply){ "550", "5.7.1", "p1 says" };
	P[1]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	P[1]->reply[MH_STAGE_ENVRCPT] =
	    (struct treply){ "550", "5.1.1", "p2 says" };
	start();
	connected();
	ev_from("<s@example.com>");
	take_calls();
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.1.1 p2 says");
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");

	/* The decider set none: none goes out, not p1's. */
	P[1]->reply[MH_STAGE_ENVRCPT].rcode = NULL;
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	finish();
}

/* ---- tests: connection scope and lifecycle -------------------------------- */

static void
test_connect_reject_refuses_connection_and_only_close_follows(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_CONNECT] = MH_REJECT;
	P[0]->reply[MH_STAGE_CONNECT] =
	    (struct treply){ "554", "5.7.1", "go away" };
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "554 5.7.1 go away");
	EXPECT_CALLS("p1:connect");

	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_REJECT);
	v = ev_unknown("XYZZY");
	EXPECT_STATUS(v, MH_REJECT);
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_REJECT);
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	v = ev_data();
	EXPECT_STATUS(v, MH_REJECT);
	/* Headers are not answered (NR_HDR); the next event is. */
	v = ev_header("Subject", "x");
	CU_ASSERT_TRUE(v.unanswered);
	v = ev_eoh();
	EXPECT_STATUS(v, MH_REJECT);
	v = ev_body("x\r\n");
	EXPECT_STATUS(v, MH_REJECT);
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_MODS(mods, "");
	ev_abort();
	EXPECT_CALLS("");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_helo_tempfail_refuses_connection(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[1]->status[MH_STAGE_HELO] = MH_TEMPFAIL;
	P[1]->reply[MH_STAGE_HELO] =
	    (struct treply){ "421", "4.7.0", "come back later" };
	start();
	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:connect p2:connect");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_REPLY(v, "421 4.7.0 come back later");
	EXPECT_CALLS("p1:helo p2:helo");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_CALLS("");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_discard_at_rcpt_ends_message(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_add;
	P[1]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[1]->aux = "<spamtrap@example.org>";
	P[1]->status[MH_STAGE_ENVRCPT] = MH_DISCARD;
	start();
	connected();
	ev_from("<s@example.com>");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	take_calls();
	v = ev_rcpt("<spamtrap@example.org>");
	EXPECT_STATUS(v, MH_DISCARD);
	EXPECT_REPLY(v, NULL);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt p1:abort p2:abort p3:abort");
	ev_rcpt("<r2@example.org>");
	ev_data();
	ev_header("Subject", "x");
	ev_eoh();
	ev_body("x\r\n");
	v = ev_eom(&mods);
	EXPECT_MODS(mods, "");
	EXPECT_CALLS("");

	/* The next message starts clean. */
	v = ev_from("<s@example.com>");
	EXPECT_CALLS("p1:envfrom p2:envfrom p3:envfrom");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2 p3", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-p1=envfrom(p1)");
	finish();
}

static void
test_discard_at_body_ends_message(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[1]->status[MH_STAGE_BODY] = MH_DISCARD;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	ev_eoh();
	take_calls();
	v = ev_body("x\r\n");
	EXPECT_STATUS(v, MH_DISCARD);
	EXPECT_CALLS("p1:body p2:body p1:abort p2:abort");
	v = ev_body("y\r\n");
	v = ev_eom(&mods);
	EXPECT_MODS(mods, "");
	EXPECT_CALLS("");
	finish();
}

static void
test_every_plugin_gets_close_once(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_with_actions("p1", MH_ACT_ADDHDRS | MH_ACT_CHGFROM,
	    ON_ERROR_TEMPFAIL);
	add_with_actions("p2", MH_ACT_ADDHDRS, ON_ERROR_TEMPFAIL);
	add_with_actions("p3", MH_ACT_ADDHDRS, ON_ERROR_TEMPFAIL);
	add_with_actions("p4", MH_ACT_ADDHDRS, ON_ERROR_TEMPFAIL);
	P[1]->status[MH_STAGE_CONNECT] = MH_ACCEPT;
	P[2]->status[MH_STAGE_ENVFROM] = MH_ACCEPT;
	start_offer(OFFER_ACTIONS & ~MH_ACT_CHGFROM, OFFER_STEPS);
	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:connect p3:connect p4:connect");
	v = ev_helo("client.example.com");
	EXPECT_CALLS("p3:helo p4:helo");
	ev_from("<s@example.com>");
	EXPECT_CALLS("p3:envfrom p4:envfrom");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p4", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS_ANY_ORDER("p4:eom p3:abort");
	ev_close();
	EXPECT_CALLS("p1:close p2:close p3:close p4:close");
	session_free(sess);
	sess = NULL;
	EXPECT_CALLS("");
	finish();

	/* Closed right after negotiation. */
	fixture();
	add_plain("p1");
	add_plain("p2");
	start();
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	session_free(sess);
	sess = NULL;
	EXPECT_CALLS("");
	finish();
}

static void
test_eom_or_abort_exactly_once(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	add_plain("p3");
	start();
	connected();

	/* A normal message: eom for all, no abort. */
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2 p3", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom p3:eom");

	/* Aborted by the MTA: abort for all, once. */
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	take_calls();
	ev_abort();
	EXPECT_CALLS("p1:abort p2:abort p3:abort");
	ev_abort();
	EXPECT_CALLS("");

	/* Discarded at header by p2: p3, reached at envfrom, gets abort. */
	P[1]->status[MH_STAGE_HEADER] = MH_DISCARD;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	take_calls();
	v = ev_header("Subject", "x");
	CU_ASSERT_TRUE(v.unanswered);
	EXPECT_CALLS("p1:header p2:header p1:abort p2:abort p3:abort");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_DISCARD);
	EXPECT_MODS(mods, "");
	EXPECT_CALLS("");
	ev_abort();
	EXPECT_CALLS("");
	P[1]->status[MH_STAGE_HEADER] = MH_CONTINUE;

	/* Rejected at eom by p2: p1 and p2 had eom, p3 gets abort. */
	P[1]->status[MH_STAGE_EOM] = MH_REJECT;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2 p3", &mods);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:eom p2:eom p3:abort");
	ev_abort();
	EXPECT_CALLS("");
	P[1]->status[MH_STAGE_EOM] = MH_CONTINUE;

	/* p1 left at envrcpt: abort, not eom. */
	P[0]->status[MH_STAGE_ENVRCPT] = MH_ACCEPT;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p2 p3", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS_ANY_ORDER("p1:abort p2:eom p3:eom");
	P[0]->status[MH_STAGE_ENVRCPT] = MH_CONTINUE;

	/* Rejected at envfrom by p1: only p1 was reached. */
	P[0]->status[MH_STAGE_ENVFROM] = MH_REJECT;
	ev_from("<s@example.com>");
	EXPECT_CALLS("p1:envfrom p1:abort");
	ev_abort();
	EXPECT_CALLS("");
	P[0]->status[MH_STAGE_ENVFROM] = MH_CONTINUE;

	/* Open at close: abort, then close. */
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	ev_close();
	EXPECT_CALLS("p1:abort p2:abort p3:abort p1:close p2:close p3:close");
	finish();
}

static void
test_new_helo_aborts_open_message(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_add;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = ev_helo("again.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:abort p2:abort p1:helo p2:helo");
	ev_abort();
	EXPECT_CALLS("");

	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");
	EXPECT_MODS(mods, "add:X-p1=envrcpt(p1)");
	finish();
}

static void
test_new_envfrom_aborts_open_message(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_add;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	take_calls();
	v = ev_from("<s2@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:abort p2:abort p1:envfrom p2:envfrom");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");
	/* The aborted message's change is gone. */
	EXPECT_MODS(mods, "add:X-p1=envrcpt(p1)");
	finish();
}

static void
test_msg_slot_cleared_after_eom(void)
{
	static const mh_stage stages[] = {
		MH_STAGE_CONNECT, MH_STAGE_ENVFROM, MH_STAGE_ENVRCPT,
		MH_STAGE_EOM, MH_STAGE_ABORT, MH_STAGE_CLOSE
	};
	const struct mod_list *mods;

	fixture();
	add_plain("p1");
	add_plain("p2");
	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		P[0]->hook[stages[i]] = hook_slots;
	start();
	connected();
	/* Ended by eom. */
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	ev_eom(&mods);
	/* Ended by the MTA's abort. */
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_abort();
	/* Ended by another plugin's reject. */
	P[1]->status[MH_STAGE_DATA] = MH_REJECT;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	/* Open at close. */
	ev_from("<s@example.com>");
	ev_close();
	EXPECT_STR(P[0]->notes, "connect(-,-) "
	    "envfrom(c,-) envrcpt(c,m) eom(c,m) "
	    "envfrom(c,-) envrcpt(c,m) abort(c,m) "
	    "envfrom(c,-) envrcpt(c,m) abort(c,m) "
	    "envfrom(c,-) abort(c,m) close(c,-)");
	session_free(sess);

	/* The connection slot does not outlive its session. */
	P[0]->notes[0] = '\0';
	closed = false;
	start();
	ev_connect();
	EXPECT_STR(P[0]->notes, "connect(-,-)");
	finish();
}

/*
 * Slot data with a destructor (ABI 1.1): an object labelled "p1.m1"
 * whose destructor logs "free:p1.m1" in the call log, so that a test
 * sees when (and whether) the host calls it.  Without the call the object
 * leaks, which LeakSanitizer reports.
 */
struct slot_obj {
	char label[64];
};

static void
slot_free(void *data)
{
	struct slot_obj *o = data;

	append(calls, sizeof calls, "%sfree:%s", calls[0] ? " " : "",
	    o->label);
	free(o);
}

static struct slot_obj *
slot_obj(const struct tplug *p, const char *what, int n)
{
	struct slot_obj *o = malloc(sizeof *o);

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	snprintf(o->label, sizeof o->label, "%s.%s%d", p->name, what, n);
	return o;
}

/* The plugin frees the object itself ("own:p1.m1"), as it may. */
static void
slot_own_free(void *data)
{
	struct slot_obj *o = data;

	append(calls, sizeof calls, "%sown:%s", calls[0] ? " " : "",
	    o->label);
	free(o);
}

/* envfrom: a new message object with the destructor; at the first
 * message a connection object too. */
static mh_status
hook_slots_free(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	if (mh_conn_data(ctx) == NULL)
		keep(p, mh_set_conn_data_free(ctx, slot_obj(p, "c", 1),
		    slot_free));
	keep(p, mh_set_msg_data_free(ctx, slot_obj(p, "m", ++p->count),
	    slot_free));
	return MH_CONTINUE;
}

/* Only envfrom and eom: no abort, no close to free anything in. */
static const struct mh_plugin envfrom_eom_only_plugin = {
	MH_PLUGIN_ABI,
	.name = "envfrom-eom-only",
	.version = "1.1",
	.description = "envfrom and eom, no abort or close",
	.init = tp_init,
	.fini = tp_fini,
	.envfrom = tp_envfrom,
	.eom = tp_eom,
};

static void
test_slot_destructor_runs_where_the_plugin_left_data(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add("p1", &envfrom_eom_only_plugin, ON_ERROR_TEMPFAIL, false);
	add_plain("p2");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_slots_free;
	start();
	connected();
	/* After eom: p1 did not clear its slot. */
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	take_calls();
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom free:p1.m1");
	/* After the MTA's abort (RSET): p1 has no abort of its own. */
	ev_from("<s@example.com>");
	take_calls();
	ev_abort();
	EXPECT_CALLS("p2:abort free:p1.m2");
	/* After another plugin refused the message. */
	P[1]->status[MH_STAGE_DATA] = MH_REJECT;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = ev_data();
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p2:data p2:abort free:p1.m3");
	/* A new MAIL ends the open message first. */
	P[1]->status[MH_STAGE_DATA] = MH_CONTINUE;
	ev_from("<s@example.com>");
	take_calls();
	ev_from("<s@example.com>");
	EXPECT_CALLS("p2:abort free:p1.m4 p1:envfrom p2:envfrom");
	/* Close: the open message's slot, then, after p1's (absent) close
	 * and before p2's, p1's connection slot. */
	ev_close();
	EXPECT_CALLS("p2:abort free:p1.m5 free:p1.c1 p2:close");
	EXPECT_STR(P[0]->rcs, "OK OK OK OK OK OK");
	finish();
	EXPECT_CALLS("");
}

/* eom, abort and close free the slot themselves and clear it. */
static mh_status
hook_clear_slots(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	mh_stage st = mh_current_stage(ctx);

	if (st == MH_STAGE_CLOSE) {
		slot_own_free(mh_conn_data(ctx));
		mh_set_conn_data(ctx, NULL);
	} else if (mh_msg_data(ctx) != NULL) {
		slot_own_free(mh_msg_data(ctx));
		/* Either way of clearing works. */
		if (st == MH_STAGE_EOM)
			mh_set_msg_data(ctx, NULL);
		else
			keep(p, mh_set_msg_data_free(ctx, NULL, slot_free));
	}
	return MH_CONTINUE;
}

static void
test_slot_destructor_not_called_for_a_cleared_slot(void)
{
	const struct mod_list *mods;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_slots_free;
	P[0]->hook[MH_STAGE_EOM] = hook_clear_slots;
	P[0]->hook[MH_STAGE_ABORT] = hook_clear_slots;
	P[0]->hook[MH_STAGE_CLOSE] = hook_clear_slots;
	start();
	connected();
	ev_from("<s@example.com>");
	take_calls();
	ev_eom(&mods);
	EXPECT_CALLS("p1:eom own:p1.m1");
	ev_from("<s@example.com>");
	take_calls();
	ev_abort();
	EXPECT_CALLS("p1:abort own:p1.m2");
	ev_close();
	EXPECT_CALLS("p1:close own:p1.c1");
	EXPECT_STR(P[0]->rcs, "OK OK OK OK");
	finish();
	EXPECT_CALLS("");
}

/*
 * envrcpt replaces the message slot: the plugin frees the old object
 * itself (replacing does not call the old destructor); the new one gets
 * the destructor given now, or none when set with mh_set_msg_data.
 */
static mh_status
hook_replace_slot(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	slot_own_free(mh_msg_data(ctx));
	if (p->n == 0)
		keep(p, mh_set_msg_data_free(ctx, slot_obj(p, "r", p->count),
		    slot_free));
	else
		mh_set_msg_data(ctx, &p->count);
	return MH_CONTINUE;
}

static void
test_slot_replaced_gets_the_new_destructor_only(void)
{
	const struct mod_list *mods;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_slots_free;
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_replace_slot;
	start();
	connected();
	/* Replaced with a destructor: only the new object is freed. */
	ev_from("<s@example.com>");
	take_calls();
	ev_rcpt("<r@example.org>");
	EXPECT_CALLS("p1:envrcpt own:p1.m1");
	ev_eom(&mods);
	EXPECT_CALLS("p1:eom free:p1.r1");
	/* Replaced plainly: no destructor any more, nothing is freed. */
	P[0]->n = 1;
	ev_from("<s@example.com>");
	take_calls();
	ev_rcpt("<r@example.org>");
	EXPECT_CALLS("p1:envrcpt own:p1.m2");
	ev_eom(&mods);
	EXPECT_CALLS("p1:eom");
	ev_close();
	EXPECT_CALLS("p1:close free:p1.c1");
	EXPECT_STR(P[0]->rcs, "OK OK OK OK");
	finish();
}

/* A session freed without close (the adapter's out of memory paths):
 * the destructors still run, the message's first. */
static void
test_slot_destructors_run_when_session_freed_without_close(void)
{
	fixture();
	add_plain("p1");
	add("p2", &envfrom_eom_only_plugin, ON_ERROR_TEMPFAIL, false);
	P[0]->hook[MH_STAGE_ENVFROM] = hook_slots_free;
	P[1]->hook[MH_STAGE_ENVFROM] = hook_slots_free;
	start();
	connected();
	ev_from("<s@example.com>");
	take_calls();
	session_free(sess);
	sess = NULL;
	EXPECT_CALLS("free:p1.m1 free:p1.c1 free:p2.m1 free:p2.c1");
	finish();
}

static void
test_several_messages_per_connection(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->hook[MH_STAGE_EOM] = hook_add;
	P[1]->hook[MH_STAGE_ENVRCPT] = hook_match;
	P[1]->aux = "<bad@example.org>";
	P[1]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	start();
	connected();
	for (int msg = 0; msg < 3; msg++) {
		v = ev_from("<s@example.com>");
		EXPECT_STATUS(v, MH_CONTINUE);
		EXPECT_CALLS("p1:envfrom p2:envfrom");
		v = ev_rcpt("<bad@example.org>");
		EXPECT_STATUS(v, MH_REJECT);
		EXPECT_CALLS("p1:envrcpt p2:envrcpt");
		v = ev_rcpt("<good@example.org>");
		EXPECT_STATUS(v, MH_CONTINUE);
		EXPECT_CALLS("p1:envrcpt p2:envrcpt");
		v = MESSAGE_TAIL("p1 p2", &mods);
		EXPECT_STATUS(v, MH_CONTINUE);
		EXPECT_CALLS("p1:eom p2:eom");
		EXPECT_MODS(mods, "add:X-p1=eom(p1)");
	}
	EXPECT_STR(P[0]->rcs, "OK OK OK");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

static void
test_unknown_verdict_concerns_only_command(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_UNKNOWN] = MH_REJECT;
	P[0]->reply[MH_STAGE_UNKNOWN] =
	    (struct treply){ "502", "5.5.1", "no such command" };
	start();
	connected();
	v = ev_unknown("XYZZY");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "502 5.5.1 no such command");
	EXPECT_CALLS("p1:unknown");
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envfrom p2:envfrom");
	v = ev_unknown("PLUGH");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_CALLS("p1:unknown");
	/* The message goes on. */
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt");
	v = MESSAGE_TAIL("p1 p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");

	P[0]->status[MH_STAGE_UNKNOWN] = MH_TEMPFAIL;
	P[0]->reply[MH_STAGE_UNKNOWN].rcode = NULL;
	v = ev_unknown("XYZZY");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_CALLS("p1:unknown");
	v = ev_helo("client.example.com");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:helo p2:helo");
	finish();
}

/* ---- tests: negotiation -------------------------------------------------------- */

/*
 * With NR_HDR, the MTA waits for no answer to headers: a decision made at
 * header stops the chain there, and reaches the MTA, with its reply, at
 * the message's next answered event.
 */
static void
test_header_decision_given_at_next_answered_event(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	add_plain("p2");
	P[0]->status[MH_STAGE_HEADER] = MH_REJECT;
	P[0]->reply[MH_STAGE_HEADER] =
	    (struct treply){ "550", "5.7.1", "bad header" };
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	take_calls();
	v = ev_header("Subject", "x");
	CU_ASSERT_TRUE(v.unanswered);
	EXPECT_CALLS("p1:header p1:abort p2:abort");
	v = ev_header("X-More", "y");
	CU_ASSERT_TRUE(v.unanswered);
	EXPECT_CALLS("");
	v = ev_eoh();
	CU_ASSERT_FALSE(v.unanswered);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.7.1 bad header");
	/* The reply went out once; the status stays. */
	v = ev_body("x\r\n");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_MODS(mods, "");
	EXPECT_CALLS("");
	/* The next message is filtered again, and answered at header. */
	P[0]->status[MH_STAGE_HEADER] = MH_CONTINUE;
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	take_calls();
	v = ev_header("Subject", "x");
	CU_ASSERT_TRUE(v.unanswered);
	EXPECT_CALLS("p1:header p2:header");
	finish();

	/* An MTA that does not offer NR_HDR hears the decision at once. */
	fixture();
	add_plain("p1");
	P[0]->status[MH_STAGE_HEADER] = MH_TEMPFAIL;
	start_offer(OFFER_ACTIONS, OFFER_STEPS & ~PROTO_NR_HDR);
	CU_ASSERT_EQUAL(neg.steps & PROTO_NR_HDR, 0);
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	v = ev_header("Subject", "x");
	CU_ASSERT_FALSE(v.unanswered);
	EXPECT_STATUS(v, MH_TEMPFAIL);
	finish();
}

static void
test_negotiate_everything_implemented(void)
{
	fixture();
	add_plain("p1");
	add_plain("p2");
	start();
	/* Every stage is wanted; SKIP is offered; no answer to headers;
	 * nothing else asked. */
	CU_ASSERT_EQUAL(neg.steps, PROTO_SKIP | PROTO_NR_HDR);
	CU_ASSERT_EQUAL(neg.actions, ALL_MH_ACTIONS);
	for (int i = 0; i < MACRO_STAGES; i++)
		CU_ASSERT_PTR_NULL(neg.macros[i]);
	finish();
}

static void
test_negotiate_no_bits_for_unused_stages(void)
{
	struct mh_plugin needs_chgfrom = test_plugin;

	fixture();
	add("p1", &envfrom_eom_plugin, ON_ERROR_TEMPFAIL, false);
	add("p2", &header_plugin, ON_ERROR_TEMPFAIL, false);
	start();
	CU_ASSERT_EQUAL(neg.steps, PROTO_NOCONNECT | PROTO_NOHELO |
	    PROTO_NORCPT | PROTO_NODATA | PROTO_NOUNKNOWN | PROTO_NOEOH |
	    PROTO_NOBODY | PROTO_SKIP | PROTO_NR_HDR);
	/* No other stage goes unanswered (no observer declarations yet). */
	CU_ASSERT_EQUAL(neg.steps & NR_BITS, PROTO_NR_HDR);
	finish();

	/* Only bits the MTA offers: no NODATA, NOUNKNOWN, SKIP here. */
	fixture();
	add("p1", &envfrom_eom_plugin, ON_ERROR_TEMPFAIL, false);
	add("p2", &header_plugin, ON_ERROR_TEMPFAIL, false);
	start_offer(OFFER_ACTIONS, 0x7FUL | NR_BITS);
	CU_ASSERT_EQUAL(neg.steps, PROTO_NOCONNECT | PROTO_NOHELO |
	    PROTO_NORCPT | PROTO_NOEOH | PROTO_NOBODY | PROTO_NR_HDR);
	finish();

	/* A disabled plugin's callbacks do not count. */
	needs_chgfrom.actions = MH_ACT_CHGFROM;
	fixture();
	add("p1", &envfrom_eom_plugin, ON_ERROR_TEMPFAIL, false);
	add("p2", &needs_chgfrom, ON_ERROR_TEMPFAIL, false);
	start_offer(OFFER_ACTIONS & ~MH_ACT_CHGFROM, OFFER_STEPS);
	CU_ASSERT_EQUAL(neg.steps, PROTO_NOCONNECT | PROTO_NOHELO |
	    PROTO_NORCPT | PROTO_NODATA | PROTO_NOUNKNOWN | PROTO_NOHDRS |
	    PROTO_NOEOH | PROTO_NOBODY | PROTO_SKIP);
	finish();
}

static void
test_negotiate_actions_union(void)
{
	fixture();
	add_with_actions("p1", MH_ACT_ADDHDRS, ON_ERROR_TEMPFAIL);
	add_with_actions("p2", MH_ACT_CHGBODY | MH_ACT_QUARANTINE,
	    ON_ERROR_TEMPFAIL);
	add_with_actions("p3", 0, ON_ERROR_TEMPFAIL);
	add_with_actions("p4", MH_ACT_ADDHDRS | MH_ACT_ADDRCPT_PAR,
	    ON_ERROR_TEMPFAIL);
	start();
	CU_ASSERT_EQUAL(neg.actions, MH_ACT_ADDHDRS | MH_ACT_CHGBODY |
	    MH_ACT_QUARANTINE | MH_ACT_ADDRCPT_PAR);
	finish();
}

static void
test_plugin_needing_unoffered_action_disabled(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add_with_actions("p1", MH_ACT_ADDHDRS | MH_ACT_ADDRCPT_PAR,
	    ON_ERROR_TEMPFAIL);
	add_with_actions("p2", MH_ACT_CHGHDRS, ON_ERROR_TEMPFAIL);
	unit_capture_start();
	/* An MTA without ADDRCPT_PAR (Postfix before 2.6). */
	start_offer(OFFER_ACTIONS & ~MH_ACT_ADDRCPT_PAR, OFFER_STEPS);
	log = unit_capture_end(true);
	EXPECT_LOGGED(log, "warning");
	EXPECT_LOGGED(log, "p1");
	CU_ASSERT_EQUAL(neg.actions, MH_ACT_CHGHDRS);
	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:connect");
	ev_helo("client.example.com");
	EXPECT_CALLS("p2:helo");
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	take_calls();
	v = MESSAGE_TAIL("p2", &mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:eom");
	ev_close();
	EXPECT_CALLS("p1:close p2:close");
	finish();
}

/* Are the space-separated words of got those of want, none twice? */
static void
check_words(const char *got, const char *want, int line, const char *what)
{
	char gs[2048], ws[2048], copy[2048];
	char *save = NULL, *w, *prev = NULL;
	bool dup = false;

	if (got == NULL || want == NULL) {
		check_str(got, want, line, what);
		return;
	}
	sorted_words(got, gs, sizeof gs);
	sorted_words(want, ws, sizeof ws);
	snprintf(copy, sizeof copy, "%s", gs);
	for (w = strtok_r(copy, " ", &save); w != NULL;
	     w = strtok_r(NULL, " ", &save)) {
		if (prev != NULL && strcmp(prev, w) == 0)
			dup = true;
		prev = w;
	}
	check(!dup && strcmp(gs, ws) == 0, line,
	    "%s: got \"%s\", want the words of \"%s\"", what, got, want);
}

#define EXPECT_WORDS(got, want) check_words((got), (want), __LINE__, #got)

/* ---- tests: declarations of init (ABI 1.1) ------------------------------- */

static int
declare_more(const struct mh_init *init)
{
	if (mh_declare_actions(init, MH_ACT_CHGFROM) != MH_OK ||
	    mh_declare_macros(init, MH_STAGE_EOM, "{foo} j") != MH_OK ||
	    mh_declare_macros(init, MH_STAGE_EOM, "{foo2}") != MH_OK ||
	    mh_declare_wishes(init, MH_WANT_HDR_LEADSPC) != MH_OK)
		return -1;
	return 0;
}

static mh_status
hook_change_from(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_from_change(ctx, "<new@example.org>", NULL));
	return MH_CONTINUE;
}

/*
 * An instance's init adds to what its descriptor declares: the actions
 * it may use, the macros it wants, its protocol wishes; negotiation and
 * the checks of its host calls use the union.
 */
static void
test_init_declarations_add_to_the_descriptor(void)
{
	struct mh_plugin d = test_plugin;
	const struct mod_list *mods;

	d.actions = MH_ACT_ADDHDRS;
	fixture();
	declare = declare_more;
	add("p1", &d, ON_ERROR_TEMPFAIL, false);
	declare = NULL;
	add("p2", &d, ON_ERROR_TEMPFAIL, false);
	CU_ASSERT_EQUAL(set->instances[0].actions,
	    MH_ACT_ADDHDRS | MH_ACT_CHGFROM);
	CU_ASSERT_EQUAL(set->instances[0].flags, MH_WANT_HDR_LEADSPC);
	CU_ASSERT_STRING_EQUAL(set->instances[0].macros[MH_STAGE_EOM],
	    "{foo} j {foo2}");
	CU_ASSERT_EQUAL(set->instances[1].actions, MH_ACT_ADDHDRS);
	CU_ASSERT_PTR_NULL(set->instances[1].macros[MH_STAGE_EOM]);
	P[0]->hook[MH_STAGE_EOM] = hook_change_from;
	P[1]->hook[MH_STAGE_EOM] = hook_change_from;
	start();
	CU_ASSERT_EQUAL(neg.actions & ~ACT_SETSYMLIST,
	    MH_ACT_ADDHDRS | MH_ACT_CHGFROM);
	CU_ASSERT(neg.steps & PROTO_HDR_LEADSPC);
	EXPECT_WORDS(neg.macros[MACRO_EOM], "i {foo} j {foo2}");
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_eom(&mods);
	/* p1 declared CHGFROM; p2 did not: refused, on_error tempfail. */
	EXPECT_STR(P[0]->rcs, "OK");
	EXPECT_STR(P[1]->rcs, "E_ACTION");
	finish();
}

static int
declare_unknown_action(const struct mh_init *init)
{
	mh_declare_actions(init, 0x10000UL);
	return 0;
}

static int
declare_header_macros(const struct mh_init *init)
{
	return mh_declare_macros(init, MH_STAGE_HEADER, "{x}") == MH_OK ? 0 :
	    -1;
}

static int
declare_bad_name(const struct mh_init *init)
{
	mh_declare_macros(init, MH_STAGE_EOM, "ok b@d");
	return 0;
}

static int
declare_observer_everywhere(const struct mh_init *init)
{
	static const mh_stage stages[] = { MH_STAGE_CONNECT, MH_STAGE_HELO,
	    MH_STAGE_ENVFROM, MH_STAGE_ENVRCPT, MH_STAGE_DATA,
	    MH_STAGE_UNKNOWN, MH_STAGE_HEADER, MH_STAGE_EOH, MH_STAGE_BODY };

	for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
		if (mh_declare_observer(init, stages[i]) != MH_OK)
			return -1;
	return 0;
}

/*
 * A stage that every instance taking it only observes gets no answer:
 * its "no reply" bit is claimed.  An observer that decides anyway fails,
 * and its on_error reaches the MTA at the next answered event.
 */
static void
test_observed_stages_are_not_answered(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	declare = declare_observer_everywhere;
	add("p1", &test_plugin, ON_ERROR_TEMPFAIL, false);
	add("p2", &test_plugin, ON_ERROR_TEMPFAIL, false);
	declare = NULL;
	start();
	CU_ASSERT_EQUAL(neg.steps & NR_BITS, NR_BITS);
	v = ev_connect();
	CU_ASSERT_TRUE(v.unanswered);
	EXPECT_CALLS("p1:connect p2:connect");
	v = ev_helo("client.example.com");
	CU_ASSERT_TRUE(v.unanswered);
	P[1]->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	v = ev_from("<s@example.com>");
	CU_ASSERT_TRUE(v.unanswered);
	/* p2 rejects where it only observes: a failure, tempfail by its
	 * on_error, for the whole message, heard at eom. */
	v = ev_rcpt("<r@example.org>");
	CU_ASSERT_TRUE(v.unanswered);
	v = ev_data();
	CU_ASSERT_TRUE(v.unanswered);
	v = ev_eom(&mods);
	CU_ASSERT_FALSE(v.unanswered);
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_MODS(mods, "");
	finish();

	/* One instance taking a stage without observing: it is answered. */
	fixture();
	declare = declare_observer_everywhere;
	add("p1", &test_plugin, ON_ERROR_TEMPFAIL, false);
	declare = NULL;
	add("p2", &test_plugin, ON_ERROR_TEMPFAIL, false);
	start();
	CU_ASSERT_EQUAL(neg.steps & NR_BITS, PROTO_NR_HDR);
	v = ev_connect();
	CU_ASSERT_FALSE(v.unanswered);
	finish();

	/* An observer failing at connect refuses the connection at the
	 * next answered event. */
	fixture();
	declare = declare_observer_everywhere;
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	declare = NULL;
	P[0]->status[MH_STAGE_CONNECT] = MH_ACCEPT;
	start();
	v = ev_connect();
	CU_ASSERT_TRUE(v.unanswered);
	v = ev_helo("client.example.com");
	CU_ASSERT_TRUE(v.unanswered);
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_REJECT);
	finish();
}

static int
declare_observer_at_eom(const struct mh_init *init)
{
	mh_declare_observer(init, MH_STAGE_EOM);
	return 0;
}

/* A refused declaration fails the instance, even if init succeeds. */
static void
test_bad_declaration_refuses_the_instance(void)
{
	static const struct {
		int (*declare)(const struct mh_init *);
		const char *want;
	} cases[] = {
		{ declare_unknown_action, "[plugin:bad] mh_declare_actions: "
		    "unknown actions 0x10000" },
		{ declare_header_macros, "[plugin:bad] mh_declare_macros: the "
		    "instance declares macros for stage header" },
		{ declare_bad_name, "[plugin:bad] mh_declare_macros: the "
		    "instance: bad macro name 'b@d' for stage eom" },
		{ declare_observer_at_eom, "[plugin:bad] mh_declare_observer: "
		    "stage eom: an instance can only observe" },
	};
	char err[512];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		fixture();
		declare = cases[i].declare;
		CU_ASSERT_EQUAL(plugin_set_add(set, "bad", &test_plugin, NULL,
		    0, ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
		declare = NULL;
		if (strstr(err, cases[i].want) == NULL) {
			CU_FAIL("the refusal does not say why");
			fprintf(stderr, "got \"%s\", want \"%s\"\n", err,
			    cases[i].want);
		}
		CU_ASSERT_EQUAL(set->ninstances, 0);
		finish();
	}
	/* Outside init there is nothing to declare into. */
	CU_ASSERT_EQUAL(mh_declare_actions(NULL, MH_ACT_ADDHDRS),
	    MH_E_INVALID);
	CU_ASSERT_EQUAL(mh_declare_macros(NULL, MH_STAGE_EOM, "i"),
	    MH_E_INVALID);
}

/* ---- tests: unused stages (ABI 1.3) ---------------------------------- */

static int
declare_rcpt_body_unused(const struct mh_init *init)
{
	if (mh_declare_unused(init, MH_STAGE_ENVRCPT) != MH_OK ||
	    mh_declare_unused(init, MH_STAGE_BODY) != MH_OK)
		return -1;
	return 0;
}

/*
 * An instance that declares a stage unused is treated there as if its
 * descriptor had no callback: it is never called there, and the MTA is
 * asked not to send the stage unless another instance takes it.
 */
static void
test_unused_stages_are_negotiated_away_and_not_called(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	declare = declare_rcpt_body_unused;
	add_plain("p1");
	declare = NULL;
	CU_ASSERT_EQUAL(set->instances[0].unused,
	    (1U << MH_STAGE_ENVRCPT) | (1U << MH_STAGE_BODY));
	CU_ASSERT_FALSE(instance_takes(&set->instances[0], MH_STAGE_ENVRCPT));
	CU_ASSERT_FALSE(instance_takes(&set->instances[0], MH_STAGE_BODY));
	CU_ASSERT_TRUE(instance_takes(&set->instances[0], MH_STAGE_ENVFROM));
	CU_ASSERT_TRUE(instance_takes(&set->instances[0], MH_STAGE_EOM));
	start();
	CU_ASSERT_EQUAL(neg.steps & NO_BITS, PROTO_NORCPT | PROTO_NOBODY);
	connected();
	ev_from("<s@example.com>");
	EXPECT_CALLS("p1:envfrom");
	/* An MTA that sends them anyway reaches no callback; with no
	 * instance left wanting body, a chunk is answered SKIP. */
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("");
	ev_data();
	ev_header("Subject", "hello");
	ev_eoh();
	EXPECT_CALLS("p1:data p1:header p1:eoh");
	v = ev_body("hello\r\n");
	EXPECT_STATUS(v, MH_SKIP);
	EXPECT_CALLS("");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom");
	EXPECT_STR(P[0]->seen, "<s@example.com>;[Subject=hello]");
	finish();

	/* Another instance taking them keeps them, and gets them alone;
	 * its SKIP is the answer, p1 not counting as wanting body. */
	fixture();
	declare = declare_rcpt_body_unused;
	add_plain("p1");
	declare = NULL;
	add_plain("p2");
	P[1]->status[MH_STAGE_BODY] = MH_SKIP;
	start();
	CU_ASSERT_EQUAL(neg.steps & NO_BITS, 0);
	connected();
	ev_from("<s@example.com>");
	take_calls();
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:envrcpt");
	ev_data();
	ev_eoh();
	take_calls();
	v = ev_body("hello\r\n");
	EXPECT_STATUS(v, MH_SKIP);
	EXPECT_CALLS("p2:body");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:eom");
	EXPECT_STR(P[0]->seen, "<s@example.com>;");
	EXPECT_STR(P[1]->seen, "<s@example.com>;<r@example.org>;"
	    "[body:7:hello\\r\\n]");
	finish();
}

static int
declare_rcpt_unused_and_observed(const struct mh_init *init)
{
	if (mh_declare_observer(init, MH_STAGE_ENVRCPT) != MH_OK ||
	    mh_declare_unused(init, MH_STAGE_ENVRCPT) != MH_OK ||
	    mh_declare_unused(init, MH_STAGE_HELO) != MH_OK ||
	    mh_declare_observer(init, MH_STAGE_HELO) != MH_OK)
		return -1;
	return 0;
}

static int
declare_rcpt_unused(const struct mh_init *init)
{
	return mh_declare_unused(init, MH_STAGE_ENVRCPT) == MH_OK ? 0 : -1;
}

/*
 * An unused stage does not count in the "only observed" decision: the
 * observers taking it decide alone.  A stage declared both observed and
 * unused, in either order, is unused.
 */
static void
test_unused_stage_leaves_observers_alone(void)
{
	struct verdict v;

	/* p1 would keep RCPT answered, but does not take it. */
	fixture();
	declare = declare_rcpt_unused;
	add_plain("p1");
	declare = declare_observer_everywhere;
	add_plain("p2");
	declare = NULL;
	start();
	CU_ASSERT_EQUAL(neg.steps & NR_BITS, PROTO_NR_HDR | PROTO_NR_RCPT);
	connected();
	ev_from("<s@example.com>");
	take_calls();
	v = ev_rcpt("<r@example.org>");
	CU_ASSERT_TRUE(v.unanswered);
	EXPECT_CALLS("p2:envrcpt");
	finish();

	/* Unused wins: nothing observes, nothing takes the stage. */
	fixture();
	declare = declare_rcpt_unused_and_observed;
	add_plain("p1");
	declare = NULL;
	CU_ASSERT_EQUAL(set->instances[0].observes, 0);
	start();
	CU_ASSERT_EQUAL(neg.steps & NO_BITS, PROTO_NOHELO | PROTO_NORCPT);
	CU_ASSERT_EQUAL(neg.steps & NR_BITS, PROTO_NR_HDR);
	connected();
	ev_from("<s@example.com>");
	take_calls();
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("");
	finish();
}

static mh_stage stage_to_leave_unused;

static int
declare_unused_stage(const struct mh_init *init)
{
	mh_declare_unused(init, stage_to_leave_unused);
	return 0;
}

/*
 * eom, abort and close always come: declaring them unused, or a value
 * that is no stage, fails the instance even though its init succeeds.
 */
static void
test_unused_refused_at_stages_that_always_come(void)
{
	static const struct {
		mh_stage stage;
		const char *name;
	} cases[] = {
		{ MH_STAGE_EOM, "eom" },
		{ MH_STAGE_ABORT, "abort" },
		{ MH_STAGE_CLOSE, "close" },
		{ MH_STAGE_COUNT, "12" },
		{ (mh_stage)-1, "-1" },
	};
	char err[512], want[512];
	const char *log;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(want, sizeof want, "[plugin:bad] mh_declare_unused: "
		    "stage %s: only connect, helo, envfrom, envrcpt, data, "
		    "unknown, header, eoh and body can be unused",
		    cases[i].name);
		fixture();
		stage_to_leave_unused = cases[i].stage;
		declare = declare_unused_stage;
		CU_ASSERT_EQUAL(plugin_set_add(set, "bad", &test_plugin, NULL,
		    0, ON_ERROR_TEMPFAIL, false, err, sizeof err), -1);
		declare = NULL;
		if (strcmp(err, want) != 0) {
			CU_FAIL("the refusal does not say why");
			fprintf(stderr, "got \"%s\", want \"%s\"\n", err,
			    want);
		}
		CU_ASSERT_EQUAL(set->ninstances, 0);
		finish();
	}
	unit_capture_start();
	CU_ASSERT_EQUAL(mh_declare_unused(NULL, MH_STAGE_BODY),
	    MH_E_INVALID);
	log = unit_capture_end(true);
	EXPECT_LOGGED(log, "mh_declare_unused called with a NULL init");
}

static void
test_negotiate_macros_union_with_defaults(void)
{
	struct mh_plugin d1 = test_plugin, d2 = test_plugin, d3 = test_plugin;

	d1.actions = MH_ACT_ADDHDRS;
	d2.actions = MH_ACT_ADDHDRS;
	d1.macros[MH_STAGE_CONNECT] = "{client_addr} j";
	d1.macros[MH_STAGE_ENVFROM] = "{i} {auth_authen} mail_addr x";
	d2.macros[MH_STAGE_CONNECT] = "client_addr {client_name}";
	d2.macros[MH_STAGE_EOH] = "{bar}";
	d2.macros[MH_STAGE_EOM] = "{msg_id} i";
	d3.actions = MH_ACT_CHGFROM;
	d3.macros[MH_STAGE_HELO] = "{tls_peer}";
	d3.macros[MH_STAGE_DATA] = "{data_thing}";
	fixture();
	add("p1", &d1, ON_ERROR_TEMPFAIL, false);
	add("p2", &d2, ON_ERROR_TEMPFAIL, false);
	add("p3", &d3, ON_ERROR_TEMPFAIL, false); /* disabled */
	start_offer(OFFER_ACTIONS & ~MH_ACT_CHGFROM, OFFER_STEPS);
	CU_ASSERT(neg.actions & ACT_SETSYMLIST);
	EXPECT_WORDS(neg.macros[MACRO_CONNECT],
	    "j {daemon_name} {daemon_addr} v _ {client_addr} {client_name}");
	EXPECT_WORDS(neg.macros[MACRO_HELO], NULL);
	EXPECT_WORDS(neg.macros[MACRO_ENVFROM], "i {auth_type} {auth_authen} "
	    "{auth_author} {mail_addr} {mail_host} {mail_mailer} x");
	EXPECT_WORDS(neg.macros[MACRO_ENVRCPT], NULL);
	EXPECT_WORDS(neg.macros[MACRO_DATA], NULL);
	EXPECT_WORDS(neg.macros[MACRO_EOH], "i {bar}");
	EXPECT_WORDS(neg.macros[MACRO_EOM], "i {msg_id}");
	finish();

	/* Every default list; one-letter names are written bare. */
	d1 = test_plugin;
	d1.macros[MH_STAGE_HELO] = "{h}";
	d1.macros[MH_STAGE_ENVRCPT] = "{r} rcpt_x";
	d1.macros[MH_STAGE_DATA] = "{d}";
	fixture();
	add("p1", &d1, ON_ERROR_TEMPFAIL, false);
	start();
	EXPECT_WORDS(neg.macros[MACRO_CONNECT], NULL);
	EXPECT_WORDS(neg.macros[MACRO_HELO], "{tls_version} {cipher} "
	    "{cipher_bits} {cert_subject} {cert_issuer} h");
	EXPECT_WORDS(neg.macros[MACRO_ENVRCPT],
	    "i {rcpt_addr} {rcpt_host} {rcpt_mailer} r {rcpt_x}");
	EXPECT_WORDS(neg.macros[MACRO_DATA], "i d");
	finish();
}

static void
test_negotiate_macros_need_setsymlist(void)
{
	struct mh_plugin d = test_plugin;
	struct verdict v;

	d.macros[MH_STAGE_CONNECT] = "{client_addr}";
	fixture();
	add("p1", &d, ON_ERROR_TEMPFAIL, false);
	start_offer(OFFER_ACTIONS & ~ACT_SETSYMLIST, OFFER_STEPS);
	CU_ASSERT_FALSE(neg.actions & ACT_SETSYMLIST);
	for (int i = 0; i < MACRO_STAGES; i++)
		CU_ASSERT_PTR_NULL(neg.macros[i]);
	/* The plugin is not switched off for it. */
	v = ev_connect();
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:connect");
	finish();
}

static void
test_no_plugins_left_asks_for_nothing(void)
{
	struct mh_plugin d = test_plugin;
	struct verdict v;

	d.actions = MH_ACT_QUARANTINE;
	d.flags = MH_WANT_HDR_LEADSPC | MH_WANT_REJECTED_RCPTS;
	d.macros[MH_STAGE_CONNECT] = "{client_addr}";
	fixture();
	add("p1", &d, ON_ERROR_TEMPFAIL, false);
	start_offer(OFFER_ACTIONS & ~MH_ACT_QUARANTINE, OFFER_STEPS);
	CU_ASSERT_EQUAL(neg.steps & NO_BITS, NO_BITS);
	CU_ASSERT_EQUAL(neg.steps & (NR_BITS | PROTO_RCPT_REJ |
	    PROTO_HDR_LEADSPC), 0);
	CU_ASSERT_EQUAL(neg.actions, 0);
	for (int i = 0; i < MACRO_STAGES; i++)
		CU_ASSERT_PTR_NULL(neg.macros[i]);
	v = ev_connect();
	EXPECT_STATUS(v, MH_ACCEPT);
	EXPECT_CALLS("");
	ev_close();
	EXPECT_CALLS("p1:close");
	finish();

	/* An empty set. */
	fixture();
	start();
	CU_ASSERT_EQUAL(neg.steps & NO_BITS, NO_BITS);
	CU_ASSERT_EQUAL(neg.actions, 0);
	v = ev_connect();
	EXPECT_STATUS(v, MH_ACCEPT);
	finish();
}

/* ---- tests: protocol emulation ------------------------------------------------ */

static mh_status
hook_leadspc_asker(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	if (p->count++ > 0)
		return MH_CONTINUE;
	keep(p, mh_header_add(ctx, "X-p1", " one"));
	keep(p, mh_header_add(ctx, "X-p1b", "one-b"));
	keep(p, mh_header_add(ctx, "X-p1c", "  sp"));
	return MH_CONTINUE;
}

static mh_status
hook_leadspc_other(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	if (p->count++ > 0)
		return MH_CONTINUE;
	keep(p, mh_header_add(ctx, "X-p2", "two"));
	keep(p, mh_header_insert(ctx, 1, "X-p2i", "three"));
	keep(p, mh_header_change(ctx, "Subject", 1, "four"));
	keep(p, mh_header_delete(ctx, "Received", 1));
	return MH_CONTINUE;
}

static void
leadspc_session(bool offered)
{
	struct mh_plugin asker = test_plugin;

	asker.flags = MH_WANT_HDR_LEADSPC;
	fixture();
	add("p1", &asker, ON_ERROR_TEMPFAIL, false);
	add_plain("p2");
	P[0]->hook[MH_STAGE_HEADER] = hook_leadspc_asker;
	P[1]->hook[MH_STAGE_HEADER] = hook_leadspc_other;
	start_offer(OFFER_ACTIONS, offered ? OFFER_STEPS :
	    OFFER_STEPS & ~PROTO_HDR_LEADSPC);
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	P[0]->seen[0] = P[1]->seen[0] = '\0';
}

static void
test_leading_space_emulation(void)
{
	const struct mod_list *mods;
	struct verdict v;

	/* Negotiated: the MTA sends and takes values as they are. */
	leadspc_session(true);
	CU_ASSERT(neg.steps & PROTO_HDR_LEADSPC);
	ev_header("Subject", " hello world");
	ev_header("X-Tab", "\tv");
	ev_header("X-Two", "  v");
	ev_header("X-None", "v");
	ev_header("X-Empty", "");
	EXPECT_STR(P[0]->seen, "[Subject= hello world][X-Tab=\\tv]"
	    "[X-Two=  v][X-None=v][X-Empty=]");
	EXPECT_STR(P[1]->seen, "[Subject=hello world][X-Tab=\\tv]"
	    "[X-Two= v][X-None=v][X-Empty=]");
	ev_eoh();
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-p1= one(p1) | add:X-p1b=one-b(p1) | "
	    "add:X-p1c=  sp(p1) | add:X-p2= two(p2) | "
	    "ins:1:X-p2i= three(p2) | chg:Subject:1= four(p2) | "
	    "del:Received:1(p2)");
	finish();

	/* Not negotiated: the MTA strips and adds the space itself. */
	leadspc_session(false);
	CU_ASSERT_FALSE(neg.steps & PROTO_HDR_LEADSPC);
	ev_header("Subject", "hello world");
	ev_header("X-Empty", "");
	EXPECT_STR(P[0]->seen, "[Subject= hello world][X-Empty= ]");
	EXPECT_STR(P[1]->seen, "[Subject=hello world][X-Empty=]");
	ev_eoh();
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "add:X-p1=one(p1) | add:X-p1b=one-b(p1) | "
	    "add:X-p1c= sp(p1) | add:X-p2=two(p2) | "
	    "ins:1:X-p2i=three(p2) | chg:Subject:1=four(p2) | "
	    "del:Received:1(p2)");
	finish();
}

static void
test_leading_space_not_negotiated_unless_asked(void)
{
	fixture();
	add_plain("p1");
	start();
	CU_ASSERT_FALSE(neg.steps & PROTO_HDR_LEADSPC);
	CU_ASSERT_FALSE(neg.steps & PROTO_RCPT_REJ);
	finish();
}

static void
test_rejected_rcpt_hidden_from_plugins_that_did_not_ask(void)
{
	struct mh_plugin asker = test_plugin;
	struct verdict v;

	asker.flags = MH_WANT_REJECTED_RCPTS;
	fixture();
	add_plain("p1");
	add("p2", &asker, ON_ERROR_TEMPFAIL, false);
	add_plain("p3");
	start();
	CU_ASSERT(neg.steps & PROTO_RCPT_REJ);
	connected();
	ev_from("<s@example.com>");
	take_calls();
	set_macro("{rcpt_mailer}", "error");
	v = ev_rcpt("<gone@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p2:envrcpt");
	set_macro("{rcpt_mailer}", "smtp");
	v = ev_rcpt("<ok@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:envrcpt p2:envrcpt p3:envrcpt");
	EXPECT_STR(P[0]->seen, "<s@example.com>;<ok@example.org>;");
	EXPECT_STR(P[1]->seen,
	    "<s@example.com>;<gone@example.org>;<ok@example.org>;");
	finish();

	/* Not offered: not negotiated. */
	fixture();
	add("p1", &asker, ON_ERROR_TEMPFAIL, false);
	start_offer(OFFER_ACTIONS, OFFER_STEPS & ~PROTO_RCPT_REJ);
	CU_ASSERT_FALSE(neg.steps & PROTO_RCPT_REJ);
	finish();
}

/* ---- tests: what the context gives plugins --------------------------------- */

static mh_status
hook_macros(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	note(p, "i=%s {i}=%s qid=%s auth=%s {auth_authen}=%s none=%s",
	    nz(mh_macro(ctx, "i")), nz(mh_macro(ctx, "{i}")),
	    nz(mh_queue_id(ctx)), nz(mh_macro(ctx, "auth_authen")),
	    nz(mh_macro(ctx, "{auth_authen}")),
	    nz(mh_macro(ctx, "{no_such_macro}")));
	mh_log(ctx, MH_LOG_NOTICE, "hello from %s", "the hook");
	return MH_CONTINUE;
}

static void
test_macros_and_log_reach_plugins(void)
{
	const char *log;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_macros;
	set_macro("{auth_authen}", "alice");
	start();
	connected();
	unit_capture_start();
	ev_address(true, "<s@example.com>", "SIZE=1000");
	log = unit_capture_end(true);
	EXPECT_STR(P[0]->notes, "i=" QID " {i}=" QID " qid=" QID
	    " auth=alice {auth_authen}=alice none=(null)");
	EXPECT_STR(P[0]->seen, "<s@example.com> SIZE=1000;");
	EXPECT_LOGGED(log, "hello from the hook");
	EXPECT_LOGGED(log, "p1");
	EXPECT_LOGGED(log, QID);
	finish();
}

/* ---- tests: the report hooks (for a trace, for metrics) ------------------ */

static char reports[4096];

static void
io_report(void *arg, const struct call_report *r)
{
	static const char *const failures[] = { "", " refused", " failed",
	    " bad-status", " observer" };

	append(reports, sizeof reports, "%s%s:%s:%s%s%s%s%s+%zu%s",
	    reports[0] ? " " : "", r->name, stage_names[r->stage],
	    status_label(r->status), failures[r->failure],
	    r->reply ? "(" : "", r->reply ? r->reply->rcode : "",
	    r->reply ? ")" : "", r->changes, r->dry_run ? "dry" : "");
	CU_ASSERT(r->ns > 0);
	CU_ASSERT_EQUAL(r->instance, (size_t)(r->name[1] - '1'));
}

static void
io_message_end(void *arg, const struct msg_summary *m)
{
	append(reports, sizeof reports, " | end %s by %s at %s",
	    status_label(m->result), nz(m->decider),
	    m->decider ? stage_names[m->stage] : "-");
}

/*
 * The MTA side may be told of every callback (instance, stage, status,
 * failure, reply, changes queued, time) and of every message's end: what
 * milterhost-replay traces and the metrics count.
 */
static void
test_report_hooks_see_every_call(void)
{
	static const struct chain_io reporting_io = {
		.macro = io_macro,
		.progress = io_progress,
		.arg = &progress_calls,
		.report = io_report,
		.message_end = io_message_end,
	};
	const struct mod_list *mods;
	struct tplug *dry;

	fixture();
	add_plain("p1");
	dry = add("p2", &test_plugin, ON_ERROR_TEMPFAIL, true);
	add_plain("p3");
	P[0]->hook[MH_STAGE_EOM] = hook_add;
	dry->status[MH_STAGE_ENVRCPT] = MH_REJECT;
	P[2]->status[MH_STAGE_DATA] = MH_FAIL;
	sess = session_new(set, &reporting_io);
	CU_ASSERT_FATAL(sess != NULL);
	memset(&neg, 0, sizeof neg);
	neg.mta_actions = OFFER_ACTIONS;
	neg.mta_steps = OFFER_STEPS;
	chain_negotiate(sess, &neg);
	reports[0] = '\0';
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	EXPECT_STR(reports, "p1:envfrom:CONTINUE+0 p2:envfrom:CONTINUE+0dry "
	    "p3:envfrom:CONTINUE+0 p1:envrcpt:CONTINUE+0 "
	    "p2:envrcpt:REJECT+0dry p3:envrcpt:CONTINUE+0 "
	    "p1:data:CONTINUE+0 p2:data:CONTINUE+0dry "
	    "p3:data:TEMPFAIL failed+0 p1:abort:CONTINUE+0 "
	    "p2:abort:CONTINUE+0dry p3:abort:CONTINUE+0 | end TEMPFAIL by p3 "
	    "at data");
	reports[0] = '\0';
	P[2]->status[MH_STAGE_DATA] = MH_CONTINUE;
	P[2]->status[MH_STAGE_EOM] = MH_REJECT;
	P[2]->reply[MH_STAGE_EOM] = (struct treply){ "554", NULL, "no" };
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_eom(&mods);
	/* Each got its eom: no abort follows. */
	CU_ASSERT_PTR_NOT_NULL(strstr(reports, "p1:eom:CONTINUE+1 "
	    "p2:eom:CONTINUE+0dry p3:eom:REJECT(554)+0 | end REJECT by p3 at "
	    "eom"));
	reports[0] = '\0';
	ev_close();
	EXPECT_STR(reports, "p1:close:CONTINUE+0 p2:close:CONTINUE+0dry "
	    "p3:close:CONTINUE+0");
	finish();
}

static void
test_session_without_io(void)
{
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_ENVFROM] = hook_macros;
	sess = session_new(set, NULL);
	CU_ASSERT_FATAL(sess != NULL);
	memset(&neg, 0, sizeof neg);
	neg.mta_actions = OFFER_ACTIONS;
	neg.mta_steps = OFFER_STEPS;
	chain_negotiate(sess, &neg);
	connected();
	v = ev_from("<s@example.com>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->notes, "i=(null) {i}=(null) qid=(null) "
	    "auth=(null) {auth_authen}=(null) none=(null)");
	finish();
}

static mh_status
hook_client_address(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	note(p, "%s", nz(mh_client_address(ctx)));
	return MH_CONTINUE;
}

static void
test_client_address_as_text(void)
{
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_CONNECT] = hook_client_address;
	P[0]->hook[MH_STAGE_ENVFROM] = hook_client_address;
	start();
	ev_connect();
	ev_from("<s@example.com>");
	EXPECT_STR(P[0]->notes, "192.0.2.1 192.0.2.1");
	chain_close(sess);
	session_free(sess);

	P[0]->notes[0] = '\0';
	start();
	memset(&sin6, 0, sizeof sin6);
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(25);
	inet_pton(AF_INET6, "2001:db8::1", &sin6.sin6_addr);
	ev_connect_addr((const struct sockaddr *)&sin6);
	chain_close(sess);
	session_free(sess);

	start();
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof sun.sun_path, "/run/client.sock");
	ev_connect_addr((const struct sockaddr *)&sun);
	chain_close(sess);
	session_free(sess);

	start();
	ev_connect_addr(NULL);
	EXPECT_STR(P[0]->notes, "2001:db8::1 /run/client.sock (null)");
	finish();
}

static mh_status
hook_progress(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_progress(ctx));
	return MH_CONTINUE;
}

static void
test_progress_reaches_mta(void)
{
	const struct mod_list *mods;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_EOM] = hook_progress;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_eom(&mods);
	EXPECT_STR(P[0]->rcs, "OK");
	CU_ASSERT_EQUAL(progress_calls, 1);
	finish();
}

static void
test_header_and_body_passed_unchanged(void)
{
	static const char chunk[] = "line one\r\nnul\0byte\r\n";
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	P[0]->seen[0] = '\0';
	ev_header("Subject", "folded\n\tline");
	ev_eoh();
	v = chain_body(sess, (const unsigned char *)chunk, sizeof chunk - 1);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->seen, "[Subject=folded\\n\\tline]"
	    "[body:20:line one\\r\\nnul\\0byte\\r\\n]");
	ev_eom(&mods);
	finish();
}

/* ---- tests: threads ---------------------------------------------------------- */

static mh_status
hook_save_ctx(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	p->saved_ctx = ctx;
	return p->status[mh_current_stage(ctx)];
}

/* A thread of the plugin's: p->n log lines with the saved ctx. */
static void *
log_lines_thread(void *arg)
{
	struct tplug *p = arg;

	for (int i = 0; i < p->n; i++)
		mh_log(p->saved_ctx, MH_LOG_INFO, "from a thread (%d)", i);
	return NULL;
}

/* Run body(p) on a thread of its own, with ctx saved in p, and join it
 * before the callback returns. */
static mh_status
in_thread(mh_ctx *ctx, struct tplug *p, void *(*body)(void *))
{
	pthread_t t;

	p->saved_ctx = ctx;
	if (pthread_create(&t, NULL, body, p) != 0)
		return MH_FAIL;
	pthread_join(t, NULL);
	return MH_CONTINUE;
}

/* Log from a thread, joined before the callback returns. */
static mh_status
hook_log_from_thread(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	return in_thread(ctx, p, log_lines_thread);
}

/*
 * A plugin's thread logs with the queue id the host kept at the latest
 * event, and never reads the MTA's macros itself (libmilter replaces them
 * on the session's thread).  The copy is forgotten when the message ends.
 */
static void
test_log_from_thread_uses_kept_queue_id(void)
{
	const struct mod_list *mods;
	char longqid[101], want[160];
	const char *log;

	fixture();
	add_plain("p1");
	P[0]->n = 1;
	P[0]->hook[MH_STAGE_CONNECT] = hook_log_from_thread;
	P[0]->hook[MH_STAGE_ENVFROM] = hook_log_from_thread;
	P[0]->hook[MH_STAGE_EOM] = hook_log_from_thread;
	set_macro("i", "Q1");
	start();
	unit_capture_start();
	ev_connect();
	set_macro("i", "Q2");
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_eom(&mods);
	/* Outside a callback, from the test's thread: allowed too. */
	mh_log(P[0]->saved_ctx, MH_LOG_INFO, "between messages");
	memset(longqid, 'A', 100);
	longqid[100] = '\0';
	set_macro("i", longqid);
	ev_from("<s@example.com>");
	log = unit_capture_end(true);
	EXPECT_LOGGED(log, "info: Q1: [p1] from a thread (0)\n");
	EXPECT_LOGGED(log, "info: Q2: [p1] from a thread (0)\n");
	EXPECT_LOGGED(log, "info: NOQUEUE: [p1] between messages\n");
	/* A queue id too long for the copy is cut. */
	snprintf(want, sizeof want, "info: %.63s: [p1] from a thread (0)\n",
	    longqid);
	EXPECT_LOGGED(log, want);
	CU_ASSERT_EQUAL(__atomic_load_n(&foreign_macro_calls,
	    __ATOMIC_SEQ_CST), 0);
	finish();
}

/* Log until close stops the thread (p->count, atomically). */
static void *
log_until_close_thread(void *arg)
{
	struct timespec pause = { 0, 20 * 1000 };
	struct tplug *p = arg;

	for (int i = 0; !__atomic_load_n(&p->count, __ATOMIC_SEQ_CST); i++) {
		mh_log(p->saved_ctx, MH_LOG_DEBUG, "running (%d)", i);
		__atomic_add_fetch(&p->logged, 1, __ATOMIC_SEQ_CST);
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* Wait (up to 2 s) until p's thread logged more than n lines. */
static void
wait_logged(struct tplug *p, unsigned n)
{
	struct timespec pause = { 0, 100 * 1000 };

	for (int i = 0; i < 20000 &&
	    __atomic_load_n(&p->logged, __ATOMIC_SEQ_CST) <= n; i++)
		nanosleep(&pause, NULL);
}

static mh_status
hook_start_thread(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	p->saved_ctx = ctx;
	if (pthread_create(&p->thread, NULL, log_until_close_thread, p) != 0)
		return MH_FAIL;
	return MH_CONTINUE;
}

static mh_status
hook_join_thread(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	__atomic_store_n(&p->count, 1, __ATOMIC_SEQ_CST);
	pthread_join(p->thread, NULL);
	return MH_CONTINUE;
}

/* Every line of log is one of the thread's, with a queue id from ids. */
static void
check_thread_lines(const char *log, const char *const *ids, size_t nids,
    int line)
{
	const char *p = log, *nl;

	for (; (nl = strchr(p, '\n')) != NULL; p = nl + 1) {
		bool ok = false;

		if (strncmp(p, "milterhost: debug: ", 19) != 0)
			continue;
		for (size_t i = 0; i < nids && !ok; i++) {
			size_t n = strlen(ids[i]);

			ok = strncmp(p + 19, ids[i], n) == 0 &&
			    strncmp(p + 19 + n, ": [p1] running (", 16) == 0;
		}
		check(ok, line, "bad line: %.*s", (int)(nl - p), p);
		if (!ok)
			return;
	}
}

/* A thread logs all through a session in which the queue id changes. */
static void
test_thread_logs_while_session_runs(void)
{
	static const char *const ids[] = { "NOQUEUE", "QA1", "QB22", "QC333" };
	const struct mod_list *mods;
	char id[8];
	const char *log;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_CONNECT] = hook_start_thread;
	P[0]->hook[MH_STAGE_CLOSE] = hook_join_thread;
	set_macro("i", "");
	start();
	unit_capture_start();
	ev_connect();
	for (int m = 0; m < 30; m++) {
		snprintf(id, sizeof id, "%s", ids[1 + m % 3]);
		set_macro("i", id);
		ev_from("<s@example.com>");
		ev_rcpt("<r@example.org>");
		ev_data();
		ev_header("Subject", "hello");
		ev_eoh();
		/* Let the thread log during every message. */
		wait_logged(P[0], __atomic_load_n(&P[0]->logged,
		    __ATOMIC_SEQ_CST));
		ev_body("hello\r\n");
		ev_eom(&mods);
	}
	ev_close();
	log = unit_capture_end(true);
	check_thread_lines(log, ids, 4, __LINE__);
	CU_ASSERT(P[0]->logged >= 30);
	CU_ASSERT_EQUAL(__atomic_load_n(&foreign_macro_calls,
	    __ATOMIC_SEQ_CST), 0);
	finish();
}

/* The key-value functions (ABI 1.4), with good arguments. */
static void
call_kv(mh_ctx *ctx, char *out, size_t size)
{
	long long n;
	char buf[8];
	size_t len;

	append(out, size, " %s", rc_name(mh_kv_get(ctx, "k", buf, sizeof buf,
	    &len)));
	append(out, size, " %s", rc_name(mh_kv_set(ctx, "k", "v", 1, 0)));
	append(out, size, " %s", rc_name(mh_kv_add(ctx, "k", "v", 1, 0)));
	append(out, size, " %s", rc_name(mh_kv_incr(ctx, "k", 1, 0, &n)));
	append(out, size, " %s", rc_name(mh_kv_delete(ctx, "k")));
}

/*
 * Every host function that needs a callback of ctx, called with it; the
 * results, in order, as "stage conn msg macro qid addr" (the value, or
 * "null") and then the return codes of the rest.
 */
static void
call_everything(mh_ctx *ctx, char *out, size_t size)
{
	static const char *const lines[] = { "one", "two" };
	static int bogus;
	mh_stage st;

	out[0] = '\0';
	st = mh_current_stage(ctx);
	append(out, size, "%s", st == MH_STAGE_COUNT ? "none" :
	    stage_names[st]);
	append(out, size, " %s", mh_conn_data(ctx) ? "conn" : "null");
	mh_set_conn_data(ctx, &bogus);
	append(out, size, " %s", mh_msg_data(ctx) ? "msg" : "null");
	mh_set_msg_data(ctx, &bogus);
	append(out, size, " %s", nz(mh_macro(ctx, "j")));
	append(out, size, " %s", nz(mh_queue_id(ctx)));
	append(out, size, " %s", nz(mh_client_address(ctx)));
	append(out, size, " %s", rc_name(mh_set_reply(ctx, "550", "5.7.1",
	    "x")));
	append(out, size, " %s", rc_name(mh_set_mlreply(ctx, "550", "5.7.1",
	    "a", "b", (char *)NULL)));
	append(out, size, " %s", rc_name(mh_set_reply_lines(ctx, "550",
	    "5.7.1", lines, 2)));
	append(out, size, " %s", rc_name(mh_header_add(ctx, "X-A", "v")));
	append(out, size, " %s", rc_name(mh_header_insert(ctx, 0, "X-A",
	    "v")));
	append(out, size, " %s", rc_name(mh_header_change(ctx, "X-A", 1,
	    "v")));
	append(out, size, " %s", rc_name(mh_header_delete(ctx, "X-A", 1)));
	append(out, size, " %s", rc_name(mh_body_replace(ctx, "b\r\n", 3)));
	append(out, size, " %s", rc_name(mh_rcpt_add(ctx, "<n@example.org>",
	    NULL)));
	append(out, size, " %s", rc_name(mh_rcpt_delete(ctx,
	    "<r@example.org>")));
	append(out, size, " %s", rc_name(mh_from_change(ctx,
	    "<f@example.org>", NULL)));
	append(out, size, " %s", rc_name(mh_quarantine(ctx, "held")));
	append(out, size, " %s", rc_name(mh_progress(ctx)));
	append(out, size, " %s", rc_name(mh_set_conn_data_free(ctx, &bogus,
	    free)));
	append(out, size, " %s", rc_name(mh_set_msg_data_free(ctx, &bogus,
	    free)));
	call_kv(ctx, out, size);
}

#define ALL_REFUSED "none null null (null) (null) (null) E_STAGE E_STAGE " \
	"E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE "  \
	"E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE E_STAGE " \
	"E_STAGE E_STAGE"

/* The host functions refused outside callbacks, each logged by name. */
static void
check_refusals_logged(const char *log, const char *inst, int line)
{
	static const char *const fns[] = {
		"mh_current_stage", "mh_conn_data", "mh_set_conn_data",
		"mh_msg_data", "mh_set_msg_data", "mh_macro", "mh_queue_id",
		"mh_client_address", "mh_set_reply", "mh_set_mlreply",
		"mh_set_reply_lines", "mh_header_add", "mh_header_insert",
		"mh_header_change", "mh_header_delete", "mh_body_replace",
		"mh_rcpt_add", "mh_rcpt_delete", "mh_from_change",
		"mh_quarantine", "mh_progress", "mh_set_conn_data_free",
		"mh_set_msg_data_free", "mh_kv_get", "mh_kv_set", "mh_kv_add",
		"mh_kv_incr", "mh_kv_delete",
	};
	char want[128];

	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		snprintf(want, sizeof want, "error: " QID ": [%s] %s called "
		    "outside a callback of its context: refused\n", inst,
		    fns[i]);
		check_has(log, want, line);
	}
}

/* Note what the connection and message slots hold now. */
static mh_status
hook_note_slots(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	note(p, "%s,%s", mh_conn_data(ctx) == &p->n ? "c" : "?",
	    mh_msg_data(ctx) == &p->count ? "m" : "?");
	return MH_CONTINUE;
}

static mh_status
hook_set_slots(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	p->saved_ctx = ctx;
	mh_set_conn_data(ctx, &p->n);
	mh_set_msg_data(ctx, &p->count);
	return MH_CONTINUE;
}

/*
 * Between callbacks, the ctx a plugin kept refuses everything but
 * logging and the instance's name and state, leaves the session alone
 * and logs each refusal.
 */
static void
test_session_calls_between_callbacks_refused(void)
{
	const struct mod_list *mods;
	struct verdict v;
	char got[512];
	const char *log;

	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	P[0]->hook[MH_STAGE_ENVFROM] = hook_set_slots;
	P[0]->hook[MH_STAGE_EOM] = hook_note_slots;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	unit_capture_start();
	call_everything(P[0]->saved_ctx, got, sizeof got);
	CU_ASSERT_PTR_EQUAL(mh_instance_state(P[0]->saved_ctx), P[0]);
	EXPECT_STR(mh_instance_name(P[0]->saved_ctx), "p1");
	log = unit_capture_end(true);
	EXPECT_STR(got, ALL_REFUSED);
	check_refusals_logged(log, "p1", __LINE__);
	/* Nothing changed: the slots, the changes, the verdicts. */
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "");
	EXPECT_STR(P[0]->notes, "c,m");
	finish();
}

/* A thread calling everything while a callback runs, joined before it
 * returns: all refused, and the callback does not fail. */
static void *
everything_thread(void *arg)
{
	struct tplug *p = arg;

	call_everything(p->saved_ctx, p->rcs, sizeof p->rcs);
	snprintf(p->seen, sizeof p->seen, "%s %s",
	    mh_instance_state(p->saved_ctx) == p ? "state" : "?",
	    nz(mh_instance_name(p->saved_ctx)));
	return NULL;
}

static mh_status
hook_everything_from_thread(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	return in_thread(ctx, p, everything_thread);
}

static void
test_session_calls_from_other_thread_refused(void)
{
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	P[0]->hook[MH_STAGE_ENVFROM] = hook_set_slots;
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_everything_from_thread;
	P[0]->hook[MH_STAGE_EOM] = hook_note_slots;
	start();
	connected();
	ev_from("<s@example.com>");
	unit_capture_start();
	v = ev_rcpt("<r@example.org>");
	log = unit_capture_end(true);
	/* Not failed: on_error = reject would have rejected. */
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_REPLY(v, NULL);
	EXPECT_STR(P[0]->rcs, ALL_REFUSED);
	EXPECT_STR(P[0]->seen, "state p1");
	check_refusals_logged(log, "p1", __LINE__);
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "");
	EXPECT_STR(P[0]->notes, "c,m");
	CU_ASSERT_EQUAL(progress_calls, 0);
	finish();
}

/* A callback of p2 using p1's ctx: refused, p1 is not running. */
static mh_status
hook_use_other_ctx(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	const struct tplug *other = p->aux;

	keep(p, mh_header_add(other->saved_ctx, "X-Other", "v"));
	return MH_CONTINUE;
}

static void
test_other_instance_ctx_refused(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	add("p2", &test_plugin, ON_ERROR_REJECT, false);
	P[0]->hook[MH_STAGE_ENVFROM] = hook_save_ctx;
	P[1]->hook[MH_STAGE_ENVRCPT] = hook_use_other_ctx;
	P[1]->aux = P[0];
	start();
	connected();
	ev_from("<s@example.com>");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[1]->rcs, "E_STAGE");
	v = ev_eom(&mods);
	EXPECT_MODS(mods, "");
	finish();
}

/* ---- tests: bad arguments -------------------------------------------------- */

/* mh_vlog with a NULL format, which mh_log cannot be given uncaught. */
static void
vlog_null(mh_ctx *ctx, ...)
{
	va_list ap;

	va_start(ap, ctx);
	mh_vlog(ctx, MH_LOG_INFO, NULL, ap);
	va_end(ap);
}

/* Every host function with a NULL context: refused and logged. */
static void
call_everything_null(char *out, size_t size)
{
	static const char *const lines[] = { "one" };

	out[0] = '\0';
	append(out, size, "%s", mh_instance_state(NULL) ? "state" : "null");
	append(out, size, " %s", nz(mh_instance_name(NULL)));
	append(out, size, " %s", mh_current_stage(NULL) == MH_STAGE_COUNT ?
	    "none" : "stage");
	append(out, size, " %s", mh_conn_data(NULL) ? "conn" : "null");
	mh_set_conn_data(NULL, out);
	append(out, size, " %s", mh_msg_data(NULL) ? "msg" : "null");
	mh_set_msg_data(NULL, out);
	append(out, size, " %s", nz(mh_macro(NULL, "i")));
	append(out, size, " %s", nz(mh_queue_id(NULL)));
	append(out, size, " %s", nz(mh_client_address(NULL)));
	mh_log(NULL, MH_LOG_INFO, "logged without a context (%d)", 1);
	vlog_null(NULL);
	append(out, size, " %s", rc_name(mh_set_reply(NULL, "550", "5.7.1",
	    "x")));
	append(out, size, " %s", rc_name(mh_set_mlreply(NULL, "550", "5.7.1",
	    "a", (char *)NULL)));
	append(out, size, " %s", rc_name(mh_set_reply_lines(NULL, "550",
	    "5.7.1", lines, 1)));
	append(out, size, " %s", rc_name(mh_header_add(NULL, "X-A", "v")));
	append(out, size, " %s", rc_name(mh_header_insert(NULL, 0, "X-A",
	    "v")));
	append(out, size, " %s", rc_name(mh_header_change(NULL, "X-A", 1,
	    "v")));
	append(out, size, " %s", rc_name(mh_header_delete(NULL, "X-A", 1)));
	append(out, size, " %s", rc_name(mh_body_replace(NULL, "b\r\n", 3)));
	append(out, size, " %s", rc_name(mh_rcpt_add(NULL, "<n@example.org>",
	    NULL)));
	append(out, size, " %s", rc_name(mh_rcpt_delete(NULL,
	    "<r@example.org>")));
	append(out, size, " %s", rc_name(mh_from_change(NULL,
	    "<f@example.org>", NULL)));
	append(out, size, " %s", rc_name(mh_quarantine(NULL, "held")));
	append(out, size, " %s", rc_name(mh_progress(NULL)));
	append(out, size, " %s", rc_name(mh_set_conn_data_free(NULL, out,
	    free)));
	append(out, size, " %s", rc_name(mh_set_msg_data_free(NULL, out,
	    free)));
	call_kv(NULL, out, size);
}

#define ALL_NULL_CTX "null (null) none null null (null) (null) (null) "   \
	"E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "    \
	"E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "    \
	"E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "    \
	"E_INVALID E_INVALID"

static mh_status
hook_null_ctx(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	call_everything_null(p->rcs, sizeof p->rcs);
	return MH_CONTINUE;
}

static void
test_null_context_refused(void)
{
	static const char *const fns[] = {
		"mh_instance_state", "mh_instance_name", "mh_current_stage",
		"mh_conn_data", "mh_set_conn_data", "mh_msg_data",
		"mh_set_msg_data", "mh_macro", "mh_queue_id",
		"mh_client_address", "mh_set_reply", "mh_set_mlreply",
		"mh_set_reply_lines", "mh_header_add", "mh_header_insert",
		"mh_header_change", "mh_header_delete", "mh_body_replace",
		"mh_rcpt_add", "mh_rcpt_delete", "mh_from_change",
		"mh_quarantine", "mh_progress", "mh_set_conn_data_free",
		"mh_set_msg_data_free", "mh_kv_get", "mh_kv_set", "mh_kv_add",
		"mh_kv_incr", "mh_kv_delete",
	};
	const struct mod_list *mods;
	struct verdict v;
	char got[512], want[128];
	const char *log;

	/* Outside any session. */
	unit_capture_start();
	call_everything_null(got, sizeof got);
	log = unit_capture_end(true);
	EXPECT_STR(got, ALL_NULL_CTX);
	for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
		snprintf(want, sizeof want, "error: %s called with a NULL "
		    "context: refused\n", fns[i]);
		EXPECT_LOGGED(log, want);
	}
	/* The plugin's line, without instance and queue id. */
	EXPECT_LOGGED(log, "milterhost: info: logged without a context (1)\n");
	EXPECT_LOGGED(log, "error: mh_log called with a NULL format: refused");

	/* From a callback: the same, and the callback does not fail. */
	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_null_ctx;
	start();
	connected();
	ev_from("<s@example.com>");
	unit_capture_start();
	v = ev_rcpt("<r@example.org>");
	unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, ALL_NULL_CTX);
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "");
	finish();
}

/* Each NULL or impossible argument, one call each. */
static mh_status
hook_null_args(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	static const char *const hole[] = { "one", NULL, "three" };
	static const char *const one[] = { "one" };

	keep(p, mh_header_add(ctx, NULL, "v"));
	keep(p, mh_header_add(ctx, "X-A", NULL));
	keep(p, mh_header_insert(ctx, 0, NULL, "v"));
	keep(p, mh_header_insert(ctx, 0, "X-A", NULL));
	keep(p, mh_header_change(ctx, NULL, 1, "v"));
	keep(p, mh_header_delete(ctx, NULL, 1));
	keep(p, mh_body_replace(ctx, NULL, 5));
	keep(p, mh_body_replace(ctx, "x", SIZE_MAX));
	keep(p, mh_rcpt_add(ctx, NULL, NULL));
	keep(p, mh_rcpt_add(ctx, NULL, "NOTIFY=NEVER"));
	keep(p, mh_rcpt_delete(ctx, NULL));
	keep(p, mh_from_change(ctx, NULL, NULL));
	keep(p, mh_from_change(ctx, NULL, "SIZE=1"));
	keep(p, mh_quarantine(ctx, NULL));
	keep(p, mh_set_reply(ctx, NULL, "5.7.1", "text"));
	keep(p, mh_set_reply(ctx, "550", "5.7.1", NULL));
	keep(p, mh_set_reply_lines(ctx, "550", "5.7.1", NULL, 3));
	keep(p, mh_set_reply_lines(ctx, "550", "5.7.1", NULL, 0));
	keep(p, mh_set_reply_lines(ctx, "550", "5.7.1", hole, 3));
	keep(p, mh_set_reply_lines(ctx, NULL, NULL, one, 1));
	keep(p, mh_set_mlreply(ctx, NULL, NULL, "one", (char *)NULL));
	keep(p, mh_set_mlreply(ctx, "550", "5.7.1", (char *)NULL));
	/* Getters: NULL, logged, no failure of their own. */
	note(p, "macro=%s", nz(mh_macro(ctx, NULL)));
	vlog_null(ctx);
	mh_log(ctx, 0, "emergency");
	mh_log(ctx, LOG_MAIL | MH_LOG_ERR, "with a facility");
	return MH_CONTINUE;
}

#define NULL_ARGS_RCS "E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID " \
	"E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "      \
	"E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID "      \
	"E_INVALID E_INVALID E_INVALID E_INVALID E_INVALID"

static void
test_null_arguments_refused(void)
{
	static const char *const why[] = {
		"NULL header name", "header X-A: NULL value",
		"replace body: NULL data", "replace body: impossible length",
		"NULL recipient", "NULL sender", "NULL quarantine reason",
		"reply code '(null)'", "reply line 1 is NULL",
		"bad reply: 3 lines at a NULL array",
		"a reply has 1 to 32 lines, not 0", "reply line 2 is NULL",
	};
	const struct mod_list *mods;
	struct verdict v;
	const char *log;

	fixture();
	add("p1", &test_plugin, ON_ERROR_CONTINUE, false);
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_null_args;
	start();
	connected();
	ev_from("<s@example.com>");
	unit_capture_start();
	v = ev_rcpt("<r@example.org>");
	log = unit_capture_end(true);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, NULL_ARGS_RCS);
	EXPECT_STR(P[0]->notes, "macro=(null)");
	for (size_t i = 0; i < sizeof why / sizeof why[0]; i++)
		EXPECT_LOGGED(log, why[i]);
	EXPECT_LOGGED(log, "error: " QID ": [p1] mh_macro called with a NULL "
	    "name\n");
	EXPECT_LOGGED(log, "error: [p1] mh_log called with a NULL format");
	/* Levels out of range are brought into MH_LOG_ERR..MH_LOG_DEBUG. */
	EXPECT_LOGGED(log, "milterhost: error: " QID ": [p1] emergency\n");
	EXPECT_LOGGED(log, "milterhost: debug: " QID ": [p1] with a facility\n");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_MODS(mods, "");
	finish();

	/* The refusals fail the callback: on_error reject refuses the
	 * recipient, and the next one goes through. */
	fixture();
	add("p1", &test_plugin, ON_ERROR_REJECT, false);
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_null_args;
	start();
	connected();
	ev_from("<s@example.com>");
	v = ev_rcpt("<r@example.org>");
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, NULL);
	P[0]->hook[MH_STAGE_ENVRCPT] = NULL;
	v = ev_rcpt("<r2@example.org>");
	EXPECT_STATUS(v, MH_CONTINUE);
	finish();
}

static mh_status
hook_empty_body(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_body_replace(ctx, NULL, 0));
	return MH_CONTINUE;
}

static mh_status
hook_body_then_nothing(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_body_replace(ctx, "ab", 2));
	keep(p, mh_body_replace(ctx, NULL, 0));
	keep(p, mh_body_replace(ctx, "x", SIZE_MAX - 1));
	return MH_CONTINUE;
}

/* mh_body_replace(ctx, NULL, 0) empties the body; after data it adds
 * nothing; a length that cannot be is refused. */
static void
test_body_replace_empty(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add("p1", &test_plugin, ON_ERROR_CONTINUE, false);
	P[0]->hook[MH_STAGE_EOM] = hook_empty_body;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "OK");
	EXPECT_MODS(mods, "body=(p1)");
	CU_ASSERT(mods != NULL && mods->n == 1 && mods->items[0]->len == 0);

	P[0]->hook[MH_STAGE_EOM] = hook_body_then_nothing;
	P[0]->rcs[0] = '\0';
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_STR(P[0]->rcs, "OK OK E_INVALID");
	EXPECT_MODS(mods, "body=ab(p1)");
	finish();
}

/* mh_progress outside eom: refused, and the callback fails. */
static void
test_progress_outside_eom_refused(void)
{
	struct verdict v;
	const char *log;

	fixture();
	add("p1", &test_plugin, ON_ERROR_TEMPFAIL, false);
	P[0]->hook[MH_STAGE_ENVRCPT] = hook_progress;
	start();
	connected();
	ev_from("<s@example.com>");
	unit_capture_start();
	v = ev_rcpt("<r@example.org>");
	log = unit_capture_end(true);
	EXPECT_STR(P[0]->rcs, "E_STAGE");
	EXPECT_STATUS(v, MH_TEMPFAIL);
	EXPECT_LOGGED(log, "progress at envrcpt: allowed at eom only");
	CU_ASSERT_EQUAL(progress_calls, 0);
	finish();
}

/* The host functions of init time with NULL arguments. */
static void
test_init_functions_with_null_arguments(void)
{
	const char *log;
	int b = 7;

	unit_capture_start();
	CU_ASSERT_EQUAL(mh_init_error(NULL, "key", "bad %s", "value"), -1);
	CU_ASSERT_EQUAL(mh_parse_bool(NULL, &b), -1);
	CU_ASSERT_EQUAL(mh_parse_bool("yes", NULL), -1);
	log = unit_capture_end(true);
	CU_ASSERT_EQUAL(b, 7);
	EXPECT_LOGGED(log, "error: mh_init_error called with a NULL init; "
	    "its message: bad value\n");
	EXPECT_LOGGED(log, "error: mh_parse_bool called with a NULL value");
	EXPECT_LOGGED(log, "error: mh_parse_bool called with a NULL result "
	    "pointer");
	CU_ASSERT_EQUAL(mh_parse_bool("on", &b), 0);
	CU_ASSERT_EQUAL(b, 1);
}

/* ---- main ------------------------------------------------------------------ */

/* ---- tests: seeing earlier changes (ABI 1.3) ----------------------- */

static int
declare_sees_earlier(const struct mh_init *init)
{
	return mh_declare_wishes(init, MH_WANT_EARLIER_CHANGES) == MH_OK ?
	    0 : -1;
}

/* p1's eom: add X-A, insert X-Top at 0, change Subject #1, delete X-Old
 * #1, replace the body. */
static mh_status
hook_edit_message(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_add(ctx, "X-A", "1"));
	keep(p, mh_header_insert(ctx, 0, "X-Top", "t"));
	keep(p, mh_header_change(ctx, "Subject", 1, "new"));
	keep(p, mh_header_delete(ctx, "X-Old", 1));
	keep(p, mh_body_replace(ctx, "new body\r\n", 10));
	return MH_CONTINUE;
}

/* p2's eom: change X-A #1 (which only its view has) and X-Old #2 (the
 * "c" of its view, where p1 deleted the "a"). */
static mh_status
hook_edit_seen(mh_ctx *ctx, struct tplug *p, const char *arg)
{
	keep(p, mh_header_change(ctx, "X-A", 1, "2"));
	keep(p, mh_header_change(ctx, "X-Old", 2, "z"));
	return MH_CONTINUE;
}

/*
 * An instance with MH_WANT_EARLIER_CHANGES after one that changes the
 * message sees, at the end, the headers and body as that one left them
 * (its content calls come after the other's eom, just before its own),
 * and its changes go out after the other's, counting the headers it saw.
 */
static void
test_earlier_changes_are_seen_at_the_end(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_EOM] = hook_edit_message;
	declare = declare_sees_earlier;
	add_plain("p2");
	declare = NULL;
	P[1]->hook[MH_STAGE_EOM] = hook_edit_seen;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_rcpt("<r@example.org>");
	ev_data();
	take_calls();
	ev_header("X-Old", "a");
	ev_header("Subject", "old");
	ev_header("X-Old", "b");
	ev_header("X-Old", "c");
	ev_eoh();
	ev_body("old body\r\n");
	EXPECT_CALLS("p1:header p1:header p1:header p1:header p1:eoh "
	    "p1:body");
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:header p2:header p2:header p2:header "
	    "p2:header p2:eoh p2:body p2:eom");
	EXPECT_STR(P[1]->seen, "<s@example.com>;<r@example.org>;"
	    "[X-Top=t][Subject=new][X-Old=b][X-Old=c][X-A=1]"
	    "[body:10:new body\\r\\n]");
	EXPECT_STR(P[1]->rcs, "OK OK");
	/* p2's change of X-Old #2 counts the headers after p1's deletion
	 * of #1: it goes out after it, not before as a higher index of
	 * the same view would. */
	EXPECT_MODS(mods, "add:X-A=1(p1) | ins:0:X-Top=t(p1) | "
	    "chg:Subject:1=new(p1) | del:X-Old:1(p1) | body=new body\\r\\n(p1)"
	    " | chg:X-A:1=2(p2) | chg:X-Old:2=z(p2)");
	finish();

	/* First in the chain, nothing before it can change anything: its
	 * calls come as the events arrive. */
	fixture();
	declare = declare_sees_earlier;
	add_plain("p1");
	declare = NULL;
	add_plain("p2");
	start();
	connected();
	ev_from("<s@example.com>");
	ev_data();
	take_calls();
	ev_header("Subject", "old");
	EXPECT_CALLS("p1:header p2:header");
	finish();
}

/*
 * A decision at one of the late content calls ends the message there
 * (its eom is not called); ACCEPT leaves the message; SKIP ends only the
 * body.
 */
static void
test_earlier_changes_decisions_on_the_way(void)
{
	const struct mod_list *mods;
	struct verdict v;

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_EOM] = hook_edit_message;
	declare = declare_sees_earlier;
	add_plain("p2");
	declare = NULL;
	P[1]->status[MH_STAGE_HEADER] = MH_REJECT;
	P[1]->reply[MH_STAGE_HEADER] = (struct treply){ "550", "5.7.1",
	    "seen and refused" };
	start();
	connected();
	ev_from("<s@example.com>");
	ev_data();
	ev_header("Subject", "old");
	ev_eoh();
	take_calls();
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_REJECT);
	EXPECT_REPLY(v, "550 5.7.1 seen and refused");
	/* p2's eom did not come: its abort does. */
	EXPECT_CALLS("p1:eom p2:header p2:abort");
	finish();

	fixture();
	add_plain("p1");
	P[0]->hook[MH_STAGE_EOM] = hook_edit_message;
	declare = declare_sees_earlier;
	add_plain("p2");
	declare = NULL;
	P[1]->status[MH_STAGE_BODY] = MH_SKIP;
	P[1]->status[MH_STAGE_EOH] = MH_CONTINUE;
	start();
	connected();
	ev_from("<s@example.com>");
	ev_data();
	ev_header("Subject", "old");
	ev_eoh();
	ev_body("x\r\n");
	take_calls();
	v = ev_eom(&mods);
	EXPECT_STATUS(v, MH_CONTINUE);
	EXPECT_CALLS("p1:eom p2:header p2:header p2:header p2:eoh p2:body "
	    "p2:eom");
	finish();
}

static const struct unit_test tests[] = {
	TEST(test_reject_at_rcpt_is_per_recipient),
	TEST(test_tempfail_at_rcpt_is_per_recipient),
	TEST(test_first_terminal_decision_wins),
	TEST(test_accept_removes_only_that_plugin),
	TEST(test_accept_at_connect_or_helo_is_for_the_connection),
	TEST(test_all_accept_answers_accept),
	TEST(test_all_accept_at_connect_answers_accept),
	TEST(test_accept_with_queued_mods_answers_continue),
	TEST(test_accept_at_eom_gets_no_abort),
	TEST(test_skip_in_body),
	TEST(test_skip_answer_needs_negotiated_skip),
	TEST(test_skip_ignores_plugins_without_body),
	TEST(test_on_error_tempfail_default),
	TEST(test_on_error_continue),
	TEST(test_on_error_accept),
	TEST(test_on_error_reject),
	TEST(test_on_error_at_connect_refuses_connection),
	TEST(test_invalid_status_goes_to_on_error),
	TEST(test_discard_at_connect_is_an_error),
	TEST(test_illegal_statuses_at_unknown_go_to_on_error),
	TEST(test_undeclared_action_is_refused_and_on_error),
	TEST(test_each_action_needs_its_declaration),
	TEST(test_bad_header_name_refused),
	TEST(test_bad_values_refused),
	TEST(test_modification_at_connect_is_refused),
	TEST(test_modification_outside_message_stages_refused),
	TEST(test_dry_run_reject_not_enforced),
	TEST(test_dry_run_mods_not_queued),
	TEST(test_mod_order_chain_then_call_order),
	TEST(test_mods_queued_before_eom_arrive_at_eom),
	TEST(test_header_changes_go_highest_index_first),
	TEST(test_body_replacement_later_plugin_wins),
	TEST(test_change_from_later_wins),
	TEST(test_quarantine_first_wins),
	TEST(test_queued_mods_dropped_on_reject),
	TEST(test_mod_entries_carry_their_arguments),
	TEST(test_reply_validation),
	TEST(test_reply_class_mismatch_with_decision_dropped),
	TEST(test_reply_does_not_outlive_stage),
	TEST(test_only_deciders_reply_sent),
	TEST(test_connect_reject_refuses_connection_and_only_close_follows),
	TEST(test_helo_tempfail_refuses_connection),
	TEST(test_discard_at_rcpt_ends_message),
	TEST(test_discard_at_body_ends_message),
	TEST(test_every_plugin_gets_close_once),
	TEST(test_eom_or_abort_exactly_once),
	TEST(test_new_helo_aborts_open_message),
	TEST(test_new_envfrom_aborts_open_message),
	TEST(test_msg_slot_cleared_after_eom),
	TEST(test_slot_destructor_runs_where_the_plugin_left_data),
	TEST(test_slot_destructor_not_called_for_a_cleared_slot),
	TEST(test_slot_replaced_gets_the_new_destructor_only),
	TEST(test_slot_destructors_run_when_session_freed_without_close),
	TEST(test_several_messages_per_connection),
	TEST(test_unknown_verdict_concerns_only_command),
	TEST(test_header_decision_given_at_next_answered_event),
	TEST(test_one_summary_line_per_message),
	TEST(test_summary_line_from_macros),
	TEST(test_score_reject_threshold),
	TEST(test_score_tempfail_threshold),
	TEST(test_score_header_records_contributions),
	TEST(test_score_dry_run_not_counted),
	TEST(test_score_plugin_reject_wins),
	TEST(test_score_keeps_message_to_its_end),
	TEST(test_score_arguments_checked),
	TEST(test_kv_namespaces),
	TEST(test_kv_operations),
	TEST(test_kv_refusal_does_not_fail_the_callback),
	TEST(test_kv_namespace_declarations_checked),
	TEST(test_cond_client_out_for_the_connection),
	TEST(test_cond_daemon_name),
	TEST(test_cond_message_conditions_per_message),
	TEST(test_cond_all_out_accepts_the_message),
	TEST(test_cond_missing_macro_is_false_logged_once),
	TEST(test_cond_rcpt_sees_matching_recipients),
	TEST(test_cond_rcpt_refused_recipients_do_not_count),
	TEST(test_cond_rcpt_envfrom_refusal_refuses_matching_recipients),
	TEST(test_cond_rcpt_envfrom_discard_discards_the_message),
	TEST(test_cond_rcpt_order_does_not_matter),
	TEST(test_cond_negotiation),
	TEST(test_cond_sender_from_macro),
	TEST(test_init_declarations_add_to_the_descriptor),
	TEST(test_bad_declaration_refuses_the_instance),
	TEST(test_observed_stages_are_not_answered),
	TEST(test_unused_stages_are_negotiated_away_and_not_called),
	TEST(test_earlier_changes_are_seen_at_the_end),
	TEST(test_earlier_changes_decisions_on_the_way),
	TEST(test_unused_stage_leaves_observers_alone),
	TEST(test_unused_refused_at_stages_that_always_come),
	TEST(test_negotiate_everything_implemented),
	TEST(test_negotiate_no_bits_for_unused_stages),
	TEST(test_negotiate_actions_union),
	TEST(test_plugin_needing_unoffered_action_disabled),
	TEST(test_negotiate_macros_union_with_defaults),
	TEST(test_negotiate_macros_need_setsymlist),
	TEST(test_no_plugins_left_asks_for_nothing),
	TEST(test_leading_space_emulation),
	TEST(test_leading_space_not_negotiated_unless_asked),
	TEST(test_rejected_rcpt_hidden_from_plugins_that_did_not_ask),
	TEST(test_macros_and_log_reach_plugins),
	TEST(test_report_hooks_see_every_call),
	TEST(test_session_without_io),
	TEST(test_client_address_as_text),
	TEST(test_progress_reaches_mta),
	TEST(test_header_and_body_passed_unchanged),
	TEST(test_log_from_thread_uses_kept_queue_id),
	TEST(test_thread_logs_while_session_runs),
	TEST(test_session_calls_between_callbacks_refused),
	TEST(test_session_calls_from_other_thread_refused),
	TEST(test_other_instance_ctx_refused),
	TEST(test_null_context_refused),
	TEST(test_null_arguments_refused),
	TEST(test_body_replace_empty),
	TEST(test_progress_outside_eom_refused),
	TEST(test_init_functions_with_null_arguments),
	TEST_END,
};

int
main(void)
{
	static const struct unit_suite suites[] = {
		{ "chain", NULL, NULL, tests },
		{ NULL, NULL, NULL, NULL },
	};

	/* Everything the engine logs goes to stderr, where tests look. */
	log_open(true, LOG_MAIL, LOG_DEBUG);
	main_thread = pthread_self();
	return unit_run(suites);
}

/*
 * bare_milter - the benchmark's floor: a plain libmilter milter that
 * answers continue to every event, every header included.
 *
 *	bare_milter -p SOCKETSPEC [-H] [-E] [-N]
 *
 * -p	where to listen, in libmilter's notation (unix:/path,
 *	inet:PORT@HOST).
 * -H	the header-adding variant: add "X-Bench: bare" at the end of every
 *	message.
 * -E	register the end-of-message callback only, so that libmilter asks
 *	the MTA to skip every other event (SMFIP_NO*), as milterhost does
 *	when its plugins want only the end of the message: with -H, the
 *	like-for-like rival of milterhost's header plugin.
 * -N	no reply for headers: negotiate SMFIP_NR_HDR and return
 *	SMFIS_NOREPLY from the header callback, so that the MTA sends the
 *	headers without waiting for an answer to each (libmilter answers
 *	continue in our stead if the MTA does not offer SMFIP_NR_HDR).
 *
 * It is libmilter as a milter author gets it, on purpose: it sets no
 * TCP_NODELAY, so over TCP the header variant's end-of-message answer (a
 * change, then the verdict) stalls about 40 ms on Nagle's algorithm and
 * the MTA's delayed ACK.  That stall is what the benchmark compares
 * milterhost against.  SIGTERM stops it.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

static bool add_header;
static bool no_header_reply;

static sfsistat
bare_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *addr)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_helo(SMFICTX *ctx, char *name)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_envfrom(SMFICTX *ctx, char **argv)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_envrcpt(SMFICTX *ctx, char **argv)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_data(SMFICTX *ctx)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_header(SMFICTX *ctx, char *name, char *value)
{
	return no_header_reply ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

static sfsistat
bare_eoh(SMFICTX *ctx)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_eom(SMFICTX *ctx)
{
	if (add_header && smfi_addheader(ctx, "X-Bench", "bare") !=
	    MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	return SMFIS_CONTINUE;
}

static sfsistat
bare_abort(SMFICTX *ctx)
{
	return SMFIS_CONTINUE;
}

static sfsistat
bare_close(SMFICTX *ctx)
{
	return SMFIS_CONTINUE;
}

/*
 * With -N: the steps libmilter derived from our callbacks, plus no reply
 * for headers, and only the actions we use.
 */
static sfsistat
bare_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0,
    unsigned long *pf1, unsigned long *pf2, unsigned long *pf3)
{
	*pf0 = add_header ? SMFIF_ADDHDRS : 0;
	*pf1 |= SMFIP_NR_HDR;
	*pf2 = 0;
	*pf3 = 0;
	return SMFIS_CONTINUE;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bare_milter -p SOCKETSPEC [-H] [-E] [-N]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	struct smfiDesc desc = {
		.xxfi_name = "bare_milter",
		.xxfi_version = SMFI_VERSION,
		.xxfi_connect = bare_connect,
		.xxfi_helo = bare_helo,
		.xxfi_envfrom = bare_envfrom,
		.xxfi_envrcpt = bare_envrcpt,
		.xxfi_header = bare_header,
		.xxfi_eoh = bare_eoh,
		.xxfi_body = bare_body,
		.xxfi_eom = bare_eom,
		.xxfi_abort = bare_abort,
		.xxfi_close = bare_close,
		.xxfi_data = bare_data,
	};
	const char *spec = NULL;
	int c;

	while ((c = getopt(argc, argv, "p:HEN")) != -1) {
		switch (c) {
		case 'p':
			spec = optarg;
			break;
		case 'H':
			add_header = true;
			break;
		case 'N':
			no_header_reply = true;
			break;
		case 'E':
			desc = (struct smfiDesc){
				.xxfi_name = "bare_milter",
				.xxfi_version = SMFI_VERSION,
				.xxfi_eom = bare_eom,
			};
			break;
		default:
			usage();
		}
	}
	if (spec == NULL || optind != argc)
		usage();
	if (add_header)
		desc.xxfi_flags = SMFIF_ADDHDRS;
	if (no_header_reply) {
		if (desc.xxfi_header == NULL)
			usage(); /* -E takes no headers */
		desc.xxfi_negotiate = bare_negotiate;
	}
	if (strncmp(spec, "unix:", 5) == 0)
		unlink(spec + 5);
	if (smfi_setconn((char *)spec) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "bare_milter: cannot set up %s\n", spec);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}

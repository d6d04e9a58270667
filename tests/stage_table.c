/*
 * stage_table - print the README's table "How the chain decides" from the
 * engine's stage table (src/stage.c), so that a test can check that the
 * two say the same thing (tests/readme_table.sh).
 *
 * A row per group of stages whose plugins' decisions mean the same, in
 * stage order of each group's first stage; abort and close, which are
 * not answered, have no row.
 */
#include <stdio.h>
#include <string.h>

#include "stage.h"

#define NOT_ALLOWED "not allowed: a failure (`on_error`)"

/* What a decision at a stage of this scope does, if it is allowed. */
static const char *
meaning(enum stage_scope scope, mh_status st)
{
	switch (st) {
	case MH_REJECT:
	case MH_TEMPFAIL:
		switch (scope) {
		case SCOPE_CONNECTION:
			return "the connection is refused (5xx/4xx); plugins "
			    "then get only `close`";
		case SCOPE_RECIPIENT:
			return "this recipient is refused; the message and "
			    "the chain go on";
		case SCOPE_MESSAGE:
			return "the message is refused";
		case SCOPE_COMMAND:
			return "the MTA's reply to the unknown command";
		default:
			return NULL;
		}
	case MH_DISCARD:
		return "the message is discarded";
	case MH_ACCEPT:
		return scope == SCOPE_CONNECTION ? "the plugin is done with "
		    "the connection (gets only `close`)" : "the plugin is "
		    "done with the message";
	case MH_SKIP:
		return "the plugin gets no more body chunks (still gets eom)";
	default:
		return NULL;
	}
}

static const mh_status columns[] = { MH_REJECT, MH_DISCARD, MH_ACCEPT,
    MH_SKIP };
#define NCOLUMNS (sizeof columns / sizeof columns[0])

/* The cells of stage's row. */
static void
cells(mh_stage stage, const char *out[NCOLUMNS])
{
	const struct stage_info *info = stage_info(stage);

	for (size_t c = 0; c < NCOLUMNS; c++)
		out[c] = stage_allows(stage, (int)columns[c]) ?
		    meaning(info->scope, columns[c]) : NOT_ALLOWED;
}

static int
same(const char *a[NCOLUMNS], const char *b[NCOLUMNS])
{
	for (size_t c = 0; c < NCOLUMNS; c++)
		if (strcmp(a[c], b[c]) != 0)
			return 0;
	return 1;
}

int
main(void)
{
	int done[MH_STAGE_COUNT] = { 0 };

	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++)
		if (stage_allows(st, MH_REJECT) != stage_allows(st,
		    MH_TEMPFAIL)) {
			fprintf(stderr, "stage_table: %s allows only one of "
			    "reject and tempfail\n", stage_name(st));
			return 1;
		}
	printf("| a plugin returns at... | `MH_REJECT` / `MH_TEMPFAIL` | "
	    "`MH_DISCARD` | `MH_ACCEPT` | `MH_SKIP` |\n");
	printf("| --- | --- | --- | --- | --- |\n");
	for (mh_stage st = 0; st < MH_STAGE_COUNT; st++) {
		const char *row[NCOLUMNS], *other[NCOLUMNS];

		if (done[st] || stage_info(st)->scope == SCOPE_END)
			continue;
		cells(st, row);
		printf("| %s", stage_name(st));
		for (mh_stage o = st + 1; o < MH_STAGE_COUNT; o++) {
			cells(o, other);
			if (!done[o] && stage_info(o)->scope != SCOPE_END &&
			    same(row, other)) {
				printf(", %s", stage_name(o));
				done[o] = 1;
			}
		}
		for (size_t c = 0; c < NCOLUMNS; c++)
			printf(" | %s", row[c]);
		printf(" |\n");
	}
	return 0;
}

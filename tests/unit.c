/*
 * unit - what the CUnit test programs share.  See unit.h.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "unit.h"

static FILE *capture_file;
static int saved_stderr = -1;
static char captured[256 * 1024];

int
unit_run(const struct unit_suite *suites)
{
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	for (const struct unit_suite *s = suites; s->name != NULL; s++) {
		CU_pSuite suite = CU_add_suite(s->name, s->init, s->cleanup);

		if (suite == NULL)
			goto fail;
		for (const struct unit_test *t = s->tests; t->name; t++)
			if (CU_add_test(suite, t->name, t->fn) == NULL)
				goto fail;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	if (CU_get_error() != CUE_SUCCESS)
		goto fail;
	CU_cleanup_registry();
	return failures == 0 ? 0 : 1;
fail:
	fprintf(stderr, "CUnit: %s\n", CU_get_error_msg());
	CU_cleanup_registry();
	return 1;
}

void
unit_capture_start(void)
{
	fflush(stderr);
	capture_file = tmpfile();
	CU_ASSERT_FATAL(capture_file != NULL);
	saved_stderr = dup(STDERR_FILENO);
	CU_ASSERT_FATAL(saved_stderr >= 0);
	CU_ASSERT_FATAL(dup2(fileno(capture_file), STDERR_FILENO) >= 0);
}

const char *
unit_capture_end(bool echo)
{
	size_t n;

	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	saved_stderr = -1;
	rewind(capture_file);
	n = fread(captured, 1, sizeof captured - 1, capture_file);
	captured[n] = '\0';
	fclose(capture_file);
	capture_file = NULL;
	if (echo)
		fputs(captured, stderr);
	return captured;
}

double
unit_cpu_seconds(void)
{
	struct timespec ts;

	CU_ASSERT_FATAL(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * unit - what the CUnit test programs share: running their suites, and
 * capturing what the code under test writes to stderr (the log).
 */
#ifndef MILTERHOST_TESTS_UNIT_H
#define MILTERHOST_TESTS_UNIT_H

#include <stdbool.h>

#include <CUnit/CUnit.h>

struct unit_test {
	const char *name;
	CU_TestFunc fn;
};

/* One entry of a list of tests; the list ends with TEST_END. */
#define TEST(fn) { #fn, fn }
#define TEST_END { NULL, NULL }

struct unit_suite {
	const char *name;              /* NULL ends the list of suites */
	CU_InitializeFunc init;        /* may be NULL */
	CU_CleanupFunc cleanup;        /* may be NULL */
	const struct unit_test *tests;
};

/* Run the suites, verbosely; returns main's status: 0 if every test
 * passed, 1 if one failed or CUnit itself did. */
int unit_run(const struct unit_suite *suites);

/*
 * Send stderr to a temporary file until unit_capture_end, which returns
 * what was written there (valid until the next capture), and also
 * passes it on to the real stderr if echo is set.
 */
void unit_capture_start(void);
const char *unit_capture_end(bool echo);

/* The CPU time the process used so far, in seconds. */
double unit_cpu_seconds(void);

#endif /* MILTERHOST_TESTS_UNIT_H */

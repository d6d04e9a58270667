/*
 * pattern - PCRE2 patterns of the bundled plugins.  See pattern.h.
 */
#include <stdio.h>

#include "pattern.h"

pcre2_code *
bundled_compile(const char *pattern, size_t len, uint32_t options,
		char *err, size_t errlen)
{
	PCRE2_UCHAR msg[256];
	PCRE2_SIZE offset;
	pcre2_code *code;
	int rc;

	code = pcre2_compile((PCRE2_SPTR)pattern, len, options, &rc, &offset,
	    NULL);
	if (code != NULL)
		return code;
	if (pcre2_get_error_message(rc, msg, sizeof msg) < 0)
		snprintf((char *)msg, sizeof msg, "error %d", rc);
	if (offset >= len)
		snprintf(err, errlen, "bad pattern /%.*s/: %s at its end",
		    (int)len, pattern, (char *)msg);
	else
		snprintf(err, errlen, "bad pattern /%.*s/: %s at character "
		    "%zu of the pattern", (int)len, pattern, (char *)msg,
		    (size_t)offset + 1);
	return NULL;
}

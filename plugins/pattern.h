/*
 * pattern - PCRE2 patterns of the bundled plugins (bcc, rules), compiled
 * at init with an error message that says where the pattern is wrong.
 *
 * A convenience library of its own, apart from support.c, so that only
 * the plugins that use PCRE2 link it.  Like support.c, each plugin file
 * gets its own copy, kept inside the file by plugins/plugin.sym.
 */
#ifndef PLUGINS_PATTERN_H
#define PLUGINS_PATTERN_H

#include <stddef.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/*
 * Compile the len bytes of pattern with PCRE2's options, without JIT
 * (the systemd unit forbids writable executable memory).  Returns the
 * compiled pattern, for the caller to free with pcre2_code_free(), or
 * NULL with the reason in err: "bad pattern /PATTERN/: PCRE2's reason
 * at character N of the pattern" (N counted from 1), or "at its end".
 */
pcre2_code *bundled_compile(const char *pattern, size_t len,
			    uint32_t options, char *err, size_t errlen);

#endif /* PLUGINS_PATTERN_H */

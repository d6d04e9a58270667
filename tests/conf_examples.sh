#!/bin/sh
# conf_examples.sh - the example configurations conf/mx.ini and
# conf/submission.ini load: milterhost -t accepts each (with the build's
# plugin directory), and lists the instances and conditions the example
# is about.  Exit statuses follow automake: 0 pass, 1 fail, 99 error.

if [ -z "${abs_top_srcdir:-}" ] || [ -z "${abs_top_builddir:-}" ]; then
	echo "ERROR: run the test with make check" >&2
	exit 99
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-conf.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
status=0

# check NAME WORDS...: conf/NAME.ini loads and milterhost -t says each of
# WORDS (fixed strings).
check() {
	name=$1
	shift
	sed "s|^socket = .*|&\nplugin_dir = $abs_top_builddir/plugins/.libs|" \
	    "$abs_top_srcdir/conf/$name.ini" >"$tmp/$name.ini" || exit 99
	if ! "$abs_top_builddir/src/milterhost" -t -c "$tmp/$name.ini" \
	    >"$tmp/$name.out" 2>&1; then
		echo "FAIL: conf/$name.ini: milterhost -t refuses it:"
		sed 's/^/    /' "$tmp/$name.out"
		status=1
		return
	fi
	for word in "$@"; do
		if ! grep -qF -- "$word" "$tmp/$name.out"; then
			echo "FAIL: conf/$name.ini: milterhost -t does not say" \
			    "'$word'"
			sed 's/^/    /' "$tmp/$name.out"
			status=1
			return
		fi
	done
	echo "ok: conf/$name.ini: $(head -n 1 "$tmp/$name.out" |
	    sed 's/^[^:]*: //')"
}

check mx "3 plugin instances" "[plugin:limit] rcptlimit" \
    "[plugin:spam] rules" "when if_client = " "and if_rcpt = " \
    "[plugin:tag] addheader"
check submission "2 plugin instances" "[plugin:privacy] rules" \
    "when if_daemon = submission" "and if_auth = yes" \
    "actions: change headers" "[plugin:archive] bcc" \
    "add recipients with arguments"
exit $status

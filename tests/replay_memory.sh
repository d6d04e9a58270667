#!/bin/bash
# replay_memory.sh - milterhost-replay streams: a message of 5,000 headers
# and a 50 MB body goes through a chain that takes every header and the
# whole body (rules with body_limit = 0, the recorder, addheader) in
# bounded memory, and -o writes it back byte for byte with the added
# header.
#
# Checked: the exit status and the result; the recorder was handed every
# header and the whole body with CR LF line ends (its byte count and
# POSIX cksum against cksum(1) of the body so converted), in chunks of
# 65535 bytes but the last; the delivered file equals the input with
# "X-Replayed: yes" after the last header (cmp); and the peak resident
# memory milterhost-replay reports (VmHWM) is under RSS_BOUND_KB, 20 MB:
# a replay holding the body would need more than 50 MB.  Under the
# sanitizers (libasan linked in) the bound is SAN_RSS_BOUND_KB, which
# still keeps the body out: ASan's own overhead is counted there.
#
# Exit statuses follow automake: 0 pass, 1 fail, 99 hard error.

RSS_BOUND_KB=20480
SAN_RSS_BOUND_KB=40960
BODY_BYTES=52428800
HEADERS=5000

if [ -z "${abs_top_builddir:-}" ]; then
	echo "ERROR: abs_top_builddir must be set (run the test with make" \
	    "check)" >&2
	exit 99
fi
replay=$abs_top_builddir/src/milterhost-replay
recorder=$abs_top_builddir/tests/plugins/.libs/recorder.so
for f in "$replay" "$recorder"; do
	if [ ! -e "$f" ]; then
		echo "ERROR: $f is missing: run make check" >&2
		exit 99
	fi
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/milterhost-replay-memory.XXXXXX") || exit 99
trap 'rm -rf "$tmp"' EXIT
status=0
fail() {
	echo "FAIL: $*"
	status=1
}

cat >"$tmp/big.ini" <<EOF
[milterhost]
plugin_dir = $abs_top_builddir/plugins/.libs
strict_modes = no
log_level = notice

[plugin:rules]
module = rules
body_limit = 0
rule = body /this line is not in the body/ reject
rule = header:X-Header-4999 /number 4999/ score 1 seen

[plugin:rec]
module = $recorder

[plugin:tag]
module = addheader
header = X-Replayed
value = yes
EOF

# 80-byte lines: the body ends with a whole line.
{
	seq 1 $HEADERS | sed 's/.*/X-Header-&: value number & of the test/'
	printf 'From: a@example.test\nTo: b@example.test\nSubject: big\n'
} >"$tmp/headers"
yes 'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.' |
    head -c $BODY_BYTES >"$tmp/body"
{ cat "$tmp/headers"; echo; cat "$tmp/body"; } >"$tmp/big.eml"
{ cat "$tmp/headers"; echo "X-Replayed: yes"; echo; cat "$tmp/body"; } \
    >"$tmp/expected.eml"
set -- $(sed 's/$/\r/' "$tmp/body" | cksum)
want_sum=$1 want_len=$2
rm -f "$tmp/body"

start=$(date +%s.%N)
"$replay" -q -c "$tmp/big.ini" -o "$tmp/out.eml" "$tmp/big.eml" \
    >"$tmp/trace" 2>"$tmp/log"
rc=$?
end=$(date +%s.%N)
seconds=$(echo "$start $end" | awk '{ printf "%.1f", $2 - $1 }')
cat "$tmp/trace"

if [ $rc -ne 0 ] || ! grep -q '^result 1 accepted at eom changes=1 ' \
    "$tmp/trace"; then
	fail "milterhost-replay exited $rc, not 0 with the message accepted"
	tail -5 "$tmp/log"
fi
n=$(grep -c '\[rec\] rec header ' "$tmp/log")
[ "$n" -eq $((HEADERS + 3)) ] ||
    fail "the recorder was handed $n headers, not $((HEADERS + 3))"
if grep -q "\[rec\] rec eom total=$want_len cksum=$want_sum\$" "$tmp/log"
then
	echo "ok: the whole body reached the plugins: $want_len bytes with" \
	    "CR LF line ends, cksum $want_sum"
else
	fail "the body reached the plugins otherwise than $want_len bytes," \
	    "cksum $want_sum: $(grep 'rec eom' "$tmp/log")"
fi
chunks=$(grep -c '\[rec\] rec body ' "$tmp/log")
short=$(grep '\[rec\] rec body ' "$tmp/log" | grep -vc 'len=65535 ')
if [ "$chunks" -eq $(((want_len + 65534) / 65535)) ] && [ "$short" -le 1 ]
then
	echo "ok: in $chunks chunks of 65535 bytes (the last shorter)"
else
	fail "$chunks body chunks, $short not of 65535 bytes"
fi
if cmp "$tmp/expected.eml" "$tmp/out.eml"; then
	echo "ok: -o wrote the message byte for byte, with the added header"
else
	fail "-o's message is not the input with X-Replayed: yes added"
fi

kb=$(sed -n 's/^total .* peak_rss=\([0-9]*\)kB$/\1/p' "$tmp/trace")
bound=$RSS_BOUND_KB
if ldd "$replay" 2>/dev/null | grep -q libasan; then
	bound=$SAN_RSS_BOUND_KB
fi
if [ -z "$kb" ]; then
	fail "milterhost-replay reported no peak_rss"
elif [ "$kb" -lt "$bound" ]; then
	echo "ok: $HEADERS headers and a $((BODY_BYTES / 1048576)) MB body" \
	    "replayed in ${seconds} s with a peak RSS of $kb kB (bound" \
	    "$bound kB)"
else
	fail "peak RSS $kb kB, not under $bound kB"
fi
[ $status -eq 0 ] && echo "PASS: replay_memory"
exit $status

#!/bin/bash
# metrics.sh - the /metrics endpoint (metrics_listen) after a known
# sequence of sessions (metrics.lua), read over HTTP and checked exactly:
# connections, messages by result and by decider, the instance's callbacks
# per stage, decisions, failures, changes, its slow callbacks (and the
# log line of the slow one), the callback-time histogram; then a reload,
# counted.  promtool (Debian: prometheus) must accept the output (skipped,
# saying so, without it).  contrib/grafana-dashboard.json must be JSON
# whose queries name only metrics the endpoint serves.  Other paths get
# 404, other methods 405.

here=$(cd "$(dirname "$0")" && pwd) || exit 99
. "$here/lib.sh" || exit 99

wire_init metrics
wire_need_miltertest
plugin=$abs_top_builddir/tests/plugins/.libs/scripted.so
[ -f "$plugin" ] || wire_error "$plugin is missing: run make check"

port=$(wire_free_port)

ini=$(wire_config metrics <<CONF
metrics_listen = 127.0.0.1:$port

[plugin:a]
module = $plugin
slow_ms = 100
do = @accepted eom add_header X-A 1
do = @accepted eom add_header X-B 2
do = @refused data reject 550 5.7.1 not wanted
do = @failing envfrom fail
do = @slow eom sleep 250
CONF
) || exit 99
wire_start "$ini" || wire_exit

# metric LINE-START: the value of the one series whose line starts so.
metric() {
	grep -F -- "$1} " "$WIRE_TMP/metrics.txt" | sed 's/.* //'
}

wire_miltertest "$here/metrics.lua" ||
    wire_fail "the sessions did not go as planned"
# The last close is counted once the daemon has seen it.
for i in $(seq 50); do
	wire_scrape "$port"
	grep -qx "milterhost_connections_open 0" "$WIRE_TMP/metrics.txt" &&
	    break
	sleep 0.1
done

I='instance="a"'
wire_expect_metrics "milterhost_connections_total 5" "milterhost_connections_open 0" \
    "milterhost_plugin_set_generation 1" &&
    echo "ok: 5 connections, none open, plugin set generation 1"
wire_expect_metrics 'milterhost_messages_total{result="accepted"} 2' \
    'milterhost_messages_total{result="rejected"} 1' \
    'milterhost_messages_total{result="tempfailed"} 1' \
    'milterhost_messages_total{result="discarded"} 0' \
    'milterhost_messages_total{result="aborted"} 1' \
    'milterhost_messages_decided_total{decider="a",result="rejected"} 1' \
    'milterhost_messages_decided_total{decider="a",result="tempfailed"} 1' \
    'milterhost_messages_decided_total{decider="(score)",result="rejected"} 0' &&
    echo "ok: messages: 2 accepted, 1 rejected and 1 tempfailed by a," \
    "1 aborted"
# Calls per stage: connect, helo and close 5 times, MAIL FROM 5, RCPT 8
# (two in each of accepted, slow, refused and aborted), DATA 3, headers
# 4, eoh 2, body 4, eom 2, abort 3 (refused, failing, aborted).
calls=
ok=yes
for sc in connect:5 helo:5 envfrom:5 envrcpt:8 data:3 header:4 eoh:2 \
    body:4 eom:2 abort:3 close:5; do
	st=${sc%%:*}
	n=${sc#*:}
	calls="$calls${calls:+ }$st $n"
	wire_expect_metrics "milterhost_instance_callbacks_total{$I,stage=\"$st\"} $n" \
	    "milterhost_instance_callback_seconds_count{$I,stage=\"$st\"} $n" \
	    "milterhost_instance_callback_seconds_bucket{$I,stage=\"$st\",le=\"+Inf\"} $n" ||
	    ok=no
done
[ $ok = yes ] && echo "ok: a's callbacks by stage, and its histogram" \
    "counts: $calls"
wire_expect_metrics "milterhost_instance_decisions_total{$I,decision=\"continue\"} 36" \
    "milterhost_instance_decisions_total{$I,decision=\"reject\"} 1" \
    "milterhost_instance_decisions_total{$I,decision=\"tempfail\"} 1" \
    "milterhost_instance_decisions_total{$I,decision=\"accept\"} 0" \
    "milterhost_instance_failures_total{$I,kind=\"callback_failed\"} 1" \
    "milterhost_instance_failures_total{$I,kind=\"refused_request\"} 0" \
    "milterhost_instance_changes_total{$I,kind=\"add_header\"} 2" \
    "milterhost_instance_changes_total{$I,kind=\"replace_body\"} 0" &&
    echo "ok: a's decisions (36 continue, 1 reject, 1 tempfail)," \
    "1 failure, 2 headers added"
wire_expect_metrics "milterhost_instance_slow_callbacks_total{$I,stage=\"eom\"} 1" \
    "milterhost_instance_slow_callbacks_total{$I,stage=\"data\"} 0" &&
    echo "ok: one slow callback counted, at eom"
if grep -Eq 'warning: [^ ]+: \[a\] eom took 2[0-9][0-9]\.[0-9] ms \(slow_ms = 100\)' \
    "$WIRE_LOG"; then
	echo "ok: logged: $(grep -Eo '\[a\] eom took .*' "$WIRE_LOG")"
else
	wire_fail "no log line for the slow callback"
fi
# The slow eom is in the 0.5 s bucket, not in the 0.1 s one.
le01=$(metric "milterhost_instance_callback_seconds_bucket{$I,stage=\"eom\",le=\"0.1\"")
le05=$(metric "milterhost_instance_callback_seconds_bucket{$I,stage=\"eom\",le=\"0.5\"")
if [ "$le01" = 1 ] && [ "$le05" = 2 ]; then
	echo "ok: eom times: 1 within 0.1 s, 2 within 0.5 s"
else
	wire_fail "eom buckets: le 0.1 '$le01' (want 1), le 0.5 '$le05'" \
	    "(want 2)"
fi

# Prometheus's own check of the format.
if command -v promtool >/dev/null 2>&1; then
	if promtool check metrics <"$WIRE_TMP/metrics.txt" \
	    >"$WIRE_TMP/promtool.out" 2>&1; then
		echo "ok: promtool check metrics accepts the output"
	else
		wire_fail "promtool check metrics: $(cat "$WIRE_TMP/promtool.out")"
	fi
else
	echo "skip: promtool is not installed (Debian: apt-get install" \
	    "prometheus): the format is not checked by it"
fi

# The HTTP side: content type, 404, 405.
wire_http "$port" GET /metrics
if grep -qi '^Content-Type: text/plain; version=0.0.4' "$WIRE_TMP/http.out"
then
	echo "ok: GET /metrics: $(head -n 1 "$WIRE_TMP/http.out" |
	    tr -d '\r'), in the Prometheus text format"
else
	wire_fail "GET /metrics: $(head -n 3 "$WIRE_TMP/http.out")"
fi
wire_http "$port" GET /other
if head -n 1 "$WIRE_TMP/http.out" | grep -q ' 404 '; then
	echo "ok: GET /other: 404"
else
	wire_fail "GET /other: $(head -n 1 "$WIRE_TMP/http.out")"
fi
wire_http "$port" POST /metrics
if head -n 1 "$WIRE_TMP/http.out" | grep -q ' 405 '; then
	echo "ok: POST /metrics: 405"
else
	wire_fail "POST /metrics: $(head -n 1 "$WIRE_TMP/http.out")"
fi

# A reload: counted, a new generation, the counters kept.
kill -USR1 "$WIRE_PID"
for i in $(seq 50); do
	wire_scrape "$port"
	grep -qx 'milterhost_reloads_total{result="succeeded"} 1' \
	    "$WIRE_TMP/metrics.txt" && break
	sleep 0.1
done
wire_expect_metrics 'milterhost_reloads_total{result="succeeded"} 1' \
    "milterhost_plugin_set_generation 2" \
    "milterhost_instance_callbacks_total{$I,stage=\"eom\"} 2" &&
    echo "ok: a reload: counted, generation 2, a's counters kept"

# The dashboard: JSON, and every metric it queries is served.
dash=$abs_top_srcdir/contrib/grafana-dashboard.json
if ! perl -MJSON::PP -e 'local $/; decode_json(<STDIN>)' <"$dash" \
    2>"$WIRE_TMP/json.err"; then
	wire_fail "$dash is not JSON: $(cat "$WIRE_TMP/json.err")"
else
	names=$(grep -o 'milterhost_[a-z_]*' "$dash" | sort -u)
	unknown=
	for n in $names; do
		grep -q "^$n" "$WIRE_TMP/metrics.txt" || unknown="$unknown $n"
	done
	if [ -z "$unknown" ] && [ -n "$names" ]; then
		echo "ok: the dashboard is JSON and queries" \
		    "$(echo $names | wc -w) metrics the endpoint serves"
	else
		wire_fail "the dashboard queries unknown metrics:$unknown"
	fi
fi
wire_stop
wire_exit

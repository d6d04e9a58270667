# instance.sh - a private Postfix instance on loopback, for the end-to-end
# tests and the end-to-end benchmark.  It never touches the system's
# Postfix: it has its own configuration, queue and data directories under
# one directory, listens only on 127.0.0.1, relays everything to an
# smtp-sink on loopback, and logs to a file of its own.
#
# Sourced by sh scripts, which then use:
#
#	pf_available		0 if postfix, postconf, smtp-sink and
#				smtp-source are installed and we are root;
#				else 1, with the reason in $PF_WHY
#	pf_create DIR SINKPORT [dump]
#				make the instance in DIR (which must not
#				exist): DIR/etc (main.cf, master.cf),
#				DIR/queue, DIR/data, DIR/maillog; mail
#				goes on to smtp-sink on 127.0.0.1:SINKPORT,
#				which with "dump" writes every message it
#				receives to a file of its own in DIR/sink/
#				(for tests that look at what was delivered)
#	pf_main DIR NAME=VALUE...
#				set main.cf parameters
#	pf_smtpd DIR PORT [NAME=VALUE...]
#				add an smtpd on 127.0.0.1:PORT, with the
#				given parameters as -o overrides (an empty
#				VALUE is allowed: smtpd_milters=)
#	pf_start DIR		start the sink and the instance; wait until
#				every smtpd answers
#	pf_stop DIR		stop both (also safe if they never started)
#	pf_queued DIR		how many messages sit in the queue
#	pf_wait_empty DIR SECONDS
#				wait until the queue is empty; 1 on timeout
#	pf_wait_count DIR PATTERN N SECONDS
#				wait until pf_count gives at least N
#				(postlogd writes the maillog a little
#				after the fact); 1 on timeout
#	pf_count DIR PATTERN	how many lines of the maillog match the
#				extended regular expression PATTERN
#	pf_trouble DIR		how many lines of the maillog tell of a
#				deferral, bounce, fatal error, panic or
#				warning, leaving out the warnings about the
#				machine's clock (a file system clock ahead
#				of the local one, time stamps reset), which
#				say something of the host, not of the mail
#	pf_listening PORT	0 if something listens on 127.0.0.1:PORT
#	pf_wait_listening PORT WHAT
#				wait up to 10 s for it; 1, saying so, if not
#	pf_free_ports COUNT	print a port P such that nothing listens on
#				127.0.0.1:P to P+COUNT-1 (for the sink, the
#				smtpds and the caller's own servers)
#
# Postfix's daemons run as the postfix user and must reach DIR and the
# milter sockets: DIR's parents must be searchable by others (a mktemp -d
# directory must be chmod 755), and unix milter sockets need mode 0666.
# "postfix start" prints its errors only to a terminal or the maillog:
# on a failure pf_start shows the maillog.

PF_WHY=

pf_available() {
	for p in postfix postconf smtp-sink smtp-source; do
		if ! command -v "$p" >/dev/null 2>&1; then
			PF_WHY="$p is not installed (Debian: apt-get install postfix)"
			return 1
		fi
	done
	if [ "$(id -u)" != 0 ]; then
		PF_WHY="a private Postfix instance must be started as root"
		return 1
	fi
	if ! id postfix >/dev/null 2>&1; then
		PF_WHY="there is no postfix user (is postfix installed?)"
		return 1
	fi
	return 0
}

# Postfix's programs live in /usr/sbin, which a non-login PATH may lack.
case ":$PATH:" in
*:/usr/sbin:*) ;;
*) PATH=$PATH:/usr/sbin ;;
esac

pf_create() {
	pf_dir=$1
	mkdir "$pf_dir" "$pf_dir/etc" "$pf_dir/queue" "$pf_dir/data" || return 1
	chmod 755 "$pf_dir"
	chown postfix "$pf_dir/data"
	echo "$2" >"$pf_dir/sinkport"
	if [ "${3:-}" = dump ]; then
		mkdir "$pf_dir/sink"
		chown nobody "$pf_dir/sink"
	fi
	# "postfix start" runs post-install, which reads postfix-files from
	# the meta_directory.
	cp /etc/postfix/postfix-files "$pf_dir/etc/"
	if [ -d /etc/postfix/postfix-files.d ]; then
		cp -r /etc/postfix/postfix-files.d "$pf_dir/etc/"
	fi
	cat >"$pf_dir/etc/main.cf" <<MAIN
compatibility_level = 3.6
config_directory = $pf_dir/etc
meta_directory = $pf_dir/etc
queue_directory = $pf_dir/queue
data_directory = $pf_dir/data
maillog_file = $pf_dir/maillog
maillog_file_prefixes = $pf_dir
myhostname = mx.milterhost.test
mydomain = milterhost.test
myorigin = milterhost.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
relayhost = [127.0.0.1]:$2
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_tls_security_level = none
smtp_tls_security_level = none
smtp_dns_support_level = disabled
disable_dns_lookups = yes
biff = no
milter_default_action = tempfail
MAIN
	# The services Postfix needs to take mail in and pass it on, none of
	# them chrooted; the smtpd services come from pf_smtpd.
	cat >"$pf_dir/etc/master.cf" <<'MASTER'
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MASTER
}

pf_main() {
	pf_dir=$1
	shift
	postconf -c "$pf_dir/etc" -e "$@"
}

pf_smtpd() {
	pf_dir=$1
	pf_line="127.0.0.1:$2 inet n - n - - smtpd"
	echo "$2" >>"$pf_dir/smtpd_ports"
	shift 2
	for pf_o in "$@"; do
		pf_line="$pf_line
  -o $pf_o"
	done
	echo "$pf_line" >>"$pf_dir/etc/master.cf"
}

# pf_listening PORT: 0 if something listens on 127.0.0.1:PORT (TCP).
pf_listening() {
	awk -v want="$(printf '0100007F:%04X' "$1")" '
	    $2 == want && $4 == "0A" { found = 1 }
	    END { exit !found }' /proc/net/tcp
}

# pf_wait_listening PORT WHAT: wait up to 10 s; on a timeout, say so.
pf_wait_listening() {
	pf_n=0
	until pf_listening "$1"; do
		pf_n=$((pf_n + 1))
		if [ $pf_n -gt 100 ]; then
			echo "instance.sh: $2 does not listen on" \
			    "127.0.0.1:$1" >&2
			return 1
		fi
		sleep 0.1
	done
}

pf_free_ports() {
	# Below the ephemeral ports (32768 on) that connections take.
	pf_base=$((20000 + $$ % 12000))
	pf_k=0
	while [ $pf_k -lt "$1" ]; do
		if pf_listening $((pf_base + pf_k)); then
			pf_base=$((pf_base + pf_k + 1))
			pf_k=0
		else
			pf_k=$((pf_k + 1))
		fi
	done
	echo $pf_base
}

pf_start() {
	pf_dir=$1
	pf_sink=$(cat "$pf_dir/sinkport")
	# smtp-sink, as nobody, with a listen queue as deep as Postfix's
	# smtp clients can fill.
	if [ -d "$pf_dir/sink" ]; then
		set -- -d "$pf_dir/sink/msg."
	else
		set --
	fi
	smtp-sink -u nobody "$@" "127.0.0.1:$pf_sink" 256 \
	    >"$pf_dir/sink.log" 2>&1 &
	echo $! >"$pf_dir/sink.pid"
	pf_wait_listening "$pf_sink" smtp-sink || return 1
	if ! postfix -c "$pf_dir/etc" start >"$pf_dir/start.log" 2>&1; then
		echo "instance.sh: postfix -c $pf_dir/etc start failed:" >&2
		cat "$pf_dir/start.log" "$pf_dir/maillog" >&2 2>/dev/null
		return 1
	fi
	for pf_p in $(cat "$pf_dir/smtpd_ports" 2>/dev/null); do
		if ! pf_wait_listening "$pf_p" "Postfix's smtpd"; then
			cat "$pf_dir/maillog" >&2 2>/dev/null
			return 1
		fi
	done
}

pf_stop() {
	pf_dir=$1
	if [ -f "$pf_dir/queue/pid/master.pid" ]; then
		postfix -c "$pf_dir/etc" stop >/dev/null 2>&1 || :
		# "postfix stop" returns at once; wait for the master to go.
		pf_m=$(tr -d ' ' <"$pf_dir/queue/pid/master.pid")
		pf_n=0
		while [ -n "$pf_m" ] && kill -0 "$pf_m" 2>/dev/null &&
		    [ $pf_n -lt 100 ]; do
			sleep 0.1
			pf_n=$((pf_n + 1))
		done
	fi
	if [ -f "$pf_dir/sink.pid" ]; then
		kill "$(cat "$pf_dir/sink.pid")" 2>/dev/null || :
		rm -f "$pf_dir/sink.pid"
	fi
}

pf_queued() {
	find "$1/queue/incoming" "$1/queue/active" "$1/queue/deferred" \
	    "$1/queue/hold" "$1/queue/maildrop" -type f 2>/dev/null | wc -l
}

pf_wait_empty() {
	pf_n=0
	while [ "$(pf_queued "$1")" -gt 0 ]; do
		pf_n=$((pf_n + 1))
		if [ $pf_n -gt $(($2 * 10)) ]; then
			return 1
		fi
		sleep 0.1
	done
}

pf_wait_count() {
	pf_n=0
	while [ "$(pf_count "$1" "$2")" -lt "$3" ]; do
		pf_n=$((pf_n + 1))
		if [ $pf_n -gt $(($4 * 10)) ]; then
			return 1
		fi
		sleep 0.1
	done
}

pf_count() {
	grep -Ec "$2" "$1/maillog" 2>/dev/null || :
}

pf_trouble() {
	grep -E ' status=(deferred|bounced)|fatal:|panic:|warning:' \
	    "$1/maillog" 2>/dev/null |
	    grep -Evc 'warning: (file system clock is|resetting file time)' ||
	    :
}

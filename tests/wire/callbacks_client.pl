#!/usr/bin/perl
# callbacks_client.pl - a minimal MTA side of the milter protocol (version
# 6), for what miltertest cannot do: a client of the unix ("L") address
# family at connect, and reading the macro lists (SMFIR_SETSYMLIST data)
# that the milter asks for in its option negotiation reply.
#
# Usage: perl callbacks_client.pl SOCKETPATH <commands
# One command a line, fields separated by tabs; "\n", "\t", "\r" and "\\"
# in a field stand for those characters:
#
#	negotiate VERSION ACTIONS STEPS	(numbers, 0x... allowed)
#	macro CMD NAME VALUE ...	CMD: the command letter (C H M R T N E)
#	connect HOST FAMILY PORT ADDR	FAMILY: 4, 6, L or U (U: no port/addr)
#	helo NAME | mail ARG... | rcpt ARG... | data | unknown TEXT
#	header NAME VALUE | eoh | body TEXT | eom | abort | quit
#
# Prints, for the wire test to check:
#	optneg version=V actions=0xA steps=0xS
#	symlist STAGE NAMES		one line per macro list asked for
#	reply COMMAND LETTER [TEXT]	the answer to each command that has one
#	mod LETTER DATA			each message change sent before the
#					end-of-message answer ('|' for each
#					NUL; a header index first, in
#					decimal, where the command has one)
# Exits non-zero (die) on a protocol or socket error.
use strict;
use warnings;
use IO::Socket::UNIX;

$| = 1;

my $path = shift @ARGV or die "usage: $0 SOCKETPATH <commands\n";
my $sock = IO::Socket::UNIX->new(Type => SOCK_STREAM(), Peer => $path)
    or die "cannot connect to $path: $!\n";

sub unescape {
	my ($s) = @_;
	my %map = (n => "\n", t => "\t", r => "\r", '\\' => '\\');
	$s =~ s/\\([nrt\\])/$map{$1}/g;
	return $s;
}

sub readn {
	my ($n) = @_;
	my $buf = '';
	while (length($buf) < $n) {
		my $got = sysread($sock, $buf, $n - length($buf), length($buf));
		die "read: " . (defined $got ? "connection closed" : $!) . "\n"
		    unless $got;
	}
	return $buf;
}

sub send_packet {
	my ($cmd, $data) = @_;
	my $p = pack('N', length($data) + 1) . $cmd . $data;
	defined syswrite($sock, $p) or die "write: $!\n";
}

sub read_packet {
	my $len = unpack('N', readn(4));
	die "bad packet length $len\n" if $len < 1 || $len > 1 << 20;
	my $p = readn($len);
	return (substr($p, 0, 1), substr($p, 1));
}

# Read answers until one that ends the command; print each.
sub answer {
	my ($what) = @_;
	for (;;) {
		my ($cmd, $data) = read_packet();
		if ($cmd =~ /^[-+2behimq]$/ && $what eq 'eom') {
			my $index = '';
			if ($cmd eq 'i' || $cmd eq 'm') {
				$index = unpack('N', $data) . '|';
				$data = substr($data, 4);
			}
			(my $shown = $data) =~ s/\0/|/g;
			print "mod $cmd $index$shown\n";
			next;
		}
		if ($cmd eq 'p') {
			next;	# progress
		}
		$data =~ s/\0$//;
		print "reply $what $cmd", ($cmd eq 'y' ? " $data" : ''), "\n";
		return;
	}
}

sub num {
	my ($s) = @_;
	return $s =~ /^0x/i ? hex($s) : $s + 0;
}

sub negotiate {
	my ($version, $actions, $steps) = map { num($_) } @_;
	send_packet('O', pack('NNN', $version, $actions, $steps));
	my ($cmd, $data) = read_packet();
	die "negotiation answered '$cmd'\n" unless $cmd eq 'O';
	my ($v, $a, $s) = unpack('NNN', $data);
	printf "optneg version=%d actions=0x%x steps=0x%x\n", $v, $a, $s;
	my $rest = substr($data, 12);
	while (length($rest) >= 4) {
		my $stage = unpack('N', $rest);
		$rest = substr($rest, 4);
		my $end = index($rest, "\0");
		$end = length($rest) if $end < 0;
		print "symlist $stage ", substr($rest, 0, $end), "\n";
		$rest = substr($rest, $end + 1);
	}
}

my %simple = (helo => 'H', mail => 'M', rcpt => 'R', unknown => 'U',
    header => 'L');
while (my $line = <STDIN>) {
	chomp $line;
	next if $line =~ /^\s*(#|$)/;
	my ($op, @f) = map { unescape($_) } split /\t/, $line;
	if ($op eq 'negotiate') {
		negotiate(@f);
	} elsif ($op eq 'macro') {
		my $cmd = shift @f;
		send_packet('D', $cmd . join('', map { "$_\0" } @f));
	} elsif ($op eq 'connect') {
		my ($host, $family, $port, $addr) = @f;
		my $data = "$host\0$family";
		$data .= pack('n', $port) . "$addr\0" if $family ne 'U';
		send_packet('C', $data);
		answer('connect');
	} elsif (exists $simple{$op}) {
		send_packet($simple{$op}, join('', map { "$_\0" } @f));
		answer($op);
	} elsif ($op eq 'data' || $op eq 'eoh' || $op eq 'eom') {
		send_packet({ data => 'T', eoh => 'N', eom => 'E' }->{$op}, '');
		answer($op);
	} elsif ($op eq 'body') {
		send_packet('B', $f[0]);
		answer('body');
	} elsif ($op eq 'abort') {
		send_packet('A', '');
	} elsif ($op eq 'quit') {
		send_packet('Q', '');
		last;
	} else {
		die "unknown command '$op'\n";
	}
}
close $sock;
exit 0;

#!/usr/bin/python3
# milter_listener.py - a broken external milter for tests/wire/milter.sh:
# it listens on a unix socket, accepts every connection and reads what the
# MTA side sends, but never speaks the protocol.
#
#	milter_listener.py MODE SOCKETPATH
#
# MODE silent	never answers anything (a hung milter).
# MODE garbage	answers the first packet (the option negotiation) with
#		"HTTP/1.0 400 Bad Request" (a socket pointed at the wrong
#		service), then reads on without answering.
# MODE badopt	answers the negotiation with an 'O' packet too short to
#		hold a version, actions and steps.
# MODE full	accepts nothing: its listen queue (of one) is filled by a
#		connection of its own, so that every other connect() is
#		refused with EAGAIN (a milter too busy to accept).
#
# Each connection is served by a thread until the peer closes it.  It
# prints "accepted N" for each connection ("full" once the queue is full),
# flushed, on standard output.  SIGTERM stops it.
import os
import signal
import socket
import sys
import threading

ANSWERS = {
    "silent": None,
    "garbage": b"HTTP/1.0 400 Bad Request\r\n\r\n",
    "badopt": b"\x00\x00\x00\x03O\x00\x06",
    "full": None,
}


def serve(conn, answer):
    first = True
    try:
        while True:
            data = conn.recv(65536)
            if not data:
                break
            if first and answer is not None:
                conn.sendall(answer)
            first = False
    except OSError:
        pass
    finally:
        conn.close()


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ANSWERS:
        sys.stderr.write("usage: milter_listener.py "
                         "silent|garbage|badopt|full SOCKETPATH\n")
        return 2
    answer = ANSWERS[sys.argv[1]]
    path = sys.argv[2]
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    if sys.argv[1] == "full":
        srv.listen(0)
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        filler.connect(path)
        print("full", flush=True)
        while True:
            signal.pause()
    srv.listen(16)
    n = 0
    while True:
        conn, _ = srv.accept()
        n += 1
        print("accepted %d" % n, flush=True)
        threading.Thread(target=serve, args=(conn, answer),
                         daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

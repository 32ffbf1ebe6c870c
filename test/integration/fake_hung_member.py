#!/usr/bin/env python3
"""A hostile fleet member for fleet.sh: a PostgreSQL wire-protocol server on
a Unix socket that completes the startup handshake (AuthenticationOk,
ParameterStatus, BackendKeyData, ReadyForQuery), then ignores every query
and never answers nor closes a cancel request's connection.  It records
"startup" / "cancel" lines in LOG so the test can see what it was sent.
Usage: fake_hung_member.py SOCKET_DIR PORT LOG   (runs until killed)"""
import os, socket, struct, sys, threading

sock_dir, port, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]
path = os.path.join(sock_dir, ".s.PGSQL.%d" % port)
held = []  # connections kept open forever


def note(what):
    with open(log, "a") as f:
        f.write(what + "\n")


def msg(kind, body):
    return kind + struct.pack("!I", len(body) + 4) + body


def serve(conn):
    while True:
        head = conn.recv(8, socket.MSG_WAITALL)
        if len(head) < 8:
            return
        length, code = struct.unpack("!II", head)
        conn.recv(length - 8, socket.MSG_WAITALL) if length > 8 else None
        if code in (80877103, 80877104):      # SSLRequest, GSSENCRequest: no
            conn.sendall(b"N")
            continue
        if code == 80877102:                  # CancelRequest: never answer
            note("cancel")
            held.append(conn)
            return
        note("startup")
        out = msg(b"R", struct.pack("!I", 0))
        for k, v in (("server_version", "15.0"), ("client_encoding", "UTF8"),
                     ("standard_conforming_strings", "on"), ("integer_datetimes", "on")):
            out += msg(b"S", k.encode() + b"\0" + v.encode() + b"\0")
        out += msg(b"K", struct.pack("!II", 4242, 4243)) + msg(b"Z", b"I")
        conn.sendall(out)
        held.append(conn)
        while conn.recv(65536):               # ignore queries, never answer
            pass
        return


if os.path.exists(path):
    os.unlink(path)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
os.chmod(path, 0o777)                 # the server runs as another OS user
srv.listen(16)
note("listening")
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()

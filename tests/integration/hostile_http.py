#!/usr/bin/env python3
"""Hostile HTTP clients for test_serve_hostile.sh, over raw loopback sockets.

  hostile_http.py framing PORT         request smuggling and bad framing
  hostile_http.py abort PORT           a request whose client leaves mid-body
  hostile_http.py slowloris PORT N TIMEOUT ADMIN_TOKEN
                                       N connections that never finish their
                                       headers; /health must still answer and
                                       every slow one be closed by the server

Every wait is bounded; a failure exits 1 with a message."""
import socket
import sys
import time


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def exchange(port, data, limit_s=20.0):
    """Sends data, keeps the socket open for writing, reads until the server
    closes (or limit_s passes). Returns (bytes, closed_by_server)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=limit_s)
    s.sendall(data)
    out = b""
    end = time.monotonic() + limit_s
    closed = False
    while time.monotonic() < end:
        s.settimeout(max(0.1, end - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        out += chunk
    s.close()
    return out, closed


def statuses(raw):
    """The status codes of the responses in raw, in order."""
    codes = []
    for line in raw.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and len(line) >= 12:
            codes.append(int(line[9:12]))
    return codes


def framing(port):
    smuggled = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    cases = {
        # chunked says the body ends at once, Content-Length says it goes on:
        # a server that takes chunked reads the rest as a second request
        "content-length and transfer-encoding": (
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" % (5 + len(smuggled)) + smuggled,
            b"both Content-Length and Transfer-Encoding"),
        # two lengths: the first ends the body after "{}", the second does not
        "two content-lengths": (
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nContent-Length: %d\r\n\r\n{}" % (2 + len(smuggled)) + smuggled,
            b"two different Content-Length values"),
        # an unknown coding: no answer at all and a held connection, before
        "unknown transfer-encoding": (
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: gzip\r\n\r\nxxxxxxxx",
            b"'Transfer-Encoding: gzip' is not supported"),
        "chunked, then another coding": (
            b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled,
            b"is not supported"),
    }
    for name, (data, why) in cases.items():
        raw, closed = exchange(port, data)
        codes = statuses(raw)
        if codes != [400]:
            fail("%s: expected one answer, 400, got %s:\n%r" % (name, codes, raw[:600]))
        if why not in raw:
            fail("%s: the 400 does not say why (%r):\n%r" % (name, why, raw[:600]))
        if b"connection: close" not in raw.lower():
            fail("%s: the 400 does not say Connection: close:\n%r" % (name, raw[:600]))
        if not closed:
            fail("%s: the server kept the connection open" % name)
        print("ok - framing: %s: one 400, connection closed, nothing smuggled" % name)
    # a well-framed chunked request still works (curl sends them)
    data = (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % len(b'{"content":"hi"}') + b'{"content":"hi"}\r\n0\r\n\r\n')
    raw, _ = exchange(port, data)
    if statuses(raw) not in ([200], [401]):
        fail("a chunked request: %r" % raw[:600])
    print("ok - framing: a plain chunked body is still read")


def abort(port):
    """Headers and half a body, then the client leaves."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 100\r\n\r\n{\"prompt\":")
    s.close()


def health(port, limit_s):
    """GET /health on a new connection: its status, or None past limit_s."""
    try:
        raw, _ = exchange(port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", limit_s)
    except OSError:
        return None
    codes = statuses(raw)
    return codes[0] if codes else None


def metric(port, token, name):
    raw, _ = exchange(port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer "
                      + token.encode() + b"\r\n\r\n", 20)
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return line
    return None


def slowloris(port, n, timeout_s, token):
    socks = []
    for i in range(n):
        s = socket.socket()
        s.settimeout(5)
        s.connect(("127.0.0.1", port))  # accepted by the kernel, maybe not yet by the server
        s.sendall(b"GET /health HTTP/1.1\r\n")
        s.setblocking(False)
        socks.append(s)
    closed = set()

    def trickle():
        """One more header line on every open slow connection; notes those
        the server has closed."""
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                if s.recv(4096) == b"":
                    closed.add(i)
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed.add(i)
                continue
            try:
                s.send(b"X-Slow: %d\r\n" % i)
            except OSError:
                closed.add(i)

    # The attack as it was found: a header line every second or so. Two
    # rounds, so every slow connection is past the grace of the reserve.
    for _ in range(2):
        trickle()
        time.sleep(1)
    # /health answers while the slow clients hold on (before the fix: the
    # connection cap was taken and it waited in the backlog for minutes).
    for k in range(3):
        trickle()
        t0 = time.monotonic()
        code = health(port, 10)
        if code != 200:
            fail("/health during the attack: %s (round %d)" % (code, k))
        print("ok - slowloris: /health answered in %.0f ms with %d slow connections open"
              % ((time.monotonic() - t0) * 1000, n - len(closed)))
    # Every slow connection is closed by the server: the receive deadline,
    # counted from the accept, is not reset by the trickle.
    end = time.monotonic() + timeout_s + 20
    while len(closed) < n and time.monotonic() < end:
        trickle()
        time.sleep(0.5)
    if len(closed) < n:
        fail("%d of %d slow connections still open 20 s past their %.0f s receive deadline"
             % (n - len(closed), n, timeout_s))
    print("ok - slowloris: all %d slow connections closed by the server" % n)
    line = metric(port, token, 'airlock_connections_closed_total{reason="receive_timeout"}')
    if not line or float(line.split()[-1]) < 1:
        fail("no connection counted as closed for its receive timeout: %s" % line)
    print("ok - slowloris: /metrics %s" % line)
    if health(port, 10) != 200:
        fail("/health after the attack")


def main():
    cmd, port = sys.argv[1], int(sys.argv[2])
    if cmd == "framing":
        framing(port)
    elif cmd == "abort":
        abort(port)
    elif cmd == "slowloris":
        slowloris(port, int(sys.argv[3]), float(sys.argv[4]), sys.argv[5])
    else:
        fail("unknown command " + cmd)


if __name__ == "__main__":
    main()

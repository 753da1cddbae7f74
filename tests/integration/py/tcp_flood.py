#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Raw TCP clients of the node API that never start TLS, for t_node_api_flood.sh and
t_node_api_limits.sh.

  tcp_flood.py conns HOST PORT N [SECONDS]
        opens N connections (non-blocking, all at once), prints "connected=<n>" once
        every connect finished or SECONDS (default 30) passed, then holds them until
        killed
  tcp_flood.py closes HOST PORT N SECONDS
        opens N connections one after the other and prints, in the order the server
        closed them, "closed=<i> ms=<ms since it connected>" (i from 1), then "open=<n>"
        for those still open after SECONDS
"""

import resource
import selectors
import socket
import sys
import time


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 64
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            sys.exit("need %d open files, the hard limit is %d" % (want, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def conns(host, port, n, secs):
    raise_nofile(n)
    sel = selectors.DefaultSelector()
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_WRITE)
    done, held, end = 0, [], time.monotonic() + secs
    while done < n and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            s = key.fileobj
            sel.unregister(s)
            done += 1
            if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                held.append(s)
            else:
                s.close()
    print("connected=%d" % len(held), flush=True)
    while True:
        time.sleep(3600)


def closes(host, port, n, secs):
    sel = selectors.DefaultSelector()
    for i in range(1, n + 1):
        s = socket.create_connection((host, port), timeout=10)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, (i, time.monotonic()))
    end = time.monotonic() + secs
    left = n
    while left and time.monotonic() < end:
        for key, _ in sel.select(timeout=max(0.0, end - time.monotonic())):
            i, t0 = key.data
            try:
                data = key.fileobj.recv(4096)
            except ConnectionError:
                data = b""
            if data:
                continue
            sel.unregister(key.fileobj)
            key.fileobj.close()
            left -= 1
            print("closed=%d ms=%d" % (i, (time.monotonic() - t0) * 1000), flush=True)
    print("open=%d" % left, flush=True)


def main():
    cmd, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    secs = float(sys.argv[5]) if len(sys.argv) > 5 else 30.0
    if cmd == "conns":
        conns(host, port, n, secs)
    elif cmd == "closes":
        closes(host, port, n, secs)
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()

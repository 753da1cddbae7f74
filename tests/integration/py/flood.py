#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Floods the Workload API the way a misbehaving (or hostile) local user would, for
t_agent_limits.sh. Run it with Debian's /usr/bin/python3 (python3-grpcio).

  flood.py conns SOCKET N       opens N raw connections and holds them until killed;
                                prints "connected=<n>" once they are made
  flood.py streams SOCKET N     opens N FetchX509SVID streams over 8 channels, holds
                                them until killed; prints "open=<n> exhausted=<n>
                                other=<n>" once each got its first message or status
  flood.py audiences SOCKET N   N FetchJWTSVID calls, each for a new audience; prints
                                "ok=<n> exhausted=<n> other=<n>"
  flood.py jwt SOCKET AUD_HEX   one FetchJWTSVID with this audience (raw bytes, hex:
                                NUL and invalid UTF-8 can be sent); prints
                                "<code> <details>"
"""

import socket
import sys
import threading
import time

import grpc

HEADER = [("workload.spiffe.io", "true")]


def jwt_request(aud: bytes) -> bytes:
    """JWTSVIDRequest{audience: [aud]} by hand: field 1, length-delimited."""
    n, v = len(aud), bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        v.append(b | (0x80 if n else 0))
        if not n:
            break
    return b"\x0a" + bytes(v) + aud


def channel(sock):
    return grpc.insecure_channel("unix:" + sock)


def hold_forever(out):
    print(out, flush=True)
    while True:
        time.sleep(3600)


def conns(sock, n):
    held = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock)
            held.append(s)
        except OSError:
            s.close()
    hold_forever("connected=%d" % len(held))


def streams(sock, n):
    chans = [channel(sock) for _ in range(8)]
    counts = {"open": 0, "exhausted": 0, "other": 0}
    others = {}
    lock = threading.Lock()
    done = threading.Semaphore(0)
    calls = []

    def watch(call):
        key = "other"
        try:
            next(call)
            key = "open"
        except grpc.RpcError as e:
            key = "exhausted" if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else "other"
            if key == "other":
                with lock:
                    others[e.code().name + ": " + str(e.details())] = 1
        with lock:
            counts[key] += 1
        done.release()
        if key == "open":
            try:
                for _ in call:
                    pass
            except grpc.RpcError:
                pass

    for i in range(n):
        fn = chans[i % len(chans)].unary_stream("/SpiffeWorkloadAPI/FetchX509SVID")
        call = fn(b"", metadata=HEADER)
        calls.append(call)
        threading.Thread(target=watch, args=(call,), daemon=True).start()
    for _ in range(n):
        done.acquire(timeout=30)
    for what in sorted(others):
        print("other:", what, file=sys.stderr, flush=True)
    hold_forever("open=%d exhausted=%d other=%d" % (counts["open"], counts["exhausted"],
                                                     counts["other"]))


def audiences(sock, n):
    ch = channel(sock)
    fn = ch.unary_unary("/SpiffeWorkloadAPI/FetchJWTSVID")
    counts = {"ok": 0, "exhausted": 0, "other": 0}
    for i in range(n):
        try:
            fn(jwt_request(b"flood-%d" % i), metadata=HEADER, timeout=10)
            counts["ok"] += 1
        except grpc.RpcError as e:
            counts["exhausted" if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                   else "other"] += 1
    print("ok=%d exhausted=%d other=%d" % (counts["ok"], counts["exhausted"], counts["other"]))


def one_jwt(sock, aud_hex):
    fn = channel(sock).unary_unary("/SpiffeWorkloadAPI/FetchJWTSVID")
    try:
        fn(jwt_request(bytes.fromhex(aud_hex)), metadata=HEADER, timeout=10)
        print("OK")
    except grpc.RpcError as e:
        print(e.code().name, e.details())


def main():
    role, sock = sys.argv[1], sys.argv[2]
    if role == "conns":
        conns(sock, int(sys.argv[3]))
    elif role == "streams":
        streams(sock, int(sys.argv[3]))
    elif role == "audiences":
        audiences(sock, int(sys.argv[3]))
    elif role == "jwt":
        one_jwt(sock, sys.argv[3])
    else:
        sys.exit("unknown role " + role)


if __name__ == "__main__":
    main()

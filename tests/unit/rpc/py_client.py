#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Interop check: Python grpcio (a different gRPC implementation of the client
side) against rpc_test_server, which runs on Warden's C RPC layer.

usage: py_client.py PATH/TO/rpc_test_server
Run with Debian's /usr/bin/python3 (it has grpcio)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import grpc

HDR = [("workload.spiffe.io", "true")]
# Deadlines grow for sanitizer builds, as in tests/integration/lib.sh.
SCALE = int(os.environ.get("WARDEN_TIME_SCALE") or (3 if os.environ.get("WARDEN_SANITIZE") else 1))


def scaled(seconds):
    return seconds * SCALE


def expect_status(fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        assert e.code() == code, f"got {e.code()} ({e.details()}), want {code}"
        if details is not None:
            assert e.details() == details, f"details {e.details()!r}"
        return
    raise AssertionError(f"call succeeded, want {code}")


def check_unary(ch):
    echo = ch.unary_unary("/test.Open/Echo")
    got = echo(b"py", timeout=scaled(5))
    want = f"uid={os.getuid()};pid={os.getpid()};py".encode()
    assert got == want, got

    secure = ch.unary_unary("/test.Secure/Echo")
    expect_status(lambda: secure(b"x", timeout=scaled(5)), grpc.StatusCode.INVALID_ARGUMENT,
                  "security header missing from request")
    expect_status(lambda: secure(b"x", metadata=[("workload.spiffe.io", "false")],
                                 timeout=scaled(5)),
                  grpc.StatusCode.INVALID_ARGUMENT)
    assert secure(b"ok", metadata=HDR, timeout=scaled(5)).endswith(b";ok")

    start = time.monotonic()
    expect_status(lambda: ch.unary_unary("/test.Open/Nope")(b"", metadata=HDR, timeout=scaled(5)),
                  grpc.StatusCode.UNIMPLEMENTED)
    expect_status(lambda: ch.unary_unary("/Other/Nope")(b"", timeout=scaled(5)),
                  grpc.StatusCode.UNIMPLEMENTED)
    assert time.monotonic() - start < 2, "unknown methods must not hang"

    fail = ch.unary_unary("/test.Open/Fail")
    expect_status(lambda: fail(b"13", timeout=scaled(5)), grpc.StatusCode.PERMISSION_DENIED,
                  "failed on request")
    expect_status(lambda: fail(b"2", timeout=scaled(5)), grpc.StatusCode.NOT_FOUND)

    # The server copies at most 128 metadata entries per call.
    many = [(f"x-m-{i}", "v") for i in range(100)]
    assert echo(b"m", metadata=many, timeout=scaled(5)).endswith(b";m")
    too_many = [(f"x-m-{i}", "v") for i in range(129)]
    expect_status(lambda: echo(b"m", metadata=too_many, timeout=scaled(5)),
                  grpc.StatusCode.RESOURCE_EXHAUSTED)

    # The server's 4 MiB receive cap, at the limit and one byte past it.
    size = 4 * 1024 * 1024
    assert len(echo(b"x" * (size - 64), timeout=scaled(10))) > size - 64
    expect_status(lambda: echo(b"x" * (size + 1), timeout=scaled(10)),
                  grpc.StatusCode.RESOURCE_EXHAUSTED)


def check_stream(ch, server):
    watch = ch.unary_stream("/test.Open/Watch")
    it = watch(b"", timeout=scaled(10))
    first = next(it)
    assert first.startswith(b"v="), first
    v0 = int(first[2:])
    for i in range(1, 4):
        server.send_signal(signal.SIGUSR1)
        got = next(it)
        assert got == f"v={v0 + i}".encode(), got
    it.cancel()


def check_shutdown(ch, server):
    it = ch.unary_stream("/test.Open/Watch")(b"", timeout=scaled(10))
    next(it)
    server.send_signal(signal.SIGTERM)
    try:
        for _ in it:
            pass
        raise AssertionError("stream ended with OK")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAVAILABLE, e.code()
    assert server.wait(timeout=scaled(10)) == 0, "server exit status"


def main():
    tmp = tempfile.mkdtemp(prefix="wrpc.")
    sock = os.path.join(tmp, "s.sock")
    server = subprocess.Popen([sys.argv[1], "--unix", sock], stdout=subprocess.PIPE)
    try:
        assert server.stdout.readline().strip() == b"READY"
        with grpc.insecure_channel("unix:" + sock) as ch:
            check_unary(ch)
            check_stream(ch, server)
            check_shutdown(ch, server)
        assert not os.path.exists(sock), "socket not unlinked at shutdown"
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("py_client: all checks passed")


if __name__ == "__main__":
    main()

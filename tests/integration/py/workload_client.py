#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""SPIFFE Workload API interop client on Debian's python3-grpcio (run it with
/usr/bin/python3). The message classes are generated at run time with
`protoc --python_out` from proto/spiffe/workload/workload.proto, so this checks our
server against an independent protobuf + gRPC implementation.

Usage:
  workload_client.py --socket PATH ROLE [options]

Roles (what the calling uid is expected to get):
  full     it has identities: X.509-SVIDs (DER chain parsed and checked with the
           `cryptography` package, key matches, leaf signed by the bundle CA), bundles,
           JWT-SVIDs (signature checked against the JWKS from FetchJWTBundles),
           ValidateJWTSVID round trip with claims, and every negative case: no
           security header, no audience, a foreign spiffe_id, tampered / expired /
           wrong-audience tokens, WIT methods.
  denied   no entry matches: every fetch is PERMISSION_DENIED (validation still works).
  pending  its entry has no SVID yet: the X.509 stream stays open and silent,
           FetchJWTSVID is UNAVAILABLE.
Each check prints "ok   <name>" or "FAIL <name>: <why>"; the exit status is 1 if any
failed. `--print-jwt FILE` (full) writes the JWT-SVID fetched for audience "interop".

  workload_client.py mint --key PEM --kid KID --sub ID [--aud A] [--exp-offset S]
prints a JWT-SVID signed with an EC P-256 key, e.g. the server's own JWT key to make a
token that expired --exp-offset seconds ago (for the negative cases).
"""

import argparse
import atexit
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import grpc

HEADER = [("workload.spiffe.io", "true")]
PREFIX = "/SpiffeWorkloadAPI/"
AUD = "interop"


def load_pb2():
    here = os.path.dirname(os.path.abspath(__file__))
    proto_dir = os.path.normpath(os.path.join(here, "../../../proto/spiffe/workload"))
    out = tempfile.mkdtemp(prefix="wpb.")
    atexit.register(shutil.rmtree, out, True)
    subprocess.run(["protoc", "--python_out=" + out, "-I" + proto_dir, "-I/usr/include",
                    os.path.join(proto_dir, "workload.proto")], check=True)
    sys.path.insert(0, out)
    import workload_pb2  # noqa: E402
    return workload_pb2


pb = load_pb2()

FAILS = []


def check(name, fn):
    try:
        fn()
        print("ok   " + name, flush=True)
    except Exception as e:  # noqa: BLE001 (a test: report everything)
        FAILS.append(name)
        print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class Api:
    def __init__(self, socket):
        self.ch = grpc.insecure_channel("unix:" + socket)

    def unary(self, method, req, resp_cls, header=True, timeout=5):
        f = self.ch.unary_unary(PREFIX + method, request_serializer=lambda m: m.SerializeToString(),
                                response_deserializer=resp_cls.FromString)
        return f(req, metadata=HEADER if header else None, timeout=timeout)

    def stream(self, method, req, resp_cls, header=True, timeout=None):
        f = self.ch.unary_stream(PREFIX + method, request_serializer=lambda m: m.SerializeToString(),
                                 response_deserializer=resp_cls.FromString)
        return f(req, metadata=HEADER if header else None, timeout=timeout)

    def first(self, method, req, resp_cls, header=True, timeout=5):
        it = self.stream(method, req, resp_cls, header, timeout)
        try:
            return next(it)
        finally:
            it.cancel()


def expect_code(code, fn):
    try:
        fn()
    except grpc.RpcError as e:
        expect(e.code() == code, "got %s (%s), want %s" % (e.code(), e.details(), code))
        return e
    raise AssertionError("call succeeded, want %s" % code)


# ---- X.509 with the cryptography package ----

def split_der(buf):
    """Concatenated DER certificates -> list (ASN.1 SEQUENCE headers only)."""
    out = []
    while buf:
        expect(buf[0] == 0x30 and len(buf) >= 2, "not a DER SEQUENCE")
        n = buf[1]
        if n < 0x80:
            hdr, ln = 2, n
        else:
            k = n & 0x7f
            expect(1 <= k <= 4 and len(buf) >= 2 + k, "bad DER length")
            hdr, ln = 2 + k, int.from_bytes(buf[2:2 + k], "big")
        expect(len(buf) >= hdr + ln, "truncated DER")
        out.append(buf[:hdr + ln])
        buf = buf[hdr + ln:]
    return out


def check_svid(svid, want_id, want_hint):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    expect(svid.spiffe_id == want_id, "spiffe_id %r, want %r" % (svid.spiffe_id, want_id))
    if want_hint is not None:
        expect(svid.hint == want_hint, "hint %r, want %r" % (svid.hint, want_hint))
    certs = [x509.load_der_x509_certificate(d) for d in split_der(svid.x509_svid)]
    leaf = certs[0]
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    expect(uris == [want_id], "URI SANs %r" % uris)
    expect(not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca, "leaf is a CA")
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    expect(ku.critical and ku.value.digital_signature and not ku.value.key_cert_sign, "key usage")
    key = serialization.load_der_private_key(svid.x509_svid_key, password=None)
    pub = lambda k: k.public_bytes(serialization.Encoding.DER,  # noqa: E731
                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    expect(pub(key.public_key()) == pub(leaf.public_key()), "key does not match the leaf")
    roots = [x509.load_der_x509_certificate(d) for d in split_der(svid.bundle)]
    expect(roots, "empty bundle")
    issuer = certs[1] if len(certs) > 1 else next(r for r in roots if r.subject == leaf.issuer)
    issuer.public_key().verify(leaf.signature, leaf.tbs_certificate_bytes,
                               ec.ECDSA(leaf.signature_hash_algorithm))
    return leaf.serial_number


# ---- JWT helpers ----

def b64url(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def jwt_parts(token):
    h, p, s = token.split(".")
    return json.loads(b64url(h)), json.loads(b64url(p)), b64url(s), (h + "." + p).encode()


def verify_jwt_with_jwks(token, jwks):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    header, _, sig, signed = jwt_parts(token)
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    expect(key["kty"] == "EC" and key["crv"] == "P-256" and header["alg"] == "ES256", "key/alg")
    nums = ec.EllipticCurvePublicNumbers(int.from_bytes(b64url(key["x"]), "big"),
                                         int.from_bytes(b64url(key["y"]), "big"), ec.SECP256R1())
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    nums.public_key().verify(der, signed, ec.ECDSA(hashes.SHA256()))


def tamper(token):
    h, p, s = token.split(".")
    c = "A" if s[5] != "A" else "B"
    return h + "." + p + "." + s[:5] + c + s[6:]


def read_token(path):
    with open(path) as f:
        return f.read().strip()


# ---- roles ----

def role_full(api, a):
    state = {}

    def x509():
        r = api.first("FetchX509SVID", pb.X509SVIDRequest(), pb.X509SVIDResponse)
        expect(len(r.svids) >= 1, "no SVID")
        state["serial"] = check_svid(r.svids[0], a.expect_id, a.expect_hint)
        for s in r.svids[1:]:
            check_svid(s, s.spiffe_id, None)
        fed = sorted(r.federated_bundles.keys())
        want = ["spiffe://" + a.expect_federated] if a.expect_federated else []
        expect(fed == want, "federated bundles %r, want %r" % (fed, want))
        expect(len(r.crl) == 0, "crl set")

    def update():
        it = api.stream("FetchX509SVID", pb.X509SVIDRequest(), pb.X509SVIDResponse, timeout=20)
        try:
            first = check_svid(next(it).svids[0], a.expect_id, None)
            second = check_svid(next(it).svids[0], a.expect_id, None)
            expect(first != second, "second message has the same serial")
        finally:
            it.cancel()

    def bundles():
        r = api.first("FetchX509Bundles", pb.X509BundlesRequest(), pb.X509BundlesResponse)
        keys = sorted(r.bundles.keys())
        want = sorted(["spiffe://" + a.td] + (["spiffe://" + a.expect_federated]
                                              if a.expect_federated else []))
        expect(keys == want, "bundles %r, want %r" % (keys, want))
        from cryptography import x509
        for v in r.bundles.values():
            for d in split_der(v):
                expect(x509.load_der_x509_certificate(d).extensions.get_extension_for_class(
                    x509.BasicConstraints).value.ca, "bundle cert is not a CA")

    def jwt_bundles():
        r = api.first("FetchJWTBundles", pb.JWTBundlesRequest(), pb.JWTBundlesResponse)
        expect("spiffe://" + a.td in r.bundles, "own trust domain missing")
        for td, v in r.bundles.items():
            jwks = json.loads(v)
            expect(list(jwks.keys()) == ["keys"], "not a plain JWKS: %r" % list(jwks.keys()))
            for k in jwks["keys"]:
                expect("kid" in k and "use" not in k, "key %r" % k)
        state["jwks"] = json.loads(r.bundles["spiffe://" + a.td])

    def jwt():
        r = api.unary("FetchJWTSVID", pb.JWTSVIDRequest(audience=[AUD]), pb.JWTSVIDResponse)
        expect(len(r.svids) >= 1, "no JWT-SVID")
        s = r.svids[0]
        expect(s.spiffe_id == a.expect_id, "spiffe_id %r" % s.spiffe_id)
        header, claims, _, _ = jwt_parts(s.svid)
        expect(set(header) <= {"alg", "kid", "typ"} and "kid" in header, "header %r" % header)
        expect(claims["sub"] == a.expect_id and claims["aud"] == [AUD], "claims %r" % claims)
        expect(isinstance(claims["exp"], int) and claims["exp"] > time.time(), "exp")
        verify_jwt_with_jwks(s.svid, state["jwks"])
        state["token"] = s.svid
        if a.print_jwt:
            with open(a.print_jwt, "w") as f:
                f.write(s.svid + "\n")
        one = api.unary("FetchJWTSVID", pb.JWTSVIDRequest(audience=[AUD], spiffe_id=a.expect_id),
                        pb.JWTSVIDResponse)
        expect([x.spiffe_id for x in one.svids] == [a.expect_id], "spiffe_id selection")

    def validate():
        r = api.unary("ValidateJWTSVID", pb.ValidateJWTSVIDRequest(audience=AUD, svid=state["token"]),
                      pb.ValidateJWTSVIDResponse)
        expect(r.spiffe_id == a.expect_id, "spiffe_id %r" % r.spiffe_id)
        c = r.claims
        expect(c.fields["sub"].string_value == a.expect_id, "sub")
        expect([v.string_value for v in c.fields["aud"].list_value.values] == [AUD], "aud")
        expect(c.fields["exp"].number_value > time.time(), "exp")

    check("x509 svid", x509)
    check("x509 bundles", bundles)
    check("jwt bundles", jwt_bundles)
    check("jwt svid", jwt)
    check("validate round trip", validate)
    if a.expect_update:
        check("x509 stream update", update)
    negatives(api, a, state)


def negatives(api, a, state):
    INV, DEN, UNI = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                     grpc.StatusCode.UNIMPLEMENTED)
    token = state.get("token", "x.y.z")

    def no_header():
        for m, req, resp in (("FetchX509SVID", pb.X509SVIDRequest(), pb.X509SVIDResponse),
                             ("FetchX509Bundles", pb.X509BundlesRequest(), pb.X509BundlesResponse),
                             ("FetchJWTBundles", pb.JWTBundlesRequest(), pb.JWTBundlesResponse)):
            e = expect_code(INV, lambda: api.first(m, req, resp, header=False))
            expect(e.details() == "security header missing from request", e.details())
        expect_code(INV, lambda: api.unary("FetchJWTSVID", pb.JWTSVIDRequest(audience=[AUD]),
                                           pb.JWTSVIDResponse, header=False))
        expect_code(INV, lambda: api.unary("ValidateJWTSVID",
                                           pb.ValidateJWTSVIDRequest(audience=AUD, svid=token),
                                           pb.ValidateJWTSVIDResponse, header=False))

    def bad_tokens():
        def val(aud, t):
            return lambda: api.unary("ValidateJWTSVID", pb.ValidateJWTSVIDRequest(audience=aud, svid=t),
                                     pb.ValidateJWTSVIDResponse)
        msgs = {expect_code(INV, val(AUD, tamper(token))).details(),
                expect_code(INV, val("someone-else", token)).details(),
                expect_code(INV, val(AUD, "not-a-jwt")).details()}
        if a.expired_token:
            msgs.add(expect_code(INV, val(AUD, read_token(a.expired_token))).details())
        expect(len(msgs) == 1, "failures are told apart: %r" % msgs)
        expect_code(INV, val("", token))
        expect_code(INV, val(AUD, ""))

    def federated():
        t = read_token(a.fed_token)
        call = lambda: api.unary("ValidateJWTSVID",  # noqa: E731
                                 pb.ValidateJWTSVIDRequest(audience=AUD, svid=t),
                                 pb.ValidateJWTSVIDResponse)
        if a.expect_federated:
            r = call()
            expect(r.spiffe_id.startswith("spiffe://" + a.expect_federated + "/"), r.spiffe_id)
            expect(sorted(r.claims.fields.keys()) == ["aud", "exp", "sub"], "foreign claims")
        else:
            expect_code(INV, call)

    def jwt_args():
        e = expect_code(INV, lambda: api.unary("FetchJWTSVID", pb.JWTSVIDRequest(), pb.JWTSVIDResponse))
        expect("audience" in e.details(), e.details())
        if a.foreign_id:
            e = expect_code(DEN, lambda: api.unary(
                "FetchJWTSVID", pb.JWTSVIDRequest(audience=[AUD], spiffe_id=a.foreign_id),
                pb.JWTSVIDResponse))
            expect(e.details() == "no identity issued", e.details())

    def wit():
        for m in ("FetchWITSVID", "FetchWITBundles"):
            expect_code(UNI, lambda: api.first(m, pb.X509SVIDRequest(), pb.X509SVIDResponse))

    check("no security header", no_header)
    check("FetchJWTSVID arguments", jwt_args)
    if "token" in state:
        check("tampered/expired/wrong-audience tokens", bad_tokens)
    if a.fed_token:
        check("federated token", federated)
    check("WIT unimplemented", wit)


def role_denied(api, a):
    DEN = grpc.StatusCode.PERMISSION_DENIED

    def fetches():
        for m, req, resp in (("FetchX509SVID", pb.X509SVIDRequest(), pb.X509SVIDResponse),
                             ("FetchX509Bundles", pb.X509BundlesRequest(), pb.X509BundlesResponse),
                             ("FetchJWTBundles", pb.JWTBundlesRequest(), pb.JWTBundlesResponse)):
            e = expect_code(DEN, lambda: api.first(m, req, resp))
            expect(e.details() == "no identity issued", e.details())
        expect_code(DEN, lambda: api.unary("FetchJWTSVID", pb.JWTSVIDRequest(audience=[AUD]),
                                           pb.JWTSVIDResponse))

    def validate():
        t = read_token(a.valid_token)
        r = api.unary("ValidateJWTSVID", pb.ValidateJWTSVIDRequest(audience=AUD, svid=t),
                      pb.ValidateJWTSVIDResponse)
        expect(r.spiffe_id.startswith("spiffe://" + a.td + "/"), r.spiffe_id)

    check("denied fetches", fetches)
    if a.valid_token:
        check("validate without identity", validate)
    negatives(api, a, {})


def role_pending(api, a):
    def stream_waits():
        it = api.stream("FetchX509SVID", pb.X509SVIDRequest(), pb.X509SVIDResponse, timeout=1.5)
        expect_code(grpc.StatusCode.DEADLINE_EXCEEDED, lambda: next(it))

    check("x509 stream stays open", stream_waits)
    check("jwt unavailable", lambda: expect_code(grpc.StatusCode.UNAVAILABLE, lambda: api.unary(
        "FetchJWTSVID", pb.JWTSVIDRequest(audience=[AUD]), pb.JWTSVIDResponse)))


def b64url_enc(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def mint(argv):
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    p = argparse.ArgumentParser(prog="workload_client.py mint")
    p.add_argument("--key", required=True)
    p.add_argument("--kid", required=True)
    p.add_argument("--sub", required=True)
    p.add_argument("--aud", default=AUD)
    p.add_argument("--exp-offset", type=int, default=300)
    a = p.parse_args(argv)
    with open(a.key, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    now = int(time.time())
    h = b64url_enc(json.dumps({"alg": "ES256", "kid": a.kid, "typ": "JWT"}).encode())
    c = b64url_enc(json.dumps({"sub": a.sub, "aud": [a.aud], "exp": now + a.exp_offset,
                               "iat": now + min(a.exp_offset, 0) - 60}).encode())
    r, s = utils.decode_dss_signature(key.sign((h + "." + c).encode(), ec.ECDSA(hashes.SHA256())))
    print(h + "." + c + "." + b64url_enc(r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    return 0


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "mint":
        return mint(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--socket", required=True)
    p.add_argument("role", choices=["full", "denied", "pending"])
    p.add_argument("--td", default="example.org")
    p.add_argument("--expect-id")
    p.add_argument("--expect-hint")
    p.add_argument("--expect-federated", help="trust domain in federated_bundles")
    p.add_argument("--expect-update", action="store_true", help="wait for a rotated SVID")
    p.add_argument("--foreign-id", help="a SPIFFE ID this caller must not get")
    p.add_argument("--expired-token")
    p.add_argument("--fed-token", help="a federated trust domain's token")
    p.add_argument("--valid-token", help="(denied) a valid token of our trust domain")
    p.add_argument("--print-jwt", help="(full) write the JWT-SVID here")
    a = p.parse_args()
    api = Api(a.socket)
    {"full": role_full, "denied": role_denied, "pending": role_pending}[a.role](api, a)
    print("%d check(s) failed" % len(FAILS) if FAILS else "all checks passed", flush=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())

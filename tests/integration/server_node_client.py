#!/usr/bin/python3
"""A minimal, independent node-API client (Python grpcio over real TLS) for the
server integration tests.

  server_node_client.py attest ADDR BUNDLE TOKEN DIR
      join-token attestation with a fresh EC key (openssl); writes DIR/agent.pem
      (node SVID chain) and DIR/agent.key; prints the agent's SPIFFE ID.
  server_node_client.py sync ADDR BUNDLE DIR [WAIT_SECONDS]
      opens Sync with the node SVID in DIR; prints "snapshot N" with the number of
      entries of the first message, then (with WAIT_SECONDS) the next message as
      "snapshot N" or the stream's end as "status CODE".
Failures print "status CODE: details" and exit 1. Needs WARDEN_SOURCE_DIR (protos).
"""
import atexit
import os
import shutil
import ssl
import subprocess
import sys
import tempfile

import grpc

ROOT = os.environ["WARDEN_SOURCE_DIR"]


def load_protos():
    out = tempfile.mkdtemp(prefix="wpy.")
    atexit.register(shutil.rmtree, out, True)
    subprocess.run(
        ["protoc", "-I", os.path.join(ROOT, "proto"), "--python_out=" + out,
         "warden/node/v1/node.proto", "warden/types/v1/types.proto"],
        check=True)
    sys.path.insert(0, out)
    from warden.node.v1 import node_pb2  # noqa: E402
    return node_pb2


def channel(addr, bundle, key=None, chain=None):
    with open(bundle, "rb") as f:
        roots = f.read()
    creds = grpc.ssl_channel_credentials(root_certificates=roots, private_key=key,
                                         certificate_chain=chain)
    # The server's SVID carries DNS:localhost next to its SPIFFE ID.
    return grpc.secure_channel(addr, creds,
                               options=[("grpc.ssl_target_name_override", "localhost")])


def attest(pb, addr, bundle, token, outdir):
    key = os.path.join(outdir, "agent.key")
    csr = subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", key, "-subj", "/CN=warden-agent", "-outform", "DER"],
        check=True, capture_output=True).stdout
    req = pb.AttestAgentRequest(join_token=token, csr=csr)
    with channel(addr, bundle) as ch:
        call = ch.unary_unary("/warden.node.v1.Node/AttestAgent",
                              request_serializer=pb.AttestAgentRequest.SerializeToString,
                              response_deserializer=pb.AttestAgentResponse.FromString)
        resp = call(req, timeout=20)
    with open(os.path.join(outdir, "agent.pem"), "w") as f:
        for der in resp.svid_chain:
            f.write(ssl.DER_cert_to_PEM_cert(der))
    print(resp.spiffe_id)


def sync(pb, addr, bundle, outdir, wait):
    with open(os.path.join(outdir, "agent.key"), "rb") as f:
        key = f.read()
    with open(os.path.join(outdir, "agent.pem"), "rb") as f:
        chain = f.read()
    with channel(addr, bundle, key, chain) as ch:
        call = ch.unary_stream("/warden.node.v1.Node/Sync",
                               request_serializer=pb.SyncRequest.SerializeToString,
                               response_deserializer=pb.SyncResponse.FromString)
        stream = call(pb.SyncRequest(), timeout=wait + 20 if wait else 20)
        first = next(stream)
        print("snapshot %d" % len(first.entries), flush=True)
        if not wait:
            stream.cancel()
            return
        try:
            nxt = next(stream)
            print("snapshot %d" % len(nxt.entries), flush=True)
        except StopIteration:
            print("status %s" % stream.code().name, flush=True)
        except grpc.RpcError as e:
            print("status %s" % e.code().name, flush=True)
        stream.cancel()


def main():
    pb = load_protos()
    try:
        if sys.argv[1] == "attest":
            attest(pb, *sys.argv[2:6])
        elif sys.argv[1] == "sync":
            sync(pb, sys.argv[2], sys.argv[3], sys.argv[4],
                 float(sys.argv[5]) if len(sys.argv) > 5 else 0)
        else:
            sys.exit("unknown command " + sys.argv[1])
    except grpc.RpcError as e:
        print("status %s: %s" % (e.code().name, e.details()))
        sys.exit(1)


if __name__ == "__main__":
    main()

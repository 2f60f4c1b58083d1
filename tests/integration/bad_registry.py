#!/usr/bin/env python3
"""A misbehaving OCI registry for test_registry_refusals.sh.

  bad_registry.py copy BASE REPO TAG DIR
      copies, over plain HTTP from a real registry at BASE (http://HOST:PORT),
      the manifest tagged TAG, the index under its sha256-<hex> tag, the
      manifests that index lists, and every blob they name into DIR
  bad_registry.py serve DIR MODE DIGEST PORTFILE
      serves DIR as a read-only registry on a free loopback port (written to
      PORTFILE once listening) and misbehaves on blob DIGEST:
        honest       no misbehaviour
        corrupt      one byte flipped, the length kept
        larger       the blob followed by 4096 more bytes (Content-Length too)
        drop         the first GET sends half the blob and closes the
                     connection; a Range request afterwards is honoured
        drop-always  every GET of it closes after half
      Every response is bounded; the server runs until killed.
"""
import hashlib
import http.server
import json
import os
import socket
import sys
import urllib.request

ACCEPT = ("application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, "
          "application/vnd.docker.distribution.manifest.v2+json")


def get(url):
    req = urllib.request.Request(url, headers={"Accept": ACCEPT})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read(), r.headers.get("Content-Type", "")


def copy(base, repo, tag, out):
    os.makedirs(out + "/manifests", exist_ok=True)
    os.makedirs(out + "/blobs", exist_ok=True)

    def put_manifest(ref, body, ctype):
        d = "sha256:" + hashlib.sha256(body).hexdigest()
        for name in (ref, d):
            with open(f"{out}/manifests/{name}", "wb") as f:
                f.write(body)
            with open(f"{out}/manifests/{name}.type", "w") as f:
                f.write(ctype)
        return d

    def blobs_of(body):
        m = json.loads(body)
        for desc in [m.get("config")] + m.get("layers", []):
            if desc:
                data, _ = get(f"{base}/v2/{repo}/blobs/{desc['digest']}")
                with open(f"{out}/blobs/{desc['digest']}", "wb") as f:
                    f.write(data)

    body, ctype = get(f"{base}/v2/{repo}/manifests/{tag}")
    d = put_manifest(tag, body, ctype)
    blobs_of(body)
    ftag = "sha256-" + d.split(":")[1]
    try:
        ix, itype = get(f"{base}/v2/{repo}/manifests/{ftag}")
    except urllib.error.HTTPError:
        return
    put_manifest(ftag, ix, itype)
    for desc in json.loads(ix)["manifests"]:
        mb, mt = get(f"{base}/v2/{repo}/manifests/{desc['digest']}")
        put_manifest(desc["digest"], mb, mt)
        blobs_of(mb)


def serve(root, mode, bad, portfile):
    state = {"gets": 0}

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, code, body=b"", ctype="application/json", extra=None):
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            p = self.path.split("?")[0]
            if p == "/v2/":
                return self.send(200, b"{}")
            parts = p.split("/")
            # /v2/<repo...>/manifests/<ref> or /v2/<repo...>/blobs/<digest>
            if len(parts) < 5:
                return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
            kind, ref = parts[-2], parts[-1]
            if kind == "manifests":
                f = f"{root}/manifests/{ref}"
                if not os.path.isfile(f):
                    return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                with open(f, "rb") as fh:
                    body = fh.read()
                with open(f + ".type") as fh:
                    ctype = fh.read()
                return self.send(200, body, ctype,
                                 {"Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest()})
            if kind != "blobs":
                return self.send(404, b'{"errors":[{"code":"NOT_FOUND"}]}')
            f = f"{root}/blobs/{ref}"
            if not os.path.isfile(f):
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            with open(f, "rb") as fh:
                data = fh.read()
            if ref != bad or mode == "honest" or self.command == "HEAD":
                return self.blob(data)
            if mode == "corrupt":
                data = data[:-1] + bytes([data[-1] ^ 1])
                return self.blob(data)
            if mode == "larger":
                return self.blob(data + b"\0" * 4096)
            rng = self.headers.get("Range")
            state["gets"] += 1
            if mode == "drop" and rng:
                return self.blob(data)
            # drop: half the bytes under the full length, then the connection closes
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def blob(self, data):
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[6:-1])
                return self.send(206, data[start:], "application/octet-stream",
                                 {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"})
            return self.send(200, data, "application/octet-stream")

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, portfile)
    srv.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "copy":
        copy(*sys.argv[2:6])
    elif sys.argv[1] == "serve":
        serve(*sys.argv[2:6])
    else:
        sys.exit("usage: bad_registry.py copy|serve ...")

#!/usr/bin/env python3
"""bundle_corpus.py: writes the corpus of bad bundles for test_bundle_corpus.sh.

usage: bundle_corpus.py OUTDIR GOOD.tar OTHER.key BUILD.key

GOOD.tar is a valid native bundle (uncompressed, signed by BUILD.key);
OTHER.key an untrusted minisign key (unencrypted). Writes OUTDIR/<case>.tar[.gz|.zst]
and OUTDIR/cases.tsv: file, extra ingest options, the words the refusal must contain.
Bundles that need airlock itself (expired, replay, revoked, threshold) are made by
the shell script; this file makes the ones that need odd tar entries.
"""
import gzip, hashlib, io, json, os, subprocess, sys, tarfile

out, good, other_key, build_key = sys.argv[1:5]
os.makedirs(out, exist_ok=True)
cases = []


def members(path):
    with tarfile.open(path) as t:
        return [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]


GOOD = members(good)
data = {m.name: d for m, d in GOOD}
index = json.loads(data["index.json"])
man_hex = index["manifests"][0]["digest"][7:]
manifest = json.loads(data["blobs/sha256/" + man_hex])
cfg_name = "blobs/sha256/" + manifest["config"]["digest"][7:]
weight_name = "blobs/sha256/" + manifest["layers"][0]["digest"][7:]
man_name = "blobs/sha256/" + man_hex


def info(name, size=0, kind=tarfile.REGTYPE, **kw):
    ti = tarfile.TarInfo(name)
    ti.size, ti.type, ti.mode, ti.mtime = size, kind, 0o444, 0
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def write(name, entries, fmt=tarfile.PAX_FORMAT, extra="", expect="", raw=None):
    path = os.path.join(out, name)
    if raw is not None:
        open(path, "wb").write(raw)
    else:
        with tarfile.open(path, "w", format=fmt) as t:
            for ti, d in entries:
                if d is not None:
                    ti.size = len(d)
                t.addfile(ti, io.BytesIO(d) if d is not None else None)
    cases.append((name, extra, expect))


def good_entries(replace=None, drop=(), add=(), order=None):
    res = []
    for m, d in GOOD:
        if m.name in drop:
            continue
        if replace and m.name in replace:
            d = replace[m.name]
        res.append((info(m.name), d))
    res.extend(add)
    return res


def flip(b, at=None):
    b = bytearray(b)
    i = len(b) // 2 if at is None else at
    b[i] ^= 0x01
    return bytes(b)


# ---- a flipped byte in each kind of file ----
write("flip-weight.tar", good_entries({weight_name: flip(data[weight_name])}), expect="does not match checksums.txt")
write("flip-manifest.tar", good_entries({man_name: flip(data[man_name], 40)}), expect="does not match checksums.txt")
write("flip-config.tar", good_entries({cfg_name: flip(data[cfg_name], 20)}), expect="does not match checksums.txt")
write("flip-index.tar", good_entries({"index.json": flip(data["index.json"], 30)}), expect="does not match checksums.txt")
write("flip-oci-layout.tar", good_entries({"oci-layout": flip(data["oci-layout"], 5)}), expect="does not match checksums.txt")
write("flip-checksums.tar", good_entries({"checksums.txt": flip(data["checksums.txt"], 3)}), expect="does not verify")
sig = data["checksums.txt.minisig"].decode().split("\n")
sigline = bytearray(sig[1].encode())
sigline[40] = ord("A") if sigline[40] != ord("A") else ord("B")
sig[1] = sigline.decode()
write("flip-signature.tar", good_entries({"checksums.txt.minisig": "\n".join(sig).encode()}), expect="does not verify")

# ---- truncated, corrupt, empty ----
raw = open(good, "rb").read()
write("truncated.tar", None, raw=raw[: len(raw) // 2], expect="truncated")
gz = gzip.compress(raw, mtime=0)
bad = bytearray(gz)
for i in range(24, 88):
    bad[i] ^= 0x55
write("corrupt-gzip.tar.gz", None, raw=bytes(bad), expect="gzip decompression failed")
zst = subprocess.run(["zstd", "-q", "-c"], input=raw, stdout=subprocess.PIPE, check=True).stdout
bad = bytearray(zst)
for i in range(24, 88):
    bad[i] ^= 0x55
write("corrupt-zstd.tar.zst", None, raw=bytes(bad), expect="zstd stream is corrupt")
write("empty.tar", [], expect="empty")
write("zero-bytes.tar", None, raw=b"", expect="empty")

# ---- forged: a valid signature by the trusted key over other content ----
tmp = os.path.join(out, "other-checksums.txt")
open(tmp, "wb").write(data["checksums.txt"].replace(b"index.json", b"index.jsonx"))
subprocess.run(["minisign", "-S", "-s", build_key, "-m", tmp], check=True, stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL)
write("forged-signature.tar", good_entries({"checksums.txt.minisig": open(tmp + ".minisig", "rb").read()}),
      expect="does not verify")
# ---- a signature by an untrusted key ----
subprocess.run(["minisign", "-S", "-s", other_key, "-m", tmp.replace("other-", "")] if False else
               ["minisign", "-S", "-s", other_key, "-x", tmp + ".o", "-m", tmp], check=True,
               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
real = os.path.join(out, "checksums.txt")
open(real, "wb").write(data["checksums.txt"])
subprocess.run(["minisign", "-S", "-s", other_key, "-m", real], check=True, stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL)
write("untrusted-signer.tar", good_entries({"checksums.txt.minisig": open(real + ".minisig", "rb").read()}),
      expect="no signature by a trusted key")
write("unsigned.tar", good_entries(drop=("checksums.txt.minisig",)), expect="not signed")
write("no-checksums.tar", good_entries(drop=("checksums.txt", "checksums.txt.minisig")), expect="no checksums.txt")

# ---- paths and entry types ----
w = data[weight_name]
write("dotdot-path.tar", good_entries(add=[(info("../evil.gguf"), b"x")]), expect="'..' path component")
write("dotdot-inner.tar", good_entries(add=[(info("blobs/../../evil"), b"x")]), expect="'..' path component")
write("absolute-path.tar", good_entries(add=[(info("/etc/evil"), b"x")]), expect="absolute path")
write("symlink.tar", good_entries(add=[(info("link", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), None)]),
      expect="symbolic link")
write("hardlink.tar", good_entries(add=[(info("hard", kind=tarfile.LNKTYPE, linkname=weight_name), None)]),
      expect="hard link")
write("device.tar", good_entries(add=[(info("dev", kind=tarfile.CHRTYPE, devmajor=1, devminor=3), None)]),
      expect="device")
write("fifo.tar", good_entries(add=[(info("fifo", kind=tarfile.FIFOTYPE), None)]), expect="FIFO")
write("unexpected-dir.tar", good_entries(add=[(info("etc", kind=tarfile.DIRTYPE, mode=0o755), None)]),
      expect="directory a bundle does not have")
write("duplicate.tar", good_entries(add=[(info(weight_name), w)]), expect="appears twice")
write("unlisted-extra.tar", good_entries(add=[(info("extra.txt"), b"hello")]), expect="not listed in checksums.txt")
write("missing-listed.tar", good_entries(drop=(weight_name,)), expect="missing from the bundle")
write("larger-than-listed.tar", good_entries({weight_name: w + b"\0" * 4096}), expect="more than the")
write("long-name.tar", good_entries(add=[(info("a" * (10 * 1024 * 1024)), b"x")]), expect="header too large")

# ---- a decompression bomb: a plain bundle whose file inflates far past the cap ----
zeros_sum = hashlib.sha256(b"\0" * (64 << 20)).hexdigest()
sums = (zeros_sum + "  zeros.gguf\n").encode()
open(real, "wb").write(sums)
subprocess.run(["minisign", "-S", "-s", build_key, "-m", real], check=True, stdin=subprocess.DEVNULL,
               stdout=subprocess.DEVNULL)
bomb = io.BytesIO()
with tarfile.open(fileobj=bomb, mode="w", format=tarfile.PAX_FORMAT) as t:
    t.addfile(info("checksums.txt", len(sums)), io.BytesIO(sums))
    s = open(real + ".minisig", "rb").read()
    t.addfile(info("checksums.txt.minisig", len(s)), io.BytesIO(s))
    t.addfile(info("zeros.gguf", 64 << 20), io.BytesIO(b"\0" * (64 << 20)))
write("bomb.tar.gz", None, raw=gzip.compress(bomb.getvalue(), compresslevel=9, mtime=0),
      extra="--as bomb:1 --max-entry-size 8M", expect="cap")

# ---- a plain bundle whose .gguf is not a GGUF: refused as `airlock add` refuses it ----
def plain(name, files, extra, expect):
    sums = "".join(hashlib.sha256(d).hexdigest() + "  " + n + "\n" for n, d in files).encode()
    open(real, "wb").write(sums)
    subprocess.run(["minisign", "-S", "-s", build_key, "-m", real], check=True, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL)
    sig = open(real + ".minisig", "rb").read()
    write(name, [(info("checksums.txt"), sums), (info("checksums.txt.minisig"), sig)] +
          [(info(n), d) for n, d in files], extra=extra, expect=expect)


fake = bytes(range(256)) * 64  # 16 KiB that do not start with "GGUF"
plain("fake-gguf.tar", [("fake.gguf", fake), ("tokenizer.json", b'{"tokenizer": true}\n')], "--as fake:1",
      "'fake.gguf' is not a valid GGUF file: it does not start with the GGUF magic (empty, truncated or another "
      "format); add the model's real .gguf file")
plain("empty-gguf.tar", [("empty.gguf", b"")], "--as fake:2",
      "'empty.gguf' is not a valid GGUF file: it does not start with the GGUF magic")

for f in ("other-checksums.txt", "other-checksums.txt.minisig", "checksums.txt",
          "checksums.txt.minisig"):
    try:
        os.unlink(os.path.join(out, f))
    except FileNotFoundError:
        pass
with open(os.path.join(out, "cases.tsv"), "w") as f:
    for c in cases:
        f.write("|".join(c) + "\n")
print(len(cases))

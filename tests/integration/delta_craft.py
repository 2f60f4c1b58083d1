#!/usr/bin/env python3
"""delta_craft.py: hostile variants of a delta bundle, for test_delta.sh.

usage: delta_craft.py tamper IN.tar OUT.tar
         flips one byte in the middle of the first patch (delta/...); the
         signed checksums.txt no longer matches it
       delta_craft.py swap IN.tar DONOR.tar OUT.tar KEY
         puts DONOR's first patch in place of IN's, lists its true digest in
         checksums.txt and signs that again with KEY (minisign, no password):
         a correctly signed patch whose result is not the manifest's file
"""
import hashlib, io, subprocess, sys, tarfile, tempfile, os

def members(path):
    with tarfile.open(path) as t:
        return [(m, t.extractfile(m).read() if m.isfile() else None) for m in t.getmembers()]

def write(path, ents):
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for m, data in ents:
            m = tarfile.TarInfo(m.name) if data is not None else m
            if data is None:
                t.addfile(m)
                continue
            m.size = len(data); m.mode = 0o444
            t.addfile(m, io.BytesIO(data))

def main():
    cmd = sys.argv[1]
    ents = members(sys.argv[2])
    idx = next(i for i, (m, _) in enumerate(ents) if m.name.startswith("delta/"))
    if cmd == "tamper":
        m, data = ents[idx]
        b = bytearray(data); b[len(b) // 2] ^= 0xFF
        ents[idx] = (m, bytes(b))
        write(sys.argv[3], ents)
        return
    donor = next(d for m, d in members(sys.argv[3]) if m.name.startswith("delta/"))
    m, _ = ents[idx]
    ents[idx] = (m, donor)
    si = next(i for i, (m, _) in enumerate(ents) if m.name == "checksums.txt")
    lines = []
    for line in ents[si][1].decode().splitlines():
        h, name = line.split("  ", 1)
        if name == m.name:
            h = hashlib.sha256(donor).hexdigest()
        lines.append(h + "  " + name)
    sums = ("\n".join(lines) + "\n").encode()
    ents[si] = (ents[si][0], sums)
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "checksums.txt")
        open(p, "wb").write(sums)
        subprocess.run(["minisign", "-S", "-s", sys.argv[5], "-m", p], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
        sig = open(p + ".minisig", "rb").read()
    gi = next(i for i, (m, _) in enumerate(ents) if m.name == "checksums.txt.minisig")
    ents[gi] = (ents[gi][0], sig)
    write(sys.argv[4], ents)

main()

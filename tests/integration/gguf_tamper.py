#!/usr/bin/env python3
"""gguf_tamper.py: alter one tensor of a GGUF file in place, for negative tests.

usage: gguf_tamper.py FILE [TENSOR] [--every N] [--list]
Negates every Nth float (default every one) of TENSOR (default: the first
2-D F32 tensor whose name contains "ffn_down"), by flipping the sign bit.
Pure Python: parses the GGUF header (v2/v3) to find the tensor's data offset.
"""
import struct, sys

def read_gguf(path):
    f = open(path, "rb")
    data = f.read()
    f.close()
    off = 0
    def rd(fmt):
        nonlocal off
        v = struct.unpack_from("<" + fmt, data, off)
        off += struct.calcsize("<" + fmt)
        return v[0]
    def rstr():
        nonlocal off
        n = rd("Q")
        s = data[off:off + n].decode("utf-8", "replace")
        off += n
        return s
    sizes = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    def rval(t):
        if t in sizes:
            return rd(sizes[t])
        if t == 8:
            return rstr()
        if t == 9:
            et = rd("I"); n = rd("Q")
            return [rval(et) for _ in range(n)]
        raise ValueError("unknown gguf type %d" % t)
    assert data[:4] == b"GGUF", "not a GGUF file"
    off = 4
    version = rd("I"); n_tensors = rd("Q"); n_kv = rd("Q")
    alignment = 32
    for _ in range(n_kv):
        k = rstr(); t = rd("I"); v = rval(t)
        if k == "general.alignment":
            alignment = v
    tensors = []
    for _ in range(n_tensors):
        name = rstr(); nd = rd("I"); dims = [rd("Q") for _ in range(nd)]; typ = rd("I"); o = rd("Q")
        tensors.append((name, dims, typ, o))
    base = (off + alignment - 1) // alignment * alignment
    return tensors, base

def main():
    args = [a for a in sys.argv[1:]]
    every = 1
    if "--every" in args:
        i = args.index("--every"); every = int(args[i + 1]); del args[i:i + 2]
    tensors, base = read_gguf(args[0])
    if "--list" in args:
        for name, dims, typ, o in tensors:
            print(name, dims, typ, base + o)
        return
    want = args[1] if len(args) > 1 else None
    pick = None
    for name, dims, typ, o in tensors:
        if (want and name == want) or (not want and "ffn_down" in name and typ == 0 and len(dims) == 2):
            pick = (name, dims, typ, o); break
    if not pick or pick[2] != 0:
        sys.exit("no F32 tensor %s" % (want or "ffn_down"))
    name, dims, typ, o = pick
    n = 1
    for d in dims:
        n *= d
    with open(args[0], "r+b") as f:
        for i in range(0, n, every):
            pos = base + o + 4 * i + 3  # little-endian: the sign is in the last byte
            f.seek(pos); b = f.read(1); f.seek(pos); f.write(bytes([b[0] ^ 0x80]))
    print("negated %d of %d floats of %s at offset %d" % ((n + every - 1) // every, n, name, base + o))

main()

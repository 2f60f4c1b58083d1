#!/usr/bin/env python3
"""gguf_edit.py: change whole tensors of a GGUF file in place, as a fine-tune would.

usage: gguf_edit.py FILE (--first N | --fraction F | --list)
Changes every value of the first N tensors that are 2-D (or a fraction F of
them, spread evenly) and keeps every value valid: F32/F16 get their sign
flipped, Q8_0 and Q4_0 their quants XORed (scales untouched, so no NaN
appears). Reads only the header into memory and the tensors in 4 MiB pieces,
so it works on models of any size. Pure Python (no numpy).
"""
import struct, sys

# type id -> (block bytes, XOR mask of one block)
MASKS = {
    0: (4, b"\x00\x00\x00\x80"),            # F32: sign
    1: (2, b"\x00\x80"),                    # F16: sign
    8: (34, b"\x00\x00" + b"\x01" * 32),    # Q8_0: quants
    2: (18, b"\x00\x00" + b"\x11" * 16),    # Q4_0: quants
}
ELEM_PER_BLOCK = {0: 1, 1: 1, 8: 32, 2: 32}

def read_header(path):
    with open(path, "rb") as f:
        data = f.read(64 << 20)
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
        nonlocal off
        if t in sizes:
            return rd(sizes[t])
        if t == 8:
            return rstr()
        if t == 9:
            et = rd("I"); n = rd("Q")
            if et in sizes:
                off += struct.calcsize("<" + sizes[et]) * n
                return None
            return [rval(et) for _ in range(n)]
        raise ValueError("unknown gguf type %d" % t)
    assert data[:4] == b"GGUF", "not a GGUF file"
    off = 4
    rd("I"); n_tensors = rd("Q"); n_kv = rd("Q")
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

def edit(path, t, base):
    name, dims, typ, o = t
    if typ not in MASKS:
        sys.exit("tensor %s has type %d, which this tool cannot change safely" % (name, typ))
    n = 1
    for d in dims:
        n *= d
    block, mask = MASKS[typ]
    size = n // ELEM_PER_BLOCK[typ] * block
    step = block * ((4 << 20) // block)
    m = int.from_bytes(mask * (step // block), "little")
    with open(path, "r+b") as f:
        pos = base + o
        end = pos + size
        while pos < end:
            k = min(step, end - pos)
            f.seek(pos)
            b = f.read(k)
            x = (int.from_bytes(b, "little") ^ (m & ((1 << (8 * k)) - 1))).to_bytes(k, "little")
            f.seek(pos)
            f.write(x)
            pos += k
    return size

def main():
    args = sys.argv[1:]
    tensors, base = read_header(args[0])
    if "--list" in args:
        for name, dims, typ, o in tensors:
            print(name, dims, typ, base + o)
        return
    cands = [t for t in tensors if len(t[1]) == 2 and t[1][1] > 1 and t[2] in MASKS]
    if "--first" in args:
        pick = cands[:int(args[args.index("--first") + 1])]
    elif "--fraction" in args:
        frac = float(args[args.index("--fraction") + 1])
        k = max(1, round(len(tensors) * frac))
        stride = max(1, len(cands) // k)
        pick = cands[::stride][:k]
    else:
        sys.exit(__doc__)
    total = sum(edit(args[0], t, base) for t in pick)
    print("changed %d tensors (%d bytes): %s" % (len(pick), total, " ".join(t[0] for t in pick)))

main()

#!/usr/bin/env python3
"""lora_craft.py: writes LoRA adapter GGUFs, well-formed or not, for test_lora.sh.

usage: lora_craft.py OUT [--kv KEY=VALUE]... [--no-kv KEY] TENSOR...
A TENSOR is NAME:NE0xNE1[xNE2] (F32, filled with small values). The
metadata is that of an adapter (general.type adapter, general.architecture
llama, adapter.type lora, adapter.lora.alpha 4) unless --kv replaces a
string value or --no-kv drops a key. GGUF v3, 32-byte alignment. Pure
Python (no numpy).
"""
import struct, sys

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b

def main(argv):
    out = argv[0]
    kv = {"general.architecture": "llama", "general.type": "adapter", "adapter.type": "lora"}
    alpha = True
    tensors = []
    i = 1
    while i < len(argv):
        a = argv[i]
        if a == "--kv":
            k, v = argv[i + 1].split("=", 1)
            kv[k] = v
            i += 2
        elif a == "--no-kv":
            if argv[i + 1] == "adapter.lora.alpha":
                alpha = False
            kv.pop(argv[i + 1], None)
            i += 2
        else:
            name, shape = a.rsplit(":", 1)
            tensors.append((name, [int(x) for x in shape.split("x")]))
            i += 1
    meta = b""
    for k, v in kv.items():
        meta += gstr(k) + struct.pack("<I", 8) + gstr(v)
    if alpha:
        meta += gstr("adapter.lora.alpha") + struct.pack("<If", 6, 4.0)
    n_kv = len(kv) + (1 if alpha else 0)
    info, data, off = b"", b"", 0
    for name, ne in tensors:
        n = 1
        for d in ne:
            n *= d
        info += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        info += struct.pack("<IQ", 0, off)
        blob = struct.pack("<%df" % n, *[0.01 * ((j % 7) - 3) for j in range(n)])
        blob += b"\0" * ((-len(blob)) % 32)
        data += blob
        off += len(blob)
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), n_kv) + meta + info
    head += b"\0" * ((-len(head)) % 32)
    with open(out, "wb") as f:
        f.write(head + data)

if __name__ == "__main__":
    main(sys.argv[1:])

#!/usr/bin/env python3
"""make_gguf_seeds.py: writes the small GGUF seeds of fuzz_gguf.

usage: make_gguf_seeds.py OUTDIR

Tiny but valid GGUF v3 (and one v2) files: the key/value types ggml knows,
a string array, per-layer arrays, F32/F16/Q4_0 tensors, a custom alignment.
Real models are megabytes; the fuzzer only needs the header shapes.
"""
import os, struct, sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)


def s(x):
    b = x.encode()
    return struct.pack('<Q', len(b)) + b


def kv(key, t, v):
    out = s(key) + struct.pack('<I', t)
    if t == STR:
        return out + s(v)
    if t == ARR:
        et, items = v
        out += struct.pack('<IQ', et, len(items))
        for it in items:
            out += s(it) if et == STR else struct.pack(FMT[et], it)
        return out
    return out + struct.pack(FMT[t], v)


FMT = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f', BOOL: '<?',
       U64: '<Q', I64: '<q', F64: '<d'}
# ggml type: (block elements, block bytes)
GT = {0: (1, 4), 1: (1, 2), 2: (32, 18)}


def gguf(kvs, tensors, version=3, align=32):
    head = b'GGUF' + struct.pack('<IQQ', version, len(tensors), len(kvs)) + b''.join(kvs)
    infos, data, off = b'', b'', 0
    for name, dims, t in tensors:
        n = 1
        for d in dims:
            n *= d
        size = n // GT[t][0] * GT[t][1]
        infos += s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
        infos += struct.pack('<IQ', t, off)
        blob = bytes((i * 7) & 0xff for i in range(size))
        pad = (-size) % align
        data += blob + b'\0' * pad
        off += size + pad
    out = head + infos
    out += b'\0' * ((-len(out)) % align)
    return out + data


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    base = [kv('general.architecture', STR, 'llama'), kv('general.name', STR, 'fuzz seed'),
            kv('general.file_type', U32, 0), kv('llama.context_length', U32, 128),
            kv('llama.embedding_length', U32, 8), kv('llama.block_count', U32, 1),
            kv('llama.attention.head_count', U32, 2),
            kv('tokenizer.ggml.model', STR, 'llama'),
            kv('tokenizer.ggml.tokens', ARR, (STR, ['<unk>', '<s>', '</s>', 'a', 'b']))]
    files = {
        'llama-f32': gguf(base, [('token_embd.weight', [8, 5], 0), ('output_norm.weight', [8], 0)]),
        'types-v2': gguf([kv('general.architecture', STR, 'gpt2'), kv('u8', U8, 1), kv('i8', I8, -1),
                          kv('u16', U16, 2), kv('i16', I16, -2), kv('i32', I32, -3), kv('f32', F32, 0.5),
                          kv('b', BOOL, True), kv('u64', U64, 1 << 40), kv('i64', I64, -(1 << 40)),
                          kv('f64', F64, 0.25), kv('gpt2.feed_forward_length', ARR, (I32, [16, 32])),
                          kv('tokenizer.chat_template', STR, '{{ messages }}')],
                         [('t', [4], 1)], version=2),
        'q4-align64': gguf(base + [kv('general.alignment', U32, 64)], [('blk.0.attn_q.weight', [32, 2], 2)],
                           align=64),
        'header-only': gguf([], []),
    }
    for name, data in files.items():
        with open(os.path.join(out, name), 'wb') as f:
            f.write(data)


main()

#!/usr/bin/env python3
"""The seeds of fuzz_pickle: a mode byte (0 pickle, 1 safetensors, 2 a file)
and the input. Making a pickle with pickle.dumps runs nothing.

    tests/fuzz/make_pickle_seeds.py tests/fuzz/corpus/fuzz_pickle
"""
import collections, io, json, os, pickle, struct, sys, zipfile

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


class R:
    def __reduce__(self):
        return (os.system, ('true',))


def w(name, mode, data):
    with open(os.path.join(out, name), 'wb') as f:
        f.write(bytes([mode]) + data)


for p in (0, 2, 4, 5):
    w('os-p%d' % p, 0, pickle.dumps(R(), protocol=p))
w('state-p2', 0, pickle.dumps(collections.OrderedDict(a=[1, 2], b={'x': (1.5, None, True)}), protocol=2))
w('memo-p4', 0, pickle.dumps([['x'] * 3, {'k': b'v'}], protocol=4))
w('tensor-p2', 0, b'\x80\x02}q\x00(X\x06\x00\x00\x00weightctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage'
  b'ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x04tQK\x00K\x04\x85K\x01\x85\x89'
  b'ccollections\nOrderedDict\n)RtRu.')
h = json.dumps({'__metadata__': {'format': 'pt'}, 'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                'b': {'dtype': 'BF16', 'shape': [2, 1], 'data_offsets': [8, 12]}}).encode()
w('safetensors', 1, struct.pack('<Q', len(h)) + h + b'\0' * 12)
z = io.BytesIO()
with zipfile.ZipFile(z, 'w') as f:
    f.writestr('archive/data.pkl', pickle.dumps(R(), protocol=2))
    f.writestr('archive/version', '3\n')
w('torch-zip', 2, z.getvalue())

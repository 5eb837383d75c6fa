"""Writes the fast path fuzzer's seeds (tests/fuzz/fuzz_fastpath.c) into a folder: the tests' graphs and
batches, and malformed JSON made from them (truncated at every byte, bad escapes, lone surrogates, huge
exponents, 1e400, -0, duplicate keys, deep nesting, labels, whitespace everywhere).

    .venv/bin/python tests/fuzz/fastpath_seeds.py build/fuzz/seeds/fastpath
"""

import hashlib
import struct
import sys
from pathlib import Path

import orjson

from bench.workloads import chain, random_dag, small_graph
from service.contract.examples import EXAMPLE_GRAPH

SMALL = orjson.dumps({"nodes": small_graph()})
SEED = orjson.dumps(EXAMPLE_GRAPH)


def graphs() -> list[bytes]:
    """Valid requests of every shape: ops, recorded nodes, ids of both kinds, outputs, orders."""
    import random

    recorded = {
        "nodes": [
            {"id": "x", "data": 2.0},
            {"id": 7, "data": -1.5, "children": ["x", "x"], "local_grads": [0.5, 3]},
            {"id": "out", "data": 1e-7, "children": [7], "local_grads": [1e300]},
        ]
    }
    shuffled = small_graph()
    random.Random(1).shuffle(shuffled)
    return [
        SEED,
        SMALL,
        orjson.dumps(recorded),
        orjson.dumps({"nodes": shuffled, "output": "j"}),
        orjson.dumps({"output": 29, "nodes": random_dag(30, random.Random(2))}),
        orjson.dumps({"nodes": chain(20)}),
        orjson.dumps({"nodes": [{"id": 0, "data": 5e-324}, {"id": 1, "op": "pow", "children": [0], "exponent": -1}]}),
        orjson.dumps({"nodes": [{"id": "\u00e9\U0001f642\u2028", "data": -0.0, "label": "a name"}]}),
    ]


def malformed(body: bytes) -> list[bytes]:
    """The ways a request goes wrong, made from a valid one."""
    pretty = orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    return [
        pretty,
        b" \t\r\n" + body.replace(b",", b" ,\n ").replace(b":", b" : ") + b"\n",
        body.replace(b'"id"', b'"\\u0069d"').replace(b'"op"', b'"o\\u0070"'),
        body.replace(b'"a"', b'"\\ud800"'),
        body.replace(b'"a"', b'"\\udc00\\ud800"'),
        body.replace(b'"a"', b'"\\ud83d\\ude42"'),
        body.replace(b'"a"', b'"\\x41"'),
        body.replace(b"2.0", b"2e308").replace(b"3.0", b"1e400"),
        body.replace(b"2.0", b"-0").replace(b"3.0", b"1E-400"),
        body.replace(b"2.0", b"2" + b"0" * 400),
        body.replace(b"2.0", b"0.2e1").replace(b"3.0", b"30000000000000000000000e-22"),
        body.replace(b'{"id":"a",', b'{"id":"a","id":"z",'),
        body.replace(b'"nodes":', b'"output":"e","nodes":', 1),
        body[:-1] + b',"nodes":[]}',
        body.replace(b'"a"', b"1.0"),
        body.replace(b'"a"', b"true"),
        body + b"x",
        b"\xef\xbb\xbf" + body,
        b"[" * 1030 + b"]" * 1030,
        b'{"nodes":[{"id":0,"data":1,"x":' + b"[" * 1022 + b"]" * 1022 + b"}]}",
    ]


def batches() -> list[bytes]:
    items = [SEED, SMALL, b"1", b"{}", b'{"nodes":[]}', b'{"nodes":[1,2],"nodes":3}', b'"\\u0041"', b"[[[]]]"]
    return [
        b'{"graphs":[%b]}' % b",".join(items),
        b'{"graphs":[%b,%b]}' % (SEED, SEED),
        b' { "graphs" : [ %b ] } ' % SMALL,
        b'{"graphs":[%b],"graphs":[]}' % SEED,
        b'{"graphs":[]}',
        b'{"graphs":[%b,{"nodes":[' % SEED,
    ]


def doubles() -> list[bytes]:
    """Inputs whose first 8 bytes are a double at the number writer's edges."""
    values = [5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e16, 9999999999999998.0, 1e-5, 0.1]
    return [struct.pack("<d", x) + b"   " for x in values]


def seeds() -> list[bytes]:
    found = []
    for body in graphs():
        found.append(body)
        found += malformed(body)
        found += [body[:end] for end in range(len(body))] if len(body) < 2000 else []
    found += batches() + doubles()
    return found


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    for body in seeds():
        (out / hashlib.sha1(body).hexdigest()).write_bytes(body)


if __name__ == "__main__":
    main(sys.argv[1])

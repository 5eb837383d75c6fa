"""Speed of jsonscan.h against the parsers it stands in for.

    make native-tests
    PYTHONPATH=build/native/release .venv/bin/python tests/native/bench_jsonscan.py [--numbers N] [--mb M]

1. ns per number, random doubles written by repr: json_scan_number, glibc strtod and CPython's
   PyOS_string_to_double (each in a C loop over the tokens packed NUL-separated in one buffer), and
   float(token) called from Python (interpreter overhead included, as the service would pay it).
2. MB/s on a ~10 MB array of graph nodes: json_validate (full document, every number converted)
   against orjson.loads, with and without the cycle collector running during it.
Best of several repeats each, in thread CPU time (time.thread_time, CLOCK_THREAD_CPUTIME_ID).
"""

import argparse
import gc
import json
import math
import random
import struct
import time

import _jsonscan as js
import orjson


def random_doubles(n, rng):
    out = []
    while len(out) < n:
        x = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(x):
            out.append(repr(x).encode())
    return out


def best(f, repeat):
    # thread CPU time, as the C side measures: the machine may be shared
    t = []
    for _ in range(repeat):
        start = time.thread_time()
        f()
        t.append(time.thread_time() - start)
    return min(t)


def graph_document(target_bytes, rng):
    parts = []
    size = 2
    i = 0
    while size < target_bytes:
        i += 1
        if rng.random() < 0.5:
            node = {
                "id": rng.randint(0, 99999),
                "op": rng.choice(["mul", "add", "sub"]),
                "children": [rng.randint(0, 99), rng.randint(0, 99)],
            }
        else:
            node = {"id": "n%d" % i, "op": "value", "data": round(rng.random(), 9)}
        s = json.dumps(node, separators=(", ", ": "))
        parts.append(s)
        size += len(s) + 2
    return ("[" + ", ".join(parts) + "]").encode(), i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--numbers", type=int, default=500_000)
    ap.add_argument("--mb", type=float, default=10.0)
    a = ap.parse_args()
    rng = random.Random(42)

    toks = random_doubles(a.numbers, rng)
    avg_len = sum(map(len, toks)) / len(toks)
    print("numbers: %d random doubles by repr, %.1f bytes each on average" % (len(toks), avg_len))
    packed = b"".join(t + b"\0" for t in toks)
    scan = js.bench_numbers(packed, 7, 0)
    strtod = js.bench_numbers(packed, 7, 1)
    pyos = js.bench_numbers(packed, 7, 2)
    py_float = best(lambda: [float(t) for t in toks], 5) / len(toks) * 1e9
    print(f"  json_scan_number          {scan:7.1f} ns/number")
    print(f"  strtod (glibc)            {strtod:7.1f} ns/number")
    print(f"  PyOS_string_to_double     {pyos:7.1f} ns/number")
    print(f"  float(token) from Python  {py_float:7.1f} ns/number")

    everyday = [repr(round(rng.random(), rng.randint(1, 9))).encode() for _ in range(a.numbers)]
    print("numbers: %d short decimals like 0.123456789" % len(everyday))
    packed = b"".join(t + b"\0" for t in everyday)
    print(f"  json_scan_number          {js.bench_numbers(packed, 7, 0):7.1f} ns/number")
    print(f"  strtod (glibc)            {js.bench_numbers(packed, 7, 1):7.1f} ns/number")
    print(
        "  float(token) from Python  %7.1f ns/number"
        % (best(lambda: [float(t) for t in everyday], 5) / len(everyday) * 1e9)
    )

    doc, n_nodes = graph_document(int(a.mb * 1e6), rng)
    mb = len(doc) / 1e6
    status, t_validate = js.bench_validate(doc, 7)
    assert status == "ok"
    t_orjson = best(lambda: orjson.loads(doc), 5)
    gc.disable()  # the many dicts and lists orjson makes also trigger the cycle collector
    t_orjson_nogc = best(lambda: orjson.loads(doc), 5)
    gc.enable()
    print("document: %.1f MB, %d nodes" % (mb, n_nodes))
    print(f"  json_validate                  {mb / t_validate:8.1f} MB/s  ({t_validate * 1e3:.2f} ms)")
    print(f"  orjson.loads                   {mb / t_orjson:8.1f} MB/s  ({t_orjson * 1e3:.2f} ms)")
    print(f"  orjson.loads, gc disabled      {mb / t_orjson_nogc:8.1f} MB/s  ({t_orjson_nogc * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()

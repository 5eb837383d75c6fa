#!/usr/bin/env python3
"""ns per number: write_double of shortest.h against the PyOS_double_to_string-based write_double
the fast path used before (tests/native/reference_write_double.h), both timed inside C over the same array.

    make native-tests && .venv/bin/python tests/native/bench_shortest.py [--build build/native/release] [--count 1000000]
"""

import argparse
import os
import random
import sys
from array import array


def data_sets(count):
    rng = random.Random(7)
    patterns = array("d", rng.randbytes(8 * count * 2))
    patterns = array("d", [v for v in patterns if v - v == 0][:count])
    return [
        ("uniform in [-1e3, 1e3]", array("d", (rng.uniform(-1e3, 1e3) for _ in range(count)))),
        ("random 64-bit patterns (finite)", patterns),
        ("0.1*k, k = 1..N", array("d", (0.1 * k for k in range(1, count + 1)))),
        ("small integers 0..N as floats", array("d", (float(k) for k in range(count)))),
    ]


def best_of(module, values, which, rounds, repeats=5):
    return min(module.bench(values, which, rounds)[0] for _ in range(repeats))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/native/release", help="where _shortest_test is built")
    parser.add_argument("--count", type=int, default=1_000_000)
    args = parser.parse_args()
    sys.path.insert(0, os.path.abspath(args.build))
    import _shortest_test as module

    print(f"{'data (' + str(args.count) + ' doubles)':40s} {'shortest.h':>12s} {'reference':>12s} {'speed-up':>9s}")
    for name, values in data_sets(args.count):
        mine = best_of(module, values, 0, 5)
        reference = best_of(module, values, 1, 1, 3)
        print(f"{name:40s} {mine:9.1f} ns {reference:9.1f} ns {reference / mine:8.1f}x")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Check shortest.h against Python's repr (digits, point) and orjson.dumps (write_double's bytes).

    make native-tests                                       # builds _shortest_test in build/native/*
    .venv/bin/python tests/native/check_shortest.py        # quick: the special sets + 1 million random patterns
    .venv/bin/python tests/native/check_shortest.py --random 50000000 --workers 2   # the long run
    .venv/bin/python tests/native/check_shortest.py --build build/native/exact     # another build of the module

`make sanitize` (in `make test`) runs the quick one under ASan and UBSan, `make fastpath-exhaustive`
the long ones. The expected digits and point come from parsing repr(x); the expected bytes from
orjson.dumps of the same values as a list. Exits 1 on any mismatch.
"""

import argparse
import math
import os
import random
import struct
import sys
import time
from array import array
from multiprocessing import Pool

t = None  # the _shortest_test module, imported from --build


def load(build):
    global t
    sys.path.insert(0, os.path.abspath(build))
    import _shortest_test

    t = _shortest_test


def expected_digits(x):
    """'DIGITS POINT' of a finite x > 0 from repr: x = 0.DIGITS * 10**POINT."""
    mantissa, _, exponent = repr(x).partition("e")
    whole, _, fraction = mantissa.partition(".")
    all_digits = whole + fraction
    significant = all_digits.lstrip("0")
    leading = len(all_digits) - len(significant)
    point = len(whole) + (int(exponent) if exponent else 0) - leading
    return significant.rstrip("0") + " " + str(point)


def bits_to_float(bits):
    return struct.unpack("<d", struct.pack("<Q", bits))[0]


def float_to_bits(x):
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def neighbours(x, ulps=3):
    """x and the finite positive doubles up to `ulps` steps either side."""
    out = [x]
    up = down = x
    for _ in range(ulps):
        up = math.nextafter(up, math.inf)
        down = math.nextafter(down, 0.0)
        out += [up, down]
    return [v for v in out if 0 < v < math.inf]


def check(values):
    """(count, digit mismatches, byte mismatches, examples) for finite nonzero floats of any sign."""
    values = [v for v in values if v - v == 0 and v != 0]
    signed = array("d", values)
    positive = array("d", map(abs, values))
    want = "".join(expected_digits(v) + "\n" for v in positive)
    got = t.digits_batch(positive)
    bad_digits, examples = 0, []
    if got != want:
        for v, w, g in zip(positive, want.splitlines(), got.splitlines()):
            if w != g:
                bad_digits += 1
                if len(examples) < 5:
                    examples.append(f"digits({v!r}) = {g!r}, repr says {w!r}")
    bad_bytes = 0
    got_bytes = t.write_batch(signed)
    want_bytes = orjson.dumps(values)
    if got_bytes != want_bytes:
        for v in values:
            if t.write(v) != orjson.dumps(v):
                bad_bytes += 1
                if len(examples) < 10:
                    examples.append(f"write({v!r}) = {t.write(v)!r}, orjson says {orjson.dumps(v)!r}")
    return len(values), bad_digits, bad_bytes, examples


def random_chunk(args):
    seed, count, build = args
    if t is None:
        load(build)
    rng = random.Random(seed)
    values = array("d", rng.randbytes(8 * count))
    before = t.counters()
    result = check(values)
    after = t.counters()
    delta = None if before is None else (after[0] - before[0], after[1] - before[1])
    return (*result, delta)


# ---- the special sets ------------------------------------------------------------------------


def powers_of_two():
    out = []
    for e in range(-1074, 1024):
        out += neighbours(math.ldexp(1.0, e), 2)
    return out


def powers_of_ten():
    out = []
    for k in range(-323, 309):
        out += neighbours(float(f"1e{k}"), 3)
    return out


def exponent_boundaries():
    """Smallest and largest significands of every binary exponent (subnormals included)."""
    out = []
    top = (1 << 52) - 1
    for biased in range(0, 2047):
        for fraction in (0, 1, 2, 3, top - 2, top - 1, top, 1 << 51, (1 << 51) + 1, (1 << 51) - 1):
            bits = (biased << 52) | fraction
            if bits:
                out.append(bits_to_float(bits))
    out += neighbours(5e-324, 5)
    out += neighbours(2.2250738585072014e-308, 5)  # smallest normal
    out += neighbours(2.225073858507201e-308, 5)  # largest subnormal
    out += neighbours(1.7976931348623157e308, 5)  # largest double
    return out


ROUND_DECIMALS = [
    0.1,
    0.2,
    0.3,
    0.7,
    1.1,
    2.675,
    0.5,
    1 / 3,
    2 / 3,
    1e23,
    8.41e21,
    5e-324,
    1e-323,
    9007199254740993,
    9007199254740991,
    123.456,
    1e-5,
    1e15,
    1e16,
    1e17,
    1e21,
    1e22,
    9.999999999999999e22,
    4.35,
    5e-310,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    0.3e-300,
    3.14159,
    2.718281828459045,
    1e300,
    1.5,
    100.0,
    1234567890123456.7,
    0.000123,
    299792458.0,
    6.02214076e23,
    1.602176634e-19,
    6.802601037806062e215,  # its 4x*10**-k is the non-integer nearest an integer (verify_no_fallback.py)
]


def round_decimals():
    out = []
    for x in ROUND_DECIMALS:
        out += neighbours(float(x), 3)
    return out


def random_short_decimals(count, seed):
    """d * 10**k with 1 to 6 digits, nudged by 0 to 3 ulps either way."""
    rng = random.Random(seed)
    out = []
    while len(out) < count:
        d = rng.randrange(1, 10 ** rng.randrange(1, 7))
        x = float(f"{d}e{rng.randrange(-330, 310)}")
        if 0 < x < math.inf:
            out += neighbours(x, 3)
    return out


def integers(seed):
    rng = random.Random(seed)
    out = [float(i) for i in range(1, 100001)]
    out += [float(rng.getrandbits(rng.randrange(1, 54)) | 1) for _ in range(200000)]
    out += [float(rng.getrandbits(53)) for _ in range(100000)]
    for centre in (10**15, 10**16, 2**53, 10**17):
        out += [float(centre + i) for i in range(-2000, 2001)]
    return out


def format_boundaries():
    """Walks of ulps around the decimal / exponent switches at 1e16 and 1e-5, and 1e15."""
    out = []
    for x in (1e16, 1e-5, 1e15, 9.999999999999998e15, 9.99999e-6):
        out += neighbours(x, 2000)
    rng = random.Random(5)
    out += [float(f"{rng.randrange(1, 10 ** rng.randrange(1, 17))}e-{rng.randrange(4, 8)}") for _ in range(50000)]
    out += [k * 0.00001 for k in range(1, 20001)]
    out += [k * 1e15 for k in range(1, 2001)]
    return out


def exact_ties(seed):
    """Doubles with 1 to 3 fractional bits above 2**49, where 4x*10**-k can sit exactly between
    two candidates (the closest-digit tie rule is exercised), e.g. 2**50 + 0.25."""
    rng = random.Random(seed)
    out = []
    for j in (1, 2, 3):
        for _ in range(50000):
            n = rng.randrange(2 ** (52 - j), 2 ** (53 - j))
            out.append(n + rng.randrange(1, 2**j) / 2**j)
    return out


def tenths():
    return [0.1 * k for k in range(1, 200001)] + [k / 10 for k in range(1, 200001)]


SPECIAL_SETS = [
    ("powers of two 2**-1074..2**1023, +-2 ulps", powers_of_two),
    ("powers of ten 1e-323..1e308, +-3 ulps", powers_of_ten),
    ("binary exponent boundaries, subnormal/normal/max", exponent_boundaries),
    ("round decimals +-3 ulps", round_decimals),
    ("random d*10**k (1-6 digits) +-3 ulps", lambda: random_short_decimals(300000, 3)),
    ("integers up to 2**53 and near 1e15/1e16/1e17", lambda: integers(4)),
    ("format boundaries 1e16, 1e15, 1e-5 (+-2000 ulps)", format_boundaries),
    ("exact ties (1-3 fraction bits above 2**49)", lambda: exact_ties(6)),
    ("0.1*k and k/10", tenths),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/native/counters", help="where _shortest_test is built")
    parser.add_argument("--random", type=int, default=1_000_000, help="random bit patterns")
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    load(args.build)

    total = bad = 0
    started = time.time()
    for name, make in SPECIAL_SETS:
        values = make()
        values += [-v for v in values[::7]]  # the sign is written by write_double
        count, bad_digits, bad_bytes, examples = check(values)
        # Extra: the copied PyOS_double_to_string-based write_double on the same values.
        bad_reference = sum(t.write(v) != t.reference_write(v) for v in values[::5] if v - v == 0 and v)
        total += count
        bad += bad_digits + bad_bytes + bad_reference
        print(
            f"{name:55s} {count:9d} values  digit mismatches {bad_digits}  byte mismatches {bad_bytes}"
            f"  vs reference {bad_reference}"
        )
        for line in examples:
            print("   ", line)

    extra = [0.0, -0.0]
    ok_zero = [t.write(v) for v in extra] == [orjson.dumps(v) for v in extra]
    print(f"{'zeros':55s} {2:9d} values  {'ok' if ok_zero else 'MISMATCH'}")
    bad += not ok_zero

    chunks = [
        (args.seed * 1000003 + i, min(args.chunk, args.random - i * args.chunk), args.build)
        for i in range((args.random + args.chunk - 1) // args.chunk)
    ]
    random_count = random_bad = 0
    counters = t.counters()  # the special sets' share; the random chunks report theirs
    if args.workers > 1:
        with Pool(args.workers) as pool:
            results = list(pool.imap_unordered(random_chunk, chunks))
    else:
        results = map(random_chunk, chunks)
    for count, bad_digits, bad_bytes, examples, chunk_counters in results:
        random_count += count
        random_bad += bad_digits + bad_bytes
        for line in examples:
            print("   ", line)
        if counters is not None:
            counters = (counters[0] + chunk_counters[0], counters[1] + chunk_counters[1])
    print(f"{'random 64-bit patterns (finite, nonzero)':55s} {random_count:9d} values  mismatches {random_bad}")
    total += random_count
    bad += random_bad

    if counters is not None:
        print(
            f"slow branches over all {total} values: exact-integer test {counters[0]}, "
            f"big-integer comparison {counters[1]}"
        )
    print(f"TOTAL {total} values, {bad} mismatches, {time.time() - started:.1f} s")
    sys.exit(1 if bad else 0)


import orjson  # noqa: E402  (after the docstring's usage note, so a missing orjson is obvious)

if __name__ == "__main__":
    main()

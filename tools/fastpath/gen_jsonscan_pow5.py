#!/usr/bin/env python3
"""Writes jsonscan_pow5.h: 128-bit approximations of 5**q for the Eisel-Lemire number parser.

Usage: python3 tools/fastpath/gen_jsonscan_pow5.py > service/core/jsonscan_pow5.h

For every q in [POW5_MIN, POW5_MAX] the table holds T (two 64-bit halves) and g such that
2**127 <= T < 2**128 and 5**q ~= T * 2**g, computed here with exact integer arithmetic:
  q >= 0: T is 5**q truncated to its first 128 bits (exact while 5**q < 2**128, i.e. q <= 55),
          so T * 2**g <= 5**q < (T + 1) * 2**g.
  q < 0:  T is 2**-g / 5**-q rounded up, so (T - 1) * 2**g < 5**q < T * 2**g.
jsonscan.h relies on exactly these error directions when it decides whether a rounding is safe.
"""

POW5_MIN = -342  # below it, any 64-bit w * 10**q rounds to zero
POW5_MAX = 308  # above it, any w >= 1 gives w * 10**q > DBL_MAX


def entry(q):
    if q >= 0:
        p = 5**q
        b = p.bit_length()
        if b <= 128:
            t, g = p << (128 - b), b - 128
            assert t >> (128 - b) == p
        else:
            t, g = p >> (b - 128), b - 128
            assert t << (b - 128) <= p < (t + 1) << (b - 128)
    else:
        d = 5**-q
        b = d.bit_length()  # 2**(b-1) < d < 2**b: d is odd and > 1, never a power of two
        k = 127 + b
        t = -((-(1 << k)) // d)  # ceil(2**k / d)
        g = -k
        assert (t - 1) * d < (1 << k) < t * d  # strict: d never divides a power of two
    assert (1 << 127) <= t < (1 << 128), q
    return t >> 64, t & ((1 << 64) - 1), g


def main():
    out = []
    out.append(
        "/* GENERATED FILE, do not edit: written by `python3 tools/fastpath/gen_jsonscan_pow5.py > service/core/jsonscan_pow5.h`."
    )
    out.append(" * 5**q ~= (hi * 2**64 + lo) * 2**exp for q in [JSON_POW5_MIN, JSON_POW5_MAX];")
    out.append(
        " * q >= 0: truncated (exact for q <= 55), q < 0: rounded up. See tools/fastpath/gen_jsonscan_pow5.py. */"
    )
    out.append("#ifndef JSONSCAN_POW5_H")
    out.append("#define JSONSCAN_POW5_H")
    out.append("")
    out.append("#include <stdint.h>")
    out.append("")
    out.append(f"#define JSON_POW5_MIN ({POW5_MIN})")
    out.append(f"#define JSON_POW5_MAX {POW5_MAX}")
    out.append("")
    out.append("static const struct json_pow5 {")
    out.append("    uint64_t hi, lo;")
    out.append("    int16_t exp;")
    out.append(f"}} JSON_POW5[{POW5_MAX - POW5_MIN + 1}] = {{")
    for q in range(POW5_MIN, POW5_MAX + 1):
        hi, lo, g = entry(q)
        out.append(f"    {{0x{hi:016x}u, 0x{lo:016x}u, {g}}}, /* 5**{q} */")
    out.append("};")
    out.append("")
    out.append("#endif")
    print("\n".join(out))


if __name__ == "__main__":
    main()

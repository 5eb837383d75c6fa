#!/usr/bin/env python3
"""Generate shortest_tables.h for shortest.h (Schubfach, R. Giulietti).

    python3 tools/fastpath/gen_shortest_tables.py > service/core/shortest_tables.h

Everything is computed with exact integer / Fraction arithmetic and checked exhaustively
over the ranges shortest.h uses, so the header is correct by construction:

- SHORTEST_G[e - SHORTEST_G_MIN] = floor(10**e * 2**(127 - floor(log2(10**e)))) + 1, the
  128-bit over-approximation g of 10**e (2**127 < g <= 2**128 - 1) for every e = -k that
  Schubfach needs (k ranges over floor(log10(2**q)) and floor(log10(3/4 * 2**q))).
- The three integer logarithm approximations floor(q*log10(2)), floor(q*log10(2) + log10(3/4))
  and floor(e*log2(10)) as (x*M + D) >> S, with M, D, S searched here and verified for every
  argument in a margin around the used range.
- SHORTEST_POW5[i] = 5**i for the exact integer test.
"""

import sys
from decimal import Decimal, localcontext
from fractions import Fraction

Q_MIN, Q_MAX = -1074, 971  # exponent of the ulp: x = c * 2**q
C_MIN = 2**52  # smallest normal significand (the "irregular" spacing case)
BIAS = 1 << 12  # added before the shift so the shifted value is never negative


def floor_log(base, r):
    """The integer k with base**k <= r < base**(k+1), r a positive Fraction, exactly."""
    r = Fraction(r)
    k = (
        len(str(r.numerator)) - len(str(r.denominator))
        if base == 10
        else r.numerator.bit_length() - r.denominator.bit_length()
    )
    while Fraction(base) ** k > r:
        k -= 1
    while Fraction(base) ** (k + 1) <= r:
        k += 1
    return k


def fit(name, exact, lo, hi, target):
    """Find the smallest shift S and constants M, D with floor((x*M + D) / 2**S) == exact(x)
    for all x in [lo, hi]; target(S) gives (M, D) candidates from a high-precision estimate."""
    want = {x: exact(x) for x in range(lo, hi + 1)}
    for shift in range(8, 48):
        for m, d in target(shift):
            if all(((x * m + d) >> shift) == want[x] for x in want):
                # The C code computes ((x*M + D + (BIAS << S)) >> S) - BIAS in int64.
                worst = max(abs(x * m + d) for x in (lo, hi)) + (BIAS << shift)
                assert worst < 2**62, name
                assert all(x * m + d + (BIAS << shift) >= 0 for x in (lo, hi)), name
                return shift, m, d
    raise SystemExit("no constants found for " + name)


def candidates(alpha_scaled, beta_scaled):
    """(M, D) near alpha * 2**S and beta * 2**S, given as functions of S returning Fractions."""

    def gen(shift):
        a = alpha_scaled(shift)
        b = beta_scaled(shift)
        for m in (a.__floor__(), a.__ceil__()):
            for d in (b.__floor__() - 1, b.__floor__(), b.__ceil__(), b.__ceil__() + 1):
                yield m, d

    return gen


def log_estimate(base, arg):
    """log_base(arg) to 60 significant digits as a Fraction. Only a starting point: the
    constants derived from it are verified exhaustively against floor_log."""
    with localcontext() as ctx:
        ctx.prec = 60
        value = Decimal(arg.numerator).ln() - Decimal(arg.denominator).ln()
        return Fraction(value / Decimal(base).ln())


LOG10_2 = log_estimate(10, Fraction(2))
LOG10_3_4 = log_estimate(10, Fraction(3, 4))
LOG2_10 = log_estimate(2, Fraction(10))


def main():
    # Which powers of ten Schubfach scales by: k = floor(log10(2**q)) for the regular spacing,
    # k = floor(log10(3/4 * 2**q)) when c == C_MIN and q > Q_MIN.
    ks = {floor_log(10, Fraction(2) ** q) for q in range(Q_MIN, Q_MAX + 1)}
    ks |= {floor_log(10, Fraction(3, 4) * Fraction(2) ** q) for q in range(Q_MIN + 1, Q_MAX + 1)}
    e_min, e_max = -max(ks), -min(ks)

    margin = 64
    s1, m1, d1 = fit(
        "floor_log10_pow2",
        lambda q: floor_log(10, Fraction(2) ** q),
        Q_MIN - margin,
        Q_MAX + margin,
        candidates(lambda s: LOG10_2 * 2**s, lambda s: Fraction(0)),
    )
    s2, m2, d2 = fit(
        "floor_log10_three_quarters_pow2",
        lambda q: floor_log(10, Fraction(3, 4) * Fraction(2) ** q),
        Q_MIN - margin,
        Q_MAX + margin,
        candidates(lambda s: LOG10_2 * 2**s, lambda s: LOG10_3_4 * 2**s),
    )
    s3, m3, d3 = fit(
        "floor_log2_pow10",
        lambda e: floor_log(2, Fraction(10) ** e),
        e_min - margin,
        e_max + margin,
        candidates(lambda s: LOG2_10 * 2**s, lambda s: Fraction(0)),
    )

    rows = []
    for e in range(e_min, e_max + 1):
        p = Fraction(10) ** e
        f = floor_log(2, p)
        exact = p * Fraction(2) ** (127 - f)
        g = exact.__floor__() + 1
        assert 2**127 < g < 2**128 and 0 < g - exact <= 1
        rows.append((e, g >> 64, g & (2**64 - 1)))

    # Size of the exact comparison's big integers: C * 2**a * 5**b against N * 2**-a * 5**-b
    # (a = q - k, b = -k, negative exponents moved to the other side), C < 2**55, N < 2**60.
    big_bits = 0
    for q in range(Q_MIN, Q_MAX + 1):
        for k in {floor_log(10, Fraction(2) ** q), floor_log(10, Fraction(3, 4) * Fraction(2) ** q)}:
            a, b = q - k, -k
            left = (2**55) * 2 ** max(a, 0) * 5 ** max(b, 0)
            right = (2**60) * 2 ** max(-a, 0) * 5 ** max(-b, 0)
            big_bits = max(big_bits, left.bit_length(), right.bit_length())
    big_words = (big_bits + 31) // 32 + 1

    # Division in the lanes of shortest_digits8: y // 100 for y < 10**4 in 32-bit lanes and
    # z // 10 for z < 100 in 16-bit lanes, as (y * M) >> S; the products must fit their lanes.
    div100 = next(
        (m, s)
        for s in range(1, 32)
        for m in [-(-(2**s) // 100)]
        if all((y * m) >> s == y // 100 for y in range(10**4)) and 9999 * m < 2**32
    )
    div10 = next(
        (m, s)
        for s in range(1, 16)
        for m in [-(-(2**s) // 10)]
        if all((z * m) >> s == z // 10 for z in range(100)) and 99 * m < 2**16
    )
    # After the shift, the next lane's low bits land at bit (lane - S) and up: they must stay
    # above the quotient's bits (7 for y // 100, 4 for z // 10), which the masks then keep.
    assert 32 - div100[1] >= 7 and 16 - div10[1] >= 4

    pow5 = [5**i for i in range(28)]
    assert pow5[-1] < 2**64 < 5**28

    out = sys.stdout
    out.write(
        "/* shortest_tables.h: GENERATED by `python3 tools/fastpath/gen_shortest_tables.py > service/core/shortest_tables.h`;\n"
        " * do not edit. Exact integer arithmetic, verified exhaustively by tools/fastpath/gen_shortest_tables.py. */\n"
    )
    out.write("#ifndef SHORTEST_TABLES_H\n#define SHORTEST_TABLES_H\n\n#include <stdint.h>\n\n")
    out.write("/* floor(x*a + b) == ((x*M + D + (BIAS << S)) >> S) - BIAS, checked for every x used. */\n")
    out.write(f"#define SHORTEST_LOG_BIAS {BIAS}\n")
    out.write(
        f"#define SHORTEST_LOG10_POW2_S {s1}\n#define SHORTEST_LOG10_POW2_M {m1}\n"
        f"#define SHORTEST_LOG10_POW2_D ({d1})\n"
    )
    out.write(
        f"#define SHORTEST_LOG10_3_4_POW2_S {s2}\n#define SHORTEST_LOG10_3_4_POW2_M {m2}\n"
        f"#define SHORTEST_LOG10_3_4_POW2_D ({d2})\n"
    )
    out.write(
        f"#define SHORTEST_LOG2_POW10_S {s3}\n#define SHORTEST_LOG2_POW10_M {m3}\n"
        f"#define SHORTEST_LOG2_POW10_D ({d3})\n\n"
    )
    out.write("/* 32-bit words enough for every product in the exact comparison (plus one spare). */\n")
    out.write(f"#define SHORTEST_BIG_WORDS {big_words}\n\n")
    out.write("/* y // 100 == (y * M) >> S for y < 10**4, z // 10 == (z * M) >> S for z < 100. */\n")
    out.write(f"#define SHORTEST_DIV100_M {div100[0]}\n#define SHORTEST_DIV100_S {div100[1]}\n")
    out.write(f"#define SHORTEST_DIV10_M {div10[0]}\n#define SHORTEST_DIV10_S {div10[1]}\n\n")
    out.write("/* 5**i, i = 0..27 (all that fit in 64 bits). */\n")
    out.write("static const uint64_t SHORTEST_POW5[28] = {\n")
    for i in range(0, 28, 4):
        out.write("    " + " ".join(f"UINT64_C({v})," for v in pow5[i : i + 4]) + "\n")
    out.write("};\n\n")
    out.write(
        "/* g(e) = floor(10**e * 2**(127 - floor(log2(10**e)))) + 1 as {high, low} 64-bit halves:\n"
        " * 2**127 < g < 2**128 and 0 < g - 10**e * 2**(127 - floor(log2(10**e))) <= 1. */\n"
    )
    out.write(f"#define SHORTEST_G_MIN ({e_min})\n#define SHORTEST_G_MAX {e_max}\n")
    out.write(f"static const uint64_t SHORTEST_G[{len(rows)}][2] = {{\n")
    for e, hi, lo in rows:
        out.write(f"    {{UINT64_C(0x{hi:016x}), UINT64_C(0x{lo:016x})}}, /* 10**{e} */\n")
    out.write("};\n\n#endif\n")


if __name__ == "__main__":
    main()

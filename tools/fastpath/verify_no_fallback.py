#!/usr/bin/env python3
"""Prove that shortest.h never takes its big-integer comparison (shortest_compare_exact).

    python3 verify_no_fallback.py [BITS]        (BITS defaults to 66)

shortest_scale() computes X = C * 2**q * 10**-k for C = 4c + d with a 128-bit product that
overshoots X by at most C * 2**h / 2**128 < 2**-69. The big integers are only used when X is not an
integer and lies within that bound of one. This script shows, with exact integer arithmetic over
every double (every q, every significand c, every d), that a non-integer X is never closer than
2**-BITS to an integer; the code needs BITS <= 69, and 66 holds. (With a larger BITS the script
lists the (q, d) whose closest case is nearer than 2**-BITS.)

How: for a fixed q (and so a fixed k), X = C*A/B with A/B = 2**q * 10**-k in lowest terms, and the
distance of X to the integers is r/B or (B - r)/B with r = (C*A) mod B = (4A*c + d*A) mod B, a
linear function of c modulo B. "Is some c in [lo, hi] mapped into [1, T] or [B - T, B - 1]?" is
answered by first_x below, a Euclid-like recursion, in O(log B) steps instead of 2**52 trials.
first_x is checked against brute force on small numbers before it is used.
"""

import random
import sys
from fractions import Fraction

sys.setrecursionlimit(20000)

Q_MIN, Q_MAX = -1074, 971
C_MIN = 2**52


def floor_log10(r):
    k = len(str(r.numerator)) - len(str(r.denominator))
    while Fraction(10) ** k > r:
        k -= 1
    while Fraction(10) ** (k + 1) <= r:
        k += 1
    return k


def first_x(a, m, lo, hi):
    """The least x >= 0 with lo <= (a*x) % m <= hi (0 <= lo <= hi < m), or None."""
    a %= m
    if lo == 0:
        return 0
    if a == 0:
        return None
    if 2 * a > m:
        # (a*x) % m in [lo, hi] iff ((m-a)*x) % m in [m-hi, m-lo] (lo >= 1, so no zero residue)
        return first_x(m - a, m, m - hi, m - lo)
    x = -(-lo // a)
    if a * x <= hi:
        return x
    # [lo, hi] holds no multiple of a, so it sits inside one block of a. We need the least y with
    # a multiple of a in [lo + m*y, hi + m*y], i.e. (-m*y) % a in [lo % a, hi % a].
    y = first_x(-m % a, a, lo % a, hi % a)
    if y is None:
        return None
    return -(-(lo + m * y) // a)


def hits(p, q0, m, n, lo, hi):
    """Whether some 0 <= x < n has (p*x + q0) % m in [lo, hi] (0 <= lo <= hi < m)."""
    lo2, hi2 = (lo - q0) % m, (hi - q0) % m
    ranges = [(lo2, hi2)] if lo2 <= hi2 else [(lo2, m - 1), (0, hi2)]
    for a, b in ranges:
        x = first_x(p, m, a, b)
        if x is not None and x < n:
            return True
    return False


def self_test():
    rng = random.Random(1)
    for _ in range(20000):
        m = rng.randrange(1, 200)
        a = rng.randrange(0, 3 * m)
        lo = rng.randrange(0, m)
        hi = rng.randrange(lo, m)
        want = next((x for x in range(2 * m + 1) if lo <= (a * x) % m <= hi), None)
        assert first_x(a, m, lo, hi) == want, (a, m, lo, hi)
    for _ in range(20000):
        m = rng.randrange(1, 200)
        p, q0, n = rng.randrange(m), rng.randrange(m), rng.randrange(0, 300)
        lo = rng.randrange(0, m)
        hi = rng.randrange(lo, m)
        want = any(lo <= (p * x + q0) % m <= hi for x in range(n))
        assert hits(p, q0, m, n, lo, hi) == want


def close_calls(q, k, ds, c_lo, c_hi, bits):
    """The d in ds for which some c in [c_lo, c_hi] puts (4c + d) * 2**q * 10**-k, not an integer,
    within 2**-bits of an integer."""
    ratio = Fraction(2) ** q / Fraction(10) ** k
    a, b = ratio.numerator, ratio.denominator
    t = -(-b // 2**bits) - 1  # residues r with 0 < r/b < 2**-bits are 1..t
    if t <= 0:
        return []
    bad = []
    for d in ds:
        p = (4 * a) % b
        q0 = (p * c_lo + d * a) % b
        n = c_hi - c_lo + 1
        if hits(p, q0, b, n, 1, t) or hits(p, q0, b, n, b - t, b - 1):
            bad.append(d)
    return bad


def main():
    bits = int(sys.argv[1]) if len(sys.argv) > 1 else 66
    self_test()
    print("first_x agrees with brute force on 40000 small cases")
    failures = 0
    for q in range(Q_MIN, Q_MAX + 1):
        # Regular spacing: every c of this q except the power of two (handled below).
        k = floor_log10(Fraction(2) ** q)
        c_lo = 1 if q == Q_MIN else C_MIN + 1
        for d in close_calls(q, k, (-2, 0, 2), c_lo, 2 * C_MIN - 1, bits):
            failures += 1
            print(f"q={q} d={d}: a non-integer within 2**-{bits} of an integer")
        # c = 2**52: regular for q = Q_MIN, else the irregular interval with its own k.
        cases = [(k, (-2, 0, 2))] if q == Q_MIN else [(floor_log10(Fraction(3, 4) * Fraction(2) ** q), (-1, 0, 2))]
        for kk, ds in cases:
            for d in close_calls(q, kk, ds, C_MIN, C_MIN, bits):
                failures += 1
                print(f"q={q} c=2**52 d={d}: a non-integer within 2**-{bits} of an integer")
    print(
        f"checked every q in [{Q_MIN}, {Q_MAX}] and every significand: {failures} cases where a "
        f"non-integer scaled value lies within 2**-{bits} of an integer"
    )
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

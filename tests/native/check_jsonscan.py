"""Compares jsonscan.h (through the _jsonscan harness) with orjson.loads and float().

    make native-tests
    PYTHONPATH=build/native/release .venv/bin/python tests/native/check_jsonscan.py [--scale S] [--seed N] [--table]

--scale multiplies every random count (1.0: about 5 million number tokens, 4 million strings,
a few hundred thousand documents and mutants). --table prints the orjson behaviour table as
Markdown and exits. Exit status 0 only when every count of mismatches is 0.

`make sanitize` (in `make test`) runs it at scale 0.02 under ASan and UBSan, `make fastpath-exhaustive`
at scale 1.
"""

import argparse
import json
import math
import random
import struct
import sys
import time
from collections import Counter, defaultdict
from fractions import Fraction

import _jsonscan as js
import orjson

PACK = struct.Struct("<d").pack
UNPACK = struct.Struct("<Q").unpack


def bits(x):
    return UNPACK(PACK(x))[0]


def from_bits(b):
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def orjson_result(doc):
    """(True, value) or (False, message)."""
    try:
        return True, orjson.loads(doc)
    except orjson.JSONDecodeError as e:
        return False, str(e)


class Tally:
    def __init__(self):
        self.checked = Counter()
        self.mismatch = Counter()
        self.examples = defaultdict(list)
        self.declined = defaultdict(list)

    def ok(self, area):
        self.checked[area] += 1

    def bad(self, area, what):
        self.checked[area] += 1
        self.mismatch[area] += 1
        if len(self.examples[area]) < 10:
            self.examples[area].append(what)

    def judge(self, right, area, what):
        if right:
            self.ok(area)
        else:
            self.bad(area, what)

    def decline(self, area, doc):
        self.checked[area] += 1
        self.declined[area].append(doc)

    def report(self):
        print("\n%-34s %12s %10s %8s" % ("area", "checked", "mismatch", "decline"))
        for area in self.checked:
            print(
                "%-34s %12d %10d %8d"
                % (area, self.checked[area], self.mismatch[area], len(self.declined.get(area, [])))
            )
        for area, ex in self.examples.items():
            print("MISMATCHES in", area)
            for e in ex:
                print("   ", repr(e)[:300])
        for area, docs in self.declined.items():
            print("DECLINED in", area, [d[:80] for d in docs[:20]])
        return sum(self.mismatch.values())


T = Tally()

# --- numbers --------------------------------------------------------------------------------------


def check_number(tok, area):
    """One number token as a whole document: validity, kind and value bit for bit."""
    status, kind, value, end, integer_token = js.parse_number(tok)
    doc_status = js.validate(tok)
    ok, expected = orjson_result(tok)
    whole = status == "ok" and end == len(tok)
    if status == "decline" or doc_status == "decline":
        T.decline(area, tok)
        return
    if whole != ok or (doc_status == "ok") != ok:
        T.bad(area, (tok, "scanner", status, end, doc_status, "orjson", ok, expected))
        return
    if not ok:
        T.ok(area)
        return
    if isinstance(expected, int):
        if kind not in ("int", "uint") or value != expected or type(value) is not int:
            T.bad(area, (tok, kind, value, expected))
            return
        if js.number_double(tok) != float(expected):
            T.bad(area, (tok, "double of int", js.number_double(tok), float(expected)))
            return
    else:
        if kind != "float" or bits(value) != bits(expected):
            T.bad(area, (tok, kind, value, expected))
            return
        # orjson agrees with float(token) everywhere we looked; say so if not.
        if bits(value) != bits(float(tok)):
            T.bad(area + " (vs float())", (tok, value, float(tok)))
            return
    if integer_token != (b"." not in tok and b"e" not in tok.lower()):
        T.bad(area, (tok, "integer_token flag", integer_token))
        return
    T.ok(area)


def finite_random_double(rng):
    while True:
        x = from_bits(rng.getrandbits(64))
        if math.isfinite(x):
            return x


def midpoint_decimal(b):
    """The exact midpoint between the positive doubles with bits b and b + 1, as (N, scale): N / 10**scale."""
    x = Fraction(from_bits(b))
    # past the largest double, the "next double" is 2**1024, for the overflow midpoint
    y = Fraction(2) ** 1024 if b + 1 == 0x7FF0000000000000 else Fraction(from_bits(b + 1))
    m = (x + y) / 2
    den = m.denominator
    k = den.bit_length() - 1
    assert den == 1 << k
    return m.numerator * 5**k, k


def decimal_string(n, scale, style, rng):
    """n / 10**scale written as a JSON number in one of several styles (n > 0)."""
    digits = str(n)
    if style == 0 or scale == 0:  # plain decimal
        if scale == 0:
            return digits
        digits = digits.rjust(scale + 1, "0")
        return digits[:-scale] + "." + digits[-scale:]
    if style == 1:  # integer mantissa, exponent
        return digits + "e-" + str(scale)
    # scientific: d.ddd e x
    e = len(digits) - 1 - scale
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return mant + rng.choice("eE") + rng.choice(["", "+"] if e >= 0 else [""]) + str(e)


def number_tests(rng, scale):
    n_random = int(1_000_000 * scale)
    t0 = time.time()
    for _ in range(n_random):
        x = finite_random_double(rng)
        check_number(repr(x).encode(), "numbers: repr")
        check_number((f"{x:.17g}").encode(), "numbers: %.17g")
        check_number(("%.*e" % (rng.randint(0, 30), x)).encode(), "numbers: %.{k}e")
    # everyday values: uniform in [0, 1), small ints as floats, short decimals
    for _ in range(int(200_000 * scale)):
        check_number(repr(rng.random()).encode(), "numbers: everyday")
        check_number(("%.*f" % (rng.randint(0, 8), rng.uniform(-1e6, 1e6))).encode(), "numbers: everyday")
    print("random doubles: %.1fs" % (time.time() - t0))

    t0 = time.time()
    # random mantissas of up to 19 digits with exponents up to +-400
    for _ in range(int(300_000 * scale)):
        nd = rng.randint(1, 19)
        mant = str(rng.randint(10 ** (nd - 1), 10**nd - 1))
        e = rng.randint(-400, 400)
        sign = rng.choice(["", "-"])
        check_number(
            (sign + mant + rng.choice("eE") + rng.choice(["", "+"] if e >= 0 else [""]) + str(e)).encode(),
            "numbers: exponents +-400",
        )
        p = rng.randint(1, nd)
        check_number(
            (sign + mant[:p] + ("." + mant[p:] if p < nd else "") + "e" + str(e)).encode(), "numbers: exponents +-400"
        )
    # long mantissas: 20 to 800 digits
    for _ in range(int(60_000 * scale)):
        nd = rng.randint(20, 800)
        mant = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(nd - 1))
        if rng.random() < 0.3:  # long runs of zeros or nines: near the 19-digit cut
            cut = rng.randint(1, min(nd - 1, 25))
            mant = mant[:cut] + rng.choice("09") * (nd - cut - 1) + rng.choice("0123456789")
        e = rng.randint(-400 - nd, 400 - nd // 2)
        check_number((mant + "e" + str(e)).encode(), "numbers: long mantissas")
        p = rng.randint(1, nd - 1)
        check_number((mant[:p] + "." + mant[p:]).encode(), "numbers: long mantissas")
        check_number(("0." + "0" * rng.randint(0, 330) + mant).encode(), "numbers: long mantissas")
    print("exponents and long mantissas: %.1fs" % (time.time() - t0))

    t0 = time.time()

    # halfway cases: exact midpoints between adjacent doubles, and a hair above and below
    def halfway(b, area):
        n, k = midpoint_decimal(b)
        for nn, kk in ((n, k), (n * 1000 - 1, k + 3), (n * 1000 + 1, k + 3)):
            check_number(decimal_string(nn, kk, rng.randint(0, 2), rng).encode(), area)

    for _ in range(int(40_000 * scale)):
        b = rng.getrandbits(63)
        if b >= 0x7FF0000000000000:
            continue
        halfway(b, "numbers: halfway (random)")
    for _ in range(int(20_000 * scale)):
        halfway(rng.randint(0, (1 << 52) + 10), "numbers: halfway (subnormal)")
    for b in (
        list(range(0, 64))
        + list(range((1 << 52) - 64, (1 << 52) + 64))
        + list(range(0x7FEFFFFFFFFFFFC0, 0x7FF0000000000000))
    ):
        halfway(b, "numbers: halfway (edges)")
    # ties of small integers (exactly halfway between two doubles above 2**53), all formats
    for _ in range(int(50_000 * scale)):
        m = rng.randint(1 << 52, (1 << 53) - 1)
        e = rng.randint(1, 40)
        v = (2 * m + 1) << (e - 1)
        check_number(str(v).encode(), "numbers: integer ties")
        check_number((str(v) + ".0").encode(), "numbers: integer ties")
    print("halfway cases: %.1fs" % (time.time() - t0))

    # subnormals
    for _ in range(int(100_000 * scale)):
        x = from_bits(rng.randint(1, (1 << 52) - 1))
        check_number(repr(x).encode(), "numbers: subnormals")
        check_number(("%.*e" % (rng.randint(0, 25), x)).encode(), "numbers: subnormals")

    # named values and their neighbours
    named = [
        b"2.2250738585072011e-308",
        b"2.2250738585072012e-308",
        b"2.2250738585072014e-308",
        b"2.225073858507201e-308",
        b"4.9406564584124654e-324",
        b"2.4703282292062327e-324",
        b"2.4703282292062328e-324",
        b"2.47032822920623272e-324",
        b"2.470328229206232720882e-324",
        b"7.4109846876186981e-324",
        b"7.4109846876186982e-324",
        b"1.7976931348623157e308",
        b"1.7976931348623158e308",
        b"1.7976931348623159e308",
        b"1.797693134862315807e308",
        b"1.797693134862315808e308",
        b"9007199254740993",
        b"9007199254740993.0",
        b"9007199254740993e0",
        b"9007199254740992.5",
        b"9007199254740993.0000000000000000000001",
        b"0.1",
        b"0.2",
        b"0.3",
        b"1e23",
        b"8.98846567431158e307",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"-1e-400",
        b"2e-324",
        b"3e-324",
        b"-0",
        b"-0.0",
        b"0e5",
        b"-0e5",
        b"0E-5",
        b"1E+2",
        b"1e+0",
        b"1e-0",
        b"1e007",
        b"0.0",
        b"0",
        b"1" + b"0" * 30,
        b"-1" + b"0" * 30,
        b"1" + b"0" * 308,
        b"1" + b"0" * 309,
        b"1e99999999999999999999",
        b"1e-99999999999999999999",
        b"0e99999999999999999999",
        b"-0.0e+99999",
        b"0." + b"0" * 400 + b"1e500",
        b"1" + b"0" * 400 + b"e-400",
        b"123456789012345678901234567890.5",
        b"1.0" + b"0" * 500,
        b"1.0" + b"0" * 500 + b"1",
        b"0." + b"0" * 1000 + b"1",
    ]
    for b in (0x0010000000000000, 0x000FFFFFFFFFFFFF, 1, 0x7FEFFFFFFFFFFFFF):
        for d in (-1, 0, 1):
            if 0 <= b + d < 0x7FF0000000000000:
                named.append(repr(from_bits(b + d)).encode())
    for tok in named:
        check_number(tok, "numbers: named")
    # integer tokens around the ends of the int ranges
    for centre in (2**63, 2**64, 2**53, 10**19, 10**20):
        for d in range(-300, 301):
            for sign in (1, -1):
                check_number(str(sign * (centre + d)).encode(), "numbers: ints near 2**63, 2**64")
    for _ in range(int(100_000 * scale)):
        v = rng.randint(-(2**70), 2**70)
        check_number(str(v).encode(), "numbers: random ints")
        check_number(str(rng.randint(-(2**64), 2**64) >> rng.randint(0, 64)).encode(), "numbers: random ints")
    # malformed numbers
    bad = [
        b"01",
        b"-",
        b"1.",
        b".1",
        b"1e",
        b"1e+",
        b"+1",
        b"-01",
        b"00",
        b"1.0e",
        b"-a",
        b"1.e5",
        b"1e1.5",
        b"--1",
        b"1ee5",
        b"0x10",
        b"1_000",
        b"-.5",
        b"1.5.5",
        b"Infinity",
        b"-Infinity",
        b"NaN",
        b"1e+-5",
        b"1,5",
        b"\xb91",
    ]
    for tok in bad:
        check_number(tok, "numbers: malformed")


def eisel_lemire_tests(rng, scale):
    """json_eisel_lemire alone: when certain it must be exact; when not, its candidate is within an ulp."""
    uncertain = 0
    for _ in range(int(200_000 * scale)):
        w = rng.getrandbits(rng.randint(1, 64)) or 1
        q = rng.randint(-345, 310)
        certain, b = js.eisel_lemire(w, q)
        try:
            exact = bits(float("%de%d" % (w, q)))
        except OverflowError:
            exact = 0x7FF0000000000000
        if certain and b != exact:
            T.bad("eisel-lemire: certain", (w, q, hex(b), hex(exact)))
        elif not certain:
            uncertain += 1
            T.ok("eisel-lemire: certain") if abs(b - exact) <= 1 else T.bad("eisel-lemire: candidate", (w, q, b, exact))
        else:
            T.ok("eisel-lemire: certain")
    # exact products (0 <= q <= 55) and the classic hard case families
    for _ in range(int(100_000 * scale)):
        w = rng.getrandbits(64) or 1
        q = rng.randint(0, 55)
        certain, b = js.eisel_lemire(w, q)
        exact = bits(float("%de%d" % (w, q)))
        if not certain or b != exact:
            T.bad("eisel-lemire: exact range", (w, q, certain, b, exact))
        else:
            T.ok("eisel-lemire: exact range")
    print("eisel-lemire uncertain on %d random inputs" % uncertain)


def slow_path_tests(rng, scale):
    """json_slow_path alone, from candidates up to 3 ulps off, on hard tokens: it must land exactly."""
    toks = []
    for _ in range(int(6_000 * scale)):
        b = rng.randint(0, 0x7FEFFFFFFFFFFFFE)
        n, k = midpoint_decimal(b)
        toks.append(decimal_string(n, k, rng.randint(0, 1), rng))
        toks.append(decimal_string(n * 10 + rng.choice([1, 9]), k + 1, rng.randint(0, 1), rng))
    for _ in range(int(6_000 * scale)):
        toks.append(repr(finite_random_double(rng)).lstrip("-"))
    for _ in range(int(3_000 * scale)):
        nd = rng.randint(1, 900)
        toks.append(str(rng.randint(1, 10**nd)) + "e" + str(rng.randint(-420, 320)))
    toks += [
        "0.1",
        "1e308",
        "1.7976931348623158e308",
        "1.7976931348623159e308",
        "2.4703282292062327e-324",
        "2.4703282292062328e-324",
        "1e-330",
        "5e-324",
        "4.9406564584124654e-324",
    ]
    for tok in toks:
        f = float(tok)
        exact = bits(f)
        start = exact if exact < 0x7FF0000000000000 else 0x7FEFFFFFFFFFFFFF
        for d in (-3, -1, 0, 1, 3):
            c = min(max(start + d, 0), 0x7FF0000000000000)
            status, got = js.slow_path(tok.encode(), c)
            if status != "ok":
                T.decline("slow path from +-3 ulps", tok.encode())
            elif got != exact:
                T.bad("slow path from +-3 ulps", (tok[:60], d, hex(got), hex(exact)))
            else:
                T.ok("slow path from +-3 ulps")


# --- strings --------------------------------------------------------------------------------------


def check_string(doc, area, cap=-1):
    status, data, escaped, ascii_, end = js.parse_string(doc, cap)
    doc_status = js.validate(doc)
    ok, expected = orjson_result(doc)
    if status == "decline" or doc_status == "decline":
        T.decline(area, doc)
        return
    whole = status == "ok" and end == len(doc)
    if whole != ok or (doc_status == "ok") != ok:
        T.bad(area, (doc, status, end, doc_status, ok, expected))
        return
    if ok:
        want = expected.encode("utf-8")
        if data != want or ascii_ != want.isascii() or escaped != (b"\\" in doc):
            T.bad(area, (doc, data, want, escaped, ascii_))
            return
    T.ok(area)


def string_tests(rng, scale):
    esc = {
        b'\\"': b'"',
        b"\\\\": b"\\",
        b"\\/": b"/",
        b"\\b": b"\b",
        b"\\f": b"\f",
        b"\\n": b"\n",
        b"\\r": b"\r",
        b"\\t": b"\t",
    }
    for e in esc:
        check_string(b'"' + e + b'"', "strings: escapes")
        check_string(b'"a' + e + b"b" + e + e + b'"', "strings: escapes")
    for c in range(256):
        check_string(b'"\\' + bytes([c]) + b'"', "strings: every escape letter")
        check_string(b'"a' + bytes([c]) + b'b"', "strings: every raw byte")
        check_string(b'"' + bytes([c]) + b'"', "strings: every raw byte")
    # every \uXXXX, in both cases
    for cp in range(0x10000):
        check_string(b'"\\u%04x"' % cp, "strings: every \\uXXXX")
        check_string(b'"x\\u%04X"' % cp, "strings: every \\uXXXX")
    # surrogate pairs: every high with sampled lows, every low with sampled highs, and what may follow a high
    for hi in range(0xD800, 0xDC00):
        for lo in (0xDC00, 0xDFFF, rng.randint(0xDC00, 0xDFFF)):
            check_string(b'"\\u%04x\\u%04x"' % (hi, lo), "strings: surrogate pairs")
    for lo in range(0xDC00, 0xE000):
        check_string(b'"\\ud83d\\u%04X"' % lo, "strings: surrogate pairs")
        check_string(b'"\\u%04x"' % lo, "strings: lone surrogates")
        check_string(b'"\\u%04xa"' % lo, "strings: lone surrogates")
    after_high = [
        b"",
        b"a",
        b"\\n",
        b"\\",
        b"\\u",
        b"\\u0041",
        b"\\ud800",
        b"\\udbff",
        b"\\uDC0",
        b"\\uDC0g",
        b"\\U dc00",
        b"\\\\udc00",
        b" \\udc00",
        b"\\uE000",
        b"\\udbff\\udc00",
    ]
    for h in (b"\\ud800", b"\\udbff", b"\\uD83D"):
        for a in after_high:
            check_string(b'"' + h + a + b'"', "strings: lone surrogates")
            check_string(b'"' + h + a, "strings: lone surrogates")
    check_string(b'"\\udc00\\ud800"', "strings: lone surrogates")
    # malformed \u
    for tail in (b"", b"1", b"12", b"123", b"12g4", b"g123", b"+123", b" 123", b'12"3'):
        check_string(b'"\\u' + tail + b'"', "strings: malformed \\u")
        check_string(b'"\\u' + tail, "strings: malformed \\u")
    # raw UTF-8: every 1 and 2 byte sequence, every 3 byte one led by C0..FF, sampled 4 byte ones
    t0 = time.time()
    for a in range(256):
        for b in range(256):
            check_string(b'"' + bytes([a, b]) + b'"', "strings: every 2-byte sequence")
    if scale >= 1:
        for a in range(0xC0, 0x100):
            for b in range(256):
                for c in range(256):
                    check_string(b'"' + bytes([a, b, c]) + b'"', "strings: every 3-byte sequence")
    else:
        for _ in range(int(4_000_000 * scale)):
            check_string(
                b'"' + bytes([rng.randint(0xC0, 0xFF), rng.randrange(256), rng.randrange(256)]) + b'"',
                "strings: 3-byte sequences (sampled)",
            )
    edges = [0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xFF]
    for a in range(0xF0, 0x100):
        for b in edges:
            for c in edges:
                for d in edges:
                    check_string(b'"' + bytes([a, b, c, d]) + b'"', "strings: 4-byte edges")
    for _ in range(int(200_000 * scale)):
        check_string(
            b'"' + bytes([rng.randint(0xF0, 0xF7)] + [rng.randrange(256) for _ in range(3)]) + b'"',
            "strings: 4-byte random",
        )
    print("raw byte sequences: %.1fs" % (time.time() - t0))
    # every valid code point, raw and escaped
    for cp in list(range(0x80, 0x10000, 7)) + list(range(0x10000, 0x110000, 97)) + [0x10FFFF, 0xFFFF, 0xFEFF]:
        if 0xD800 <= cp <= 0xDFFF:
            continue
        ch = chr(cp)
        check_string(b'"' + ch.encode() + b'"', "strings: code points")
        check_string(json.dumps(ch).encode(), "strings: code points")
        check_string(json.dumps("ab" + ch + "\n" + ch).encode(), "strings: code points")
    # overlong, surrogate, too-large encodings written out
    for seq in (
        b"\xc0\x80",
        b"\xc1\xbf",
        b"\xe0\x80\x80",
        b"\xe0\x9f\xbf",
        b"\xf0\x80\x80\x80",
        b"\xf0\x8f\xbf\xbf",
        b"\xed\xa0\x80",
        b"\xed\xbf\xbf",
        b"\xed\x9f\xbf",
        b"\xf4\x90\x80\x80",
        b"\xf4\x8f\xbf\xbf",
        b"\xf5\x80\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\xfc\x84\x80\x80\x80\x80",
        b"\xfe",
        b"\xff",
        b"\xc3",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\x80",
        b"\xbf",
        b"\xef\xbb\xbf",
    ):
        for pre, post in ((b"", b""), (b"abcdefghij", b""), (b"", b"abcdefghij"), (b"\\n", b"\\n")):
            check_string(b'"' + pre + seq + post + b'"', "strings: bad UTF-8 forms")
    # random strings through json.dumps, long ones to exercise the 8-byte runs
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + [
        "\n",
        "\t",
        "\x00",
        "\x1f",
        "\\",
        '"',
        "é",
        "€",
        "😀",
        "\ud800",
        "\udc00",
        "\u2028",
    ]
    for _ in range(int(100_000 * scale)):
        s = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        if rng.random() < 0.3:
            s = "x" * rng.randint(0, 30) + s
        doc = json.dumps(s, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
        check_string(doc, "strings: random via json.dumps")
        if rng.random() < 0.2:
            raw = b'"' + s.encode("utf-8", "surrogatepass") + b'"'
            check_string(raw, "strings: random raw")
    # a buffer too small declines, one just large enough does not
    for doc, need in (
        (b'"ab\\ncd"', 5),
        (b'"\\ud83d\\ude00"', 4),
        (b'"\\u00e9xyz"', 5),
        (b'"' + b"x" * 100 + b'\\t"', 101),
    ):
        st = js.parse_string(doc, need - 1)[0]
        st2, data = js.parse_string(doc, need)[:2]
        if st != "decline" or st2 != "ok" or len(data) != need:
            T.bad("strings: small buffers", (doc, st, st2))
        else:
            T.ok("strings: small buffers")
    if js.parse_string(b'"no escapes at all"', 0)[0] != "ok":
        T.bad("strings: small buffers", "zero-copy string needs no buffer")


# --- documents ------------------------------------------------------------------------------------


def check_doc(doc, area):
    st = js.validate(doc)
    ok, _ = orjson_result(doc)
    if st == "decline":
        T.decline(area, doc)
    elif (st == "ok") != ok:
        T.bad(area, (doc[:200], st, ok))
    else:
        T.ok(area)
        # a valid document's root value ends where skip_value says, before the trailing whitespace
        if ok:
            r = js.skip_value(doc)
            if r[0] != "ok" or doc[r[1] :].strip(b" \t\r\n") != b"":
                T.bad(area + " (skip_value end)", (doc[:200], r))
    return ok


INTERESTING = [
    b'"',
    b"\\",
    b",",
    b":",
    b"[",
    b"]",
    b"{",
    b"}",
    b"0",
    b"1",
    b"9",
    b"-",
    b"+",
    b".",
    b"e",
    b"E",
    b" ",
    b"\n",
    b"\t",
    b"\x0c",
    b"\x00",
    b"\x1f",
    b"\x7f",
    b"\x80",
    b"\xbf",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf0\x9f\x98\x80",
    b"\xff",
    b"u",
    b"\\u",
    b"\\ud800",
    b"t",
    b"true",
    b"null",
    b"n",
    b"1e999",
    b"01",
    b"\xef\xbb\xbf",
]


def mutate(doc, rng):
    d = bytearray(doc)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(5)
        pos = rng.randint(0, len(d))
        if op == 0 and d:
            del d[min(pos, len(d) - 1)]
        elif op == 1:
            d[pos:pos] = rng.choice(INTERESTING)
        elif op == 2 and d:
            d[min(pos, len(d) - 1)] = rng.randrange(256)
        elif op == 3 and d:
            i = min(pos, len(d) - 1)
            d[i] ^= 1 << rng.randrange(8)
        else:
            d[pos:] = d[pos : rng.randint(pos, len(d))]  # truncate or cut a slice
    return bytes(d)


def random_value(rng, depth=0):
    r = rng.random()
    if depth < 5 and r < 0.15:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 5 and r < 0.3:
        return {random_key(rng): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if r < 0.45:
        return rng.choice([None, True, False])
    if r < 0.6:
        return rng.choice([rng.randint(-10, 10), rng.randint(-(2**66), 2**66), rng.getrandbits(64)])
    if r < 0.8:
        return finite_random_double(rng) if rng.random() < 0.5 else rng.random()
    return random_key(rng)


def random_key(rng):
    return "".join(rng.choice('abcxyz_\n"\\é😀\u0000\ud800') for _ in range(rng.randint(0, 6)))


def dumps_variant(v, rng):
    s = json.dumps(
        v,
        ensure_ascii=rng.random() < 0.5,
        indent=rng.choice([None, None, 0, 2, "\t"]),
        separators=rng.choice([None, (",", ":"), (" ,  ", " : ")]),
    )
    return s.encode("utf-8", "surrogatepass")


def graph_doc(rng, n):
    nodes = []
    for i in range(n):
        if i < 2 or rng.random() < 0.4:
            nodes.append({"id": rng.choice([i, "n%d" % i]), "op": "value", "data": rng.uniform(-10, 10)})
        else:
            op = rng.choice(["add", "mul", "sub", "div", "pow", "exp", "log", "relu", "neg"])
            node = {"id": i, "op": op, "children": [rng.randrange(i), rng.randrange(i)]}
            if op == "pow":
                node["exponent"] = rng.choice([2, 0.5, -1])
            nodes.append(node)
    return {"nodes": nodes, "output": n - 1}


def document_tests(rng, scale):
    t0 = time.time()
    docs = []
    for _ in range(int(30_000 * scale)):
        doc = dumps_variant(random_value(rng), rng)
        if rng.random() < 0.1:
            doc = rng.choice([b" ", b"\n", b"\r\n", b"\t"]) + doc + rng.choice([b"", b" ", b"\n"])
        docs.append(doc)
        check_doc(doc, "documents: random")
        for _ in range(10):
            check_doc(mutate(doc, rng), "documents: random mutants")
    for _ in range(int(300 * scale) + 3):
        doc = json.dumps(graph_doc(rng, rng.randint(1, 30))).encode()
        docs.append(doc)
        check_doc(doc, "documents: graph-like")
        for _ in range(20):
            check_doc(mutate(doc, rng), "documents: random mutants")
    print("random documents and mutants: %.1fs" % (time.time() - t0))

    # hypothesis: documents of every JSON type, then mutants of them
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    text = st.text(st.characters(codec=None, exclude_categories=()), max_size=12) | st.text(max_size=12)
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | text
    )
    values = st.recursive(
        leaves, lambda kids: st.lists(kids, max_size=5) | st.dictionaries(text, kids, max_size=5), max_leaves=25
    )
    hyp_docs = []

    @settings(
        max_examples=int(20_000 * scale) + 50, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(values, st.randoms(use_true_random=False))
    def hyp(v, r):
        doc = dumps_variant(v, r)
        hyp_docs.append(doc)
        check_doc(doc, "documents: hypothesis")
        for _ in range(10):
            check_doc(mutate(doc, r), "documents: hypothesis mutants")

    t0 = time.time()
    hyp()
    print("hypothesis documents: %d in %.1fs" % (len(hyp_docs), time.time() - t0))
    docs += hyp_docs[:: max(1, len(hyp_docs) // 400)]

    # fixed documents
    fixed = [
        b"[]",
        b"{}",
        b'{"a":1,"a":2}',
        b"[1,]",
        b'{"a":1,}',
        b"[,1]",
        b"[1 2]",
        b'{"a" 1}',
        b"{1:2}",
        b'{"a":}',
        b"",
        b" ",
        b"\t1\n",
        b"\x0c1",
        b"\xa01",
        b"\x001",
        b"1\x00",
        b"[1]x",
        b"[1] \x00",
        b"\r\n[\r\n]\r\n",
        b"tru",
        b"nul",
        b"True",
        b"nulll",
        b"[true,false,null]",
        b"[truefalse]",
        b'"a" "b"',
        b"[]]",
        b"[[]",
        b"{]",
        b"[}",
        b'{"a":1]',
        b'["a",]',
        b'{"a"}',
        b'{"a",1}',
        b'{"a":1 "b":2}',
        b"\xef\xbb\xbf[]",
        b"[\xef\xbb\xbf]",
        b"[1,\n2]",
        b'{"\\ud800":1}',
        b'{"\xff":1}',
        b'{"a":[1,{"b":[null,{"c":"d"}]}]}',
        b"[-]",
        b"[1e5,-0,-0.0]",
    ]
    for doc in fixed:
        check_doc(doc, "documents: fixed")
    docs += fixed

    # nesting: orjson allows 1024 open containers, refuses 1025
    for n in (1, 2, 1000, 1023, 1024, 1025, 1026, 2000, 100_000):
        for doc in (
            b"[" * n + b"]" * n,
            b'{"a":' * n + b"1" + b"}" * n,
            b"[" * n + b"1" + b"]" * n,
            b'[{"k":' * (n // 2) + b"[]" + b"}]" * (n // 2),
            b"[" * n,
            b"[" * n + b"]" * (n - 1),
        ):
            check_doc(doc, "documents: nesting")
    for depth in (0, 1, 23, 1000, 1023, 1024):
        for n in (0, 1, 1024 - depth, 1025 - depth):
            if n < 0:
                continue
            doc = b"[" * n + b"0" + b"]" * n
            want = "ok" if depth + n <= 1024 else "invalid"
            got = js.skip_value(doc, depth)[0]
            T.judge(got == want, "skip_value depth", (depth, n, got))

    # every prefix of every document: never a crash, and validity as orjson says
    t0 = time.time()
    valid_prefixes = 0
    for doc in docs:
        doc_ok = orjson_result(doc)[0]
        for k in range(len(doc)):
            prefix = doc[:k]
            if check_doc(prefix, "documents: every prefix"):
                valid_prefixes += 1
                # only a number, or a value followed by part of its whitespace, can stop early and be whole
                root = orjson.loads(prefix)
                if doc_ok and isinstance(root, (list, dict, str)) and doc[k:].strip(b" \t\r\n") != b"":
                    T.bad("documents: every prefix", ("container prefix valid", prefix[:100]))
    print(
        "prefixes of %d documents: %.1fs, %d prefixes were valid documents (numbers cut short, or whitespace)"
        % (len(docs), time.time() - t0, valid_prefixes)
    )


def helper_tests():
    cases = [
        (b"true", ("ok", "true", 4)),
        (b"false", ("ok", "false", 5)),
        (b"null", ("ok", "null", 4)),
        (b"truex", ("ok", "true", 4)),
        (b"tru", ("invalid", None, None)),
        (b"nul", ("invalid", None, None)),
        (b"True", ("invalid", None, None)),
        (b"fals", ("invalid", None, None)),
        (b"", ("invalid", None, None)),
    ]
    for doc, want in cases:
        got = js.scan_literal(doc)
        T.judge(got == want, "helpers: literals", (doc, got, want))
    for doc, c, want in (
        (b"  :", ":", 3),
        (b":", ":", 1),
        (b" \t\r\n,", ",", 5),
        (b" ", ",", None),
        (b"", ",", None),
        (b"\x0c,", ",", None),
        (b" x", ",", None),
    ):
        got = js.expect(doc, c)
        T.judge(got == want, "helpers: expect", (doc, c, got))


def orjson_table():
    """The inputs whose orjson 3.13.0 behaviour the README reports, with the scanner's outcome."""
    rows = [
        b'"\\ud800"',
        b'"\\udc00"',
        b'"\\ud800\\u0041"',
        b'"\\ud800x"',
        b'"\\ud800\\ud800"',
        b'"\\udc00\\ud800"',
        b'"\\ud83d\\ude00"',
        b'"a\\u0000b"',
        b'"a\x01b"',
        b'"a\x1fb"',
        b'"a\x7fb"',
        b'"\xc0\x80"',
        b'"\xe0\x80\x80"',
        b'"\xf0\x80\x80\x80"',
        b'"\xed\xa0\x80"',
        b'"\xf4\x90\x80\x80"',
        b'"\xf5\x80\x80\x80"',
        b'"\xe2\x82"',
        b'\xef\xbb\xbf"a"',
        b'"\xef\xbb\xbf"',
        b'"\\U00e9"',
        b'"\\\'"',
        b'"\\/"',
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"-1e-400",
        b"2e-324",
        b"3e-324",
        b"2.4703282292062327e-324",
        b"2.4703282292062328e-324",
        b"1.7976931348623158e308",
        b"1.7976931348623159e308",
        b"1e99999999999999999999",
        b"1" + b"0" * 30,
        b"1" + b"0" * 400,
        b"9223372036854775807",
        b"9223372036854775808",
        b"18446744073709551615",
        b"18446744073709551616",
        b"-9223372036854775808",
        b"-9223372036854775809",
        b"9007199254740993",
        b"9007199254740993.0",
        b"-0",
        b"-0.0",
        b"0e5",
        b"-0e5",
        b"1E+2",
        b"01",
        b"1.",
        b".1",
        b"+1",
        b"NaN",
        b"Infinity",
        b"[1,]",
        b'{"a":1,"a":2}',
        b"",
        b" ",
        b"\x0c1",
        b"1\x00",
        b"[" * 1024 + b"]" * 1024,
        b"[" * 1025 + b"]" * 1025,
    ]
    print("| input | orjson.loads | scanner |")
    print("| --- | --- | --- |")
    for doc in rows:
        ok, v = orjson_result(doc)
        if ok:
            r = "accepts: " + (repr(v) if not isinstance(v, list) else "a list")
            if isinstance(v, float):
                r += " (float)"
            elif isinstance(v, int) and not isinstance(v, bool):
                r += " (int)"
        else:
            r = "refuses: " + v.split(":")[0]
        shown = repr(doc) if len(doc) <= 48 else repr(doc[:20]) + "... (%d bytes)" % len(doc)
        if doc.startswith(b"[" * 1024):
            shown = "%d nested `[`…`]`" % doc.count(b"[")
        st = js.validate(doc)
        if st == "ok" and doc and doc[0:1] in b"-0123456789":
            n = js.parse_number(doc)
            st += f" ({n[1]} {n[2]!r})"
        elif st == "ok" and doc[0:1] == b'"':
            st += f" ({js.parse_string(doc)[1]!r})"
        print("| `{}` | {} | {} |".format(shown.replace("|", "\\|"), r.replace("|", "\\|"), st))


def run(scale, seed):
    rng = random.Random(seed)
    t0 = time.time()
    helper_tests()
    eisel_lemire_tests(rng, scale)
    slow_path_tests(rng, scale)
    number_tests(rng, scale)
    string_tests(rng, scale)
    document_tests(rng, scale)
    bad = T.report()
    print("numbers that took the exact slow path (json_scan_number calls): %d" % js.slow_path_count())
    print("\ntotal %.0fs, %d mismatches" % (time.time() - t0, bad))
    n_checked = sum(T.checked.values())
    print("%d passed, %d failed" % (n_checked - bad, bad))
    return bad


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--table", action="store_true")
    a = ap.parse_args()
    if a.table:
        orjson_table()
        sys.exit(0)
    sys.exit(1 if run(a.scale, a.seed) else 0)

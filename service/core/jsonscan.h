/* jsonscan.h: the lower layer of a JSON parser over request bytes: whitespace, strings, numbers,
 * literals and skipping whole values, each deciding validity exactly as orjson 3.13.0's loads does
 * (RFC 8259 plus orjson's limits: strict UTF-8, no lone surrogate escapes, numbers that leave the
 * finite doubles refused, at most JSON_MAX_DEPTH nested containers).
 *
 * Header-only: #include it into one C file; every function is static. It includes the generated
 * table jsonscan_pow5.h (python3 tools/fastpath/gen_jsonscan_pow5.py > service/core/jsonscan_pow5.h). Needs a GCC-compatible compiler
 * (unsigned __int128, __builtin_clzll) and IEEE doubles evaluated in double precision
 * (FLT_EVAL_METHOD 0: x86-64 SSE2, aarch64); build with -ffp-contract=off -fno-fast-math.
 *
 * Contract shared by the scanners that return json_status:
 *   JSON_OK       the token is valid; *next is set to the byte after it (nothing else is consumed).
 *   JSON_INVALID  orjson.loads refuses any document in which this token stands at this place.
 *   JSON_DECLINE  this scanner does not decide (a caller buffer too small, a slow-path limit);
 *                 the caller hands the body to the slow path (orjson), which decides.
 * On anything but JSON_OK, *next and the outputs are unspecified. Every function reads only bytes in
 * [p, end), never allocates, never recurses, and uses a bounded stack (the number slow path, the
 * deepest, about 2.5 KB).
 */
#ifndef JSONSCAN_H
#define JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "jsonscan_pow5.h"

typedef enum { JSON_OK = 0, JSON_INVALID = 1, JSON_DECLINE = 2 } json_status;

/* orjson refuses a document with more than this many containers open at once. */
#define JSON_MAX_DEPTH 1024

__extension__ typedef unsigned __int128 json_u128;

/* --- whitespace and single bytes ---------------------------------------------------------------- */

/* RFC 8259 whitespace only: form feed, NBSP and a BOM are not whitespace, and orjson refuses them. */
static inline bool json_is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* The first byte at or after p that is not whitespace, or end. */
static inline const char *json_skip_ws(const char *p, const char *end) {
    while (p < end && json_is_ws((unsigned char)*p))
        p++;
    return p;
}

/* Skips whitespace, then consumes the byte c if it is there: true and *next after it; false (with
 * *next untouched) if the input ends or another byte stands there. */
static inline bool json_expect(const char *p, const char *end, char c, const char **next) {
    p = json_skip_ws(p, end);
    if (p < end && *p == c) {
        *next = p + 1;
        return true;
    }
    return false;
}

typedef enum {
    JSON_T_END,     /* no byte left */
    JSON_T_OBJECT,  /* { */
    JSON_T_ARRAY,   /* [ */
    JSON_T_STRING,  /* " */
    JSON_T_NUMBER,  /* - or a digit */
    JSON_T_LITERAL, /* t, f or n: maybe true, false or null */
    JSON_T_OTHER,   /* a byte no JSON value starts with (including } ] , :) */
} json_type;

/* What kind of value the byte at p starts (p must already be past any whitespace). */
static inline json_type json_peek(const char *p, const char *end) {
    if (p >= end)
        return JSON_T_END;
    switch (*p) {
    case '{':
        return JSON_T_OBJECT;
    case '[':
        return JSON_T_ARRAY;
    case '"':
        return JSON_T_STRING;
    case 't':
    case 'f':
    case 'n':
        return JSON_T_LITERAL;
    case '-':
        return JSON_T_NUMBER;
    default:
        return (unsigned char)(*p - '0') < 10 ? JSON_T_NUMBER : JSON_T_OTHER;
    }
}

/* --- literals ----------------------------------------------------------------------------------- */

typedef enum { JSON_FALSE = 0, JSON_TRUE = 1, JSON_NULL = 2 } json_literal;

/* p at a literal: exactly "true", "false" or "null" (case-sensitive). What follows it is the
 * caller's business: "truex" scans as true and the caller then refuses the 'x'. */
static inline json_status json_scan_literal(const char *p, const char *end, json_literal *which, const char **next) {
    size_t left = (size_t)(end - p);
    if (left >= 4 && memcmp(p, "true", 4) == 0) {
        *which = JSON_TRUE;
        *next = p + 4;
        return JSON_OK;
    }
    if (left >= 4 && memcmp(p, "null", 4) == 0) {
        *which = JSON_NULL;
        *next = p + 4;
        return JSON_OK;
    }
    if (left >= 5 && memcmp(p, "false", 5) == 0) {
        *which = JSON_FALSE;
        *next = p + 5;
        return JSON_OK;
    }
    return JSON_INVALID;
}

/* --- strings ------------------------------------------------------------------------------------ */

typedef struct {
    const char *ptr; /* the string's UTF-8 bytes: into the input (escaped false) or into the buffer */
    size_t len;
    bool escaped; /* it had escapes, so ptr is the caller's buffer holding the decoded bytes */
    bool ascii;   /* every decoded byte is below 0x80 (\u0000 included) */
} json_string;

/* Length of the well-formed UTF-8 sequence of 2 to 4 bytes at s (s[0] >= 0x80), or 0 if it is not
 * one. Well-formed as in Unicode's table 3-7: no overlong forms, no encoded surrogates
 * (ED A0..BF), nothing above U+10FFFF, no truncated sequence. orjson refuses the whole document
 * otherwise. */
static inline size_t json_utf8_length(const unsigned char *s, const unsigned char *end) {
    unsigned char c = s[0];
    size_t left = (size_t)(end - s);
    if (c >= 0xC2 && c <= 0xDF)
        return left >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (s[2] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return s[1] >= lo && s[1] <= hi ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return s[1] >= lo && s[1] <= hi ? 4 : 0;
    }
    return 0; /* 80..C1 (continuation bytes, overlong two-byte leads) and F5..FF */
}

/* The value of 4 hex digits (either case), or -1. */
static inline int32_t json_hex4(const unsigned char *s) {
    int32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned char c = s[k];
        int32_t d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Whether any of the 8 bytes of x is '"', '\\', below 0x20 or above 0x7F: the bytes that stop the
 * plain run of a string. The classic "has a zero byte" test; it may misreport bytes after a real
 * hit (borrows), never a word without one, which is all a yes/no needs. */
static inline bool json_word_has_special(uint64_t x) {
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    uint64_t quote = x ^ (ones * '"'), backslash = x ^ (ones * '\\');
    uint64_t hits = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((x - ones * 0x20) & ~x) | x;
    return (hits & highs) != 0;
}

/* Shared by json_scan_string and json_skip_string: decode says whether escapes are written out. */
static inline json_status json_string_core(const char *p, const char *end, char *buf, size_t cap, bool decode,
                                           json_string *out, const char **next) {
    if (p >= end || *p != '"')
        return JSON_INVALID;
    const unsigned char *s = (const unsigned char *)p + 1, *e = (const unsigned char *)end;
    const unsigned char *run = s; /* start of the bytes not yet copied to buf (decode only) */
    size_t used = 0;
    bool escaped = false, ascii = true;
    for (;;) {
        /* Plain ASCII goes 8 bytes at a time: in an id, an op or a key nothing else occurs. */
        while (e - s >= 8) {
            uint64_t x;
            memcpy(&x, s, 8);
            if (json_word_has_special(x))
                break;
            s += 8;
        }
        if (s >= e)
            return JSON_INVALID; /* no closing quote */
        unsigned char c = *s;
        if (c == '"')
            break;
        if (c < 0x20)
            return JSON_INVALID; /* raw control characters must be escaped */
        if (c < 0x80) {
            if (c != '\\') {
                s++;
                continue;
            }
            /* An escape: first copy the plain run before it. */
            if (decode) {
                size_t n = (size_t)(s - run);
                if (n > cap - used)
                    return JSON_DECLINE;
                memcpy(buf + used, run, n);
                used += n;
            }
            escaped = true;
            if (e - s < 2)
                return JSON_INVALID;
            uint32_t cp;
            switch (s[1]) {
            case '"':
            case '\\':
            case '/':
                cp = s[1];
                break;
            case 'b':
                cp = '\b';
                break;
            case 'f':
                cp = '\f';
                break;
            case 'n':
                cp = '\n';
                break;
            case 'r':
                cp = '\r';
                break;
            case 't':
                cp = '\t';
                break;
            case 'u': {
                if (e - s < 6)
                    return JSON_INVALID;
                int32_t v = json_hex4(s + 2);
                if (v < 0)
                    return JSON_INVALID;
                cp = (uint32_t)v;
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return JSON_INVALID; /* orjson: a low surrogate first ("invalid high surrogate") */
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    /* orjson takes a high surrogate only when \u and a low one follow at once. */
                    if (e - s < 12 || s[6] != '\\' || s[7] != 'u')
                        return JSON_INVALID;
                    int32_t lo = json_hex4(s + 8);
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return JSON_INVALID;
                    cp = 0x10000 + ((cp - 0xD800) << 10) + ((uint32_t)lo - 0xDC00);
                    s += 6;
                }
                s += 4; /* the hex digits; the 2 bytes \u follow below */
                break;
            }
            default:
                return JSON_INVALID; /* \a, \x, \', \U, ... */
            }
            s += 2;
            run = s;
            if (cp >= 0x80)
                ascii = false;
            if (decode) {
                unsigned char u[4];
                size_t n;
                if (cp < 0x80) {
                    u[0] = (unsigned char)cp;
                    n = 1;
                } else if (cp < 0x800) {
                    u[0] = (unsigned char)(0xC0 | cp >> 6);
                    u[1] = (unsigned char)(0x80 | (cp & 0x3F));
                    n = 2;
                } else if (cp < 0x10000) {
                    u[0] = (unsigned char)(0xE0 | cp >> 12);
                    u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                    u[2] = (unsigned char)(0x80 | (cp & 0x3F));
                    n = 3;
                } else {
                    u[0] = (unsigned char)(0xF0 | cp >> 18);
                    u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
                    u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
                    u[3] = (unsigned char)(0x80 | (cp & 0x3F));
                    n = 4;
                }
                if (n > cap - used)
                    return JSON_DECLINE;
                memcpy(buf + used, u, n);
                used += n;
            }
            continue;
        }
        size_t n = json_utf8_length(s, e);
        if (n == 0)
            return JSON_INVALID; /* orjson refuses any document that is not UTF-8 */
        s += n;
        ascii = false;
    }
    /* s at the closing quote */
    if (escaped && decode) {
        size_t n = (size_t)(s - run);
        if (n > cap - used)
            return JSON_DECLINE;
        memcpy(buf + used, run, n);
        used += n;
    }
    if (out != NULL) {
        out->escaped = escaped;
        out->ascii = ascii;
        if (escaped) {
            out->ptr = buf;
            out->len = decode ? used : 0;
        } else {
            out->ptr = p + 1;
            out->len = (size_t)((const char *)s - (p + 1));
        }
    }
    *next = (const char *)s + 1;
    return JSON_OK;
}

/* p at '"': scans one string, validating it as orjson does, and gives its UTF-8 bytes: zero-copy
 * (out->ptr into [p, end)) when it has no escape, else decoded into buf[0, cap) (escapes replaced,
 * a surrogate pair as one 4-byte sequence, \u0000 as a 0 byte). The decoded form is never longer
 * than the token, so cap >= (end - p) always suffices; JSON_DECLINE when cap is too small (only
 * then, and only for a string with escapes). */
static inline json_status json_scan_string(const char *p, const char *end, char *buf, size_t cap, json_string *out,
                                           const char **next) {
    return json_string_core(p, end, buf, cap, true, out, next);
}

/* p at '"': validates one string as json_scan_string does, decoding nothing. Never JSON_DECLINE. */
static inline json_status json_skip_string(const char *p, const char *end, const char **next) {
    return json_string_core(p, end, NULL, 0, false, NULL, next);
}

/* --- numbers ------------------------------------------------------------------------------------ */

typedef enum {
    JSON_INT,   /* orjson makes a Python int: value in i, within [-2**63, 2**63 - 1] */
    JSON_UINT,  /* orjson makes a Python int: value in u, within [2**63, 2**64 - 1] */
    JSON_FLOAT, /* orjson makes a Python float: value in d */
} json_number_kind;

typedef struct {
    json_number_kind kind;
    bool integer_token; /* no fraction, no exponent (such a token is a JSON_FLOAT outside the int range) */
    int64_t i;          /* JSON_INT */
    uint64_t u;         /* JSON_UINT */
    double d;           /* every kind: the value as a double (for an int, float(int): correctly rounded) */
} json_number;

#define JSON_DOUBLE_INF_BITS 0x7FF0000000000000u
#define JSON_DOUBLE_MAX_BITS 0x7FEFFFFFFFFFFFFFu

/* Eisel-Lemire (D. Lemire, "Number Parsing at a Gigabyte per Second", Software: Practice and
 * Experience 51(8), 2021): the double nearest to w * 10**q, for w != 0, from one 64-bit significand
 * times a 128-bit power of five. Written here with the whole 192-bit product and an explicit error
 * interval, so that it is sound on its own (it does not lean on Mushtak & Lemire's 2023 proof that
 * the paper's fallback test never fires for 19 digits; a doubt here goes to the exact slow path).
 *
 * 10**q = 5**q * 2**q and the table gives 5**q ~= T * 2**g with T of 128 bits, so the value is
 * P * 2**(g + q - l) with P = wn * T, wn = w << l, a 192-bit product. Rounding P at the mantissa's
 * last bit only needs P's bits; what is uncertain is how far the true product is from P: T is off
 * by less than 1, in a known direction, so the true product lies in [P, P + wn) when T is truncated
 * (q > 55), in (P - wn, P] when T is rounded up (q < 0), and is P itself when T is exact
 * (0 <= q <= 55). The answer is certain unless that interval holds a halfway point between two
 * doubles (crossing a mantissa boundary rounds the same way on both sides). Returns whether it is
 * certain; *bits is the rounding of P either way, within one unit in the last place of the true
 * answer, and JSON_DOUBLE_INF_BITS past the largest double. */
static inline bool json_eisel_lemire(uint64_t w, int64_t q, uint64_t *bits) {
    if (q < JSON_POW5_MIN) {
        *bits = 0; /* w * 10**q < 2**64 * 10**-343 < 2**-1075: rounds to zero */
        return true;
    }
    if (q > JSON_POW5_MAX) {
        *bits = JSON_DOUBLE_INF_BITS; /* >= 10**309 */
        return true;
    }
    int l = __builtin_clzll(w);
    uint64_t wn = w << l;
    const struct json_pow5 *t = &JSON_POW5[q - JSON_POW5_MIN];
    json_u128 a = (json_u128)wn * t->lo, b = (json_u128)wn * t->hi;
    json_u128 mid = (a >> 64) + (uint64_t)b;
    uint64_t p0 = (uint64_t)a, p1 = (uint64_t)mid, p2 = (uint64_t)(b >> 64) + (uint64_t)(mid >> 64);
    /* P >= 2**63 * 2**127, so its top bit is 190 or 191. */
    int top = (p2 >> 63) ? 191 : 190;
    int64_t base = t->exp + q - l; /* P's bit 0 weighs 2**base */
    int64_t e2 = top + base;       /* the value lies in [2**e2, 2**(e2 + 1)) */
    if (e2 > 1023) {
        /* Only q > 0 gets here, where P is at most the true product. */
        *bits = JSON_DOUBLE_INF_BITS;
        return true;
    }
    /* s: the number of P's bits below the mantissa's last bit; a subnormal's last bit weighs 2**-1074. */
    int64_t s = e2 >= -1022 ? top - 52 : -1074 - base;
    if (s > 192) {
        /* Half of the last bit is 2**(s-1) >= 2**192 > P + wn: below half the smallest subnormal. */
        *bits = 0;
        return true;
    }
    /* s >= 138, so the mantissa and the halfway bit both lie in p2; k = s - 128 in [10, 64]. */
    int k = (int)s - 128;
    uint64_t m = k == 64 ? 0 : p2 >> k;
    uint64_t r2 = k == 64 ? p2 : p2 & ((UINT64_C(1) << k) - 1); /* the bits below the mantissa: r2:p1:p0 */
    uint64_t h2 = UINT64_C(1) << (k - 1);                        /* halfway: h2:0:0 */
    json_u128 rl = (json_u128)p1 << 64 | p0;
    bool above = r2 > h2 || (r2 == h2 && rl != 0);
    bool tie = r2 == h2 && rl == 0;
    bool certain;
    if (q >= 0 && q <= 55)
        certain = true; /* exact product: a tie is a real tie */
    else if (q > 55)
        /* true in [P, P + wn): doubt if halfway - wn < remainder <= halfway */
        certain = !(tie || (r2 == h2 - 1 && rl != 0 && (json_u128)(0 - rl) < wn));
    else
        /* true in (P - wn, P]: doubt if halfway <= remainder < halfway + wn */
        certain = !(r2 == h2 && rl < wn);
    if (above || (tie && (m & 1)))
        m++;
    /* A normal mantissa holds its hidden bit 2**52, which adds 1 to the exponent field: so the field
     * is e2 + 1023 here, and a carry out of the mantissa (m == 2**53) moves on into the exponent, up
     * to infinity. A subnormal's field is 0, and its carry to 2**52 makes the smallest normal. */
    uint64_t field = e2 >= -1022 ? (uint64_t)(e2 + 1022) : 0;
    uint64_t r = (field << 52) + m;
    *bits = r >= JSON_DOUBLE_INF_BITS ? JSON_DOUBLE_INF_BITS : r;
    return certain;
}

/* --- exact slow path: big integers ---------------------------------------------------------------- */

/* The slow path compares the decimal with a halfway point between two doubles, exactly. A halfway
 * point (2m+1) * 2**(e-1), m < 2**53, e - 1 >= -1075, has at most 768 significant digits, so
 * keeping the first 800 digits of the input and remembering whether any later digit is non-zero
 * compares exactly (a halfway point is a multiple of the 800th digit's unit, so truncated < it
 * means input < it). Operands stay below 4800 bits: digits (2658 bits) times 5**308 times 2**1383,
 * or (2m+1) times 5**1124 times 2**2094; 200 limbs of 32 bits (6400 bits) hold them. */
#define JSON_SLOW_DIGITS 800
#define JSON_BIG_LIMBS 200
/* Called each time a number takes the exact slow path; a test harness may count them. */
#ifndef JSON_ON_SLOW_PATH
#define JSON_ON_SLOW_PATH() ((void)0)
#endif
#define JSON_SLOW_STEPS 8 /* a candidate one unit in the last place off needs 2 */

typedef struct {
    int n;                       /* limbs in use; limb[n - 1] != 0 unless n == 0 */
    uint32_t limb[JSON_BIG_LIMBS]; /* least significant first */
} json_big;

/* b = b * m + a. False if it no longer fits. */
static inline bool json_big_mul_add(json_big *b, uint32_t m, uint32_t a) {
    uint64_t carry = a;
    for (int i = 0; i < b->n; i++) {
        uint64_t t = (uint64_t)b->limb[i] * m + carry;
        b->limb[i] = (uint32_t)t;
        carry = t >> 32;
    }
    if (carry) {
        if (b->n == JSON_BIG_LIMBS)
            return false;
        b->limb[b->n++] = (uint32_t)carry;
    }
    return true;
}

static inline bool json_big_mul_pow5(json_big *b, int64_t k) {
    static const uint32_t small[14] = {1, 5, 25, 125, 625, 3125, 15625, 78125, 390625, 1953125, 9765625,
                                       48828125, 244140625, 1220703125};
    for (; k >= 13; k -= 13)
        if (!json_big_mul_add(b, small[13], 0))
            return false;
    return k == 0 || json_big_mul_add(b, small[k], 0);
}

static inline bool json_big_shift_left(json_big *b, int64_t k) {
    if (b->n == 0 || k == 0)
        return true;
    int64_t words = k / 32;
    int bits = (int)(k % 32);
    if (b->n + words + 1 > JSON_BIG_LIMBS)
        return false;
    int n = b->n + (int)words;
    b->limb[n] = 0;
    for (int i = b->n - 1; i >= 0; i--) {
        uint32_t x = b->limb[i];
        if (bits) {
            b->limb[i + words + 1] |= x >> (32 - bits);
            b->limb[i + words] = x << bits;
        } else {
            b->limb[i + words] = x;
        }
    }
    for (int i = 0; i < words; i++)
        b->limb[i] = 0;
    b->n = n + 1;
    while (b->n > 0 && b->limb[b->n - 1] == 0)
        b->n--;
    return true;
}

static inline int json_big_compare(const json_big *a, const json_big *b) {
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    for (int i = a->n - 1; i >= 0; i--)
        if (a->limb[i] != b->limb[i])
            return a->limb[i] < b->limb[i] ? -1 : 1;
    return 0;
}

static inline void json_big_set(json_big *b, uint64_t v) {
    b->n = 0;
    while (v) {
        b->limb[b->n++] = (uint32_t)v;
        v >>= 32;
    }
}

/* The decimal, as the slow path reads it: digits * 10**exp10, plus "a bit more" if sticky. */
typedef struct {
    json_big digits; /* times 5**exp10 when exp10 > 0 (computed once) */
    int64_t exp10;
    bool sticky;
} json_decimal;

/* Sign of (decimal - (2m+1) * 2**f), exactly; *fail if a limit is hit. */
static inline int json_compare_halfway(const json_decimal *x, uint64_t odd, int64_t f, bool *fail) {
    json_big a = x->digits, b;
    json_big_set(&b, odd);
    /* digits * 2**exp10 * 5**exp10 vs odd * 2**f, with the power of five moved to b when negative. */
    if (x->exp10 < 0 && !json_big_mul_pow5(&b, -x->exp10))
        *fail = true;
    int64_t shift = x->exp10 - f;
    if (!(shift >= 0 ? json_big_shift_left(&a, shift) : json_big_shift_left(&b, -shift)))
        *fail = true;
    if (*fail)
        return 0;
    int c = json_big_compare(&a, &b);
    return c == 0 && x->sticky ? 1 : c;
}

/* Sign of (decimal - the halfway point between the double of bits c and the next one up). */
static inline int json_compare_above(const json_decimal *x, uint64_t c, bool *fail) {
    uint64_t field = c >> 52, m = c & ((UINT64_C(1) << 52) - 1);
    int64_t e = -1074;
    if (field) {
        m |= UINT64_C(1) << 52;
        e = (int64_t)field - 1075;
    }
    return json_compare_halfway(x, 2 * m + 1, e - 1, fail);
}

/* The correctly rounded double of the decimal whose digits are [int_start, int_end) and
 * [frac_start, frac_end) and whose leading digit weighs 10**lead, starting from a candidate that
 * is at most a few units in the last place off: step to the neighbour while the decimal lies past
 * the halfway point between them (a tie goes to the even mantissa). JSON_DECLINE only if a big
 * integer limit were hit or the candidate were far off, which the bounds above exclude. */
static inline json_status json_slow_path(const char *int_start, const char *int_end, const char *frac_start,
                                         const char *frac_end, int64_t lead, uint64_t candidate, uint64_t *bits) {
    json_decimal x;
    x.digits.n = 0;
    x.sticky = false;
    int kept = 0;
    uint32_t chunk = 0, scale = 1;
    bool fail = false;
    for (int part = 0; part < 2; part++) {
        const char *s = part ? frac_start : int_start, *stop = part ? frac_end : int_end;
        for (; s < stop; s++) {
            uint32_t d = (uint32_t)(*s - '0');
            if (kept == 0 && d == 0)
                continue; /* leading zeros */
            if (kept == JSON_SLOW_DIGITS) {
                if (d) {
                    x.sticky = true;
                    break;
                }
                continue;
            }
            chunk = chunk * 10 + d;
            scale *= 10;
            kept++;
            if (scale == 1000000000) {
                fail |= !json_big_mul_add(&x.digits, scale, chunk);
                chunk = 0;
                scale = 1;
            }
        }
    }
    if (scale > 1)
        fail |= !json_big_mul_add(&x.digits, scale, chunk);
    x.exp10 = lead - (kept - 1);
    if (x.exp10 > 0)
        fail |= !json_big_mul_pow5(&x.digits, x.exp10);
    if (fail)
        return JSON_DECLINE;
    uint64_t c = candidate >= JSON_DOUBLE_INF_BITS ? JSON_DOUBLE_MAX_BITS : candidate;
    for (int steps = 0;; steps++) {
        if (steps == JSON_SLOW_STEPS)
            return JSON_DECLINE; /* a candidate that far off is a bug: decline rather than crawl */
        int up = json_compare_above(&x, c, &fail);
        if (fail)
            return JSON_DECLINE;
        if (up > 0 || (up == 0 && (c & 1))) {
            c++; /* the next double up; past the largest one, the bits of infinity */
            if (c == JSON_DOUBLE_INF_BITS)
                break;
            continue;
        }
        if (c == 0)
            break;
        int down = json_compare_above(&x, c - 1, &fail);
        if (fail)
            return JSON_DECLINE;
        if (down < 0 || (down == 0 && !((c - 1) & 1))) {
            c--;
            continue;
        }
        break;
    }
    *bits = c;
    return JSON_OK;
}

static inline double json_bits_to_double(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* The 8-digit step reads the first digit as the word's lowest byte: little-endian targets only
 * (elsewhere digits go one at a time). */
#define JSON_EIGHT_DIGITS_AT_ONCE (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)

/* Whether the 8 bytes of x (read little-endian) are all ASCII digits: each byte's high nibble is 3,
 * and adding 6 keeps it 3 (only 0x30..0x39 pass both). */
static inline bool json_eight_digits(uint64_t x) {
    const uint64_t ones = 0x0101010101010101u;
    return (x & (ones * 0xF0)) == ones * 0x30 && ((x + ones * 0x06) & (ones * 0xF0)) == ones * 0x30;
}

/* The value of 8 ASCII digits, the first in x's lowest byte. Adjacent digits, then pairs, then
 * quadruples are combined inside the lanes of one word; every intermediate lane value (at most 90,
 * 9900, 99990000) fits its lane, so nothing carries into a neighbour before the masks clean up. */
static inline uint64_t json_parse_eight(uint64_t x) {
    x -= UINT64_C(0x3030303030303030);
    x = (x * 10 + (x >> 8)) & UINT64_C(0x00FF00FF00FF00FF);      /* 16-bit lanes: 2 digits each */
    x = (x * 100 + (x >> 16)) & UINT64_C(0x0000FFFF0000FFFF);    /* 32-bit lanes: 4 digits each */
    return (x * 10000 + (x >> 32)) & UINT64_C(0x00000000FFFFFFFF); /* 8 digits */
}

/* p at '-' or a digit: scans one number of RFC 8259's grammar
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and gives what orjson makes of it:
 *   an integer token within [-2**63, 2**64 - 1]: JSON_INT or JSON_UINT (and "-0" is the int 0);
 *   any other token: JSON_FLOAT, correctly rounded (round half to even, as float(token));
 *   JSON_INVALID if the grammar fails or the value rounds past the largest double (orjson: "number
 *   is infinity when parsed as double"); a value below half the smallest subnormal is 0.0 or -0.0.
 * Scans the longest prefix that fits the grammar: "1.5x" or "01" end after "1.5" or "0" and the
 * caller then refuses the byte that follows. */
static inline json_status json_scan_number(const char *p, const char *end, json_number *out, const char **next) {
    const char *s = p;
    bool negative = false;
    if (s < end && *s == '-') {
        negative = true;
        s++;
    }
    if (s >= end)
        return JSON_INVALID;
    /* The digits of integer and fraction, read once: w keeps the first 19 significant ones (19 always
     * fit 64 bits), nd counts all from the first non-zero one, truncated notes a non-zero digit that
     * w could not keep. */
    uint64_t w = 0;
    int64_t nd = 0;
    bool truncated = false;
#define JSON_TAKE_DIGIT(d)                                                                                             \
    do {                                                                                                               \
        if (nd < 19) {                                                                                                 \
            if (nd > 0 || (d) != 0) {                                                                                  \
                w = w * 10 + (d);                                                                                      \
                nd++;                                                                                                  \
            }                                                                                                          \
        } else {                                                                                                       \
            nd++;                                                                                                      \
            truncated |= (d) != 0;                                                                                     \
        }                                                                                                              \
    } while (0)
    /* All the digits at s; 8 at a time while they still fit w and leading zeros are behind. */
#define JSON_TAKE_DIGITS()                                                                                             \
    while (s < end) {                                                                                                  \
        uint64_t x;                                                                                                    \
        if (JSON_EIGHT_DIGITS_AT_ONCE && nd > 0 && nd <= 11 && end - s >= 8 &&                                         \
            (memcpy(&x, s, 8), json_eight_digits(x))) {                                                                \
            w = w * 100000000 + json_parse_eight(x);                                                                   \
            nd += 8;                                                                                                   \
            s += 8;                                                                                                    \
            continue;                                                                                                  \
        }                                                                                                              \
        uint32_t d = (uint32_t)(unsigned char)(*s - '0');                                                              \
        if (d >= 10)                                                                                                   \
            break;                                                                                                     \
        JSON_TAKE_DIGIT(d);                                                                                            \
        s++;                                                                                                           \
    }
    const char *int_start = s;
    if (*s == '0') {
        s++;
    } else if ((unsigned char)(*s - '1') < 9) {
        JSON_TAKE_DIGITS();
    } else {
        return JSON_INVALID;
    }
    const char *int_end = s, *frac_start = s, *frac_end = s;
    bool integer_token = true;
    if (s < end && *s == '.') {
        integer_token = false;
        frac_start = ++s;
        JSON_TAKE_DIGITS();
        frac_end = s;
        if (frac_end == frac_start)
            return JSON_INVALID;
    }
#undef JSON_TAKE_DIGIT
#undef JSON_TAKE_DIGITS
    int64_t exp10 = 0;
    if (s < end && (*s == 'e' || *s == 'E')) {
        integer_token = false;
        s++;
        bool exp_negative = false;
        if (s < end && (*s == '+' || *s == '-')) {
            exp_negative = *s == '-';
            s++;
        }
        const char *exp_start = s;
        while (s < end && (unsigned char)(*s - '0') < 10) {
            /* Saturate: past 10**17 the value is infinite or zero whatever the other digits say, as
             * no input has that many of them. */
            if (exp10 < INT64_C(100000000000000000))
                exp10 = exp10 * 10 + (*s - '0');
            s++;
        }
        if (s == exp_start)
            return JSON_INVALID;
        if (exp_negative)
            exp10 = -exp10;
    }
    *next = s;
    out->integer_token = integer_token;

    if (integer_token) {
        uint64_t magnitude = w;
        bool fits = nd <= 19;
        if (nd == 20) {
            uint64_t last = (uint64_t)(int_end[-1] - '0');
            fits = w <= (UINT64_MAX - last) / 10;
            magnitude = w * 10 + last;
        }
        if (fits && !negative) {
            if (magnitude <= (uint64_t)INT64_MAX) {
                out->kind = JSON_INT;
                out->i = (int64_t)magnitude;
                out->d = (double)out->i;
            } else {
                out->kind = JSON_UINT;
                out->u = magnitude;
                out->d = (double)magnitude; /* round to nearest even, as float(int) */
            }
            return JSON_OK;
        }
        if (fits && magnitude <= (UINT64_C(1) << 63)) {
            out->kind = JSON_INT;
            out->i = magnitude == (UINT64_C(1) << 63) ? INT64_MIN : -(int64_t)magnitude; /* "-0" is the int 0 */
            out->d = (double)out->i;
            return JSON_OK;
        }
        /* orjson makes a float of an integer token outside [-2**63, 2**64 - 1]. */
    }

    out->kind = JSON_FLOAT;
    uint64_t bits;
    int64_t kept = nd < 19 ? nd : 19;
    /* value ~= w * 10**q; its leading digit weighs 10**lead */
    int64_t q = exp10 - (frac_end - frac_start) + (nd - kept);
    int64_t lead = q + kept - 1;
    if (nd == 0 || lead < -324) {
        bits = 0; /* zero, or below 10**-324 < 2**-1075, half the smallest subnormal */
    } else if (lead > 308) {
        return JSON_INVALID; /* at least 10**309 */
    } else if (!truncated && w <= (UINT64_C(1) << 53) && q >= -22 && q <= 22) {
        /* Clinger's fast path: w and 10**|q| are exact doubles, so one IEEE operation rounds once. */
        static const double powers[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                          1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        double d = (double)w;
        d = q < 0 ? d / powers[-q] : d * powers[q];
        out->d = negative ? -d : d;
        return JSON_OK;
    } else {
        bool certain = json_eisel_lemire(w, q, &bits);
        if (certain && truncated) {
            /* The true digits lie strictly between w and w + 1 at this scale: if both round alike,
             * so does everything between them. */
            uint64_t upper;
            certain = json_eisel_lemire(w + 1, q, &upper) && upper == bits;
        }
        if (!certain) {
            JSON_ON_SLOW_PATH();
            json_status st = json_slow_path(int_start, int_end, frac_start, frac_end, lead, bits, &bits);
            if (st != JSON_OK)
                return st;
        }
        if (bits >= JSON_DOUBLE_INF_BITS)
            return JSON_INVALID;
    }
    double d = json_bits_to_double(bits);
    out->d = negative ? -d : d;
    return JSON_OK;
}

/* --- whole values ------------------------------------------------------------------------------- */

/* p at a value (whitespace before it is skipped): validates that whole value, of any type, exactly as
 * orjson would inside a document, and sets *next after it. depth is the number of containers already
 * open around it (0 for a document's root value); a container that would be the
 * (JSON_MAX_DEPTH + 1)-th open one is JSON_INVALID, as orjson refuses it. Iterative: a bit per open
 * container, no recursion. JSON_DECLINE only where json_scan_number declines. */
static inline json_status json_skip_value(const char *p, const char *end, int depth, const char **next) {
    uint64_t is_object[JSON_MAX_DEPTH / 64]; /* bit k: the container at level k is an object */
    int level = 0;                           /* containers this call has open */
    const char *s = json_skip_ws(p, end);
    json_status st;
    if (depth < 0 || depth > JSON_MAX_DEPTH)
        return JSON_INVALID;
    for (;;) {
        /* s at a value */
        if (s >= end)
            return JSON_INVALID;
        char c = *s;
        bool at_key = false;
        if (c == '{' || c == '[') {
            if (depth + level >= JSON_MAX_DEPTH)
                return JSON_INVALID;
            bool object = c == '{';
            uint64_t bit = UINT64_C(1) << (level % 64);
            if (object)
                is_object[level / 64] |= bit;
            else
                is_object[level / 64] &= ~bit;
            level++;
            s = json_skip_ws(s + 1, end);
            if (s < end && *s == (object ? '}' : ']')) {
                s++; /* empty: a complete value, handled below */
                level--;
            } else if (object) {
                at_key = true;
            } else {
                continue; /* s at the first element */
            }
        } else if (c == '"') {
            if ((st = json_skip_string(s, end, &s)) != JSON_OK)
                return st;
        } else if (c == 't' || c == 'f' || c == 'n') {
            json_literal ignored;
            if ((st = json_scan_literal(s, end, &ignored, &s)) != JSON_OK)
                return st;
        } else if (c == '-' || (unsigned char)(c - '0') < 10) {
            json_number ignored;
            if ((st = json_scan_number(s, end, &ignored, &s)) != JSON_OK)
                return st;
        } else {
            return JSON_INVALID;
        }
        /* After a complete value: close containers until a comma, or the end of this value. */
        while (!at_key) {
            if (level == 0) {
                *next = s;
                return JSON_OK;
            }
            s = json_skip_ws(s, end);
            if (s >= end)
                return JSON_INVALID;
            bool object = (is_object[(level - 1) / 64] >> ((level - 1) % 64)) & 1;
            if (*s == ',') {
                s = json_skip_ws(s + 1, end);
                if (!object)
                    break; /* s at the next element */
                at_key = true;
            } else if (*s == (object ? '}' : ']')) {
                s++;
                level--;
            } else {
                return JSON_INVALID; /* "[1 2]", a stray byte, a mismatched bracket */
            }
        }
        if (at_key) {
            /* "key" : then the value */
            if (s >= end || *s != '"')
                return JSON_INVALID;
            if ((st = json_skip_string(s, end, &s)) != JSON_OK)
                return st;
            s = json_skip_ws(s, end);
            if (s >= end || *s != ':')
                return JSON_INVALID;
            s = json_skip_ws(s + 1, end);
        }
    }
}

/* A whole document, as orjson.loads judges it: whitespace, one value, whitespace, the end. (A BOM, an
 * empty or whitespace-only body are refused.) */
static inline json_status json_validate(const char *p, const char *end) {
    const char *s;
    json_status st = json_skip_value(p, end, 0, &s);
    if (st != JSON_OK)
        return st;
    return json_skip_ws(s, end) == end ? JSON_OK : JSON_INVALID;
}

#endif

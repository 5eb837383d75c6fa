/* libFuzzer target for service/core/jsonscan.h: no read outside [p, end), no crash, no undefined behaviour,
 * and the scanners agree with each other and with the C library on what they can be checked against.
 * Built and run by `make fuzz` (and briefly by `make sanitize`); seeds in tests/fuzz/seeds/jsonscan. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonscan.h"

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "check failed: %s (line %d)\n", #cond, __LINE__);                                          \
            abort();                                                                                                   \
        }                                                                                                              \
    } while (0)

static uint64_t bits_of(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* A number at s: its value must be what glibc's correctly rounded strtod/strtoll/strtoull give. */
static void check_number(const char *s, const char *end) {
    json_number n;
    const char *next = NULL;
    json_status st = json_scan_number(s, end, &n, &next);
    CHECK(st != JSON_DECLINE);
    if (st != JSON_OK)
        return;
    CHECK(next > s && next <= end);
    size_t len = (size_t)(next - s);
    char *token = malloc(len + 1);
    memcpy(token, s, len);
    token[len] = 0;
    char *stop;
    if (n.kind == JSON_INT) {
        errno = 0;
        long long v = strtoll(token, &stop, 10);
        CHECK(errno == 0 && stop == token + len && v == n.i && n.integer_token);
    } else if (n.kind == JSON_UINT) {
        errno = 0;
        unsigned long long v = strtoull(token, &stop, 10);
        CHECK(errno == 0 && stop == token + len && v == n.u && n.integer_token && n.u > (uint64_t)INT64_MAX);
    } else {
        double v = strtod(token, &stop);
        CHECK(stop == token + len);
        CHECK(bits_of(v) == bits_of(n.d));
    }
    free(token);
}

static void check_string(const char *s, const char *end, size_t size) {
    char *buf = malloc(size ? size : 1);
    json_string out;
    const char *next = NULL, *next2 = NULL;
    json_status st = json_scan_string(s, end, buf, size, &out, &next);
    json_status st2 = json_skip_string(s, end, &next2);
    CHECK(st != JSON_DECLINE); /* a buffer as long as the input always suffices */
    CHECK(st == st2);
    if (st == JSON_OK) {
        CHECK(next == next2 && next > s && next <= end && next[-1] == '"');
        CHECK(out.len <= (size_t)(next - s) - 2);
        if (out.escaped)
            CHECK(out.ptr == buf);
        else
            CHECK(out.ptr == s + 1 && out.len == (size_t)(next - s) - 2);
        /* the same string into a buffer half as long: the same answer, or a decline */
        json_string half;
        const char *next3 = NULL;
        json_status st3 = json_scan_string(s, end, buf, out.len / 2, &half, &next3);
        CHECK(st3 == JSON_DECLINE || (st3 == JSON_OK && next3 == next && half.len == out.len));
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size heap copy: ASan reports any byte read past end. */
    char *s = malloc(size ? size : 1);
    memcpy(s, data, size);
    const char *end = s + size;

    json_status doc = json_validate(s, end);
    CHECK(doc != JSON_DECLINE);

    const char *v = json_skip_ws(s, end);
    CHECK(v >= s && v <= end);
    json_type type = json_peek(v, end);
    const char *next = NULL;
    if (type == JSON_T_NUMBER)
        check_number(v, end);
    if (type == JSON_T_STRING)
        check_string(v, end, size);
    if (type == JSON_T_LITERAL) {
        json_literal which;
        if (json_scan_literal(v, end, &which, &next) == JSON_OK)
            CHECK(next > v && next <= end);
    }
    /* skip_value from every depth class agrees with validate on the root value */
    for (int depth = 0; depth <= JSON_MAX_DEPTH; depth += size % 97 + 256) {
        json_status st = json_skip_value(s, end, depth, &next);
        CHECK(st != JSON_DECLINE);
        if (st == JSON_OK)
            CHECK(next > s && next <= end);
        if (depth == 0)
            CHECK(st == JSON_OK || doc == JSON_INVALID);
        if (depth == 0 && st == JSON_OK)
            CHECK((json_skip_ws(next, end) == end) == (doc == JSON_OK));
    }
    if (json_expect(s, end, ',', &next))
        CHECK(next > s && next <= end && next[-1] == ',');
    /* scanners started mid-input, wherever a token could start */
    for (const char *p = s; p < end; p++) {
        if (p > s && strchr("0123456789.eE+-", p[-1]) != NULL && p[-1] != 0)
            continue; /* inside a number: only token starts */
        if (*p == '-' || (*p >= '0' && *p <= '9'))
            check_number(p, end);
        else if (*p == '"' && (p - s) % 7 == 0)
            check_string(p, end, (size_t)(end - p));
    }
    free(s);
    return 0;
}

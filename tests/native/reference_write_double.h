/* reference_write_double.h: the fast path's former write_double, on CPython's PyOS_double_to_string, with its
 * names prefixed by reference_: what tests/native/check_shortest.py and bench_shortest.py compare shortest.h with. */
static inline char *reference_write_literal(char *p, const char *s, size_t length) {
    memcpy(p, s, length);
    return p + length;
}

static char *reference_write_uint(char *p, uint64_t value) {
    char digits[20];
    int length = 0;
    do {
        digits[length++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    while (length)
        *p++ = digits[--length];
    return p;
}

/* The shortest round-trip decimal digits of a finite x > 0, closest to x among the shortest (the
 * digits Python's repr and orjson both write): `digits` without leading or trailing zeros, and
 * `point`, where 10**(point-1) <= x < 10**point. From CPython's own repr (PyOS_double_to_string);
 * were it ever out of memory, from the C library's correctly rounded printf, trying 15, 16 and 17
 * significant digits until one reads back as x. */
static int reference_shortest_digits(double x, char digits[24], int *point) {
    char fallback[40];
    char *text = PyOS_double_to_string(x, 'r', 0, 0, NULL);
    const char *s = text;
    if (text == NULL) {
        PyErr_Clear();
        for (int precision = 15; precision <= 17; precision++) {
            snprintf(fallback, sizeof(fallback), "%.*e", precision - 1, x);
            if (precision == 17 || strtod(fallback, NULL) == x)
                break;
        }
        s = fallback;
    }
    int length = 0, before_point = 0, leading_zeros = 0, exponent = 0;
    bool in_fraction = false;
    for (; *s && *s != 'e'; s++) {
        if (*s == '.') {
            in_fraction = true;
            continue;
        }
        if (!in_fraction)
            before_point++;
        if (length == 0 && *s == '0') {
            leading_zeros++;
            continue;
        }
        if (length < 23)
            digits[length++] = *s;
    }
    if (*s == 'e')
        exponent = atoi(s + 1);
    while (length > 1 && digits[length - 1] == '0')
        length--;
    *point = before_point + exponent - leading_zeros;
    if (text != NULL)
        PyMem_Free(text);
    return length;
}

/* A finite double as orjson writes it: the shortest round-trip digits; 1e-5 <= |x| < 1e16 in
 * decimal with at least one fractional digit, else d.ddde+X / d.ddde-X. */
static char *reference_write_double(char *p, double x) {
    if (signbit(x))
        *p++ = '-';
    if (x == 0)
        return reference_write_literal(p, "0.0", 3);
    char digits[24];
    int point;
    const int length = reference_shortest_digits(fabs(x), digits, &point);
    if (point - length >= 0 && point <= 16) {
        p = reference_write_literal(p, digits, (size_t)length);
        for (int k = length; k < point; k++)
            *p++ = '0';
        return reference_write_literal(p, ".0", 2);
    }
    if (point > 0 && point <= 16) {
        p = reference_write_literal(p, digits, (size_t)point);
        *p++ = '.';
        return reference_write_literal(p, digits + point, (size_t)(length - point));
    }
    if (point > -5 && point <= 0) {
        *p++ = '0';
        *p++ = '.';
        for (int k = 0; k < -point; k++)
            *p++ = '0';
        return reference_write_literal(p, digits, (size_t)length);
    }
    *p++ = digits[0];
    if (length > 1) {
        *p++ = '.';
        p = reference_write_literal(p, digits + 1, (size_t)(length - 1));
    }
    *p++ = 'e';
    int e = point - 1;
    if (e < 0) {
        *p++ = '-';
        e = -e;
    } else {
        *p++ = '+';
    }
    return reference_write_uint(p, (uint64_t)e);
}


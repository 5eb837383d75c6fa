/* fastpath_write.h: the answer of an evaluated graph, written as the reference path writes it (orjson's
 * bytes: service/http/routes/evaluate.py's evaluation_json).
 *
 * Part of the fast path (service/core/_fastpath.c includes it). The bytes go into an answer_buffer whose
 * memory the includer provides (answer_buffer_grow: a Python bytes object in _fastpath.c, so the answer is
 * returned without a copy). Numbers are written by shortest.h: the shortest round-trip digits, as repr
 * and orjson write them.
 */
#ifndef FASTPATH_WRITE_H
#define FASTPATH_WRITE_H

#include "fastpath_graph.h"
#include "shortest.h"

typedef struct {
    char *start;
    size_t used, capacity;
    void *owner; /* what holds the memory: the includer's */
} answer_buffer;

/* Room for `capacity` bytes in all, the first `used` kept; false when memory runs out. Defined by the includer. */
static bool answer_buffer_grow(answer_buffer *b, size_t capacity);

static inline bool reserve(answer_buffer *b, size_t more) {
    if (b->capacity - b->used >= more)
        return true;
    size_t capacity = b->capacity * 2;
    if (capacity < b->used + more)
        capacity = b->used + more;
    return answer_buffer_grow(b, capacity);
}

static inline char *write_literal(char *p, const char *s, size_t length) {
    memcpy(p, s, length);
    return p + length;
}

static inline bool append(answer_buffer *b, const char *s, size_t length) {
    if (length == 0) /* (an empty buffer has no memory yet) */
        return true;
    if (!reserve(b, length))
        return false;
    write_literal(b->start + b->used, s, length);
    b->used += length;
    return true;
}

/* A number of the reference class: an int as an integer, a float as orjson writes floats. */
static char *write_num(char *p, double v, bool is_int) {
    if (!is_int)
        return write_double(p, v);
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    return shortest_write_uint(p, (uint64_t)v);
}

static const char HEX[] = "0123456789abcdef";

/* A string's decoded bytes as orjson.dumps escapes them: ", \ and the control characters, nothing else. */
static char *write_escaped(char *p, const unsigned char *s, size_t length) {
    for (size_t k = 0; k < length; k++) {
        unsigned char c = s[k];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *p++ = (char)c;
            break;
        case '\b':
            *p++ = 'b';
            break;
        case '\f':
            *p++ = 'f';
            break;
        case '\n':
            *p++ = 'n';
            break;
        case '\r':
            *p++ = 'r';
            break;
        case '\t':
            *p++ = 't';
            break;
        default:
            p = write_literal(p, "u00", 3);
            *p++ = HEX[c >> 4];
            *p++ = HEX[c & 15];
        }
    }
    return p;
}

/* Node i's id as orjson.dumps writes it: a string read without escapes is written as it came (it
 * holds nothing orjson escapes); one decoded from escapes is escaped again. */
static bool write_id(answer_buffer *b, const graph *g, size_t i) {
    size_t length = g->id_length[i];
    if (!reserve(b, 6 * length + 24))
        return false;
    char *p = b->start + b->used;
    uint64_t value = g->id_value[i];
    switch (g->id_type[i]) {
    case ID_INT:
        if ((int64_t)value < 0) {
            *p++ = '-';
            value = (uint64_t)0 - value;
        }
        p = shortest_write_uint(p, value);
        break;
    case ID_UINT:
        p = shortest_write_uint(p, value);
        break;
    case ID_TEXT:
        *p++ = '"';
        p = write_literal(p, (const char *)(uintptr_t)value, length);
        *p++ = '"';
        break;
    default:
        *p++ = '"';
        p = write_escaped(p, (const unsigned char *)(uintptr_t)value, length);
        *p++ = '"';
    }
    b->used = (size_t)(p - b->start);
    return true;
}

#define NUMBER_RESERVE 32 /* the longest number written is 24 bytes */

/* {"output":ID,"nodes":[{"id":ID,"data":X,"grad":Y},...]}: every node in request order. False when
 * memory runs out, or past the deadline (g->past_deadline). */
static bool write_answer(answer_buffer *b, graph *g, size_t root) {
    /* Room for about the whole answer at once (pages not written to cost no memory). */
    if (!reserve(b, 80 * g->n + 64) || !append(b, "{\"output\":", 10) || !write_id(b, g, root) ||
        !append(b, ",\"nodes\":[", 10))
        return false;
    for (size_t i = 0; i < g->n; i++) {
        if (!on_time(g) || !append(b, i ? ",{\"id\":" : "{\"id\":", i ? 7 : 6) || !write_id(b, g, i) ||
            !reserve(b, 2 * NUMBER_RESERVE + 20))
            return false;
        char *p = write_literal(b->start + b->used, ",\"data\":", 8);
        p = write_num(p, g->data[i], (g->flags[i] & F_DATA_INT) != 0);
        p = write_literal(p, ",\"grad\":", 8);
        p = write_num(p, g->grad[i], (g->flags[i] & F_GRAD_INT) != 0);
        *p++ = '}';
        b->used = (size_t)(p - b->start);
    }
    return append(b, "]}", 2);
}

#endif

/* fastpath_graph.h: a graph as flat arrays, and the reference Value class's forward and backward passes over it.
 *
 * Part of the fast path (service/core/_fastpath.c includes it; no Python API here). The reference Value class
 * (service/core/engine.py) is the specification; bit-identity with it takes:
 * - Python ints where the reference class has them: relu's 0, the root's grad 1, an unreached node's grad 0,
 *   grads fed only through add, sub and neg, -x of an int 0 (the int 0, not -0.0). A number here is
 *   a double plus a flag saying "a Python int"; ints stay exact below 2**53, beyond that we decline.
 * - The reference class's hidden Values: neg is x * -1; a - b is a + (b * -1); a / b is a * b**-1. Their grads
 *   are folded into the request node's contributions with the reference class's roundings, in its order (the
 *   hidden node is the last child of its only parent, so it comes right after it in the reversed topological
 *   order).
 * - pow as CPython's float_pow, calling libm pow with a runtime exponent; exp and log as math.exp
 *   and math.log (libm, with their errno checks); no FMA contraction (-ffp-contract=off).
 * - The backward pass in the reference class's order: depth-first post-order from the output, children in their
 *   listed order, reversed; each child's grad accumulates lg * grad in that order.
 * Every pass checks the request's deadline every DEADLINE_EVERY steps (on_time).
 */
#ifndef FASTPATH_GRAPH_H
#define FASTPATH_GRAPH_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ID_MAX_LENGTH 256            /* characters of a string id, and of a label */
#define INT_LIMIT 9007199254740992.0 /* 2**53: below it a double holds a Python int exactly */
#define DEADLINE_EVERY 16384         /* steps of a pass between two looks at the clock */

enum kind {
    KIND_LEAF,
    KIND_RECORDED,
    KIND_ADD,
    KIND_MUL,
    KIND_SUB,
    KIND_DIV,
    KIND_POW,
    KIND_LOG,
    KIND_EXP,
    KIND_RELU,
    KIND_NEG,
};

static const struct operation {
    const char *name;
    uint8_t kind;
    uint8_t arity;
    bool takes_exponent;
} OPERATIONS[] = {
    {"add", KIND_ADD, 2, false},  {"mul", KIND_MUL, 2, false}, {"sub", KIND_SUB, 2, false},
    {"div", KIND_DIV, 2, false},  {"pow", KIND_POW, 1, true},  {"log", KIND_LOG, 1, false},
    {"exp", KIND_EXP, 1, false},  {"relu", KIND_RELU, 1, false}, {"neg", KIND_NEG, 1, false},
};
#define N_OPERATIONS (sizeof(OPERATIONS) / sizeof(OPERATIONS[0]))

/* --- numbers ------------------------------------------------------------------------------------ */

/* A number as the reference class holds it: a float, or a Python int (exact, |v| < 2**53, never -0.0). */
typedef struct {
    double v;
    bool is_int;
} num;

static inline num float_num(double v) { return (num){v, false}; }
static inline num int_num(double v) { return (num){v, true}; }

static inline num num_check_int(num r, bool *bad) {
    if (r.is_int) {
        if (r.v == 0)
            r.v = 0.0; /* the int 0 is +0.0 as a float */
        else if (!(fabs(r.v) < INT_LIMIT))
            *bad = true;
    }
    return r;
}

static inline num num_mul(num a, num b, bool *bad) {
    num r = {a.v * b.v, a.is_int && b.is_int};
    return num_check_int(r, bad);
}

static inline num num_add(num a, num b, bool *bad) {
    num r = {a.v + b.v, a.is_int && b.is_int};
    return num_check_int(r, bad);
}

#define DOUBLE_IS_ODD_INTEGER(x) (fmod(fabs(x), 2.0) == 1.0)

#if defined(__clang__)
#define KEEP_EXPONENT_RUNTIME __attribute__((noinline, optnone))
#else
#define KEEP_EXPONENT_RUNTIME __attribute__((noipa))
#endif

/* CPython 3.11's float_pow for finite operands; *fails when Python raises, or the result is complex.
 * Never inlined or specialised: the exponent stays a runtime value, so the compiler cannot fold
 * pow(x, -1.0) into 1 / x. */
KEEP_EXPONENT_RUNTIME static double python_pow(double iv, double iw, bool *fails) {
    if (iw == 0)
        return 1.0;
    if (!isfinite(iv) || !isfinite(iw)) {
        *fails = true;
        return 0.0;
    }
    if (iv == 0.0) {
        if (iw < 0.0) {
            *fails = true; /* ZeroDivisionError */
            return 0.0;
        }
        return DOUBLE_IS_ODD_INTEGER(iw) ? iv : 0.0;
    }
    bool negate_result = false;
    if (iv < 0.0) {
        if (iw != floor(iw)) {
            *fails = true; /* a complex number */
            return 0.0;
        }
        iv = -iv;
        negate_result = DOUBLE_IS_ODD_INTEGER(iw);
    }
    if (iv == 1.0)
        return negate_result ? -1.0 : 1.0;
    errno = 0;
    double ix = pow(iv, iw);
    if (errno == 0) {
        if (ix == HUGE_VAL || ix == -HUGE_VAL)
            errno = ERANGE;
    } else if (errno == ERANGE && ix == 0.0) {
        errno = 0;
    }
    if (negate_result)
        ix = -ix;
    if (errno != 0) {
        *fails = true; /* OverflowError */
        return 0.0;
    }
    return ix;
}

/* math.exp and math.log's math_1: libm's answer, or *fails where Python raises. */
static double python_exp(double x, bool *fails) {
    errno = 0;
    double r = exp(x);
    if (!isfinite(r) || (errno && (errno != ERANGE || fabs(r) >= 1.5)))
        *fails = true;
    return r;
}

static double python_log(double x, bool *fails) {
    if (!(x > 0.0) || !isfinite(x)) {
        *fails = true;
        return 0.0;
    }
    errno = 0;
    double r = log(x);
    if (!isfinite(r) || (errno && (errno != ERANGE || fabs(r) >= 1.5)))
        *fails = true;
    return r;
}

/* Volatile, so that the reference class's constant exponents reach python_pow as runtime values. */
static volatile double MINUS_ONE = -1.0;
static volatile double MINUS_TWO = -2.0;

/* --- the graph ---------------------------------------------------------------------------------- */

/* Per node flags. */
#define F_DATA_INT 1u
#define F_GRAD_INT 2u

/* An id: an int within 64 bits, or a string (its decoded UTF-8 bytes). "1" and 1 are different ids. */
enum id_type {
    ID_INT = 1, /* value: an int64's bits */
    ID_UINT,    /* value: an int in [2**63, 2**64) */
    ID_TEXT,    /* value: a pointer to the string's bytes in the body, as JSON wrote them without escapes */
    ID_ESCAPED, /* value: a pointer to the bytes its escapes decode to (in the reader's arena) */
};

typedef struct {
    uint64_t value;
    uint32_t length; /* a string's bytes */
    uint8_t type;
} id_ref;

static inline bool is_string_id(uint8_t type) { return type >= ID_TEXT; }

typedef struct {
    size_t n, capacity; /* nodes read, room for */
    uint8_t *id_type;
    uint64_t *id_value;
    uint32_t *id_length;
    uint8_t *kind;
    uint8_t *flags;
    double *data;
    double *aux0;          /* pow: the exponent, then the local gradient; log, exp, relu: the local gradient; div: b ** -1 */
    uint32_t *child_start; /* capacity + 1 offsets into child */
    uint32_t *child;       /* the children's positions, node after node */
    double *local_grad;    /* beside child: a recorded node's local gradients (allocated with the first one) */
    size_t child_count, child_capacity;
    uint8_t *mark;   /* post_order's: 0 unseen, 1 on the path, 2 placed */
    double *grad;    /* the backward pass's */
    uint32_t *order; /* a node order, children first */
    uint64_t *stack; /* (node, next child) pairs of a depth-first walk */
    size_t work_capacity; /* nodes that mark, grad, order and stack have room for */
    uint64_t *slots; /* the id table: (hash >> 32) << 32 | (index + 1); 0 is empty */
    size_t slot_capacity;
    uint64_t probe_budget;
    bool dense;        /* every id so far is the int first_id + its position: no table, an id is its position */
    uint64_t first_id;
    bool bad;          /* an int left the exact range, or a number is not finite */
    double deadline;   /* CLOCK_MONOTONIC seconds, the clock of Python's time.monotonic */
    uint64_t steps;
    bool past_deadline;
} graph;

static double monotonic_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/* False (and g->past_deadline) once the deadline has passed; looks at the clock every DEADLINE_EVERY calls. */
static inline bool on_time(graph *g) {
    if (++g->steps % DEADLINE_EVERY != 0)
        return true;
    if (monotonic_seconds() <= g->deadline)
        return true;
    g->past_deadline = true;
    return false;
}

/* The same, looking at the clock now (a batch's items). */
static inline bool on_time_now(graph *g) {
    if (monotonic_seconds() <= g->deadline)
        return true;
    g->past_deadline = true;
    return false;
}

static void *grow_array(void *array, size_t count, size_t size) {
    return count > SIZE_MAX / size ? NULL : realloc(array, count * size);
}

/* Room for `capacity` nodes; false when memory runs out. */
static bool graph_reserve_nodes(graph *g, size_t capacity) {
    if (capacity <= g->capacity)
        return true;
    void *p;
#define GROW(field, count)                                                                                             \
    if ((p = grow_array(g->field, (count), sizeof(*g->field))) == NULL)                                               \
        return false;                                                                                                  \
    g->field = p;
    GROW(id_type, capacity)
    GROW(id_value, capacity)
    GROW(id_length, capacity)
    GROW(kind, capacity)
    GROW(flags, capacity)
    GROW(data, capacity)
    GROW(aux0, capacity)
    GROW(child_start, capacity + 1)
#undef GROW
    g->capacity = capacity;
    return true;
}

/* Room for `capacity` children (and their local gradients, once a recorded node has come). */
static bool graph_reserve_children(graph *g, size_t capacity) {
    if (capacity <= g->child_capacity)
        return true;
    if (capacity < 2 * g->child_capacity)
        capacity = 2 * g->child_capacity;
    if (capacity >= UINT32_MAX)
        return false;
    uint32_t *child = grow_array(g->child, capacity, sizeof(uint32_t));
    if (child == NULL)
        return false;
    g->child = child;
    if (g->local_grad != NULL) {
        double *local_grad = grow_array(g->local_grad, capacity, sizeof(double));
        if (local_grad == NULL)
            return false;
        g->local_grad = local_grad;
    }
    g->child_capacity = capacity;
    return true;
}

static bool graph_reserve_local_grads(graph *g) {
    if (g->local_grad == NULL && g->child_capacity)
        g->local_grad = malloc(g->child_capacity * sizeof(double));
    return g->local_grad != NULL;
}

/* Ready for the next graph, keeping the arrays (a batch's items reuse them). */
static void graph_clear(graph *g, double deadline) {
    g->n = 0;
    g->child_count = 0;
    if (g->slots != NULL && g->slot_capacity > 4096) {
        free(g->slots);
        g->slots = NULL;
        g->slot_capacity = 0;
    } else if (g->slots != NULL) {
        memset(g->slots, 0, g->slot_capacity * sizeof(uint64_t));
    }
    g->probe_budget = 4096;
    g->dense = true;
    g->first_id = 0;
    g->bad = false;
    g->deadline = deadline;
    g->steps = DEADLINE_EVERY - 1; /* the first step looks at the clock */
    g->past_deadline = false;
}

static void graph_free(graph *g) {
    free(g->id_type);
    free(g->id_value);
    free(g->id_length);
    free(g->kind);
    free(g->flags);
    free(g->data);
    free(g->aux0);
    free(g->child_start);
    free(g->child);
    free(g->local_grad);
    free(g->mark);
    free(g->grad);
    free(g->order);
    free(g->stack);
    free(g->slots);
    memset(g, 0, sizeof(*g));
}

/* All but what the answer is written from (ids, data, grads and their flags): a big graph's answer is
 * written in less memory. */
static void graph_free_before_writing(graph *g) {
#define RELEASE(field)                                                                                                 \
    free(g->field);                                                                                                    \
    g->field = NULL;
    RELEASE(kind)
    RELEASE(aux0)
    RELEASE(child_start)
    RELEASE(child)
    RELEASE(local_grad)
    RELEASE(mark)
    RELEASE(order)
    RELEASE(stack)
    RELEASE(slots)
#undef RELEASE
    g->capacity = 0; /* the node arrays are now incomplete: no more nodes can be read */
    g->child_capacity = 0;
    g->slot_capacity = 0;
    g->work_capacity = 0;
}

/* --- the id table --------------------------------------------------------------------------------- */

static inline uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static uint64_t id_hash(const id_ref *id) {
    if (!is_string_id(id->type))
        return mix(id->value ^ ((uint64_t)id->type << 62));
    const unsigned char *s = (const unsigned char *)(uintptr_t)id->value;
    size_t length = id->length;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ length;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, s, 8);
        h = (h ^ word) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        s += 8;
        length -= 8;
    }
    uint64_t word = 0;
    memcpy(&word, s, length);
    return mix(h ^ word);
}

static inline id_ref id_of(const graph *g, size_t i) {
    return (id_ref){g->id_value[i], g->id_length[i], g->id_type[i]};
}

/* Ids as Python compares them: ints by value, strings by their decoded bytes. */
static inline bool ids_equal(const id_ref *a, const id_ref *b) {
    if (is_string_id(a->type))
        return is_string_id(b->type) && a->length == b->length &&
               memcmp((const void *)(uintptr_t)a->value, (const void *)(uintptr_t)b->value, a->length) == 0;
    return a->type == b->type && a->value == b->value;
}

/* Puts node i in the table; false for a duplicate id (the reference refuses it) or a table that gives up
 * (too many probes: ids chosen to collide go to the reference path). */
static bool table_put(graph *g, size_t i, uint64_t hash) {
    uint64_t mask = g->slot_capacity - 1, slot = hash & mask, tag = hash >> 32;
    id_ref id = id_of(g, i);
    g->probe_budget += 64;
    for (;;) {
        uint64_t entry = g->slots[slot];
        if (entry == 0) {
            g->slots[slot] = (tag << 32) | (uint64_t)(i + 1);
            return true;
        }
        if (g->probe_budget-- == 0)
            return false;
        if ((entry >> 32) == tag) {
            id_ref other = id_of(g, (size_t)(entry & 0xffffffffULL) - 1);
            if (ids_equal(&id, &other))
                return false;
        }
        slot = (slot + 1) & mask;
    }
}

/* A table of at least twice `nodes` slots holding nodes 0..n-1; false when memory runs out or it gives up. */
static bool table_rebuild(graph *g, size_t nodes) {
    size_t capacity = 16;
    while (capacity < 2 * nodes)
        capacity *= 2;
    free(g->slots);
    g->slots = calloc(capacity, sizeof(uint64_t));
    g->slot_capacity = g->slots ? capacity : 0;
    if (g->slots == NULL)
        return false;
    for (size_t i = 0; i < g->n; i++) {
        id_ref id = id_of(g, i);
        if (!table_put(g, i, id_hash(&id)))
            return false;
    }
    return true;
}

/* Adds the id of node n (already in the id arrays) and counts the node; false for a duplicate id. */
static bool id_add(graph *g) {
    size_t i = g->n;
    if (g->dense) {
        if (i == 0)
            g->first_id = g->id_value[0];
        if (g->id_type[i] == ID_INT && g->id_value[i] == g->first_id + (uint64_t)i) { /* int64 arithmetic, mod 2**64 */
            g->n++;
            return true;
        }
        g->dense = false;
        if (!table_rebuild(g, i + 1))
            return false;
    } else if (2 * (i + 1) > g->slot_capacity && !table_rebuild(g, 2 * (i + 1))) {
        return false;
    }
    id_ref id = id_of(g, i);
    if (!table_put(g, i, id_hash(&id)))
        return false;
    g->n++;
    return true;
}

/* The position of the node with this id among the nodes read so far, -1 if none, -2 when the table gives up. */
static int64_t id_find(graph *g, const id_ref *id) {
    if (g->dense) {
        uint64_t position = id->value - g->first_id;
        return id->type == ID_INT && g->n && position < (uint64_t)g->n ? (int64_t)position : -1;
    }
    uint64_t hash = id_hash(id), mask = g->slot_capacity - 1, slot = hash & mask, tag = hash >> 32;
    g->probe_budget += 64;
    for (;;) {
        uint64_t entry = g->slots[slot];
        if (entry == 0)
            return -1;
        if (g->probe_budget-- == 0)
            return -2;
        if ((entry >> 32) == tag) {
            size_t index = (size_t)(entry & 0xffffffffULL) - 1;
            id_ref other = id_of(g, index);
            if (ids_equal(id, &other))
                return (int64_t)index;
        }
        slot = (slot + 1) & mask;
    }
}

/* --- order, forward, backward ----------------------------------------------------------------------- */

/* The one walk of a graph: depth-first post-order from `root`, children in their listed order, each
 * node once, appended to g->order at *count. g->mark says 0 unseen, 1 on the path, 2 placed; it is kept
 * across calls, so that walking from every node in turn places each node once. False on a cycle (a
 * child met while it is still on the path: the reference refuses it) or past the deadline. */
static bool post_order(graph *g, uint32_t root, size_t *count) {
    uint8_t *mark = g->mark;
    if (mark[root])
        return true;
    size_t depth = 0;
    mark[root] = 1;
    g->stack[depth++] = (uint64_t)root << 32 | g->child_start[root];
    while (depth) {
        if (!on_time(g))
            return false;
        uint64_t top = g->stack[depth - 1];
        uint32_t v = (uint32_t)(top >> 32), k = (uint32_t)top;
        if (k < g->child_start[v + 1]) {
            g->stack[depth - 1] = top + 1;
            uint32_t c = g->child[k];
            if (mark[c] == 1)
                return false;
            if (mark[c] == 0) {
                mark[c] = 1;
                g->stack[depth++] = (uint64_t)c << 32 | g->child_start[c];
            }
        } else {
            depth--;
            mark[v] = 2;
            g->order[(*count)++] = v;
        }
    }
    return true;
}

/* A children-first order of every node into g->order; false on a cycle or past the deadline. */
static bool dependency_order(graph *g) {
    size_t n = g->n;
    bool in_request_order = true;
    for (size_t i = 0; i < n && in_request_order; i++)
        for (uint32_t k = g->child_start[i]; k < g->child_start[i + 1]; k++)
            if (g->child[k] >= (uint32_t)i) {
                in_request_order = false;
                break;
            }
    if (in_request_order) {
        for (size_t i = 0; i < n; i++)
            g->order[i] = (uint32_t)i;
        return true;
    }
    size_t count = 0;
    for (size_t root = 0; root < n; root++)
        if (!post_order(g, (uint32_t)root, &count))
            return false;
    return true;
}

static inline num data_of(const graph *g, uint32_t i) {
    return (num){g->data[i], (g->flags[i] & F_DATA_INT) != 0};
}

static inline void set_data(graph *g, uint32_t i, num value) {
    g->data[i] = value.v;
    if (value.is_int)
        g->flags[i] |= F_DATA_INT;
}

/* The forward pass: each op node's data (and local gradients) from its children's, as the reference class
 * computes them; false where the reference class raises, a number is not finite, or past the deadline. */
static bool forward(graph *g) {
    bool fails = false;
    bool *bad = &g->bad;
    for (size_t position = 0; position < g->n; position++) {
        if (!on_time(g))
            return false;
        uint32_t i = g->order[position];
        const uint32_t *c = g->child + g->child_start[i];
        num a, b, r;
        double lg;
        switch (g->kind[i]) {
        case KIND_LEAF:
        case KIND_RECORDED:
            continue;
        case KIND_ADD:
            r = num_add(data_of(g, c[0]), data_of(g, c[1]), bad);
            break;
        case KIND_MUL:
            r = num_mul(data_of(g, c[0]), data_of(g, c[1]), bad);
            break;
        case KIND_SUB: /* a + (b * -1) */
            r = num_add(data_of(g, c[0]), num_mul(data_of(g, c[1]), int_num(-1), bad), bad);
            break;
        case KIND_NEG: /* a * -1 */
            r = num_mul(data_of(g, c[0]), int_num(-1), bad);
            break;
        case KIND_DIV: { /* a * b**-1; the hidden b**-1 has local gradient -1 * b**-2 */
            a = data_of(g, c[0]);
            b = data_of(g, c[1]);
            double inverse = python_pow(b.v, MINUS_ONE, &fails);
            python_pow(b.v, MINUS_TWO, &fails); /* the reference class computes it here: it may raise */
            g->aux0[i] = inverse;
            r = num_mul(a, float_num(inverse), bad);
            break;
        }
        case KIND_POW: { /* x ** e, local gradient e * x ** (e - 1) */
            double e = g->aux0[i];
            double x = data_of(g, c[0]).v;
            r = float_num(python_pow(x, e, &fails));
            lg = e * python_pow(x, e - 1, &fails);
            g->aux0[i] = lg;
            if (!isfinite(lg))
                return false;
            break;
        }
        case KIND_LOG: /* log(x), local gradient 1 / x */
            a = data_of(g, c[0]);
            if (a.is_int)
                return false;
            r = float_num(python_log(a.v, &fails));
            lg = 1.0 / a.v;
            g->aux0[i] = lg;
            if (!isfinite(lg))
                return false;
            break;
        case KIND_EXP: /* exp(x), local gradient exp(x) */
            r = float_num(python_exp(data_of(g, c[0]).v, &fails));
            g->aux0[i] = r.v;
            break;
        case KIND_RELU: /* max(0, x): the int 0 unless x > 0; local gradient float(x > 0) */
            a = data_of(g, c[0]);
            if (a.v > 0) {
                r = a;
                g->aux0[i] = 1.0;
            } else {
                r = int_num(0.0);
                g->aux0[i] = 0.0;
            }
            break;
        default:
            return false;
        }
        if (fails || !isfinite(r.v))
            return false;
        set_data(g, i, r);
    }
    return !g->bad;
}

/* The output's position: the one named (`output`, when not NULL), or the one node no node lists as a
 * child; -1 if none (the reference refuses it). Uses g->mark, and leaves it zero. */
static int64_t choose_output(graph *g, const id_ref *output) {
    if (output != NULL) {
        int64_t found = id_find(g, output);
        return found >= 0 ? found : -1;
    }
    uint8_t *used = g->mark;
    for (size_t k = 0; k < g->child_count; k++)
        used[g->child[k]] = 1;
    int64_t sink = -1;
    for (size_t i = 0; i < g->n; i++) {
        if (!used[i]) {
            if (sink >= 0) {
                sink = -1;
                break;
            }
            sink = (int64_t)i;
        }
    }
    memset(used, 0, g->n);
    return sink;
}

static inline num grad_of(const graph *g, uint32_t i) {
    return (num){g->grad[i], (g->flags[i] & F_GRAD_INT) != 0};
}

static inline void accumulate(graph *g, uint32_t i, num contribution) {
    num r = num_add(grad_of(g, i), contribution, &g->bad);
    g->grad[i] = r.v;
    if (r.is_int)
        g->flags[i] |= F_GRAD_INT;
    else
        g->flags[i] &= (uint8_t)~F_GRAD_INT;
}

/* The reference class's backward pass from the output: false when a grad is not finite, an int
 * overflows, or past the deadline. */
static bool backward(graph *g, uint32_t root) {
    bool *bad = &g->bad;
    for (size_t i = 0; i < g->n; i++) {
        g->grad[i] = 0.0;
        g->flags[i] |= F_GRAD_INT;
    }
    size_t count = 0;
    memset(g->mark, 0, g->n);
    if (!post_order(g, root, &count))
        return false;
    g->grad[root] = 1.0;
    const num one = int_num(1), minus_one = int_num(-1), zero = int_num(0);
    for (size_t position = count; position-- > 0;) {
        if (!on_time(g))
            return false;
        uint32_t v = g->order[position];
        num grad = grad_of(g, v);
        const uint32_t *c = g->child + g->child_start[v];
        switch (g->kind[v]) {
        case KIND_LEAF:
            break;
        case KIND_RECORDED: {
            const double *lg = g->local_grad + g->child_start[v];
            uint32_t arity = g->child_start[v + 1] - g->child_start[v];
            for (uint32_t k = 0; k < arity; k++)
                accumulate(g, c[k], num_mul(float_num(lg[k]), grad, bad));
            break;
        }
        case KIND_ADD:
            accumulate(g, c[0], num_mul(one, grad, bad));
            accumulate(g, c[1], num_mul(one, grad, bad));
            break;
        case KIND_MUL: {
            num a = data_of(g, c[0]), b = data_of(g, c[1]);
            accumulate(g, c[0], num_mul(b, grad, bad));
            accumulate(g, c[1], num_mul(a, grad, bad));
            break;
        }
        case KIND_SUB: { /* a + n, n = b * -1: n.grad = 0 + 1 * grad, then b gets -1 * n.grad */
            accumulate(g, c[0], num_mul(one, grad, bad));
            num hidden = num_add(zero, num_mul(one, grad, bad), bad);
            accumulate(g, c[1], num_mul(minus_one, hidden, bad));
            break;
        }
        case KIND_NEG:
            accumulate(g, c[0], num_mul(minus_one, grad, bad));
            break;
        case KIND_DIV: { /* a * p, p = b ** -1: p.grad = 0 + a * grad, then b gets lg_p * p.grad */
            accumulate(g, c[0], num_mul(float_num(g->aux0[v]), grad, bad));
            num hidden = num_add(zero, num_mul(data_of(g, c[0]), grad, bad), bad);
            bool fails = false; /* not after the forward pass computed it */
            num lg_p = num_mul(minus_one, float_num(python_pow(data_of(g, c[1]).v, MINUS_TWO, &fails)), bad);
            accumulate(g, c[1], num_mul(lg_p, hidden, bad));
            if (fails)
                return false;
            break;
        }
        case KIND_POW:
        case KIND_LOG:
        case KIND_EXP:
        case KIND_RELU:
            accumulate(g, c[0], num_mul(float_num(g->aux0[v]), grad, bad));
            break;
        default:
            return false;
        }
    }
    if (g->bad)
        return false;
    for (size_t i = 0; i < g->n; i++)
        if (!isfinite(g->grad[i]))
            return false;
    return true;
}

/* Order, forward and backward from the output (`output` when named, else the one sink); the output's
 * position, or -1 where the reference refuses the graph, something is unusual, or past the deadline. */
static int64_t evaluate_graph(graph *g, const id_ref *output) {
    size_t n = g->n;
    if (n > g->work_capacity) {
        free(g->mark);
        free(g->grad);
        free(g->order);
        free(g->stack);
        g->mark = malloc(n);
        g->grad = malloc(n * sizeof(double));
        g->order = malloc(n * sizeof(uint32_t));
        g->stack = malloc(n * sizeof(uint64_t));
        g->work_capacity = n;
    }
    if (g->mark == NULL || g->grad == NULL || g->order == NULL || g->stack == NULL) {
        g->work_capacity = 0;
        return -1;
    }
    memset(g->mark, 0, n);
    int64_t root = choose_output(g, output);
    if (g->slot_capacity > 4096) { /* no more lookups: a big graph's table goes */
        free(g->slots);
        g->slots = NULL;
        g->slot_capacity = 0;
    }
    if (root < 0 || !dependency_order(g) || !forward(g) || !backward(g, (uint32_t)root))
        return -1;
    return root;
}

#endif

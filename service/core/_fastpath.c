/* valuegraph's compiled fast path: POST /v1/evaluate's whole 200 body from the document orjson parsed.
 *
 * The reference Value class (service/core/engine.py) is the specification. This module computes what that
 * class computes, over flat arrays instead of Python objects, and writes the answer's bytes as
 * service/http/routes/evaluate.py's evaluation_json (orjson) writes them. It returns None, "not mine", for anything
 * the reference path would refuse or that this code does not handle (an invalid node, a duplicate
 * id, a cycle, a number that leaves the finite doubles, an integer gradient past 2**53, ...), and
 * the reference path then answers: every refusal is explained there, never here.
 *
 * It parses nothing: it reads the dicts, lists, strings and numbers orjson.loads made (borrowed
 * references; no Python code runs while it reads them), so it accepts no JSON the parser refuses.
 *
 * Bit-identity with the reference class takes:
 * - Python ints where the reference class has them: relu's 0, the root's grad 1, an unreached node's grad 0,
 *   grads fed only through add, sub and neg, -x of an int 0 (the int 0, not -0.0). A number here is
 *   a double plus a flag saying "a Python int"; ints stay exact below 2**53, beyond that we decline.
 * - The reference class's hidden Values: neg is x * -1; a - b is a + (b * -1); a / b is a * b**-1. Their grads
 *   are folded into the request node's contributions with the reference class's roundings, in the reference class's order
 *   (the hidden node is the last child of its only parent, so it comes right after it in the
 *   reversed topological order).
 * - pow as CPython's float_pow, calling libm pow with a runtime exponent; exp and log as math.exp
 *   and math.log (libm, with their errno checks); no FMA contraction (-ffp-contract=off).
 * - The backward pass in the reference class's order: depth-first post-order from the output, children in their
 *   listed order, reversed; each child's grad accumulates lg * grad in that order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <stdio.h>

#define ID_MAX_LENGTH 256
#define INT_LIMIT 9007199254740992.0 /* 2**53: below it a double holds a Python int exactly */

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

/* A number as the reference class holds it: a float, or a Python int (exact, |v| < 2**53, never -0.0). */
typedef struct {
    double v;
    bool is_int;
} num;

static inline num float_num(double v) { return (num){v, false}; }
static inline num int_num(double v) { return (num){v, true}; }

/* Per node flags. */
#define F_DATA_INT 1u
#define F_GRAD_INT 2u
#define F_USED 4u /* some node lists it as a child */

typedef struct {
    Py_ssize_t n;
    PyObject *nodes; /* the request's list, borrowed */
    PyObject **id;   /* each node's id, borrowed */
    uint64_t *key;   /* its value (an int within 64 bits) or its hash (a str, a larger int) */
    uint8_t *id_type;
    uint8_t *kind;
    uint8_t *flags;
    uint8_t *mark; /* post_order's: 0 unseen, 1 on the path, 2 placed */
    double *data;
    double *grad;
    double *aux0;          /* pow, log, exp, relu: the local gradient; div: b ** -1 */
    PyObject **lists;      /* each node's children list, while resolving them */
    uint32_t *child_start; /* n + 1 offsets into child */
    uint32_t *child;
    uint32_t *order; /* a node order, children first */
    uint64_t *stack; /* (node, next child) pairs of a depth-first walk */
    uint64_t *slots; /* the id table: (hash >> 32) << 32 | (index + 1); 0 is empty */
    uint64_t slot_mask;
    bool dense;          /* the ids are the ints first_id, first_id + 1, ...: no table, an id is its position */
    uint64_t first_id;
    uint64_t probe_budget;
    bool bad; /* an int left the exact range, or a number is not finite */
} graph;

/* --- numbers ------------------------------------------------------------------------------------ */

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

/* CPython 3.11's float_pow for finite operands; *fails when Python raises, or the result is complex.
 * noipa: the exponent stays a runtime value, so the compiler cannot fold pow(x, -1.0) into 1 / x. */
__attribute__((noipa)) static double python_pow(double iv, double iw, bool *fails) {
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

static PyObject *LOCAL_GRADS; /* the key "local_grads" */

/* Volatile, so that the reference class's constant exponents reach python_pow as runtime values. */
static volatile double MINUS_ONE = -1.0;
static volatile double MINUS_TWO = -2.0;

/* --- reading the document ----------------------------------------------------------------------- */

/* A finite JSON number (int or float, never bool) as float() reads it. */
static bool read_number(PyObject *o, double *out) {
    if (PyFloat_CheckExact(o)) {
        *out = PyFloat_AS_DOUBLE(o);
        return isfinite(*out);
    }
    if (PyLong_CheckExact(o)) {
        double v = PyLong_AsDouble(o);
        if (v == -1.0 && PyErr_Occurred()) {
            PyErr_Clear();
            return false;
        }
        *out = v;
        return isfinite(v);
    }
    return false;
}

static inline bool is_id(PyObject *o) {
    if (PyLong_CheckExact(o))
        return true;
    if (PyUnicode_CheckExact(o)) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(o);
        return length > 0 && length <= ID_MAX_LENGTH;
    }
    return false;
}

/* A label, which only pictures show: a str of 1 to ID_MAX_LENGTH characters, as service.contract.graph.is_label. */
static inline bool is_label(PyObject *o) {
    return PyUnicode_CheckExact(o) && PyUnicode_GET_LENGTH(o) > 0 && PyUnicode_GET_LENGTH(o) <= ID_MAX_LENGTH;
}

enum key { KEY_ID, KEY_OP, KEY_DATA, KEY_LABEL, KEY_CHILDREN, KEY_EXPONENT, KEY_LOCAL_GRADS, KEY_OTHER };

static enum key key_of(PyObject *k) {
    if (!PyUnicode_CheckExact(k) || !PyUnicode_IS_COMPACT_ASCII(k))
        return KEY_OTHER;
    const char *s = (const char *)PyUnicode_DATA(k);
    switch (PyUnicode_GET_LENGTH(k)) {
    case 2:
        return memcmp(s, "id", 2) == 0 ? KEY_ID : memcmp(s, "op", 2) == 0 ? KEY_OP : KEY_OTHER;
    case 4:
        return memcmp(s, "data", 4) == 0 ? KEY_DATA : KEY_OTHER;
    case 5:
        return memcmp(s, "label", 5) == 0 ? KEY_LABEL : KEY_OTHER;
    case 8:
        return memcmp(s, "children", 8) == 0 ? KEY_CHILDREN : memcmp(s, "exponent", 8) == 0 ? KEY_EXPONENT : KEY_OTHER;
    case 11:
        return memcmp(s, "local_grads", 11) == 0 ? KEY_LOCAL_GRADS : KEY_OTHER;
    default:
        return KEY_OTHER;
    }
}

static const struct operation *operation_named(PyObject *op) {
    if (!PyUnicode_CheckExact(op) || !PyUnicode_IS_COMPACT_ASCII(op))
        return NULL;
    Py_ssize_t length = PyUnicode_GET_LENGTH(op);
    const char *s = (const char *)PyUnicode_DATA(op);
    for (size_t k = 0; k < N_OPERATIONS; k++)
        if ((Py_ssize_t)strlen(OPERATIONS[k].name) == length && memcmp(OPERATIONS[k].name, s, (size_t)length) == 0)
            return &OPERATIONS[k];
    return NULL;
}

static bool is_value_op(PyObject *op) {
    return PyUnicode_CheckExact(op) && PyUnicode_IS_COMPACT_ASCII(op) && PyUnicode_GET_LENGTH(op) == 5 &&
           memcmp(PyUnicode_DATA(op), "value", 5) == 0;
}

/* One node, checked as service.contract.graph.node_is_valid checks it (declining more is allowed, never less);
 * fills its kind, id, data (leaf, recorded), exponent (pow, in aux0) and children's list. */
static bool read_node(graph *g, Py_ssize_t i, PyObject *node, PyObject **children, size_t *child_count) {
    if (!PyDict_CheckExact(node))
        return false;
    PyObject *fields[KEY_OTHER] = {NULL};
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (PyDict_Next(node, &position, &key, &value)) {
        enum key k = key_of(key);
        if (k == KEY_OTHER)
            return false;
        fields[k] = value;
    }
    PyObject *id = fields[KEY_ID];
    if (id == NULL || !is_id(id))
        return false;
    if (fields[KEY_LABEL] != NULL && !is_label(fields[KEY_LABEL]))
        return false;
    g->id[i] = id;
    *children = NULL;
    double number;
    if (fields[KEY_OP] != NULL && !is_value_op(fields[KEY_OP])) {
        const struct operation *op = operation_named(fields[KEY_OP]);
        PyObject *list = fields[KEY_CHILDREN];
        if (op == NULL || fields[KEY_DATA] != NULL || fields[KEY_LOCAL_GRADS] != NULL || list == NULL ||
            !PyList_CheckExact(list) || PyList_GET_SIZE(list) != op->arity)
            return false;
        if (op->takes_exponent) {
            if (fields[KEY_EXPONENT] == NULL || !read_number(fields[KEY_EXPONENT], &number))
                return false;
            g->aux0[i] = number;
        } else if (fields[KEY_EXPONENT] != NULL) {
            return false;
        }
        g->kind[i] = op->kind;
        *children = list;
    } else if (fields[KEY_OP] == NULL && (fields[KEY_CHILDREN] != NULL || fields[KEY_LOCAL_GRADS] != NULL)) {
        PyObject *list = fields[KEY_CHILDREN], *grads = fields[KEY_LOCAL_GRADS];
        if (fields[KEY_EXPONENT] != NULL || list == NULL || grads == NULL || !PyList_CheckExact(list) ||
            !PyList_CheckExact(grads) || PyList_GET_SIZE(list) != PyList_GET_SIZE(grads) ||
            fields[KEY_DATA] == NULL || !read_number(fields[KEY_DATA], &number))
            return false;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(grads); k++) {
            double ignored;
            if (!read_number(PyList_GET_ITEM(grads, k), &ignored))
                return false;
        }
        g->kind[i] = KIND_RECORDED;
        g->data[i] = number;
        *children = list;
    } else {
        if (fields[KEY_CHILDREN] != NULL || fields[KEY_LOCAL_GRADS] != NULL || fields[KEY_EXPONENT] != NULL ||
            fields[KEY_DATA] == NULL || !read_number(fields[KEY_DATA], &number))
            return false;
        g->kind[i] = KIND_LEAF;
        g->data[i] = number;
    }
    if (*children != NULL) {
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(*children); k++)
            if (!is_id(PyList_GET_ITEM(*children, k)))
                return false;
        *child_count += (size_t)PyList_GET_SIZE(*children);
    }
    return true;
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

enum id_type { ID_INT = 1, ID_STR, ID_BIG_INT };

typedef struct {
    uint64_t key, hash;
    uint8_t type;
} id_key;

/* An id's key: ints within 64 bits compare by value, without calling back into Python. */
static bool key_of_id(PyObject *id, id_key *out) {
    if (PyLong_CheckExact(id)) {
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(id, &overflow);
        if (overflow == 0) {
            if (value == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                return false;
            }
            out->key = (uint64_t)value;
            out->type = ID_INT;
            out->hash = mix(out->key);
            return true;
        }
        out->type = ID_BIG_INT;
    } else {
        out->type = ID_STR;
    }
    Py_hash_t h = PyObject_Hash(id); /* an exact str or int: no Python code runs */
    if (h == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return false;
    }
    out->key = (uint64_t)h;
    out->hash = mix(out->key ^ ((uint64_t)out->type << 56));
    return true;
}

/* Ids as Python compares them: "1" and 1 differ. */
static bool ids_equal(const graph *g, Py_ssize_t index, PyObject *b, const id_key *k) {
    if (g->id_type[index] != k->type || g->key[index] != k->key)
        return false;
    PyObject *a = g->id[index];
    if (k->type == ID_INT || a == b)
        return true;
    if (k->type == ID_STR) {
        Py_ssize_t length = PyUnicode_GET_LENGTH(a);
        int kind = PyUnicode_KIND(a);
        return length == PyUnicode_GET_LENGTH(b) && kind == PyUnicode_KIND(b) &&
               memcmp(PyUnicode_DATA(a), PyUnicode_DATA(b), (size_t)length * (size_t)kind) == 0;
    }
    int equal = PyObject_RichCompareBool(a, b, Py_EQ);
    if (equal < 0) {
        PyErr_Clear();
        return false;
    }
    return equal == 1;
}

/* The position of the node with this id, -1 if none, -2 when the table gives up (too many probes). */
static Py_ssize_t id_find(graph *g, PyObject *id) {
    id_key k;
    if (!key_of_id(id, &k))
        return -2;
    if (g->dense) {
        uint64_t position = k.key - g->first_id;
        return k.type == ID_INT && position < (uint64_t)g->n ? (Py_ssize_t)position : -1;
    }
    uint64_t slot = k.hash & g->slot_mask;
    uint64_t tag = k.hash >> 32;
    for (;;) {
        uint64_t entry = g->slots[slot];
        if (entry == 0)
            return -1;
        if (g->probe_budget-- == 0)
            return -2;
        if ((entry >> 32) == tag) {
            Py_ssize_t index = (Py_ssize_t)(entry & 0xffffffffULL) - 1;
            if (ids_equal(g, index, id, &k))
                return index;
        }
        slot = (slot + 1) & g->slot_mask;
    }
}

/* Adds node i's id, its key already in g->key and g->id_type; false for a duplicate id (the reference
 * refuses it) or a table that gives up. */
static bool id_insert(graph *g, Py_ssize_t i) {
    id_key k = {g->key[i], 0, g->id_type[i]};
    k.hash = k.type == ID_INT ? mix(k.key) : mix(k.key ^ ((uint64_t)k.type << 56));
    uint64_t slot = k.hash & g->slot_mask;
    uint64_t tag = k.hash >> 32;
    for (;;) {
        uint64_t entry = g->slots[slot];
        if (entry == 0) {
            g->slots[slot] = (tag << 32) | (uint64_t)(i + 1);
            return true;
        }
        if (g->probe_budget-- == 0)
            return false;
        if ((entry >> 32) == tag && ids_equal(g, (Py_ssize_t)(entry & 0xffffffffULL) - 1, g->id[i], &k))
            return false;
        slot = (slot + 1) & g->slot_mask;
    }
}

/* --- the graph ---------------------------------------------------------------------------------- */

static void graph_free(graph *g) {
    free(g->id);
    free(g->key);
    free(g->id_type);
    free(g->kind);
    free(g->flags);
    free(g->mark);
    free(g->data);
    free(g->grad);
    free(g->aux0);
    free(g->lists);
    free(g->child_start);
    free(g->child);
    free(g->order);
    free(g->stack);
    free(g->slots);
    memset(g, 0, sizeof(*g));
}

/* The id table, once every id is resolved. */
static void free_id_table(graph *g) {
    free(g->key);
    free(g->id_type);
    free(g->slots);
    g->key = NULL;
    g->id_type = NULL;
    g->slots = NULL;
}

/* All but what the answer is written from: ids, data, grads and their flags. */
static void free_before_writing(graph *g) {
    free(g->mark);
    free(g->aux0);
    free(g->child_start);
    free(g->child);
    free(g->order);
    free(g->stack);
    g->mark = NULL;
    g->aux0 = NULL;
    g->child_start = g->child = g->order = NULL;
    g->stack = NULL;
}

/* Validates every node, indexes the ids and resolves the children; false means "not mine". */
static bool read_graph(graph *g) {
    Py_ssize_t n = g->n;
    size_t n_ = (size_t)n;
    g->id = malloc(n_ * sizeof(PyObject *));
    g->key = malloc(n_ * sizeof(uint64_t));
    g->id_type = malloc(n_);
    g->kind = malloc(n_);
    g->flags = calloc(n_, 1);
    g->data = malloc(n_ * sizeof(double));
    g->aux0 = calloc(n_, sizeof(double));
    g->lists = malloc(n_ * sizeof(PyObject *));
    g->child_start = malloc((n_ + 1) * sizeof(uint32_t));
    if (!g->id || !g->key || !g->id_type || !g->kind || !g->flags || !g->data || !g->aux0 || !g->lists ||
        !g->child_start)
        return false;

    size_t child_count = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        id_key k;
        if (!read_node(g, i, PyList_GET_ITEM(g->nodes, i), &g->lists[i], &child_count) || !key_of_id(g->id[i], &k))
            return false;
        g->key[i] = k.key;
        g->id_type[i] = k.type;
    }
    g->first_id = g->key[0];
    g->dense = true;
    for (Py_ssize_t i = 0; i < n && g->dense; i++)
        g->dense = g->id_type[i] == ID_INT && g->key[i] == g->first_id + (uint64_t)i;
    if (!g->dense) {
        uint64_t capacity = 16;
        while (capacity < 2 * (uint64_t)n_)
            capacity *= 2;
        g->slots = calloc(capacity, sizeof(uint64_t));
        if (g->slots == NULL)
            return false;
        g->slot_mask = capacity - 1;
        g->probe_budget = 64 * (uint64_t)n_ + 4096;
        for (Py_ssize_t i = 0; i < n; i++)
            if (!id_insert(g, i))
                return false;
    }
    if (child_count >= UINT32_MAX)
        return false;
    g->child = malloc((child_count ? child_count : 1) * sizeof(uint32_t));
    if (g->child == NULL)
        return false;
    uint32_t position = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        g->child_start[i] = position;
        PyObject *list = g->lists[i];
        if (list == NULL)
            continue;
        for (Py_ssize_t k = 0; k < PyList_GET_SIZE(list); k++) {
            Py_ssize_t j = id_find(g, PyList_GET_ITEM(list, k));
            if (j < 0)
                return false;
            g->child[position++] = (uint32_t)j;
            g->flags[j] |= F_USED;
        }
    }
    g->child_start[n] = position;
    free(g->lists);
    g->lists = NULL;
    return true;
}

/* The one walk of a graph: depth-first post-order from `root`, children in their listed order, each
 * node once, appended to g->order at *count. g->mark says 0 unseen, 1 on the path, 2 placed; it is kept
 * across calls, so that walking from every node in turn places each node once. False on a cycle: a
 * child met while it is still on the path (the reference refuses it). */
static bool post_order(graph *g, uint32_t root, size_t *count) {
    uint8_t *mark = g->mark;
    if (mark[root])
        return true;
    size_t depth = 0;
    mark[root] = 1;
    g->stack[depth++] = (uint64_t)root << 32 | g->child_start[root];
    while (depth) {
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

/* A children-first order of every node into g->order; false on a cycle. */
static bool dependency_order(graph *g) {
    Py_ssize_t n = g->n;
    bool in_request_order = true;
    for (Py_ssize_t i = 0; i < n && in_request_order; i++)
        for (uint32_t k = g->child_start[i]; k < g->child_start[i + 1]; k++)
            if (g->child[k] >= (uint32_t)i) {
                in_request_order = false;
                break;
            }
    if (in_request_order) {
        for (Py_ssize_t i = 0; i < n; i++)
            g->order[i] = (uint32_t)i;
        return true;
    }
    size_t count = 0;
    for (Py_ssize_t root = 0; root < n; root++)
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
 * computes them; false where the reference class raises or a number is not finite. */
static bool forward(graph *g) {
    bool fails = false;
    bool *bad = &g->bad;
    for (Py_ssize_t position = 0; position < g->n; position++) {
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

/* The output's position: the one given, or the one node no node lists as a child; -1 if none. */
static Py_ssize_t choose_output(graph *g, PyObject *output) {
    if (output != NULL) {
        Py_ssize_t found = id_find(g, output);
        return found >= 0 ? found : -1;
    }
    Py_ssize_t sink = -1;
    for (Py_ssize_t i = 0; i < g->n; i++) {
        if (!(g->flags[i] & F_USED)) {
            if (sink >= 0)
                return -1;
            sink = i;
        }
    }
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

/* The reference class's backward pass from the output: false when a grad is not finite or an int overflows. */
static bool backward(graph *g, uint32_t root) {
    bool *bad = &g->bad;
    for (Py_ssize_t i = 0; i < g->n; i++) {
        g->grad[i] = 0.0;
        g->flags[i] |= F_GRAD_INT;
    }
    size_t count = 0;
    memset(g->mark, 0, (size_t)g->n);
    if (!post_order(g, root, &count))
        return false;
    g->grad[root] = 1.0;
    const num one = int_num(1), minus_one = int_num(-1), zero = int_num(0);
    for (size_t position = count; position-- > 0;) {
        uint32_t v = g->order[position];
        num grad = grad_of(g, v);
        const uint32_t *c = g->child + g->child_start[v];
        switch (g->kind[v]) {
        case KIND_LEAF:
            break;
        case KIND_RECORDED: {
            PyObject *grads = PyDict_GetItemWithError(PyList_GET_ITEM(g->nodes, v), LOCAL_GRADS);
            if (grads == NULL || !PyList_CheckExact(grads) ||
                PyList_GET_SIZE(grads) != (Py_ssize_t)(g->child_start[v + 1] - g->child_start[v])) {
                PyErr_Clear();
                return false;
            }
            uint32_t arity = g->child_start[v + 1] - g->child_start[v];
            for (uint32_t k = 0; k < arity; k++) {
                double lg;
                if (!read_number(PyList_GET_ITEM(grads, k), &lg))
                    return false;
                accumulate(g, c[k], num_mul(float_num(lg), grad, bad));
            }
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
    for (Py_ssize_t i = 0; i < g->n; i++)
        if (!isfinite(g->grad[i]))
            return false;
    return true;
}

/* --- writing the answer as orjson writes it ------------------------------------------------------- */

typedef struct {
    PyObject *bytes;
    char *start;
    size_t used, capacity;
} writer;

static bool writer_reserve(writer *w, size_t more) {
    if (w->capacity - w->used >= more)
        return true;
    size_t capacity = w->capacity * 2;
    if (capacity < w->used + more)
        capacity = w->used + more;
    if (capacity > (size_t)PY_SSIZE_T_MAX)
        return false;
    if (_PyBytes_Resize(&w->bytes, (Py_ssize_t)capacity) < 0) {
        w->bytes = NULL;
        PyErr_Clear();
        return false;
    }
    w->start = PyBytes_AS_STRING(w->bytes);
    w->capacity = capacity;
    return true;
}

static inline char *write_literal(char *p, const char *s, size_t length) {
    memcpy(p, s, length);
    return p + length;
}

static char *write_uint(char *p, uint64_t value) {
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
static int shortest_digits(double x, char digits[24], int *point) {
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
static char *write_double(char *p, double x) {
    if (signbit(x))
        *p++ = '-';
    if (x == 0)
        return write_literal(p, "0.0", 3);
    char digits[24];
    int point;
    const int length = shortest_digits(fabs(x), digits, &point);
    if (point - length >= 0 && point <= 16) {
        p = write_literal(p, digits, (size_t)length);
        for (int k = length; k < point; k++)
            *p++ = '0';
        return write_literal(p, ".0", 2);
    }
    if (point > 0 && point <= 16) {
        p = write_literal(p, digits, (size_t)point);
        *p++ = '.';
        return write_literal(p, digits + point, (size_t)(length - point));
    }
    if (point > -5 && point <= 0) {
        *p++ = '0';
        *p++ = '.';
        for (int k = 0; k < -point; k++)
            *p++ = '0';
        return write_literal(p, digits, (size_t)length);
    }
    *p++ = digits[0];
    if (length > 1) {
        *p++ = '.';
        p = write_literal(p, digits + 1, (size_t)(length - 1));
    }
    *p++ = 'e';
    int e = point - 1;
    if (e < 0) {
        *p++ = '-';
        e = -e;
    } else {
        *p++ = '+';
    }
    return write_uint(p, (uint64_t)e);
}

/* A number of the reference class: an int as an integer, a float as orjson writes floats. */
static char *write_num(char *p, double v, bool is_int) {
    if (!is_int)
        return write_double(p, v);
    if (v < 0) {
        *p++ = '-';
        v = -v;
    }
    return write_uint(p, (uint64_t)v);
}

static const char HEX[] = "0123456789abcdef";

/* An id as orjson.dumps writes it; false for one it cannot write (a str with surrogates, an int
 * outside 64 bits). The reserve is computed from the id's size first. */
static bool write_id(writer *w, PyObject *id) {
    if (PyLong_CheckExact(id)) {
        int overflow;
        long long value = PyLong_AsLongLongAndOverflow(id, &overflow);
        if (!writer_reserve(w, 24))
            return false;
        char *p = w->start + w->used;
        if (overflow == 0) {
            if (value == -1 && PyErr_Occurred()) {
                PyErr_Clear();
                return false;
            }
            if (value < 0) {
                *p++ = '-';
                p = write_uint(p, (uint64_t)0 - (uint64_t)value);
            } else {
                p = write_uint(p, (uint64_t)value);
            }
        } else if (overflow > 0) {
            unsigned long long big = PyLong_AsUnsignedLongLong(id);
            if (big == (unsigned long long)-1 && PyErr_Occurred()) {
                PyErr_Clear();
                return false;
            }
            p = write_uint(p, big);
        } else {
            return false;
        }
        w->used = (size_t)(p - w->start);
        return true;
    }
    Py_ssize_t length;
    const char *s = PyUnicode_AsUTF8AndSize(id, &length);
    if (s == NULL) {
        PyErr_Clear();
        return false;
    }
    if (!writer_reserve(w, 6 * (size_t)length + 2))
        return false;
    char *p = w->start + w->used;
    *p++ = '"';
    for (Py_ssize_t k = 0; k < length; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *p++ = (char)c;
            continue;
        }
        *p++ = '\\';
        switch (c) {
        case '"':
            *p++ = '"';
            break;
        case '\\':
            *p++ = '\\';
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
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = HEX[c >> 4];
            *p++ = HEX[c & 15];
        }
    }
    *p++ = '"';
    w->used = (size_t)(p - w->start);
    return true;
}

#define NUMBER_RESERVE 32 /* the longest double orjson writes is 24 bytes */

static PyObject *write_answer(graph *g, PyObject *output_id) {
    writer w = {NULL, NULL, 0, 0};
    size_t initial = (size_t)g->n * 96 + 256;
    w.bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)initial);
    if (w.bytes == NULL) {
        PyErr_Clear();
        return NULL;
    }
    w.start = PyBytes_AS_STRING(w.bytes);
    w.capacity = initial;
    w.used = 0;
    char *p = write_literal(w.start, "{\"output\":", 10);
    w.used = (size_t)(p - w.start);
    if (!write_id(&w, output_id) || !writer_reserve(&w, 16))
        goto fail;
    p = write_literal(w.start + w.used, ",\"nodes\":[", 10);
    w.used = (size_t)(p - w.start);
    for (Py_ssize_t i = 0; i < g->n; i++) {
        if (!writer_reserve(&w, 8))
            goto fail;
        p = write_literal(w.start + w.used, i ? ",{\"id\":" : "{\"id\":", i ? 7 : 6);
        w.used = (size_t)(p - w.start);
        if (!write_id(&w, g->id[i]) || !writer_reserve(&w, 2 * NUMBER_RESERVE + 20))
            goto fail;
        p = write_literal(w.start + w.used, ",\"data\":", 8);
        p = write_num(p, g->data[i], (g->flags[i] & F_DATA_INT) != 0);
        p = write_literal(p, ",\"grad\":", 8);
        p = write_num(p, g->grad[i], (g->flags[i] & F_GRAD_INT) != 0);
        *p++ = '}';
        w.used = (size_t)(p - w.start);
    }
    if (!writer_reserve(&w, 2))
        goto fail;
    p = write_literal(w.start + w.used, "]}", 2);
    w.used = (size_t)(p - w.start);
    if (_PyBytes_Resize(&w.bytes, (Py_ssize_t)w.used) < 0) {
        PyErr_Clear();
        return NULL;
    }
    return w.bytes;
fail:
    Py_XDECREF(w.bytes);
    return NULL;
}

/* --- the module ----------------------------------------------------------------------------------- */

static PyObject *answer(PyObject *document, Py_ssize_t max_nodes) {
    if (!PyDict_CheckExact(document))
        return NULL;
    PyObject *nodes = NULL, *output = NULL, *key, *value;
    Py_ssize_t position = 0;
    while (PyDict_Next(document, &position, &key, &value)) {
        if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_COMPACT_ASCII(key))
            return NULL;
        Py_ssize_t length = PyUnicode_GET_LENGTH(key);
        const char *s = (const char *)PyUnicode_DATA(key);
        if (length == 5 && memcmp(s, "nodes", 5) == 0)
            nodes = value;
        else if (length == 6 && memcmp(s, "output", 6) == 0)
            output = value;
        else
            return NULL;
    }
    if (nodes == NULL || !PyList_CheckExact(nodes) || (output != NULL && !is_id(output)))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(nodes);
    if (n < 1 || n > max_nodes || (uint64_t)n >= UINT32_MAX)
        return NULL;

    graph g;
    memset(&g, 0, sizeof(g));
    g.n = n;
    g.nodes = nodes;
    PyObject *result = NULL;
    if (!read_graph(&g))
        goto done;
    Py_ssize_t root = choose_output(&g, output);
    if (root < 0)
        goto done;
    free_id_table(&g);
    g.mark = calloc((size_t)n, 1);
    g.grad = malloc((size_t)n * sizeof(double));
    g.order = malloc((size_t)n * sizeof(uint32_t));
    g.stack = malloc((size_t)n * sizeof(uint64_t));
    if (g.mark == NULL || g.grad == NULL || g.order == NULL || g.stack == NULL || !dependency_order(&g) ||
        !forward(&g) || !backward(&g, (uint32_t)root))
        goto done;
    free_before_writing(&g);
    result = write_answer(&g, g.id[root]);
done:
    graph_free(&g);
    return result;
}

static PyObject *fastpath_evaluate(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "evaluate(document, max_nodes) takes 2 arguments");
        return NULL;
    }
    Py_ssize_t max_nodes = PyLong_AsSsize_t(args[1]);
    if (max_nodes == -1 && PyErr_Occurred())
        return NULL;
    PyObject *result = answer(args[0], max_nodes);
    if (result == NULL) {
        if (PyErr_Occurred())
            PyErr_Clear();
        Py_RETURN_NONE;
    }
    return result;
}

static PyMethodDef methods[] = {
    {"evaluate", (PyCFunction)(void (*)(void))fastpath_evaluate, METH_FASTCALL,
     "evaluate(document, max_nodes) -> bytes | None\n\n"
     "The whole 200 body for the document orjson.loads made, byte for byte what the reference path "
     "writes, or None when the reference path must answer (any refusal, anything unusual)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fastpath", "valuegraph's compiled fast path (service/core/fastpath.py wraps it).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *operations = PyDict_New();
    if (operations == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (size_t k = 0; k < N_OPERATIONS; k++) {
        PyObject *entry = Py_BuildValue("(iO)", OPERATIONS[k].arity, OPERATIONS[k].takes_exponent ? Py_True : Py_False);
        if (entry == NULL || PyDict_SetItemString(operations, OPERATIONS[k].name, entry) < 0) {
            Py_XDECREF(entry);
            Py_DECREF(operations);
            Py_DECREF(m);
            return NULL;
        }
        Py_DECREF(entry);
    }
    if (PyModule_AddObject(m, "OPERATIONS", operations) < 0) {
        Py_DECREF(operations);
        Py_DECREF(m);
        return NULL;
    }
    if (LOCAL_GRADS == NULL && (LOCAL_GRADS = PyUnicode_InternFromString("local_grads")) == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* fastpath_read.h: a graph request read from its JSON bytes straight into a graph's flat arrays.
 *
 * Part of the fast path (service/core/_fastpath.c includes it; no Python API here). JSON is read by
 * jsonscan.h, which judges validity and every number's value exactly as orjson.loads does. What the
 * reader accepts is exactly what service.contract.graph.node_is_valid accepts, or less: anything else
 * (an unknown or repeated key, a float or a boolean where an id goes, an empty list of nodes, ...) makes
 * it decline, and the reference path answers (and explains). It reads past nothing it does not
 * understand, so a graph it reads is also a whole valid JSON value.
 *
 * Ids are kept without a Python object: an int as its 64 bits, a string as a pointer to its bytes, in
 * the body itself when the JSON string has no escapes, else decoded into the reader's arena. A child
 * is resolved at once when its node came before it (the usual order), else after the last node.
 */
#ifndef FASTPATH_READ_H
#define FASTPATH_READ_H

#include "fastpath_graph.h"
#include "jsonscan.h"

/* A child that named a node not read yet: resolved once every node is read. */
typedef struct {
    id_ref id;
    uint32_t position; /* in graph.child */
} pending_child;

typedef struct {
    char *arena; /* strings decoded from escapes, one after another; never longer than the body */
    size_t arena_capacity, arena_used;
    pending_child *pending;
    size_t pending_count, pending_capacity;
    size_t max_nodes;
    bool labels; /* nodes may carry a label (read and ignored: no answer echoes it) */
} reader;

/* A reader for a body of `length` bytes; false when memory runs out. The arena is only touched by
 * strings with escapes. */
static bool reader_init(reader *r, size_t length, size_t max_nodes, bool labels) {
    memset(r, 0, sizeof(*r));
    r->arena = malloc(length + 1);
    r->arena_capacity = length + 1;
    r->max_nodes = max_nodes;
    r->labels = labels;
    return r->arena != NULL;
}

static void reader_clear(reader *r) {
    r->arena_used = 0;
    r->pending_count = 0;
}

static void reader_free(reader *r) {
    free(r->arena);
    free(r->pending);
    memset(r, 0, sizeof(*r));
}

enum key {
    KEY_ID,
    KEY_OP,
    KEY_DATA,
    KEY_CHILDREN,
    KEY_EXPONENT,
    KEY_LOCAL_GRADS,
    KEY_LABEL,
    KEY_NODES,
    KEY_OUTPUT,
    KEY_GRAPHS,
    KEY_OTHER,
};

static enum key key_named(const char *s, size_t length) {
#define IS(name) (memcmp(s, name, sizeof(name) - 1) == 0)
    switch (length) {
    case 2:
        return IS("id") ? KEY_ID : IS("op") ? KEY_OP : KEY_OTHER;
    case 4:
        return IS("data") ? KEY_DATA : KEY_OTHER;
    case 5:
        return IS("nodes") ? KEY_NODES : IS("label") ? KEY_LABEL : KEY_OTHER;
    case 6:
        return IS("output") ? KEY_OUTPUT : IS("graphs") ? KEY_GRAPHS : KEY_OTHER;
    case 8:
        return IS("children") ? KEY_CHILDREN : IS("exponent") ? KEY_EXPONENT : KEY_OTHER;
    case 11:
        return IS("local_grads") ? KEY_LOCAL_GRADS : KEY_OTHER;
    default:
        return KEY_OTHER;
    }
#undef IS
}

/* p at a string of at most 15 plain ASCII characters (no escape; the usual key or op name): true, its
 * characters in [*start, *start + *length) and *next past it. False for anything else, which
 * json_scan_string then reads. */
static inline bool short_plain_string(const char *p, const char *end, const char **start, size_t *length,
                                      const char **next) {
    if (p >= end || *p != '"')
        return false;
    const char *q = p + 1, *limit = end - q > 16 ? q + 16 : end;
    while (q < limit && *q != '"' && *q != '\\' && (unsigned char)(*q - 0x20) < 0x60)
        q++;
    if (q >= limit || *q != '"')
        return false;
    *start = p + 1;
    *length = (size_t)(q - (p + 1));
    *next = q + 1;
    return true;
}

/* *s at an object's key: which key it is (compared decoded: "\u0069d" is id) and *s past its colon.
 * False for invalid JSON, and for a key too long to be one of ours once decoded. */
static inline bool read_key(const char **s, const char *end, enum key *key) {
    const char *name;
    size_t length;
    char decoded[16];
    if (!short_plain_string(*s, end, &name, &length, s)) {
        json_string text;
        if (json_scan_string(*s, end, decoded, sizeof(decoded), &text, s) != JSON_OK)
            return false;
        name = text.ptr;
        length = text.len;
    }
    *key = key_named(name, length);
    const char *p = *s;
    if (p < end && *p == ':') { /* the usual case: no space before the colon */
        *s = p + 1;
        return true;
    }
    return json_expect(p, end, ':', s);
}

/* After a member of an object or an item of an array: true and *s past the comma when another
 * follows; true and *more false, *s past the closing bracket, when it ends; false otherwise. */
static inline bool read_separator(const char **s, const char *end, char closing, bool *more) {
    const char *p = json_skip_ws(*s, end);
    if (p < end && *p == ',') {
        *s = json_skip_ws(p + 1, end);
        *more = true;
        return true;
    }
    if (p < end && *p == closing) {
        *s = p + 1;
        *more = false;
        return true;
    }
    return false;
}

/* *s at an array or object: true and *s past the bracket if it is empty; else *s at its first member. */
static inline bool opens(const char **s, const char *end, char opening, char closing, bool *empty) {
    const char *p = json_skip_ws(*s, end);
    if (p >= end || *p != opening)
        return false;
    p = json_skip_ws(p + 1, end);
    *empty = p < end && *p == closing;
    *s = *empty ? p + 1 : p;
    return true;
}

/* A string of 1 to ID_MAX_LENGTH characters (code points, as Python's len counts them). */
static bool is_short_text(const char *s, size_t length) {
    if (length == 0 || length > 4 * ID_MAX_LENGTH)
        return false;
    if (length <= ID_MAX_LENGTH)
        return true;
    size_t characters = 0;
    for (size_t k = 0; k < length; k++)
        characters += ((unsigned char)s[k] & 0xC0) != 0x80;
    return characters <= ID_MAX_LENGTH;
}

/* *s at a string: its decoded bytes, kept in the arena when it had escapes (until reader_clear). */
static bool read_text(reader *r, const char **s, const char *end, json_string *text) {
    const char *p = json_skip_ws(*s, end);
    if (json_scan_string(p, end, r->arena + r->arena_used, r->arena_capacity - r->arena_used, text, s) != JSON_OK)
        return false;
    if (text->escaped)
        r->arena_used += text->len;
    return true;
}

/* *s at an id: a string of 1 to 256 characters, or an int (orjson's: within 64 bits; a float is no id). */
static bool read_id(reader *r, const char **s, const char *end, id_ref *id) {
    const char *p = json_skip_ws(*s, end);
    json_type type = json_peek(p, end);
    if (type == JSON_T_STRING) {
        json_string text;
        if (!read_text(r, &p, end, &text) || !is_short_text(text.ptr, text.len))
            return false;
        *id = (id_ref){(uint64_t)(uintptr_t)text.ptr, (uint32_t)text.len, text.escaped ? ID_ESCAPED : ID_TEXT};
    } else if (type == JSON_T_NUMBER) {
        json_number number;
        if (json_scan_number(p, end, &number, &p) != JSON_OK || number.kind == JSON_FLOAT)
            return false;
        *id = number.kind == JSON_INT ? (id_ref){(uint64_t)number.i, 0, ID_INT} : (id_ref){number.u, 0, ID_UINT};
    } else {
        return false;
    }
    *s = p;
    return true;
}

/* *s at a number: its value as float() reads the int or float orjson makes of it. */
static bool read_number(const char **s, const char *end, double *value) {
    const char *p = json_skip_ws(*s, end);
    json_number number;
    if (json_peek(p, end) != JSON_T_NUMBER || json_scan_number(p, end, &number, s) != JSON_OK)
        return false;
    *value = number.d;
    return true;
}

/* *s at an op's name: one of the registry's (*op) or "value" (*op NULL). */
static bool read_op(const char **s, const char *end, const struct operation **op) {
    const char *p = json_skip_ws(*s, end), *name;
    size_t length;
    char decoded[16];
    json_string text;
    if (!short_plain_string(p, end, &name, &length, s)) {
        if (json_peek(p, end) != JSON_T_STRING || json_scan_string(p, end, decoded, sizeof(decoded), &text, s) != JSON_OK)
            return false;
        name = text.ptr;
        length = text.len;
    }
    *op = NULL;
    if (length == 5 && memcmp(name, "value", 5) == 0)
        return true;
    for (size_t k = 0; k < N_OPERATIONS; k++)
        if (strlen(OPERATIONS[k].name) == length && memcmp(OPERATIONS[k].name, name, length) == 0) {
            *op = &OPERATIONS[k];
            return true;
        }
    return false;
}

/* *s at a label: a string of 1 to 256 characters, read and forgotten. */
static bool read_label(reader *r, const char **s, const char *end) {
    size_t used = r->arena_used;
    json_string text;
    bool valid = read_text(r, s, end, &text) && is_short_text(text.ptr, text.len);
    r->arena_used = used;
    return valid;
}

static bool pend(reader *r, const id_ref *id, uint32_t position) {
    if (r->pending_count == r->pending_capacity) {
        size_t capacity = r->pending_capacity ? 2 * r->pending_capacity : 64;
        pending_child *pending = grow_array(r->pending, capacity, sizeof(pending_child));
        if (pending == NULL)
            return false;
        r->pending = pending;
        r->pending_capacity = capacity;
    }
    r->pending[r->pending_count++] = (pending_child){*id, position};
    return true;
}

/* *s at a node's children, a list of ids, stored from graph.child[start]; their number in *count. */
static bool read_children(graph *g, reader *r, const char **s, const char *end, uint32_t start, size_t *count) {
    bool more;
    if (!opens(s, end, '[', ']', &more))
        return false;
    more = !more;
    size_t k = 0;
    while (more) {
        if (!graph_reserve_children(g, (size_t)start + k + 1))
            return false;
        size_t arena_used = r->arena_used;
        id_ref child;
        if (!read_id(r, s, end, &child))
            return false;
        int64_t found = id_find(g, &child);
        if (found == -2)
            return false;
        if (found >= 0) {
            g->child[start + k] = (uint32_t)found;
            r->arena_used = arena_used; /* its node's id holds the same bytes */
        } else if (!pend(r, &child, (uint32_t)(start + k))) {
            return false;
        }
        k++;
        if (!read_separator(s, end, ']', &more))
            return false;
    }
    *count = k;
    return true;
}

/* *s at a recorded node's local_grads, a list of numbers, stored from graph.local_grad[start]. */
static bool read_local_grads(graph *g, const char **s, const char *end, uint32_t start, size_t *count) {
    bool more;
    if (!opens(s, end, '[', ']', &more))
        return false;
    more = !more;
    size_t k = 0;
    while (more) {
        if (!graph_reserve_children(g, (size_t)start + k + 1) || !graph_reserve_local_grads(g) ||
            !read_number(s, end, &g->local_grad[start + k]))
            return false;
        k++;
        if (!read_separator(s, end, ']', &more))
            return false;
    }
    *count = k;
    return true;
}

#define HAS(key) (((seen >> (key)) & 1u) != 0)

/* *s at a node: read it as node n, checked as service.contract.graph.node_is_valid checks it
 * (declining more is allowed, never less), its id added to the table. */
static bool read_node(graph *g, reader *r, const char **s, const char *end) {
    if (g->n >= r->max_nodes || g->n >= UINT32_MAX - 1)
        return false;
    if (g->n == g->capacity) {
        size_t capacity = g->capacity ? 2 * g->capacity : 64;
        if (!graph_reserve_nodes(g, capacity < r->max_nodes ? capacity : r->max_nodes))
            return false;
    }
    size_t i = g->n;
    uint32_t start = (uint32_t)g->child_count;
    const struct operation *op = NULL;
    id_ref id = {0, 0, 0};
    double data = 0, exponent = 0;
    size_t children = 0, local_grads = 0;
    unsigned seen = 0;
    bool more;
    if (!opens(s, end, '{', '}', &more) || more)
        return false;
    for (more = true; more;) {
        enum key key;
        if (!read_key(s, end, &key) || key > KEY_LABEL || HAS(key) || (key == KEY_LABEL && !r->labels))
            return false;
        seen |= 1u << key;
        bool read = false;
        switch (key) {
        case KEY_ID:
            read = read_id(r, s, end, &id);
            break;
        case KEY_OP:
            read = read_op(s, end, &op);
            break;
        case KEY_DATA:
            read = read_number(s, end, &data);
            break;
        case KEY_EXPONENT:
            read = read_number(s, end, &exponent);
            break;
        case KEY_CHILDREN:
            read = read_children(g, r, s, end, start, &children);
            break;
        case KEY_LOCAL_GRADS:
            read = read_local_grads(g, s, end, start, &local_grads);
            break;
        default:
            read = read_label(r, s, end);
        }
        if (!read || !read_separator(s, end, '}', &more))
            return false;
    }
    if (!HAS(KEY_ID))
        return false;
    g->aux0[i] = 0.0;
    if (op != NULL) { /* an operation */
        if (HAS(KEY_DATA) || HAS(KEY_LOCAL_GRADS) || !HAS(KEY_CHILDREN) || children != op->arity ||
            HAS(KEY_EXPONENT) != op->takes_exponent)
            return false;
        g->kind[i] = op->kind;
        g->aux0[i] = exponent;
        g->data[i] = 0.0;
    } else if (!HAS(KEY_OP) && (HAS(KEY_CHILDREN) || HAS(KEY_LOCAL_GRADS))) { /* a recorded node */
        if (HAS(KEY_EXPONENT) || !HAS(KEY_CHILDREN) || !HAS(KEY_LOCAL_GRADS) || children != local_grads ||
            !HAS(KEY_DATA) || !graph_reserve_local_grads(g))
            return false;
        g->kind[i] = KIND_RECORDED;
        g->data[i] = data;
    } else { /* a leaf: no op, or "value" */
        if (HAS(KEY_CHILDREN) || HAS(KEY_LOCAL_GRADS) || HAS(KEY_EXPONENT) || !HAS(KEY_DATA))
            return false;
        g->kind[i] = KIND_LEAF;
        g->data[i] = data;
    }
    g->id_type[i] = id.type;
    g->id_value[i] = id.value;
    g->id_length[i] = id.length;
    g->flags[i] = 0;
    g->child_start[i] = start;
    g->child_count += children;
    return id_add(g);
}

#undef HAS

/* The children that named nodes read after them; false when one names no node (the reference refuses it). */
static bool resolve_pending(graph *g, reader *r) {
    for (size_t k = 0; k < r->pending_count; k++) {
        int64_t found = id_find(g, &r->pending[k].id);
        if (found < 0)
            return false;
        g->child[r->pending[k].position] = (uint32_t)found;
    }
    g->child_start[g->n] = (uint32_t)g->child_count;
    return true;
}

/* *s at a graph request, {"nodes": [...], "output": id}: every node read into g, the children resolved,
 * *output the named output (when *has_output), *s past the request's closing brace. False when the
 * request is not one this path answers, or past the deadline (g->past_deadline). */
static bool read_graph(graph *g, reader *r, const char **s, const char *end, id_ref *output, bool *has_output) {
    bool more;
    unsigned seen = 0;
    *has_output = false;
    if (!graph_reserve_children(g, 1) || !opens(s, end, '{', '}', &more) || more)
        return false; /* (the child array is never empty, so that every node's children have an address) */
    for (more = true; more;) {
        enum key key;
        if (!read_key(s, end, &key) || (key != KEY_NODES && key != KEY_OUTPUT) || (seen & (1u << key)))
            return false;
        seen |= 1u << key;
        if (key == KEY_OUTPUT) {
            if (!read_id(r, s, end, output))
                return false;
            *has_output = true;
        } else {
            bool nodes_left;
            if (!opens(s, end, '[', ']', &nodes_left) || nodes_left)
                return false; /* not a list, or an empty one */
            for (nodes_left = true; nodes_left;)
                if (!on_time(g) || !read_node(g, r, s, end) || !read_separator(s, end, ']', &nodes_left))
                    return false;
        }
        if (!read_separator(s, end, '}', &more))
            return false;
    }
    return (seen & (1u << KEY_NODES)) && resolve_pending(g, r);
}

/* *s at a batch item that read_graph declined: *s past it, the whole item checked as orjson checks
 * JSON, and in *nodes the length of its "nodes" list when it is an object whose last "nodes" key is a
 * list (what service.contract.batch counts against the batch's limit), else 0. `depth`: the containers
 * open around the item. */
static json_status skip_item(const char **s, const char *end, int depth, size_t *nodes) {
    json_status status;
    bool more;
    *nodes = 0;
    *s = json_skip_ws(*s, end);
    if (json_peek(*s, end) != JSON_T_OBJECT)
        return json_skip_value(*s, end, depth, s);
    if (depth + 1 > JSON_MAX_DEPTH)
        return JSON_INVALID;
    if (!opens(s, end, '{', '}', &more))
        return JSON_INVALID;
    for (more = !more; more;) {
        char decoded[8];
        json_string name;
        const char *key = *s;
        bool is_nodes = false;
        status = json_scan_string(key, end, decoded, sizeof(decoded), &name, s);
        if (status == JSON_OK)
            is_nodes = key_named(name.ptr, name.len) == KEY_NODES;
        else if (status == JSON_DECLINE) /* longer than "nodes" once decoded */
            status = json_skip_string(key, end, s);
        if (status != JSON_OK)
            return status;
        if (!json_expect(*s, end, ':', s))
            return JSON_INVALID;
        const char *value = json_skip_ws(*s, end);
        if (is_nodes && json_peek(value, end) == JSON_T_ARRAY) {
            bool items;
            size_t count = 0;
            if (depth + 2 > JSON_MAX_DEPTH)
                return JSON_INVALID;
            *s = value;
            if (!opens(s, end, '[', ']', &items))
                return JSON_INVALID;
            for (items = !items; items; count++) {
                if ((status = json_skip_value(*s, end, depth + 2, s)) != JSON_OK)
                    return status;
                if (!read_separator(s, end, ']', &items))
                    return JSON_INVALID;
            }
            *nodes = count;
        } else {
            if (is_nodes)
                *nodes = 0;
            if ((status = json_skip_value(value, end, depth + 1, s)) != JSON_OK)
                return status;
        }
        if (!read_separator(s, end, '}', &more))
            return JSON_INVALID;
    }
    return JSON_OK;
}

#endif

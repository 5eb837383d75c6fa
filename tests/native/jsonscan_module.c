/* _jsonscan: a CPython extension exposing service/core/jsonscan.h to tests/native/check_jsonscan.py and
 * bench_jsonscan.py. Built by `make native-tests` (the Makefile) into build/native/<variant>/. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>
#include <time.h>

static unsigned long long SLOW_PATH_COUNT;
#define JSON_ON_SLOW_PATH() (SLOW_PATH_COUNT++)
#include "jsonscan.h"

static const char *const STATUS[] = {"ok", "invalid", "decline"};

static PyObject *status_str(json_status st) { return PyUnicode_FromString(STATUS[st]); }

/* Every function copies the bytes into a buffer of exactly their length, so that an ASan build
 * catches a read past end (a bytes object has a hidden NUL after its data). */
static char *exact_copy(Py_buffer *view) {
    char *copy = malloc(view->len ? (size_t)view->len : 1);
    if (copy == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    memcpy(copy, view->buf, (size_t)view->len);
    return copy;
}

static PyObject *validate(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    char *s = exact_copy(&view);
    json_status st = s ? json_validate(s, s + view.len) : JSON_OK;
    free(s);
    PyBuffer_Release(&view);
    return s ? status_str(st) : NULL;
}

/* parse_number(b) -> (outcome, kind, value, end, integer_token) */
static PyObject *parse_number(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    char *s = exact_copy(&view);
    if (s == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    json_number n;
    const char *next = NULL;
    json_status st = json_scan_number(s, s + view.len, &n, &next);
    PyObject *result;
    if (st != JSON_OK) {
        result = Py_BuildValue("(NOOOO)", status_str(st), Py_None, Py_None, Py_None, Py_None);
    } else {
        PyObject *value, *kind;
        if (n.kind == JSON_INT) {
            value = PyLong_FromLongLong(n.i);
            kind = PyUnicode_FromString("int");
            if (n.d != (double)n.i)
                abort();
        } else if (n.kind == JSON_UINT) {
            value = PyLong_FromUnsignedLongLong(n.u);
            kind = PyUnicode_FromString("uint");
        } else {
            value = PyFloat_FromDouble(n.d);
            kind = PyUnicode_FromString("float");
        }
        result = Py_BuildValue("(NNNnN)", status_str(st), kind, value, (Py_ssize_t)(next - s),
                               PyBool_FromLong(n.integer_token));
    }
    free(s);
    PyBuffer_Release(&view);
    return result;
}

/* number_double(b) -> the double of JSON_INT/UINT/FLOAT as n.d, or None */
static PyObject *number_double(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    char *s = exact_copy(&view);
    json_number n;
    const char *next;
    json_status st = s ? json_scan_number(s, s + view.len, &n, &next) : JSON_INVALID;
    free(s);
    PyBuffer_Release(&view);
    if (PyErr_Occurred())
        return NULL;
    if (st != JSON_OK)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(n.d);
}

/* parse_string(b, cap=-1) -> (outcome, bytes or None, escaped, ascii, end) */
static PyObject *parse_string(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t cap = -1;
    if (!PyArg_ParseTuple(args, "y*|n", &view, &cap))
        return NULL;
    char *s = exact_copy(&view);
    if (s == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    if (cap < 0)
        cap = view.len;
    char *buf = malloc(cap ? (size_t)cap : 1);
    json_string out;
    const char *next = NULL;
    json_status st = json_scan_string(s, s + view.len, buf, (size_t)cap, &out, &next);
    PyObject *result;
    if (st != JSON_OK) {
        result = Py_BuildValue("(NOOOO)", status_str(st), Py_None, Py_None, Py_None, Py_None);
    } else {
        if (!out.escaped && (out.ptr < s || out.ptr + out.len > s + view.len))
            abort();
        if (out.escaped && out.ptr != buf)
            abort();
        result = Py_BuildValue("(Ny#NNn)", status_str(st), out.ptr, (Py_ssize_t)out.len, PyBool_FromLong(out.escaped),
                               PyBool_FromLong(out.ascii), (Py_ssize_t)(next - s));
    }
    /* The validating twin must agree on the outcome and the end. */
    const char *next2 = NULL;
    json_status st2 = json_skip_string(s, s + view.len, &next2);
    if (st == JSON_OK ? (st2 != JSON_OK || next2 != next) : (st == JSON_INVALID && st2 != JSON_INVALID))
        abort();
    free(buf);
    free(s);
    PyBuffer_Release(&view);
    return result;
}

/* skip_value(b, depth=0) -> (outcome, end) */
static PyObject *skip_value(PyObject *self, PyObject *args) {
    Py_buffer view;
    int depth = 0;
    if (!PyArg_ParseTuple(args, "y*|i", &view, &depth))
        return NULL;
    char *s = exact_copy(&view);
    if (s == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const char *next = NULL;
    json_status st = json_skip_value(s, s + view.len, depth, &next);
    PyObject *result = st == JSON_OK ? Py_BuildValue("(Nn)", status_str(st), (Py_ssize_t)(next - s))
                                     : Py_BuildValue("(NO)", status_str(st), Py_None);
    free(s);
    PyBuffer_Release(&view);
    return result;
}

/* scan_literal(b) -> (outcome, "true"|"false"|"null", end) */
static PyObject *scan_literal(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    char *s = exact_copy(&view);
    json_literal which;
    const char *next = NULL;
    json_status st = s ? json_scan_literal(s, s + view.len, &which, &next) : JSON_INVALID;
    static const char *const NAMES[] = {"false", "true", "null"};
    PyObject *result = st == JSON_OK ? Py_BuildValue("(Nsn)", status_str(st), NAMES[which], (Py_ssize_t)(next - s))
                                     : Py_BuildValue("(NOO)", status_str(st), Py_None, Py_None);
    free(s);
    PyBuffer_Release(&view);
    return result;
}

/* expect(b, c) -> end or None */
static PyObject *expect(PyObject *self, PyObject *args) {
    Py_buffer view;
    int c;
    if (!PyArg_ParseTuple(args, "y*C", &view, &c))
        return NULL;
    char *s = exact_copy(&view);
    const char *next = NULL;
    bool found = s && json_expect(s, s + view.len, (char)c, &next);
    PyObject *result = found ? PyLong_FromSsize_t(next - s) : Py_NewRef(Py_None);
    free(s);
    PyBuffer_Release(&view);
    return result;
}

/* eisel_lemire(w, q) -> (certain, bits) */
static PyObject *eisel_lemire(PyObject *self, PyObject *args) {
    unsigned long long w;
    long long q;
    if (!PyArg_ParseTuple(args, "KL", &w, &q))
        return NULL;
    if (w == 0) {
        PyErr_SetString(PyExc_ValueError, "w must be non-zero");
        return NULL;
    }
    uint64_t bits;
    bool certain = json_eisel_lemire(w, q, &bits);
    return Py_BuildValue("(NK)", PyBool_FromLong(certain), (unsigned long long)bits);
}

/* slow_path(token, candidate_bits) -> (outcome, bits): the exact path alone, for a valid positive
 * float token, starting from any candidate. */
static PyObject *slow_path(PyObject *self, PyObject *args) {
    Py_buffer view;
    unsigned long long candidate;
    if (!PyArg_ParseTuple(args, "y*K", &view, &candidate))
        return NULL;
    char *s = exact_copy(&view);
    if (s == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    const char *end = s + view.len, *c = s;
    const char *int_start = c;
    while (c < end && *c >= '0' && *c <= '9')
        c++;
    const char *int_end = c, *frac_start = c, *frac_end = c;
    if (c < end && *c == '.') {
        frac_start = ++c;
        while (c < end && *c >= '0' && *c <= '9')
            c++;
        frac_end = c;
    }
    long long exp10 = 0;
    if (c < end && (*c == 'e' || *c == 'E'))
        exp10 = strtoll((const char *)view.buf + (c + 1 - s), NULL, 10); /* the original is NUL-terminated */
    /* the leading significant digit's weight */
    long long lead = 0;
    bool found = false;
    long long pos = (long long)(int_end - int_start) - 1;
    for (const char *d = int_start; d < frac_end; d++) {
        if (d == int_end) {
            d = frac_start - 1;
            continue;
        }
        if (*d != '0') {
            found = true;
            break;
        }
        pos--;
    }
    lead = pos + exp10;
    uint64_t bits = 0;
    json_status st = found ? json_slow_path(int_start, int_end, frac_start, frac_end, lead, candidate, &bits)
                           : JSON_OK;
    free(s);
    PyBuffer_Release(&view);
    return Py_BuildValue("(NK)", status_str(st), (unsigned long long)bits);
}

/* --- benchmarks ---------------------------------------------------------------------------------- */

/* This thread's CPU time: the machine may be shared, and time spent descheduled is not ours. */
static double cpu_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static volatile double SINK;

/* bench_numbers(tokens, repeat, which) -> best ns per number, in this thread's CPU time.
 * tokens: one bytes object, the tokens each followed by a NUL (contiguous, as in a request body;
 * the NUL serves strtod). which: 0 json_scan_number, 1 strtod, 2 PyOS_string_to_double (CPython's
 * float() core, without the interpreter). */
static PyObject *bench_numbers(PyObject *self, PyObject *args) {
    Py_buffer view;
    int repeat, which;
    if (!PyArg_ParseTuple(args, "y*ii", &view, &repeat, &which))
        return NULL;
    const char *all = view.buf, *stop = all + view.len;
    Py_ssize_t n = 0;
    for (const char *c = all; c < stop; c++)
        n += *c == 0;
    const char **ptr = PyMem_Malloc(sizeof(char *) * (size_t)(n + 1));
    Py_ssize_t *len = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n + 1));
    Py_ssize_t i = 0;
    for (const char *c = all; c < stop && i < n; i++) {
        ptr[i] = c;
        len[i] = (Py_ssize_t)strlen(c);
        c += len[i] + 1;
    }
    double best = 1e300, sum = 0;
    for (int r = 0; r < repeat; r++) {
        double start = cpu_ns();
        for (i = 0; i < n; i++) {
            double d;
            if (which == 0) {
                json_number num;
                const char *next;
                json_scan_number(ptr[i], ptr[i] + len[i], &num, &next);
                d = num.d;
            } else if (which == 1) {
                d = strtod(ptr[i], NULL);
            } else {
                d = PyOS_string_to_double(ptr[i], NULL, NULL);
            }
            sum += d;
        }
        double elapsed = cpu_ns() - start;
        if (elapsed < best)
            best = elapsed;
    }
    SINK = sum;
    PyMem_Free(ptr);
    PyMem_Free(len);
    PyBuffer_Release(&view);
    return PyFloat_FromDouble(best / (double)n);
}

/* bench_validate(b, repeat) -> (outcome, best seconds) */
static PyObject *bench_validate(PyObject *self, PyObject *args) {
    Py_buffer view;
    int repeat;
    if (!PyArg_ParseTuple(args, "y*i", &view, &repeat))
        return NULL;
    double best = 1e300;
    json_status st = JSON_OK;
    for (int r = 0; r < repeat; r++) {
        double start = cpu_ns();
        st = json_validate(view.buf, (const char *)view.buf + view.len);
        double elapsed = cpu_ns() - start;
        if (elapsed < best)
            best = elapsed;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(Nd)", status_str(st), best / 1e9);
}

static PyObject *slow_path_count(PyObject *self, PyObject *unused) { return PyLong_FromUnsignedLongLong(SLOW_PATH_COUNT); }

static PyMethodDef METHODS[] = {
    {"slow_path_count", slow_path_count, METH_NOARGS, NULL},
    {"validate", validate, METH_O, NULL},
    {"parse_number", parse_number, METH_O, NULL},
    {"number_double", number_double, METH_O, NULL},
    {"parse_string", parse_string, METH_VARARGS, NULL},
    {"skip_value", skip_value, METH_VARARGS, NULL},
    {"scan_literal", scan_literal, METH_O, NULL},
    {"expect", expect, METH_VARARGS, NULL},
    {"eisel_lemire", eisel_lemire, METH_VARARGS, NULL},
    {"slow_path", slow_path, METH_VARARGS, NULL},
    {"bench_numbers", bench_numbers, METH_VARARGS, NULL},
    {"bench_validate", bench_validate, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_jsonscan", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__jsonscan(void) { return PyModule_Create(&MODULE); }

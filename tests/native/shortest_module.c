/* _shortest_test: a CPython extension exposing shortest.h to the tests and the benchmark, next
 * to the fast path's former, PyOS_double_to_string-based write_double (reference_write_double.h).
 * Built by `make native-tests` (the Makefile) into build/native/<variant>/.
 *
 * digits(x) -> (str, int)        shortest_digits(|x|): the digits and point
 * write(x) -> bytes              write_double(x)
 * reference_write(x) -> bytes    the reference write_double(x)
 * digits_batch(buffer) -> str    "DIGITS POINT\n" for each double of the buffer (nonzero, finite)
 * write_batch(buffer) -> bytes   "[a,b,...]" as orjson.dumps(list) writes the buffer's doubles
 * cross_check(seed, count)       count random finite bit patterns, shortest_digits against the
 *   -> (checked, mismatches, first_bad_bits)   reference's (CPython's repr digits), in C
 * bench(buffer, which, rounds)   ns per number of write_double (which=0) or the reference (1)
 * counters() -> (int, int)       times the integer test / the big-integer comparison ran
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "reference_write_double.h"
#include "shortest.h"

static PyObject *py_digits(PyObject *self, PyObject *arg) {
    double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred())
        return NULL;
    x = fabs(x);
    if (!(x > 0) || !isfinite(x)) {
        PyErr_SetString(PyExc_ValueError, "digits() takes a finite nonzero float");
        return NULL;
    }
    char digits[24];
    int point;
    int length = shortest_digits(x, digits, &point);
    return Py_BuildValue("(s#i)", digits, (Py_ssize_t)length, point);
}

static PyObject *writer(PyObject *arg, char *(*write)(char *, double)) {
    double x = PyFloat_AsDouble(arg);
    if (x == -1.0 && PyErr_Occurred())
        return NULL;
    if (!isfinite(x)) {
        PyErr_SetString(PyExc_ValueError, "write() takes a finite float");
        return NULL;
    }
    char buffer[64];
    char *end = write(buffer, x);
    return PyBytes_FromStringAndSize(buffer, end - buffer);
}

static PyObject *py_write(PyObject *self, PyObject *arg) { return writer(arg, write_double); }

static PyObject *py_reference_write(PyObject *self, PyObject *arg) {
    return writer(arg, reference_write_double);
}

static bool get_doubles(PyObject *arg, Py_buffer *view, const double **values, Py_ssize_t *count) {
    if (PyObject_GetBuffer(arg, view, PyBUF_SIMPLE) < 0)
        return false;
    if (view->len % (Py_ssize_t)sizeof(double) != 0) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "buffer length is not a multiple of 8");
        return false;
    }
    *values = (const double *)view->buf;
    *count = view->len / (Py_ssize_t)sizeof(double);
    return true;
}

static PyObject *py_digits_batch(PyObject *self, PyObject *arg) {
    Py_buffer view;
    const double *values;
    Py_ssize_t count;
    if (!get_doubles(arg, &view, &values, &count))
        return NULL;
    char *text = malloc((size_t)count * 32 + 1), *p = text;
    if (text == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        double x;
        memcpy(&x, &values[i], sizeof(x));
        x = fabs(x);
        if (!(x > 0) || !isfinite(x)) {
            free(text);
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "digits_batch() takes finite nonzero floats");
            return NULL;
        }
        int point;
        p += shortest_digits(x, p, &point);
        p += sprintf(p, " %d\n", point);
    }
    PyBuffer_Release(&view);
    PyObject *result = PyUnicode_FromStringAndSize(text, p - text);
    free(text);
    return result;
}

static PyObject *py_write_batch(PyObject *self, PyObject *arg) {
    Py_buffer view;
    const double *values;
    Py_ssize_t count;
    if (!get_doubles(arg, &view, &values, &count))
        return NULL;
    char *text = malloc((size_t)count * 32 + 2), *p = text;
    if (text == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    *p++ = '[';
    for (Py_ssize_t i = 0; i < count; i++) {
        double x;
        memcpy(&x, &values[i], sizeof(x));
        if (!isfinite(x)) {
            free(text);
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_ValueError, "write_batch() takes finite floats");
            return NULL;
        }
        if (i)
            *p++ = ',';
        char *start = p;
        p = write_double(p, x);
        if (p - start > 24) {
            free(text);
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_AssertionError, "write_double wrote more than 24 bytes");
            return NULL;
        }
    }
    *p++ = ']';
    PyBuffer_Release(&view);
    PyObject *result = PyBytes_FromStringAndSize(text, p - text);
    free(text);
    return result;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static PyObject *py_cross_check(PyObject *self, PyObject *args) {
    unsigned long long seed, count;
    if (!PyArg_ParseTuple(args, "KK", &seed, &count))
        return NULL;
    uint64_t state = seed;
    unsigned long long checked = 0, mismatches = 0, first_bad = 0;
    for (unsigned long long i = 0; i < count; i++) {
        uint64_t bits = splitmix64(&state) & ~(UINT64_C(1) << 63);
        double x;
        memcpy(&x, &bits, sizeof(x));
        if (!isfinite(x) || x == 0)
            continue;
        char mine[24], theirs[24];
        int mine_point, their_point;
        int mine_length = shortest_digits(x, mine, &mine_point);
        int their_length = reference_shortest_digits(x, theirs, &their_point);
        checked++;
        if (mine_length != their_length || mine_point != their_point ||
            memcmp(mine, theirs, (size_t)mine_length) != 0) {
            if (mismatches++ == 0)
                first_bad = bits;
        }
    }
    return Py_BuildValue("(KKK)", checked, mismatches, first_bad);
}

static PyObject *py_bench(PyObject *self, PyObject *args) {
    PyObject *buffer;
    int which, rounds;
    if (!PyArg_ParseTuple(args, "Oii", &buffer, &which, &rounds))
        return NULL;
    Py_buffer view;
    const double *values;
    Py_ssize_t count;
    if (!get_doubles(buffer, &view, &values, &count))
        return NULL;
    char *(*write)(char *, double) = which ? reference_write_double : write_double;
    char out[64];
    size_t total = 0;
    struct timespec start, end;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int r = 0; r < rounds; r++)
        for (Py_ssize_t i = 0; i < count; i++)
            total += (size_t)(write(out, values[i]) - out) + (unsigned char)out[0];
    clock_gettime(CLOCK_MONOTONIC, &end);
    PyBuffer_Release(&view);
    double ns = (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec);
    /* total is returned so the loop cannot be optimised away */
    return Py_BuildValue("(dK)", ns / ((double)count * rounds), (unsigned long long)total);
}

static PyObject *py_counters(PyObject *self, PyObject *unused) {
#ifdef SHORTEST_COUNTERS
    return Py_BuildValue("(KK)", shortest_count_integer, shortest_count_exact);
#else
    Py_RETURN_NONE;
#endif
}

static PyMethodDef methods[] = {
    {"digits", py_digits, METH_O, NULL},
    {"write", py_write, METH_O, NULL},
    {"reference_write", py_reference_write, METH_O, NULL},
    {"digits_batch", py_digits_batch, METH_O, NULL},
    {"write_batch", py_write_batch, METH_O, NULL},
    {"cross_check", py_cross_check, METH_VARARGS, NULL},
    {"bench", py_bench, METH_VARARGS, NULL},
    {"counters", py_counters, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_shortest_test", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__shortest_test(void) { return PyModule_Create(&module); }

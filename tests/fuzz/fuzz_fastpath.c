/* libFuzzer target for the fast path: service/core/_fastpath.c is compiled into it (instrumented for
 * coverage, AddressSanitizer, UndefinedBehaviorSanitizer and LeakSanitizer) and registered as
 * service.core._fastpath in an embedded Python, and each input goes through tests/fastpath_reference.py's
 * `check`: as a request body to evaluate and to evaluate_batch, and as a leaf holding its first 8 bytes
 * as a double (the number writer). Wherever the fast path answers, its bytes must be the reference path's;
 * where it declines, nothing is asked. A differing byte raises in Python and aborts here.
 *
 * Built and run by `make fuzz` (and briefly by `make sanitize`), with PYTHONPATH holding the project and
 * the virtual environment's packages; seeds from tests/fuzz/fastpath_seeds.py.
 */
#include "_fastpath.c"

static PyObject *check;

static void fail(const char *what) {
    fprintf(stderr, "fuzz_fastpath: %s\n", what);
    if (PyErr_Occurred())
        PyErr_Print();
    abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    Py_InitializeEx(0);
    PyObject *extension = PyInit__fastpath();
    PyObject *modules = PySys_GetObject("modules"); /* borrowed */
    if (extension == NULL || modules == NULL ||
        PyDict_SetItemString(modules, "service.core._fastpath", extension) < 0)
        fail("cannot register the extension");
    PyObject *reference = PyImport_ImportModule("tests.fastpath_reference");
    if (reference == NULL)
        fail("cannot import tests.fastpath_reference (PYTHONPATH: the project and the venv's packages)");
    check = PyObject_GetAttrString(reference, "check");
    if (check == NULL)
        fail("tests.fastpath_reference has no check");
    Py_DECREF(reference);
    Py_DECREF(extension);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    PyObject *body = PyBytes_FromStringAndSize((const char *)data, (Py_ssize_t)size);
    if (body == NULL)
        fail("out of memory");
    PyObject *result = PyObject_CallOneArg(check, body);
    if (result == NULL)
        fail("the fast path and the reference path differ");
    Py_DECREF(result);
    Py_DECREF(body);
    return 0;
}

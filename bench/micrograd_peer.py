"""The in-process peer: the service's job done with micrograd 0.1.0, in a fresh process.

    python -m bench.micrograd_peer BODY_FILE REPEATS {on,paused} [{raised,default}]

parses the body with orjson, builds micrograd Values with micrograd's own operators, runs backward
and collects every node's data and grad, REPEATS times, with Python's cyclic garbage collector left
on (as people run it) or paused during each run (as the service runs). Prints one JSON object: the
seconds of each run and the peak resident memory of the first run above the process's baseline,
or the error that stopped it.

micrograd 0.1.0 has no log or exp and no recorded nodes; those are written below the way micrograd
writes its own ops (an output Value and a _backward closure). Its backward recurses once per node of
depth, so the job runs in a thread with a large stack and a recursion limit above any graph's depth
(or, given `default`, with Python's own limit of 1,000, as people run it).
A fresh process per call keeps the bench's own heap out of the garbage collector's way and makes the
peak memory this job's alone.
"""

import gc
import math
import sys
import threading
import time

import orjson
from micrograd.engine import Value

STACK_BYTES = 1 << 30
RECURSION_LIMIT = 10_000_000


def log(x):
    out = Value(math.log(x.data), (x,), "log")

    def _backward():
        x.grad += (1 / x.data) * out.grad

    out._backward = _backward
    return out


def exp(x):
    out = Value(math.exp(x.data), (x,), "exp")

    def _backward():
        x.grad += out.data * out.grad

    out._backward = _backward
    return out


def recorded(data, children, local_grads):
    out = Value(data, children, "recorded")

    def _backward():
        for child, local_grad in zip(children, local_grads):
            child.grad += local_grad * out.grad

    out._backward = _backward
    return out


OPS = {
    "add": lambda a, b: a + b,
    "mul": lambda a, b: a * b,
    "sub": lambda a, b: a - b,
    "div": lambda a, b: a / b,
    "neg": lambda a: -a,
    "relu": Value.relu,
    "log": log,
    "exp": exp,
}


def evaluate(body):
    """The job: JSON in, every node's (data, grad) out. Children come before their users in the
    bench's bodies, so one pass in request order builds the graph."""
    document = orjson.loads(body)
    by_id, values = {}, []
    for node in document["nodes"]:
        op = node.get("op", "value")
        if "local_grads" in node:
            value = recorded(node["data"], [by_id[c] for c in node["children"]], node["local_grads"])
        elif op == "value":
            value = Value(node["data"])
        elif op == "pow":
            value = by_id[node["children"][0]] ** node["exponent"]
        else:
            value = OPS[op](*(by_id[c] for c in node["children"]))
        by_id[node["id"]] = value
        values.append(value)
    output = by_id[document["output"]] if "output" in document else values[-1]
    output.backward()
    return [(v.data, v.grad) for v in values]


def memory_kib(field):
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))


def run(path, repeats, gc_mode, report):
    baseline = memory_kib("VmRSS")
    with open(path, "rb") as file:
        body = file.read()
    report["seconds"] = []
    for _ in range(repeats):
        gc.collect()
        if gc_mode == "paused":
            gc.disable()
        start = time.perf_counter()
        result = evaluate(body)
        report["seconds"].append(time.perf_counter() - start)
        gc.enable()
        report.setdefault("peak_bytes", (memory_kib("VmHWM") - baseline) * 1024)
        report["nodes"] = len(result)
        del result


def main(path, repeats, gc_mode, recursion_limit="raised"):
    if recursion_limit == "raised":
        sys.setrecursionlimit(RECURSION_LIMIT)
    threading.stack_size(STACK_BYTES)
    report = {}

    def target():
        try:
            run(path, int(repeats), gc_mode, report)
        except BaseException as error:
            report["error"] = f"{type(error).__name__}: {error}"

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    sys.stdout.write(orjson.dumps(report).decode() + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])

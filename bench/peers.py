"""The peers of a large workload, each timed on the same request body.

- the service end to end: send the bytes over HTTP, wait for the answer, parse it with orjson;
- the server-side part of that, from gunicorn's access log;
- micrograd 0.1.0 doing the same job in-process (bench/micrograd_peer.py), garbage collector on
  and paused;
- the floor: orjson.loads of the body, with the garbage collector paused.
"""

import gc
import hashlib
import http.client
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

import orjson

from bench.server import ROOT, TAG_HEADER

_tags = itertools.count(1)


@contextmanager
def gc_paused():
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def post(server, body, timeout=600, raw=None):
    """One request to the service: (seconds end to end, seconds server-side, status, parsed answer).
    `raw`, a list, gets the answer's bytes' SHA-256, to compare the two paths' answers byte for byte.

    The client pauses its garbage collector while it parses, as the service does while it works."""
    tag = str(next(_tags))
    with gc_paused():
        start = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
        connection.request("POST", "/v1/evaluate", body, {"Content-Type": "application/json", TAG_HEADER: tag})
        response = connection.getresponse()
        content = response.read()
        answer = orjson.loads(content)
        seconds = time.perf_counter() - start
    connection.close()
    if raw is not None:
        raw.append(hashlib.sha256(content).hexdigest())
    del content
    return seconds, server.request_seconds(tag), response.status, answer


def orjson_floor(body, repeats):
    """The median seconds of orjson.loads(body): the least any JSON service must do with it."""
    times = []
    for _ in range(repeats):
        with gc_paused():
            start = time.perf_counter()
            document = orjson.loads(body)
            times.append(time.perf_counter() - start)
        del document
    return statistics.median(times)


def micrograd(body, repeats, gc_mode, recursion_limit="raised"):
    """micrograd's medians in a fresh process: {"seconds", "peak_bytes"} or {"error"}."""
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(body)
        file.flush()
        run = subprocess.run(
            [sys.executable, "-m", "bench.micrograd_peer", file.name, str(repeats), gc_mode, recursion_limit],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if run.returncode != 0:
        reason = run.stderr.strip().splitlines()[-1:] or [f"exit status {run.returncode}"]
        return {"error": f"crashed: {reason[0]}"}
    report = orjson.loads(run.stdout)
    if "error" in report:
        return {"error": report["error"]}
    return {"seconds": statistics.median(report["seconds"]), "peak_bytes": report["peak_bytes"]}

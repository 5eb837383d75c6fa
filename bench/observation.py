"""`python -m bench.observation`: what seeing a request costs (request id, Server-Timing, metrics, the JSON
log line), per request, in one process: the app's WSGI callable with service/runtime/observe.py's middleware
against the same app without it (its small after_request hook stays), on the bench's 10-node graph, runs
alternating.

The metrics are kept as under gunicorn, in files of a temporary PROMETHEUS_MULTIPROC_DIR (set before
prometheus_client is imported); the log lines go to /dev/null. The time is the process's CPU time, so that
other processes on a shared machine do not count; what noise is left only adds time, so the fastest run
of each is compared, with the median beside it.
"""

import io
import os
import statistics
import sys
import tempfile
import time

RUNS, REQUESTS = 15, 1000


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="valuegraph-bench-metrics-") as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        measure()


def measure() -> None:
    import orjson

    from bench.workloads import small_graph
    from service.http.app import create_app

    body = orjson.dumps({"nodes": small_graph()})

    def environ() -> dict:
        return {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/v1/evaluate",
            "SCRIPT_NAME": "",
            "QUERY_STRING": "",
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(f"the bench graph was answered {status}")

    def microseconds_per_request(wsgi) -> float:
        start = time.process_time()
        for _ in range(REQUESTS):
            answer = wsgi(environ(), start_response)
            for _ in answer:
                pass
            answer.close()
        return (time.process_time() - start) / REQUESTS * 1e6

    with open(os.devnull, "wb") as null:
        app = create_app()
        app.wsgi_app.write = null.write
        peers = {"observed": app.wsgi_app, "unobserved": app.wsgi_app.app}
        for wsgi in peers.values():
            microseconds_per_request(wsgi)
        times = {name: [] for name in peers}
        for _ in range(RUNS):
            for name, wsgi in peers.items():
                times[name].append(microseconds_per_request(wsgi))
    fastest = {name: min(runs) for name, runs in times.items()}
    median = {name: statistics.median(runs) for name, runs in times.items()}
    print(
        f"10-node graph, {RUNS} runs of {REQUESTS} requests: observed {fastest['observed']:.1f} µs/request "
        f"(median {median['observed']:.1f}), unobserved {fastest['unobserved']:.1f} µs/request "
        f"(median {median['unobserved']:.1f}); seeing a request costs "
        f"{fastest['observed'] - fastest['unobserved']:.1f} µs, {fastest['observed'] / fastest['unobserved']:.2f}x"
    )


if __name__ == "__main__":
    main()

"""The small-graph peer: a bare Flask endpoint that answers every POST /v1/evaluate with a constant
body, the service's own answer to the bench's small graph (written by the bench to the file named
by BENCH_BARE_BODY). Served by the same gunicorn config: `gunicorn --config gunicorn.conf.py
bench.bare_app:app`; its rate is what Flask and gunicorn cost before the service does any work."""

import os
from pathlib import Path

from flask import Flask

app = Flask(__name__)
BODY = Path(os.environ["BENCH_BARE_BODY"]).read_bytes()


@app.post("/v1/evaluate")
def evaluate():
    return app.response_class(BODY, mimetype="application/json")


@app.get("/healthz")
def healthz():
    return {"status": "ok"}

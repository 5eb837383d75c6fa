"""The service as it answered POST /v1/evaluate/batch before the fast path took a batch in one call: the
body parsed by orjson, then each item answered on its own, one Python round trip to the fast path per
item (the item serialized again for it, where the fast path once read orjson's dicts). `python -m
bench.batch` measures it beside the service: `gunicorn --config gunicorn.conf.py bench.per_item_app:app`."""

import orjson
from flask import current_app

from service.core import fastpath
from service.core.record import note_graph_size, phase
from service.http.answer import answer
from service.http.app import create_app
from service.http.batch import batch_body
from service.http.routes.evaluate import NODES_MAY_HAVE_LABELS, reference_evaluation

app = create_app()


def item_by_item(item, checkpoint, explain=True):
    if current_app.config["FAST_PATH"]:
        with phase("fastpath"):
            answered = fastpath.evaluate(
                orjson.dumps(item), current_app.config["MAX_NODES"], checkpoint, NODES_MAY_HAVE_LABELS
            )
        if answered is not None:
            note_graph_size(answered[1])
            return answered[0]
    return reference_evaluation(item, checkpoint, explain)


def evaluate_batch_item_by_item():
    return answer(lambda document, deadline: batch_body(document, item_by_item, b"evaluation", deadline))


app.view_functions["evaluate.evaluate_batch"] = evaluate_batch_item_by_item

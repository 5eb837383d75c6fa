"""`python -m bench.validation`: validating the gpt-step graph with the plain nested marshmallow
schemas against GraphRequestSchema's NodeList fast path, per node, in one process."""

import gc
import statistics
import time

import orjson
from marshmallow import Schema, fields

from bench.workloads import SCALES, gpt_step
from service.contract.graph import GraphRequestSchema, Id, Node


class NestedGraphRequestSchema(Schema):
    """What GraphRequestSchema would be without its fast path: every node through the schemas."""

    nodes = fields.List(Node(), required=True)
    output = Id()


def per_node_microseconds(schema, document, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        schema.load(document)
        times.append(time.perf_counter() - start)
    return statistics.median(times) / len(document["nodes"]) * 1e6


def main():
    gc.disable()
    for workload in gpt_step(SCALES["full"].gpt):
        document = orjson.loads(workload.body)
        nested = per_node_microseconds(NestedGraphRequestSchema(), document)
        fast = per_node_microseconds(GraphRequestSchema(), document)
        print(
            f"{workload.name}: nested schemas {nested:.2f} µs/node, NodeList {fast:.2f} µs/node, {nested / fast:.0f}x"
        )


if __name__ == "__main__":
    main()

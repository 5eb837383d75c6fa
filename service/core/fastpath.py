"""The compiled fast path (service/core/_fastpath.c), tried on a request's bytes before the reference path.

`evaluate` returns the whole 200 body of POST /v1/evaluate, byte for byte what the reference path
(orjson.loads, the contract's schemas, service/core/graphs.py's Values, service/http/routes/evaluate.py's
evaluation_json) writes, or None: "not mine", for every refusal and anything unusual, and the
reference path answers. `evaluate_batch` answers the items of POST /v1/evaluate/batch in one call and
leaves the others to the reference path. Past the request's deadline both raise DeadlineExceeded, as
the reference path does. The extension is built by `make fastpath` (setup.py); where it is not built
(no compiler), or where it implements a different set of ops than the registry (service/core/ops.py),
every request takes the reference path, and the process says so once, at import.
"""

import logging

from service.core.deadline import Deadline, DeadlineExceeded
from service.core.ops import OPS

log = logging.getLogger(__name__)

try:
    from service.core import _fastpath
except ImportError as error:
    _fastpath = None
    WHY_INACTIVE = f"the C extension service/core/_fastpath is not built ({error}); run `make fastpath`"
else:
    registry = {name: (op.arity, op.takes_exponent) for name, op in OPS.items()}
    WHY_INACTIVE = (
        None
        if registry == _fastpath.OPERATIONS
        else f"the C extension implements the ops {_fastpath.OPERATIONS}, the registry has {registry}"
    )

#: True when the extension is built and agrees with the op registry.
ACTIVE: bool = WHY_INACTIVE is None

if not ACTIVE:
    log.warning("valuegraph: every request takes the reference path: %s.", WHY_INACTIVE)

#: An item of a batch the reference path must answer: where its bytes start and end in the body.
ItemBytes = tuple[int, int]


def evaluate(body: bytes, max_nodes: int, deadline: Deadline, labels: bool = False) -> tuple[bytes, int] | None:
    """The 200 body for the request's bytes and its graph's node count, or None when the reference path
    must answer. `labels`: the contract lets nodes carry a label (read past; no answer echoes it)."""
    if not ACTIVE:
        return None
    try:
        return _fastpath.evaluate(body, max_nodes, deadline.ends, labels)
    except _fastpath.PastDeadline:
        raise DeadlineExceeded(deadline.seconds) from None


def evaluate_batch(
    body: bytes,
    item_framing: tuple[bytes, bytes],
    limits: tuple[int, int, int],
    deadline: Deadline,
    labels: bool = False,
) -> tuple[list[bytes | ItemBytes], int] | None:
    """A batch's parts, in order: bytes for each run of answered items (each inside `item_framing`'s
    prefix and suffix, comma-separated), or the ItemBytes of an item the reference path must answer;
    and the answered graphs' node count. None when the reference path must answer the whole batch (it is
    not valid JSON, or not a batch it would accept). `limits`: (max graphs, max nodes in all, max nodes
    in one graph)."""
    if not ACTIVE:
        return None
    try:
        return _fastpath.evaluate_batch(body, *item_framing, *limits, deadline.ends, labels)
    except _fastpath.PastDeadline:
        raise DeadlineExceeded(deadline.seconds) from None


def path(enabled: bool = True) -> str:
    """Which path answers requests: "fast", or "reference" (not built, or VALUEGRAPH_FAST_PATH=0)."""
    return "fast" if ACTIVE and enabled else "reference"

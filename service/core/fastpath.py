"""The compiled fast path (service/core/_fastpath.c), tried before the reference path.

`evaluate` returns the whole 200 body of POST /v1/evaluate, byte for byte what the reference path
(the contract's schemas, service/core/graphs.py's Values, service/http/routes/evaluate.py's
evaluation_json) writes, or None: "not mine", for every refusal and anything unusual, and the
reference path answers. The extension is built by
`make fastpath` (setup.py); where it is not built (no compiler), or where it implements a different
set of ops than the registry (service/core/ops.py), every request takes the reference path, and the
process says so once, at import.
"""

import logging

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


def evaluate(document: object, max_nodes: int) -> bytes | None:
    """The 200 body for the parsed request `document`, or None when the reference path must answer."""
    if _fastpath is None or not ACTIVE:
        return None
    return _fastpath.evaluate(document, max_nodes)


def path(enabled: bool = True) -> str:
    """Which path answers requests: "fast", or "reference" (not built, or VALUEGRAPH_FAST_PATH=0)."""
    return "fast" if ACTIVE and enabled else "reference"

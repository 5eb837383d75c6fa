"""The one walk of a graph: depth-first post-order, children in their listed order.

It is the order the reference `Value` class's recursive `build_topo` makes, walked with an explicit
stack so that a graph of any depth works. The engine walks Values with it, the graph builder and the
grader walk node positions.
"""

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

Node = TypeVar("Node", bound=Hashable)
Item = TypeVar("Item")
Checkpoint = Callable[[], None]

#: How many nodes a loop handles between two calls of its checkpoint (a deadline raises there).
CHECKPOINT_EVERY = 4096

_ON_PATH, _DONE = 1, 2


def post_order(
    roots: Iterable[Node],
    children: Callable[[Node], Iterable[Node]],
    checkpoint: Checkpoint | None = None,
    on_cycle: Callable[[list[Node], Node], None] | None = None,
) -> list[Node]:
    """Every node reachable from `roots`, each after its children, each once; roots in their order.

    `on_cycle(path, node)`, when given, is called when a child is met that is still on the path from
    its root (a cycle); it is expected to raise. Without it a graph is taken to have no cycle.
    """
    order: list[Node] = []
    state: dict[Node, int] = {}
    for root in roots:
        if root in state:
            continue
        state[root] = _ON_PATH
        stack = [(root, iter(children(root)))]
        while stack:
            node, pending = stack[-1]
            for child in pending:
                seen = state.get(child)
                if seen is None:
                    state[child] = _ON_PATH
                    stack.append((child, iter(children(child))))
                    break
                if seen == _ON_PATH and on_cycle is not None:
                    on_cycle([on_path for on_path, _ in stack], child)
            else:
                stack.pop()
                state[node] = _DONE
                order.append(node)
                if checkpoint and not len(order) % CHECKPOINT_EVERY:
                    checkpoint()
    return order


def checkpointed(items: Iterable[Item], checkpoint: Checkpoint | None) -> Iterator[Item]:
    """The items, with `checkpoint` called before the first and every CHECKPOINT_EVERY after it: a loop
    over something a client sized (a list of children, an inputs map) stops at the deadline."""
    if checkpoint is None:
        yield from items
        return
    for k, item in enumerate(items):
        if not k % CHECKPOINT_EVERY:
            checkpoint()
        yield item

"""Hypothesis strategies: random computation graphs in the contract's JSON shape."""

from hypothesis import strategies as st

from service.core.ops import OPS

EXPONENTS = st.one_of(st.sampled_from([2.0, 3.0, -1.0, -2.0, 0.5, -0.5, 1.5, 0.0, 1.0]), st.floats(-4, 4))


DATA = st.floats(-3, 3)


@st.composite
def graphs(draw, ops=tuple(OPS), data=DATA, exponents=EXPONENTS, max_ops=12, recorded=True, shuffle=True):
    """(nodes, output): leaves, then op (and recorded) nodes over earlier nodes, maybe shuffled.

    Ids mix strings and integers; a child may repeat; the output is any node.
    """
    ids = []

    def new_id():
        node_id = len(ids) if draw(st.booleans()) else f"n{len(ids)}"
        ids.append(node_id)
        return node_id

    nodes = [{"id": new_id(), "op": "value", "data": draw(data)} for _ in range(draw(st.integers(1, 4)))]
    kinds = list(ops) + (["recorded"] if recorded else [])
    for _ in range(draw(st.integers(1, max_ops))):
        kind = draw(st.sampled_from(kinds))
        earlier = st.sampled_from(list(ids))
        if kind == "recorded":
            children = draw(st.lists(earlier, max_size=3))
            node = {"data": draw(data), "children": children, "local_grads": [draw(data) for _ in children]}
        else:
            node = {"op": kind, "children": [draw(earlier) for _ in range(OPS[kind].arity)]}
            if kind == "pow":
                node["exponent"] = draw(exponents)
        nodes.append({"id": new_id(), **node})
    output = draw(st.sampled_from(ids))
    if shuffle:
        nodes = draw(st.permutations(nodes))
    return nodes, output

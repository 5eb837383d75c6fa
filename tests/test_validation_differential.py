"""The fast validation (service/contract/graph.py, expression.py) accepts exactly what the marshmallow schemas load, and
the schemas' NodeList, which asks the nested schemas only about the nodes `node_is_valid` refuses,
says what the plain nested schemas say: a difference here would be a hole in the contract."""

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields

from service.contract.expression import ExpressionRequestSchema, is_valid_expression_request
from service.contract.graph import GraphRequestSchema, Id, Node, is_valid_request, node_is_valid
from service.core.ops import OPS
from tests.property import examples

# Values as orjson gives them: integers it keeps as int lie within 64 bits.
json_ints = st.integers(-(2**63), 2**64 - 1)
ids = st.one_of(
    st.text(max_size=3), st.text(min_size=255, max_size=257), json_ints, st.booleans(), st.none(), st.floats()
)
numbers = st.one_of(st.floats(), json_ints, st.booleans(), st.none(), st.just("2.0"), st.just([1.0]))
ops = st.one_of(st.sampled_from([*OPS, "value", "Add", "", "sqrt"]), json_ints, st.none(), st.just(["add"]))
id_lists = st.one_of(
    st.lists(ids, max_size=3), st.lists(st.text(min_size=1, max_size=2), max_size=3), ids, st.just({"a": 1})
)
number_lists = st.one_of(
    st.lists(numbers, max_size=3), st.lists(st.floats(allow_nan=False, allow_infinity=False), max_size=3), numbers
)

labels = st.one_of(st.text(min_size=1, max_size=3), st.text(min_size=255, max_size=257), ids, st.just(""))

fields_of_a_node = {
    "id": st.one_of(st.text(min_size=1, max_size=4), ids),
    "label": labels,
    "op": ops,
    "data": numbers,
    "children": id_lists,
    "local_grads": number_lists,
    "exponent": numbers,
    "extra": st.integers(),
}


@st.composite
def node_like(draw):
    """Mostly near-valid nodes, so that every rule gets hit alone; sometimes not even an object."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.one_of(st.none(), st.integers(), st.text(), st.lists(st.integers(), max_size=2)))
    keys = draw(st.sets(st.sampled_from(list(fields_of_a_node))))
    return {key: draw(fields_of_a_node[key]) for key in sorted(keys)}


@st.composite
def near_valid_node(draw):
    """A valid node of a random shape with zero or one field broken."""
    node_id = draw(st.one_of(st.text(min_size=1, max_size=3), json_ints))
    shape = draw(st.sampled_from(["leaf", "bare leaf", "operation", "recorded"]))
    if shape == "leaf":
        node = {"id": node_id, "op": "value", "data": draw(st.floats(-1e6, 1e6))}
    elif shape == "bare leaf":
        node = {"id": node_id, "data": draw(json_ints)}
    elif shape == "operation":
        op = draw(st.sampled_from(list(OPS)))
        node = {
            "id": node_id,
            "op": op,
            "children": draw(st.lists(st.text(min_size=1, max_size=2), min_size=OPS[op].arity, max_size=OPS[op].arity)),
        }
        if op == "pow":
            node["exponent"] = draw(st.floats(-3, 3))
    else:
        children = draw(st.lists(json_ints, max_size=3))
        node = {"id": node_id, "data": 1.5, "children": children, "local_grads": [0.5] * len(children)}
    if draw(st.booleans()):
        node["label"] = draw(st.text(min_size=1, max_size=3))
    if draw(st.booleans()):
        key = draw(st.sampled_from(list(fields_of_a_node)))
        if draw(st.booleans()) and key in node:
            del node[key]
        else:
            node[key] = draw(fields_of_a_node[key])
    return node


def schema_verdict(node):
    try:
        Node().deserialize(node)
        return None
    except ValidationError as error:
        return error.messages


@settings(max_examples=examples(3000), deadline=None)
@given(st.one_of(node_like(), near_valid_node()))
def test_fast_check_accepts_exactly_what_the_node_schemas_accept(node):
    assert node_is_valid(node) == (schema_verdict(node) is None), schema_verdict(node)


class SlowGraphRequestSchema(Schema):
    """GraphRequestSchema as the plain nested schema it stands for: every node through the schemas."""

    nodes = fields.List(Node(), required=True)
    output = Id()


def load_errors(schema, document):
    """marshmallow's messages for the document, or None when it loads; `schema` a schema or its load."""
    try:
        (schema if callable(schema) else schema.load)(document)
        return None
    except ValidationError as error:
        return error.messages


@settings(max_examples=examples(500), deadline=None)
@given(st.lists(st.one_of(near_valid_node(), node_like()), min_size=1, max_size=6), st.one_of(st.none(), ids))
def test_the_request_schema_refuses_with_the_nested_schemas_messages(nodes, output):
    document = {"nodes": nodes} if output is None else {"nodes": nodes, "output": output}
    assert load_errors(GraphRequestSchema(), document) == load_errors(SlowGraphRequestSchema(), document)


@settings(max_examples=examples(500), deadline=None)
@given(
    st.one_of(st.lists(st.one_of(near_valid_node(), node_like()), max_size=4), near_valid_node(), st.none()),
    st.one_of(st.none(), ids),
    st.integers(1, 4),
    st.dictionaries(st.sampled_from(["extra", "nodes"]), st.integers(), max_size=1),
)
def test_the_request_fast_path_accepts_exactly_what_marshmallow_loads(nodes, output, max_nodes, more):
    document = {"nodes": nodes, **({} if output is None else {"output": output}), **more}
    marshmallow_loads = load_errors(GraphRequestSchema(max_nodes=max_nodes), document) is None
    assert is_valid_request(document, max_nodes) == marshmallow_loads


def test_a_refused_request_is_explained_by_the_schemas_without_keyword_surprises():
    document = {"nodes": [{"id": "a", "data": "2.0"}]}
    assert not is_valid_request(document)
    assert load_errors(GraphRequestSchema(), document) == {
        "nodes": {0: {"data": ["Not a valid number: '2.0'; a JSON number is required."]}}
    }
    assert load_errors(GraphRequestSchema(partial=True), document) == load_errors(GraphRequestSchema(), document)


def test_only_the_first_hundred_invalid_nodes_are_explained():
    nodes = [{"id": k, "data": "not a number"} for k in range(250)]
    try:
        GraphRequestSchema().load({"nodes": nodes})
    except ValidationError as error:
        messages = error.messages["nodes"]
    assert sorted(key for key in messages if isinstance(key, int)) == list(range(100))
    assert messages["more"] == ["150 more nodes are invalid; the first 100 are listed."]


def test_the_node_limit_is_the_schemas_argument():
    document = {"nodes": [{"id": k, "data": 1.0} for k in range(11)]}
    assert GraphRequestSchema(max_nodes=11).load(document)
    assert load_errors(GraphRequestSchema(max_nodes=10), document) == {
        "nodes": ["A graph may have at most 10 nodes; this one has 11."]
    }


expression_documents = st.one_of(
    st.fixed_dictionaries(
        {"expression": st.one_of(st.text(max_size=5), numbers)},
        optional={
            "inputs": st.one_of(st.dictionaries(st.text(max_size=2), numbers, max_size=3), numbers, st.none()),
            "extra": st.integers(),
        },
    ),
    st.dictionaries(st.sampled_from(["inputs", "extra"]), st.integers(), max_size=2),
    numbers,
)


@settings(max_examples=examples(1000), deadline=None)
@given(expression_documents)
def test_the_expression_fast_path_accepts_exactly_what_marshmallow_loads(document):
    assert is_valid_expression_request(document) == (load_errors(ExpressionRequestSchema(), document) is None)


def test_only_the_first_hundred_invalid_inputs_are_explained():
    messages = load_errors(ExpressionRequestSchema(), {"expression": "a", "inputs": {f"x{k}": "1" for k in range(250)}})
    assert sorted(messages["inputs"]) == sorted([*(f"x{k}" for k in range(100)), "_schema"])
    assert messages["inputs"]["_schema"] == ["150 more inputs are invalid; the first 100 are listed."]

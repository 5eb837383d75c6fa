"""POST /v1/expression: the seed's class running the same Python expression is the reference, bit for
bit, node by node in the order the seed creates its Values; refusals point at the text at fault."""

import ast
import math
import sys

import orjson
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from service.core import arithmetic, expression
from tests.property import examples
from tools import reference_value as seed_value
from tools.reference_value import Value

PATH = "/v1/expression"


@pytest.fixture
def post(client, conforms):
    def send(body, query="", test_client=client, path=PATH):
        response = test_client.post(path + query, data=orjson.dumps(body), content_type="application/json")
        conforms(path, "post", response.status_code, response.content_type, response.data)
        return response

    return send


def run_with_seed(text, inputs, monkeypatch):
    """Python runs `text` on the seed's Values; returns every Value in the order it was created
    (the inputs first), or None where the seed fails or leaves the finite real numbers."""
    created = []
    original_init = Value.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        created.append(self)

    def function(method, plain):
        return lambda x: getattr(x, method)() if isinstance(x, Value) else plain(x)

    namespace = {
        "log": function("log", math.log),
        "exp": function("exp", math.exp),
        "relu": function("relu", lambda x: max(0, x)),
    }
    with monkeypatch.context() as patch:
        patch.setattr(Value, "__init__", recording_init)
        values = {name: Value(data) for name, data in inputs.items()}
        try:
            output = eval(text, {"__builtins__": {}, **namespace}, values)  # test-made text only
            if not isinstance(output, Value):
                output = Value(output)
            output.backward()
        except (ArithmeticError, ValueError, TypeError):
            return None
    numbers = [number for value in created for number in (value.data, value.grad)]
    if not all(isinstance(number, int | float) and math.isfinite(number) for number in numbers):
        return None
    return created


def bits(number):
    return float(number).hex()


def check_against_seed(post, text, inputs, monkeypatch):
    """The service lists the inputs in the order of their first use: the test's names are letters
    that no function name contains, so that is the order of their first letter in the text."""
    inputs = {name: inputs[name] for name in sorted(inputs, key=text.find)}
    reference = run_with_seed(text, inputs, monkeypatch)
    response = post({"expression": text, "inputs": inputs})
    if reference is None:
        assert response.status_code == 422, response.get_json()
        assert response.get_json()["type"] in ("/problems/numeric-error", "/problems/invalid-expression")
        return
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert [(bits(node["data"]), bits(node["grad"])) for node in answer["nodes"]] == [
        (bits(value.data), bits(value.grad)) for value in reference
    ]
    by_id = {node["id"]: node for node in answer["nodes"]}
    assert bits(answer["data"]) == bits(by_id[answer["output"]]["data"])
    assert {name: bits(grad) for name, grad in answer["grads"].items()} == {
        name: bits(reference[list(inputs).index(name)].grad) for name in inputs
    }
    evaluated = post({"nodes": as_graph(answer["nodes"]), "output": answer["output"]}, path="/v1/evaluate")
    assert evaluated.status_code == 200, evaluated.get_json()
    assert [(node["data"], node["grad"]) for node in evaluated.get_json()["nodes"]] == [
        (node["data"], node["grad"]) for node in answer["nodes"]
    ]


def as_graph(nodes):
    """An answer's nodes as a graph request: without their sub-expression and grad, and without data
    where the service computes it. Its numbers equal the answer's (its constants are read as doubles:
    an int 0 may come back as 0.0 or -0.0, which are equal)."""
    return [
        {
            key: value
            for key, value in node.items()
            if key not in ("expression", "grad") and (key != "data" or node["op"] == "value")
        }
        for node in nodes
    ]


def test_the_seeds_example(post):
    answer = post({"expression": "log((a + b) * a)", "inputs": {"a": 2.0, "b": 3.0}}).get_json()
    assert answer["output"] == "e"
    assert answer["data"] == math.log(10)
    assert answer["grads"] == {"a": pytest.approx(0.7, rel=1e-15), "b": pytest.approx(0.2, rel=1e-15)}
    assert [(node["id"], node["expression"]) for node in answer["nodes"]] == [
        ("a", "a"),
        ("b", "b"),
        ("c", "a + b"),
        ("d", "(a + b) * a"),
        ("e", "log((a + b) * a)"),
    ]
    assert as_graph(answer["nodes"]) == [
        {"id": "a", "op": "value", "data": 2.0},
        {"id": "b", "op": "value", "data": 3.0},
        {"id": "c", "op": "add", "children": ["a", "b"]},
        {"id": "d", "op": "mul", "children": ["c", "a"]},
        {"id": "e", "op": "log", "children": ["d"]},
    ]
    assert answer["unused"] == []
    seed = seed_value.evaluate_with_seed(
        [
            {"id": "a", "data": 2.0},
            {"id": "b", "data": 3.0},
            {"id": "c", "op": "add", "children": ["a", "b"]},
            {"id": "d", "op": "mul", "children": ["c", "a"]},
            {"id": "e", "op": "log", "children": ["d"]},
        ],
        "e",
    )
    assert {node["id"]: (node["data"], node["grad"]) for node in answer["nodes"]} == seed


@pytest.mark.parametrize(
    "text",
    [
        "log((a + b) * a)",
        "a - b",
        "2 - a",
        "a - 2",
        "a / b",
        "2 / a",
        "a / 2",
        "-a",
        "-(a * b) + -3",
        "2 * a + a * 2",
        "a * a * a - b ** 3",
        "a ** 0.5 / (b ** -1.5)",
        "exp(a - b) / (1 + exp(a - b))",
        "relu(a - b) + relu(b - a) * 0.1",
        "2 * 3 * a + (1 - 4) / b",
        "log(2) * a + exp(1) - relu(-3) * b",
        "-(-(-a))",
        "a - a",
        "(a + b) * (a - b) / (a * b) ** 2",
        "a",
        "7",
    ],
)
def test_bit_identical_to_the_seed_running_the_same_python(post, monkeypatch, text):
    inputs = {name: data for name, data in {"a": 2.0, "b": 3.0}.items() if name in text}
    check_against_seed(post, text, inputs, monkeypatch)


def expressions(depth):
    leaf = st.sampled_from(["a", "b", "c", "2", "3", "0.5", "1.5", "-1", "0.1"])
    if depth == 0:
        return leaf

    def compound(inner):
        binary = st.builds(lambda x, op, y: f"({x} {op} {y})", inner, st.sampled_from("+-*/"), inner)
        power = st.builds(lambda x, k: f"{x} ** {k}", inner, st.sampled_from(["2", "3", "-1", "0.5", "-2"]))
        call = st.builds(lambda f, x: f"{f}({x})", st.sampled_from(["log", "exp", "relu"]), inner)
        return binary | power | call | inner.map(lambda x: f"-{x}")

    return st.recursive(leaf, compound, max_leaves=12)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    text=expressions(3),
    data=st.fixed_dictionaries(
        {name: st.floats(-4, 4, allow_nan=False).filter(lambda x: abs(x) > 1e-3) for name in "abc"}
    ),
)
def test_random_expressions_are_bit_identical_to_the_seed(monkeypatch, text, data, make_app):
    app = make_app()
    test_client = app.test_client()

    def post(body, path=PATH):
        return test_client.post(path, data=orjson.dumps(body), content_type="application/json")

    inputs = {name: value for name, value in data.items() if name in text}
    note(f"{text} {inputs}")
    check_against_seed(post, text, inputs, monkeypatch)


@pytest.mark.parametrize(
    "text, inputs, column, at, words",
    [
        ("a.data + b", {"a": 1, "b": 2}, 1, "a.data", "Attribute access"),
        ("a + __import__('os')", {"a": 1}, 5, "__import__", "may be called"),
        ("a +* 2", {"a": 1}, 4, "*", "invalid syntax"),
        ("a ** b", {"a": 1, "b": 2}, 6, "b", "plain number"),
        ("a // 2", {"a": 1}, 1, "a // 2", "operators"),
        ("a + x", {"a": 1}, 5, "x", "not an input"),
        ("log(a, 2)", {"a": 1}, 1, "log(a, 2)", "one argument"),
        ("a if a else 2", {"a": 1}, 1, "a if a else 2", "not allowed"),
        ("'a' * 2", {}, 1, "'a'", "Only numbers"),
        ("a + log", {"a": 1}, 5, "log", "is a function"),
        ("+a", {"a": 1}, 1, "+a", "unary minus"),
        ("  a.b", {"a": 1}, 3, "a.b", "Attribute"),
        ("β * 2 + β.real", {"β": 1}, 9, "β.real", "Attribute"),
        ("[a, a]", {"a": 1}, 1, "[a, a]", "not allowed"),
        ("lambda: 1", {}, 1, "lambda: 1", "not allowed"),
    ],
)
def test_a_bad_expression_points_at_the_column_and_the_text(post, text, inputs, column, at, words):
    response = post({"expression": text, "inputs": inputs})
    assert response.status_code == 422
    problem = response.get_json()
    assert problem["type"] == "/problems/invalid-expression"
    first = problem["errors"][0]
    assert (first["column"], first["text"]) == (column, at), first
    assert text[column - 1 : column - 1 + len(at)] == at
    assert words in first["message"]


def test_every_fault_is_reported_once_in_order(post):
    problem = post({"expression": "f(a) + a.b.c + 'x'", "inputs": {"a": 1}}).get_json()
    assert [(error["column"], error["text"]) for error in problem["errors"]] == [(1, "f"), (8, "a.b.c"), (16, "'x'")]


def test_numeric_errors_name_the_node_and_its_text(post):
    problem = post({"expression": "a * log(b - b)", "inputs": {"a": 1.0, "b": 2.0}}).get_json()
    assert problem["type"] == "/problems/numeric-error"
    (error,) = problem["errors"]
    assert (error["expression"], error["column"], error["text"], error["op"]) == ("log(b - b)", 5, "log(b - b)", "log")
    assert "log is defined only for numbers > 0" in error["message"]
    problem = post({"expression": "a / (2 - 2)", "inputs": {"a": 1.0}}).get_json()
    assert problem["type"] == "/problems/numeric-error"
    assert problem["errors"][0]["message"] == "Division by zero."


def test_the_request_is_checked(post):
    assert post({"expression": 3}).get_json()["errors"] == [{"field": "expression", "message": "Not a valid string."}]
    problem = post({"expression": "a", "inputs": {"a": "2", "b": True}}).get_json()
    assert [error["field"] for error in problem["errors"]] == ["inputs.a", "inputs.b"]
    assert post({"expression": "   "}).get_json()["detail"] == "The expression is empty."


def test_inputs_the_expression_does_not_use_are_listed_as_unused(post):
    answer = post({"expression": "b * 2", "inputs": {"z": 1.5, "b": 3.0, "a": 2.0}}).get_json()
    assert answer["unused"] == ["z", "a"]
    assert answer["grads"] == {"z": 0, "b": 2.0, "a": 0}
    assert [node["id"] for node in answer["nodes"]] == ["b", "c", "d"]
    assert [(node["op"], node.get("children")) for node in answer["nodes"]] == [
        ("value", None),
        ("value", None),
        ("mul", ["b", "c"]),
    ]


def test_the_nodes_are_a_graph_render_draws(post):
    answer = post({"expression": "relu(x ** 3 - 2 / x)", "inputs": {"x": 1.5, "unused": 0.0}}).get_json()
    assert [node["exponent"] for node in answer["nodes"] if node["op"] == "pow"] == [3, -1]
    picture = post({"nodes": as_graph(answer["nodes"]), "output": answer["output"]}, "?format=json", path="/v1/render")
    assert picture.status_code == 200, picture.get_json()
    drawn = picture.get_json()["nodes"]
    assert [(node["id"], node["data"], node["grad"]) for node in drawn] == [
        (node["id"], node["data"], node["grad"]) for node in answer["nodes"]
    ]


def test_limits_are_settings(post, make_app):
    app = make_app({"MAX_EXPRESSION_LENGTH": 20, "MAX_EXPRESSION_NODES": 6})
    small = app.test_client()
    problem = post({"expression": "a + " * 10 + "a", "inputs": {"a": 1}}, test_client=small).get_json()
    assert problem["status"] == 422 and "VALUEGRAPH_MAX_EXPRESSION_LENGTH" in problem["detail"]
    problem = post({"expression": "a*a*a*a*a*a*a", "inputs": {"a": 1}}, test_client=small).get_json()
    assert "VALUEGRAPH_MAX_EXPRESSION_NODES" in problem["detail"]
    assert post({"expression": "a*a*a*a*a*a", "inputs": {"a": 1}}, test_client=small).status_code == 200


def created_by_seed(compute, inputs, monkeypatch):
    """Every Value the seed's class creates (the inputs first) when `compute(values)` runs and the
    result's backward pass: for expressions Python itself cannot compile, they nest so deeply."""
    created = []
    original_init = Value.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        created.append(self)

    limit = sys.getrecursionlimit()
    with monkeypatch.context() as patch:
        patch.setattr(Value, "__init__", recording_init)
        sys.setrecursionlimit(100_000)  # the seed's backward pass recurses once per level
        try:
            values = {name: Value(data) for name, data in inputs.items()}
            compute(values).backward()
        finally:
            sys.setrecursionlimit(limit)
    return [(bits(value.data), bits(value.grad)) for value in created]


def answered_bits(response):
    assert response.status_code == 200, response.get_json()
    return [(bits(node["data"]), bits(node["grad"])) for node in response.get_json()["nodes"]]


def chain(values, count):
    total = values["a"]
    for _ in range(count - 1):
        total = total + values["a"]
    return total


def relu_of_relu(values, count):
    total = values["a"]
    for _ in range(count):
        total = total.relu()
    return total


def negated(values, count):
    total = values["a"]
    for _ in range(count):
        total = -total
    return total


@pytest.mark.parametrize(
    "text, compute",
    [
        pytest.param("a+" * 4_999 + "a", lambda values: chain(values, 5_000), id="5000-term-chain"),
        pytest.param("-" * 4_000 + "a", lambda values: negated(values, 4_000), id="4000-unary-minus"),
        pytest.param("(" * 4_000 + "a" + ")" * 4_000 + "*2", lambda values: values["a"] * 2, id="4000-parentheses"),
        pytest.param("relu(" * 1_600 + "a" + ")" * 1_600, lambda values: relu_of_relu(values, 1_600), id="1600-calls"),
    ],
)
def test_an_expression_nested_deeper_than_pythons_parser_goes_is_answered_as_the_seed_computes_it(
    post, monkeypatch, text, compute
):
    """Within the length limit, no expression is refused for its depth: CPython's parser gives up, the
    service's own builds the same tree."""
    assert len(text) <= 10_000
    answer = answered_bits(post({"expression": text, "inputs": {"a": 0.1}}))
    assert answer == created_by_seed(compute, {"a": 0.1}, monkeypatch)


def test_a_deep_expression_is_refused_for_what_it_is(post):
    problem = post({"expression": "-" * 9_000 + "a", "inputs": {"a": 1}}).get_json()
    assert problem["status"] == 422 and "VALUEGRAPH_MAX_EXPRESSION_NODES" in problem["detail"]
    problem = post({"expression": "a+" * 4_000 + "a.b", "inputs": {"a": 1}}).get_json()
    (error,) = problem["errors"]
    assert (error["column"], error["text"], error["message"]) == (8_001, "a.b", "Attribute access is not allowed.")
    problem = post({"expression": "(" * 300 + "a +", "inputs": {"a": 1}}).get_json()
    assert problem["status"] == 422 and "parentheses" in problem["detail"]
    problem = post({"expression": "a+" * 4_000 + "a[1]", "inputs": {"a": 1}}).get_json()
    (error,) = problem["errors"]
    assert (error["column"], error["text"]) == (8_002, "[") and "not allowed here" in error["message"]


def source_text(depth):
    """Python expressions of the arithmetic grammar, with the spacing, comments, line breaks inside
    parentheses and number forms people write."""
    atom = st.one_of(
        st.sampled_from(["a", "b", "β", "ａ", "log", "x_1"]),
        st.sampled_from(["2", "0.5", "1e3", "1_000", "0x1F", "0o7", "0b11", "3j", ".5", "5.", "True", "None"]),
        st.sampled_from(["'s'", 'b"y"', "u'x'"]),
    )
    space = st.sampled_from(["", " ", "  ", "\t"])
    gap = st.sampled_from(["", " ", "\n ", " # note\n"])

    def compound(inner):
        operators = st.sampled_from(["+", "-", "*", "/", "//", "%", "@", "**", "|", "^", "&", "<<", ">>"])
        binary = st.builds(lambda x, s, op, t, y: f"{x}{s}{op}{t}{y}", inner, space, operators, space, inner)
        unary = st.builds(lambda op, x: f"{op}{x}", st.sampled_from(["-", "+", "~"]), inner)
        group = st.builds(lambda g, x, h: f"({g}{x}{h})", gap, inner, gap)
        call = st.builds(
            lambda f, args, comma: f"{f}({', '.join(args)}{comma})",
            inner,
            st.lists(inner, max_size=3),
            st.sampled_from(["", ","]),
        )
        attribute = st.builds(lambda x, name: f"({x}).{name}", inner, st.sampled_from(["b", "real"]))
        return binary | unary | group | call | attribute

    return st.recursive(atom, compound, max_leaves=depth)


@settings(max_examples=examples(500), deadline=None)
@given(source_text(12))
def test_the_deep_parser_builds_the_tree_cpython_builds(text):
    try:
        expected = ast.dump(ast.parse(text, mode="eval"), include_attributes=True)
    except SyntaxError:
        with pytest.raises(arithmetic.NotArithmetic):
            arithmetic.parse(text)
        return
    assert ast.dump(arithmetic.parse(text), include_attributes=True) == expected


def test_a_node_describes_a_long_sub_expression_shortened(make_app):
    answer = make_app().test_client().post(PATH, json={"expression": "a+" * 2_000 + "a", "inputs": {"a": 1}})
    texts = [node["expression"] for node in answer.get_json()["nodes"]]
    assert max(map(len, texts)) == expression.MAX_NODE_TEXT and texts[-1].startswith("a+a+") and "…" in texts[-1]


def test_a_long_chain_is_built_without_recursion():
    nodes, _, _, output = expression.build("a" + " * 1.5 + a" * 900, {"a": 1.0}, 100_000, 100_000)
    assert len(nodes) == 1 + 3 * 900 and output == nodes[-1]["id"]


def test_generated_ids_skip_the_inputs_names():
    names = expression.node_names({"a", "c"})
    assert [next(names) for _ in range(3)] == ["b", "d", "e"]
    names = expression.node_names(set())
    assert [next(names) for _ in range(28)][-2:] == ["aa", "ab"]


def test_integers_past_64_bits_are_answered_exactly_as_the_seed_computes_them(client):
    response = client.post("/v1/expression", json={"expression": "a + 2**64", "inputs": {"a": 1}})
    assert response.status_code == 200
    assert b'"data":18446744073709551616' in response.data

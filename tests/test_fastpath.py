"""The compiled fast path (service/core/_fastpath.c) against the reference path: whenever it answers, its
bytes are the reference's; it never answers where the reference refuses. Differential, with
hypothesis, on graphs aimed at the places where bit-identity is hard (Python ints in the answer,
the seed's hidden Values of sub, div and neg, pow's special cases, exp and log at their edges,
orjson's number and string formatting); and on the bench's four workloads."""

import math
import random
import struct
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from service.contract.examples import EXAMPLE_GRAPH as SEED_GRAPH
from service.core import fastpath
from service.core.deadline import Deadline, DeadlineExceeded
from service.core.ops import OPS
from service.http.app import create_app
from service.runtime.config import ConfigError, from_environment
from tests.property import examples
from tests.support import leaf, op

try:
    from service.core import _fastpath
except ImportError as error:
    pytest.skip(
        f"the fast path's C extension is not built ({error}); `make fastpath` builds it", allow_module_level=True
    )

from tests.fastpath_reference import MAX_NODES, fast, fast_batch, reference, reference_batch

ROOT = Path(__file__).resolve().parent.parent


def both(document, max_nodes=MAX_NODES):
    """(fast, reference) on the document's bytes as a client sends them."""
    body = orjson.dumps(document)
    return fast(body, max_nodes), reference(body, max_nodes)


def assert_agrees(document, max_nodes=MAX_NODES):
    fast_answer, expected = both(document, max_nodes)
    if fast_answer is not None:
        assert expected is not None, "the fast path answered where the reference path refuses"
        assert fast_answer == expected
    return fast_answer, expected


# --- the graphs -----------------------------------------------------------------------------------

SPECIAL_DATA = [0.0, -0.0, 0, 1.0, -1.0, 2, -3, 0.5, -0.5, 709.0, 709.78, 709.79, 710.0, -745.2, -746.0]
SPECIAL_DATA += [1e-300, 5e-324, -5e-324, 1e-160, 1e160, 1e300, -1e300, 1.7976931348623157e308, 2**53, 2**64 - 1]
data_values = st.one_of(
    st.sampled_from(SPECIAL_DATA),
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.floats(-3, 3),
    st.integers(-5, 5),
    st.floats(-800, 800),
    st.floats(allow_nan=False, allow_infinity=False),
)
exponents = st.one_of(
    st.sampled_from([0, 1, 2, 3, -1, -2, -3, 0.0, 0.5, -0.5, 1.5, 1 / 3, 1024, -1075, 1e-300, 2.0**53 + 1]),
    st.integers(-6, 6),
    st.floats(-4, 4),
)
#: Integers as JSON writers send them: orjson writes -2**63 up to 2**64 - 1.
json_integers = st.integers(-(2**63), 2**64 - 1)
ids = st.one_of(
    json_integers,
    st.integers(0, 30),
    st.text(min_size=1, max_size=4),
    st.sampled_from(['"', "\\", "\x00", "\x1f", "\x7f", "é", "\u2028", "🙂", "a/b", "\t\n\r\b\f"]),
)
BROKEN_FIELDS = {
    "id": st.one_of(st.none(), st.booleans(), st.floats(), st.just(""), st.just("x" * 257)),
    "op": st.one_of(st.sampled_from(["Add", "sqrt", "", "value"]), json_integers, st.none()),
    "data": st.one_of(st.none(), st.booleans(), st.just("2.0"), st.just([1.0])),
    "children": st.one_of(st.none(), st.just([]), st.lists(st.integers(0, 40), max_size=3), st.just("a")),
    "exponent": st.one_of(st.none(), st.booleans(), st.floats(-3, 3)),
    "local_grads": st.one_of(st.none(), st.lists(st.floats(-2, 2), max_size=3)),
    "label": st.one_of(st.none(), st.just(""), st.just("x" * 257), json_integers, st.just(["a"])),
    "extra": st.integers(-5, 5),
}
labels = st.one_of(
    st.sampled_from(["a", "w1", "x" * 256, '"', "\\", "\x00", "🙂", "%%{init}%%"]), st.text(min_size=1, max_size=5)
)


@st.composite
def documents(draw, max_ops=14):
    """A request: leaves, then op and recorded nodes over earlier nodes; maybe shuffled, maybe an
    output named, maybe one node broken (a field deleted, added or ill-typed), a duplicate id, a child
    that names no node or a cycle."""
    node_ids = draw(st.lists(ids, min_size=2, max_size=4 + max_ops, unique_by=lambda i: (type(i), i)))
    nodes = []
    leaves = draw(st.integers(1, min(4, len(node_ids) - 1)))
    for node_id in node_ids[:leaves]:
        nodes.append(
            {"id": node_id, "data": draw(data_values)} if draw(st.booleans()) else leaf(node_id, draw(data_values))
        )
    for node_id in node_ids[leaves:]:
        earlier = st.sampled_from([node["id"] for node in nodes])
        kind = draw(st.sampled_from([*OPS, "recorded"]))
        if kind == "recorded":
            children = draw(st.lists(earlier, max_size=3))
            node = {"id": node_id, "data": draw(data_values), "children": children}
            node["local_grads"] = [draw(data_values) for _ in children]
        else:
            node = op(node_id, kind, *(draw(earlier) for _ in range(OPS[kind].arity)))
            if OPS[kind].takes_exponent:
                node["exponent"] = draw(exponents)
        nodes.append(node)
    for node in nodes:
        if draw(st.integers(0, 3)) == 0:
            node["label"] = draw(labels)
    document = {"nodes": nodes}
    named = draw(st.integers(0, 3))
    if named:
        document["output"] = draw(ids) if named == 1 else draw(st.sampled_from([node["id"] for node in nodes]))
    if draw(st.booleans()):
        nodes[:] = draw(st.permutations(nodes))
    mischief = draw(st.integers(0, 15))
    if mischief == 1:
        node = draw(st.sampled_from(nodes))
        key = draw(st.sampled_from(sorted(BROKEN_FIELDS)))
        if key in node and draw(st.booleans()):
            del node[key]
        else:
            node[key] = draw(BROKEN_FIELDS[key])
    elif mischief == 2:
        draw(st.sampled_from(nodes))["id"] = draw(st.sampled_from(nodes))["id"]
    elif mischief == 3:
        with_children = [node for node in nodes if node.get("children")]
        if with_children:
            draw(st.sampled_from(with_children))["children"][0] = draw(st.sampled_from([node["id"] for node in nodes]))
    elif mischief == 4:
        document["extra"] = 1
    return document


@settings(max_examples=examples(1500), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
@example({"nodes": [leaf("x", 0.0), op("r", "relu", "x")]})
@example({"nodes": [leaf("x", -0.0), op("r", "relu", "x"), op("n", "neg", "r")]})
def test_whenever_the_fast_path_answers_it_is_the_reference_byte_for_byte(document):
    assert_agrees(document)


@settings(max_examples=examples(300), deadline=None)
@given(documents(max_ops=30), st.integers(1, 40))
def test_it_never_answers_over_the_node_limit(document, max_nodes):
    fast, _ = assert_agrees(document, max_nodes)
    if fast is not None:
        assert len(document["nodes"]) <= max_nodes


# --- each thing bit-identity takes -----------------------------------------------------------------


def answered(document):
    fast, expected = both(document)
    assert fast is not None, "the fast path declined"
    assert fast == expected
    return {node["id"]: node for node in orjson.loads(fast)["nodes"]}


def test_labels_are_read_and_not_echoed():
    nodes = [{**node, "label": f"the {node['id']}"} for node in SEED_GRAPH["nodes"]]
    assert answered({"nodes": nodes}) == answered(SEED_GRAPH)


def test_python_ints_appear_as_ints():
    nodes = [
        leaf("x", -2.0),
        leaf("zero", 0.0),
        leaf("y", 3.0),
        op("r", "relu", "x"),  # max(0, -2.0) is the int 0
        op("r0", "relu", "zero"),  # and so is max(0, 0.0)
        op("n", "neg", "r"),  # 0 * -1 is the int 0, not -0.0
        op("s", "add", "y", "n"),
        op("t", "sub", "s", "r0"),
        op("unused", "exp", "x"),
        op("out", "add", "t", "unused"),
    ]
    body = both({"nodes": nodes})[0]
    assert b'"id":"r","data":0,' in body and b'"id":"n","data":0,' in body and b'"id":"r0","data":0,' in body
    assert b'"id":"out","data":' in body and body.endswith(b'"grad":1}]}')  # the root's grad is the int 1
    results = answered({"nodes": nodes})
    assert results["y"]["grad"] == 1 and type(results["y"]["grad"]) is int  # fed only through add and sub
    nodes.append(op("other", "mul", "y", "y"))
    results = answered({"nodes": nodes, "output": "other"})
    assert type(results["out"]["grad"]) is int and results["out"]["grad"] == 0  # unreached


def test_int_grads_stay_exact_up_to_two_to_the_53_and_the_reference_answers_beyond():
    def doubling(levels):
        return {"nodes": [leaf(0, 1.0)] + [op(k, "add", k - 1, k - 1) for k in range(1, levels + 1)]}

    results = answered(doubling(52))
    assert results[0]["grad"] == 2**52 and type(results[0]["grad"]) is int
    fast, expected = both(doubling(60))
    assert fast is None and expected is not None and orjson.loads(expected)["nodes"][0]["grad"] == 2**60


@pytest.mark.parametrize(
    ("base", "exponent", "refused"),
    [
        (0.0, -1, True),  # ZeroDivisionError
        (-0.0, 3, False),  # -0.0 ** odd is -0.0
        (-8.0, 1 / 3, True),  # complex
        (-2.0, 3, False),
        (-2.0, 2.0, False),
        (-1.0, 2.0**60 + 1, False),  # (-1) ** a large odd integer
        (1e160, 2, True),  # OverflowError
        (1e-160, 2, False),  # underflows to a subnormal
        (1e-200, 2, False),  # underflows to 0
        (2.0, 0, False),
        (0.0, 0.5, True),  # the value is 0.0, its derivative 0.5 * 0 ** -0.5 raises
        (3.0, 1, False),
    ],
)
def test_pow_is_cpythons_float_pow(base, exponent, refused):
    document = {"nodes": [leaf("x", base), op("y", "pow", "x", exponent=exponent)]}
    fast, expected = assert_agrees(document)
    assert (expected is None) == refused
    if not refused:
        assert fast == expected


@pytest.mark.parametrize("x", [709.78, 709.79, 710.0, -745.0, -746.0, -1000.0])
def test_exp_near_overflow_and_underflow(x):
    fast, expected = assert_agrees({"nodes": [leaf("x", x), op("y", "exp", "x")]})
    assert (expected is None) == (x >= 709.79)  # exp(709.79) overflows
    assert fast == expected


@pytest.mark.parametrize("x", [1e-300, 1e-308, 5e-324, 0.0, -0.0, -1e-300])
def test_log_near_zero(x):
    fast, expected = assert_agrees({"nodes": [leaf("x", x), op("y", "log", "x")]})
    assert (expected is None) == (x <= 0 or 1 / x == math.inf)  # log's local gradient 1 / x overflows
    assert fast == expected


@pytest.mark.parametrize("first", [0, 7, -3, 2**63 - 3, -(2**63)])
@pytest.mark.parametrize("child", ["previous", "as a string", "past the end", "before the start", "big"])
def test_consecutive_int_ids_are_found_by_position(first, child):
    """Ids first, first + 1, ... take a shortcut around the id table; it must find exactly what the table would."""
    nodes = [leaf(first, 1.5), leaf(first + 1, -2.0), op(first + 2, "mul", first, first + 1)]
    wanted = {
        "previous": first + 1,
        "as a string": str(first + 1),
        "past the end": first + 3,
        "before the start": first - 1,
        "big": first + 2**64,  # past 64 bits orjson reads a float, which is no id
    }[child]
    last = first + 3 if first + 3 < 2**63 else -1
    wanted_json = orjson.dumps(wanted) if isinstance(wanted, str) else str(wanted).encode()  # orjson: 64 bits
    body = orjson.dumps({"nodes": nodes})[:-2] + b',{"id":%d,"op":"add","children":[%d,%b]}],"output":%d}' % (
        last,
        first + 2,
        wanted_json,
        last,
    )
    fast_answer, expected = fast(body), reference(body)
    assert fast_answer is None or fast_answer == expected
    assert (fast_answer is None) == (expected is None) == (child != "previous")


def test_sub_and_div_fold_their_hidden_values_with_the_seeds_roundings():
    rng = random.Random(10)
    for _ in range(300):
        a, b, c = (rng.uniform(-10, 10) for _ in range(3))
        nodes = [leaf("a", a), leaf("b", b), leaf("c", c)]
        nodes += [op("q", "div", "a", "b"), op("m", "mul", "q", "c"), op("s", "sub", "m", "b")]
        nodes += [op("d", "div", "s", "s"), op("e", "div", "b", "d")]
        answered({"nodes": nodes})


def test_numbers_and_strings_are_formatted_as_orjson_formats_them():
    rng = random.Random(11)
    numbers = [0.0, -0.0, 1e16, 1e15, 9999999999999998.0, 1e-5, 1e-6, 0.1, 5e-324, 1.7976931348623157e308, 2.0**53]
    numbers += [10.0**k for k in range(-30, 30)] + [rng.uniform(-1e6, 1e6) for _ in range(5000)]
    numbers += [round(rng.uniform(0, 100), rng.randrange(6)) for _ in range(5000)]
    while len(numbers) < 40_000:
        (x,) = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))
        if math.isfinite(x):
            numbers.append(x)
    names = ['"', "\\", "/", "é", "\u2028", "🙂", "\x7f", *map(chr, range(32)), "x" * 256]
    node_ids = [*names, -(2**63), 2**63 - 1, 2**63, 2**64 - 1, 0, -1]
    nodes = [{"id": i, "data": x} for i, x in enumerate(numbers, start=1)]
    nodes += [{"id": node_id, "data": 1.0} for node_id in node_ids]
    for output in (0, '"', 2**64 - 1, "🙂"):
        answered({"nodes": nodes, "output": output})


# --- the request's bytes: JSON as RFC 8259 and orjson read it ------------------------------------------


@st.composite
def json_text(draw, value) -> bytes:
    """`value` as JSON written any way RFC 8259 allows: whitespace anywhere, keys in any order, any character
    of a string escaped (surrogate pairs included), numbers in other forms that read as the same double."""

    def space():
        return draw(st.sampled_from(["", "", "", " ", "\n", "\t", "\r\n  "]))

    def string(text):
        out = []
        for character in text:
            code = ord(character)
            if draw(st.integers(0, 5)) == 0:  # escaped
                if code > 0xFFFF:
                    high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
                    out.append(f"\\u{high:04x}\\u{low:04X}")
                else:
                    out.append(draw(st.sampled_from([f"\\u{code:04x}", f"\\u{code:04X}"])))
            elif character in '"\\':
                out.append("\\" + character)
            elif code < 0x20:
                out.append(
                    {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f"}.get(character, f"\\u{code:04x}")
                )
            elif character == "/" and draw(st.booleans()):
                out.append("\\/")
            else:
                out.append(character)
        return '"' + "".join(out) + '"'

    def write(value):
        if isinstance(value, dict):
            members = list(value.items())
            if draw(st.booleans()):
                members = draw(st.permutations(members))
            inner = ",".join(
                f"{space()}{string(key)}{space()}:{space()}{write(item)}{space()}" for key, item in members
            )
            return "{" + (inner or space()) + "}"
        if isinstance(value, list):
            return "[" + (",".join(space() + write(item) + space() for item in value) or space()) + "]"
        if isinstance(value, str):
            return string(value)
        if isinstance(value, float) and math.isfinite(value):
            return draw(
                st.sampled_from([repr(value), f"{value:.17e}", f"{value:.17E}".replace("E+", "E"), f"{value:.25e}"])
            )
        if value is True or value is False or value is None:
            return orjson.dumps(value).decode()
        if isinstance(value, int):
            return "-0" if value == 0 and draw(st.booleans()) else str(value)
        return orjson.dumps(value).decode()

    return (space() + write(value) + space()).encode()


@settings(max_examples=examples(600), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_json_written_any_way_is_read_as_orjson_reads_it(data):
    document = data.draw(documents(max_ops=8))
    body = data.draw(json_text(document))
    fast_answer, expected = fast(body), reference(body)
    assert fast_answer is None or fast_answer == expected


@settings(max_examples=examples(200), deadline=None)
@given(st.data())
def test_a_valid_graph_is_answered_however_its_json_is_written(data):
    from bench.workloads import small_graph

    document = {"nodes": small_graph(), **data.draw(st.sampled_from([{}, {"output": "j"}]))}
    body = data.draw(json_text(document))
    assert fast(body) == reference(body) == orjson.dumps(orjson.loads(reference(orjson.dumps(document))))


def test_every_cut_of_a_request_is_declined_or_answered_as_the_reference_answers_it():
    body = b' {"output" : "e" , "nodes":[' + orjson.dumps(SEED_GRAPH)[10:-2] + b"] } \n"
    for end in range(len(body) + 1):
        cut = body[:end]
        fast_answer, expected = fast(cut), reference(cut)
        assert fast_answer is None or fast_answer == expected
        assert (fast_answer is not None) == (end >= len(body.rstrip())), cut


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"nodes":[{"id":"a","id":"b","data":1.0}]}', "a repeated key (orjson keeps the last)"),
        (b'{"nodes":[{"id":"a","data":1.0}],"nodes":[{"id":"b","data":1.0}]}', "a repeated key"),
        (b'{"nodes":[{"id":1.0,"data":1.0}]}', "a float id"),
        (b'{"nodes":[{"id":18446744073709551616,"data":1.0}]}', "an int past 64 bits (orjson: a float)"),
        (b'{"nodes":[{"id":"","data":1.0}]}', "an empty id"),
        (b'{"nodes":[{"id":"a","data":true}]}', "a boolean"),
        (b'{"nodes":[]}', "no nodes"),
        (b'{"nodes":[{"id":"a","data":1.0}],"label":"x"}', "an unknown key"),
    ],
)
def test_what_the_fast_path_leaves_to_the_reference_path(body, why):
    assert fast(body) is None, why


@pytest.mark.parametrize(
    "body",
    [
        b'{"nodes":[{"id":"\\ud800","data":1.0}]}',  # a lone surrogate
        b'{"nodes":[{"id":"\\udc00\\ud800","data":1.0}]}',
        b'{"nodes":[{"id":"\\x41","data":1.0}]}',  # no such escape
        b'{"nodes":[{"id":"a","data":1e400}]}',  # past the largest double
        b'{"nodes":[{"id":"a","data":01}]}',
        b'{"nodes":[{"id":"a","data":1.0},]}',
        b'{"nodes":[{"id":"a","data":1.0}]}x',
        b'\xef\xbb\xbf{"nodes":[{"id":"a","data":1.0}]}',
        b'{"nodes":[{"id":"\xed\xa0\x80","data":1.0}]}',  # an encoded surrogate: not UTF-8
        b'{"nodes":[{"id":"a\x01","data":1.0}]}',  # a raw control character
    ],
)
def test_what_orjson_refuses_the_fast_path_declines(body):
    assert reference(body) is None and fast(body) is None


def test_an_id_is_its_decoded_characters_and_1_is_not_1():
    body = b'{"nodes":[{"id":"\\u00e9\\ud83d\\ude42","data":2.0},{"id":1,"data":3.0},{"id":"1","data":4.0},'
    body += (
        b'{"id":"o","op":"mul","children":["\xc3\xa9\xf0\x9f\x99\x82",1]},{"id":"p","op":"add","children":["o","1"]}]}'
    )
    answer = fast(body)
    assert answer is not None and answer == reference(body)
    assert b'"id":"\xc3\xa9\xf0\x9f\x99\x82","data":2.0,"grad":3.0' in answer  # written as orjson writes it
    assert b'{"id":1,"data":3.0,"grad":2.0},{"id":"1","data":4.0,"grad":1}' in answer


def test_labels_are_read_past_when_the_contract_has_them():
    labelled = b'{"nodes":[{"id":"a","data":2.0,"label":"the input \\u00e9"},{"id":"b","op":"exp","children":["a"],"label":"%b"}]}'
    plain = b'{"nodes":[{"id":"a","data":2.0},{"id":"b","op":"exp","children":["a"]}]}'
    assert fast(labelled % (b"x" * 256), labels=True) == reference(plain)
    assert fast(labelled % ("\U0001f642" * 256).encode(), labels=True) == reference(plain)
    for bad in (b"", b"x" * 257, ("\U0001f642" * 257).encode()):
        assert fast(labelled % bad, labels=True) is None
    assert fast(labelled.replace(b'"label":"%b"', b'"label":1'), labels=True) is None
    assert fast(labelled % b"x", labels=False) is None  # the contract refuses an unknown key


# --- the deadline -----------------------------------------------------------------------------------


def chain_body(n):
    return orjson.dumps({"nodes": [leaf(0, 0.5)] + [op(k, "neg", k - 1) for k in range(1, n)]})


def test_past_its_deadline_the_fast_path_stops_as_the_reference_path_does():
    body = chain_body(100_000)
    with pytest.raises(_fastpath.PastDeadline):
        _fastpath.evaluate(body, MAX_NODES, time.monotonic() - 1, False)
    with pytest.raises(DeadlineExceeded):
        fastpath.evaluate(body, MAX_NODES, Deadline(-1.0))
    batch = b'{"graphs":[%b]}' % b",".join([orjson.dumps(SEED_GRAPH)] * 3)
    with pytest.raises(DeadlineExceeded):
        fastpath.evaluate_batch(batch, (b"", b""), (10, 100, 100), Deadline(-1.0))
    assert fastpath.evaluate(body, MAX_NODES, Deadline(60.0)) is not None


def test_a_deadline_shorter_than_the_work_is_a_504_on_the_fast_path():
    client = create_app({"TESTING": True, "DEADLINE_SECONDS": 0.01}).test_client()
    response = client.post("/v1/evaluate", data=chain_body(300_000), content_type="application/json")
    assert response.status_code == 504 and response.get_json()["type"] == "/problems/deadline-exceeded"
    assert "fastpath" in response.headers["Server-Timing"] and "parse" not in response.headers["Server-Timing"]


# --- batches in one call ------------------------------------------------------------------------------


@st.composite
def batches(draw):
    """A batch of requests (valid, refused or not graphs at all), its JSON written any way."""
    items = draw(
        st.lists(
            st.one_of(documents(max_ops=6), documents(max_ops=6), st.just(SEED_GRAPH), json_integers, st.just({})),
            min_size=1,
            max_size=6,
        )
    )
    return draw(json_text({"graphs": items}))


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batches(), st.sampled_from([(10_000, MAX_NODES, MAX_NODES), (3, 40, 10), (10, 15, 5)]))
def test_a_batch_answered_in_one_call_is_the_reference_paths_answer(body, limits):
    answered = fast_batch(body, limits)
    assert answered is None or answered == reference_batch(body, limits)


def test_a_batch_leaves_to_the_reference_path_only_the_items_it_declines():
    valid, refused = (
        orjson.dumps(SEED_GRAPH),
        b'{"nodes":[{"id":"x","data":-1.0},{"id":"y","op":"log","children":["x"]}]}',
    )
    body = b'{"graphs":[%b, %b ,%b,%b,[1,{"a":2}], "x"]}' % (valid, valid, refused, valid)
    parts, nodes = _fastpath.evaluate_batch(body, b"<", b">", 100, 1000, 100, math.inf, False)
    assert nodes == 15
    assert parts[0] == b"<%b>,<%b>" % (fast(valid), fast(valid))
    assert [body[start:end] for start, end in parts[1:4:2]] == [refused, b'[1,{"a":2}]']
    assert parts[2] == b"<%b>" % fast(valid) and body[slice(*parts[4])] == b'"x"' and len(parts) == 5
    assert fast_batch(body) == reference_batch(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"graphs":[]}',
        b'{"graphs":[%b],"graphs":[%b]}',
        b'{"graphs":[%b],"x":1}',
        b'{"graphs":{}}',
        b'{"graphs":[%b,%b,%b,%b]}',  # past max_graphs
        b'{"graphs":[%b,{"nodes":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}',  # past max_batch_nodes
        b'{"graphs":[%b,{"nodes":[1]]}',  # not JSON
    ],
)
def test_a_batch_the_reference_path_refuses_is_left_to_it_whole(body):
    body = body.replace(b"%b", orjson.dumps(SEED_GRAPH))
    assert _fastpath.evaluate_batch(body, b"", b"", 3, 20, 100, math.inf, False) is None


# --- the bench's workloads --------------------------------------------------------------------------


def workload_documents(scale_name):
    from bench.workloads import SCALES, large_workloads, small_graph

    scale = SCALES[scale_name]
    documents = [(w.name, w.body) for w in large_workloads(scale, ("gpt-step", "dag", "chain"))]
    return [*documents, ("small", orjson.dumps({"nodes": small_graph()}))]


def assert_takes_the_fast_path(body):
    fast_answer = fast(body)
    assert fast_answer is not None, "the fast path declined"
    assert fast_answer == reference(body)


@pytest.mark.parametrize(("name", "body"), workload_documents("tiny"))
def test_the_bench_workloads_take_the_fast_path_byte_for_byte(name, body):
    assert_takes_the_fast_path(body)


@pytest.mark.slow
def test_the_full_size_bench_workloads_take_the_fast_path_byte_for_byte():
    for _, body in workload_documents("full"):
        assert_takes_the_fast_path(body)


# --- the service around it ------------------------------------------------------------------------


def test_the_extension_implements_the_registrys_ops():
    assert fastpath.ACTIVE, fastpath.WHY_INACTIVE
    assert {name: (op.arity, op.takes_exponent) for name, op in OPS.items()} == _fastpath.OPERATIONS


def test_the_service_answers_the_same_bytes_on_either_path():
    fast, slow = create_app({"TESTING": True}).test_client(), create_app({"FAST_PATH": False}).test_client()
    assert fast.get("/readyz").get_json() == {"status": "ready", "path": "fast"}
    assert slow.get("/readyz").get_json() == {"status": "ready", "path": "reference"}
    refused = {"nodes": [leaf("x", -1.0), op("y", "log", "x")]}
    for document in (SEED_GRAPH, refused, {"nodes": [leaf("x", 1.0)], "output": "nope"}):
        same_id = {"X-Request-ID": "either-path"}
        a = fast.post("/v1/evaluate", json=document, headers=same_id)
        b = slow.post("/v1/evaluate", json=document, headers=same_id)
        assert (a.status_code, a.content_type, a.data) == (b.status_code, b.content_type, b.data)


def test_the_setting():
    assert from_environment({})["FAST_PATH"] is True
    assert from_environment({"VALUEGRAPH_FAST_PATH": "0"})["FAST_PATH"] is False
    with pytest.raises(ConfigError, match="VALUEGRAPH_FAST_PATH"):
        from_environment({"VALUEGRAPH_FAST_PATH": "maybe"})


def test_without_the_extension_the_service_says_so_once_and_answers_on_the_reference_path():
    script = """
import sys
from pathlib import Path
sys.modules["service.core._fastpath"] = None  # as if it were not built
import orjson
from service.http.app import create_app
from service.contract.examples import EXAMPLE_GRAPH as SEED_GRAPH
client = create_app({"TESTING": True}).test_client()
print(orjson.dumps([client.get("/readyz").get_json(), client.post("/v1/evaluate", json=SEED_GRAPH).get_json()]).decode())
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    readyz, answer = orjson.loads(run.stdout.splitlines()[-1])
    assert readyz == {"status": "ready", "path": "reference"}
    assert answer["output"] == "e" and len(answer["nodes"]) == 5
    assert run.stderr.count("every request takes the reference path") == 1, run.stderr

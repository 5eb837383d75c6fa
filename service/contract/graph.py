"""The graph a client POSTs and the evaluation it gets back.

A node comes in one of three shapes, each its own schema: a leaf (`Value(data)`), an operation the
service computes, and a recorded node (`Value(data, children, local_grads)` as some other program
built it). `node_schema_for` picks the shape from the keys a node has. These schemas are the contract
and explain every refusal.

Fast acceptance: marshmallow's machinery costs more than evaluating a small graph, so a request is first
checked by `is_valid_request`, True exactly when the schemas would load it; only a refused one goes
through the schemas, which say why. Each of its rules restates one of the schemas' (the key sets are
read from their fields); tests/test_validation_differential.py proves the two equal on random input.
"""

import traceback
from collections.abc import Callable
from functools import partial

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from service.core.ops import OPS
from service.core.traversal import Checkpoint

ID_MAX_LENGTH = 256
#: A label is limited as an id is.
LABEL_MAX_LENGTH = ID_MAX_LENGTH

#: How many invalid nodes a refusal explains one by one, and how many bad items of one list or unknown
#: keys of one object; the rest are counted. A refusal costs in proportion to what it explains.
MAX_EXPLAINED = 100

#: How much of a refused string a message quotes.
SHOWN_MAX_LENGTH = 40


def forget_frames(error: BaseException) -> None:
    """Clear what the frames of a caught refusal's traceback hold, and of the exceptions it was raised
    from. marshmallow keeps a refused load's exception in a reference cycle with its own frame, and through
    the frames' callers the cycle holds the whole request (its body, its document) until the cyclic
    garbage collector runs; the collector is paused while requests are answered
    (service/runtime/gcpause.py), so under load it would never run."""
    pending, seen = [error], set()
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        traceback.clear_frames(error.__traceback__)
        pending += [error.__cause__, error.__context__]


def is_id(value: object) -> bool:
    kind = type(value)
    return kind is int or (kind is str and 0 < len(value) <= ID_MAX_LENGTH)


def is_label(value: object) -> bool:
    return type(value) is str and 0 < len(value) <= LABEL_MAX_LENGTH


def is_number(value: object) -> bool:
    """A finite int or float; inf - inf and nan - nan are nan."""
    return type(value) in (int, float) and value - value == 0


def shown(value: object) -> str:
    """A refused value as a message quotes it: never longer than about SHOWN_MAX_LENGTH characters,
    and never costing more than that to write, however large the value."""
    if isinstance(value, str):
        return repr(value[:SHOWN_MAX_LENGTH]) + ("..." if len(value) > SHOWN_MAX_LENGTH else "")
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return f"an object of {len(value)} keys"
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)


class Id(fields.Field):
    """A node id: a string of 1 to 256 characters, or an integer (never a boolean)."""

    default_error_messages = {
        "invalid": f"Not a valid id: {{shown}}; a string of 1 to {ID_MAX_LENGTH} characters or an integer is required."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_id(value):
            raise self.make_error("invalid", shown=shown(value))
        return value


class Label(fields.Field):
    """A node's name for people, as micrograd's lecture names its Values: pictures show it instead of the id."""

    default_error_messages = {
        "invalid": f"Not a valid label: {{shown}}; a string of 1 to {LABEL_MAX_LENGTH} characters is required."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_label(value):
            raise self.make_error("invalid", shown=shown(value))
        return value


LABEL_METADATA = {
    "description": "Optional: a name for people, as micrograd's lecture code labels its Values. Pictures "
    "(POST /v1/render) show it instead of the id; answers do not echo it.",
    "type": "string",
    "minLength": 1,
    "maxLength": LABEL_MAX_LENGTH,
}


class Number(fields.Float):
    """A finite JSON number, read as a double. Unlike fields.Float it refuses strings like "2.0"."""

    default_error_messages = {"invalid": "Not a valid number: {shown}; a JSON number is required."}

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) not in (int, float):
            raise self.make_error("invalid", shown=shown(value))
        return super()._deserialize(value, attr, data, **kwargs)


class OpName(fields.String):
    """An op's name, one of the op registry's; a refusal quotes what was sent."""

    default_error_messages = {
        "invalid": "Not a valid op: {shown}; a string is required.",
        "unknown": f"Unknown op {{shown}}; one of: {', '.join(OPS)}.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not str:
            raise self.make_error("invalid", shown=shown(value))
        if value not in OPS:
            raise self.make_error("unknown", shown=shown(value))
        return value


class CappedList(fields.List):
    """A list whose refusal explains its first MAX_EXPLAINED bad items and counts the rest.

    `item_is_valid` restates the item field's rule, so that only bad items pay for marshmallow's
    message; a list of millions of bad items costs one cheap pass. Items come back as they came.
    """

    def __init__(self, item: fields.Field, item_is_valid, **kwargs):
        super().__init__(item, **kwargs)
        self.item_is_valid = item_is_valid

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not list:
            raise self.make_error("invalid")
        bad = [index for index, item in enumerate(value) if not self.item_is_valid(item)]
        if not bad:
            return value
        errors = {}
        for index in bad[:MAX_EXPLAINED]:
            try:
                self.inner.deserialize(value[index])
            except ValidationError as error:
                errors[index] = error.messages
                forget_frames(error)
        if len(bad) > MAX_EXPLAINED:
            errors["_schema"] = [
                f"{len(bad) - MAX_EXPLAINED} more items are invalid; the first {MAX_EXPLAINED} are listed."
            ]
        raise ValidationError(errors)


class StrictSchema(Schema):
    """Unknown keys are refused (marshmallow's default); past MAX_EXPLAINED of them, counted."""

    @pre_load
    def refuse_too_many_unknown_keys(self, data, **kwargs):
        if isinstance(data, dict) and len(data) > len(self.fields) + MAX_EXPLAINED:
            unknown = [key for key in data if key not in self.fields]
            if len(unknown) > MAX_EXPLAINED:
                errors = {key: ["Unknown field."] for key in unknown[:MAX_EXPLAINED]}
                errors["_schema"] = [
                    f"{len(unknown) - MAX_EXPLAINED} more unknown fields; the first {MAX_EXPLAINED} are listed."
                ]
                raise ValidationError(errors)
        return data


class LeafNodeSchema(StrictSchema):
    """A leaf, `Value(data)`: `op` is "value" or absent."""

    id = Id(required=True)
    label = Label(metadata=LABEL_METADATA)
    op = fields.String(validate=validate.Equal("value"))
    data = Number(required=True)


class OperationNodeSchema(StrictSchema):
    """A node the service computes from its children with `op`."""

    id = Id(required=True)
    label = Label(metadata=LABEL_METADATA)
    op = OpName(required=True, metadata={"enum": list(OPS)})
    children = CappedList(
        Id(),
        is_id,
        required=True,
        metadata={"description": "As many as the op's arity, from the op registry."},
    )
    exponent = Number(
        metadata={
            "description": "Required by pow (a plain number, as in the reference Value class); no other op takes it."
        }
    )

    @validates_schema
    def check_arity_and_exponent(self, node, **kwargs):
        op, errors = node["op"], {}
        arity = OPS[op].arity
        if len(node["children"]) != arity:
            errors["children"] = [f"{op} takes {arity} children, not {len(node['children'])}."]
        if OPS[op].takes_exponent and "exponent" not in node:
            errors["exponent"] = [f"{op} requires an exponent."]
        if not OPS[op].takes_exponent and "exponent" in node:
            errors["exponent"] = [f"Only pow takes an exponent, not {op}."]
        if errors:
            raise ValidationError(errors)


class RecordedNodeSchema(StrictSchema):
    """A node recorded by another program, `Value(data, children, local_grads)`, taken as given."""

    id = Id(required=True)
    label = Label(metadata=LABEL_METADATA)
    data = Number(required=True)
    children = CappedList(Id(), is_id, required=True)
    local_grads = CappedList(
        Number(), is_number, required=True, metadata={"description": "One per child, in the same order."}
    )

    @validates_schema
    def check_lengths(self, node, **kwargs):
        if len(node["children"]) != len(node["local_grads"]):
            raise ValidationError(
                f"{len(node['local_grads'])} local_grads for {len(node['children'])} children; "
                "there must be one per child.",
                "local_grads",
            )


def node_schema_for(node):
    """The schema of the shape a node's keys select (an `op` other than "value" means an operation)."""
    if "op" in node:
        return LeafNodeSchema if node["op"] == "value" else OperationNodeSchema
    if "children" in node or "local_grads" in node:
        return RecordedNodeSchema
    return LeafNodeSchema


_schema_instances = {schema: schema() for schema in (LeafNodeSchema, OperationNodeSchema, RecordedNodeSchema)}


class Node(fields.Field):
    """One node, validated by the schema of its shape."""

    default_error_messages = {"invalid": "Not a valid node: an object is required."}

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not dict:
            raise self.make_error("invalid")
        return _schema_instances[node_schema_for(value)].load(value)


class NodeList(fields.List):
    """The list of nodes. Only the nodes that `node_is_valid` refuses go through the nested schemas, to
    say why: explaining a refusal costs in proportion to what is explained, not to the graph."""

    default_error_messages = {"too_many": "A graph may have at most {max_nodes} nodes; this one has {length}."}

    def __init__(self, max_nodes=None, **kwargs):
        super().__init__(Node(), **kwargs)
        self.max_nodes = max_nodes

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) is not list:
            raise self.make_error("invalid")
        if self.max_nodes is not None and len(value) > self.max_nodes:
            raise self.make_error("too_many", max_nodes=self.max_nodes, length=len(value))
        invalid = [index for index, node in enumerate(value) if not node_is_valid(node)]
        if not invalid:
            return value
        errors, messages = {}, 0
        for index in invalid[:MAX_EXPLAINED]:
            if messages >= MAX_EXPLAINED:
                break
            try:
                self.inner.deserialize(value[index])
            except ValidationError as error:
                errors[index] = error.messages
                messages += _count_messages(error.messages)
                forget_frames(error)
        if len(invalid) > len(errors):
            errors["more"] = [
                f"{len(invalid) - len(errors)} more nodes are invalid; the first {len(errors)} are listed."
            ]
        raise ValidationError(errors)


def _count_messages(messages) -> int:
    if isinstance(messages, dict):
        return sum(_count_messages(inner) for inner in messages.values())
    return len(messages) if isinstance(messages, list) else 1


class GraphRequestSchema(StrictSchema):
    """The body of POST /v1/evaluate. `max_nodes` is the service's configured limit."""

    def __init__(self, *, max_nodes=None, **kwargs):
        super().__init__(**kwargs)
        self.max_nodes = self.fields["nodes"].max_nodes = max_nodes

    nodes = NodeList(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The graph's nodes, in any order; ids are unique."},
    )
    output = Id(metadata={"description": "The node to differentiate. Default: the one node no other node uses."})


class NodeResultSchema(Schema):
    id = Id(required=True)
    data = fields.Float(required=True)
    grad = fields.Float(
        required=True, metadata={"description": "d(output)/d(node); 0 for a node the output does not depend on."}
    )


class EvaluationSchema(Schema):
    """The answer to POST /v1/evaluate: every node of the request, in request order."""

    output = Id(required=True)
    nodes = fields.List(fields.Nested(NodeResultSchema), required=True)


# --- fast acceptance: True exactly when the schemas above would load a request ----------------------

_LEAF_KEYS = frozenset(LeafNodeSchema().fields)
_OPERATION_KEYS = frozenset(OperationNodeSchema().fields)
_RECORDED_KEYS = frozenset(RecordedNodeSchema().fields)
_REQUEST_KEYS = frozenset(GraphRequestSchema().fields)


#: How many items a fast validator checks between two calls of its checkpoint.
CHECKED_PER_CHECKPOINT = 8192


def all_hold(predicate: Callable[[object], bool], items: list, checkpoint: Checkpoint | None = None) -> bool:
    """all(map(predicate, items)), with `checkpoint` called every CHECKED_PER_CHECKPOINT items: a list a client
    sized (a body's nodes, one node's children) is checked within the request's deadline."""
    if checkpoint is None or len(items) <= CHECKED_PER_CHECKPOINT:
        return all(map(predicate, items))
    for start in range(0, len(items), CHECKED_PER_CHECKPOINT):
        checkpoint()
        if not all(map(predicate, items[start : start + CHECKED_PER_CHECKPOINT])):
            return False
    return True


def is_valid_request(document: object, max_nodes: int | None = None, checkpoint: Checkpoint | None = None) -> bool:
    """True exactly when GraphRequestSchema(max_nodes=max_nodes).load(document) would succeed; `checkpoint`,
    when given, is called as the nodes are checked (a deadline raises there)."""
    if type(document) is not dict or not document.keys() <= _REQUEST_KEYS:
        return False
    nodes = document.get("nodes")
    return (
        type(nodes) is list
        and len(nodes) > 0
        and (max_nodes is None or len(nodes) <= max_nodes)
        and ("output" not in document or is_id(document["output"]))
        and all_hold(partial(node_is_valid, checkpoint=checkpoint) if checkpoint else node_is_valid, nodes, checkpoint)
    )


def node_is_valid(node: object, checkpoint: Checkpoint | None = None) -> bool:
    """True exactly when the node's schema would load it."""
    if type(node) is not dict or not is_id(node.get("id")):
        return False
    if "label" in node and not is_label(node["label"]):
        return False
    if "op" in node:
        name = node["op"]
        if name == "value":
            return node.keys() <= _LEAF_KEYS and is_number(node.get("data"))
        op = OPS.get(name) if type(name) is str else None
        children = node.get("children")
        return (
            op is not None
            and node.keys() <= _OPERATION_KEYS
            and type(children) is list
            and len(children) == op.arity
            and all(map(is_id, children))
            and (is_number(node.get("exponent")) if op.takes_exponent else "exponent" not in node)
        )
    if "children" in node or "local_grads" in node:
        children, local_grads = node.get("children"), node.get("local_grads")
        return (
            node.keys() <= _RECORDED_KEYS
            and is_number(node.get("data"))
            and type(children) is list
            and type(local_grads) is list
            and len(children) == len(local_grads)
            and all_hold(is_id, children, checkpoint)
            and all_hold(is_number, local_grads, checkpoint)
        )
    return node.keys() <= _LEAF_KEYS and is_number(node.get("data"))

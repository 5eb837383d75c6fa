"""The graph a client POSTs and the evaluation it gets back.

A node comes in one of three shapes, each its own schema: a leaf (`Value(data)`), an operation the
service computes, and a recorded node (`Value(data, children, local_grads)` as some other program
built it). `node_schema_for` picks the shape from the keys a node has, for both validation paths:
the schemas themselves, which explain a refusal, and the plain-Python checks at the bottom of this
file (`GraphRequestSchema.accepts`, `node_is_valid`), which decide acceptance fast and are proven
equal to the schemas by tests/test_validation_differential.py.
"""

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from service.ops import OPS

#: Operation name -> number of children, from the op registry.
OPERATIONS = {name: op.arity for name, op in OPS.items()}

ID_MAX_LENGTH = 256

#: How many invalid nodes a refusal explains one by one; the rest are counted.
MAX_EXPLAINED_NODES = 100


class Id(fields.Field):
    """A node id: a string of 1 to 256 characters, or an integer (never a boolean)."""

    default_error_messages = {
        "invalid": f"Not a valid id: a string of 1 to {ID_MAX_LENGTH} characters or an integer is required."
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if not is_id(value):
            raise self.make_error("invalid")
        return value


class Number(fields.Float):
    """A finite JSON number, read as a double. Unlike fields.Float it refuses strings like "2.0"."""

    def __init__(self, **kwargs):
        super().__init__(allow_nan=False, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if type(value) not in (int, float):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class LeafNodeSchema(Schema):
    """A leaf, `Value(data)`: `op` is "value" or absent."""

    id = Id(required=True)
    op = fields.String(validate=validate.Equal("value"))
    data = Number(required=True)


class OperationNodeSchema(Schema):
    """A node the service computes from its children with `op`."""

    id = Id(required=True)
    op = fields.String(required=True, validate=validate.OneOf(list(OPERATIONS)))
    children = fields.List(
        Id(), required=True, metadata={"description": "add, mul, sub and div take two children; the other ops one."}
    )
    exponent = Number(
        metadata={"description": "Required by pow (a plain number, as in the seed); no other op takes it."}
    )

    @validates_schema
    def check_arity_and_exponent(self, node, **kwargs):
        op, errors = node["op"], {}
        if len(node["children"]) != OPERATIONS[op]:
            errors["children"] = [f"{op} takes {OPERATIONS[op]} children, not {len(node['children'])}."]
        if op == "pow" and "exponent" not in node:
            errors["exponent"] = ["pow requires an exponent."]
        if op != "pow" and "exponent" in node:
            errors["exponent"] = [f"Only pow takes an exponent, not {op}."]
        if errors:
            raise ValidationError(errors)


class RecordedNodeSchema(Schema):
    """A node recorded by another program, `Value(data, children, local_grads)`, taken as given."""

    id = Id(required=True)
    data = Number(required=True)
    children = fields.List(Id(), required=True)
    local_grads = fields.List(Number(), required=True, metadata={"description": "One per child, in the same order."})

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
    """The list of nodes, checked node by node with `node_is_valid` (about half a microsecond a node,
    where the nested schemas take about 14 µs); only the nodes it refuses go through the schemas, to
    say why. Valid nodes come back as they came in, numbers not yet converted."""

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
        errors = {}
        for index in invalid[:MAX_EXPLAINED_NODES]:
            try:
                self.inner.deserialize(value[index])
            except ValidationError as error:
                errors[index] = error.messages
        if len(invalid) > MAX_EXPLAINED_NODES:
            errors["more"] = [
                f"{len(invalid) - MAX_EXPLAINED_NODES} more nodes are invalid; the first {MAX_EXPLAINED_NODES} are listed."
            ]
        raise ValidationError(errors)


class GraphRequestSchema(Schema):
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

    def load(self, data, **kwargs):
        """A valid request comes back as it came; marshmallow's own machinery, which costs more than
        evaluating a small graph, runs only to explain a refusal."""
        if not kwargs and self.accepts(data):
            return data
        return super().load(data, **kwargs)

    def accepts(self, document):
        """True exactly when marshmallow would load the document (the fields' rules, restated)."""
        if type(document) is not dict or not document.keys() <= _REQUEST_KEYS:
            return False
        nodes = document.get("nodes")
        return (
            type(nodes) is list
            and len(nodes) > 0
            and (self.max_nodes is None or len(nodes) <= self.max_nodes)
            and ("output" not in document or is_id(document["output"]))
            and all(map(node_is_valid, nodes))
        )


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


# The fast path. Each rule here restates one in the schemas above; the differential test holds them equal.

_NUMBER_TYPES = (int, float)
_LEAF_KEYS = frozenset(("id", "op", "data"))
_OPERATION_KEYS = frozenset(("id", "op", "children", "exponent"))
_RECORDED_KEYS = frozenset(("id", "data", "children", "local_grads"))
_REQUEST_KEYS = frozenset(("nodes", "output"))


def is_id(value):
    kind = type(value)
    return kind is int or (kind is str and 0 < len(value) <= ID_MAX_LENGTH)


def _is_number(value):
    return type(value) in _NUMBER_TYPES and value - value == 0  # inf - inf and nan - nan are nan


def node_is_valid(node):
    """True exactly when the node's schema would load it."""
    if type(node) is not dict or not is_id(node.get("id")):
        return False
    if "op" in node:
        op = node["op"]
        if op == "value":
            return node.keys() <= _LEAF_KEYS and _is_number(node.get("data"))
        arity = OPERATIONS.get(op) if type(op) is str else None
        children = node.get("children")
        return (
            arity is not None
            and node.keys() <= _OPERATION_KEYS
            and type(children) is list
            and len(children) == arity
            and all(map(is_id, children))
            and (_is_number(node.get("exponent")) if op == "pow" else "exponent" not in node)
        )
    if "children" in node or "local_grads" in node:
        children, local_grads = node.get("children"), node.get("local_grads")
        return (
            node.keys() <= _RECORDED_KEYS
            and _is_number(node.get("data"))
            and type(children) is list
            and type(local_grads) is list
            and len(children) == len(local_grads)
            and all(map(is_id, children))
            and all(map(_is_number, local_grads))
        )
    return node.keys() <= _LEAF_KEYS and _is_number(node.get("data"))

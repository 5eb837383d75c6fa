"""Grading: a submission's data, grads and local gradients against the reference evaluation, node by
node, and the root causes of its mismatches: the mismatches no earlier mismatch explains.

Pure logic, no Flask: `grade` takes the validated nodes, the engine's Values from
`service.core.graphs.evaluate`, the submission and the tolerance, and returns the response body.

A node's reference local gradients are derived from the engine itself: the op is rebuilt by the op
registry over fresh leaves holding its children's data, and the engine's backward rule is run over
the Values the op made, from the node with grad 1. For add, mul, pow, log, exp and relu that is the
Value's own `_local_grads`; for neg, sub and div, which the reference class builds from several Values,
it is what its backward passes to each listed child per unit of the node's grad through the hidden
Values. A new op in service/core/ops.py needs nothing here.
"""

import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass

from service.core.engine import Value, propagate
from service.core.graphs import MAX_FAULTS, Fault, GraphError
from service.core.ops import OPS
from service.core.traversal import post_order

MATCH, MISMATCH, NOT_SUBMITTED = "match", "mismatch", "not-submitted"
VERDICTS = (MATCH, MISMATCH, NOT_SUBMITTED)
ROOT_CAUSE_KINDS = ("forward", "local-gradient", "accumulation")
FIELD_RANK = {"data": 0, "local_grads": 1, "grad": 2}

#: Contributions up to this many are tried in every order and every subset to explain a wrong sum.
MAX_ARRANGED_CONTRIBUTIONS = 6
#: Accumulation causes whose wrong sum is searched for a known mistake; those after it say only what was
#: expected, so that a huge graph wrong everywhere costs time linear in its size.
MAX_SEARCHED_SUMS = 100
#: Contributions listed one by one in a message; the rest are counted.
MAX_LISTED_CONTRIBUTIONS = 10


@dataclass(frozen=True)
class Tolerance:
    """A submitted number s matches the reference r when |s - r| <= atol + rtol * |r| (numpy.isclose
    with the reference as b); rtol = atol = 0 is bit-exact."""

    rtol: float = 1e-9
    atol: float = 0.0

    def matches(self, submitted: float, reference: float) -> bool:
        return abs(submitted - reference) <= self.atol + self.rtol * abs(reference)

    def all_match(self, submitted: Sequence[float], reference: Sequence[float]) -> bool:
        return len(submitted) == len(reference) and all(map(self.matches, submitted, reference))


#: The tolerance of a request that gives none.
DEFAULT_TOLERANCE = Tolerance()


@dataclass(frozen=True)
class Contribution:
    """What one use of a node (its user, the child position there) adds to the node's grad."""

    user: int
    position: int
    amount: float
    per_unit: float


def check_submissions(nodes: list[dict], submitted: list[dict]) -> None:
    """Raise an invalid-graph GraphError for entries that do not fit the graph, naming entry and field."""
    index = {node["id"]: i for i, node in enumerate(nodes)}
    seen, faults = {}, []
    for k, entry in enumerate(submitted):
        node_id = entry["id"]
        if node_id not in index:
            faults.append(Fault(f"No node has the id {node_id!r}.", field=f"submitted[{k}].id"))
            continue
        at = {"index": index[node_id], "node": node_id}
        if node_id in seen:
            faults.append(
                Fault(f"Duplicate id: submitted[{seen[node_id]}] has it too.", field=f"submitted[{k}].id", **at)
            )
            continue
        seen[node_id] = k
        if "local_grads" not in entry:
            continue
        children = nodes[index[node_id]].get("children", ())
        field = f"submitted[{k}].local_grads"
        if not children:
            faults.append(
                Fault(f"Node {node_id!r} is a leaf: it has no children, so no local gradients.", field=field, **at)
            )
        elif len(entry["local_grads"]) != len(children):
            message = (
                f"{len(entry['local_grads'])} local_grads for {len(children)} children; "
                "there must be one per child, in the node's children order."
            )
            faults.append(Fault(message, field=field, **at))
    if faults:
        raise GraphError(
            "invalid-graph",
            "A submitted entry does not fit the graph.",
            faults[:MAX_FAULTS],
            max(0, len(faults) - MAX_FAULTS),
        )


def unit_flow(node: dict, children_data: Sequence[float], grad: float) -> list[float]:
    """What the engine's backward pass sends to each listed child of an op node whose grad is `grad`,
    through the Values the op builds (one fresh leaf per listed position, so a repeated child counts
    once per position)."""
    op = OPS[node["op"]]
    leaves = [Value(x) for x in children_data]
    out = op.forward(*leaves, node["exponent"]) if op.takes_exponent else op.forward(*leaves)
    out.grad = grad
    propagate(out)
    return [leaf.grad for leaf in leaves]


class _Grading:
    def __init__(self, nodes, output, values, submitted, tolerance):
        self.nodes, self.values, self.tolerance = nodes, values, tolerance
        self.index = {node["id"]: i for i, node in enumerate(nodes)}
        self.kids = [[self.index[c] for c in node.get("children", ())] for node in nodes]
        self.order = forward_order(self.kids)
        self.rank = {i: r for r, i in enumerate(self.order)}
        self.output = self.index[output]
        self.reachable = reachable_from(self.output, self.kids)
        self.users = [[] for _ in nodes]
        for p in self.reachable:
            for k, c in enumerate(self.kids[p]):
                self.users[c].append((p, k))
        for users in self.users:
            users.sort(key=lambda use: (self.rank[use[0]], use[1]))
        self.local = [self.reference_local_grads(i) for i in range(len(nodes))]
        self.searches_left = MAX_SEARCHED_SUMS
        self.entry = [None] * len(nodes)
        for entry in submitted:
            self.entry[self.index[entry["id"]]] = entry

    def has_no_hidden_values(self, i):
        """Whether node i's Value has the listed children's Values as its own children: then one backward
        step sends each child its local gradient × grad, and there is nothing to rebuild."""
        value = self.values[i]
        return len(value._children) == len(self.kids[i]) and all(
            map(operator.is_, value._children, (self.values[c] for c in self.kids[i]))
        )

    def reference_local_grads(self, i):
        node, value, kids = self.nodes[i], self.values[i], self.kids[i]
        if not kids:
            return None
        if self.has_no_hidden_values(i):
            return [float(0 + g * 1) for g in value._local_grads]  # no hidden Values: what one backward step sends
        children_data = [self.values[c].data for c in self.kids[i]]
        grads = [float(g) for g in unit_flow(node, children_data, 1)]
        if not all(map(math.isfinite, grads)):
            reason = OPS[node["op"]].why_not_finite(children_data, node.get("exponent"))
            fault = Fault(reason, index=i, node=node["id"], op=node["op"], inputs=children_data)
            raise GraphError("numeric-error", "A local gradient is not a finite number.", [fault])
        return grads

    def verdict(self, i, field):
        entry = self.entry[i]
        if entry is None or field not in entry:
            return NOT_SUBMITTED
        if field == "local_grads":
            return MATCH if self.tolerance.all_match(entry[field], self.local[i]) else MISMATCH
        return MATCH if self.tolerance.matches(entry[field], getattr(self.values[i], field)) else MISMATCH

    def run(self):
        n = len(self.nodes)
        verdicts = [{field: self.verdict(i, field) for field in ("data", "grad", "local_grads")} for i in range(n)]
        data_bad = [False] * n
        for i in self.order:
            v = verdicts[i]["data"]
            data_bad[i] = v == MISMATCH or (v == NOT_SUBMITTED and any(data_bad[c] for c in self.kids[i]))
        children_bad = [any(data_bad[c] for c in self.kids[i]) for i in range(n)]
        local_bad = []
        for i in range(n):
            if verdicts[i]["local_grads"] == NOT_SUBMITTED:
                local_bad.append([children_bad[i]] * len(self.kids[i]))
            else:
                local_bad.append(
                    [not self.tolerance.matches(s, r) for s, r in zip(self.entry[i]["local_grads"], self.local[i])]
                )
        grad_bad = [False] * n
        for i in reversed(self.order):
            v = verdicts[i]["grad"]
            grad_bad[i] = v == MISMATCH or (
                v == NOT_SUBMITTED and any(grad_bad[p] or local_bad[p][k] for p, k in self.users[i])
            )

        causes = {}
        for i in self.order:
            if verdicts[i]["data"] == MISMATCH and not children_bad[i]:
                causes[(i, "data")] = self.forward_cause(i)
            if verdicts[i]["local_grads"] == MISMATCH and not children_bad[i]:
                causes[(i, "local_grads")] = self.local_gradient_cause(i, local_bad[i])
            if verdicts[i]["grad"] == MISMATCH and not any(grad_bad[p] or local_bad[p][k] for p, k in self.users[i]):
                where, cause = self.accumulation_cause(i)
                causes.setdefault(where, cause)
        root_causes = [causes[key] for key in sorted(causes, key=lambda key: (self.rank[key[0]], FIELD_RANK[key[1]]))]

        checked = sum(v != NOT_SUBMITTED for vs in verdicts for v in vs.values())
        matched = sum(v == MATCH for vs in verdicts for v in vs.values())
        results = []
        for i, (node, value) in enumerate(zip(self.nodes, self.values)):
            result = {"id": node["id"], "data": value.data, "grad": value.grad}
            if self.local[i] is not None:
                result["local_grads"] = self.local[i]
            result["verdict"] = verdicts[i]
            results.append(result)
        return {
            "output": self.nodes[self.output]["id"],
            "passed": checked == matched,
            "score": {"checked": checked, "matched": matched},
            "nodes": results,
            "root_causes": root_causes,
        }

    # --- the messages ------------------------------------------------------------------------------------

    def name(self, i):
        return _name(self.nodes[i]["id"])

    def describe(self, i):
        """How the student's code builds node i: `d = mul(c, a)`, `a (a leaf)`."""
        node = self.nodes[i]
        if not self.kids[i]:
            return f"{self.name(i)} (a leaf)"
        arguments = [self.name(c) for c in self.kids[i]]
        if "op" not in node:
            return f"{self.name(i)} (a recorded node over {', '.join(arguments)})"
        if OPS[node["op"]].takes_exponent:
            arguments.append(repr(node["exponent"]))
        return f"{self.name(i)} = {node['op']}({', '.join(arguments)})"

    def cause(self, i, kind, field, message, submitted, expected):
        return {
            "node": self.nodes[i]["id"],
            "kind": kind,
            "field": field,
            "message": message,
            "expected": expected,
            "submitted": submitted,
        }

    def forward_cause(self, i):
        node, expected, submitted = self.nodes[i], self.values[i].data, self.entry[i]["data"]
        head = f"{self.describe(i)}: data should be {expected!r}, the submission has {submitted!r}"
        if not self.kids[i]:
            message = f"{head}. A leaf's data is the graph's input: the submission holds a different value for it."
        elif "op" not in node:
            message = f"{head}. The node's data is recorded in the graph; the submission holds another value."
        else:
            children = ", ".join(f"{self.name(c)} = {self.values[c].data!r}" for c in self.kids[i])
            message = (
                f"{head}, while its children's data match ({children}). The forward rule of {node['op']} is wrong here."
            )
            lookalike = self.forward_lookalike(i, submitted)
            if lookalike:
                message += f" {submitted!r} is what {lookalike} gives: the forward rule looks like {lookalike}'s."
        return self.cause(i, "forward", "data", message, submitted, expected)

    def forward_lookalike(self, i, submitted):
        """Another op of the registry that computes the submitted data from the same children, if any."""
        node = self.nodes[i]
        leaves = [self.values[c].data for c in self.kids[i]]
        for name, op in OPS.items():
            if name == node["op"] or op.arity != len(leaves) or op.takes_exponent != OPS[node["op"]].takes_exponent:
                continue
            try:
                arguments = [Value(x) for x in leaves] + ([node["exponent"]] if op.takes_exponent else [])
                data = op.forward(*arguments).data
            except (ArithmeticError, ValueError, TypeError):
                continue
            if isinstance(data, float | int) and self.tolerance.matches(submitted, data):
                return name
        return None

    def local_gradient_cause(self, i, wrong):
        node, expected, submitted = self.nodes[i], self.local[i], self.entry[i]["local_grads"]
        which = [k for k, bad in enumerate(wrong) if bad]
        parts = ", ".join(
            f"d{self.name(i)}/d{self.name(self.kids[i][k])} (child {k}) should be {expected[k]!r}, the submission has {submitted[k]!r}"
            for k in which
        )
        rule = f"the derivative rule of {node['op']}" if "op" in node else "the recorded local gradients"
        message = (
            f"{self.describe(i)}: {parts}, while its children's data match. {rule[0].upper()}{rule[1:]} is wrong here."
        )
        if len(expected) > 1 and self.tolerance.all_match(submitted, expected[::-1]):
            message += " The submitted local gradients are the expected ones in reverse order: each child needs the derivative with respect to itself (for a product, the OTHER factor)."
        if "op" in node and node["op"] in ("sub", "div", "neg"):
            message += (
                f" ({node['op']} is built from several Values, as in the reference Value class; its local gradient for a child is what "
                "the backward pass passes to that child per unit of the node's grad.)"
            )
        return self.cause(i, "local-gradient", "local_grads", message, submitted, expected)

    def contributions(self, i):
        result = []
        for p, k in self.users[i]:
            grad = self.values[p].grad
            if self.has_no_hidden_values(p):
                amount = self.values[p]._local_grads[k] * grad
            else:
                amount = unit_flow(self.nodes[p], [self.values[c].data for c in self.kids[p]], grad)[k]
            result.append(Contribution(p, k, amount, self.local[p][k]))
        return result

    def accumulation_cause(self, i):
        """(where, cause): the accumulation root cause at node i, or, when i's only user did not submit
        its local gradients and nothing else explains i's grad, a local-gradient cause at that user."""
        expected, submitted = self.values[i].grad, self.entry[i]["grad"]
        head = f"{self.describe(i)}: grad should be {expected!r}, the submission has {submitted!r}"
        if i == self.output:
            message = f"{head}. {self.name(i)} is the output: the backward pass starts by setting its grad to 1."
            return (i, "grad"), self.cause(i, "accumulation", "grad", message, submitted, expected)
        if not self.users[i]:
            message = (
                f"{head}. The output does not depend on {self.name(i)}, so its grad stays 0: nothing should add to it."
            )
            return (i, "grad"), self.cause(i, "accumulation", "grad", message, submitted, expected)
        contributions = self.contributions(i)
        names = [self.use_name(c) for c in contributions[:MAX_LISTED_CONTRIBUTIONS]]
        if len(contributions) > MAX_LISTED_CONTRIBUTIONS:
            names.append(f"{len(contributions) - MAX_LISTED_CONTRIBUTIONS} more")
        users = _join(names)
        terms = " + ".join(f"{c.amount!r} from {self.use_name(c)}" for c in contributions[:MAX_LISTED_CONTRIBUTIONS])
        if len(contributions) > MAX_LISTED_CONTRIBUTIONS:
            terms += f" + {len(contributions) - MAX_LISTED_CONTRIBUTIONS} more"
        explanation = None
        if self.searches_left > 0:
            self.searches_left -= 1
            explanation = self.explain_sum(contributions, submitted)
        if len(contributions) > 1:
            message = (
                f"{head}, while the grads and local gradients of the nodes that use it match. {self.name(i)} is used "
                f"by {users}, so its grad is the sum of their {len(contributions)} contributions: {terms} = {expected!r}."
            )
        else:
            message = (
                f"{head}, while the grad and local gradient of its only user, {users}, match. Its grad is that "
                f"user's contribution, local gradient × grad: {self.local[contributions[0].user][contributions[0].position]!r} × "
                f"{self.values[contributions[0].user].grad!r} = {contributions[0].amount!r}."
            )
        if explanation:
            message += " " + explanation
        elif len(contributions) == 1 and "local_grads" not in (self.entry[contributions[0].user] or {}):
            p, k = contributions[0].user, contributions[0].position
            local_message = (
                f"{self.describe(p)}: its grad matches but its only child there, {self.name(i)}, gets grad {submitted!r} "
                f"instead of {expected!r}. {self.name(p)}'s local gradients were not submitted; the derivative rule "
                f"of {self.nodes[p].get('op', 'the recorded node')} is the likely mistake: d{self.name(p)}/d{self.name(i)} should be {self.local[p][k]!r}."
            )
            return (p, "local_grads"), self.cause(
                p, "local-gradient", "local_grads", local_message, None, self.local[p]
            )
        else:
            message += " The backward pass combines the contributions wrongly: each use adds local_grad × grad to the child (`child.grad += local_grad * v.grad`)."
        return (i, "grad"), self.cause(i, "accumulation", "grad", message, submitted, expected)

    def use_name(self, c):
        repeats = sum(kid == self.kids[c.user][c.position] for kid in self.kids[c.user])
        return self.name(c.user) + (f" (child {c.position})" if repeats > 1 else "")

    def explain_sum(self, contributions, submitted):
        """The likely mistake, when the submitted grad is a recognisable wrong combination of the
        contributions: one alone, some of them, all in another order, local gradients without the grad."""
        match = self.tolerance.matches
        if len(contributions) > 1:
            for c in contributions:
                if match(submitted, c.amount):
                    return (
                        f"{submitted!r} is {self.use_name(c)}'s contribution alone: the backward pass assigns the "
                        "child's grad (`child.grad = local_grad * v.grad`) where it must add to it "
                        "(`child.grad += local_grad * v.grad`), so only one use counts."
                    )
        if 2 < len(contributions) <= MAX_ARRANGED_CONTRIBUTIONS:
            for size in range(2, len(contributions)):
                for subset in itertools.combinations(contributions, size):
                    if match(submitted, sum(c.amount for c in subset)):
                        missing = _join([self.use_name(c) for c in contributions if c not in subset])
                        return f"{submitted!r} is the sum of the contributions without {missing}'s: some uses were not added."
        if 1 < len(contributions) <= MAX_ARRANGED_CONTRIBUTIONS:
            for arrangement in itertools.permutations(contributions):
                if match(submitted, _sum_in_order(c.amount for c in arrangement)):
                    order = ", ".join(self.use_name(c) for c in arrangement)
                    return (
                        f"{submitted!r} is the sum of the same contributions in another order ({order}); floating-point "
                        "sums depend on the order, and the reference Value class adds them in its backward order (reverse topological)."
                    )
        if any(self.values[c.user].grad != 1 for c in contributions) and match(
            submitted, _sum_in_order(c.per_unit for c in contributions)
        ):
            return (
                f"{submitted!r} is the sum of the local gradients alone: the chain rule multiplies each by the user's "
                "grad (`child.grad += local_grad * v.grad`)."
            )
        return None


def _sum_in_order(amounts):
    total = 0
    for amount in amounts:
        total += amount
    return total


def _join(names):
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _name(node_id):
    return node_id if isinstance(node_id, str) else f"#{node_id}"


def forward_order(kids: list[list[int]]) -> list[int]:
    """Node positions, children first (a depth-first post-order, request order among roots): the order
    in which the forward pass builds the nodes."""
    if all(c < i for i, children in enumerate(kids) for c in children):
        return list(range(len(kids)))  # listed children first, as a graph serialized while built is
    return post_order(range(len(kids)), kids.__getitem__)


def reachable_from(root: int, kids: list[list[int]]) -> set[int]:
    """The positions the output depends on: the nodes its backward pass reaches."""
    return set(post_order((root,), kids.__getitem__))


def grade(nodes: list[dict], output: object, values: list[Value], submitted: list[dict], tolerance: Tolerance) -> dict:
    """The grade response body: verdicts per node and field, the score, and the root causes, ordered
    children first so that the first is the first thing to fix."""
    check_submissions(nodes, submitted)
    return _Grading(nodes, output, values, submitted, tolerance).run()

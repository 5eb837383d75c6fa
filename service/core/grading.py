"""Grading: a submission's data, grads and local gradients against the reference evaluation, node by
node; the root causes of its mismatches (the mismatches no earlier mismatch explains); and, for each,
the known mistakes that reproduce the submitted numbers.

Pure logic, no Flask: `grade` takes the validated nodes, the engine's Values from
`service.core.graphs.evaluate`, the submission, the tolerance and the fields required, and returns the
response body.

- The reference local gradients of a node are what the reference class's backward passes to each listed
  child per unit of the node's grad (`graphs.unit_flow`): the Value's own `_local_grads` for add, mul,
  pow, log, exp and relu, and what flows through the hidden Values for sub, div and neg.
- A submitted number is accepted within the rounding-aware bound of service/core/rounding.py, or, when
  the request gives a tolerance, within atol + rtol × |reference| (both 0: bit-exact). NaN and the
  infinities are never accepted.
- Root causes are found children first: a data mismatch whose children's data match (the op's forward
  rule), a local-gradient mismatch whose children's data match (its derivative rule), a grad mismatch
  whose users' grads and local gradients match (how the contributions are added). An unsubmitted field
  is looked through.
- Each root cause is then explained by the mistakes of service/core/mistakes.py that reproduce the
  submitted numbers when the graph is built and differentiated with them; when all of them point at the
  same place (a grads-only submission shows a wrong derivative rule as a wrong grad one node below),
  the root cause is put there.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from service.core import rounding
from service.core.engine import Value
from service.core.graphs import MAX_FAULTS, Fault, GraphError, flow_through_hidden, unit_flow
from service.core.mistakes import (
    ACCUMULATION,
    FORWARD,
    LOCAL_GRADIENT,
    MISTAKE_NAMED,
    Mistake,
    Prediction,
    predictions,
    reproduces,
)
from service.core.ops import OPS
from service.core.traversal import Checkpoint, checkpointed, post_order

MATCH, MISMATCH, NOT_SUBMITTED, MISSING = "match", "mismatch", "not-submitted", "missing"
VERDICTS = (MATCH, MISMATCH, NOT_SUBMITTED, MISSING)
FIELDS = ("data", "grad", "local_grads")
ROOT_CAUSE_KINDS = (FORWARD, LOCAL_GRADIENT, ACCUMULATION)
KIND_OF_FIELD = {"data": FORWARD, "local_grads": LOCAL_GRADIENT, "grad": ACCUMULATION}
FIELD_RANK = {"data": 0, "local_grads": 1, "grad": 2}
#: How a submission may write a number that is not finite, besides the JSON tokens Python's json writes.
NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

#: The most root causes an answer lists and explains; the rest are counted in `root_causes_not_listed`,
#: so that a huge graph wrong everywhere costs time linear in its size and answers a bounded list.
MAX_ROOT_CAUSES = 100
#: The largest graph every known mistake is tried on; a larger one is explained from its local sums.
MAX_SIMULATED_NODES = 1_000
#: ... and the most edges (children listed) it may have: every graph of ops within MAX_SIMULATED_NODES (two
#: children at most each), but not a recorded node of a million children, which each mistake would rebuild.
MAX_SIMULATED_EDGES = 2 * MAX_SIMULATED_NODES
#: Contributions up to this many are tried in every order and every subset to explain a wrong sum.
MAX_ARRANGED_CONTRIBUTIONS = 6
#: The most combinations of its users' partial grads a wrong grad is tried against for a walk without a
#: topological order.
MAX_WALK_ORDER_CHOICES = 4096
#: The mistakes of a backward pass that walks no topological order.
WALK_ORDER_MISTAKES = frozenset({"no-topological-order", "breadth-first-walk", "preorder-walk"})
#: Contributions listed one by one in a message; the rest are counted.
MAX_LISTED_CONTRIBUTIONS = 10
#: Wrong local gradients of one node named one by one in its message; the rest are counted (the root cause's
#: `expected`, `submitted` and `allowed` have them all).
MAX_LISTED_LOCAL_GRADS = 10
#: How each composite op is built from the primitives, for a message that names the primitive.
COMPOSITIONS = {"sub": "a + (b * -1)", "div": "a * b**-1", "neg": "x * -1"}


@dataclass(frozen=True)
class Tolerance:
    """An explicit tolerance: a submitted number s matches the reference r when |s - r| <= atol +
    rtol * |r| (numpy.isclose with the reference as b); rtol = atol = 0 is bit-exact."""

    rtol: float = 1e-9
    atol: float = 0.0

    def matches(self, submitted: float, reference: float) -> bool:
        return math.isfinite(submitted) and abs(submitted - reference) <= self.atol + self.rtol * abs(reference)

    def all_match(self, submitted: Sequence[float], reference: Sequence[float]) -> bool:
        return len(submitted) == len(reference) and all(map(self.matches, submitted, reference))


#: The explicit tolerance's parts, for a request that gives only one of them.
DEFAULT_TOLERANCE = Tolerance()

#: The rules a graph can exercise, besides its ops' names (and "recorded" for a recorded node).
EXERCISED_RULES = {
    "relu-at-zero": "a relu whose input is exactly 0 (its derivative there is 0)",
    "node-used-twice": "a node used by two uses (its grad adds two contributions)",
    "node-used-three-or-more-times": "a node used three or more times",
    "same-child-twice": "an op with the same child twice (x * x, x + x)",
    "deep-chain": "a path of 32 or more nodes from a leaf to the output",
    "unreached-node": "a node the output does not depend on (its grad stays 0)",
}
DEEP_CHAIN = 32


@dataclass(frozen=True)
class Contribution:
    """What one use of a node (its user, the child position there) adds to the node's grad."""

    user: int
    position: int
    amount: float
    per_unit: float


@dataclass
class Fit:
    """A known mistake tried on the graph: what it predicts, how many submitted numbers it reproduces,
    and where it shows (the root causes of its own numbers); or, for a mistake recognised from one
    node's sum alone, what it is there (`detail`)."""

    mistake: Mistake
    prediction: Prediction | None
    reproduced: int
    contradicted: int
    """How many submitted numbers that match the reference the mistake would have changed."""
    sites: list[tuple[int, str]] | None
    """Computed when the mistake is a candidate somewhere."""
    detail: str | None = None


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


def submitted_number(number: float | str) -> float:
    """A submitted number as a float: "NaN", "Infinity" and "-Infinity" are the non-finite ones."""
    return NON_FINITE[number] if isinstance(number, str) else number


def grade(
    nodes: list[dict],
    output: object,
    values: list[Value],
    submitted: list[dict],
    tolerance: Tolerance | None = None,
    required: Sequence[str] = (),
    checkpoint: Checkpoint | None = None,
) -> dict:
    """The grade response body: verdicts per node and field, the score, what the graph exercised, and
    the root causes, ordered children first so that the first is the first thing to fix. Without a
    tolerance, the rounding-aware bounds decide."""
    check_submissions(nodes, submitted)
    return _Grading(nodes, output, values, submitted, tolerance, required, checkpoint or (lambda: None)).run()


class _Grading:
    def __init__(self, nodes, output, values, submitted, tolerance, required, checkpoint):
        self.nodes, self.values, self.tolerance = nodes, values, tolerance
        self.required, self.checkpoint = frozenset(required), checkpoint
        self.index = {node["id"]: i for i, node in enumerate(nodes)}
        self.kids = [[self.index[c] for c in node.get("children", ())] for node in checkpointed(nodes, checkpoint)]
        checkpoint()
        self.order = forward_order(self.kids)
        self.rank = {i: r for r, i in enumerate(self.order)}
        self.output = self.index[output]
        checkpoint()
        self.reachable = reachable_from(self.output, self.kids)
        self.users = [[] for _ in nodes]
        for p in checkpointed(self.reachable, checkpoint):
            for k, c in enumerate(self.kids[p]):
                self.users[c].append((p, k))
        for users in checkpointed(self.users, checkpoint):
            users.sort(key=lambda use: (self.rank[use[0]], use[1]))
        self.local = [self.reference_local_grads(i) for i in checkpointed(range(len(nodes)), checkpoint)]
        checkpoint()
        # The rounding bounds accept numbers without a tolerance, and, whatever the tolerance, tell a mistake
        # (which moves a number past them) from a reordering (which does not).
        self.rounding = rounding.bounds(nodes, values, self.kids, self.order, self.users, self.local, self.output)
        checkpoint()
        self.entry = [None] * len(nodes)
        self._local_accepted = {}
        for entry in checkpointed(submitted, checkpoint):
            self.entry[self.index[entry["id"]]] = {
                key: value
                if key == "id"
                else [submitted_number(x) for x in value]
                if key == "local_grads"
                else submitted_number(value)
                for key, value in entry.items()
            }

    def reference_local_grads(self, i):
        node, kids = self.nodes[i], self.kids[i]
        if not kids:
            return None
        children_data = [self.values[c].data for c in kids]
        grads = flow_through_hidden(self.values[i], [self.values[c] for c in kids])
        if grads is None:
            grads = unit_flow(node, children_data, 1)
        grads = [float(g) for g in grads]
        if not all(map(math.isfinite, grads)):
            reason = OPS[node["op"]].why_not_finite(children_data, node.get("exponent"))
            fault = Fault(reason, index=i, node=node["id"], op=node["op"], inputs=children_data)
            raise GraphError("numeric-error", "A local gradient is not a finite number.", [fault])
        return grads

    # --- acceptance ------------------------------------------------------------------------------------

    def allowed(self, i, field, k=None):
        """How far a submitted number of node i's `field` may be from the reference."""
        if self.tolerance is not None:
            return self.tolerance.atol + self.tolerance.rtol * abs(self.reference(i, field, k))
        return self.rounding_bound(i, field, k)

    def rounding_bound(self, i, field, k=None):
        if field == "local_grads":
            return self.rounding.local_grads[i][k]
        return (self.rounding.data if field == "data" else self.rounding.grad)[i]

    def within_rounding(self, number, i, field, k=None):
        return abs(number - self.reference(i, field, k)) <= self.rounding_bound(i, field, k)

    def reference(self, i, field, k=None):
        if field == "local_grads":
            return self.local[i][k]
        return getattr(self.values[i], field)

    def accepts(self, submitted, i, field, k=None):
        return math.isfinite(submitted) and abs(submitted - self.reference(i, field, k)) <= self.allowed(i, field, k)

    def local_accepted(self, i):
        """Per listed child, whether node i's submitted local gradient is accepted (found once per node)."""
        if i not in self._local_accepted:
            self._local_accepted[i] = [
                self.accepts(s, i, "local_grads", k) for k, s in enumerate(self.entry[i]["local_grads"])
            ]
        return self._local_accepted[i]

    def applies(self, i, field):
        return field != "local_grads" or bool(self.kids[i])

    def verdict(self, i, field):
        entry = self.entry[i]
        if entry is None or field not in entry:
            return MISSING if field in self.required and self.applies(i, field) else NOT_SUBMITTED
        if field == "local_grads":
            return MATCH if all(self.local_accepted(i)) else MISMATCH
        return MATCH if self.accepts(entry[field], i, field) else MISMATCH

    # --- the answer ------------------------------------------------------------------------------------

    def run(self):
        n = len(self.nodes)
        verdicts = [
            {field: self.verdict(i, field) for field in FIELDS} for i in checkpointed(range(n), self.checkpoint)
        ]
        known = {MATCH: MATCH, MISMATCH: MISMATCH}
        causes = root_cause_sites(
            self,
            [known.get(v["data"]) for v in verdicts],
            [
                None if known.get(v["local_grads"]) is None else [not ok for ok in self.local_accepted(i)]
                for i, v in enumerate(verdicts)
            ],
            [known.get(v["grad"]) for v in verdicts],
        )
        self.checkpoint()
        root_causes, not_listed = self.explained(causes, verdicts)
        counted = {field: {"checked": 0, "matched": 0, "missing": 0} for field in FIELDS}
        for node_verdicts in checkpointed(verdicts, self.checkpoint):
            for field, verdict in node_verdicts.items():
                if verdict != NOT_SUBMITTED:
                    counted[field]["checked"] += 1
                    counted[field]["matched"] += verdict == MATCH
                    counted[field]["missing"] += verdict == MISSING
        checked = sum(c["checked"] for c in counted.values())
        matched = sum(c["matched"] for c in counted.values())
        results = []
        for i, (node, value) in enumerate(checkpointed(zip(self.nodes, self.values), self.checkpoint)):
            result = {"id": node["id"], "data": value.data, "grad": value.grad}
            if self.local[i] is not None:
                result["local_grads"] = self.local[i]
            result["verdict"] = verdicts[i]
            results.append(result)
        self.checkpoint()
        body = {
            "output": self.nodes[self.output]["id"],
            "passed": checked > 0 and checked == matched,
            "score": {"checked": checked, "matched": matched, "fields": counted},
            "tolerance": self.rule(),
            "exercised": exercised(self.nodes, self.values, self.kids, self.users, self.reachable, self.order),
            "nodes": results,
            "root_causes": root_causes,
        }
        if not_listed:
            body["root_causes_not_listed"] = not_listed
        return body

    def rule(self):
        if self.tolerance is not None:
            return {"rule": "explicit", "rtol": self.tolerance.rtol, "atol": self.tolerance.atol}
        return {
            "rule": "rounding",
            "safety_factor": rounding.SAFETY_FACTOR,
            "unit_roundoff": rounding.UNIT_ROUNDOFF,
        }

    # --- root causes and their diagnoses -----------------------------------------------------------------

    def explained(self, causes, verdicts):
        """The first MAX_ROOT_CAUSES structural root causes, each with its message and the known mistakes
        that fit it, moved to where those mistakes all point; children first. And how many more there are."""
        fits = self.fits() if causes else []
        found, not_listed = {}, 0
        for count, (i, field) in enumerate(causes):
            if len(found) == MAX_ROOT_CAUSES:
                not_listed = len(causes) - count
                break
            candidates = self.candidates(fits, i, field) or self.sum_candidates(i, field, simulated=bool(fits))
            where = self.common_site(candidates, i, field) or (i, field)
            if field == "grad":
                candidates = candidates + self.walk_order_candidates(i, candidates)
            found.setdefault(where, (candidates, (i, field)))
            self.checkpoint()
        placed = {
            where: self.cause(*where, self.consistent(candidates, where, found), verdicts, origin)
            for where, (candidates, origin) in found.items()
        }
        return self.in_order(placed), not_listed

    def consistent(self, candidates, where, found):
        """The candidates less a rule's mistake that another root cause, one no known mistake explains,
        involves (its node's op, or for a grad its users' ops): a student's rule is wrong the same way at
        every use of it, so a known mistake that fits one place only where it coincides with the
        student's (exp's derivative written `exp(x) * x` is `x` at 0) is not the student's mistake."""
        unexplained = set()
        for (node, field), (others, _) in found.items():
            if (node, field) != where and not others:
                involved = self.users[node] if field == "grad" else [(node, None)]
                unexplained |= {self.nodes[user].get("op") for user, _ in involved}
        return [
            fit for fit in candidates if fit.mistake.kind == ACCUMULATION or not (fit.mistake.changes & unexplained)
        ]

    def in_order(self, placed):
        return [placed[key] for key in sorted(placed, key=lambda key: (self.rank[key[0]], FIELD_RANK[key[1]]))]

    def fits(self):
        """Every known mistake tried on the whole graph, when it is small enough."""
        if len(self.nodes) > MAX_SIMULATED_NODES or sum(map(len, self.kids)) > MAX_SIMULATED_EDGES:
            return []
        submitted = self.submitted_fields()
        wrong = [(i, field) for i, field in submitted if self.verdict(i, field) == MISMATCH]
        fits = []
        for prediction in predictions(self.nodes, self.kids, self.order, self.output, self.values, self.checkpoint):
            if any(self.reproduced(prediction, i, field) for i, field in wrong):
                kept = [self.reproduced(prediction, i, field) for i, field in submitted]
                contradicted = sum(
                    self.verdict(i, f) == MATCH and not (k and self.keeps_local_grads(prediction, i, f))
                    for k, (i, f) in zip(kept, submitted)
                )
                fits.append(Fit(prediction.mistake, prediction, sum(kept), contradicted, None))
        return fits

    def submitted_fields(self):
        return [(i, field) for i, entry in enumerate(self.entry) if entry for field in FIELDS if field in entry]

    def reproduced(self, prediction, i, field):
        """Whether the prediction has node i's submitted `field`."""
        submitted = self.entry[i][field]
        if field == "local_grads":
            predicted = prediction.local_grads(i)
            return predicted is not None and all(
                reproduces(p, s, self.rounding_bound(i, field, k)) for k, (p, s) in enumerate(zip(predicted, submitted))
            )
        predicted = (prediction.data if field == "data" else prediction.grad)[i]
        return reproduces(predicted, submitted, self.rounding_bound(i, field))

    def keeps_local_grads(self, prediction, i, field):
        """Whether the mistake leaves node i's submitted local gradients as they are, not merely within the
        rounding bound: at a relu of a computed 0 the bound accepts both 0 and 1, and a mistake that makes
        a right 0 a 1 there is contradicted by the student's right local gradient, not confirmed by it."""
        if field != "local_grads":
            return True
        predicted = prediction.local_grads(i)
        return predicted is not None and all(
            p is not None and _close(p, s) for p, s in zip(predicted, self.entry[i]["local_grads"], strict=True)
        )

    def changes(self, prediction, i, field):
        """Whether the mistake moves node i's `field` past the rounding bound: a mistake that leaves it
        where a correct computation could be cannot explain a mismatch there."""
        if field == "local_grads":
            predicted = prediction.local_grads(i)
            return predicted is not None and any(
                p is not None and not self.within_rounding(p, i, field, k) for k, p in enumerate(predicted)
            )
        predicted = (prediction.data if field == "data" else prediction.grad)[i]
        return predicted is not None and not self.within_rounding(predicted, i, field)

    def sites(self, prediction):
        """Where the mistake shows: the root causes of its own numbers, as if they were all submitted."""

        def state(predicted, i, field, k=None):
            if predicted is None:
                return None
            return (
                MATCH
                if reproduces(predicted, self.reference(i, field, k), self.rounding_bound(i, field, k))
                else MISMATCH
            )

        n = len(self.nodes)
        local = [prediction.local_grads(i) for i in range(n)]
        return root_cause_sites(
            self,
            [state(prediction.data[i], i, "data") for i in range(n)],
            [
                None if local[i] is None else [state(p, i, "local_grads", k) != MATCH for k, p in enumerate(local[i])]
                for i in range(n)
            ],
            [state(prediction.grad[i], i, "grad") for i in range(n)],
        )

    def candidates(self, fits, i, field):
        """The known mistakes that change this root cause's numbers as the student's did and leave every
        submitted number the student got right as it is; those that reproduce every submitted number if
        any do (another mismatch they do not explain means a second mistake); the one that shows at this
        very place first."""
        mismatched = [f for f in FIELDS if self.entry[i] and f in self.entry[i] and self.verdict(i, f) == MISMATCH]
        here = [
            fit
            for fit in fits
            if not fit.contradicted
            and mismatched
            and all(self.reproduced(fit.prediction, i, f) and self.changes(fit.prediction, i, f) for f in mismatched)
        ]
        everything = len(self.submitted_fields())
        chosen = [fit for fit in here if fit.reproduced == everything] or here
        for fit in chosen:
            if fit.sites is None:
                fit.sites = self.sites(fit.prediction)
        return sorted(chosen, key=lambda fit: (-fit.reproduced, (i, field) not in fit.sites))

    def common_site(self, candidates, i, field):
        """The one place every candidate shows near this root cause (the node itself, a node that uses
        it, or a child of one) that can explain it, or None. A grad is made by its users' local gradients,
        never by the node's own or a sibling's: those cannot explain a wrong grad."""
        users = {p for p, _ in self.users[i]}
        near = [i, *(p for p, _ in self.users[i]), *(c for p, _ in self.users[i] for c in self.kids[p])]

        def explains(site):
            return field != "grad" or site[1] != "local_grads" or site[0] in users

        places = set()
        for fit in candidates:
            if fit.sites is None:
                fit.sites = self.sites(fit.prediction)
            site = next((s for node in near for s in fit.sites if s[0] == node and explains(s)), None)
            if site is None:
                return None
            places.add(site)
        if len(places) != 1:
            return None
        node, place = places.pop()
        submitted_there = self.entry[node] and place in self.entry[node]
        return None if submitted_there and self.verdict(node, place) == MATCH else (node, place)

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

    def cause(self, i, field, candidates, verdicts, origin):
        kind = KIND_OF_FIELD[field]
        entry = self.entry[i] or {}
        submitted = entry.get(field) if verdicts[i][field] == MISMATCH else None
        expected = self.local[i] if field == "local_grads" else getattr(self.values[i], field)
        if kind == FORWARD:
            message = self.forward_message(i, submitted, candidates)
        elif kind == LOCAL_GRADIENT:
            message = self.local_gradient_message(i, submitted, candidates, origin)
        else:
            message = self.accumulation_message(i, submitted, candidates)
        cause = {
            "node": self.nodes[i]["id"],
            "kind": kind,
            "field": field,
            "message": message,
            "expected": expected,
            "submitted": _shown(submitted),
            "allowed": [self.allowed(i, field, k) for k in range(len(expected))]
            if field == "local_grads"
            else self.allowed(i, field),
            "candidates": [
                {"mistake": fit.mistake.key, "rule": fit.mistake.rule, "message": self.candidate_sentence(fit, i)}
                for fit in candidates
            ],
        }
        return cause

    def mistake_sentence(self, mistake, i):
        """The mistake in a student's words, naming the primitive when the node is a composite built on it
        (a mistake of mul changes neg, sub and div: it shows in them)."""
        op = self.nodes[i].get("op")
        sentence = f"{mistake.does}; {mistake.fix}."
        if op in COMPOSITIONS and mistake.rule in OPS and mistake.rule != op and op in mistake.changes:
            rule = "derivative" if mistake.kind == LOCAL_GRADIENT else "forward"
            return f"{op} is {COMPOSITIONS[op]}: {mistake.rule}'s {rule} rule is wrong. {sentence}"
        return sentence

    def candidate_sentence(self, fit, i):
        sentence = self.mistake_sentence(fit.mistake, i)
        return f"{sentence} ({fit.detail})" if fit.detail else sentence

    def diagnosis(self, i, candidates):
        """The sentence that names the mistake, or the mistakes the numbers fit, most likely first."""
        if len(candidates) == 1:
            return " The mistake: " + self.candidate_sentence(candidates[0], i)
        listed = " ".join(f"({k}) {self.candidate_sentence(fit, i)}" for k, fit in enumerate(candidates, 1))
        return f" These numbers fit {len(candidates)} known mistakes, most likely first: {listed}"

    def forward_message(self, i, submitted, candidates):
        node, expected = self.nodes[i], self.values[i].data
        head = (
            f"{self.describe(i)}: data should be {expected!r}, {_submission_has(submitted)}"
            if submitted is not None
            else f"{self.describe(i)}: its data were not submitted, but the grads that depend on them show a wrong "
            f"value (it should be {expected!r})"
        )
        if not self.kids[i]:
            return f"{head}. A leaf's data is the graph's input: the submission holds a different value for it."
        if "op" not in node:
            return f"{head}. The node's data is recorded in the graph; the submission holds another value."
        children = ", ".join(f"{self.name(c)} = {self.values[c].data!r}" for c in self.kids[i])
        agree = "while its children's data match" if submitted is not None else "from its children"
        message = f"{head}, {agree} ({children})."
        if candidates:
            return message + self.diagnosis(i, candidates)
        message += f" The forward rule of {node['op']} is wrong here."
        lookalike = self.forward_lookalike(i, submitted) if submitted is not None else None
        if lookalike:
            message += f" {submitted!r} is what {lookalike} gives: the forward rule looks like {lookalike}'s."
        return message

    def forward_lookalike(self, i, submitted):
        """Another op of the registry that computes the submitted data from the same children, if any."""
        node = self.nodes[i]
        leaves = [self.values[c].data for c in self.kids[i]]
        for name, op in OPS.items():
            if name == node["op"] or op.arity != len(leaves) or op.takes_exponent != OPS[node["op"]].takes_exponent:
                continue
            try:
                arguments = [Value(x) for x in leaves] + ([float(node["exponent"])] if op.takes_exponent else [])
                data = op.forward(*arguments).data
            except (ArithmeticError, ValueError, TypeError):
                continue
            if isinstance(data, float | int) and reproduces(data, submitted, self.allowed(i, "data")):
                return name
        return None

    def local_gradient_message(self, i, submitted, candidates, origin):
        node, expected = self.nodes[i], self.local[i]
        rule = f"the derivative rule of {node['op']}" if "op" in node else "the recorded local gradients"
        if submitted is None:
            j = origin[0]
            own_grad = self.verdict(i, "grad")
            while_grad = (
                f"while {self.name(i)}'s grad matches"
                if own_grad == MATCH
                else f"while {self.name(i)}'s grad is wrong too"
                if own_grad == MISMATCH
                else f"({self.name(i)}'s grad was not submitted)"
            )
            message = (
                f"{self.describe(i)}: its local gradients were not submitted, but "
                f"{self.name(j)} gets grad {_shown(self.entry[j].get('grad'))!r} instead of {self.values[j].grad!r} "
                f"{while_grad}: {rule} is the likely place: its local gradients should be {expected!r}."
            )
            return message + (self.diagnosis(i, candidates) if candidates else "")
        wrong = [k for k, ok in enumerate(self.local_accepted(i)) if not ok]
        parts = ", ".join(
            f"d{self.name(i)}/d{self.name(self.kids[i][k])} (child {k}) should be {expected[k]!r}, {_submission_has(submitted[k])}"
            for k in wrong[:MAX_LISTED_LOCAL_GRADS]
        )
        if len(wrong) > MAX_LISTED_LOCAL_GRADS:
            parts += f", and {len(wrong) - MAX_LISTED_LOCAL_GRADS} more local gradients are wrong"
        message = f"{self.describe(i)}: {parts}, while its children's data match."
        if candidates:
            return message + self.diagnosis(i, candidates)
        message += f" {rule[0].upper()}{rule[1:]} is wrong here."
        if len(expected) > 1 and all(
            reproduces(e, s, self.allowed(i, "local_grads", k))
            for k, (e, s) in enumerate(zip(expected[::-1], submitted))
        ):
            message += " The submitted local gradients are the expected ones in reverse order: each child needs the derivative with respect to itself (for a product, the OTHER factor)."
        if node.get("op") in COMPOSITIONS:
            message += (
                f" (The reference Value class builds {node['op']} as {COMPOSITIONS[node['op']]}; a local gradient "
                "here is what the backward pass passes to the child per unit of the node's grad, the derivative "
                f"of {node['op']} with respect to that child however it is built.)"
            )
        return message

    def contributions(self, i):
        result = []
        for p, k in self.users[i]:
            grad = self.values[p].grad
            value = self.values[p]
            if len(value._children) == len(self.kids[p]) and value._children[k] is self.values[i]:
                amount = value._local_grads[k] * grad  # no hidden Values: one backward step
            else:
                amount = unit_flow(self.nodes[p], [self.values[c].data for c in self.kids[p]], grad)[k]
            result.append(Contribution(p, k, amount, self.local[p][k]))
        return result

    def accumulation_message(self, i, submitted, candidates):
        expected = self.values[i].grad
        head = f"{self.describe(i)}: grad should be {expected!r}, {_submission_has(submitted)}"
        if i == self.output:
            message = f"{head}. {self.name(i)} is the output: the backward pass starts by setting its grad to 1."
            return message + (self.diagnosis(i, candidates) if candidates else "")
        if not self.users[i]:
            return (
                f"{head}. The output does not depend on {self.name(i)}, so its grad stays 0: nothing should add to it."
            )
        contributions = self.contributions(i)
        names = [self.use_name(c) for c in contributions[:MAX_LISTED_CONTRIBUTIONS]]
        if len(contributions) > MAX_LISTED_CONTRIBUTIONS:
            names.append(f"{len(contributions) - MAX_LISTED_CONTRIBUTIONS} more")
        users = _join(names)
        terms = " + ".join(f"{c.amount!r} from {self.use_name(c)}" for c in contributions[:MAX_LISTED_CONTRIBUTIONS])
        if len(contributions) > MAX_LISTED_CONTRIBUTIONS:
            terms += f" + {len(contributions) - MAX_LISTED_CONTRIBUTIONS} more"
        local_known = all("local_grads" in (self.entry[c.user] or {}) for c in contributions)
        checked = "grads and local gradients" if local_known else "grads"
        if len(contributions) > 1:
            message = (
                f"{head}, while the {checked} of the nodes that use it match. {self.name(i)} is used "
                f"by {users}, so its grad is the sum of their {len(contributions)} contributions: {terms} = {expected!r}."
            )
        else:
            first = contributions[0]
            checked_one = "grad and local gradient" if local_known else "grad"
            agree = "match" if local_known else "matches"
            message = (
                f"{head}, while the {checked_one} of its only user, {users}, {agree}. Its grad is that user's "
                f"contribution, local gradient × grad: {self.local[first.user][first.position]!r} × "
                f"{self.values[first.user].grad!r} = {first.amount!r}."
            )
        if candidates:
            return message + self.diagnosis(i, candidates)
        reordered = self.reordered(i, contributions, submitted) if submitted is not None else None
        if reordered:
            return f"{message} {reordered}"
        if local_known:
            return (
                f"{message} The backward pass combines the contributions wrongly: each use adds local_grad × grad "
                "to the child (`child.grad += local_grad * v.grad`)."
            )
        return (
            f"{message} Either the local gradients of the nodes that use it (not submitted) or the way their "
            "contributions are added is wrong; no known mistake reproduces these numbers."
        )

    def use_name(self, c):
        repeats = sum(kid == self.kids[c.user][c.position] for kid in self.kids[c.user])
        return self.name(c.user) + (f" (child {c.position})" if repeats > 1 else "")

    def sum_candidates(self, i, field, simulated):
        """For a grad that no mistake tried on the whole graph reproduces (or a graph too large to try them
        on), the mistakes recognisable from its own sum: some uses not added; and, unless the whole graph
        was tried, one contribution alone (`=` for `+=`) and the local gradients without the chain rule."""
        submitted = (self.entry[i] or {}).get("grad")
        if field != "grad" or submitted is None or i == self.output or not self.users[i]:
            return []
        contributions = self.contributions(i)

        def match(amount):
            return reproduces(amount, submitted, self.allowed(i, "grad"))

        def fit(key, detail):
            return [Fit(MISTAKE_NAMED[key], None, 0, 0, [(i, field)], detail)]

        if not simulated and len(contributions) > 1:
            for c in contributions:
                if match(c.amount):
                    return fit("assigns-instead-of-adding", f"{submitted!r} is {self.use_name(c)}'s contribution alone")
        if 2 < len(contributions) <= MAX_ARRANGED_CONTRIBUTIONS:
            for size in range(2, len(contributions)):
                for subset in itertools.combinations(contributions, size):
                    if match(sum(c.amount for c in subset)):
                        missing = _join([self.use_name(c) for c in contributions if c not in subset])
                        return fit("some-uses-not-added", f"{submitted!r} is the sum without {missing}'s contribution")
        if (
            not simulated
            and any(self.values[c.user].grad != 1 for c in contributions)
            and match(_sum_in_order(c.per_unit for c in contributions))
        ):
            return fit("no-chain-rule", f"{submitted!r} is the sum of the local gradients alone")
        return []

    def walk_order_candidates(self, i, candidates):
        """No topological order, when the node's wrong grad is what its uses give if a user passed its grad
        on before all of its own uses had added to it: each user's grad then one of the partial sums of its
        contributions (a user used once is complete when reached). A backward pass can walk the nodes in
        many orders that are not topological (breadth-first, pre-order, children in any order); only some
        are simulated, so this one is recognised from the node's own numbers, and listed after the others."""
        if any(fit.mistake.key in WALK_ORDER_MISTAKES for fit in candidates):
            return []
        submitted = (self.entry[i] or {}).get("grad")
        if submitted is None or i == self.output or not self.users[i]:
            return []
        weights: dict[int, float] = {}
        for c in self.contributions(i):
            weights[c.user] = weights.get(c.user, 0) + c.per_unit
        choices, combinations = [], 1
        for p in weights:
            uses = self.contributions(p) if len(self.users[p]) > 1 else []
            if len(uses) > MAX_ARRANGED_CONTRIBUTIONS:
                return []
            partial = {
                _sum_in_order(c.amount for c in subset)
                for size in range(len(uses))
                for subset in itertools.combinations(uses, size)
            }
            choices.append([(p, self.values[p].grad, True)] + [(p, grad, False) for grad in partial])
            combinations *= len(choices[-1])
            if combinations > MAX_WALK_ORDER_CHOICES:
                return []
        for choice in itertools.product(*choices):
            if all(complete for _, _, complete in choice):
                continue
            if reproduces(
                _sum_in_order(weights[p] * grad for p, grad, _ in choice), submitted, self.allowed(i, "grad")
            ):
                early = _join([self.name(p) for p, _, complete in choice if not complete])
                detail = f"{submitted!r} is what {self.name(i)} gets when {early} passed its grad on before all of its uses had added to it"
                return [Fit(MISTAKE_NAMED["no-topological-order"], None, 0, 0, [(i, "grad")], detail)]
        return []

    def reordered(self, i, contributions, submitted):
        """When the submitted grad is the same contributions added in another order (which only a bit-exact
        tolerance refuses), say so: floating-point sums depend on the order."""
        if not 1 < len(contributions) <= MAX_ARRANGED_CONTRIBUTIONS:
            return None
        for arrangement in itertools.permutations(contributions):
            if reproduces(_sum_in_order(c.amount for c in arrangement), submitted, self.allowed(i, "grad")):
                order = ", ".join(self.use_name(c) for c in arrangement)
                return (
                    f"{submitted!r} is the sum of the same contributions in another order ({order}); floating-point "
                    "sums depend on the order, and the reference Value class adds them in its backward order "
                    "(reverse topological)."
                )
        return None


def root_cause_sites(grading, data, local, grad):
    """(node, field) of each mismatch that no earlier one explains, children first. `data[i]` and
    `grad[i]` are MATCH, MISMATCH or None (unknown: looked through); `local[i]` is, per listed child,
    whether the local gradient is wrong, or None when unknown."""
    n, kids, users = len(grading.nodes), grading.kids, grading.users
    data_bad = [False] * n
    for i in grading.order:
        data_bad[i] = data[i] == MISMATCH or (data[i] is None and any(data_bad[c] for c in kids[i]))
    children_bad = [any(data_bad[c] for c in kids[i]) for i in range(n)]
    local_bad = [[children_bad[i]] * len(kids[i]) if local[i] is None else local[i] for i in range(n)]
    grad_bad = [False] * n
    for i in reversed(grading.order):
        grad_bad[i] = grad[i] == MISMATCH or (
            grad[i] is None and any(grad_bad[p] or local_bad[p][k] for p, k in users[i])
        )
    sites = []
    for i in grading.order:
        if data[i] == MISMATCH and not children_bad[i]:
            sites.append((i, "data"))
        if local[i] is not None and any(local[i]) and not children_bad[i]:
            sites.append((i, "local_grads"))
        if grad[i] == MISMATCH and not any(grad_bad[p] or local_bad[p][k] for p, k in users[i]):
            sites.append((i, "grad"))
    return sites


def exercised(nodes, values, kids, users, reachable, order) -> list[str]:
    """What a pass on this graph covers: the ops it uses (and "recorded"), then the rules of
    EXERCISED_RULES it exercises."""
    ops = {node.get("op", "value") if kids[i] or "op" in node else "value" for i, node in enumerate(nodes)}
    names = [name for name in OPS if name in ops]
    if any(kids[i] and "op" not in node for i, node in enumerate(nodes)):
        names.append("recorded")
    uses = [len(users[i]) for i in range(len(nodes))]
    depth = [0] * len(nodes)
    for i in order:
        depth[i] = 1 + max((depth[c] for c in kids[i]), default=0)
    rules = {
        "relu-at-zero": any(node.get("op") == "relu" and values[kids[i][0]].data == 0 for i, node in enumerate(nodes)),
        "node-used-twice": any(u >= 2 for u in uses),
        "node-used-three-or-more-times": any(u >= 3 for u in uses),
        "same-child-twice": any(len(set(k)) < len(k) for k in kids),
        "deep-chain": max(depth, default=0) >= DEEP_CHAIN,
        "unreached-node": len(reachable) < len(nodes),
    }
    return names + [rule for rule, holds in rules.items() if holds]


def _submission_has(number):
    if number is None:
        return "it was not submitted"
    if math.isfinite(number):
        return f"the submission has {number!r}"
    return (
        f"the submission has {_shown(number)}, which is not a number the reference can have: the submitted "
        "computation overflowed or failed there (a division by 0, the log of a number <= 0, an inf - inf)"
    )


def _shown(number):
    """A submitted number as the answer writes it: a non-finite one as its name."""
    if isinstance(number, list):
        return [_shown(x) for x in number]
    if isinstance(number, float) and not math.isfinite(number):
        return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"
    return number


def _close(predicted, submitted):
    """Equal but for rounding: far within any whole term or factor a mistake changes."""
    return abs(predicted - submitted) <= max(1e-9 * max(abs(predicted), abs(submitted)), 1e-12)


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

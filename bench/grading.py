"""`python -m bench.grading`: how often the grader's verdicts are right, for students' classes on random
graphs, in the three ways a grader submits (full: data, grads and local gradients; grads only; data and
grads); and what a grade costs.

The classes are tools/students.py's: the reference class with one literal edit each (a wrong forward or
derivative rule, a composite built wrong, a backward pass that assigns, skips the chain rule, forgets
the output's grad, has no topological order, counts a repeated child once), a loop that does not reset
the grads, and correct classes written differently. For each broken class and mode, over graphs on
which its mistake shows:

- flagged: the grade does not pass (a graph counts when the mistake changes a submitted number: a
  forward rule's mistake that no grad depends on cannot show in grads alone);
- right place: the first root cause's node and kind are where the mistake first shows (full mode);
- named alone: the message names exactly the real mistake;
- named among: the real mistake is among the mistakes the message names (the numbers fit several);
- wrong alone: the message names one mistake, not the real one (the goal: never);
- not named: no known mistake named.

For correct classes: the share of graphs they fail (the goal: none). Writes bench/grading_results.md.
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from bench.report import machine, table
from service.core.grading import grade
from tools import students

MODES = {"full": ("data", "grad", "local_grads"), "grads only": ("grad",), "data and grads": ("data", "grad")}
OPS = ("add", "mul", "sub", "div", "pow", "log", "exp", "relu", "neg")
EXPONENTS = (2.0, 3.0, -1.0, -2.0, 1.0)


def random_graph(rng: random.Random, ops: int = 10) -> tuple[list[dict], object]:
    """Leaves of both signs and 0 (or all positive, where log is defined), then ops over earlier nodes, a
    child sometimes repeated; differentiated from the last node. One in five is relu over leaves of 0
    and both signs, weighted and summed: relu's rules show on few graphs otherwise."""
    if rng.random() < 0.2:
        return students.relu_graph(
            [rng.choice(students.RELU_LEAVES) for _ in range(rng.randint(2, 5))], rng.choice(students.RELU_WEIGHTS)
        )
    positive = rng.random() < 0.5
    choices = [0.25 + 2.75 * rng.random() for _ in range(8)] + ([] if positive else [0.0, -0.5, -1.5, -2.75])
    nodes = [{"id": f"x{k}", "data": rng.choice(choices)} for k in range(rng.randint(2, 4))]
    for k in range(rng.randint(2, ops)):
        name = rng.choice(OPS)
        arity = 2 if name in ("add", "mul", "sub", "div") else 1
        children = [rng.choice(nodes)["id"] for _ in range(arity)]
        node = {"id": f"n{k}", "op": name, "children": children}
        if name == "pow":
            node["exponent"] = rng.choice(EXPONENTS)
        nodes.append(node)
    return nodes, nodes[-1]["id"]


def rates(module, keys, mode, graph_count, rng, passes=1):
    """The counts of the module's doc for one broken class in one mode, and the grade times in ms."""
    counts = dict.fromkeys(
        ("shows", "flagged", "right place", "named alone", "named among", "wrong alone", "not named"), 0
    )
    times = []
    tried = 0
    while counts["shows"] < graph_count and tried < 40 * graph_count:
        tried += 1
        nodes, output = random_graph(rng)
        evaluated = students.reference(nodes, output)
        submitted = students.submission(module, nodes, output, MODES[mode], passes) if evaluated else None
        if submitted is None:
            continue
        output, values = evaluated
        if students.relu_of_a_computed_zero(nodes, values):
            continue
        full = students.submission(module, nodes, output, MODES["full"], passes)
        shows = students.shows_a_difference(nodes, values, submitted)
        started = time.perf_counter()
        body = grade(nodes, output, values, submitted)
        times.append((time.perf_counter() - started) * 1000)
        if not shows:
            continue
        counts["shows"] += 1
        if body["passed"]:
            continue
        counts["flagged"] += 1
        first = body["root_causes"][0]
        named = [candidate["mistake"] for candidate in first["candidates"]]
        if mode == "full" and (first["node"], first["kind"]) == students.mistake_site(
            module, nodes, output, full, values, passes
        ):
            counts["right place"] += 1
        if len(named) == 1 and named[0] in keys:
            counts["named alone"] += 1
        elif set(named) & keys:
            counts["named among"] += 1
        elif len(named) == 1:
            counts["wrong alone"] += 1
        else:
            counts["not named"] += 1
    return counts, times


def false_fails(module, mode, graph_count, rng):
    failed = tried = 0
    while tried < graph_count:
        nodes, output = random_graph(rng)
        evaluated = students.reference(nodes, output)
        submitted = students.submission(module, nodes, output, MODES[mode]) if evaluated else None
        if submitted is None:
            continue
        tried += 1
        output, values = evaluated
        failed += not grade(nodes, output, values, submitted)["passed"]
    return failed, tried


def percent(part, whole):
    return f"{100 * part / whole:.0f}%" if whole else "–"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.grading", description=__doc__.split("\n\n")[0])
    parser.add_argument("--graphs", type=int, default=100, help="graphs on which each mistake shows, per mode")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", default=str(Path(__file__).with_name("grading_results.md")))
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    broken = {name: (students.student(edits), keys, 1) for name, (edits, keys) in students.MISTAKES.items()}
    for name, (keys, passes) in students.LOOP_MISTAKES.items():
        broken[name] = (students.student([]), keys, passes)
    rows, totals, all_times = (
        [],
        {
            mode: dict.fromkeys(
                ("shows", "flagged", "right place", "named alone", "named among", "wrong alone", "not named"), 0
            )
            for mode in MODES
        },
        [],
    )
    for name, (module, keys, passes) in broken.items():
        for mode in MODES:
            counts, times = rates(module, keys, mode, args.graphs, rng, passes)
            all_times += times
            for key, value in counts.items():
                totals[mode][key] += value
            rows.append(
                [
                    name,
                    mode,
                    str(counts["shows"]),
                    percent(counts["flagged"], counts["shows"]),
                    percent(counts["right place"], counts["shows"]) if mode == "full" else "",
                    percent(counts["named alone"], counts["shows"]),
                    percent(counts["named among"], counts["shows"]),
                    str(counts["wrong alone"]),
                    str(counts["not named"]),
                ]
            )
        print(f"{name}: done", file=sys.stderr)
    summary = [
        [
            mode,
            str(t["shows"]),
            percent(t["flagged"], t["shows"]),
            percent(t["right place"], t["shows"]) if mode == "full" else "",
            percent(t["named alone"] + t["named among"], t["shows"]),
            percent(t["named alone"], t["shows"]),
            percent(t["named among"], t["shows"]),
            str(t["wrong alone"]),
        ]
        for mode, t in totals.items()
    ]
    correct = []
    for name, edits in students.CORRECT.items():
        module = students.student(edits)
        for mode in MODES:
            failed, tried = false_fails(module, mode, args.graphs, rng)
            correct.append([name, mode, str(tried), str(failed)])
    header = [
        "class",
        "mode",
        "graphs showing it",
        "flagged",
        "right node and kind",
        "named alone",
        "named among several",
        "wrong one named alone",
        "none named",
    ]
    text = "\n\n".join(
        [
            "# Grading's verdicts: `python -m bench.grading`",
            f"{machine()}; {args.graphs} graphs showing each mistake per mode, random graphs of 4 to 14 nodes, seed {args.seed}.",
            "Per mode, over every broken class:",
            table(
                [
                    "mode",
                    "graphs",
                    "flagged",
                    "right node and kind",
                    "real mistake named",
                    "named alone",
                    "named among several",
                    "wrong one named alone",
                ],
                summary,
            ),
            "Per broken class:",
            table(header, rows),
            "Correct classes written differently, at the default (rounding-aware) tolerance:",
            table(["class", "mode", "graphs", "failed"], correct),
            f"A grade of one of these graphs: median {statistics.median(all_times):.2f} ms, "
            f"90th percentile {statistics.quantiles(all_times, n=10)[-1]:.2f} ms (in-process, every known mistake tried on failing submissions).",
        ]
    )
    print(text)
    Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

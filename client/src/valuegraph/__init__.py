"""valuegraph's client: the service's endpoints from Python (`Client`), any Value graph as a request
(`to_graph`), a student's Value class graded in one call (`Client.grade_class`, `submission`),
graph suites that exercise every rule (`suite`), and the `valuegraph` command (valuegraph.cli)."""

from valuegraph.client import DEFAULT_URL, Client, ProblemError
from valuegraph.grading import GradeReport, GraphResult, grade_class, submission
from valuegraph.graph import UnsupportedValue, to_graph
from valuegraph.suites import suite

__all__ = [
    "DEFAULT_URL",
    "Client",
    "GradeReport",
    "GraphResult",
    "ProblemError",
    "UnsupportedValue",
    "grade_class",
    "submission",
    "suite",
    "to_graph",
]
__version__ = "1.1.0"

"""valuegraph's client: the service's endpoints from Python (`Client`), any Value graph as a request
(`to_graph`), a student's Value class graded in one call (`Client.grade_class` in this process,
`Client.grade_isolated` in a child process within time and memory limits; `submission`), graph
suites that exercise every rule (`suite`), and the `valuegraph` command (valuegraph.cli)."""

from valuegraph.client import DEFAULT_URL, Client, ProblemError
from valuegraph.grading import ClassNotFound, GradeReport, GraphResult, grade_class, submission
from valuegraph.graph import UnsupportedValue, to_graph
from valuegraph.isolation import grade_isolated
from valuegraph.suites import suite

__all__ = [
    "DEFAULT_URL",
    "ClassNotFound",
    "Client",
    "GradeReport",
    "GraphResult",
    "ProblemError",
    "UnsupportedValue",
    "grade_class",
    "grade_isolated",
    "submission",
    "suite",
    "to_graph",
]
__version__ = "1.2.0"

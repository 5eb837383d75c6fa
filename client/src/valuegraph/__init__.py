"""valuegraph's client: the service's endpoints from Python (`Client`), any Value graph as a request
(`to_graph`), and the `valuegraph` command (valuegraph.cli)."""

from valuegraph.client import DEFAULT_URL, Client, ProblemError
from valuegraph.graph import UnsupportedValue, to_graph

__all__ = ["DEFAULT_URL", "Client", "ProblemError", "UnsupportedValue", "to_graph"]
__version__ = "1.0.0"

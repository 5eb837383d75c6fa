"""Run by tests/test_client_install.py with the Python of a fresh virtual environment where only
`pip install ./client` (and micrograd, for its MLP) was done: nothing of the server is importable.

Usage: python fresh_client_check.py BASE_URL SEED_VALUE_PY
"""

import importlib.util
import random
import sys

from micrograd.nn import MLP

import valuegraph
from valuegraph.graph import serialize


def load_seed_value(path):
    spec = importlib.util.spec_from_file_location("seed_value", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def remote_equals_local(client, root):
    _, values = serialize(root)
    data = client.backward(root)
    remote = [float(value.grad).hex() for value in values]
    for value in values:
        value.grad = 0
    root.backward()
    assert float(data).hex() == float(root.data).hex()
    assert remote == [float(value.grad).hex() for value in values], "a grad differs from the local backward"
    return len(values)


def main(base_url, seed_value_path):
    for name in ("flask", "marshmallow", "service"):
        assert importlib.util.find_spec(name) is None, f"{name} is importable: not a fresh environment"
    assert "site-packages" in valuegraph.__file__, valuegraph.__file__
    client = valuegraph.Client(base_url)

    random.seed(0)
    model = MLP(3, [4, 4, 1])
    xs = [[2.0, 3.0, -1.0], [3.0, -1.0, 0.5], [0.5, 1.0, 1.0], [1.0, 1.0, -1.0]]
    ys = [1.0, -1.0, -1.0, 1.0]
    loss = sum((model(x) - y) ** 2 for x, y in zip(xs, ys))
    mlp_nodes = remote_equals_local(client, loss)

    Value = load_seed_value(seed_value_path).Value
    a, b = Value(2.0), Value(3.0)
    e = ((a + b) * a).log() - (a / b) ** 2 + (-b).exp() * a.relu()
    seed_nodes = remote_equals_local(client, e)
    print(f"micrograd MLP loss: {mlp_nodes} nodes; seed graph: {seed_nodes} nodes; every grad bit for bit")


if __name__ == "__main__":
    main(*sys.argv[1:])

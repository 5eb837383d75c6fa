"""The fast path's generated C tables are what their generators (tools/fastpath/) write: edited by hand or
left stale after a change to a generator, this fails; `make fastpath-tables` writes them again."""

import subprocess
import sys

import pytest

from tests.support import ROOT

TABLES = [
    ("tools/fastpath/gen_shortest_tables.py", "service/core/shortest_tables.h"),
    ("tools/fastpath/gen_jsonscan_pow5.py", "service/core/jsonscan_pow5.h"),
]


@pytest.mark.parametrize(("generator", "header"), TABLES)
def test_the_committed_table_is_the_generators(generator, header):
    written = subprocess.run(
        [sys.executable, ROOT / generator], cwd=ROOT, capture_output=True, check=True, timeout=120
    ).stdout
    assert written == (ROOT / header).read_bytes(), f"{header} is stale: run `make fastpath-tables`"
    assert f"python3 {generator} > {header}".encode() in written.splitlines()[0], "the header names its command"

"""What users read holds: every curl example in the README and the docs answers as printed, every
path a page names exists, the README stays short, and no page speaks of "the seed"."""

import re

import orjson
import pytest

from tests.support import ROOT

#: The pages a user reads, with the examples that run as tests.
PAGES = ["README.md", "ARCHITECTURE.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))]
PAGES += ["deploy/README.md", "client/README.md", "bench/README.md"]

EXAMPLE = re.compile(r"```sh\n(curl[^`]*?)```\n```json\n(.*?)\n```", re.S)
HEADER = re.compile(r"-H '(X-Request-ID): ([^']*)'")
#: A path in the repository, as a page names it in backquotes: `service/core/engine.py`, `deploy/`.
NAMED_PATH = re.compile(r"`((?:service|tools|tests|bench|deploy|docs|client)/[\w./-]*)`")


def curl_examples():
    examples = []
    for page in PAGES:
        for command, answer in EXAMPLE.findall((ROOT / page).read_text()):
            path = re.search(r"localhost:8000(/[^\s']*)", command).group(1)
            payload = re.search(r"-d '(.*?)'", command, re.S).group(1)
            examples.append(pytest.param(path, payload, dict(HEADER.findall(command)), answer, id=f"{page}:{path}"))
    assert len(examples) >= 7
    return examples


@pytest.mark.parametrize("path, payload, headers, answer", curl_examples())
def test_every_curl_example_answers_as_printed(client, path, payload, headers, answer):
    response = client.post(path, data=payload, content_type="application/json", headers=headers)
    assert response.data == answer.encode()
    assert orjson.loads(response.data) == orjson.loads(answer)


@pytest.mark.parametrize("page", PAGES)
def test_every_path_a_page_names_exists(page):
    named = set(NAMED_PATH.findall((ROOT / page).read_text()))
    missing = sorted(path for path in named if not (ROOT / path.split("#")[0]).exists())
    assert not missing


def test_architecture_names_the_layers_files():
    text = (ROOT / "ARCHITECTURE.md").read_text()
    for layer in ("core", "contract", "http", "runtime"):
        assert f"service/{layer}/" in text


def test_the_readme_is_read_in_five_minutes():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 150


@pytest.mark.parametrize("page", [*PAGES, "openapi.yaml"])
def test_no_page_speaks_of_the_seed(page):
    """ "Seed" is the team's word; users know the reference `Value` class."""
    text = (ROOT / page).read_text().lower()
    assert "seed" not in text.replace("random seed", "").replace("fixed seed", "")

"""The README's curl examples give the answers the README prints."""

import re

import orjson
import pytest

from tests.support import ROOT

EXAMPLE = re.compile(r"```sh\n(curl[^`]*?)```\n```json\n(.*?)\n```", re.S)
HEADER = re.compile(r"-H '(X-Request-ID): ([^']*)'")


def readme_examples():
    text = (ROOT / "README.md").read_text()
    examples = [
        (
            re.search(r"localhost:8000(/\S*)", command).group(1),
            re.search(r"-d '(.*?)'", command, re.S).group(1),
            dict(HEADER.findall(command)),
            answer,
        )
        for command, answer in EXAMPLE.findall(text)
    ]
    assert len(examples) >= 3
    return examples


@pytest.mark.parametrize("path, payload, headers, answer", readme_examples())
def test_readme_example_answers_as_printed(client, path, payload, headers, answer):
    response = client.post(path, data=payload, content_type="application/json", headers=headers)
    assert response.data == answer.encode()
    assert orjson.loads(response.data) == orjson.loads(answer)

"""The registry of problem types (service/http/problem_types.py) is the one place their wording lives:
every problem type the service can answer has an entry, every title in the code is the entry's, and
every example answers as its page prints it, on both paths."""

import ast
import json
import re

import pytest

from service.core.deadline import DeadlineExceeded
from service.http.problem_types import EXAMPLE_REQUEST_ID, PROBLEM_TYPES, title
from service.http.problems import from_deadline_exceeded
from service.runtime.config import DEADLINE_SECONDS, SETTINGS
from tests.support import ROOT

SOURCES = sorted((ROOT / "service").rglob("*.py"))
#: The exceptions of service/core whose first argument is a problem type's name (`kind`).
KINDED_ERRORS = {"GraphError", "ExpressionError"}


def named_in_the_code() -> set[str]:
    """Every problem type the service can answer: `/problems/NAME` written anywhere, and the kinds its
    core raises, which the web layer answers as `/problems/{kind}`."""
    names = set()
    for path in SOURCES:
        text = path.read_text()
        names |= set(re.findall(r"/problems/([a-z0-9-]+)", text))
        for node in ast.walk(ast.parse(text)):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) in KINDED_ERRORS
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names


def test_every_problem_type_the_service_names_has_an_entry():
    named = named_in_the_code()
    assert {"invalid-json", "invalid-graph", "numeric-error", "invalid-expression", "deadline-exceeded"} <= named
    assert named <= PROBLEM_TYPES.keys(), f"add {sorted(named - PROBLEM_TYPES.keys())} to service/http/problem_types.py"


def literal_problems() -> list[tuple[int, str, str]]:
    """(status, type, title) of every `Problem(NNN, "/problems/...", "title", ...)` written with literals."""
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "Problem"
                and len(node.args) >= 3
                and all(isinstance(arg, ast.Constant) for arg in node.args[:3])
                and str(node.args[1].value).startswith("/problems/")
            ):
                found.append(tuple(arg.value for arg in node.args[:3]))
    return found


def test_a_title_written_in_the_code_is_the_registrys():
    found = literal_problems()
    assert "/problems/invalid-json" in {type_ for _, type_, _ in found}, "the scan no longer sees the code's problems"
    for status, type_, written in found:
        assert written == title(type_.removeprefix("/problems/"), status)


def test_every_entry_says_when_what_to_do_and_shows_an_example():
    for name, problem in PROBLEM_TYPES.items():
        assert problem.uri == f"/problems/{name}"
        assert problem.title and problem.when and problem.what_to_do and problem.example
        assert problem.example.answer["type"] == problem.uri
        assert problem.example.answer["status"] in problem.statuses


def config_of(settings: dict) -> dict:
    """The app's config for environment variables, read as the service reads them."""
    by_variable = {setting.variable: setting for setting in SETTINGS}
    return {
        by_variable[variable].key: by_variable[variable].parse(variable, str(value))
        for variable, value in settings.items()
    }


@pytest.mark.parametrize(
    "name", [name for name, problem in PROBLEM_TYPES.items() if problem.example and problem.example.path]
)
def test_each_example_answers_as_its_page_prints_it(make_app, name):
    example = PROBLEM_TYPES[name].example
    client = make_app(config_of(example.settings)).test_client()
    body = example.body if isinstance(example.body, str) else json.dumps(example.body)
    response = client.post(
        example.path, data=body, content_type="application/json", headers={"X-Request-ID": EXAMPLE_REQUEST_ID}
    )
    assert response.status_code == example.answer["status"]
    assert response.get_json() == example.answer


def test_the_deadlines_example_is_what_the_service_answers_past_the_default_deadline():
    """No small request runs past the deadline, so its page shows the answer alone, as problems.py makes it."""
    example = PROBLEM_TYPES["deadline-exceeded"].example
    assert example.path is None
    made = from_deadline_exceeded(DeadlineExceeded(DEADLINE_SECONDS.default)).body
    assert {**made, "request_id": EXAMPLE_REQUEST_ID} == example.answer

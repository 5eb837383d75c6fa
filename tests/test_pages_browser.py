"""The pages in a real headless Chromium (tests/browser.py), against the real gunicorn (`live_server`):
the playground's numbers are the API's, as the service wrote them; its errors stand next to the input at
fault; the landing page and the interactive docs render with no failed request, no console error and
no request leaving this machine. Screenshots are saved under each test's tmp_path."""

import json

import pytest
import requests

from service.contract.examples import EXAMPLE_GRAPH
from service.core import graphs, render
from tests.browser import (
    chromium,
    console_errors,
    failed_requests,
    full_page_screenshot,
    network_events,
    off_machine,
    requested_urls,
)
from tools.server import gunicorn_server

pytestmark = pytest.mark.slow

EXPRESSION = "log((a + b) * a)"
TIMEOUT = 20


@pytest.fixture
def browser(tmp_path):
    with chromium(tmp_path / "profile") as driver:
        yield driver


def wait(driver, condition, timeout=TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def find(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def find_all(driver, selector):
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def type_into(element, text):
    element.clear()
    element.send_keys(text)


def table_numbers(driver) -> list[tuple[str, str, str]]:
    """(node, data, grad) of each row of the playground's table, as displayed."""
    return [
        (
            row.find_element("css selector", ".node-id").text,
            row.find_element("css selector", ".data").text,
            row.find_element("css selector", ".grad").text,
        )
        for row in find_all(driver, "#nodes-table tbody tr")
    ]


def numbers_as_written(answer_text: str) -> list[tuple[str, str, str]]:
    """(node, data, grad) of each node of an API answer, each number the text the service wrote."""
    answer = json.loads(answer_text, parse_float=str, parse_int=str)
    return [(str(node["id"]), node["data"], node["grad"]) for node in answer["nodes"]]


def evaluate_in_playground(driver):
    find(driver, "#evaluate").click()
    wait(
        driver,
        lambda d: (
            find(d, "#evaluate").is_enabled()
            and (find_all(d, "#nodes-table tbody tr") or find(d, "#problem").is_displayed())
        ),
    )


def test_the_playground_shows_the_apis_numbers_for_the_reference_example(browser, live_server, tmp_path):
    browser.get(live_server + "/playground")
    type_into(find(browser, "#expression"), EXPRESSION)
    for name, value in (("a", "2"), ("b", "3")):
        type_into(find(browser, f'.input-row[data-name="{name}"] .input-value'), value)
    evaluate_in_playground(browser)
    shown = table_numbers(browser)
    full_page_screenshot(browser, tmp_path / "playground.png")

    api = requests.post(
        live_server + "/v1/expression",
        data='{"expression": "log((a + b) * a)", "inputs": {"a": 2, "b": 3}}',
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert api.status_code == 200
    assert shown == numbers_as_written(api.text)
    assert [node for node, *_ in shown] == ["a", "b", "c", "d", "e"]
    assert "2.302585092994046" in find(browser, "#summary").text


def test_the_inputs_follow_the_names_an_expression_uses_and_only_those(browser, live_server):
    """A row for each name the expression uses, none for an exponent's letter or an attribute."""
    browser.get(live_server + "/playground")
    type_into(find(browser, "#expression"), "2e3 * rate + log(x1) - 1.5E-2 * a.data")

    def names(driver):
        rows = find_all(driver, ".input-row .input-name")
        return sorted(row.get_attribute("value") for row in rows)

    expected = ["a", "b", "rate", "x1"]  # b keeps the value the example gave it
    try:
        wait(browser, lambda d: names(d) == expected)
    finally:
        assert names(browser) == expected


def test_the_playground_draws_the_graph_or_says_why_it_cannot(browser, live_server, tmp_path):
    """The picture is Graphviz's SVG where the service draws one; else the page says it is unavailable
    and the table stays."""
    browser.get(live_server + "/playground")
    evaluate_in_playground(browser)
    svg = requests.post(
        live_server + "/v1/render?format=svg",
        json=EXAMPLE_GRAPH,
        headers={"Accept": "image/svg+xml, application/problem+json"},
        timeout=10,
    )
    expression = requests.post(
        live_server + "/v1/expression", json={"expression": EXPRESSION, "inputs": {"a": 2.0, "b": 3.0}}, timeout=10
    ).json()
    full_page_screenshot(browser, tmp_path / "picture.png")
    if svg.ok and "op" in expression["nodes"][0]:
        groups = wait(browser, lambda d: find_all(d, "#picture svg g.node"))
        groups[0].click()
        assert find_all(browser, "#picture g.node.selected")
    else:
        assert "The picture is unavailable" in find(browser, "#picture").text
        assert len(find_all(browser, "#nodes-table tbody tr")) == 5


def test_a_node_shows_its_local_gradients_and_what_flowed_back(browser, live_server, tmp_path):
    """Graph JSON of the reference example; node d = c * a: its local gradients are a's and c's data, and
    what it sent back is each times d.grad, as the engine computed them."""
    browser.get(live_server + "/playground")
    find(browser, "#tab-graph").click()
    type_into(find(browser, "#graph"), json.dumps(EXAMPLE_GRAPH))
    evaluate_in_playground(browser)
    [row] = [
        row
        for row in find_all(browser, "#nodes-table tbody tr")
        if row.find_element("css selector", ".node-id").text == "d"
    ]
    row.click()
    detail = wait(browser, lambda d: find(d, "#detail-body table"))
    full_page_screenshot(browser, tmp_path / "detail.png")
    cells = [
        [cell.text for cell in line.find_elements("css selector", "td")]
        for line in detail.find_elements("css selector", "tbody tr")
    ]

    _, values = graphs.evaluate(EXAMPLE_GRAPH["nodes"])
    d, c, a = values[3], values[2], values[0]
    assert cells == [
        ["c", repr(c.data), repr(d._local_grads[0]), repr(render.carried_gradient(d, 0, c))],
        ["a", repr(a.data), repr(d._local_grads[1]), repr(render.carried_gradient(d, 1, a))],
    ]
    assert "Where its grad came from" in find(browser, "#detail").text


def test_the_playground_shows_each_error_next_to_the_input_at_fault(browser, live_server, tmp_path):
    browser.get(live_server + "/playground")
    type_into(find(browser, "#expression"), "log(a) + c")
    evaluate_in_playground(browser)
    assert "'c' is not an input" in find(browser, "#expression-error").text
    assert "column 10" in find(browser, "#expression-error").text
    assert find(browser, "#expression").get_attribute("aria-invalid") == "true"
    assert "The expression is not valid" in find(browser, "#problem").text

    type_into(find(browser, "#expression"), "a * b")
    type_into(find(browser, '.input-row[data-name="a"] .input-value'), "two")
    evaluate_in_playground(browser)
    assert "number" in find(browser, '.input-row[data-name="a"] .field-error').text.lower()
    assert find(browser, "#expression-error").text == ""

    find(browser, "#tab-graph").click()
    type_into(find(browser, "#graph"), '{"nodes": [{"id": "x", "op": "log", "children": ["y"]}]}')
    evaluate_in_playground(browser)
    assert "node x · nodes[0] · children[0]: No node has the id 'y'." in find(browser, "#graph-error").text
    full_page_screenshot(browser, tmp_path / "errors.png")


@pytest.mark.parametrize(
    "path, ready", [("/", ".hero"), ("/docs", "#swagger-ui .opblock"), ("/problems/numeric-error", "h1")]
)
def test_a_page_renders_with_no_failed_request_no_console_error_and_nothing_from_elsewhere(
    browser, live_server, tmp_path, path, ready
):
    browser.get(live_server + path)
    wait(browser, lambda d: find_all(d, ready))
    full_page_screenshot(browser, tmp_path / "page.png")
    events = network_events(browser, live_server)
    urls = requested_urls(events)
    assert live_server + path in urls
    assert not failed_requests(events)
    assert not off_machine(urls)
    assert not console_errors(browser)
    for origin in find_all(browser, ".origin"):
        assert origin.text == live_server  # the address the browser reached, written by origin.js


def test_a_page_cannot_load_from_another_site_and_this_test_would_see_it_try(browser, live_server):
    """The checks above can fail: a script that asks another site (a reserved name that never resolves)
    is refused by the page's Content-Security-Policy, the refusal is a console error, and the attempt is
    among the requests the test reads."""
    browser.get(live_server + "/")
    wait(browser, lambda d: find_all(d, ".hero"))
    network_events(browser, live_server)
    browser.execute_script(
        "fetch('http://other-site.invalid/data').catch(() => {});"
        "const image = new Image(); image.src = 'http://other-site.invalid/picture.png'; document.body.append(image);"
    )
    errors = wait(browser, lambda d: console_errors(d) or None)
    assert any("Content Security Policy" in error for error in errors), errors
    events = network_events(browser, live_server)
    assert off_machine(requested_urls(events)) == ["http://other-site.invalid/picture.png"]
    assert failed_requests(events) == ["http://other-site.invalid/picture.png: csp"]


def test_with_tokens_on_the_playground_opens_and_sends_the_token_typed_in_it(browser, tmp_path):
    with gunicorn_server(tmp_path, VALUEGRAPH_TOKENS="playground-secret") as server:
        browser.get(server.base + "/playground")
        evaluate_in_playground(browser)
        assert find(browser, "#token-details").get_attribute("open") is not None
        assert "bearer token" in find(browser, "#token-error").text.lower()
        type_into(find(browser, "#token"), "playground-secret")
        evaluate_in_playground(browser)
        assert [node for node, *_ in table_numbers(browser)] == ["a", "b", "c", "d", "e"]
        assert find(browser, "#token-error").text == ""

"""Headless Chromium for the page tests: Debian's `chromium` and `chromium-driver` (`make system-tools`)
driven by selenium, cut off from every address but this machine's loopback, with what it requested
and logged kept for the tests to check."""

import shutil
from contextlib import contextmanager
from urllib.parse import urlsplit

import orjson
import pytest

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")

#: No background traffic, no first-run pages; every connection but to 127.0.0.1 goes through a proxy
#: address where nothing listens, so a request to another site fails instead of leaving the machine.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-default-apps",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>;127.0.0.1",
)


def skip_without_a_browser() -> None:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "no headless browser: Debian's chromium and chromium-driver are not installed "
            "(`make system-tools` installs them where apt-get can)"
        )


@contextmanager
def chromium(profile_directory, width: int = 1400, height: int = 1000):
    """A headless Chromium with a fresh profile in `profile_directory`, driven by the system chromedriver."""
    skip_without_a_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_directory}")
    options.add_argument(f"--window-size={width},{height}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def network_events(driver, origin: str) -> list[dict]:
    """The DevTools network events since the last call of the requests made by pages of `origin`, or for
    them (the browser's own pages, such as its new-tab page, make requests of their own): {"method", "params"}."""
    events = [
        message
        for entry in driver.get_log("performance")
        if (message := orjson.loads(entry["message"])["message"])["method"].startswith("Network.")
    ]
    ours = {
        event["params"]["requestId"]
        for event in events
        if event["method"] == "Network.requestWillBeSent"
        and (
            event["params"].get("documentURL", "").startswith(origin)
            or event["params"]["request"]["url"].startswith(origin)
        )
    }
    return [event for event in events if event["params"].get("requestId") in ours]


def requested_urls(events: list[dict]) -> list[str]:
    return [event["params"]["request"]["url"] for event in events if event["method"] == "Network.requestWillBeSent"]


def failed_requests(events: list[dict]) -> list[str]:
    """Requests that failed, or were answered with a 4xx or 5xx."""
    urls = {
        event["params"]["requestId"]: event["params"]["request"]["url"]
        for event in events
        if "request" in event["params"]
    }
    failed = [
        f"{urls[event['params']['requestId']]}: {event['params'].get('errorText') or event['params'].get('blockedReason')}"
        for event in events
        if event["method"] == "Network.loadingFailed"
    ]
    failed += [
        f"{event['params']['response']['url']}: {event['params']['response']['status']}"
        for event in events
        if event["method"] == "Network.responseReceived" and event["params"]["response"]["status"] >= 400
    ]
    return failed


def off_machine(urls: list[str]) -> list[str]:
    """The URLs that would leave this machine: any but 127.0.0.1's (and the page's own data: URLs)."""
    return [url for url in urls if not url.startswith("data:") and urlsplit(url).hostname != "127.0.0.1"]


def full_page_screenshot(driver, path) -> None:
    """A screenshot of the whole page, not only the window: the window is made as tall as the page."""
    width = driver.get_window_size()["width"]
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, height + 120)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))


def console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]

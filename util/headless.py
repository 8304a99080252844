"""Debian's headless Chromium, driven by playwright, for the sky viewer's tests and benchmark.

playwright's own browser download is never used (it fails offline): the system Chromium runs it, with
software WebGL (SwiftShader) and every host but 127.0.0.1 unresolvable, so a page that tried to reach
another host would fail loudly rather than quietly depend on the network. playwright is imported only
here, when a browser is wanted.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Iterator

CHROMIUM = os.environ.get("SKYTRANS_CHROMIUM", "/usr/bin/chromium")
FLAGS = ("--headless=new", "--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-default-apps", "--no-first-run",
         "--disable-quic")


def browser_missing() -> str | None:
    """Why no browser test can run here, or None when Debian's Chromium and playwright are both there."""
    if not (os.path.isfile(CHROMIUM) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium; .ci/run installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; it drives the system Chromium)"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless system Chromium (playwright Browser), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=list(FLAGS), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageLoad:
    """A viewer page opened in the browser: every request it made (seconds after the navigation began,
    URL, HTTP status or the failure), the console and page errors, and the viewer's own state."""

    page: object
    started: float
    requests: list[list] = field(default_factory=list)  # [seconds, url, status or error text]
    console: list[str] = field(default_factory=list)

    def viewer(self) -> dict:
        """window.skytransViewer's timings (ms after navigation start), layer statuses, blocked requests,
        errors, and the navigation's load event (ms)."""
        return self.page.evaluate(
            "() => { const v = window.skytransViewer || {}; const n = performance.getEntriesByType('navigation')[0];"
            " return {state: document.documentElement.dataset.viewer || null, timings: v.timings || {},"
            " statuses: v.statuses || null, blocked: v.blocked || [], errors: v.errors || [],"
            " load: n ? n.loadEventStart : null}; }")

    def wait(self, key: str, timeout_s: float) -> dict:
        """Poll until the viewer's `key` is set ('ready': every layer added; 'firstSky': the base layer drawn).
        (Polled from here: the page's Content-Security-Policy forbids the eval that wait_for_function uses.)"""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.viewer()
            done = state["state"] is not None if key == "ready" else key in state["timings"]
            if done or time.monotonic() > deadline:
                return state
            self.page.wait_for_timeout(50)

    def wait_for(self, predicate, timeout_s: float = 30.0) -> bool:
        """Poll `predicate()` (on this side) until it is true or the time is up; returns its last value."""
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                return False
            self.page.wait_for_timeout(100)
        return True

    def wait_still(self, timeout_s: float = 30.0, interval_ms: int = 700) -> bool:
        """Wait until the sky stops changing (tiles fetched are read into the GPU some time after they
        arrive): two small copies of the canvas `interval_ms` apart are the same."""
        thumbnail = ("() => { const c = window.skytransViewer.aladin.view.getRawPixelsCanvas(96, 72);"
                     " return Array.from(c.getContext('2d').getImageData(0, 0, 96, 72).data).join(','); }")
        deadline = time.monotonic() + timeout_s
        last = self.page.evaluate(thumbnail)
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(interval_ms)
            now = self.page.evaluate(thumbnail)
            if now == last:
                return True
            last = now
        return False

    def settle(self, quiet_s: float = 0.8, timeout_s: float = 20.0) -> None:
        """Wait until no request has started for `quiet_s` (the tiles of the current view are in)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            last = self.requests[-1][0] if self.requests else 0.0
            if time.monotonic() - self.started - last > quiet_s:
                return
            self.page.wait_for_timeout(100)


def open_page(browser, url: str, width: int = 1280, height: int = 760) -> PageLoad:
    """Open `url` in a new page of `browser`, recording its requests and console from the start."""
    page = browser.new_page(viewport={"width": width, "height": height})
    load = PageLoad(page, time.monotonic())
    by_request = {}

    def started(request) -> None:
        entry = [time.monotonic() - load.started, request.url, None]
        by_request[id(request)] = entry
        load.requests.append(entry)

    def finished(response) -> None:
        entry = by_request.get(id(response.request))
        if entry is not None:
            entry[2] = response.status

    def failed(request) -> None:
        entry = by_request.get(id(request))
        if entry is not None:
            entry[2] = f"failed: {request.failure}"

    page.on("request", started)
    page.on("response", finished)
    page.on("requestfailed", failed)
    page.on("console", lambda message: load.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: load.console.append(f"pageerror: {error}"))
    load.started = time.monotonic()
    page.goto(url)
    return load

"""Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
no websocket library, no driver download): open a page at a given window size, wait for a
condition, read what a script computes in it.

Debian's `chromium` (installed by `.ci/run`); tests that need it skip without it, unless
CHECKER_REQUIRE_BROWSER=1 (CI sets it) makes its absence a failure.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest

BINARIES = ("chromium", "chromium-browser", "google-chrome")


def chromium_or_skip() -> str:
    """The browser's path; skips the test without one (fails it under
    CHECKER_REQUIRE_BROWSER=1)."""
    found = next((path for name in BINARIES if (path := shutil.which(name))), None)
    if found is None:
        reason = f"no headless browser ({', '.join(BINARIES)}): apt-get install chromium"
        if os.environ.get("CHECKER_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


class Page:
    """One tab, attached over the protocol."""

    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def evaluate(self, expression: str) -> Any:
        """The JSON value of `expression` in the page (awaited if it is a promise)."""
        result = self.browser.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self.session)
        if "exceptionDetails" in result:
            raise AssertionError(f"the page threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0) -> Any:
        """Poll `expression` until it is truthy (its value) or `timeout` seconds pass."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout:.0f} s: {expression}")
            time.sleep(0.1)


class Browser:
    """A headless Chromium process and its protocol pipe."""

    def __init__(self, binary: str) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="checker-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Above 4, so that putting them on 3 and 4 cannot close one of them.
        to_browser_r, from_browser_w = (_above_four(to_browser_r), _above_four(from_browser_w))
        # The protocol reads fd 3 and writes fd 4 in the browser: bash puts them there (sh
        # takes one-digit descriptors only).
        remap = (f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w} '
                 f'{to_browser_r}<&- {from_browser_w}>&-')
        self.process = subprocess.Popen(
            ["bash", "-c", remap, "bash", binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--hide-scrollbars", "--remote-debugging-pipe", "--no-first-run",
             "--no-default-browser-check", f"--user-data-dir={self._profile.name}",
             "about:blank"],
            pass_fds=(to_browser_r, from_browser_w), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._next_id = 0
        self._buffer = b""

    def call(self, method: str, params: dict[str, Any] | None = None, *,
             session: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
        """Send a command and return its result (events met meanwhile are dropped)."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method,
                                   "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError("the browser stopped answering")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise AssertionError("the browser closed its pipe")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return dict(json.loads(message))

    @contextmanager
    def page(self, url: str, width: int = 1280, height: int = 900) -> Iterator[Page]:
        """A tab of `width` x `height` CSS pixels showing `url` once its load event fired."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target,
                                                      "flatten": True})["sessionId"]
        page = Page(self, session)
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session=session)
        self.call("Page.navigate", {"url": url}, session=session)
        page.wait_for("document.readyState === 'complete'")
        try:
            yield page
        finally:
            self.call("Target.closeTarget", {"targetId": target})

    def close(self) -> None:
        """End the browser and remove its profile."""
        with suppress(AssertionError, OSError):
            self.call("Browser.close", timeout=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()


def _above_four(fd: int) -> int:
    """`fd` moved to a descriptor number above 4 (the old one closed)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return moved


@contextmanager
def browser() -> Iterator[Browser]:
    """A headless Chromium for the block (the test skips without one)."""
    running = Browser(chromium_or_skip())
    try:
        yield running
    finally:
        running.close()


OVERFLOW = """(() => {
    const root = document.documentElement;
    const wide = [...document.querySelectorAll('body *')]
        .filter(el => el.getBoundingClientRect().right > root.clientWidth + 1)
        .filter(el => !el.closest('[data-scrolls]'))
        .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                   + (el.className && typeof el.className === 'string'
                      ? '.' + el.className.split(' ')[0] : ''));
    return {page_scrolls: root.scrollWidth > root.clientWidth, wide: wide.slice(0, 10)};
})()"""
"""What sticks out past the window's right edge (elements inside a box marked
`data-scrolls`, which scrolls on its own, excepted)."""

"""Headless Chromium for the website's tests, through ChromeDriver (Selenium).

Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/ensure-chromium``
installs them in CI). Without them a browser test is skipped, or fails when
``CI=true``, like the tests of the other real parts.

:class:`Browser` opens pages with the browser's console and network logs on,
so a test can say which requests a page made (none may leave the machine) and
whether it logged an error.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from tests._support import backend_unavailable

PAGE_TIMEOUT_S = 30.0
# Schemes that never leave the machine.
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome", "chrome-extension"})


def _executables() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        backend_unavailable(
            "Chromium and ChromeDriver (Debian: apt-get install chromium chromium-driver;"
            " .ci/ensure-chromium does it)"
        )
    assert chromium is not None and driver is not None
    return chromium, driver


@dataclass
class PageLoad:
    """What one page did while it loaded: its requests and its console messages."""

    urls: list[str] = field(default_factory=list)
    console: list[dict[str, Any]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def foreign(self, host: str) -> list[str]:
        """Requests that went anywhere but ``host`` (host:port) or a local scheme."""
        out = []
        for url in self.urls:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.netloc != host:
                out.append(url)
        return out

    def errors(self) -> list[str]:
        return [m["message"] for m in self.console if m.get("level") == "SEVERE"]


class Browser:
    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver

    def _log(self, kind: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self.driver.get_log(kind)  # type: ignore[no-untyped-call]
        return entries

    def _drain(self) -> PageLoad:
        load = PageLoad(console=list(self._log("browser")))
        for entry in self._log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                load.urls.append(params["request"]["url"])
            elif message["method"] == "Network.loadingFailed" and not params.get("canceled"):
                load.failed.append(f"{params.get('errorText')} ({params.get('type')})")
        return load

    def open(self, url: str, *, width: int = 1280, height: int = 900) -> PageLoad:
        """Load ``url`` at the given window size; wait for the load event; return its log."""
        self._drain()  # whatever an earlier page left behind
        self.driver.set_window_size(width, height)
        self.driver.get(url)
        WebDriverWait(self.driver, PAGE_TIMEOUT_S).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        return self._drain()

    def wait_for(self, script: str, *, timeout_s: float = PAGE_TIMEOUT_S) -> Any:
        """Wait until ``script`` (a JS expression, ``return`` added) is truthy; return it."""
        return WebDriverWait(self.driver, timeout_s).until(
            lambda d: d.execute_script(f"return {script}")
        )

    def more_log(self) -> PageLoad:
        """Requests and messages since the last call (e.g. tiles loaded after the load event)."""
        return self._drain()

    def screenshot(self, path: Path, *, max_height: int = 2400) -> None:
        """A PNG of the page at the current width, as tall as its content up to ``max_height``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        width = self.driver.get_window_size()["width"]
        height = self.driver.execute_script(
            "return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)"
        )
        self.driver.set_window_size(width, min(max(int(height) + 140, 400), max_height))
        self.driver.save_screenshot(str(path))

    def page_width(self) -> int:
        """The document's scroll width in CSS pixels (wider than the window: sideways scrolling)."""
        width: int = self.driver.execute_script("return document.documentElement.scrollWidth")
        return width


@contextmanager
def chromium() -> Iterator[Browser]:
    binary, driver_path = _executables()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        # No call home of the browser's own (updates, safe browsing, field trials).
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-features=OptimizationHints,Translate,MediaRouter",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(PAGE_TIMEOUT_S)
    try:
        yield Browser(driver)
    finally:
        driver.quit()

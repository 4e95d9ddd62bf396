"""Headless Chromium for the site tests, driven through the DevTools protocol over a pipe.

No browser-automation package is needed: Chromium started with ``--remote-debugging-pipe``
reads JSON commands on file descriptor 3 and writes replies and events on descriptor 4,
each message ending in a NUL byte. The browser runs with a fresh profile, every background
service off, and all name resolution and proxying pointed at nothing, so a page that tries
to reach the network fails -- and the test sees the attempt in the ``Network`` events.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SITE = ROOT / "outputs" / "html"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

CHROMIUM_FLAGS = [
    "--headless",
    "--remote-debugging-pipe",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--no-first-run",
    "--no-default-browser-check",
    "--mute-audio",
    "--hide-scrollbars",
    # Offline: no host name resolves, and anything not on loopback goes to a dead proxy.
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",
    "--window-size=1280,900",
]


class BrowserError(RuntimeError):
    """Chromium closed, timed out, or answered a command with an error."""


class Chromium:
    """A headless Chromium and one tab, spoken to in DevTools-protocol messages."""

    def __init__(self, binary: str, profile: Path) -> None:
        cmd_read, self._cmd_write = os.pipe()
        self._reply_read, reply_write = os.pipe()
        self.log_path = profile / "chromium.log"
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        argv = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile / 'user-data'}", "about:blank"]
        self.pid = os.posix_spawn(
            binary,
            argv,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, cmd_read, 3),
                (os.POSIX_SPAWN_DUP2, reply_write, 4),
                (os.POSIX_SPAWN_DUP2, log, 1),
                (os.POSIX_SPAWN_DUP2, log, 2),
            ],
        )
        for fd in (cmd_read, reply_write, log):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self.session: str | None = None
        self.loader: str | None = None
        target = self.call("Target.createTarget", {"url": "about:blank"}, session=False)
        self.session = self.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True},
            session=False,
        )["sessionId"]
        for domain in ("Page", "Network", "Runtime", "Log"):
            self.call(f"{domain}.enable")

    # -- protocol ------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._reply_read], [], [], remaining)
            if ready:
                chunk = os.read(self._reply_read, 1 << 20)
                if not chunk:
                    raise BrowserError(f"Chromium exited; see {self.log_path}")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, *, session: bool = True,
             timeout: float = 30.0) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def wait_for_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event["method"] == method and not event.get("_seen"):
                    event["_seen"] = True
                    return event
            event = self._read_message(deadline)
            if "method" in event:
                self.events.append(event)

    def evaluate(self, expression: str, timeout: float = 30.0) -> Any:
        """Value of a JavaScript expression (awaited if it is a promise)."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True,
             "timeout": int(timeout * 1000)},
            timeout=timeout + 5,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    # -- pages ---------------------------------------------------------------------
    def open(self, url: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Load ``url``, wait for its load event, and return the network events of this load.

        Events still arriving from an earlier page are told apart by their ``loaderId``.
        """
        self.events.clear()
        loader = self.call("Page.navigate", {"url": url})["loaderId"]
        self.wait_for_event("Page.loadEventFired", timeout)
        self.loader = loader
        return self.network_events()

    def network_events(self) -> list[dict[str, Any]]:
        """``Network`` events of the current page's requests (the page itself included)."""
        mine = {
            e["params"]["requestId"] for e in self.events
            if e["method"] == "Network.requestWillBeSent"
            and e["params"].get("loaderId") == self.loader
        }
        return [e for e in self.events
                if e["method"].startswith("Network.") and e["params"].get("requestId") in mine]

    def set_width(self, width: int, height: int = 900) -> None:
        """Emulate a screen ``width`` CSS pixels wide (a phone below 600 px: touch, mobile)."""
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600,
        })

    def screenshot(self, path: Path) -> None:
        """Save what the viewport shows as a PNG."""
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        path.write_bytes(base64.b64decode(shot["data"]))

    def press_enter(self) -> None:
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", {
                "type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                "text": "\r" if kind == "keyDown" else "",
            })

    def wait_until(self, expression: str, timeout: float = 20.0) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value (or fail)."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise BrowserError(f"timed out waiting for {expression!r}")
            time.sleep(0.1)

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False, timeout=10)
        except (BrowserError, OSError):
            pass
        os.close(self._cmd_write)
        os.close(self._reply_read)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                return
            time.sleep(0.1)
        os.kill(self.pid, 9)
        os.waitpid(self.pid, 0)


def chromium_binary() -> str | None:
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@pytest.fixture(scope="session")
def site() -> Path:
    """The built site; a missing build is a failure, not a skip."""
    if not (SITE / "index.html").is_file():
        pytest.fail(f"{SITE / 'index.html'} does not exist: build the site first with `make html`")
    return SITE


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    """One headless Chromium for the whole session; missing Chromium is a failure."""
    binary = chromium_binary()
    if binary is None:
        pytest.fail(
            "Chromium not found (looked for $CHROMIUM, " + ", ".join(CHROMIUM_NAMES) + "); "
            "install it: apt-get install -y chromium chromium-driver"
        )
    chrome = Chromium(binary, tmp_path_factory.mktemp("chromium"))
    try:
        yield chrome
    finally:
        chrome.close()

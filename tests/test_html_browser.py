"""The leaderboard's HTML page in a real headless browser (Debian's chromium).

Chromium is driven through the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no extra Python package is needed.
Skipped when chromium is absent, failed instead when MRBENCH_REQUIRE_BROWSER=1.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from mrbench.leaderboard.render import render_group
from mrbench.leaderboard.submission import DatasetRef, Submission
from mrbench.leaderboard.table import Group, make_row

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    message = "no chromium found (apt-get install chromium) for the headless HTML test"
    if os.environ.get("MRBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(message + " and MRBENCH_REQUIRE_BROWSER=1")
    pytest.skip(message)


class Browser:
    """A headless chromium speaking CDP over a pipe pair."""

    def __init__(self, binary: str, profile: Path) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        # move the child's ends above 4 so that dup2 onto fds 3 and 4 in the child is safe
        high_r, high_w = os.dup2(to_child_r, 200), os.dup2(from_child_w, 201)
        os.close(to_child_r)
        os.close(from_child_w)

        def remap() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--remote-debugging-pipe", f"--user-data-dir={profile}",
            "--window-size=1400,900", "about:blank",
        ]
        self.proc = subprocess.Popen(
            [binary, *flags], close_fds=False, preexec_fn=remap,  # fds made by Python are close-on-exec
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(high_r)
        os.close(high_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise TimeoutError("no answer from the browser")
            ready, _, _ = select.select([self._from_child], [], [], timeout)
            if ready:
                chunk = os.read(self._from_child, 1 << 16)
                if not chunk:
                    raise RuntimeError("the browser closed the pipe")
                self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, timeout: float = 30.0) -> dict[str, Any]:
        for index, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(index)
        deadline = time.monotonic() + timeout
        while True:
            event = self._read_message(deadline)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (RuntimeError, TimeoutError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        os.close(self._from_child)


def _group() -> Group:
    ref = DatasetRef(name="toy", root=Path("."), title="Toy dataset", columns="qvhighlights", clip_len=2.0)
    group = Group(ref, "val")
    table = {  # entry -> per seed (standard mAP, spurious mAP, R1@0.5)
        "alpha": [(30.0, 10.0, 50.0), (32.0, 12.0, 52.0)],
        "bravo": [(45.0, 3.0, 20.0), (47.0, 4.0, 22.0)],
        "charlie": [(10.0, 10.0, 70.0)],
    }
    for entry, seeds in table.items():
        sub = Submission(
            entry_id=entry, root=Path(entry), name=f"Model {entry}", model=entry, kind="model",
            features=("clip_features",), dataset="toy", split="val", seeds=tuple(range(len(seeds))),
            date="2026-11-27", submitted_by="tests", test_answers_used=False, self_scored=False,
        )
        per_seed = {
            s: {"MR-full-mAP": m, "Spurious-mAP": sp, "MR-full-R1@0.5": r1, "Ratio-mAP": m / sp}
            for s, (m, sp, r1) in enumerate(seeds)
        }
        group.rows.append(make_row(sub, per_seed))
    return group


def _column_texts(browser: Browser, session: str, column: int) -> list[str]:
    expr = (f"Array.from(document.querySelectorAll('#leaderboard tbody tr'))"
            f".map(r => r.cells[{column}].textContent)")
    result = browser.send("Runtime.evaluate", {"expression": expr, "returnByValue": True}, session)
    return result["result"]["value"]


def _click_header(browser: Browser, session: str, column: int) -> None:
    expr = (f"JSON.stringify(document.querySelectorAll('#leaderboard thead th')[{column}]"
            ".getBoundingClientRect())")
    rect = json.loads(browser.send("Runtime.evaluate", {"expression": expr, "returnByValue": True},
                                   session)["result"]["value"])
    x, y = rect["x"] + rect["width"] / 2, rect["y"] + rect["height"] / 2
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent",
                     {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}, session)


def test_html_sorts_in_headless_chromium(tmp_path: Path) -> None:
    binary = find_browser()
    paths = render_group(_group(), tmp_path / "out")
    page = next(p for p in paths if p.name == "leaderboard.html")
    browser = Browser(binary, tmp_path / "profile")
    try:
        targets = browser.send("Target.getTargets")["targetInfos"]
        page_target = next(t for t in targets if t["type"] == "page")
        session = browser.send("Target.attachToTarget",
                               {"targetId": page_target["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.send(f"{domain}.enable", session=session)
        browser.send("Page.navigate", {"url": page.resolve().as_uri()}, session)
        browser.wait_event("Page.loadEventFired")

        # rows come sorted by mAP (descending): bravo 46, alpha 31, charlie 10
        assert _column_texts(browser, session, 1) == ["Model bravo", "Model alpha", "Model charlie"]
        headers = browser.send("Runtime.evaluate", {
            "expression": "Array.from(document.querySelectorAll('#leaderboard thead th')).map(t => t.textContent)",
            "returnByValue": True}, session)["result"]["value"]
        r1 = headers.index("R1@0.5 ↑")
        _click_header(browser, session, r1)  # first click: descending
        assert _column_texts(browser, session, 1) == ["Model charlie", "Model alpha", "Model bravo"]
        _click_header(browser, session, r1)  # second click: ascending
        assert _column_texts(browser, session, 1) == ["Model bravo", "Model alpha", "Model charlie"]
        assert _column_texts(browser, session, r1) == ["21.00 ± 1.41", "51.00 ± 1.41", "70.00"]
        _click_header(browser, session, 1)  # text column: ascending by name
        assert _column_texts(browser, session, 1) == ["Model alpha", "Model bravo", "Model charlie"]

        images = browser.send("Runtime.evaluate", {
            "expression": "Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)",
            "returnByValue": True}, session)["result"]["value"]
        assert images == [True, True]

        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session)
        screenshot = tmp_path / "leaderboard.png"
        import base64

        screenshot.write_bytes(base64.b64decode(shot["data"]))
        assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

        browser.send("Runtime.evaluate", {"expression": "0"}, session)  # flush pending events
        errors = [
            e for e in browser.events
            if (e.get("method") == "Runtime.exceptionThrown")
            or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
            or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
        ]
        assert errors == [], errors
    finally:
        browser.close()

"""Load a local HTML page in headless Chromium and report what a browser saw: DOM facts and console errors.

Talks the Chrome DevTools Protocol over ``--remote-debugging-pipe`` (JSON messages separated by NUL bytes on
file descriptors 3 and 4), so no websocket client or driver package is needed - only the ``chromium``
binary (Debian package ``chromium``; utils/install_system_deps.sh installs it).
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio",
                  "--remote-debugging-pipe"]


def chromium_binary() -> Optional[str]:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@dataclass
class PageVisit:
    value: Any  # what the probe expression returned (JSON value)
    console_errors: List[str] = field(default_factory=list)  # console.error/assert, exceptions, failed loads


class _Pipe:
    def __init__(self, write_fd: int, read_fd: int) -> None:
        self.write_fd, self.read_fd = write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: List[Dict[str, Any]] = []

    def send(self, method: str, params: Optional[dict] = None, session: Optional[str] = None) -> int:
        self.next_id += 1
        message: Dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        return self.next_id

    def wait(self, done: Callable[[Dict[str, Any]], bool], timeout: float) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\0", 1)
                message = json.loads(raw)
                self.events.append(message)
                if done(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("chromium did not answer in time")
            ready, _, _ = select.select([self.read_fd], [], [], min(left, 0.5))
            if ready:
                chunk = os.read(self.read_fd, 1 << 16)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self.buffer += chunk

    def call(self, method: str, params: Optional[dict] = None, session: Optional[str] = None,
             timeout: float = 30.0) -> Dict[str, Any]:
        sent = self.send(method, params, session)
        reply = self.wait(lambda m: m.get("id") == sent, timeout)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})


def _errors(events: List[Dict[str, Any]]) -> List[str]:
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            found.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            found.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            found.append(f"{entry.get('source')}: {entry.get('text')} {entry.get('url', '')}".strip())
    return found


def _above_4(fd: int) -> int:
    """The same pipe end on a close-on-exec descriptor > 4: wiring the child's 3 and 4 cannot overwrite it, and
    only the dup2'd 3 and 4 reach the browser (Python's own descriptors are not inheritable)."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


def visit(page: Path, probe: str, settle: float = 1.0, timeout: float = 60.0) -> PageVisit:
    """Open ``page`` (a local file), wait for its load event and ``settle`` seconds, evaluate ``probe``.

    ``probe`` is a JavaScript expression; a Promise is awaited. Returns its JSON value and every error the
    page produced (console errors, uncaught exceptions, resources that failed to load).
    """
    binary = chromium_binary()
    if binary is None:
        raise FileNotFoundError("chromium is not installed (apt-get install chromium)")
    to_browser_r, to_browser_w = map(_above_4, os.pipe())
    from_browser_r, from_browser_w = map(_above_4, os.pipe())
    with tempfile.TemporaryDirectory(prefix="echelon-chromium-") as profile:
        def wire_pipes() -> None:  # in the child: the browser reads fd 3 and writes fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        browser = subprocess.Popen([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                   close_fds=False, preexec_fn=wire_pipes,  # 3, 4 made in the child
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        pipe = _Pipe(to_browser_w, from_browser_r)
        try:
            target = pipe.call("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            session = pipe.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Runtime", "Log", "Page"):
                pipe.call(f"{domain}.enable", session=session)
            pipe.send("Page.navigate", {"url": page.resolve().as_uri()}, session)
            pipe.wait(lambda m: m.get("method") == "Page.loadEventFired", timeout)
            time.sleep(settle)
            result = pipe.call("Runtime.evaluate", {"expression": probe, "returnByValue": True, "awaitPromise": True},
                               session=session, timeout=timeout)
            if "exceptionDetails" in result:
                raise RuntimeError(f"probe failed: {result['exceptionDetails']}")
            return PageVisit(result["result"].get("value"), _errors(pipe.events))
        finally:
            try:
                pipe.send("Browser.close")
                browser.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                browser.kill()
                browser.wait()
            os.close(to_browser_w)
            os.close(from_browser_r)

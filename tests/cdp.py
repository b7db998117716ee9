"""A minimal Chrome DevTools Protocol client over ``--remote-debugging-pipe``, for layout checks.

Headless Chromium reads CDP messages (JSON, NUL-terminated) from fd 3 and writes to
fd 4; no port, no network. :func:`evaluate_page` loads a page at a given window size
and returns the value of a JavaScript expression evaluated in it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from typing import Any


class _Pipe:
    def __init__(self, exe: str, flags: tuple[str, ...], profile: str) -> None:
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire() -> None:  # runs in the child before exec: fd 3 in, fd 4 out
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [exe, *flags, "--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, close_fds=False,
            preexec_fn=wire,
        )  # fmt: skip
        os.close(to_child_r)
        os.close(from_child_w)
        self._buffer = b""
        self._next = 0

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None, timeout: float = 60.0) -> dict[str, Any]:  # fmt: skip
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_child, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result") or {})
        raise TimeoutError(method)

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def close(self) -> None:
        with contextlib.suppress(Exception):  # it may already be gone
            self.send("Browser.close", timeout=10)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self._to_child)
        os.close(self._from_child)


def evaluate_page(exe: str, flags: tuple[str, ...], profile: str, url: str, expression: str,
                  width: int = 1280, height: int = 1000) -> Any:  # fmt: skip
    """Load ``url`` in a ``width`` x ``height`` window and return ``expression``'s value."""
    pipe = _Pipe(exe, flags, profile)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                  session)  # fmt: skip
        pipe.send("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + 60
        while True:
            state = pipe.send("Runtime.evaluate",
                              {"expression": "document.readyState", "returnByValue": True},
                              session)  # fmt: skip
            if state["result"].get("value") == "complete":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not finish loading")
            time.sleep(0.1)
        result = pipe.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                           session)  # fmt: skip
        if "exceptionDetails" in result:
            raise RuntimeError(str(result["exceptionDetails"]))
        return result["result"].get("value")
    finally:
        pipe.close()

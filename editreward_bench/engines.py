"""Starting, waiting for and stopping an inference server (vLLM, SGLang) that serves a judge.

The engine is found on PATH (it is not a dependency of erb), started with a card's
recipe (:func:`editreward_bench.backends.serving.serve_recipe`) in its own process
group (it forks workers), polled at ``GET /v1/models`` until it lists the judge, and
stopped as a group: SIGTERM, then SIGKILL after a grace period, until no process of
the group is left. While an engine runs, SIGTERM and SIGHUP to erb become Ctrl-C, so
that whatever ends erb (short of SIGKILL) stops the engine too.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import IO, Any

from .backends.serving import Recipe, default_tp

#: How long a stopping engine gets after SIGTERM before SIGKILL.
STOP_GRACE = 20.0
#: Lines of the engine's log shown when it fails.
TAIL_LINES = 20
SERVER_LOG = "server.log"
#: The log's name while the run is going (erb's temporary files are left alone by checks).
_LIVE_LOG = ".erb-tmp-server.log"


class EngineError(RuntimeError):
    """The engine could not be found, started or reached; ``tail`` is its log's end."""

    def __init__(self, message: str, tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.tail = tail or []


def find_engine(engine: str) -> list[str]:
    """The command that starts ``engine``: ``[path/to/vllm]`` or ``[python, -m,
    sglang.launch_server]`` with a Python on PATH that has SGLang. EngineError if none."""
    if engine == "vllm":
        found = shutil.which("vllm")
        if found is None:
            raise EngineError(
                "vLLM's `vllm` command is not on PATH: install vLLM where erb runs (pip install "
                "vllm; it is not a dependency of erb), or start a server yourself (erb "
                "serve-command) and pass --base-url"
            )
        return [found]
    if engine == "sglang":
        for python in _pythons():
            if _has_sglang(python):
                return [python, "-m", "sglang.launch_server"]
        raise EngineError(
            "SGLang is not installed for any Python on PATH (python3, python) nor for erb's own: "
            "install it (pip install 'sglang[all]'; it is not a dependency of erb), or start a "
            "server yourself (erb serve-command --server sglang) and pass --base-url"
        )
    raise EngineError(f"unknown engine {engine!r}; erb starts vllm or sglang")


def _pythons() -> list[str]:
    found = [sys.executable, shutil.which("python3"), shutil.which("python")]
    out: list[str] = []
    for path in found:
        if path and path not in out:
            out.append(path)
    return out


def _has_sglang(python: str) -> bool:
    if python == sys.executable:
        return importlib.util.find_spec("sglang") is not None
    try:
        check = "import importlib.util, sys; sys.exit(importlib.util.find_spec('sglang') is None)"
        return (
            subprocess.run([python, "-c", check], capture_output=True, timeout=30).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def visible_gpus() -> int:
    """GPUs the engine would see: ``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``, else 1."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        ids = [d.strip() for d in env.split(",") if d.strip()]
        ids = ids[: ids.index("-1")] if "-1" in ids else ids  # CUDA stops at an invalid id
        return max(1, len(ids))
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 1
    count = sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))
    return max(1, count) if listed.returncode == 0 else 1


def parallel_sizes(tp: int | None, dp: int | None, model: str | None) -> tuple[int, int]:
    """Tensor- and data-parallel sizes: as given, else filling the visible GPUs with replicas
    of the card's usual tensor-parallel size (72B: 4, 32B: 2, else 1)."""
    if tp is not None and dp is not None:
        return tp, dp
    gpus = visible_gpus()
    if tp is None:
        tp = max(1, gpus // dp) if dp is not None else min(default_tp(model), gpus)
    if dp is None:
        dp = max(1, gpus // tp)
    return tp, dp


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def served_models(base_url: str, timeout: float = 3.0) -> list[str] | None:
    """The model ids ``GET {base_url}/models`` lists, or None when nothing answers (yet)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # local: no proxy
    try:
        with opener.open(base_url.rstrip("/") + "/models", timeout=timeout) as response:
            data = json.loads(response.read())
        return [str(m["id"]) for m in data["data"]]
    except Exception:  # not up yet, or not an OpenAI-style API: keep waiting
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class Engine:
    """A server started from a recipe; a context manager that always stops its group.

    ``log``: a file the engine's output goes to (None: erb's own stdout and stderr).
    """

    def __init__(self, recipe: Recipe, command: list[str], log: Path | None = None) -> None:
        self.recipe = recipe
        prefix = 3 if recipe.engine == "sglang" else 1  # python -m sglang.launch_server | vllm
        self.argv = [*command, *recipe.argv[prefix:]]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._saved: dict[int, Any] = {}
        host, port = "127.0.0.1", "8000"
        args = list(recipe.argv)
        if "--host" in args:
            host = args[args.index("--host") + 1]
        if "--port" in args:
            port = args[args.index("--port") + 1]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.base_url = f"http://{shown}:{port}/v1"

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> Engine:
        out: Any = None
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log, "wb")  # noqa: SIM115 (closed in stop())
            out = self._log_file
        self._catch_signals()
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                start_new_session=True,  # its own group: stopped whole, untouched by the tty's ^C
            )
        except OSError as exc:
            self.stop()
            raise EngineError(f"cannot start {self.argv[0]}: {exc.strerror or exc}") from None
        return self

    def wait_ready(
        self, timeout: float, on_wait: Callable[[float], None] | None = None, poll: float = 0.5
    ) -> float:
        """Block until the engine lists the judge; the seconds it took. EngineError when it
        exits first, serves something else, or is not ready within ``timeout`` seconds."""
        assert self.process is not None
        started = time.monotonic()
        kind, served = self.recipe.engine, self.recipe.served
        while True:
            code = self.process.poll()
            if code is not None:
                raise EngineError(
                    f"{kind} exited with status {code} before it served {served!r}" + self._where(),
                    self.tail(),
                )
            ids = served_models(self.base_url)
            if ids is not None:
                if set(self.recipe.listed) & set(ids):
                    return time.monotonic() - started
                raise EngineError(
                    f"the server at {self.base_url} serves {ids[:5]}, not {served!r}"
                    + self._where(),
                    self.tail(),
                )
            elapsed = time.monotonic() - started
            if elapsed > timeout:
                raise EngineError(
                    f"{kind} did not serve {served!r} within {timeout:.0f} s" + self._where(),
                    self.tail(),
                )
            if on_wait is not None:
                on_wait(elapsed)
            time.sleep(poll)

    def wait(self) -> int:
        """Block until the engine exits by itself; its exit status."""
        assert self.process is not None
        return self.process.wait()

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop the engine's whole process group: SIGTERM, then SIGKILL after ``grace``
        seconds, then wait until no process of the group is left. Idempotent."""
        process, self.process = self.process, None
        try:
            if process is not None:
                pgid = process.pid  # the leader of its own session and group
                for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 30.0)):
                    with suppress(ProcessLookupError, PermissionError):
                        os.killpg(pgid, sig)
                    deadline = time.monotonic() + wait
                    while time.monotonic() < deadline:
                        process.poll()  # reap the leader, or the group stays "alive"
                        if not _group_alive(pgid):
                            break
                        time.sleep(0.05)
                    else:
                        continue
                    break
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=5)
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            self._restore_signals()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers ------------------------------------------------------------------------

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        if self.log is None or not self.log.is_file():
            return []
        if self._log_file is not None:
            with suppress(OSError, ValueError):
                self._log_file.flush()
        with open(self.log, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode("utf-8", "replace")
        return [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()][
            -lines:
        ]

    def _where(self) -> str:
        return f"; its log: {self.log}" if self.log is not None else ""

    def _catch_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with suppress(ValueError, OSError):
                self._saved[sig] = signal.signal(sig, _interrupt)

    def _restore_signals(self) -> None:
        for sig, handler in self._saved.items():
            with suppress(ValueError, OSError, TypeError):
                signal.signal(sig, handler)
        self._saved = {}


def live_log(run_dir: Path) -> Path:
    """Where a run's server log is written while the run goes on."""
    return Path(run_dir) / _LIVE_LOG


def keep_log(run_dir: Path, live: Path) -> Path | None:
    """Move the server log into the run folder as ``server.log``, listed in erb's marker
    (a folder without erb's output gets one); None when there was no log or the name is
    taken by a file erb did not write (the log then keeps its temporary name)."""
    from .outputs import RUN, owner, write_marker

    if not live.is_file():
        return None
    run_dir = Path(run_dir)
    target = run_dir / SERVER_LOG
    claim = owner(run_dir)
    files = set(claim.files) if claim is not None else set()
    if SERVER_LOG not in files and (target.exists() or target.is_symlink()):
        return None
    if claim is None or SERVER_LOG not in files:
        write_marker(run_dir, claim.kind if claim is not None else RUN, files | {SERVER_LOG})
    os.replace(live, target)
    return target

"""Several OpenAI-compatible replicas behind one bounded pool of requests.

A :class:`ReplicaPool` is a judge backend that holds one OpenAI backend per base
URL (each sends exactly the requests ``erb evaluate`` sends) and

- bounds the requests in flight over all replicas (``concurrency``), so concurrent
  callers (trainer ranks posting to one reward server) share one pool;
- sends each request to the next healthy replica, round robin;
- on a transient failure (connection refused or reset, timeout, 429, 5xx) tries
  another replica at once, or the same one after a backoff;
- takes a replica out after ``eject_after`` transient failures in a row, and
  probes it (``GET /models``) once its cooldown has passed (doubling up to
  ``max_cooldown`` while it stays down); a probe that answers brings it back.

A request fails only after ``max_attempts`` tries; a permanent error (HTTP 4xx
other than 408/409/425/429) fails at once, as it would on any replica.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..judges import JudgeLoadError
from ..judges.base import Backend, GenRequest, GenResponse, in_worker
from ..redact import redact_url

log = logging.getLogger("erb.reward")

_GAVE_UP = re.compile(r"^gave up after \d+ attempt\(s\): ")
#: Called after each backend request: (replica shown, seconds, outcome: ok|transient|permanent).
CallHook = Callable[[str, float, str], None]


def outcome(response: GenResponse) -> str:
    """``ok``, ``transient`` (another try may succeed) or ``permanent``.

    The OpenAI backend reports what it would retry as ``gave up after N attempt(s): ...``.
    """
    if response.error is None:
        return "ok"
    return "transient" if _GAVE_UP.match(response.error) else "permanent"


@dataclass
class Replica:
    """One endpoint and what the pool knows of its health."""

    url: str
    backend: Any
    up: bool = True
    failures_in_a_row: int = 0
    cooldown: float = 0.0
    retry_at: float = 0.0
    probing: bool = False
    in_flight: int = 0
    requests: dict[str, int] = field(
        default_factory=lambda: {"ok": 0, "transient": 0, "permanent": 0}
    )

    @property
    def shown(self) -> str:
        return redact_url(self.url)


class ReplicaPool(Backend):
    """A judge backend over several replicas (see the module docstring)."""

    def __init__(
        self,
        backends: Sequence[Any],
        urls: Sequence[str],
        *,
        concurrency: int,
        max_attempts: int,
        backoff: float,
        api_key_env: str,
        eject_after: int = 5,
        cooldown: float = 2.0,
        max_cooldown: float = 60.0,
        probe_timeout: float = 5.0,
    ) -> None:
        if not backends:
            raise JudgeLoadError("a replica pool needs at least one replica")
        self.replicas = [Replica(url, b) for url, b in zip(urls, backends, strict=True)]
        self.concurrency = concurrency
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.api_key_env = api_key_env
        self.eject_after = max(1, eject_after)
        self.first_cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.probe_timeout = probe_timeout
        self.supports_n = bool(getattr(backends[0], "supports_n", False))
        self.batch_size = 1
        self.in_flight = 0
        #: The most requests that were ever in flight at once (never above ``concurrency``).
        self.peak_in_flight = 0
        self.on_call: CallHook | None = None
        self._next = 0
        self._slots: asyncio.Semaphore | None = None
        self._probes: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(
        cls, config: Any, backend_cls: Any, *, concurrency: int, **kwargs: Any
    ) -> ReplicaPool:
        """One ``backend_cls`` per base URL of ``config``, each trying a request once: retries
        are the pool's, so a dead replica is left at once instead of after its own backoff."""
        options = config.backend
        inner = [
            backend_cls.from_config(
                config.with_backend(
                    replace(options, base_urls=(url,), max_attempts=1, concurrency=concurrency)
                )
            )
            for url in options.base_urls
        ]
        return cls(
            inner,
            [str(u).rstrip("/") for u in options.base_urls],
            concurrency=concurrency,
            max_attempts=options.max_attempts,
            backoff=options.backoff,
            api_key_env=options.api_key_env,
            **kwargs,
        )

    # -- the Backend interface ----------------------------------------------------------

    @property
    def options(self) -> Any:
        """The first replica's options with every base URL (what a judge records)."""
        first = self.replicas[0].backend.options
        return replace(
            first,
            base_urls=tuple(r.url for r in self.replicas),
            max_attempts=self.max_attempts,
            concurrency=self.concurrency,
        )

    def describe(self) -> dict[str, Any]:
        info = dict(self.replicas[0].backend.describe())
        info["base_urls"] = [r.shown for r in self.replicas]
        info["concurrency"] = self.concurrency
        return info

    def prepare_images(self, images: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(self.replicas[0].backend.prepare_images(images))

    async def generate(self, requests: Sequence[GenRequest]) -> list[GenResponse]:
        return list(await asyncio.gather(*(self._one(r) for r in requests)))

    def preflight(self) -> None:
        """Check every replica; take out those that fail. Raises only when none answers."""
        problems = self.check()
        if len(problems) == len(self.replicas):
            raise JudgeLoadError(problems[0])

    def check(self) -> list[str]:
        """Each replica's pre-flight (endpoint up, model served); the failing ones are taken out."""
        problems = []
        for replica in self.replicas:
            try:
                replica.backend.preflight()
            except JudgeLoadError as exc:
                problems.append(str(exc))
                self._eject(replica, time.monotonic())
        return problems

    async def aclose(self) -> None:
        for task in list(self._probes):
            task.cancel()
        for replica in self.replicas:
            await replica.backend.aclose()

    def status(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        return [
            {
                "replica": r.shown,
                "up": r.up,
                "in_flight": r.in_flight,
                "failures_in_a_row": r.failures_in_a_row,
                "retry_in_s": None if r.up else round(max(0.0, r.retry_at - now), 3),
                "requests": dict(r.requests),
            }
            for r in self.replicas
        ]

    # -- routing --------------------------------------------------------------------------

    def _choose(self, avoid: Replica | None = None) -> Replica:
        now = time.monotonic()
        for replica in self.replicas:
            if not replica.up and not replica.probing and now >= replica.retry_at:
                self._probe_later(replica)
        healthy = [r for r in self.replicas if r.up]
        if avoid is not None and len(healthy) > 1:
            healthy = [r for r in healthy if r is not avoid]
        if not healthy:  # every replica is out: the one due back first takes the request
            return min(self.replicas, key=lambda r: r.retry_at)
        replica = healthy[self._next % len(healthy)]
        self._next += 1
        return replica

    async def _one(self, request: GenRequest) -> GenResponse:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.concurrency)
        last = GenResponse([], error="no attempt made")
        previous: Replica | None = None
        for attempt in range(self.max_attempts):
            replica = self._choose(avoid=previous)
            async with self._slots:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
                replica.in_flight += 1
                start = time.perf_counter()
                try:
                    response = (await replica.backend.generate([request]))[0]
                finally:
                    self.in_flight -= 1
                    replica.in_flight -= 1
            kind = outcome(response)
            replica.requests[kind] += 1
            if self.on_call is not None:
                self.on_call(replica.shown, time.perf_counter() - start, kind)
            if kind != "transient":
                self._succeeded(replica)  # it answered, even if with a refusal
                return response
            last = response
            self._failed(replica)
            previous = replica
            others_up = any(r.up and r is not replica for r in self.replicas)
            if attempt + 1 < self.max_attempts and not others_up:
                delay = min(30.0, self.backoff * 2**attempt)
                await asyncio.sleep(delay * (1 + random.random() * 0.25))
        reason = _GAVE_UP.sub("", last.error or "")
        replicas = len(self.replicas)
        where = f" on {replicas} replica(s)" if replicas > 1 else ""
        return GenResponse(
            [], error=f"gave up after {self.max_attempts} attempt(s){where}: {reason}"
        )

    # -- health ---------------------------------------------------------------------------

    def _succeeded(self, replica: Replica) -> None:
        replica.failures_in_a_row = 0
        if not replica.up:
            self._restore(replica)

    def _failed(self, replica: Replica) -> None:
        replica.failures_in_a_row += 1
        if replica.up and replica.failures_in_a_row >= self.eject_after:
            self._eject(replica, time.monotonic())

    def _eject(self, replica: Replica, now: float) -> None:
        replica.cooldown = (
            self.first_cooldown
            if replica.up or replica.cooldown == 0
            else min(self.max_cooldown, replica.cooldown * 2)
        )
        if replica.up:
            log.warning(
                "replica %s taken out after %d failure(s) in a row; probing it again in %.1f s",
                replica.shown, replica.failures_in_a_row, replica.cooldown,
            )  # fmt: skip
        replica.up = False
        replica.retry_at = now + replica.cooldown

    def _restore(self, replica: Replica) -> None:
        log.warning("replica %s is back", replica.shown)
        replica.up = True
        replica.failures_in_a_row = 0
        replica.cooldown = 0.0

    def _probe_later(self, replica: Replica) -> None:
        replica.probing = True
        task = asyncio.get_running_loop().create_task(self._probe(replica))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, replica: Replica) -> None:
        try:
            ok = await in_worker(
                probe, replica.url, os.environ.get(self.api_key_env) or "EMPTY", self.probe_timeout
            )
        finally:
            replica.probing = False
        if ok:
            self._restore(replica)
        else:
            self._eject(replica, time.monotonic())


def probe(base_url: str, api_key: str, timeout: float) -> bool:
    """Whether an OpenAI-compatible server answers at ``base_url`` (``GET /models``)."""
    request = urllib.request.Request(
        base_url.rstrip("/") + "/models", headers={"Authorization": f"Bearer {api_key}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403, 404, 405)  # it answers, it just does not list models
    except (OSError, ValueError):
        return False

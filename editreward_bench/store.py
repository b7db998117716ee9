"""The pass store: every judged pass, persisted the moment it completes.

One SQLite database (WAL mode) shared by all runs. A pass is keyed by

- the judge fingerprint: protocol, prompt-template hash, backend, model,
  adapter, sampling parameters, score range (everything that changes answers);
- the candidate fingerprint: key, instruction and both images' hashes;
- the pass index and its seed.

Changing any of these never reuses an old answer; changing nothing reuses them
all. Each pass is committed on its own, so ``kill -9`` loses at most the passes
in flight. Transient failures (network, timeouts) are never stored, so a rerun
retries them; final failures (unparseable after every retry) are, unless the
run asks to retry them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from .benchmark import Candidate

SCHEMA = """
CREATE TABLE IF NOT EXISTS passes (
    judge_fp   TEXT    NOT NULL,
    cand_fp    TEXT    NOT NULL,
    pass       INTEGER NOT NULL,
    seed       INTEGER NOT NULL,
    key        TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    record     TEXT    NOT NULL,
    created    REAL    NOT NULL,
    PRIMARY KEY (judge_fp, cand_fp, pass, seed)
);
CREATE TABLE IF NOT EXISTS claims (
    judge_fp   TEXT    NOT NULL,
    cand_fp    TEXT    NOT NULL,
    pass       INTEGER NOT NULL,
    seed       INTEGER NOT NULL,
    owner      TEXT    NOT NULL,
    expires    REAL    NOT NULL,
    PRIMARY KEY (judge_fp, cand_fp, pass, seed)
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS judges (
    judge_fp    TEXT    PRIMARY KEY,
    description TEXT    NOT NULL,
    created     REAL    NOT NULL
);
CREATE TABLE IF NOT EXISTS migrations (
    old_fp     TEXT    NOT NULL,
    new_fp     TEXT    NOT NULL,
    passes     INTEGER NOT NULL,
    at         REAL    NOT NULL
);
"""
#: 1: erb 0.1 (judge keys from a hand-kept description; no ``judges`` table).
#: 2: judge keys from the settings' declarations; each key's description is kept in ``judges``,
#:    and keys of version 1 are moved to version 2 keys when a judge first runs (``adopt``).
STORE_VERSION = 2


def default_store_path() -> Path:
    """``$ERB_STORE``, else ``$XDG_CACHE_HOME/erb/store.sqlite`` (``~/.cache/erb/...``)."""
    env = os.environ.get("ERB_STORE")
    if env:
        return Path(env).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "erb" / "store.sqlite"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def candidate_fingerprint(candidate: Candidate) -> str:
    """Key, instruction and image hashes: the same edit anywhere maps to the same answers."""
    blob = "\x1f".join(
        (candidate.key, candidate.instruction, candidate.source.sha, candidate.edited.sha)
    )
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


class StoreError(RuntimeError):
    pass


class PassStore:
    """Thread-safe access to the pass store."""

    def __init__(self, path: str | Path, *, owner: str | None = None) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where a folder should be, or no permission
            raise StoreError(
                f"the pass store {self.path} cannot be created ({exc.strerror or exc}: "
                f"{exc.filename or self.path.parent}); choose another --store"
            ) from exc
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=60, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA busy_timeout=60000")
            self._upgrade()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"the pass store {self.path} cannot be opened ({exc}); move it aside or use --store"
            ) from exc

    def _upgrade(self) -> None:
        """Create a new store, or bring an older one to this version; refuse a newer one."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            version: int | None = None
            if "meta" in tables:
                row = conn.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
                if row is not None:
                    try:
                        version = int(row[0])
                    except ValueError:
                        raise StoreError(
                            f"the pass store {self.path} has an unreadable version {row[0]!r}; "
                            "move it aside or use --store"
                        ) from None
            if version is None and "passes" in tables:
                version = 1  # a store without a version is version 1
            if version is not None and version > STORE_VERSION:
                raise StoreError(
                    f"the pass store {self.path} is version {version}, written by a newer erb; this "
                    f"erb reads versions 1 to {STORE_VERSION}: upgrade erb (pip install -U erb) or "
                    "use another --store"
                )
            for statement in SCHEMA.split(";"):  # executescript() would commit the transaction
                if statement.strip():
                    conn.execute(statement)
            # Version 1 -> 2 adds the judges and migrations tables; its passes keep their keys
            # until a judge that had that key runs (see adopt()).
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(STORE_VERSION),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @property
    def version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
        return int(row[0])

    def register_judge(self, judge_fp: str, description: Mapping[str, Any]) -> None:
        """Keep what a key stands for, so later versions can map it (and people can read it)."""
        payload = json.dumps(description, sort_keys=True, default=str)
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO judges VALUES (?, ?, ?)", (judge_fp, payload, time.time())
            )

    def adopt(
        self,
        judge_fp: str,
        old_fps: Iterable[str],
        upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> int:
        """Move the passes stored under an earlier version's key of this judge to its key.

        ``upgrade`` rewrites each moved record (e.g. recomputes its sub-scores from the
        stored answers with today's arithmetic). A pass already stored under the new
        key wins. Returns how many moved.
        """
        moved = 0
        with self._lock:
            for old in old_fps:
                if old == judge_fp:
                    continue
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    rows = self._conn.execute(
                        "SELECT cand_fp, pass, seed, key, status, record, created FROM passes"
                        " WHERE judge_fp = ?",
                        (old,),
                    ).fetchall()
                    count = 0
                    for cand_fp, pass_index, seed, key, status, record, created in rows:
                        if upgrade is not None:
                            new_record = upgrade(json.loads(record))
                            status = str(new_record["status"])
                            record = json.dumps(
                                new_record, sort_keys=True, allow_nan=False, default=str
                            )
                        cur = self._conn.execute(
                            "INSERT OR IGNORE INTO passes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (judge_fp, cand_fp, pass_index, seed, key, status, record, created),
                        )
                        count += cur.rowcount
                    self._conn.execute("DELETE FROM passes WHERE judge_fp = ?", (old,))
                    if count:
                        self._conn.execute(
                            "INSERT INTO migrations VALUES (?, ?, ?, ?)",
                            (old, judge_fp, count, time.time()),
                        )
                    self._conn.execute("COMMIT")
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                moved += count
        return moved

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PassStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _select(
        self,
        columns: str,
        judge_fp: str,
        cand_fps: Iterable[str],
        base_seed: int,
        include_failed: bool,
    ) -> list[tuple[Any, ...]]:
        """Rows of stored passes of these candidates whose pass p has seed ``base_seed + p``."""
        fps = list(cand_fps)
        status = "" if include_failed else " AND status = 'ok'"
        rows: list[tuple[Any, ...]] = []
        with self._lock:
            for start in range(0, len(fps), 500):  # SQLite caps the parameters of one statement
                chunk = fps[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows += self._conn.execute(
                    f"SELECT {columns} FROM passes WHERE judge_fp = ? AND seed = ? + pass"
                    f" AND cand_fp IN ({marks}){status}",
                    (judge_fp, base_seed, *chunk),
                ).fetchall()
        return rows

    def get(
        self, judge_fp: str, cand_fps: Iterable[str], base_seed: int, *, include_failed: bool = True
    ) -> dict[tuple[str, int], dict[str, Any]]:
        """Stored records whose pass p has seed ``base_seed + p``: {(cand_fp, p): record}."""
        rows = self._select("cand_fp, pass, record", judge_fp, cand_fps, base_seed, include_failed)
        return {(cand_fp, p): json.loads(record) for cand_fp, p, record in rows}

    def have(
        self, judge_fp: str, cand_fps: Iterable[str], base_seed: int, *, include_failed: bool = True
    ) -> set[tuple[str, int]]:
        """Which (cand_fp, pass) items are stored (pass p with seed ``base_seed + p``), without reading them."""
        return set(self._select("cand_fp, pass", judge_fp, cand_fps, base_seed, include_failed))

    def put(self, judge_fp: str, cand_fp: str, record: Mapping[str, Any]) -> None:
        """Persist one pass (replacing an older answer for the same key).

        Its claim stays until :meth:`release`: other runs skip stored passes anyway,
        and one statement per pass keeps the store off the hot path.
        """
        payload = json.dumps(record, sort_keys=True, allow_nan=False, default=str)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO passes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    judge_fp,
                    cand_fp,
                    int(record["pass"]),
                    int(record["seed"]),
                    str(record["key"]),
                    str(record["status"]),
                    payload,
                    time.time(),
                ),
            )

    # -- claims: two runs on one store never judge the same pass at once --------------

    def claim(
        self,
        judge_fp: str,
        items: Iterable[tuple[str, int]],
        base_seed: int,
        ttl: float = 3600.0,
        *,
        skip_stored: bool = True,
    ) -> set[tuple[str, int]]:
        """Claim (cand_fp, pass) items not claimed by a live run (nor stored, with ``skip_stored``)."""
        now = time.time()
        won: set[tuple[str, int]] = set()
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM claims WHERE expires < ?", (now,))
                self._drop_dead_claims()
                for cand_fp, pass_index in items:
                    seed = base_seed + pass_index
                    if (
                        skip_stored
                        and self._conn.execute(
                            "SELECT 1 FROM passes WHERE judge_fp = ? AND cand_fp = ? AND pass = ?"
                            " AND seed = ? AND status = 'ok'",
                            (judge_fp, cand_fp, pass_index, seed),
                        ).fetchone()
                    ):
                        continue
                    cur = self._conn.execute(
                        "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                        (judge_fp, cand_fp, pass_index, seed, self.owner, now + ttl),
                    )
                    if cur.rowcount == 1:
                        won.add((cand_fp, pass_index))
                    else:
                        mine = self._conn.execute(
                            "SELECT 1 FROM claims WHERE judge_fp = ? AND cand_fp = ? AND pass = ?"
                            " AND seed = ? AND owner = ?",
                            (judge_fp, cand_fp, pass_index, seed, self.owner),
                        ).fetchone()
                        if mine:
                            won.add((cand_fp, pass_index))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return won

    def _drop_dead_claims(self) -> None:
        """Claims of processes on this host that no longer exist (killed runs) are void."""
        host = socket.gethostname()
        for (owner,) in self._conn.execute("SELECT DISTINCT owner FROM claims").fetchall():
            owner_host, _, rest = owner.partition(":")
            pid = rest.partition(":")[0]
            if owner_host == host and pid.isdigit() and not _alive(int(pid)):
                self._conn.execute("DELETE FROM claims WHERE owner = ?", (owner,))

    def release(self, judge_fp: str) -> None:
        """Drop this run's remaining claims (on exit, interrupted or not)."""
        with self._lock:
            self._conn.execute(
                "DELETE FROM claims WHERE judge_fp = ? AND owner = ?", (judge_fp, self.owner)
            )

    def integrity_check(self) -> list[str]:
        """SQLite's own check plus ours: every record parses and matches its key columns."""
        problems: list[str] = []
        with self._lock:
            result = [row[0] for row in self._conn.execute("PRAGMA integrity_check").fetchall()]
            if result != ["ok"]:
                problems += result
            for judge_fp, cand_fp, pass_index, seed, key, status, record in self._conn.execute(
                "SELECT judge_fp, cand_fp, pass, seed, key, status, record FROM passes"
            ):
                try:
                    rec = json.loads(record)
                except json.JSONDecodeError:
                    problems.append(
                        f"unreadable record {judge_fp[:12]}/{cand_fp[:12]}/{pass_index}"
                    )
                    continue
                if (rec.get("pass"), rec.get("seed"), rec.get("key"), rec.get("status")) != (
                    pass_index,
                    seed,
                    key,
                    status,
                ):
                    problems.append(
                        f"record {judge_fp[:12]}/{cand_fp[:12]}/{pass_index} disagrees with its key"
                    )
        return problems

    def count(self, judge_fp: str | None = None) -> int:
        with self._lock:
            if judge_fp is None:
                return int(self._conn.execute("SELECT COUNT(*) FROM passes").fetchone()[0])
            return int(
                self._conn.execute(
                    "SELECT COUNT(*) FROM passes WHERE judge_fp = ?", (judge_fp,)
                ).fetchone()[0]
            )

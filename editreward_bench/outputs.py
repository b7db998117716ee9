"""Output folders: erb writes only where it may, and replaces only what it wrote.

The rule every command follows:

- a folder erb creates carries a marker, ``.erb-output.json``, naming the kind of
  output and the files erb wrote there;
- erb writes into a folder only when it is missing, empty, or holds erb's own
  output of the same kind; its own output is replaced only with ``--overwrite``
  (or, for a run folder, when the same run is run again), and even then only the
  files the marker lists are replaced or removed, never anything else in the folder;
- every check, writability included, runs before any work, so nothing is spent
  on an output that cannot be saved. Errors are :class:`OutputError`, one line
  naming the path and the fix.

This module imports nothing heavy: the CLI calls it right after parsing arguments.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = ".erb-output.json"
#: Prefix of erb's temporary files and folders (probes, staging); always erb's, by name.
TEMP_PREFIX = ".erb-tmp-"

RUN = "run"
SYNTHETIC = "synthetic-benchmark"
MINI = "mini"
KINDS = {
    RUN: "an erb run folder",
    SYNTHETIC: "an erb synthetic benchmark",
    MINI: "erb's bundled benchmark (mini)",
}

#: The files of a run folder (results.py writes them).
RUN_FILES = ("records.parquet", "outcomes.parquet", "manifest.json", "metrics.json")
RUN_MANIFEST = "manifest.json"

_NOTE = (
    "Written by erb. erb replaces or removes only the files listed here; "
    "anything else in this folder is left alone."
)


class OutputError(Exception):
    """An output cannot be written; the one-line message names the path and the fix."""


@dataclass(frozen=True)
class Marker:
    """What erb wrote into a folder: the kind of output and the file names."""

    kind: str
    files: tuple[str, ...]


def _plain_name(name: str) -> bool:
    """A file name inside the folder: no separators, not '.', '..' or the marker itself."""
    seps = {"/", "\\", os.sep, *(filter(None, [os.altsep]))}
    return bool(name) and name not in {".", "..", MARKER} and not any(s in name for s in seps)


def check_name(name: str, what: str) -> str:
    """``name`` as one path component (a run folder's name), or a one-line OutputError."""
    if not name.strip() or not _plain_name(name) or "\x00" in name:
        raise OutputError(
            f"{what} {name!r} cannot name a run folder (reports/runs/NAME): it must not be "
            "empty, '.', '..' or hold a path separator; pass a plain --name, or --out for the folder"
        )
    return name


def read_marker(folder: Path) -> Marker | None:
    """The folder's marker, or None when it has none (or one erb cannot trust)."""
    try:
        data = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return None
    files = data.get("files", [])
    if not isinstance(files, list) or not all(isinstance(f, str) and _plain_name(f) for f in files):
        return None
    return Marker(data["kind"], tuple(files))


def marker_bytes(kind: str, files: Iterable[str]) -> bytes:
    """The marker's content: deterministic (no times, no versions), so outputs stay reproducible."""
    data = {"written_by": "erb", "kind": kind, "files": sorted(set(files)), "note": _NOTE}
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def write_marker(folder: Path, kind: str, files: Iterable[str]) -> None:
    atomic_write(Path(folder) / MARKER, marker_bytes(kind, files), mode=0o644)


def add_to_marker(folder: Path, name: str) -> None:
    """Record one more file erb writes into its own folder (no marker: nothing to do)."""
    marker = read_marker(folder)
    if marker is not None and name not in marker.files:
        write_marker(folder, marker.kind, (*marker.files, name))


def owner(folder: Path) -> Marker | None:
    """erb's claim on a folder: its marker, or for a run folder written before markers
    existed, a manifest.json that erb wrote (its run files are then erb's by name)."""
    marker = read_marker(folder)
    if marker is not None:
        return marker
    try:
        manifest = json.loads((Path(folder) / RUN_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(manifest, dict) and "erb_version" in manifest and "judge" in manifest:
        return Marker(RUN, tuple(n for n in RUN_FILES if (Path(folder) / n).exists()))
    return None


def _entries(folder: Path) -> list[str]:
    """What the folder holds, leaving out erb's own temporary leftovers."""
    return [p.name for p in folder.iterdir() if not p.name.startswith(TEMP_PREFIX)]


# --------------------------------------------------------------------------- checks


def prepare_output_dir(
    path: Path,
    kind: str,
    *,
    overwrite: bool = False,
    same: Callable[[Path], str | None] | None = None,
    option: str = "--out",
) -> Marker | None:
    """Check, before any work, that ``kind`` output may be written to the folder ``path``.

    Accepted: a missing or empty folder; a folder holding erb's output of the same
    kind when ``overwrite`` is set, or when ``same(path)`` returns None (the same job
    again: a run resumed). Refused with a one-line :class:`OutputError` naming the
    path and the fix: anything else, and a path that cannot be written. Nothing is
    created or deleted (the writability probe leaves no trace). Returns erb's claim
    on the folder, if any.
    """
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise OutputError(f"{path} is a broken link; choose another {option}")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path} is a file, not a folder; choose another {option}")
    claim = None
    if path.is_dir():
        try:
            entries = _entries(path)
        except OSError as exc:
            raise OutputError(
                f"cannot read {path}: {exc.strerror or exc}; choose another {option}"
            ) from None
        if entries:
            claim = owner(path)
            if claim is None:
                raise OutputError(
                    f"{path} is not empty and was not written by erb; erb never replaces what it "
                    f"did not create: choose another {option} (a new or empty folder)"
                )
            if claim.kind != kind:
                raise OutputError(
                    f"{path} holds {KINDS.get(claim.kind, repr(claim.kind))}, not "
                    f"{KINDS.get(kind, kind)}; choose another {option}"
                )
            if not overwrite:
                why = "" if same is None else same(path)
                if why is not None:
                    detail = f" ({why})" if why else ""
                    raise OutputError(
                        f"{path} already holds {KINDS.get(kind, kind)}{detail}; pass --overwrite to "
                        f"replace it (only the files erb wrote there), or choose another {option}"
                    )
    probe_writable(path, option)
    return claim


def probe_writable(path: Path, option: str = "--out") -> None:
    """Create (then remove) a file in the folder ``path``, creating (then removing) the
    missing folders on the way; a one-line OutputError when that fails."""
    path = Path(path)
    missing: list[Path] = []
    base = path
    while not base.exists() and not base.is_symlink():
        missing.append(base)
        if base.parent == base:
            break
        base = base.parent
    if not base.is_dir():
        raise OutputError(f"cannot create {path}: {base} is not a folder; choose another {option}")
    created: list[Path] = []
    try:
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            created.append(folder)
        fd, probe = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(
            f"cannot write to {path}: {exc.strerror or exc}; choose another {option}"
        ) from None
    finally:
        for folder in reversed(created):
            with suppress(OSError):
                folder.rmdir()


def check_output_file(
    path: Path, *, overwrite: bool | None = False, option: str = "--out", example: str = ""
) -> None:
    """Check, before any work, that a single file can be written at ``path``.

    A folder there is refused (``example`` suggests a file name inside it). An
    existing file is refused unless ``overwrite`` (a lone file carries no marker,
    so erb cannot tell it wrote it); ``overwrite=None`` means the file is a view
    erb regenerates (a report page) and may be replaced.
    """
    path = Path(path)
    if path.is_dir():
        inside = f", e.g. {path / example}" if example else ""
        raise OutputError(f"{path} is a folder; give {option} a file path{inside}")
    if path.exists() and overwrite is False:
        raise OutputError(
            f"{path} already exists; pass --overwrite to replace it, or choose another {option}"
        )
    probe_writable(path.parent, option)


# --------------------------------------------------------------------------- run folders


def run_settings(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """What makes a run the run it is, from its manifest.json."""
    if isinstance(manifest.get("run_settings"), dict):  # runs that state their own (model runs)
        return dict(manifest["run_settings"])
    judge = manifest.get("judge") or {}
    dataset = manifest.get("dataset") or {}
    if judge.get("kind") == "predictions":
        return {
            "kind": "predictions",
            "predictions": judge.get("sha256"),
            "dataset": dataset.get("fingerprint"),
        }
    return {
        "kind": "judge",
        "judge": judge.get("fingerprint"),
        "dataset": dataset.get("fingerprint"),
        "k": manifest.get("k"),
        "seed": manifest.get("seed"),
    }


_SETTING_NAMES = {
    "kind": "run kind",
    "predictions": "predictions",
    "judge": "judge fingerprint",
    "dataset": "dataset fingerprint",
    "k": "k",
    "seed": "seed",
}


def _short(value: Any) -> str:
    text = str(value)
    return text[:19] + "..." if text.startswith("sha256:") else text


def run_difference(folder: Path, expected: Mapping[str, Any] | None) -> str | None:
    """None when ``folder`` holds the run ``expected`` describes (or no finished run
    at all); else what differs. Only the keys in ``expected`` are compared."""
    if not expected:
        return None
    try:
        manifest = json.loads((Path(folder) / RUN_MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # an unfinished run: nothing there to keep
    if not isinstance(manifest, dict):
        return None
    found = run_settings(manifest)
    if "kind" in expected and found["kind"] != expected["kind"]:
        return f"a {found['kind']} run, this is a {expected['kind']} run"
    diffs = [
        f"{_SETTING_NAMES.get(key, key)} {_short(found.get(key))} there, {_short(value)} now"
        for key, value in expected.items()
        if key != "kind" and found.get(key) != value
    ]
    return "a different run: " + "; ".join(diffs) if diffs else None


def check_run_dir(
    path: Path, expected: Mapping[str, Any] | None = None, *, overwrite: bool = False
) -> None:
    """:func:`prepare_output_dir` for a run folder: erb's run folder for the same run
    (the keys of ``expected``: kind, predictions or judge, dataset, k, seed) is reused
    without ``--overwrite``, so an interrupted run resumes by rerunning its command."""
    prepare_output_dir(
        path, RUN, overwrite=overwrite, same=lambda folder: run_difference(folder, expected)
    )


# --------------------------------------------------------------------------- writing


def claim_output_dir(path: Path, kind: str, files: Iterable[str]) -> None:
    """Mark ``path`` as erb's ``kind`` output about to hold ``files`` (before writing them).

    Files of erb's earlier output there that are not in ``files`` are removed;
    nothing else is. Refuses (OutputError) a folder that is not empty and not erb's,
    and a name in ``files`` that is already taken by a file erb did not write.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    _take_over(path, kind, set(files))


@contextmanager
def staged_output_dir(path: Path, kind: str, *, overwrite: bool = False) -> Iterator[Path]:
    """Write a whole folder of output: yields an empty staging folder to write the files
    into; when the block succeeds they replace erb's earlier files in ``path`` (files
    only, flat). When it fails, ``path`` is as it was."""
    path = Path(path)
    prepare_output_dir(path, kind, overwrite=overwrite)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=path))
    try:
        yield stage
        names = sorted(p.name for p in stage.iterdir())
        if not all((stage / n).is_file() and _plain_name(n) for n in names):
            raise OutputError(f"{path}: the output has unexpected entries {names}")
        _take_over(path, kind, set(names), put=lambda name: os.replace(stage / name, path / name))
    finally:
        shutil.rmtree(stage, ignore_errors=True)  # erb's own temporary folder
        if created:
            with suppress(OSError):
                path.rmdir()  # only when it stayed empty: the write failed


def _take_over(
    path: Path, kind: str, files: set[str], put: Callable[[str], None] | None = None
) -> None:
    """Switch the folder's erb files to ``files`` (``put`` moves each into place), listing
    every name in the marker before it appears, and removing only erb's stale files."""
    claim = owner(path)
    if claim is None and _entries(path):
        raise OutputError(
            f"{path} is not empty and was not written by erb; choose another --out (a new or empty folder)"
        )
    if claim is not None and claim.kind != kind:
        raise OutputError(f"{path} holds {KINDS.get(claim.kind, claim.kind)}; choose another --out")
    ours = set(claim.files) if claim is not None else set()
    taken = sorted(n for n in files - ours if (path / n).exists() or (path / n).is_symlink())
    if taken:
        raise OutputError(
            f"{path / taken[0]} was not written by erb and would be replaced; move it away or choose another --out"
        )
    write_marker(path, kind, ours | files)
    if put is not None:
        for name in sorted(files):
            put(name)
    for name in sorted(ours - files):
        stale = path / name
        if stale.is_file() or stale.is_symlink():
            stale.unlink()
    write_marker(path, kind, files)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write whole or not at all: a temp file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

"""Where the data shipped with the package lives.

In a wheel the judge cards, prompts and bundled benchmark sit under
``editreward_bench/_builtin``; in a source checkout they are at the repository
root (``judges/``, ``data/``).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_BUILTIN = _PACKAGE / "_builtin"
_REPO = _PACKAGE.parent


def _first_existing(*candidates: Path) -> Path:
    for path in candidates:
        if path.exists():
            return path
    return candidates[-1]


def judges_dir() -> Path:
    """Folder of the built-in judge cards (``*.toml``) and prompt templates."""
    return _first_existing(_BUILTIN / "judges", _REPO / "judges")


def data_dir() -> Path:
    """Folder of the bundled benchmark and reference tables."""
    return _first_existing(_BUILTIN / "data", _REPO / "data")


def mini_dir() -> Path:
    return data_dir() / "mini"


def checkout_data_dir() -> Path | None:
    """The repository's ``data/`` when erb runs from a source checkout, else None.

    Installed from a wheel, the bundled data belongs to the installation: erb
    never writes there.
    """
    if (_REPO / "pyproject.toml").is_file() and (_REPO / "judges").is_dir():
        return _REPO / "data"
    return None


def published_results_csv() -> Path:
    return data_dir() / "published_results.csv"

"""The ``erb`` command line: thin commands over library functions.

Each module holds one family of commands (``data``, ``evaluate``, ``judges``, ``reports``,
``reward``, ``serve``, ``editing``);
``common`` holds the console, the one-line error, the options they share and the judge
lookup. Everything heavy is imported inside the command that needs it, so ``erb --help``
and ``erb leaderboard`` start fast. Nothing in the library imports this package.
"""

from __future__ import annotations

import sys

import typer

from . import benchmarks, data, editing, evaluate, judges, reports, reward, serve
from .common import _console
from .evaluate import _print_paper_table

app = typer.Typer(
    help="EditReward-Bench toolkit: evaluate reward models for instruction-guided image editing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data.data_app, name="data")
app.command()(evaluate.evaluate)
app.command("benchmarks")(benchmarks.benchmarks_cmd)
app.command("judges")(judges.judges_cmd)
app.command("settings")(judges.settings_cmd)
app.command("prompts")(judges.prompts_cmd)
app.command("score")(judges.score_cmd)
app.command("serve-command")(serve.serve_command)
app.command("serve")(serve.serve_cmd)
app.command("merge-adapter")(serve.merge_adapter_cmd)
reports.register(app)
reward.register(app)
editing.register(app, data.data_app)


def main() -> None:
    """Console entry point."""
    try:
        app()
    except KeyboardInterrupt:
        _console(stderr=True).print("interrupted")
        sys.exit(130)


__all__ = ["_print_paper_table", "app", "main"]

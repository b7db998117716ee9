"""Render tests/snapshots/editscore_prompts.json with upstream's own code (editscore 0.2).

    pip install --no-deps editscore==0.2 regex json_repair
    python tests/snapshots/make_editscore_prompts.py            # rewrite the snapshot
    python tests/snapshots/make_editscore_prompts.py --check    # exit 1 if it differs

The SC and PQ texts are what ``editscore.EditScore``'s own constructor builds (with its
API backbone, which loads no model) and ``evaluate`` sends (``SC_prompt.replace(
"<instruction>", ...)``), for score range 25. erb's ``erb prompts --json`` must
equal this file byte for byte (``tests/test_judges.py``).
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

SNAPSHOT = Path(__file__).with_name("editscore_prompts.json")
INSTRUCTION = 'Make the sky "purple" <b>now</b> 10'
SCORE_RANGE = 25


def render(instruction: str = INSTRUCTION) -> dict[str, str]:
    """The prompts as upstream's own ``EditScore`` builds them (its API backbone loads no model)."""
    version = metadata.version("editscore")
    if version != "0.2":
        raise SystemExit(f"editscore {version} is installed; the snapshot is of 0.2")
    from editscore import EditScore

    scorer = EditScore(backbone="openai", key="unused", model_name_or_path="unused",
                       score_range=SCORE_RANGE)  # fmt: skip
    # EditScore.evaluate substitutes the instruction into SC_prompt exactly so.
    return {"sc": scorer.SC_prompt.replace("<instruction>", instruction), "pq": scorer.PQ_prompt}


def main(argv: list[str]) -> int:
    text = json.dumps(render(), ensure_ascii=False)
    if "--check" in argv:
        same = SNAPSHOT.read_text(encoding="utf-8") == text
        print(
            "snapshot matches editscore 0.2" if same else f"{SNAPSHOT} differs from editscore 0.2"
        )
        return 0 if same else 1
    SNAPSHOT.write_text(text, encoding="utf-8")
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Reports: the leaderboard, one run's page, and verification of run folders.

The report stage reads run folders (see :mod:`editreward_bench.results`) and
never runs a judge:

- :mod:`.runs` finds, reads and selects run folders, and the paper's published table;
- :mod:`.verify` recomputes a run's metrics from its per-item records;
- :mod:`.significance` compares two judges on the same rows (paired tests);
- :mod:`.samples` picks the rows a judge got wrong and makes their thumbnails;
- :mod:`.charts` lays out the inline SVG charts;
- :mod:`.tables` writes the main table as Markdown, CSV or LaTeX;
- :mod:`.html` renders the self-contained HTML pages from ``templates/``.

Modules import numpy, pyarrow, jinja2 and PIL lazily where they can, so
``erb --help`` stays fast; nothing here imports torch.
"""

from __future__ import annotations

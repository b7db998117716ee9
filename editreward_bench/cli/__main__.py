"""``python -m editreward_bench.cli``."""

from . import main

main()

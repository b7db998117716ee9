#!/usr/bin/env bash
# Regenerate the example leaderboard, reports/example/leaderboard.html, offline:
# the bundled benchmark `mini`, the model-free baseline judges (image-diff k=1,
# random k=1 and k=4), the example predictions, and the paper's reference rows.
#
#   bash reports/make_example.sh
#
# Run folders go to reports/example/runs/ (replaced); passes are stored in a
# temporary store, so nothing is reused from earlier runs. ERB=... picks the erb
# command (default: erb on PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1

ERB=${ERB:-erb}
out=reports/example
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT

rm -rf "$out/runs"
mkdir -p "$out/runs"
evaluate() { "$ERB" evaluate --dataset mini "$@" >/dev/null; }
evaluate --judge image-diff --k 1 --store "$store/passes.sqlite" --out "$out/runs/image-diff"
evaluate --judge random --k 1 --store "$store/passes.sqlite" --out "$out/runs/random"
evaluate --judge random --k 4 --store "$store/passes.sqlite" --out "$out/runs/random-k4"
evaluate --predictions data/mini_predictions.jsonl --name example-predictions \
  --out "$out/runs/example-predictions"

"$ERB" leaderboard "$out"/runs/* --out "$out/leaderboard.html"
for run in "$out"/runs/*; do
  "$ERB" verify "$run" >/dev/null
done
echo "all runs verified; example size: $(du -sh "$out" | cut -f1)"

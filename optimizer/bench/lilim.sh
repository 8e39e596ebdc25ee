#!/usr/bin/env bash
# Runs the `lilim` benchmark binary over every Li & Lim instance of the 100 and 200 sets at a
# fixed time per instance, checks every solution with the independent checker in
# ../shared/tools, and writes optimizer/BENCHMARKS.md comparing against the best-known solutions.
#
#   optimizer/bench/lilim.sh [SECONDS] [SEED]     (default 10 s, seed 1; about 20 minutes)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SECONDS_PER=${1:-10}
SEED=${2:-1}
SHARED=${SHARED:-../shared}
OUT=${OUT:-target/lilim-bench}
SETS=${SETS:-"100 200"}   # SETS=200 reruns one set only (then no report is written)
mkdir -p "$OUT"
cargo build --release -p simulations --bin lilim
for set in $SETS; do
  ./target/release/lilim --seconds "$SECONDS_PER" --seed "$SEED" --solutions "$OUT/sol$set" \
    "$SHARED"/data/lilim/$set/*.txt > "$OUT/results$set.csv" 2> "$OUT/log$set.txt"
  for f in "$SHARED"/data/lilim/$set/*.txt; do
    name=$(basename "$f" .txt)
    python3 "$SHARED/tools/lilim_check.py" "$f" "$OUT/sol$set/$name.sol"
  done > "$OUT/check$set.jsonl"
done
[ "$SETS" = "100 200" ] || { echo "results in $OUT"; exit 0; }
python3 optimizer/bench/report.py "$SHARED/data/lilim/bks.csv" "$OUT" "$SECONDS_PER" "$SEED" > optimizer/BENCHMARKS.md
echo "wrote optimizer/BENCHMARKS.md"

#!/usr/bin/env bash
# Reproduce the calibration-size collapse (issue #14) from the shipped models.
# Needs TensorFlow for the conversions; the diagnoses need only the LiteRT runtime.
# Usage: results/calibration-collapse/reproduce.sh   (from the repository root)
set -euo pipefail
PY=${PY:-.venv/bin/python}
OUT=results/calibration-collapse
# 1. accuracy vs calibration size, both splits, seeded draws
"$PY" -m benchmark.quant.calsweep --split all --calibration-sizes 1,4,16,64,300 \
    --calibration-seeds 10 --out "$OUT/signnet" > "$OUT/signnet/summary.txt"
"$PY" -m benchmark.quant.calsweep --model signnet-gtsrb --split all \
    --calibration-sizes 1,4,16,64,300 --calibration-seeds 5 --limit 2000 \
    --out "$OUT/signnet-gtsrb" > "$OUT/signnet-gtsrb/summary.txt"
# 2. a collapsed (1 calibration image) and the shipped (300 images) conversion, diagnosed
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/signnet"
cp -r models/signnet/verification "$TMP/signnet/"
"$PY" -m benchmark.convert --model-dir "$TMP" --split verification --representative-size 1 \
    > /dev/null
"$PY" -m benchmark.diagnose --split verification --model-dir "$TMP" --limit 0 \
    --out "$OUT/diagnose-1-image" > "$OUT/diagnose-1-image/diagnose.txt"
"$PY" -m benchmark.diagnose --split verification --limit 0 \
    --out "$OUT/diagnose-shipped" > "$OUT/diagnose-shipped/diagnose.txt"

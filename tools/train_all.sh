#!/usr/bin/env bash
# Retrain, convert and evaluate the shipped SignNet models for both splits, then
# write their model cards. Needs the 'train' extra (TensorFlow). Deterministic:
# the same versions give the same weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
for split in full verification; do
    "$PY" -m benchmark.train --model signnet --dataset carolo-synth --split "$split"
    "$PY" -m benchmark.convert --model signnet --split "$split"
done
out=$(mktemp -d)
"$PY" -m benchmark.run --model signnet --split all --device cpu --quiet --out "$out/run" >/dev/null
"$PY" -m benchmark.modelcard --model signnet --run "$out/run"
rm -rf "$out"

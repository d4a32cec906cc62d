#!/usr/bin/env bash
# Retrain, convert and evaluate the shipped SignNet models for both splits, then
# write their model cards. Needs the 'train' extra (TensorFlow). Deterministic:
# the same versions give the same weights.
#   GTSRB_DIR=path/to/gtsrb tools/train_all.sh   also retrains models/signnet-gtsrb
#   (20 epochs per split, about 30 min each on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
train_model() {  # model dataset [extra train args...]
    local model=$1 dataset=$2
    shift 2
    for split in full verification; do
        "$PY" -m benchmark.train --model "$model" --dataset "$dataset" --split "$split" \
            --overwrite "$@"
        "$PY" -m benchmark.convert --model "$model" --split "$split"
    done
    local out
    out=$(mktemp -d)
    "$PY" -m benchmark.run --model "$model" --split all --device cpu --quiet --no-report \
        --out "$out/run" >/dev/null
    "$PY" -m benchmark.modelcard --model "$model" --run "$out/run"
    rm -rf "$out"
}
train_model signnet carolo-synth
if [ -n "${GTSRB_DIR:-}" ]; then
    train_model signnet-gtsrb gtsrb --data-dir "$GTSRB_DIR" --epochs 20
fi

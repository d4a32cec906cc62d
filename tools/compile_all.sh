#!/usr/bin/env bash
# Compile every shipped int8 model for the Edge TPU (host side: edgetpu_compiler runs on
# x86-64 Linux only). Each models/<model>/<split>/<model>_int8.tflite gives
# <model>_int8_edgetpu.tflite, its .log and the parsed <model>_int8_compile.json next to it.
#
#   tools/compile_all.sh [--dry-run] [extra benchmark.compile options...]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-"$ROOT/.venv/bin/python"}
DRY_RUN=0
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) EXTRA+=("$1") ;;
    esac
    shift
done

shopt -s nullglob
models=("$ROOT"/models/*/*/*_int8.tflite)
if [ ${#models[@]} -eq 0 ]; then
    echo "compile_all.sh: error: no models/*/*/*_int8.tflite found" >&2
    exit 3
fi
status=0
for m in "${models[@]}"; do
    cmd=("$PY" -m benchmark.compile "$m" --out-dir "$(dirname "$m")" ${EXTRA[@]+"${EXTRA[@]}"})
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ %s\n' "${cmd[*]}"
    else
        echo "== ${m#"$ROOT"/}"
        (cd "$ROOT" && "${cmd[@]}") || status=$?
    fi
done
exit "$status"

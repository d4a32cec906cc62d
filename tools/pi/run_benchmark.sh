#!/usr/bin/env bash
# Run the chosen models x splits x devices, then pack the run directories with host
# information into one archive to copy back to a desktop.
#
#   tools/pi/run_benchmark.sh [--models "signnet"] [--splits "full verification"]
#                             [--devices "edgetpu cpu"] [--limit N] [--out DIR] [--dry-run]
#
# Each combination is one `python -m benchmark.run` into OUT/<model>-<split>-<device>/.
# A failing combination (e.g. no Edge TPU attached) is logged in OUT/failures.txt and the
# others still run; the exit code is 1 when any failed. The archive is OUT.tar.gz.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODELS="signnet"
SPLITS="full verification"
DEVICES="edgetpu cpu"
LIMIT=""
OUT=""
DRY_RUN=0
PY=${PY:-"$ROOT/.venv/bin/python"}

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --models) MODELS=${2:?}; shift ;;
        --splits) SPLITS=${2:?}; shift ;;
        --devices|--device) DEVICES=${2:?}; shift ;;
        --limit) LIMIT=${2:?}; shift ;;
        --out) OUT=${2:?}; shift ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run_benchmark.sh: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

OUT=${OUT:-"$ROOT/runs/pi-$(date -u +%Y%m%d-%H%M%S)"}
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    echo "run_benchmark.sh: error: $OUT exists and is not empty" >&2
    exit 2
fi
if [ "$DRY_RUN" -eq 0 ] && [ ! -x "$PY" ]; then
    echo "run_benchmark.sh: error: $PY not found; run tools/pi/setup.sh first (or set PY=...)" >&2
    exit 3
fi

run() {
    if [ "$DRY_RUN" -eq 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

run mkdir -p "$OUT"
failed=0
for model in $MODELS; do
    for split in $SPLITS; do
        for device in $DEVICES; do
            dir="$OUT/$model-$split-$device"
            args=(-m benchmark.run --model "$model" --split "$split" --device "$device"
                  --out "$dir" --quiet)
            if [ -n "$LIMIT" ]; then args+=(--limit "$LIMIT"); fi
            echo "== $model / $split / $device"
            if [ "$DRY_RUN" -eq 1 ]; then
                printf '+ %s %s > %s/stdout.txt\n' "$PY" "${args[*]}" "$dir"
                continue
            fi
            mkdir -p "$dir"
            if (cd "$ROOT" && "$PY" "${args[@]}") >"$dir/stdout.txt" 2>"$dir/stderr.txt"; then
                head -n 4 "$dir/stdout.txt"
            else
                rc=$?
                echo "FAILED (exit $rc): $(tail -n 1 "$dir/stderr.txt")"
                echo "$model $split $device exit=$rc $(tail -n 1 "$dir/stderr.txt")" \
                    >>"$OUT/failures.txt"
                failed=1
            fi
        done
    done
done

host_info() {
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "uname: $(uname -a)"
    if [ -r /etc/os-release ]; then grep -E '^(PRETTY_NAME|VERSION_ID)=' /etc/os-release; fi
    if [ -r /proc/device-tree/model ]; then echo "board: $(tr -d '\0' </proc/device-tree/model)"; fi
    grep -m1 -E '^(model name|Model)' /proc/cpuinfo 2>/dev/null || true
    echo "cpus: $(getconf _NPROCESSORS_ONLN)"
    if command -v vcgencmd >/dev/null; then vcgencmd measure_temp || true; fi
    if command -v lsusb >/dev/null; then lsusb | grep -Ei '1a6e:089a|18d1:9302' || echo "no Coral USB device listed"; fi
    dpkg -l 2>/dev/null | awk '/libedgetpu1/ {print "runtime:", $2, $3}' || true
    echo "python: $("$PY" --version 2>&1)"
    "$PY" -m pip freeze 2>/dev/null || true
    echo "git: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
}

if [ "$DRY_RUN" -eq 1 ]; then
    echo "+ host_info > $OUT/host.txt"
    echo "+ tar -czf $OUT.tar.gz -C $(dirname "$OUT") $(basename "$OUT")"
    exit 0
fi
host_info >"$OUT/host.txt" 2>&1
tar -czf "$OUT.tar.gz" -C "$(dirname "$OUT")" "$(basename "$OUT")"
echo "archive: $OUT.tar.gz"
exit "$failed"

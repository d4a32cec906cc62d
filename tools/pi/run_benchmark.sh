#!/usr/bin/env bash
# Pi side of the host <-> Pi workflow (docs/edge-tpu.md, "Host and Pi"): run models x splits
# x devices, then pack the run directories with host information into one archive to copy
# back to the host (python -m benchmark.report merges it with the host's runs).
#
#   tools/pi/run_benchmark.sh [--bundle DIR|DIR.tar.gz] [--model M]... [--models "a b"]
#                             [--model-dir DIR] [--data-dir DIR] [--dataset NAME]
#                             [--cache-dir DIR] [--splits "full verification"]
#                             [--devices "edgetpu cpu"] [--limit N] [--out DIR] [--dry-run]
#                             [-- benchmark.run options]
#
#   --bundle B     a bundle from tools/compile_all.sh (a .tar.gz is unpacked beside itself);
#                  its MANIFEST.sha256 is checked, --model-dir is B/models and, unless given,
#                  the models and splits are the ones in it
#   --model M      a model for benchmark.run --model: a registered name or a path
#                  (repeatable; --models takes a space-separated list; default signnet)
#   --model-dir D  models root holding <model>/<split>/ (benchmark.run --model-dir)
#   --data-dir D, --dataset NAME, --cache-dir D    passed to benchmark.run
#   --splits, --devices, --limit N                 the combinations and images per run
#   --out DIR      where the runs go (default runs/pi-<UTC time>); refused if not empty
#   -- ...         passed to every benchmark.run (e.g. -- --latency 200)
#
# Each combination is one `python -m benchmark.run` into OUT/<model>-<split>-<device>/ (its
# stdout and stderr in OUT/logs/<model>-<split>-<device>.stdout.txt / .stderr.txt). A
# failing combination (e.g. no Edge TPU attached) is logged in OUT/failures.txt and the others
# still run; the exit code is 1 when any failed. The archive is OUT.tar.gz; OUT/host.txt
# records board, OS, CPU, temperature, USB devices, libedgetpu package, pip freeze, git.
#
# Environment: PY (the interpreter, default .venv/bin/python) and the harness's own
# EDGETPU_BENCH_MODELS (models root, default models/), EDGETPU_BENCH_CACHE (dataset and
# prediction cache, default datasets/cache/), EDGETPU_BENCH_DATA_WORKERS (dataset decoding
# processes), EDGETPU_BENCH_CPU_KERNELS (xnnpack|builtin|reference, as --cpu-kernels),
# EDGETPU_BENCH_TPU_TIMEOUT (seconds one Edge TPU call may take before the child is declared
# hung), EDGETPU_BENCH_PAIRING=off (run a known-bad libedgetpu/interpreter pair anyway),
# EDGETPU_BENCH_GTSRB_URL (--download source), EDGETPU_BENCH_PROGRESS=0|1 (progress bars off or
# on; default: on a terminal), EDGETPU_BENCH_DEBUG=1 (tracebacks).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
MODELS=()
SPLITS=""
DEVICES="edgetpu cpu"
LIMIT=""
OUT=""
BUNDLE=""
PASS=()
EXTRA=()
DRY_RUN=0
PY=${PY:-"$ROOT/.venv/bin/python"}

usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "run_benchmark.sh: error: $2" >&2; exit "$1"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --bundle) BUNDLE=${2:?--bundle needs a directory or .tar.gz}; shift ;;
        --model) MODELS+=("${2:?--model needs a name or path}"); shift ;;
        --models) read -r -a more <<<"${2:?}"; MODELS+=("${more[@]}"); shift ;;
        --model-dir|--data-dir|--dataset|--cache-dir) PASS+=("$1" "${2:?$1 needs a value}"); shift ;;
        --splits) SPLITS=${2:?}; shift ;;
        --devices|--device) DEVICES=${2:?}; shift ;;
        --limit) LIMIT=${2:?}; shift ;;
        --out) OUT=${2:?}; shift ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) die 2 "unknown option $1 (see --help; benchmark.run options go after --)" ;;
    esac
    shift
done

OUT=${OUT:-"$ROOT/runs/pi-$(date -u +%Y%m%d-%H%M%S)"}
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    die 2 "$OUT exists and is not empty"
fi
if [ "$DRY_RUN" -eq 0 ] && [ ! -x "$PY" ]; then
    die 3 "$PY not found; run tools/pi/setup.sh first (or set PY=...)"
fi

run() {
    if [ "$DRY_RUN" -eq 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

# --- the bundle -------------------------------------------------------------------------
# (model, split) pairs to run: "model split" lines. From the bundle unless --model given.
pairs=()
if [ -n "$BUNDLE" ]; then
    case "$BUNDLE" in
        *.tar.gz)
            [ -f "$BUNDLE" ] || die 3 "--bundle $BUNDLE: no such file"
            dir=${BUNDLE%.tar.gz}
            if [ ! -d "$dir" ]; then tar -xzf "$BUNDLE" -C "$(dirname "$BUNDLE")"; fi
            BUNDLE=$dir ;;
    esac
    [ -f "$BUNDLE/MANIFEST.sha256" ] || die 3 "--bundle $BUNDLE: no MANIFEST.sha256 (not made by tools/compile_all.sh?)"
    if ! (cd "$BUNDLE" && sha256sum -c --quiet MANIFEST.sha256) >/dev/null 2>&1; then
        die 3 "--bundle $BUNDLE: files differ from MANIFEST.sha256 (copy it again)"
    fi
    BUNDLE=$(cd "$BUNDLE" && pwd)
    PASS+=(--model-dir "$BUNDLE/models")
    if [ ${#MODELS[@]} -eq 0 ]; then
        while IFS= read -r d; do
            rel=${d#"$BUNDLE/models/"}
            case "$rel" in
                */full|*/verification)                     # <model>/<split>: a model name
                    if [[ "$rel" != */*/* ]]; then pairs+=("${rel%%/*} ${rel#*/}"); continue; fi ;;
            esac
            pairs+=("$BUNDLE/models/$rel -")               # any other folder: --model PATH
        done < <(find "$BUNDLE/models" -name '*_int8.tflite' -exec dirname {} \; | LC_ALL=C sort -u)
    fi
fi
if [ ${#pairs[@]} -eq 0 ]; then
    if [ ${#MODELS[@]} -eq 0 ]; then MODELS=(signnet); fi
    for model in "${MODELS[@]}"; do
        for split in ${SPLITS:-full verification}; do pairs+=("$model $split"); done
    done
fi

# --- the runs ---------------------------------------------------------------------------
run mkdir -p "$OUT"
failed=0
for pair in "${pairs[@]}"; do
    model=${pair% *}
    split=${pair##* }
    if [ -n "$SPLITS" ] && [ "$split" != "-" ] && [[ " $SPLITS " != *" $split "* ]]; then continue; fi
    name=$(basename "$model"); name=${name%.tflite}; name=${name%.keras}
    for s in $( [ "$split" = "-" ] && echo "${SPLITS:-verification}" || echo "$split"); do
        for device in $DEVICES; do
            dir="$OUT/$name-$s-$device"
            args=(-m benchmark.run --model "$model" --split "$s" --device "$device"
                  --out "$dir" --quiet ${PASS[@]+"${PASS[@]}"})
            if [ -n "$LIMIT" ]; then args+=(--limit "$LIMIT"); fi
            args+=(${EXTRA[@]+"${EXTRA[@]}"})
            log="$OUT/logs/$name-$s-$device"
            echo "== $name / $s / $device"
            if [ "$DRY_RUN" -eq 1 ]; then
                printf '+ %s %s > %s.stdout.txt\n' "$PY" "${args[*]}" "$log"
                continue
            fi
            mkdir -p "$OUT/logs"
            rc=0
            (cd "$ROOT" && "$PY" "${args[@]}") >"$log.stdout.txt" 2>"$log.stderr.txt" || rc=$?
            if [ "$rc" -eq 0 ]; then
                head -n 4 "$log.stdout.txt"
            else
                echo "FAILED (exit $rc): $(tail -n 1 "$log.stderr.txt")"
                echo "$name $s $device exit=$rc $(tail -n 1 "$log.stderr.txt")" >>"$OUT/failures.txt"
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
    ls /dev/apex_* 2>/dev/null || true
    dpkg -l 2>/dev/null | awk '/libedgetpu1|gasket-dkms/ {print "package:", $2, $3}' || true
    if [ -n "$BUNDLE" ]; then echo "bundle: $BUNDLE"; fi
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

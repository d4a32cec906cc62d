#!/usr/bin/env bash
# Host side of the host <-> Pi workflow (docs/edge-tpu.md, "Host and Pi"): compile int8
# models for the Edge TPU (edgetpu_compiler runs on x86-64 Linux only) and bundle what the
# Pi needs into one directory and tarball.
#
#   tools/compile_all.sh [--model-dir DIR]... [--model FILE]... [--out DIR] [--no-tar]
#                        [--allow-uncompiled] [--dry-run] [-- benchmark.compile options]
#
#   --model-dir DIR     every *_int8.tflite below DIR (default: models/, the shipped ones);
#                       repeatable; DIR/<model>/<split>/ keeps its layout in the bundle
#   --model FILE        one int8 .tflite of any name: its folder goes into the bundle (as
#                       <model>/<split>/ when the folder is named full or verification)
#   --out DIR           the bundle (default runs/bundle-<UTC time>); refused if not empty
#   --no-tar            do not write DIR.tar.gz
#   --allow-uncompiled  without edgetpu_compiler, bundle the CPU models and the analyzer's
#                       prediction only (the Pi can then run --device cpu; existing
#                       *_edgetpu.tflite files are copied as they are)
#   --dry-run           print what would be done
#   -- ...              passed to every `python -m benchmark.compile` (e.g. -- -m 13 -a)
#
# The bundle: DIR/models/<path>/ per model folder, holding the compiled *_edgetpu.tflite with
# its .log and _compile.json, the CPU models (*.tflite: float, int8) and their metadata
# (*.json, *.toml, labels *.txt, MODEL_CARD.md; no .keras, the Pi does not need them);
# DIR/bundle.json (date, host, compiler version, git commit, one record per model) and
# DIR/MANIFEST.sha256 (sha256sum -c MANIFEST.sha256 checks a copy). The sources are not
# modified. Exit code 1 when a model fails to compile (the others are still bundled),
# 2 for bad options, 3 for missing models, 4 without edgetpu_compiler.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-"$ROOT/.venv/bin/python"}
DRY_RUN=0
TAR=1
ALLOW_UNCOMPILED=0
OUT=""
DIRS=()
FILES=()
EXTRA=()

usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "compile_all.sh: error: $2" >&2; exit "$1"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --model-dir) DIRS+=("${2:?--model-dir needs a directory}"); shift ;;
        --model) FILES+=("${2:?--model needs a file}"); shift ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        --no-tar) TAR=0 ;;
        --allow-uncompiled) ALLOW_UNCOMPILED=1 ;;
        --dry-run) DRY_RUN=1 ;;
        -h|--help) usage; exit 0 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) die 2 "unknown option $1 (see --help; benchmark.compile options go after --)" ;;
    esac
    shift
done
if [ ${#DIRS[@]} -eq 0 ] && [ ${#FILES[@]} -eq 0 ]; then DIRS=("$ROOT/models"); fi
OUT=${OUT:-"$ROOT/runs/bundle-$(date -u +%Y%m%d-%H%M%S)"}
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    die 2 "--out $OUT exists and is not empty"
fi

run() {
    if [ "$DRY_RUN" -eq 1 ]; then printf '+ %s\n' "$*"; else "$@"; fi
}

COMPILER=""
if command -v edgetpu_compiler >/dev/null 2>&1; then
    COMPILER=$(command -v edgetpu_compiler)
elif [ "$ALLOW_UNCOMPILED" -eq 0 ] && [ "$DRY_RUN" -eq 1 ]; then
    echo "note: edgetpu_compiler not found on PATH: the real run needs it" >&2
    COMPILER=edgetpu_compiler
elif [ "$ALLOW_UNCOMPILED" -eq 0 ]; then
    die 4 "edgetpu_compiler not found on PATH (x86-64 Linux: apt-get install edgetpu-compiler from Coral's apt repository); --allow-uncompiled bundles the CPU models only"
else
    echo "warning: edgetpu_compiler not found: the bundle holds CPU models and the analyzer's" \
         "prediction only" >&2
fi

# --- collect: source model -> bundle folder ---------------------------------------------
sources=()   # int8 model paths
dests=()     # their folders in the bundle, relative to $OUT/models
add() {  # add MODEL DEST
    local i
    for i in "${!dests[@]}"; do
        if [ "${dests[$i]}" = "$2" ] && [ "$(dirname "${sources[$i]}")" != "$(dirname "$1")" ]; then
            die 2 "$(dirname "${sources[$i]}") and $(dirname "$1") would both go to models/$2 in the bundle; bundle them separately"
        fi
    done
    sources+=("$1")
    dests+=("$2")
}
is_split() { case "$1" in full|verification) return 0 ;; *) return 1 ;; esac; }
dest_for() {  # dest_for DIR REL: the bundle folder of DIR/REL, keeping <model>/<split>/
    local b
    b=$(basename "$1")
    if [ "$2" = "." ]; then
        if is_split "$b"; then echo "$(basename "$(dirname "$1")")/$b"; else echo "$b"; fi
    elif is_split "${2%%/*}"; then
        echo "$b/$2"
    else
        echo "$2"
    fi
}
for d in ${DIRS[@]+"${DIRS[@]}"}; do
    [ -d "$d" ] || die 3 "--model-dir $d: no such directory"
    d=$(cd "$d" && pwd)
    found=0
    while IFS= read -r m; do
        add "$m" "$(dest_for "$d" "$(dirname "${m#"$d"/}")")"
        found=1
    done < <(find "$d" -name '*_int8.tflite' -type f | LC_ALL=C sort)
    [ "$found" -eq 1 ] || die 3 "--model-dir $d: no *_int8.tflite below it"
done
for f in ${FILES[@]+"${FILES[@]}"}; do
    [ -f "$f" ] || die 3 "--model $f: no such file"
    case "$f" in *_edgetpu.tflite) die 2 "--model $f is already compiled: give the int8 model" ;; esac
    f="$(cd "$(dirname "$f")" && pwd)/$(basename "$f")"
    add "$f" "$(dest_for "$(dirname "$f")" .)"
done

# --- copy and compile -------------------------------------------------------------------
copy_folder() {  # copy_folder SRC_DIR DEST_DIR: the files the Pi needs
    local src=$1 dest=$2 f files=()
    for f in "$src"/*; do
        [ -f "$f" ] || continue
        case "$(basename "$f")" in
            *_edgetpu.tflite|*_edgetpu.log)
                if [ -z "$COMPILER" ]; then files+=("$f"); fi ;;
            *.tflite|*.json|*.toml|*.txt|MODEL_CARD.md) files+=("$f") ;;
        esac
    done
    run mkdir -p "$dest"
    run cp -p "${files[@]}" "$dest/"
}

status=0
records=()
copied=" "
for i in "${!sources[@]}"; do
    m=${sources[$i]}
    dest="$OUT/models/${dests[$i]}"
    echo "== ${m#"$ROOT"/} -> ${dest#"$OUT"/}/"
    case "$copied" in *" $dest "*) ;; *) copy_folder "$(dirname "$m")" "$dest"; copied+="$dest " ;; esac
    cmd=("$PY" -m benchmark.compile "$dest/$(basename "$m")" --out-dir "$dest")
    if [ -z "$COMPILER" ]; then cmd+=(--analyze-only); fi
    cmd+=(${EXTRA[@]+"${EXTRA[@]}"})
    rc=0
    if [ "$DRY_RUN" -eq 1 ]; then printf '+ %s\n' "${cmd[*]}"; else (cd "$ROOT" && "${cmd[@]}") || rc=$?; fi
    if [ "$rc" -gt "$status" ]; then status=$rc; fi
    records+=("${dests[$i]}/$(basename "$m")"$'\t'"$rc")
done

# --- manifest and tarball ---------------------------------------------------------------
if [ "$DRY_RUN" -eq 1 ]; then
    echo "+ write $OUT/bundle.json and $OUT/MANIFEST.sha256"
    if [ "$TAR" -eq 1 ]; then echo "+ tar -czf $OUT.tar.gz -C $(dirname "$OUT") $(basename "$OUT")"; fi
    exit 0
fi
compiler_version=""
if [ -n "$COMPILER" ]; then compiler_version=$("$COMPILER" --version 2>&1 | head -n 1 || true); fi
printf '%s\n' "${records[@]}" | BUNDLE="$OUT" COMPILER_VERSION="$compiler_version" \
    GIT=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown) \
    HOST="$(uname -srm)" "$PY" -c '
import datetime, json, os, sys
from pathlib import Path
out = Path(os.environ["BUNDLE"])
models = []
for line in sys.stdin.read().splitlines():
    rel, rc = line.split("\t")
    int8 = out / "models" / rel
    compiled = int8.with_name(int8.stem + "_edgetpu.tflite")
    models.append({"int8": "models/" + rel, "compile_exit": int(rc),
                   "compiled": str(compiled.relative_to(out)) if compiled.is_file() else None})
info = {"created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "host": os.environ["HOST"], "compiler": os.environ["COMPILER_VERSION"] or None,
        "git": os.environ["GIT"], "models": models}
(out / "bundle.json").write_text(json.dumps(info, indent=2) + "\n")
'
(cd "$OUT" && find models bundle.json -type f | LC_ALL=C sort | xargs sha256sum >MANIFEST.sha256)
echo "bundle: $OUT ($(find "$OUT/models" -name '*_edgetpu.tflite' | wc -l) compiled, ${#sources[@]} int8 models)"
if [ "$TAR" -eq 1 ]; then
    tar -czf "$OUT.tar.gz" -C "$(dirname "$OUT")" "$(basename "$OUT")"
    echo "archive: $OUT.tar.gz (copy it to the Pi: tools/pi/run_benchmark.sh --bundle ...)"
fi
exit "$status"

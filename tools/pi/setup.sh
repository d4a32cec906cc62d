#!/usr/bin/env bash
# Set up a Raspberry Pi (or any Debian/Ubuntu host) with a Coral USB Accelerator for
# edgetpu-bench. Idempotent: steps that are already done are skipped.
#
#   tools/pi/setup.sh [--dry-run] [--max] [--venv DIR] [--python PYTHON]
#
#   --dry-run   print every action instead of running it (changes nothing)
#   --max       install libedgetpu1-max (full clock; the USB stick runs hot) instead of -std
#   --venv DIR  virtual environment to create (default: .venv in the repository)
#   --python P  interpreter for the venv (default: python3)
#
# No TensorFlow is installed: the Pi only runs the shipped .tflite models.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DRY_RUN=0
RUNTIME=libedgetpu1-std
VENV="$ROOT/.venv"
PYTHON=python3
KEYRING=/usr/share/keyrings/coral-edgetpu-archive-keyring.gpg
LIST=/etc/apt/sources.list.d/coral-edgetpu.list
REPO_URL=https://packages.cloud.google.com/apt

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --max) RUNTIME=libedgetpu1-max ;;
        --venv) VENV=${2:?--venv needs a directory}; shift ;;
        --python) PYTHON=${2:?--python needs an interpreter}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "setup.sh: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

run() {
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ %s\n' "$*"
    else
        "$@"
    fi
}

step() { printf '== %s\n' "$*"; }

step "Coral apt repository"
if [ -f "$LIST" ]; then
    echo "already configured: $LIST"
else
    run $SUDO mkdir -p "$(dirname "$KEYRING")"
    if [ "$DRY_RUN" -eq 1 ]; then
        printf '+ curl -fsSL %s/doc/apt-key.gpg | %s gpg --dearmor -o %s\n' \
            "$REPO_URL" "$SUDO" "$KEYRING"
        printf '+ echo "deb [signed-by=%s] %s coral-edgetpu-stable main" | %s tee %s\n' \
            "$KEYRING" "$REPO_URL" "$SUDO" "$LIST"
    else
        curl -fsSL "$REPO_URL/doc/apt-key.gpg" | $SUDO gpg --dearmor --yes -o "$KEYRING"
        echo "deb [signed-by=$KEYRING] $REPO_URL coral-edgetpu-stable main" \
            | $SUDO tee "$LIST" >/dev/null
    fi
fi

step "Edge TPU runtime ($RUNTIME)"
if dpkg -s "$RUNTIME" >/dev/null 2>&1; then
    echo "already installed: $RUNTIME"
else
    run $SUDO apt-get update
    # -std and -max conflict; apt replaces the other one.
    run $SUDO apt-get install -y "$RUNTIME"
fi

step "USB permissions"
user=${SUDO_USER:-$(id -un)}
if id -nG "$user" | tr ' ' '\n' | grep -qx plugdev; then
    echo "$user is in plugdev"
else
    run $SUDO usermod -aG plugdev "$user"
    echo "note: log out and in again (or reboot) so $user's plugdev membership applies;"
    echo "      the libedgetpu package installs the udev rule for the USB Accelerator."
fi
echo "note: unplug and replug the Coral USB Accelerator after installing the runtime."

step "Python environment ($VENV)"
if [ -x "$VENV/bin/python" ]; then
    echo "venv exists: $VENV"
else
    run "$PYTHON" -m venv "$VENV"
fi
run "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$ROOT/requirements.txt"
run "$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-deps -e "$ROOT"

step "Check"
run "$VENV/bin/python" -c "from benchmark.backends.edgetpu import find_delegate_library as f; \
print('libedgetpu:', f() or 'NOT FOUND')"
echo "done. Next: tools/pi/run_benchmark.sh"

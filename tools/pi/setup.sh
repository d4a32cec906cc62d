#!/usr/bin/env bash
# Set up a Raspberry Pi (Raspberry Pi OS / Debian 12 bookworm, aarch64) or a Debian 12 /
# Ubuntu 24.04 x86-64 host with a Coral Edge TPU for edgetpu-bench. Idempotent: steps that
# are already done are skipped.
#
#   tools/pi/setup.sh [--dry-run] [--max] [--pcie] [--venv DIR] [--python PYTHON]
#                     [--probe-model FILE] [--no-probe]
#
#   --dry-run           print every action instead of running it (changes nothing)
#   --max               libedgetpu1-max (full clock; the USB stick runs hot) instead of -std
#   --pcie              also set up an M.2 / Mini PCIe Accelerator: the gasket-dkms driver,
#                       the apex group and udev rule and, on a Raspberry Pi 5, the PCIe lines
#                       of /boot/firmware/config.txt and cmdline.txt (reboot afterwards)
#   --venv DIR          virtual environment to create (default: .venv in the repository)
#   --python P          interpreter for the venv (default: python3; 3.11 or 3.12)
#   --probe-model FILE  compiled *_edgetpu.tflite the check loads the delegate on (default:
#                       Coral's mobilenet_v1_0.25_128_quant_edgetpu.tflite, downloaded once
#                       and checked against its SHA-256)
#   --no-probe          check the pairing and list devices, but do not load the delegate
#
# It installs a matched runtime pair (docs/edge-tpu.md, "Runtime pairing"): feranick's
# libedgetpu 16.0 rebuilt against TF 2.17.1 (github.com/feranick/libedgetpu, release
# 16.0TF2.17.1-1) with tflite_runtime 2.17.1 built from the same TF (github.com/feranick/
# TFlite-builds, release v2.17.1). Coral's own libedgetpu 16.0 is built against TF 2.5 and
# works with tflite_runtime 2.5.0.post1 only, which has no wheel for Python 3.11;
# ai-edge-litert and newer tflite-runtime crash with it (google-coral/edgetpu#812).
# No TensorFlow is installed: the Pi only runs .tflite models.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DRY_RUN=0
FLAVOUR=std
PCIE=0
PROBE=1
PROBE_MODEL=""
VENV="$ROOT/.venv"
PYTHON=python3
# Test hooks: the files describing the OS and the board.
OS_RELEASE=${EDGETPU_SETUP_OS_RELEASE:-/etc/os-release}
DT_MODEL=${EDGETPU_SETUP_DT_MODEL:-/proc/device-tree/model}
BOOT_DIR=${EDGETPU_SETUP_BOOT_DIR:-/boot/firmware}

LIBEDGETPU_VERSION=16.0tf2.17.1-1
LIBEDGETPU_URL=https://github.com/feranick/libedgetpu/releases/download/16.0TF2.17.1-1
TFLITE_VERSION=2.17.1
TFLITE_URL=https://github.com/feranick/TFlite-builds/releases/download/v2.17.1
GASKET_DEB=gasket-dkms_1.0-18.2_all.deb
GASKET_URL=https://github.com/feranick/gasket-driver/releases/download/1.0-18.2
PROBE_NAME=mobilenet_v1_0.25_128_quant_edgetpu.tflite
PROBE_URL=https://github.com/google-coral/test_data/raw/master/$PROBE_NAME
PROBE_SHA256=a4cb1e493346542248687939fbd7421ab92d74c58b1f0a0018b8f1bdddfcef7e

usage() { sed -n '2,/^[^#]/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
die() { echo "setup.sh: error: $2" >&2; exit "$1"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --max) FLAVOUR=max ;;
        --pcie) PCIE=1 ;;
        --no-probe) PROBE=0 ;;
        --probe-model) PROBE_MODEL=${2:?--probe-model needs a file}; shift ;;
        --venv) VENV=${2:?--venv needs a directory}; shift ;;
        --python) PYTHON=${2:?--python needs an interpreter}; shift ;;
        -h|--help) usage; exit 0 ;;
        *) die 2 "unknown option $1 (see --help)" ;;
    esac
    shift
done
RUNTIME=libedgetpu1-$FLAVOUR

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

os_field() { sed -n "s/^$1=//p" "$OS_RELEASE" 2>/dev/null | tr -d '"' | head -n 1; }

# dpkg-query "<version> <status>" of an installed package, empty when not installed.
installed_version() {
    { dpkg-query -W -f '${Version} ${db:Status-Abbrev}\n' "$1" 2>/dev/null || true; } \
        | awk '$2 == "ii" {print $1}'
}

# --- the host and its matched pair ------------------------------------------------------
ARCH=$(uname -m)
OS_ID=$(os_field ID)
OS_CODENAME=$(os_field VERSION_CODENAME)
OS_VERSION=$(os_field VERSION_ID)
OS_NAME=$(os_field PRETTY_NAME)
BOARD=""
if [ -r "$DT_MODEL" ]; then BOARD=$(tr -d '\0' <"$DT_MODEL"); fi

case "$OS_ID/$OS_CODENAME/$ARCH" in
    debian/bookworm/aarch64|raspbian/bookworm/aarch64) DIST=bookworm; DEB_ARCH=arm64 ;;
    debian/bookworm/x86_64) DIST=bookworm; DEB_ARCH=amd64 ;;
    ubuntu/*/x86_64)
        if [ "$OS_VERSION" != "24.04" ]; then
            die 2 "unsupported host: ${OS_NAME:-$OS_ID $OS_VERSION} ($ARCH): the matched pair is built for Ubuntu 24.04 (x86-64) and Debian 12 bookworm (aarch64, x86-64); see docs/edge-tpu.md"
        fi
        DIST=ubuntu24.04; DEB_ARCH=amd64 ;;
    *) die 2 "unsupported host: ${OS_NAME:-unknown OS} ($ARCH): supported are Raspberry Pi OS / Debian 12 bookworm (aarch64, x86-64) and Ubuntu 24.04 (x86-64); see docs/edge-tpu.md" ;;
esac

if ! PYV=$("$PYTHON" -c 'import sys; print("%d%d" % sys.version_info[:2])' 2>/dev/null); then
    die 3 "$PYTHON not found (apt-get install python3 python3-venv, or --python P)"
fi
case "$PYV" in
    311|312) ;;
    *) die 2 "$PYTHON is Python ${PYV:0:1}.${PYV:1}: tflite_runtime $TFLITE_VERSION wheels of the matched pair are used for 3.11 (bookworm) and 3.12 (Ubuntu 24.04); give --python python3.11" ;;
esac

DEB=${RUNTIME}_${LIBEDGETPU_VERSION}.${DIST}_${DEB_ARCH}.deb
WHEEL=tflite_runtime-${TFLITE_VERSION}-cp${PYV}-cp${PYV}-linux_${ARCH}.whl
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/edgetpu-bench

step "Host"
echo "host: ${OS_NAME:-$OS_ID} $ARCH${BOARD:+, $BOARD}, python ${PYV:0:1}.${PYV:1}"
echo "matched pair: $RUNTIME $LIBEDGETPU_VERSION + tflite_runtime $TFLITE_VERSION (cp$PYV)"
echo "  $LIBEDGETPU_URL/$DEB"
echo "  $TFLITE_URL/$WHEEL"

# --- libedgetpu -------------------------------------------------------------------------
step "Edge TPU runtime ($RUNTIME $LIBEDGETPU_VERSION)"
have=$(installed_version "$RUNTIME")
if [ "$have" = "$LIBEDGETPU_VERSION" ]; then
    echo "already installed: $RUNTIME $have"
else
    if [ -n "$have" ]; then
        echo "replacing $RUNTIME $have (a libedgetpu built for another TFLite, see docs/edge-tpu.md)"
    fi
    run mkdir -p "$CACHE"
    run curl -fL --retry 3 -o "$CACHE/$DEB" "$LIBEDGETPU_URL/$DEB"
    # apt installs the dependencies (libusb-1.0-0); -std and -max conflict, apt replaces the other.
    run $SUDO apt-get install -y "$CACHE/$DEB"
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

# --- PCIe / M.2 -------------------------------------------------------------------------
append_line() {  # append_line FILE LINE: add LINE to FILE unless it is there (backup once)
    if grep -qxF "$2" "$1" 2>/dev/null; then
        echo "already in $1: $2"
    elif [ "$DRY_RUN" -eq 1 ]; then
        printf '+ echo %q | %stee -a %s\n' "$2" "${SUDO:+$SUDO }" "$1"
    else
        [ -e "$1.edgetpu-bench.bak" ] || $SUDO cp "$1" "$1.edgetpu-bench.bak"
        echo "$2" | $SUDO tee -a "$1" >/dev/null
    fi
}

pcie_setup() {
    step "PCIe / M.2 Accelerator (gasket driver, apex group)"
    if [ -n "$(installed_version gasket-dkms)" ]; then
        echo "already installed: gasket-dkms $(installed_version gasket-dkms)"
    else
        run curl -fL --retry 3 -o "$CACHE/$GASKET_DEB" "$GASKET_URL/$GASKET_DEB"
        run $SUDO apt-get install -y dkms "linux-headers-$(uname -r)" "$CACHE/$GASKET_DEB"
    fi
    local rule='SUBSYSTEM=="apex", MODE="0660", GROUP="apex"'
    if grep -qxF "$rule" /etc/udev/rules.d/65-apex.rules 2>/dev/null; then
        echo "udev rule present: /etc/udev/rules.d/65-apex.rules"
    elif [ "$DRY_RUN" -eq 1 ]; then
        printf "+ echo '%s' | %stee /etc/udev/rules.d/65-apex.rules\n" "$rule" "${SUDO:+$SUDO }"
    else
        echo "$rule" | $SUDO tee /etc/udev/rules.d/65-apex.rules >/dev/null
    fi
    if getent group apex >/dev/null 2>&1; then echo "group apex exists"; else run $SUDO groupadd apex; fi
    if id -nG "$user" | tr ' ' '\n' | grep -qx apex; then
        echo "$user is in apex"
    else
        run $SUDO usermod -aG apex "$user"
    fi
    case "$BOARD" in
        *"Raspberry Pi 5"*)
            # The 16K-page Pi 5 kernel does not work with the gasket driver: boot the 4K-page
            # kernel8.img, enable the external PCIe connector at Gen 2, and switch off ASPM.
            append_line "$BOOT_DIR/config.txt" "kernel=kernel8.img"
            append_line "$BOOT_DIR/config.txt" "dtparam=pciex1"
            append_line "$BOOT_DIR/config.txt" "dtparam=pciex1_gen=2"
            if grep -q 'pcie_aspm=off' "$BOOT_DIR/cmdline.txt" 2>/dev/null; then
                echo "already in $BOOT_DIR/cmdline.txt: pcie_aspm=off"
            else
                run $SUDO sed -i '1 s/$/ pcie_aspm=off/' "$BOOT_DIR/cmdline.txt"
            fi
            echo "note: if 'dmesg | grep apex' shows \"Couldn't initialize interrupts: -28\","
            echo "      apply the msi-parent device-tree fix (docs/edge-tpu.md, PCIe section)." ;;
    esac
    echo "note: reboot, then 'ls /dev/apex_0' must exist (docs/edge-tpu.md, PCIe section)."
}
if [ "$PCIE" -eq 1 ]; then pcie_setup; fi

# --- Python -----------------------------------------------------------------------------
step "Python environment ($VENV)"
if [ -x "$VENV/bin/python" ]; then
    echo "venv exists: $VENV"
else
    run "$PYTHON" -m venv "$VENV"
fi
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
# numpy < 2: a TFLite wheel built against numpy 1 fails at Interpreter() beside numpy 2.
run "${pip[@]}" -r "$ROOT/requirements.txt" "numpy>=1.26,<2"
run "${pip[@]}" "numpy>=1.26,<2" "$TFLITE_URL/$WHEEL"
run "${pip[@]}" --no-deps -e "$ROOT"

# --- check ------------------------------------------------------------------------------
step "Check"
failed=0
check() {  # check WHAT CMD...: run a check, report and remember a failure
    local what=$1; shift
    if [ "$DRY_RUN" -eq 1 ]; then printf '+ %s\n' "$*"; return 0; fi
    local rc=0
    "$@" || rc=$?
    if [ "$rc" -ne 0 ]; then echo "CHECK FAILED: $what (exit $rc)"; failed=1; fi
}
py="$VENV/bin/python"
check "runtime pairing" "$py" -m benchmark.backends.pairing
check "devices" "$py" -m benchmark.devices
if [ "$PROBE" -eq 1 ]; then
    if [ -z "$PROBE_MODEL" ]; then
        PROBE_MODEL="$CACHE/$PROBE_NAME"
        if [ ! -f "$PROBE_MODEL" ]; then
            run mkdir -p "$CACHE"
            run curl -fL --retry 3 -o "$PROBE_MODEL" "$PROBE_URL"
        fi
        if [ "$DRY_RUN" -eq 1 ]; then
            printf '+ echo "%s  %s" | sha256sum -c -\n' "$PROBE_SHA256" "$PROBE_MODEL"
        elif ! echo "$PROBE_SHA256  $PROBE_MODEL" | sha256sum -c - >/dev/null; then
            die 3 "$PROBE_MODEL does not have the expected SHA-256 (delete it, or give --probe-model)"
        fi
    elif [ ! -f "$PROBE_MODEL" ]; then
        die 3 "--probe-model $PROBE_MODEL: no such file"
    fi
    # A child process loads the delegate and invokes twice: a crash or hang is one line.
    check "delegate on $PROBE_MODEL" "$py" -m benchmark.backends.pairing --probe "$PROBE_MODEL"
fi
if [ "$failed" -ne 0 ]; then
    echo "setup.sh: the check failed (above); docs/edge-tpu.md lists the causes" >&2
    exit 4
fi
echo "done. Next: tools/pi/run_benchmark.sh (docs/edge-tpu.md, 'Host and Pi')"

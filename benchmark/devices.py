"""Edge TPU devices: ``--edgetpu-device`` syntax, what libedgetpu sees, USB link speed.

``edgetpu-bench devices`` (or ``python -m benchmark.devices``) lists the Edge
TPUs the installed libedgetpu enumerates through its C API
(``edgetpu_list_devices`` / ``edgetpu_free_devices`` of
``tflite/public/edgetpu_c.h`` in google-coral/libedgetpu), with the USB link
speed read from sysfs for USB devices. Without libedgetpu it prints one line
and exits 4.

The C structures (edgetpu_c.h)::

    enum edgetpu_device_type { EDGETPU_APEX_PCI = 0, EDGETPU_APEX_USB = 1 };
    struct edgetpu_device { enum edgetpu_device_type type; const char* path; };
    struct edgetpu_device* edgetpu_list_devices(size_t* num_devices);
    void edgetpu_free_devices(struct edgetpu_device* dev);
    const char* edgetpu_version();
"""

from __future__ import annotations

import argparse
import ctypes
import sys
from pathlib import Path

from benchmark.backends.edgetpu import (delegate_library_name, find_delegate_library,
                                        install_hint, parse_device_spec)
from benchmark.cli import main_wrapper, prog_name
from benchmark.errors import BackendUnavailable

__all__ = ["parse_device_spec", "resolve_device", "list_devices", "runtime_version",
           "coral_usb_devices", "usb_link_speed", "describe_device", "device_used"]

#: Device types of ``enum edgetpu_device_type``.
DEVICE_TYPES = {0: "pci", 1: "usb"}
#: USB vendor:product of the Coral USB Accelerator before (DFU) and after firmware load.
CORAL_USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))
#: sysfs ``speed`` (Mbit/s) -> the USB generation it means.
USB_SPEEDS = {"1.5": "USB 1.0 low speed", "12": "USB 1.1 full speed", "480": "USB 2.0",
              "5000": "USB 3.0", "10000": "USB 3.1", "20000": "USB 3.2"}


def resolve_device(spec: str | None, devices: list[dict]) -> dict | None:
    """The entry of ``devices`` (:func:`list_devices` order) that ``spec`` selects, or None.

    Examples
    --------
    >>> ds = [{"type": "usb", "path": "/a"}, {"type": "pci", "path": "/dev/apex_0"},
    ...       {"type": "usb", "path": "/b"}]
    >>> resolve_device("usb:1", ds)["path"], resolve_device(":1", ds)["path"]
    ('/b', '/dev/apex_0')
    >>> resolve_device("pci:1", ds) is None
    True
    """
    kind, _, index = (parse_device_spec(spec) or "").partition(":")
    pick = [d for d in devices if not kind or d.get("type") == kind]
    n = int(index) if index else 0
    return pick[n] if n < len(pick) else None


class EdgeTpuDevice(ctypes.Structure):
    """``struct edgetpu_device``."""

    _fields_ = [("type", ctypes.c_int), ("path", ctypes.c_char_p)]


def _load_library(library: str | None):
    lib = library or find_delegate_library()
    if lib is None:
        raise BackendUnavailable(
            f"cannot list Edge TPUs: {delegate_library_name()} (the Edge TPU runtime) is not "
            f"installed; {install_hint()}")
    try:
        return ctypes.CDLL(lib), lib
    except OSError as e:
        raise BackendUnavailable(f"cannot load {lib}: {str(e).splitlines()[0]}") from None


def list_devices(library: str | None = None) -> list[dict]:
    """The Edge TPUs libedgetpu enumerates: ``[{"type": "usb", "path": ...}, ...]``.

    Raises
    ------
    BackendUnavailable
        When libedgetpu is not installed or cannot be loaded.
    """
    dll, _ = _load_library(library)
    dll.edgetpu_list_devices.restype = ctypes.POINTER(EdgeTpuDevice)
    dll.edgetpu_list_devices.argtypes = [ctypes.POINTER(ctypes.c_size_t)]
    dll.edgetpu_free_devices.argtypes = [ctypes.POINTER(EdgeTpuDevice)]
    n = ctypes.c_size_t(0)
    ptr = dll.edgetpu_list_devices(ctypes.byref(n))
    out = []
    try:
        for i in range(n.value):
            d = ptr[i]
            out.append({"type": DEVICE_TYPES.get(d.type, str(d.type)),
                        "path": (d.path or b"").decode(errors="replace")})
    finally:
        if ptr:
            dll.edgetpu_free_devices(ptr)
    return out


def runtime_version(library: str | None = None) -> str | None:
    """``edgetpu_version()`` of libedgetpu (None when the symbol is missing)."""
    dll, _ = _load_library(library)
    try:
        fn = dll.edgetpu_version
    except AttributeError:
        return None
    fn.restype = ctypes.c_char_p
    v = fn()
    return v.decode(errors="replace") if v else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def coral_usb_devices(sysfs: str | Path = "/sys") -> list[dict]:
    """Coral USB Accelerators on the bus (sysfs), with their link speed.

    ``[{"path": ".../2-1", "id": "18d1:9302", "speed_mbps": "5000", "link": "USB 3.0"}]``;
    empty when none is plugged in or sysfs is not readable.
    """
    root = Path(sysfs) / "bus" / "usb" / "devices"
    out = []
    for d in sorted(root.glob("*")) if root.is_dir() else ():
        vid, pid = _read(d / "idVendor"), _read(d / "idProduct")
        if (vid, pid) in CORAL_USB_IDS:
            out.append(dict(path=str(d), id=f"{vid}:{pid}", **usb_link_speed(d)))
    return out


def usb_link_speed(device_path: str | Path) -> dict:
    """``{"speed_mbps": "5000", "link": "USB 3.0"}`` of a sysfs USB device (None if unknown)."""
    speed = _read(Path(device_path) / "speed")
    return {"speed_mbps": speed, "link": USB_SPEEDS.get(speed) if speed else None}


def describe_device(device: dict, sysfs: str | Path = "/sys") -> dict:
    """A device of :func:`list_devices` with its USB link speed (when it is a readable USB path)."""
    out = dict(device)
    if device.get("type") == "usb":
        p = Path(device.get("path") or "")
        speed = usb_link_speed(p) if p.is_absolute() else {"speed_mbps": None, "link": None}
        if speed["speed_mbps"] is None:  # the path is not a sysfs node: find the device by ID
            found = coral_usb_devices(sysfs)
            if len(found) == 1:
                speed = {k: found[0][k] for k in ("speed_mbps", "link")}
        out.update(speed)
    return out


def device_used(library: str, spec: str | None) -> dict | None:
    """The device libedgetpu enumerates for ``spec`` (type, path, USB link); None if unlistable."""
    try:
        found = list_devices(library)
    except (BackendUnavailable, OSError, AttributeError):   # not a real libedgetpu
        return None
    d = resolve_device(spec, found)
    return describe_device(d) if d is not None else None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=prog_name("python -m benchmark.devices"),
                                description="List the Edge TPUs libedgetpu sees.")
    p.add_argument("--library", default=None, help="libedgetpu to load (default: the installed "
                   "libedgetpu.so.1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = p.parse_args(argv)
    devices = [describe_device(d) for d in list_devices(args.library)]
    if args.json:
        import json
        print(json.dumps(devices, indent=2))
        return 0
    if not devices:
        print("libedgetpu found no Edge TPU (check the USB/PCIe connection, the udev rules "
              "and the plugdev/apex group)")
        return 4
    for i, d in enumerate(devices):
        link = f"  {d['link']} ({d['speed_mbps']} Mbit/s)" if d.get("link") else ""
        print(f"{d['type']}:{sum(x['type'] == d['type'] for x in devices[:i])}  "
              f"{d['path']}{link}")
    return 0


if __name__ == "__main__":
    sys.exit(main_wrapper("benchmark.devices", main))

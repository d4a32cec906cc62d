"""Edge TPU devices: --edgetpu-device syntax, libedgetpu's C API listing, USB link speed.

The listing is tested against a fake libedgetpu built here with the C compiler from the
declarations of libedgetpu's ``tflite/public/edgetpu_c.h`` (skipped without a compiler).
"""

import ctypes
import shutil
import subprocess

import pytest

from benchmark import devices
from benchmark.backends import edgetpu, make_backend
from benchmark.commands import main
from benchmark.errors import BackendUnavailable, UsageError

FAKE_LIB = r"""
#include <stddef.h>
#include <stdlib.h>
enum edgetpu_device_type { EDGETPU_APEX_PCI = 0, EDGETPU_APEX_USB = 1 };
struct edgetpu_device { enum edgetpu_device_type type; const char* path; };
int frees = 0;
struct edgetpu_device* edgetpu_list_devices(size_t* num_devices) {
  struct edgetpu_device* d = malloc(3 * sizeof *d);
  d[0].type = EDGETPU_APEX_USB; d[0].path = USB_PATH;
  d[1].type = EDGETPU_APEX_PCI; d[1].path = "/dev/apex_0";
  d[2].type = EDGETPU_APEX_USB; d[2].path = "/sys/bus/usb/devices/9-9";
  *num_devices = 3;
  return d;
}
void edgetpu_free_devices(struct edgetpu_device* dev) { frees++; free(dev); }
const char* edgetpu_version(void) { return "BuildLabel(COMPILER=fake), RuntimeVersion(14)"; }
"""


@pytest.mark.parametrize("spec", ["usb", "usb:0", "usb:12", "pci", "pci:1", ":0", ":3"])
def test_valid_device_specs(spec):
    assert devices.parse_device_spec(spec) == spec


@pytest.mark.parametrize("spec", ["", "usb0", "usb:", "USB:0", "pci:-1", "tpu", ":x", "usb:0:1"])
def test_invalid_device_specs_name_the_option(spec):
    with pytest.raises(UsageError, match=r"^--edgetpu-device .*expected usb, usb:N, pci"):
        devices.parse_device_spec(spec)


def test_bad_device_is_refused_before_any_process(tmp_path):
    with pytest.raises(UsageError, match="--edgetpu-device 'usb0'"):
        make_backend("edgetpu", tmp_path / "m_edgetpu.tflite", edgetpu_device="usb0")


def test_devices_without_libedgetpu_is_one_line_exit_4(monkeypatch, capsys):
    monkeypatch.setattr(edgetpu, "find_delegate_library", lambda system=None: None)
    assert main(["devices"]) == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "libedgetpu.so.1 (the Edge TPU runtime) is not installed" in err[0]
    assert "tools/pi/setup.sh (docs/edge-tpu.md, 'Runtime pairing')" in err[0]
    assert "libedgetpu1-std" not in err[0]


@pytest.fixture
def fake_libedgetpu(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler to build the fake libedgetpu")
    usb = tmp_path / "sys" / "bus" / "usb" / "devices" / "2-1"
    usb.mkdir(parents=True)
    (usb / "speed").write_text("5000\n")
    src = tmp_path / "fake_edgetpu.c"
    src.write_text(FAKE_LIB)
    lib = tmp_path / "libedgetpu.so.1"
    subprocess.run([cc, "-shared", "-fPIC", f'-DUSB_PATH="{usb}"', "-o", str(lib), str(src)],
                   check=True)
    return lib, usb


def test_list_devices_through_the_c_api(fake_libedgetpu):
    lib, usb = fake_libedgetpu
    found = devices.list_devices(str(lib))
    assert found == [{"type": "usb", "path": str(usb)}, {"type": "pci", "path": "/dev/apex_0"},
                     {"type": "usb", "path": "/sys/bus/usb/devices/9-9"}]
    assert ctypes.c_int.in_dll(ctypes.CDLL(str(lib)), "frees").value == 1   # freed once
    assert devices.runtime_version(str(lib)).endswith("RuntimeVersion(14)")
    assert devices.device_used(str(lib), "pci")["path"] == "/dev/apex_0"
    used = devices.device_used(str(lib), "usb:0")
    assert used["link"] == "USB 3.0" and used["speed_mbps"] == "5000"
    assert devices.device_used(str(lib), "usb:2") is None


def test_devices_command_lists_them(fake_libedgetpu, capsys):
    lib, usb = fake_libedgetpu
    assert main(["devices", "--library", str(lib)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"usb:0  {usb}  USB 3.0 (5000 Mbit/s)"
    assert lines[1] == "pci:0  /dev/apex_0"
    assert lines[2].startswith("usb:1  /sys/bus/usb/devices/9-9")


def test_coral_usb_devices_found_by_id_in_sysfs(tmp_path):
    root = tmp_path / "bus" / "usb" / "devices"
    for name, vid, pid, speed in (("1-1", "18d1", "9302", "480"), ("1-2", "046d", "c52b", "12"),
                                  ("2-3", "1a6e", "089a", "5000")):
        d = root / name
        d.mkdir(parents=True)
        for f, v in (("idVendor", vid), ("idProduct", pid), ("speed", speed)):
            (d / f).write_text(v + "\n")
    found = devices.coral_usb_devices(tmp_path)
    assert [(d["id"], d["link"]) for d in found] == [("18d1:9302", "USB 2.0"),
                                                     ("1a6e:089a", "USB 3.0")]
    assert devices.coral_usb_devices(tmp_path / "nothing") == []


def test_unloadable_library_is_backend_unavailable(tmp_path):
    bad = tmp_path / "libedgetpu.so.1"
    bad.write_bytes(b"not an ELF")
    with pytest.raises(BackendUnavailable, match="cannot load"):
        devices.list_devices(str(bad))


def test_device_used_is_recorded_by_the_edgetpu_child(fake_libedgetpu, tmp_path):
    """The Edge TPU backend records the device libedgetpu lists for --edgetpu-device."""
    from benchmark.backends import isolated
    from benchmark.backends.fake import make_fake_compiled
    from conftest import ROOT
    lib, usb = fake_libedgetpu
    model = tmp_path / "signnet_int8_edgetpu.tflite"
    make_fake_compiled(ROOT / "models" / "signnet" / "verification" / "signnet_int8.tflite",
                       model)
    with isolated.IsolatedEdgeTPUBackend(model, target="benchmark.backends.fake:"
                                         "FakeEdgeTPUBackend", device="usb:0",
                                         library=str(lib)) as b:
        info = b.info()
    assert info["device"] == "usb:0" and info["library"] == str(lib)
    assert info["device_used"] == {"type": "usb", "path": str(usb), "speed_mbps": "5000",
                                   "link": "USB 3.0"}


def test_run_refuses_a_bad_edgetpu_device_before_evaluating(monkeypatch, tmp_path, capsys):
    from edgetpu_fakes import compiled_models, use_fake_edgetpu
    use_fake_edgetpu(monkeypatch)
    rc = main(["run", "--device", "edgetpu", "--edgetpu-device", "usb-1", "--split",
               "verification", "--limit", "10", "--model-dir", str(compiled_models(tmp_path)),
               "--out", str(tmp_path / "run"), "--quiet", "--no-report"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and err == ["edgetpu-bench run: error: --edgetpu-device 'usb-1': expected "
                               "usb, usb:N, pci, pci:N or :N (N = device index, from 0)"]

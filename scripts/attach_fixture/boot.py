#!/usr/bin/env python3
"""Boot the attach fixture: a QEMU virt guest with an SMMUv3, its RAM shared through a file,
and a QMP socket for smmudbg (plus one for the fixture itself, since a QMP socket serves one
client at a time).

    python3 scripts/attach_fixture/boot.py [--work DIR] [--name NAME]    # boots, prints, waits

From Python (the tests):  vm = boot(work, name); ...; vm.stop()
vm.qmp (smmudbg's socket), vm.qmp_fixture, vm.ram (/dev/shm/NAME), vm.ram_size, vm.console,
vm.proc, vm.boot_s (seconds until the guest printed SMMUDBG-READY).

The RAM file is deleted before boot (QEMU would reuse its contents) and after stop (QEMU leaves
it behind). Needs prepare.sh's outputs in WORK.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import time

DEFAULT_WORK = os.environ.get("SMMUDBG_ATTACH_WORK",
                              os.path.expanduser("~/.cache/smmudbg/attach-work"))
RAM_SIZE = 512 << 20
RAM_BASE = 0x40000000
SMMU_BASE = 0x09050000


class Vm:
    def __init__(self, work, name, proc, qmp, qmp_fixture, ram, console, argv):
        self.work, self.name, self.proc = work, name, proc
        self.qmp, self.qmp_fixture, self.ram, self.console = qmp, qmp_fixture, ram, console
        self.ram_size, self.argv, self.boot_s = RAM_SIZE, argv, None

    def console_text(self) -> str:
        try:
            with open(self.console, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_for(self, marker: str, timeout: float, start: int = 0) -> float:
        t0 = time.monotonic()
        while marker not in self.console_text()[start:]:
            if self.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited (rc={self.proc.returncode}); see {self.console}")
            if time.monotonic() - t0 > timeout:
                raise RuntimeError(f"guest did not print {marker} in {timeout:.0f} s; see "
                                   f"{self.console}")
            time.sleep(0.1)
        return time.monotonic() - t0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        try:
            os.unlink(self.ram)
        except FileNotFoundError:
            pass


def available(work: str = DEFAULT_WORK) -> str | None:
    """None if the fixture can boot, else why not (one line)."""
    if not shutil.which("qemu-system-aarch64"):
        return "qemu-system-aarch64 is not installed (apt-get install qemu-system-arm)"
    for f in ("vmlinuz", "initrd.cpio", "disk.raw"):
        if not os.path.exists(os.path.join(work, f)):
            return f"{work}/{f} is missing (run scripts/attach_fixture/prepare.sh)"
    if not os.path.isdir("/dev/shm"):
        return "/dev/shm is missing"
    return None


def boot(work: str = DEFAULT_WORK, name: str = "smmudbg-attach", timeout: float = 300,
         accel: str = "tcg") -> Vm:
    run = os.path.join(work, "run-" + name)
    os.makedirs(run, exist_ok=True)
    qmp, qmp_fixture = os.path.join(run, "qmp.sock"), os.path.join(run, "qmp-fixture.sock")
    console = os.path.join(run, "console.log")
    ram = "/dev/shm/" + name
    for f in (qmp, qmp_fixture, console, ram):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass
    argv = [
        "qemu-system-aarch64", "-M", "virt,iommu=smmuv3,memory-backend=ram0",
        "-accel", accel, "-cpu", "cortex-a57", "-smp", "1", "-m", f"{RAM_SIZE >> 20}M",
        "-object", f"memory-backend-file,id=ram0,size={RAM_SIZE >> 20}M,mem-path={ram},share=on",
        "-display", "none", "-monitor", "none", "-serial", "file:" + console,
        "-qmp", f"unix:{qmp_fixture},server=on,wait=off",
        "-qmp", f"unix:{qmp},server=on,wait=off",
        "-kernel", os.path.join(work, "vmlinuz"), "-initrd", os.path.join(work, "initrd.cpio"),
        "-append", "console=ttyAMA0 iommu.passthrough=0 iommu.strict=1 panic=-1",
        "-drive", f"file={os.path.join(work, 'disk.raw')},if=none,format=raw,id=d0,"
                  f"snapshot=on",
        "-device", "virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on",
        "-nic", "none", "-no-reboot",
    ]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(run, "qemu.err"), "wb"))
    vm = Vm(work, name, proc, qmp, qmp_fixture, ram, console, argv)
    try:
        vm.wait_for("SMMUDBG-READY", timeout)
    except BaseException:
        vm.stop()
        raise
    vm.boot_s = time.monotonic() - t0
    return vm


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=DEFAULT_WORK)
    ap.add_argument("--name", default="smmudbg-attach")
    a = ap.parse_args()
    why = available(a.work)
    if why:
        raise SystemExit(why)
    # Stop the VM (and delete its RAM file) on SIGTERM too, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    vm = boot(a.work, a.name)
    print(f"booted in {vm.boot_s:.1f} s: smmudbg attach qemu {vm.qmp} ram={vm.ram}")
    try:
        vm.proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        vm.stop()


if __name__ == "__main__":
    main()

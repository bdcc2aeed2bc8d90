#!/usr/bin/env python3
"""Boot the VT-d fixture guest under QEMU (q35 + intel-iommu, TCG), wait for its DMA, snapshot it.

Run inside the trixie chroot's QEMU: every path given is a path inside the chroot, and
--root is the chroot on the host (the QMP socket and the outputs are read from there).

Writes into OUTDIR (inside the chroot):
  console.log       guest serial console
  trace.log         QEMU vtd_* trace events (log backend, -D)
  regs.json         the remapping unit's registers, read with HMP xp while stopped, named
                    DMAR_<spec name> (DMAR_CAP_REG, DMAR_FRCD_REG[0], ...): every register of
                    smmudbg/arch/vtd/registers.py OFFSETS, IVA_REG/IOTLB_REG at ECAP_REG.IRO*16
                    and CAP_REG.NFR+1 fault recording registers at CAP_REG.FRO*16
  memory.elf        dump-guest-memory (ELF, paging=false) of the stopped VM
  run.json          command line, QEMU version, timings

The DMAR unit of q35 is at 0xfed90000 (hw/i386/intel_iommu: Q35_HOST_BRIDGE_IOMMU_ADDR); the
monitor reads it through the normal memory path, so these are the values a CPU would read.
Devices: virtio-blk-pci at 00:03.0 (SID 0x0018, two request queues: with two CPUs their MSIs
target different APICs) and virtio-net-pci behind a PCIe root port (00:05.0) on bus 1
(SID 0x0100), both with iommu_platform=on.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))
from smmudbg.arch.vtd import registers as R  # noqa: E402  (pure data: the field tables)

DMAR_BASE = 0xFED90000

TRACE_EVENTS = [
    "vtd_*",
    # per-access register traffic: millions of lines, and the registers are read at the end
    "-vtd_reg_read", "-vtd_reg_write",
    "x86_iommu_iec_notify",
]


class QMP:
    def __init__(self, path, timeout=120):
        deadline = time.time() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        self.f = self.sock.makefile("rwb", buffering=0)
        self._read()
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            msg = json.loads(line)
            if "event" in msg:
                continue
            return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        r = self._read()
        if "error" in r:
            raise RuntimeError("QMP %s failed: %s" % (name, r["error"]))
        return r["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})


def xp(qmp, pa, size):
    fmt = {4: "/1wx", 8: "/1gx"}[size]
    out = qmp.hmp("xp %s 0x%x" % (fmt, pa)).strip()
    addr, val = out.split(":")
    assert int(addr, 16) == pa, out
    return int(val.split()[0], 16)


def read_registers(qmp):
    """(name -> value) for every register the field tables place, in the order they are read."""
    regs = {}
    for name, off in sorted(R.OFFSETS.items(), key=lambda kv: kv[1]):
        regs[name] = (xp(qmp, DMAR_BASE + off, R.FORMATS[name][0]), R.FORMATS[name][0])
    cap, ecap = regs["CAP_REG"][0], regs["ECAP_REG"][0]
    iro = ((ecap >> 8) & 0x3FF) * 16
    for name, off in R.IOTLB_OFFSETS.items():
        regs[name] = (xp(qmp, DMAR_BASE + iro + off, 8), 8)
    fro = ((cap >> 24) & 0x3FF) * 16
    nfr = ((cap >> 40) & 0xFF) + 1
    for n in range(nfr):
        pa = DMAR_BASE + fro + R.FRCD_REG_SIZE * n
        regs["FRCD_REG[%d]" % n] = (xp(qmp, pa, 8) | xp(qmp, pa + 8, 8) << 64, 16)
    return {"DMAR_" + k: "0x%0*x" % (2 * size, v) for k, (v, size) in regs.items()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, help="the chroot on the host")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--disk", required=True)
    ap.add_argument("--outdir", required=True, help="inside the chroot")
    ap.add_argument("--mem", default="256M")
    ap.add_argument("--append", default="console=ttyS0 intel_iommu=on,sm_on iommu.strict=1 "
                    "iommu.passthrough=0 iomem=relaxed panic=-1 quiet loglevel=4")
    ap.add_argument("--smp", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=1500)
    a = ap.parse_args()

    host = lambda p: os.path.join(a.root, p.lstrip("/"))  # noqa: E731
    out = a.outdir
    os.makedirs(host(out), exist_ok=True)
    for f in ("qmp.sock", "console.log", "trace.log", "memory.elf"):
        try:
            os.unlink(host(os.path.join(out, f)))
        except FileNotFoundError:
            pass
    with open(host(os.path.join(out, "trace-events.txt")), "w") as f:
        f.write("\n".join(TRACE_EVENTS) + "\n")
    qemu = ["chroot", a.root, "nice", "qemu-system-x86_64"]
    argv = [
        "-M", "q35", "-accel", "tcg", "-cpu", "max", "-smp", str(a.smp), "-m", a.mem,
        "-device", "intel-iommu,intremap=on,x-scalable-mode=on,x-flts=on",
        "-display", "none", "-monitor", "none", "-nodefaults",
        "-serial", "file:" + os.path.join(out, "console.log"),
        "-qmp", "unix:%s,server=on,wait=off" % os.path.join(out, "qmp.sock"),
        "-kernel", a.kernel, "-initrd", a.initrd, "-append", a.append,
        "-drive", "file=%s,if=none,format=raw,id=d0" % a.disk,
        "-device", "virtio-blk-pci,drive=d0,addr=03.0,num-queues=2,iommu_platform=on,"
                   "disable-legacy=on",
        "-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1,addr=05.0",
        "-netdev", "user,id=n0,restrict=on",
        "-device", "virtio-net-pci,netdev=n0,bus=rp0,iommu_platform=on,disable-legacy=on,romfile=",
        "-trace", "events=" + os.path.join(out, "trace-events.txt"),
        "-D", os.path.join(out, "trace.log"),
        "-no-reboot",
    ]
    version = subprocess.run(["chroot", a.root, "qemu-system-x86_64", "--version"],
                             capture_output=True, text=True).stdout.splitlines()[0]
    print("running:", " ".join(qemu + argv), flush=True)
    t0 = time.time()
    proc = subprocess.Popen(qemu + argv, stdin=subprocess.DEVNULL)
    console = host(os.path.join(out, "console.log"))
    try:
        qmp = QMP(host(os.path.join(out, "qmp.sock")))
        while True:
            if proc.poll() is not None:
                raise SystemExit("QEMU exited early (rc=%s); see %s" % (proc.returncode, console))
            if time.time() - t0 > a.timeout:
                raise SystemExit("guest did not print SMMUDBG-DONE within %ds; see %s"
                                 % (a.timeout, console))
            try:
                with open(console, "rb") as f:
                    if b"SMMUDBG-DONE" in f.read():
                        break
            except FileNotFoundError:
                pass
            time.sleep(1)
        t_done = time.time() - t0
        print("guest done after %.1fs" % t_done, flush=True)
        time.sleep(2)
        qmp.cmd("stop")
        regs = read_registers(qmp)
        assert regs == read_registers(qmp), "registers changed while stopped"
        with open(host(os.path.join(out, "regs.json")), "w") as f:
            json.dump(regs, f, indent=2)
            f.write("\n")
        qmp.cmd("dump-guest-memory", paging=False,
                protocol="file:" + os.path.join(out, "memory.elf"))
        qmp.cmd("quit")
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(host(os.path.join(out, "run.json")), "w") as f:
        json.dump({"qemu_version": version, "argv": argv, "guest_done_s": round(t_done, 1),
                   "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, f, indent=2)
    print(json.dumps(regs, indent=2))


if __name__ == "__main__":
    main()

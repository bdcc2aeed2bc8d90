#!/usr/bin/env python3
"""Boot the fixture guest under QEMU, wait for its DMA to finish, snapshot it.

Writes into OUTDIR:
  console.log       guest serial console
  trace.log         QEMU smmu* trace events (log backend, -D)
  regs.json         SMMU registers read with the monitor (xp) while stopped; with --gic 3
                    also the ITS (GITS_*) and each redistributor's (GICR_*[n]) registers
  memory.elf        dump-guest-memory (ELF, paging=false) of the stopped VM
  memory.raw        pmemsave of all guest RAM (raw image, starts at RAM base)
  run.json          command line, QEMU version, timings

The SMMU of the "virt" machine is at 0x09050000; the monitor reads its MMIO
through the normal memory path, so these are the values a CPU would read.
With --gic 3 the board has a GICv3 with an ITS (hw/arm/virt.c base_memmap: VIRT_GIC_ITS
0x08080000, VIRT_GIC_REDIST 0x080A0000, one 128 KiB RD_base + SGI_base pair per CPU), and
every gicv3_its* trace event is recorded too: each MSI the ITS translates
(gicv3_its_translation_write: offset, data = EventID, requester_id = DeviceID) is followed by
the DTE, ITE and CTE reads that resolve it (LPI INTID, ICID, RDbase).
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time

SMMU_BASE = 0x09050000
# name -> (offset, width in bits)
REGS = [
    ("SMMU_IDR0", 0x00, 32), ("SMMU_IDR1", 0x04, 32), ("SMMU_IDR2", 0x08, 32),
    ("SMMU_IDR3", 0x0C, 32), ("SMMU_IDR4", 0x10, 32), ("SMMU_IDR5", 0x14, 32),
    ("SMMU_CR0", 0x20, 32), ("SMMU_CR1", 0x28, 32), ("SMMU_CR2", 0x2C, 32),
    ("SMMU_GBPA", 0x44, 32), ("SMMU_IRQ_CTRL", 0x50, 32),
    ("SMMU_GERROR", 0x60, 32), ("SMMU_GERRORN", 0x64, 32),
    ("SMMU_STRTAB_BASE", 0x80, 64), ("SMMU_STRTAB_BASE_CFG", 0x88, 32),
    ("SMMU_CMDQ_BASE", 0x90, 64), ("SMMU_CMDQ_PROD", 0x98, 32), ("SMMU_CMDQ_CONS", 0x9C, 32),
    ("SMMU_EVTQ_BASE", 0xA0, 64), ("SMMU_EVTQ_PROD", 0xA8, 32), ("SMMU_EVTQ_CONS", 0xAC, 32),
]

ITS_BASE = 0x08080000
GICR_BASE = 0x080A0000
GICR_STRIDE = 0x20000          # RD_base + SGI_base frames of one redistributor (GICv3)
ITS_REGS = [
    ("GITS_CTLR", 0x00, 32), ("GITS_IIDR", 0x04, 32), ("GITS_TYPER", 0x08, 64),
    ("GITS_CBASER", 0x80, 64), ("GITS_CWRITER", 0x88, 64), ("GITS_CREADR", 0x90, 64),
] + [("GITS_BASER%d" % n, 0x100 + 8 * n, 64) for n in range(8)]
GICR_REGS = [
    ("GICR_CTLR", 0x00, 32), ("GICR_IIDR", 0x04, 32), ("GICR_TYPER", 0x08, 64),
    ("GICR_WAKER", 0x14, 32), ("GICR_PROPBASER", 0x70, 64), ("GICR_PENDBASER", 0x78, 64),
]
ITS_TRACE_EVENTS = ["gicv3_its*"]

TRACE_EVENTS = [
    # translations (sid, iova, translated address, requested permission)
    "smmuv3_translate_success", "smmuv3_translate_abort", "smmuv3_translate_bypass",
    "smmuv3_translate_disable", "smmuv3_record_event",
    # IOTLB lookups: they carry the ASID of each translation, inserts the leaf level
    "smmu_iotlb_lookup_hit", "smmu_iotlb_lookup_miss", "smmu_iotlb_insert",
    # configuration lookups (sid -> STE -> CD, with the ASID/TTB)
    "smmuv3_find_ste", "smmuv3_find_ste_2lvl", "smmuv3_get_ste", "smmuv3_get_cd",
    "smmuv3_decode_cd", "smmuv3_decode_cd_tt",
    # commands and invalidations
    "smmuv3_cmdq_opcode", "smmuv3_cmdq_consume_error", "smmuv3_unhandled_cmd",
    "smmuv3_cmdq_cfgi_ste", "smmuv3_cmdq_cfgi_ste_range", "smmuv3_cmdq_cfgi_cd",
    "smmuv3_config_cache_inv", "smmuv3_s1_range_inval", "smmuv3_cmdq_tlbi_nh",
    "smmuv3_cmdq_tlbi_nh_asid", "smmu_iotlb_inv_all", "smmu_iotlb_inv_asid",
    "smmu_iotlb_inv_iova", "smmuv3_write_gerror", "smmuv3_write_gerrorn",
]


class QMP:
    def __init__(self, path, timeout=60):
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
        self._read()  # greeting
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


def read_reg(qmp, off, width, base=SMMU_BASE):
    fmt = "/1gx" if width == 64 else "/1wx"
    out = qmp.hmp("xp %s 0x%x" % (fmt, base + off)).strip()
    # "0000000009050000: 0x00000000"
    addr, val = out.split(":")
    assert int(addr, 16) == base + off, out
    return int(val.split()[0], 16)


def register_list(gic, smp):
    """(name, base, offset, width) of every register to read: the SMMU's, and with a GICv3
    the ITS's and each redistributor's (named GICR_X[n], n = the frame's index)."""
    out = [(n, SMMU_BASE, off, w) for n, off, w in REGS]
    if gic == 3:
        out += [(n, ITS_BASE, off, w) for n, off, w in ITS_REGS]
        for cpu in range(smp):
            out += [("%s[%d]" % (n, cpu), GICR_BASE + cpu * GICR_STRIDE, off, w)
                    for n, off, w in GICR_REGS]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--qemu", default="qemu-system-aarch64")
    ap.add_argument("--kernel", required=True)
    ap.add_argument("--initrd", required=True)
    ap.add_argument("--disk", required=True)
    ap.add_argument("--outdir", required=True)
    ap.add_argument("--mem", default="256M")
    ap.add_argument("--append", default="console=ttyAMA0 iommu.passthrough=0 iommu.strict=1 panic=-1")
    ap.add_argument("--no-net", action="store_true")
    ap.add_argument("--timeout", type=int, default=540)
    ap.add_argument("--gic", type=int, choices=(2, 3), default=2,
                    help="3: GICv3 with an ITS (MSIs through the ITS), its registers and trace")
    ap.add_argument("--smp", type=int, default=1)
    a = ap.parse_args()

    out = os.path.abspath(a.outdir)
    os.makedirs(out, exist_ok=True)
    sock = os.path.join(out, "qmp.sock")
    for f in ("qmp.sock", "console.log", "trace.log", "memory.elf", "memory.raw"):
        try:
            os.unlink(os.path.join(out, f))
        except FileNotFoundError:
            pass
    events = TRACE_EVENTS + (ITS_TRACE_EVENTS if a.gic == 3 else [])
    with open(os.path.join(out, "trace-events.txt"), "w") as f:
        f.write("\n".join(events) + "\n")
    machine = "virt,iommu=smmuv3" + (",gic-version=3" if a.gic == 3 else "")
    regs_to_read = register_list(a.gic, a.smp)

    argv = [
        a.qemu, "-M", machine, "-cpu", "cortex-a57", "-smp", str(a.smp), "-m", a.mem,
        "-display", "none", "-monitor", "none",
        "-serial", "file:" + os.path.join(out, "console.log"),
        "-qmp", "unix:%s,server=on,wait=off" % sock,
        "-kernel", a.kernel, "-initrd", a.initrd, "-append", a.append,
        "-drive", "file=%s,if=none,format=raw,id=d0" % a.disk,
        "-device", "virtio-blk-pci,drive=d0,iommu_platform=on,disable-legacy=on",
        "-trace", "events=" + os.path.join(out, "trace-events.txt"),
        "-D", os.path.join(out, "trace.log"),
        "-no-reboot",
    ]
    if not a.no_net:
        # behind a PCIe root port, so it is on bus 1: SID 0x100 lands in a second L2 stream table.
        # romfile= : no option ROM (the guest boots with -kernel; and a host without the
        # ipxe-qemu package has no efi-virtio.rom)
        argv += ["-device", "pcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=0",
                 "-netdev", "user,id=n0,restrict=on",
                 "-device", "virtio-net-pci,netdev=n0,bus=rp0,iommu_platform=on,"
                            "disable-legacy=on,romfile="]
    version = subprocess.run([a.qemu, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    print("running:", " ".join(argv), flush=True)
    t0 = time.time()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        qmp = QMP(sock)
        console = os.path.join(out, "console.log")
        while True:
            if proc.poll() is not None:
                raise SystemExit("QEMU exited early (rc=%s); see %s" % (proc.returncode, console))
            if time.time() - t0 > a.timeout:
                raise SystemExit("guest did not print SMMUDBG-DONE within %ds; see %s" % (a.timeout, console))
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
        regs = {}
        for name, base, off, width in regs_to_read:
            regs[name] = "0x%0*x" % (width // 4, read_reg(qmp, off, width, base))
        # Read every register a second time: they must be stable while stopped.
        for name, base, off, width in regs_to_read:
            assert regs[name] == "0x%0*x" % (width // 4, read_reg(qmp, off, width, base)), name
        with open(os.path.join(out, "regs.json"), "w") as f:
            json.dump(regs, f, indent=2)
            f.write("\n")
        qmp.cmd("dump-guest-memory", paging=False, protocol="file:" + os.path.join(out, "memory.elf"))
        mem_bytes = int(a.mem[:-1]) << {"M": 20, "G": 30}[a.mem[-1]]
        qmp.cmd("pmemsave", val=0x40000000, size=mem_bytes, filename=os.path.join(out, "memory.raw"))
        qmp.cmd("quit")
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with open(os.path.join(out, "run.json"), "w") as f:
        json.dump({"qemu_version": version, "argv": argv, "guest_done_s": round(t_done, 1),
                   "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                   "ram_base": "0x40000000", "ram_size": "0x%x" % mem_bytes}, f, indent=2)
    print(json.dumps(regs, indent=2))


if __name__ == "__main__":
    main()

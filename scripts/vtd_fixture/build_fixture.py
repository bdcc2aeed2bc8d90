#!/usr/bin/env python3
"""Turn one VT-d QEMU run (run_qemu.py output) into the committed fixture tests/fixtures/qemu_vtd/.

  build_fixture.py --run RUN_DIR --packages packages.json --out tests/fixtures/qemu_vtd

1. Loads RUN_DIR/memory.elf (pyelftools) and RUN_DIR/regs.json (smmudbg's VT-d register parser).
2. Finds every guest page the remapping state needs, from the registers only (decoded with the
   VT-d field tables): the root table, every context table a present root entry points at, the
   PASID directory of every present scalable-mode context entry, every PASID table a present
   directory entry points at, every paging-structure page reachable from each present PASID
   entry (first stage from FLPTPTR with FLPM's levels, second stage from SLPTPTR with AW's), the
   interrupt remapping table (IRTA_REG) and the invalidation queue (IQA_REG).
   Cross-check (decides nothing): every page smmudbg/vtd_refwalk.py reads while resolving the
   traced translations, the fault and the virtio MSIs must be among them.
3. Writes those pages as a sparse ELF core (EM_X86_64, QEMU's PT_NOTE copied; zero pages are
   p_memsz beyond p_filesz), xz -> memory.elf.xz.
4. Keeps the trace lines of the IOMMU (trace.log.xz): all vtd_* events except the interrupt
   remapping of the IOAPIC's interrupts (thousands of timer interrupts; the MSI events stay),
   copies regs.json and console.log, writes README.md.
"""
import argparse
import importlib.util
import json
import lzma
import mmap
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, REPO)
from smmudbg import vtd_refwalk as RW  # noqa: E402
from smmudbg.arch.fieldtable import fmt  # noqa: E402
from smmudbg.arch.vtd.paging import FS_LEVELS, SS_LEVELS  # noqa: E402
from smmudbg.importers.qemu_vtd_regs import load_vtd_regs  # noqa: E402

PAGE = 4096
EM_X86_64 = 62


def _arm_builder():
    spec = importlib.util.spec_from_file_location(
        "arm_build_fixture", os.path.join(REPO, "scripts", "qemu_fixture", "build_fixture.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Mem:
    """Guest memory from a dump-guest-memory ELF: read(pa, n) and read64(pa)."""

    def __init__(self, path):
        from elftools.elf.elffile import ELFFile
        self.f = open(path, "rb")
        self.mm = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ)
        elf = ELFFile(self.f)
        self.segs = [(s["p_paddr"], s["p_offset"], s["p_filesz"]) for s in elf.iter_segments()
                     if s["p_type"] == "PT_LOAD"]
        self.reads = set()

    def read(self, pa, n):
        for base, off, size in self.segs:
            if base <= pa and pa + n <= base + size:
                return self.mm[off + pa - base:off + pa - base + n]
        raise KeyError(f"no memory at {pa:#x}")

    def read64(self, pa):
        self.reads.add(pa & ~(PAGE - 1))
        return int.from_bytes(self.read(pa, 8), "little")

    def write64(self, pa, value):
        raise AssertionError("the fixture builder never writes guest memory")


def f(name, field, words):
    return fmt(name, "vtd").field(field).get(words if isinstance(words, list) else [words])


def reachable(mem, regs):
    """{page: why} of every page of the remapping structures, from the registers."""
    need = {}

    def add(pa, size, why):
        for p in range(pa & ~(PAGE - 1), pa + size, PAGE):
            need.setdefault(p, why)

    def u64(pa):
        return int.from_bytes(mem.read(pa, 8), "little")

    def words(pa, n):
        return [u64(pa + 8 * i) for i in range(n)]

    def paging(table, level, stage, why, seen):
        if (table, level) in seen:
            return
        seen.add((table, level))
        add(table, PAGE, why)
        names = (FS_LEVELS if stage == "fs" else SS_LEVELS)[level]
        for i in range(512):
            e = u64(table + 8 * i)
            entry = names[0] or names[1]
            present = f(entry, "P", e) if stage == "fs" else \
                (f(entry, "R", e) or f(entry, "W", e))
            if not present or level == 1:
                continue
            if names[1] and f(names[1], "PS", e):
                continue                    # a large page: no table below
            paging(f(names[0], "ADDR", e) << 12, level - 1, stage, why, seen)

    rt = f("RTADDR_REG", "RTA", regs.get("RTADDR_REG")) << 12
    add(rt, PAGE, "root table")
    seen = set()
    for bus in range(256):
        root = words(rt + 16 * bus, 2)
        for half, (p, ptr) in enumerate((("LP", "LCTP"), ("UP", "UCTP"))):
            if not f("SM_ROOT_ENTRY", p, root):
                continue
            ct = f("SM_ROOT_ENTRY", ptr, root) << 12
            add(ct, PAGE, f"context table bus {bus:#x}")
            for i in range(128):
                ce = words(ct + 32 * i, 4)
                if not f("SM_CONTEXT_ENTRY", "P", ce):
                    continue
                devfn = 128 * half + i
                pd = f("SM_CONTEXT_ENTRY", "PASIDDIRPTR", ce) << 12
                n = 1 << (f("SM_CONTEXT_ENTRY", "PDTS", ce) + 7)
                why = f"{bus:02x}:{devfn >> 3:02x}.{devfn & 7}"
                add(pd, 8 * n, f"PASID directory {why}")
                for d in range(n):
                    de = u64(pd + 8 * d)
                    if not f("PASID_DIR_ENTRY", "P", de):
                        continue
                    pt = f("PASID_DIR_ENTRY", "SMPTBLPTR", de) << 12
                    add(pt, PAGE, f"PASID table {why}")
                    for k in range(64):
                        pe = words(pt + 64 * k, 8)
                        if not f("PASID_ENTRY", "P", pe):
                            continue
                        pgtt = f("PASID_ENTRY", "PGTT", pe)
                        if pgtt in (1, 3):
                            levels = 5 if f("PASID_ENTRY", "FLPM", pe) == 1 else 4
                            paging(f("PASID_ENTRY", "FLPTPTR", pe) << 12, levels, "fs",
                                   f"first-stage tables {why}", seen)
                        if pgtt in (2, 3):
                            levels = {1: 3, 2: 4, 3: 5}[f("PASID_ENTRY", "AW", pe)]
                            paging(f("PASID_ENTRY", "SLPTPTR", pe) << 12, levels, "ss",
                                   f"second-stage tables {why}", seen)
    irta = regs.get("IRTA_REG")
    add(f("IRTA_REG", "IRTA", irta) << 12, 16 << (f("IRTA_REG", "S", irta) + 1),
        "interrupt remapping table")
    iqa = regs.get("IQA_REG")
    add(f("IQA_REG", "IQA", iqa) << 12, PAGE << f("IQA_REG", "QS", iqa), "invalidation queue")
    return need


RE = re.compile(r"^(?:\d+@[\d.]+:)?(\w+) ?(.*)$")
RE_XLATE = re.compile(r"dev (\w+):(\w+)\.(\w+) iova (0x\w+) -> gpa (0x\w+) mask (0x\w+)")
RE_FAULT = re.compile(r"sid (0x\w+) fault (\d+) addr (0x\w+) write (\d)")
RE_MSIREQ = re.compile(r"addr (0x\w+) data (0x\w+)")
RE_MSIX = re.compile(r"SMMUDBG: msix \w+:(\w+):(\w+)\.(\w) \d+ addr=(0x\w+) upper=(0x\w+) "
                     r"data=(0x\w+)")


def events(lines):
    for line in lines:
        m = RE.match(line)
        if m:
            yield m.group(1), m.group(2)


def keep_trace(lines):
    """The trace without the IOAPIC's interrupt remapping groups (msi_req .. remap_msi)."""
    out, group = [], None
    for line in lines:
        name = RE.match(line).group(1) if RE.match(line) else ""
        if name == "vtd_ir_remap_msi_req":
            group = [line]
            continue
        if group is not None:
            group.append(line)
            if name == "vtd_ir_remap_msi":
                if not any("vtd_ir_remap_type IOAPIC" in g for g in group):
                    out += group
                group = None
            continue
        if name == "vtd_warn_ir_vector":
            continue
        out.append(line)
    return out + (group or [])


def walks(mem, unit, trace, console):
    """Resolve what the trace saw with the reference walker (pages it reads are recorded)."""
    n = {"translations": 0, "faults": 0, "msis": 0}
    seen = set()
    for name, args in events(trace):
        if name == "vtd_dmar_translate":
            b, s, fn, iova, _gpa, _mask = RE_XLATE.search(args).groups()
            key = (int(b, 16) << 8 | int(s, 16) << 3 | int(fn, 16), int(iova, 16))
            if key not in seen:
                seen.add(key)
                RW.translate(mem, unit, key[0], key[1], apply_ad=False)
                n["translations"] += 1
        elif name == "vtd_dmar_fault":
            sid, _fr, addr, w = RE_FAULT.search(args).groups()
            RW.translate(mem, unit, int(sid, 16), int(addr, 16), write=w == "1", apply_ad=False)
            n["faults"] += 1
    msix = {}
    for line in console:
        m = RE_MSIX.search(line)
        if m and int(m.group(4), 16):
            b, s, fn, lo, hi, data = m.groups()
            msix[(int(hi, 16) << 32 | int(lo, 16), int(data, 16))] = \
                int(b, 16) << 8 | int(s, 16) << 3 | int(fn, 16)
    for name, args in events(trace):
        if name == "vtd_ir_remap_msi_req":
            addr, data = (int(x, 16) for x in RE_MSIREQ.search(args).groups())
            if (addr, data) in msix:
                RW.remap_msi(mem, unit, msix[(addr, data)], addr, data)
                n["msis"] += 1
    return n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--packages", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    arm = _arm_builder()

    regs = load_vtd_regs(os.path.join(a.run, "regs.json"))
    mem = Mem(os.path.join(a.run, "memory.elf"))
    need = reachable(mem, regs)
    # the last page of the BIOS ROM (the reset vector at 0xfffffff0): like QEMU's own dump, the
    # fixture then has a segment outside RAM, which an importer must place, not assume away
    rom_top = max(b + sz for b, _, sz in mem.segs)
    need.setdefault(rom_top - PAGE, "BIOS ROM")
    with open(os.path.join(a.run, "trace.log")) as fh:
        trace = fh.read().splitlines()
    with open(os.path.join(a.run, "console.log"), errors="replace") as fh:
        console = fh.read().splitlines()
    unit = RW.Unit.from_registers(regs.values, haw=48)
    mem.reads.clear()
    counts = walks(mem, unit, trace, console)
    stray = sorted(mem.reads - set(need))
    if stray:
        raise SystemExit("pages the walker read but the structures do not reach: "
                         + ", ".join(hex(p) for p in stray[:8]))

    note = arm.read_note(os.path.join(a.run, "memory.elf"))
    elf = os.path.join(a.out, "memory.elf")
    loads = arm.write_sparse_elf(elf, mem, need, note, machine=EM_X86_64)
    with open(elf, "rb") as fh:
        data = fh.read()
    with open(elf + ".xz", "wb") as fh:
        fh.write(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    os.unlink(elf)

    kept = keep_trace(trace)
    with open(os.path.join(a.out, "trace.log.xz"), "wb") as fh:
        fh.write(lzma.compress(("\n".join(kept) + "\n").encode(), preset=9 | lzma.PRESET_EXTREME))
    with open(os.path.join(a.run, "regs.json")) as fh:
        regs_text = fh.read()
    with open(os.path.join(a.out, "regs.json"), "w") as fh:
        fh.write(regs_text)
    with open(os.path.join(a.out, "console.log"), "w") as fh:
        fh.write("\n".join(console) + "\n")
    with open(a.packages) as fh:
        pkgs = json.load(fh)
    with open(os.path.join(a.run, "run.json")) as fh:
        run = json.load(fh)
    full = [(b, sz) for b, _, sz in mem.segs]
    summary = {
        "full_loads": len(full),
        "full_desc": ", ".join(f"{sz >> 10} KiB at {b:#x}" for b, sz in full),
        "pages": len(need), "loads": len(loads),
        "stored_bytes": sum(fs for _, fs, _ in loads),
        "trace_lines": len(trace), "trace_kept": len(kept), **counts,
    }
    write_readme(a.out, run, pkgs, summary)
    print(json.dumps(summary, indent=1))


def write_readme(out, run, pkgs, s):
    text = f"""# QEMU VT-d fixture (q35 + intel-iommu, scalable mode, first stage)

Real Intel VT-d remapping state of a Linux guest, captured from QEMU with the monitor and
cross-checked against QEMU's own trace by tests/test_vtd_fixture.py. Regenerate with
`scripts/make_vtd_fixture.sh` (root: debootstrap + chroot; Debian packages only).

## How it was made

- Debian 13 (trixie) chroot by `debootstrap --variant=minbase` ({pkgs['debian']}), with
  `qemu-system-x86` {pkgs['qemu_package_version']} ({run['qemu_version']}),
  `seabios` {pkgs['seabios_version']}, `busybox-static` {pkgs['busybox_version']}.
- Guest kernel: `{pkgs['kernel_package']}` {pkgs['kernel_version']} (release
  {pkgs['kernel_release']}), the package `linux-image-amd64` points at in trixie, extracted
  with dpkg-deb; command line `{run['argv'][run['argv'].index('-append') + 1]}`.
- initramfs: busybox + virtio_blk/virtio_net modules + scripts/vtd_fixture/init.sh as /init:
  reads the whole 256 KiB disk (O_DIRECT), writes one block back, brings eth0 up and pings
  slirp's gateway (RX buffers stay mapped), prints every virtio MSI-X table entry
  (`SMMUDBG: msix ...` in console.log), then points virtio-net's MSI-X entry 1 at IOVA 0x1000
  (devmem; `iomem=relaxed`) and pings again: that interrupt is a DMA write to an unmapped IOVA,
  which the IOMMU blocks and records (fault reason 0x71, FRCD_REG[0]).
- QEMU, TCG, {run['argv'][run['argv'].index('-smp') + 1]} CPU(s), {run['argv'][run['argv'].index('-m') + 1]} RAM:
  `{' '.join(run['argv'])}`
- The guest was done (printed SMMUDBG-DONE) {run['guest_done_s']} s after QEMU started; then
  QMP `stop`, every register of smmudbg/arch/vtd/registers.py read twice with HMP `xp`
  (equal both times) into regs.json as DMAR_<spec name> (IVA_REG/IOTLB_REG at ECAP_REG.IRO*16,
  FRCD_REG[n] at CAP_REG.FRO*16, 128 bits each), and `dump-guest-memory` (ELF, paging off).
  Captured {run['date_utc']}.

Devices: virtio-blk-pci at 00:03.0 (SID 0x0018) and virtio-net-pci behind a PCIe root port
(00:05.0) at 01:00.0 (SID 0x0100), both `iommu_platform=on,disable-legacy=on` (the exact
device options are in the command line above).
intel-iommu `intremap=on,x-scalable-mode=on,x-flts=on`: ECAP_REG has SMTS and FLTS but not
SLTS, so Linux maps DMA with first-stage tables (PASID entry PGTT=first_stage, requests without
PASID use RID_PASID 0); interrupts are remapped in xAPIC mode (no EIM under TCG).

## Files

- `memory.elf.xz`: a sparse ELF core (EM_X86_64, QEMU's PT_NOTE kept) holding only the pages the
  remapping structures occupy, found from the registers: root table, context tables, PASID
  directories and tables, every first/second-stage table page reachable from a present PASID
  entry, the interrupt remapping table and the invalidation queue, and the BIOS ROM's last page
  (the reset vector: a segment outside RAM, as in QEMU's dump); {s['pages']} pages in
  {s['loads']} PT_LOADs, {s['stored_bytes']} bytes stored (all-zero pages are p_memsz only, so
  they read as zero). Every page smmudbg/vtd_refwalk.py reads for the traced requests is among
  them (checked when building).
- `regs.json`: the DMAR registers (smmudbg/importers/qemu_vtd_regs.py reads them).
- `trace.log.xz`: QEMU's vtd_* trace events (log backend), {s['trace_kept']} of {s['trace_lines']}
  lines: the interrupt remapping of the IOAPIC's interrupts (vtd_ir_* groups whose
  vtd_ir_remap_type is IOAPIC, and vtd_warn_ir_vector) are left out; every DMA, fault,
  invalidation and MSI event is kept. Note that QEMU's vtd_ir_irte_get prints the IRTE's upper
  64 bits as "low" and the lower 64 bits as "high" (the values show it: "high" holds P and the
  vector).
- `console.log`: the guest's serial console (the MSI-X table entries the test maps interrupts to
  devices by).

When built: {s['translations']} distinct (SID, IOVA) translations, {s['faults']} fault(s) and
{s['msis']} virtio MSI events in the trace. QEMU's full dump had {s['full_loads']} PT_LOADs
({s['full_desc']}); only the pages above are kept.

## What tests/test_vtd_fixture.py checks

- Every translation QEMU traced (vtd_dmar_translate, with the leaf entry and domain of the
  IOTLB hit/update before it) that no later invalidation may have changed (IOTLB and PASID-based
  IOTLB invalidations of its domain covering the page, any context/PASID-cache invalidation;
  decided from the vtd_inv_desc descriptors) walks in the snapshot to the same output page,
  size, domain and leaf entry (A/D aside), with write permission exactly when the leaf allows it.
- The recorded fault (virtio-net's MSI write to IOVA 0x1000) comes back as reason 0x71 (SFS.2),
  and FRCD_REG[0] holds what QEMU recorded (FR, SID, FI, T1). The guest's fault handler had
  already cleared F. QEMU sets FRCD_REG.PP (PASID present, PV 0) for this request without PASID.
- Every virtio MSI (matched to its device by the MSI-X entries in console.log) whose IRTE no
  later interrupt-entry-cache invalidation touched resolves through the same IRTE index and entry
  to the vector, destination, trigger and delivery mode QEMU remapped and delivered.
"""
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()

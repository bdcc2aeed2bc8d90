#!/usr/bin/env python3
"""Turn one QEMU run (run_qemu.py output) into the committed fixture tests/fixtures/qemu/.

  build_fixture.py --run RUN_DIR --packages packages.json --out tests/fixtures/qemu

1. Loads RUN_DIR/memory.elf with smmudbg/importers/qemu_dump.py (imported by file path, so
   nothing else of smmudbg is needed) and checks that RUN_DIR/memory.raw (pmemsave) holds the
   same bytes at 0x40000000.
2. Finds every guest page the SMMU state needs, starting from the registers only:
   the stream table (L1 + every L2 a valid L1 descriptor points at), the CD tables of every
   valid STE with stage 1 enabled, every translation-table page reachable from each valid CD
   (VMSAv8-64 stage 1, TTB0 and/or TTB1 unless EPDn, granule from TGn, start level from TnSZ),
   and the command and event queues.
3. Writes those pages as a sparse ELF core laid out like QEMU's dump-guest-memory (ELF64
   ET_CORE EM_AARCH64; section headers [NULL, .shstrtab]; PT_NOTE with QEMU's CPU notes copied;
   one PT_LOAD per run of needed pages, p_vaddr = p_paddr). Needed pages that are all zero are
   not stored: each run is split so that its trailing zero pages are p_memsz beyond p_filesz
   (zero-filled by any ELF reader), so every needed address reads exactly as in the full dump.
   Then xz (preset 9e) -> memory.elf.xz.
4. Parses QEMU's trace into translations.json (see README.md for the rules), copies regs.json,
   and writes README.md.
5. Cross-checks (does not decide anything): every translation marked still_mapped must walk to
   the same PA in the snapshot's own tables; otherwise the build fails.
"""
import argparse
import json
import lzma
import os
import re
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAGE = 4096


def _load_loader():
    # The loader is smmudbg's own (pure Python; nothing else of smmudbg runs here).
    sys.path.insert(0, REPO)
    from smmudbg.importers import qemu_dump as mod
    return mod


qemu_dump = _load_loader()


def bits(v, hi, lo):
    return (v >> lo) & ((1 << (hi - lo + 1)) - 1)


class Mem:
    def __init__(self, segs):
        self.segs = segs

    def read(self, pa, n):
        for s in self.segs:
            if s.pa <= pa and pa + n <= s.end:
                return bytes(s.data[pa - s.pa:pa - s.pa + n])
        raise ValueError("PA %#x+%#x not in the dump" % (pa, n))

    def u64(self, pa):
        return struct.unpack("<Q", self.read(pa, 8))[0]


class Needed:
    """Set of needed 4 KiB pages, with a reason per page for the report."""

    def __init__(self):
        self.pages = {}

    def add(self, pa, size, why):
        for p in range(pa & ~(PAGE - 1), pa + size, PAGE):
            self.pages.setdefault(p, why)


# ---------------------------------------------------------------- stage 1 walk

def granule_shift(tg, which):
    if which == 0:
        return {0: 12, 1: 16, 2: 14}.get(tg)
    return {1: 14, 2: 12, 3: 16}.get(tg)


def table_addr(desc, g):
    a = desc & ((1 << 48) - 1) & ~((1 << g) - 1)
    if g == 16:  # 52-bit OA with 64K granule: PA[51:48] in bits[15:12]
        a |= bits(desc, 15, 12) << 48
    return a


def walk_tables(mem, ttb, tsz, g, needed, why, leaves=None):
    """Visit every table reachable from ttb; record leaves as (va_base, size, pa, desc)."""
    stride = g - 3
    inputsize = 64 - tsz
    start = 4 - -(-(inputsize - g) // stride)  # 4 - ceil((inputsize-g)/stride)
    if start < 0 or start > 3:
        raise ValueError("bad tsz=%d for granule 2^%d" % (tsz, g))
    top_bits = inputsize - (g + stride * (3 - start))
    ntables = 0

    def visit(table, level, nbits, va_base):
        nonlocal ntables
        ntables += 1
        n = 1 << nbits
        base = table & ~(n * 8 - 1)
        needed.add(base, n * 8, "%s L%d table" % (why, level))
        raw = mem.read(base, n * 8)
        span = 1 << (g + stride * (3 - level))
        for i in range(n):
            d = struct.unpack_from("<Q", raw, 8 * i)[0]
            if not d & 1:
                continue
            va = va_base + i * span
            if level < 3 and d & 2:
                visit(table_addr(d, g), level + 1, stride, va)
            elif level == 3 and d & 2 or level < 3 and not d & 2:
                if leaves is not None:
                    leaves.append((va, span, table_addr(d, g) & ~(span - 1), d))

    visit(ttb, start, top_bits, 0)
    return ntables


# ---------------------------------------------------------------- SMMU structures

def collect(mem, regs):
    """Return (needed pages, info dict, {sid: [ctx...]}) starting from the registers."""
    R = {k: int(v, 16) for k, v in regs.items()}
    need = Needed()
    info = {}
    ctx_by_sid = {}

    cfg = R["SMMU_STRTAB_BASE_CFG"]
    log2size, split, fmt = bits(cfg, 5, 0), bits(cfg, 10, 6), bits(cfg, 17, 16)
    base = R["SMMU_STRTAB_BASE"] & ((1 << 52) - 1) & ~0x3F
    info["strtab"] = {"base": "%#x" % base, "fmt": "2-level" if fmt == 1 else "linear",
                      "log2size": log2size, "split": split}
    stes = []  # (sid, pa)
    if fmt == 1:
        n_l1 = 1 << max(log2size - split, 0)
        need.add(base, n_l1 * 8, "stream table L1")
        l1s = []
        for i in range(n_l1):
            d = mem.u64(base + 8 * i)
            span = bits(d, 4, 0)
            if span == 0:
                continue
            l2 = d & ((1 << 52) - 1) & ~0x3F
            n = 1 << (span - 1)
            need.add(l2, n * 64, "stream table L2")
            l1s.append({"index": i, "l2ptr": "%#x" % l2, "span": span})
            for j in range(min(n, 1 << split)):
                stes.append(((i << split) | j, l2 + 64 * j))
        info["strtab"]["l1_valid"] = l1s
    else:
        need.add(base, 64 << log2size, "stream table (linear)")
        stes = [(sid, base + 64 * sid) for sid in range(1 << log2size)]

    valid = []
    for sid, pa in stes:
        w0 = mem.u64(pa)
        if not w0 & 1:
            continue
        config = bits(w0, 3, 1)
        ent = {"sid": sid, "ste_pa": "%#x" % pa, "config": config}
        if config & 0b100 == 0:
            info["abort_stes"] = info.get("abort_stes", 0) + 1
            continue  # abort (Linux makes every unused STE of an L2 table V=1, Config=abort)
        valid.append(ent)
        if config & 0b010:
            raise SystemExit("SID %#x: stage 2 enabled; this fixture builder walks stage 1 only" % sid)
        if not config & 0b001:
            continue  # bypass
        s1fmt, cdmax = bits(w0, 5, 4), bits(w0, 63, 59)
        cdptr = w0 & ((1 << 52) - 1) & ~0x3F
        ent.update(s1fmt=s1fmt, s1cdmax=cdmax, s1contextptr="%#x" % cdptr)
        cds = []  # (ssid, pa)
        if cdmax == 0 or s1fmt == 0:
            n = 1 << cdmax
            need.add(cdptr, n * 64, "CD table")
            cds = [(ssid, cdptr + 64 * ssid) for ssid in range(n)]
        else:
            split_cd = {1: 6, 2: 10}[s1fmt]
            n_l1 = 1 << max(cdmax - split_cd, 0)
            need.add(cdptr, n_l1 * 8, "CD L1 table")
            for i in range(n_l1):
                d = mem.u64(cdptr + 8 * i)
                if not d & 1:
                    continue
                l2 = d & ((1 << 52) - 1) & ~0xFFF
                need.add(l2, 64 << split_cd, "CD L2 table")
                cds += [((i << split_cd) | j, l2 + 64 * j) for j in range(1 << split_cd)]
        ctxs = []
        for ssid, cpa in cds:
            c0, c1, c2 = mem.u64(cpa), mem.u64(cpa + 8), mem.u64(cpa + 16)
            if not c0 & (1 << 31):
                continue
            cd = {"ssid": ssid, "cd_pa": "%#x" % cpa, "asid": bits(c0, 63, 48),
                  "aa64": bits(c0, 41, 41), "ips": bits(c0, 34, 32), "tt": []}
            for which, tsz, tg, epd, ttb in ((0, bits(c0, 5, 0), bits(c0, 7, 6), bits(c0, 14, 14), c1),
                                             (1, bits(c0, 21, 16), bits(c0, 23, 22), bits(c0, 30, 30), c2)):
                if epd:
                    continue
                g = granule_shift(tg, which)
                ttb_pa = ttb & ((1 << 52) - 1) & ~0xF
                leaves = []
                nt = walk_tables(mem, ttb_pa, tsz, g, need, "SID %#x TTB%d" % (sid, which), leaves)
                cd["tt"].append({"ttb": which, "ttb_pa": "%#x" % ttb_pa, "tsz": tsz,
                                 "granule": 1 << g, "tables": nt, "leaves": len(leaves),
                                 "_leaves": leaves})
            ctxs.append(cd)
        ent["cds"] = ctxs
        ctx_by_sid[sid] = ctxs
    info["stes"] = valid

    for q, esz in (("CMDQ", 16), ("EVTQ", 32)):
        b = R["SMMU_%s_BASE" % q]
        addr = b & ((1 << 52) - 1) & ~0x1F
        l2 = bits(b, 4, 0)
        need.add(addr, esz << l2, q)
        info[q.lower()] = {"base": "%#x" % addr, "log2size": l2, "entries": 1 << l2,
                           "bytes": esz << l2}
    return need, info, ctx_by_sid


ITS_FRAME = (0x08080000, 0x080A0000)      # QEMU virt: VIRT_GIC_ITS, 128 KiB
ITS_TRACE = ("gicv3_its_", "smmuv3_translate_success")


def baser(v):
    """GITS_BASER<n> by raw bits (IHI 0069 12.19.13): the fixture builder does not use smmudbg's
    decoders, so the committed pages do not depend on the code the tests check."""
    page = {0: 0x1000, 1: 0x4000}.get(bits(v, 9, 8), 0x10000)
    pa = v & 0x0000FFFFFFFFF000
    if page == 0x10000:
        pa = (pa & ~0xF000) | (bits(v, 15, 12) << 48)
    return {"valid": bits(v, 63, 63), "indirect": bits(v, 62, 62), "type": bits(v, 58, 56),
            "esize": bits(v, 52, 48) + 1, "page": page, "pages": bits(v, 7, 0) + 1, "base": pa}


def table_entries(mem, t, need, why):
    """(index, entry address) of every entry of a flat or two-level ITS table; adds its pages."""
    size = t["pages"] * t["page"]
    need.add(t["base"], size, why + (" L1" if t["indirect"] else ""))
    if not t["indirect"]:
        return [(i, t["base"] + i * t["esize"]) for i in range(size // t["esize"])]
    per = t["page"] // t["esize"]
    out = []
    for i in range(size // 8):
        e = mem.u64(t["base"] + 8 * i)
        if not e >> 63:
            continue
        l2 = e & ((1 << 52) - 1) & ~0xFFF
        need.add(l2, t["page"], why + " L2")
        out += [(i * per + j, l2 + j * t["esize"]) for j in range(per)]
    return out


def collect_its(mem, regs, need):
    """The ITS pages (QEMU's layout: DTE 8 bytes Valid[0] Size[5:1] ITT_addr[49:6]; ITE 12
    bytes Valid[0] IntType[1] INTID[25:2] ICID[47:32]; CTE 8 bytes Valid[0] RDbase[16:1]):
    device table (and its level-2 pages), every valid device's ITT, the collection table and
    the ITS command queue. Returns what the guest programmed, for the README."""
    R = {k: int(v, 16) for k, v in regs.items()}
    info = {"devices": [], "collections": []}
    tables = {}
    for n in range(8):
        t = baser(R.get("GITS_BASER%d" % n, 0))
        if t["valid"] and t["type"] in (1, 4):
            tables[t["type"]] = t
            info["baser%d" % n] = {k: (hex(v) if k == "base" else v) for k, v in t.items()}
    cb = R["GITS_CBASER"]
    if cb >> 63:
        need.add(cb & ((1 << 52) - 1) & ~0xFFF, (bits(cb, 7, 0) + 1) * 0x1000, "ITS command queue")
    if 4 in tables:
        for icid, pa in table_entries(mem, tables[4], need, "ITS collection table"):
            c = mem.u64(pa)
            if c & 1:
                info["collections"].append({"icid": icid, "rdbase": bits(c, 16, 1)})
    if 1 in tables:
        for dev, pa in table_entries(mem, tables[1], need, "ITS device table"):
            d = mem.u64(pa)
            if not d & 1:
                continue
            size, itt = bits(d, 5, 1), bits(d, 49, 6) << 8
            n = 1 << (size + 1)
            need.add(itt, n * 12, "ITS ITT")
            events = []
            for ev in range(n):
                lo = mem.u64(itt + 12 * ev)
                if lo & 1:
                    events.append({"event": ev, "intid": bits(lo, 25, 2), "icid": bits(lo, 47, 32)})
            info["devices"].append({"device_id": dev, "dte_pa": "%#x" % pa, "itt": "%#x" % itt,
                                    "events": events})
    return info


def write_its_trace(src, dst):
    """The ITS's trace events and the SMMU's translations, xz: the oracle of the MSI test."""
    keep = []
    with open(src) as f:
        for line in f:
            if line.startswith(ITS_TRACE):
                keep.append(line)
    data = "".join(keep).encode()
    with open(dst, "wb") as f:
        f.write(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
    return len(keep), len(data)


def lookup(ctx_by_sid, sid, iova):
    for cd in ctx_by_sid.get(sid, []):
        if cd["ssid"] != 0:
            continue
        for tt in cd["tt"]:
            for va, span, pa, _ in tt["_leaves"]:
                if va <= iova < va + span:
                    return pa + (iova - va)
    return None


# ---------------------------------------------------------------- sparse ELF

def write_sparse_elf(path, mem, pages, note, machine=183):
    """ELF64 core like QEMU's: ehdr, shdrs[NULL,.shstrtab], phdrs[NOTE, LOAD...], note, data.
    machine: e_machine (183 EM_AARCH64; the VT-d fixture passes 62, EM_X86_64)."""
    runs = []
    for p in sorted(pages):
        if runs and runs[-1][1] == p:
            runs[-1][1] = p + PAGE
        else:
            runs.append([p, p + PAGE])
    # split each run so that each PT_LOAD is [non-zero pages ...][trailing zero pages, memsz only]
    loads = []  # (pa, filesz, memsz)
    for start, end in runs:
        seg_start, last_nz = start, None
        p = start
        while p < end:
            nz = any(mem.read(p, PAGE))
            if nz and last_nz is not None and last_nz + PAGE != p:
                # zero gap before this non-zero page: close the current segment after the gap
                loads.append((seg_start, last_nz + PAGE - seg_start, p - seg_start))
                seg_start = p
            if nz:
                last_nz = p
            p += PAGE
        filesz = 0 if last_nz is None else last_nz + PAGE - seg_start
        loads.append((seg_start, filesz, end - seg_start))

    shstrtab = b"\0.shstrtab\0"
    nph = 1 + len(loads)
    shoff = 64
    phoff = shoff + 2 * 64
    note_off = phoff + nph * 56
    data_off = note_off + len(note)
    off = data_off
    phdrs = [struct.pack("<IIQQQQQQ", 4, 0, note_off, 0, 0, len(note), len(note), 0)]
    for pa, filesz, memsz in loads:
        phdrs.append(struct.pack("<IIQQQQQQ", 1, 0, off, pa, pa, filesz, memsz, 0))
        off += filesz
    str_off = off
    ehdr = struct.pack("<16sHHIQQQIHHHHHH",
                       b"\x7fELF\x02\x01\x01" + b"\0" * 9, 4, machine, 1, 0, phoff, shoff, 0,
                       64, 56, nph, 64, 2, 1)
    shdrs = b"\0" * 64 + struct.pack("<IIQQQQIIQQ", 1, 3, 0, 0, str_off, len(shstrtab), 0, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(ehdr + shdrs + b"".join(phdrs) + note)
        for pa, filesz, memsz in loads:
            f.write(mem.read(pa, filesz))
        f.write(shstrtab)
    return loads


def read_note(path):
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, = struct.unpack_from("<Q", eh, 32)
        phnum, = struct.unpack_from("<H", eh, 56)
        f.seek(phoff)
        for _ in range(phnum):
            p_type, _, off, _, _, filesz, _, _ = struct.unpack("<IIQQQQQQ", f.read(56))
            if p_type == 4:
                here = f.tell()
                f.seek(off)
                note = f.read(filesz)
                f.seek(here)
                return note
    return b""


# ---------------------------------------------------------------- trace

RE_LINE = re.compile(r"^(?:\d+@[\d.]+:)?(\w+) ?(.*)$")
TG_SHIFT = {1: 12, 2: 14, 3: 16}
PERM = {1: "r", 2: "w", 3: "rw"}
# commands whose effect the trace shows through their own events (or that do not affect
# translations); any other TLBI_*/CFGI_* opcode makes every earlier translation "maybe unmapped"
HANDLED_OPS = {"SYNC", "PREFETCH_CONFIG", "PREFETCH_ADDR", "CFGI_STE", "CFGI_STE_RANGE",
               "CFGI_CD", "CFGI_CD_ALL", "CFGI_ALL", "TLBI_NH_ASID", "TLBI_NH_VA", "TLBI_NH_VAA",
               "TLBI_NH_ALL", "TLBI_NSNH_ALL", "ATC_INV", "PRI_RESP", "RESUME", "STALL_TERM"}


def kv(s):
    return dict((m.group(1), m.group(2)) for m in re.finditer(r"(\w+)=\s*(0x[0-9a-fA-F]+|-?\d+)", s))


def parse_trace(path):
    """Return (translations, stats). Order of trace lines is the order of events."""
    last_seen = {}   # (sid, iova, pa, perm) -> event index of last report
    asid_of = {}     # key -> ASID from the IOTLB lookup just before the report
    invals = []      # (index, kind, arg)
    pending_asid = None
    stats = {"translate_success": 0, "aborts": 0, "events_recorded": 0, "range_invals": 0,
             "asid_invals": 0, "all_invals": 0, "cfgi": 0, "opcodes": {}}
    with open(path) as f:
        for idx, line in enumerate(f):
            m = RE_LINE.match(line.rstrip("\n"))
            if not m:
                continue
            ev, rest = m.groups()
            a = kv(rest)
            if ev in ("smmu_iotlb_lookup_hit", "smmu_iotlb_lookup_miss"):
                pending_asid = int(a["asid"], 0)
            elif ev == "smmuv3_translate_success":
                stats["translate_success"] += 1
                key = (int(a["sid"], 0), int(a["iova"], 0), int(a["translated"], 0), int(a["perm"], 0))
                last_seen[key] = idx
                asid_of[key] = pending_asid
                pending_asid = None
            elif ev == "smmuv3_translate_abort":
                stats["aborts"] += 1
            elif ev == "smmuv3_record_event":
                stats["events_recorded"] += 1
            elif ev == "smmuv3_s1_range_inval":
                stats["range_invals"] += 1
                asid, addr, tg = int(a["asid"], 0), int(a["addr"], 0), int(a["tg"], 0)
                num = int(a["num_pages"], 0)
                if tg in TG_SHIFT:
                    invals.append((idx, "range", (asid, addr, addr + (num << TG_SHIFT[tg]))))
                else:  # no range: leaf size unknown, be conservative: whole ASID
                    invals.append((idx, "asid", asid))
            elif ev == "smmu_iotlb_inv_asid":
                stats["asid_invals"] += 1
                invals.append((idx, "asid", int(a["asid"], 0)))
            elif ev in ("smmu_iotlb_inv_all",):
                stats["all_invals"] += 1
                invals.append((idx, "all", None))
            elif ev in ("smmuv3_cmdq_cfgi_ste", "smmuv3_cmdq_cfgi_cd", "smmuv3_config_cache_inv"):
                stats["cfgi"] += 1
                sid = int(a.get("streamid", a.get("sid", "-1")), 0)
                invals.append((idx, "sid", (sid, sid)))
            elif ev == "smmuv3_cmdq_cfgi_ste_range":
                stats["cfgi"] += 1
                invals.append((idx, "sid", (int(a["start"], 0), int(a["end"], 0))))
            elif ev == "smmuv3_cmdq_opcode":
                op = rest.split("SMMU_CMD_")[-1].strip()
                stats["opcodes"][op] = stats["opcodes"].get(op, 0) + 1
                if op not in HANDLED_OPS and (op.startswith("TLBI") or op.startswith("CFGI")):
                    invals.append((idx, "all", None))
            elif ev in ("smmuv3_unhandled_cmd", "smmuv3_cmdq_consume_error"):
                invals.append((idx, "all", None))

    out = []
    for key, seen in sorted(last_seen.items(), key=lambda kv_: kv_[1]):
        sid, iova, pa, perm = key
        asid = asid_of[key]
        hit = False
        for idx, kind, arg in invals:
            if idx < seen:
                continue
            if kind == "all":
                hit = True
            elif kind == "asid":
                hit = asid is None or arg == asid or arg == -1
            elif kind == "range":
                ia, lo, hi = arg
                hit = (asid is None or ia == asid or ia == -1) and lo <= iova < hi
            elif kind == "sid":
                hit = arg[0] <= sid <= arg[1]
            if hit:
                break
        out.append({"sid": sid, "iova": "%#x" % iova, "pa": "%#x" % pa,
                    "perm": PERM.get(perm, "0x%x" % perm), "still_mapped": not hit,
                    "_asid": asid})
    out.sort(key=lambda t: (t["sid"], int(t["iova"], 16), int(t["pa"], 16), t["perm"]))
    return out, stats


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--packages", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    run = json.load(open(os.path.join(a.run, "run.json")))
    pkgs = json.load(open(a.packages))
    regs = json.load(open(os.path.join(a.run, "regs.json")))

    segs = qemu_dump.load_memory(os.path.join(a.run, "memory.elf"))
    mem = Mem(segs)
    raw_path = os.path.join(a.run, "memory.raw")
    raw_ok = None
    if os.path.exists(raw_path):
        raw = qemu_dump.load_memory(raw_path)  # default ram_base 0x40000000
        raw_ok = (len(segs) == 1 and raw[0].pa == segs[0].pa and raw[0].data == segs[0].data)
        print("pmemsave raw image == ELF PT_LOAD bytes:", raw_ok)
        if not raw_ok:
            raise SystemExit("memory.raw (pmemsave) differs from memory.elf")

    need, info, ctx_by_sid = collect(mem, regs)
    its = collect_its(mem, regs, need) if "GITS_CBASER" in regs else None

    translations, tstats = parse_trace(os.path.join(a.run, "trace.log"))
    # Cross-check only (the trace decides still_mapped, not this walk).
    bad, agree_unmapped = [], 0
    for t in translations:
        got = lookup(ctx_by_sid, t["sid"], int(t["iova"], 16))
        if t["still_mapped"] and got != int(t["pa"], 16):
            bad.append((t, got))
        if not t["still_mapped"] and got == int(t["pa"], 16):
            agree_unmapped += 1
    if bad:
        for t, got in bad[:20]:
            print("MISMATCH", t, "walk ->", None if got is None else hex(got))
        raise SystemExit("%d still-mapped translations do not walk to their PA in the snapshot" % len(bad))

    elf_path = os.path.join(a.out, "memory.elf")
    loads = write_sparse_elf(elf_path, mem, need.pages, read_note(os.path.join(a.run, "memory.elf")))
    # verify the sparse ELF reads back identically on every needed page
    sparse = Mem(qemu_dump.load_memory(elf_path))
    for p in need.pages:
        assert sparse.read(p, PAGE) == mem.read(p, PAGE), hex(p)
    with open(elf_path, "rb") as f:
        elf_bytes = f.read()
    os.unlink(elf_path)
    with open(elf_path + ".xz", "wb") as f:
        f.write(lzma.compress(elf_bytes, preset=9 | lzma.PRESET_EXTREME))

    with open(os.path.join(a.out, "regs.json"), "w") as f:
        json.dump(regs, f, indent=2)
        f.write("\n")
    with open(os.path.join(a.out, "translations.json"), "w") as f:
        f.write("[\n" + ",\n".join(
            json.dumps({k: v for k, v in t.items() if not k.startswith("_")}) for t in translations
        ) + "\n]\n")

    if its is not None:
        its["trace_lines"], its["trace_bytes"] = write_its_trace(
            os.path.join(a.run, "trace.log"), os.path.join(a.out, "its-trace.log.xz"))
        its["translation_writes"] = sum(1 for line in lzma.open(
            os.path.join(a.out, "its-trace.log.xz"), "rt")
            if line.startswith("gicv3_its_translation_write"))
    for s in info["stes"]:
        for cd in s.get("cds", []):
            for tt in cd["tt"]:
                tt.pop("_leaves", None)
    reasons = {}
    for p, why in need.pages.items():
        w = why.split(" L")[0] if why.startswith("SID") else why
        reasons[w] = reasons.get(w, 0) + 1
    summary = {
        "elf_bytes": len(elf_bytes), "pages_needed": len(need.pages),
        "pages_stored": sum(fs for _, fs, _ in loads) // PAGE, "pt_load": len(loads),
        "pages_by_reason": reasons, "translations": len(translations),
        "still_mapped": sum(t["still_mapped"] for t in translations),
        "maybe_unmapped_but_walk_agrees": agree_unmapped,
        "trace": tstats, "structures": info, "its": its,
    }
    print(json.dumps(summary, indent=2))
    write_readme(a.out, run, pkgs, regs, summary, loads)


def write_readme(out, run, pkgs, regs, s, loads):
    st = s["structures"]
    cds = [(e["sid"], cd) for e in st["stes"] for cd in e.get("cds", [])]
    argv = " ".join(("'%s'" % x if " " in x else x) for x in run["argv"])
    ste_lines = "\n".join(
        "| %#x | %s | %d | %s | %s |" % (
            e["sid"], e["ste_pa"], e["config"], e.get("s1contextptr", "-"),
            ", ".join("ASID %d, %s" % (cd["asid"], "; ".join(
                "TTB%d %s T%dSZ=%d granule %dK, %d tables, %d leaves" % (
                    t["ttb"], t["ttb_pa"], t["ttb"], t["tsz"], t["granule"] // 1024,
                    t["tables"], t["leaves"]) for t in cd["tt"])) for cd in e.get("cds", [])) or "-")
        for e in st["stes"])
    load_lines = "\n".join("| %#x | %#x | %#x |" % l for l in loads)
    its_text = its_readme(s["its"], regs) if s.get("its") else ""
    its_regs = (" Then the ITS's GITS_* registers and each redistributor's GICR_*[n]."
                if s.get("its") else "")
    its_file = ("\n| `its-trace.log.xz` | QEMU's gicv3_its* and smmuv3_translate_success trace "
                "events, in order, xz. |" if s.get("its") else "")
    title = "QEMU SMMUv3 + GICv3 ITS fixture" if s.get("its") else "QEMU SMMUv3 fixture"
    how = ("`ITS=1 scripts/make_qemu_fixture.sh`" if s.get("its")
           else "`scripts/make_qemu_fixture.sh`")
    text = f"""# {title}

Real SMMUv3 state of a Linux guest on QEMU's `virt` machine, captured with the monitor and
`dump-guest-memory`, reduced to the guest pages the SMMU state needs. Regenerate with
{how} (Debian 12 packages only; writes work files to /work/qemu-work).
Loader: `smmudbg/importers/qemu_dump.py`; its tests: `tests/test_qemu_dump.py`.

## Provenance

- Captured: {run["date_utc"]}
- QEMU: {run["qemu_version"]} (Debian package qemu-system-arm {pkgs["qemu_package_version"]})
- Guest kernel: Debian `{pkgs["kernel_package"]}` {pkgs["kernel_version"]} (release {pkgs["kernel_release"]}),
  `vmlinuz` extracted with `dpkg-deb -x`; modules virtio_pci(+_legacy_dev, _modern_dev),
  virtio_blk, virtio_net(+net_failover, failover) loaded by /init. `arm-smmu-v3` is built in.
- Userspace: busybox-static {pkgs["busybox_version"]} (arm64) in a cpio initramfs;
  /init = `scripts/qemu_fixture/init.sh` (reads the 256 KiB virtio-blk disk with O_DIRECT,
  md5sum, writes one block back, brings up virtio-net and pings slirp's gateway twice, then
  prints SMMUDBG-DONE and sleeps).
- The VM was stopped (QMP `stop`) 2 s after SMMUDBG-DONE ({run["guest_done_s"]} s after start);
  registers were read with `xp` while stopped (read twice, identical), then `dump-guest-memory`
  (ELF, paging=false) and `pmemsave 0x40000000 {run["ram_size"]}`.
  The pmemsave raw image was checked byte-identical to the ELF's PT_LOAD.
- Command line:

```
{argv}
```

## Files

| File | What |
|---|---|
| `memory.elf.xz` | Sparse guest-RAM ELF core, xz. {s["elf_bytes"]} bytes uncompressed. |
| `regs.json` | SMMU registers (page 0; QEMU aliases page 1 onto page 0, so EVTQ_PROD/CONS are read at 0xa8/0xac). Hex strings; 64-bit for *_BASE.{its_regs} |
| `translations.json` | Every distinct translation QEMU reported, with `still_mapped`. |{its_file}

### memory.elf.xz

Same layout as QEMU's `dump-guest-memory`: ELF64 little-endian, `ET_CORE`, `EM_AARCH64`, section
headers [NULL, .shstrtab], a `PT_NOTE` (QEMU's NT_PRSTATUS / NT_FPREGSET of the one vCPU, copied
unchanged), then one `PT_LOAD` per run of kept pages with `p_paddr` = guest PA (`p_vaddr` equal
to it, as QEMU writes with paging=false). Differences from QEMU's own file: only the needed pages
are present, and a needed page that is all zero is not stored: such pages sit at the end of a
PT_LOAD as `p_memsz` > `p_filesz` (ELF zero-fill), so **every needed address reads exactly as in
the full 256 MiB dump**, and anything else is absent. QEMU 7.2 writes `e_ehsize = 8` (a bug);
this file has the correct 64.

Pages kept ({s["pages_needed"]} needed, {s["pages_stored"]} stored non-zero, {s["pt_load"]} PT_LOADs), by reason:
{chr(10).join("- %s: %d" % kv_ for kv_ in sorted(s["pages_by_reason"].items()))}

A raw-image (pmemsave) variant is not committed: the tests build one from this ELF in a temp
directory (the bytes of a PT_LOAD written to a file, loaded with `ram_base` = its PA).

| PT_LOAD p_paddr | p_filesz | p_memsz |
|---|---|---|
{load_lines}

### What the guest programmed

- Stream table: {st["strtab"]["fmt"]} at {st["strtab"]["base"]}, LOG2SIZE={st["strtab"]["log2size"]}, SPLIT={st["strtab"]["split"]};
  valid L1 descriptors: {", ".join("#%d -> L2 %s span %d" % (l["index"], l["l2ptr"], l["span"]) for l in st["strtab"].get("l1_valid", []))}.
  Every other STE of the L2 tables is V=1 Config=abort ({st.get("abort_stes", 0)} of them), as Linux initialises them.
- CMDQ at {st["cmdq"]["base"]}, {st["cmdq"]["entries"]} entries, PROD={regs["SMMU_CMDQ_PROD"]} CONS={regs["SMMU_CMDQ_CONS"]};
  EVTQ at {st["evtq"]["base"]}, {st["evtq"]["entries"]} entries, PROD={regs["SMMU_EVTQ_PROD"]} CONS={regs["SMMU_EVTQ_CONS"]}.
- STEs with Config other than abort (SID = PCI BDF: 00:01.0 = 0x8 virtio-blk, 00:02.0 = 0x10
  PCIe root port, 01:00.0 = 0x100 virtio-net behind it; the root port and virtio-net are in one
  IOMMU group, so they share one domain: same CD, ASID and tables):

| SID | STE PA | Config | S1ContextPtr | CDs |
|---|---|---|---|---|
{ste_lines}

Each device has one linear CD (S1CDMax=0; QEMU 7.2 has no substreams), AArch64 stage 1 only
(QEMU 7.2 implements no stage 2), 4 KiB granule, T0SZ=16 (48-bit IOVA, 4 levels), EPD1=1.

### translations.json

A list of `{{"sid": int, "iova": "0x..", "pa": "0x..", "perm": "r"|"w"|"rw", "still_mapped": bool}}`,
one per distinct (sid, iova, pa, perm) in QEMU's `smmuv3_translate_success` trace events, sorted by
(sid, iova). `perm` is the access QEMU asked the SMMU for (`IOMMU_RO`=r, `IOMMU_WO`=w,
`IOMMU_RW`=rw, as that event prints it), not the permission of the page. `iova`/`pa` are byte
addresses (the event's `iova` and `translated`), not page aligned.

`still_mapped` is decided from the trace alone (never from the snapshot's tables): a translation
is `false` ("maybe unmapped") if after the last time QEMU reported it the trace shows an
invalidation that may cover it:
`smmuv3_s1_range_inval` (TLBI_NH_VA) of the same ASID whose [addr, addr + num_pages << TG)
contains the IOVA (the ASID of a translation is the one of the `smmu_iotlb_lookup_hit/miss` just
before it; a range invalidation without TG counts as the whole ASID), `smmu_iotlb_inv_asid` of its
ASID, `smmu_iotlb_inv_all`, a CFGI_STE/CFGI_STE_RANGE/CFGI_CD covering its SID, or any other
TLBI/CFGI opcode. The guest ran with `iommu.strict=1`, so streaming DMA buffers were unmapped and
invalidated right after use: what stays mapped is the coherent memory (virtqueues) and the
posted virtio-net RX buffers.

{s["translations"]} translations, {s["still_mapped"]} still_mapped. As a cross-check (not the oracle), the build walks
the snapshot's tables: every still_mapped translation walks to its `pa`; of the maybe-unmapped
ones, {s["maybe_unmapped_but_walk_agrees"]} walk to the same `pa` anyway (IOVA re-used for the
same buffer, or a page re-mapped after its last use) and the rest are gone or re-mapped.

Trace summary: {s["trace"]["translate_success"]} translate_success events, {s["trace"]["aborts"]} aborts, {s["trace"]["events_recorded"]} event records;
commands: {", ".join("%s x%d" % kv_ for kv_ in sorted(s["trace"]["opcodes"].items()))}.

### QEMU 7.2 quirks seen while making this

- `dump-guest-memory` writes `e_ehsize = 8` instead of 64 (sizeof a pointer). Loaders must not
  check it.
- `smmuv3_find_ste_2lvl` traces `max_l2_ste:511` for an L1 descriptor with Span=9: QEMU bounds
  the L2 index by (1 << Span) - 1, the architecture by 2^(Span-1) STEs (256 here, what Linux
  allocated).
- `smmuv3_translate_success` prints the *requested* access (`perm`, an IOMMUAccessFlags), not
  the page permission; only 0x1 (RO) and 0x3 (RW) occur in this trace, never 0x2 (WO).
- SMMU_STRTAB_BASE, SMMU_CMDQ_BASE and SMMU_EVTQ_BASE read back with bit 62 (RA) set, as
  Linux writes them; the address fields are [51:6] and [51:5].
- The monitor's `xp` goes through the normal MMIO path, so it reads the SMMU registers exactly
  as a CPU load would (4-byte `/1wx` for 32-bit registers, 8-byte `/1gx` for the *_BASE ones).

{its_text}### regs.json

```
{json.dumps(regs, indent=2)}
```
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(text)


def its_readme(its, regs):
    """The ITS part of the README: what the guest's ITS driver programmed, and the trace."""
    devs = "\n".join("| %#x | %s | %s | %s |" % (
        d["device_id"], d["dte_pa"], d["itt"],
        ", ".join("%d -> LPI %d ICID %d" % (e["event"], e["intid"], e["icid"])
                  for e in d["events"]) or "-") for d in its["devices"])
    colls = ", ".join("ICID %d -> RDbase %d" % (c["icid"], c["rdbase"])
                      for c in its["collections"])
    tabs = "\n".join("- GITS_BASER%s: %s" % (k[5:], json.dumps(v)) for k, v in its.items()
                     if k.startswith("baser"))
    return f"""## The GICv3 ITS

The machine has `gic-version=3` (QEMU virt: ITS control frame at 0x08080000, GITS_TRANSLATER
at 0x08090040; redistributors at 0x080a0000, 128 KiB each) and two CPUs, so Linux maps one
collection per CPU and spreads the devices' MSI vectors over both. `regs.json` also holds the
ITS registers (`GITS_*`) and each redistributor's (`GICR_*[n]`, n = its frame: processor
number n on this board), read with `xp` like the SMMU's. The dump keeps the ITS tables
(QEMU's entry layout: DTE 8 bytes, ITE 12 bytes, CTE 8 bytes; hw/intc/gicv3_internal.h):

{tabs}
- Collections: {colls}
- Devices (DeviceID = the PCI RID: QEMU virt's msi-map is the identity):

| DeviceID | DTE PA | ITT | EventID -> LPI, ICID |
|---|---|---|---|
{devs}

### its-trace.log.xz

Every `gicv3_its_*` trace event of the run and every `smmuv3_translate_success`, in order
({its["trace_lines"]} lines, {its["trace_bytes"]} bytes uncompressed). Each MSI QEMU's ITS
translated is a `gicv3_its_translation_write` (data = EventID, requester_id = DeviceID) right
after the SMMU translation of the device's doorbell write (`translated` = 0x8090040), followed
by the `gicv3_its_dte_read`, `gicv3_its_ite_read` (intid, ICID) and `gicv3_its_cte_read` (RDBase)
that resolved it. {its["translation_writes"]} translation writes. Linux's ITS driver maps
each device's doorbell page in its DMA domain (iommu_dma_get_msi_page) at an IOVA of the
domain's allocator, not in the software-MSI window (that one is for VFIO's unmanaged
domains).

"""


if __name__ == "__main__":
    main()

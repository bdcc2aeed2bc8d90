"""VT-d caches as the debugger sees them: the device-TLBs (ATS translation caches at the
devices, VT-d 6.2.7 / PCIe ATS), and every cache of a unit compared with memory: which cached
entries a missing invalidation left stale, and the descriptor that removes each.

The unit's own caches (context-cache, PASID-cache, IOTLB, paging-structure caches, interrupt
entry cache) live in the core walker (core_cy.vtd.VtdWalker); a device-TLB lives at the device,
here. docs/vtd.md.
"""
from __future__ import annotations

PAGE_SHIFT = 12


def ats_range(addr_field: int, s: int) -> tuple[int, int]:
    """(base, size) an ATS invalidation names (DEV_TLB_INV_DSC / P_DEV_TLB_INV_DSC ADDR[63:12]
    and S): S=0 one 4 KiB page; S=1 the size is encoded in ADDR's low bits, the number of 1s
    from bit 12 up to the first 0 giving 2^(13 + ones) bytes (bit 63 clear and 62:12 set: the
    whole address space)."""
    if not s:
        return addr_field << PAGE_SHIFT, 1 << PAGE_SHIFT
    ones = 0
    while ones < 52 and (addr_field >> ones) & 1:
        ones += 1
    size = 1 << min(PAGE_SHIFT + 1 + ones, 64)
    return (addr_field << PAGE_SHIFT) & ~(size - 1) & ((1 << 64) - 1), size


def ats_encode(base: int, size: int) -> tuple[int, int]:
    """(ADDR field, S) naming [base, base + size) (size a power of two >= 4 KiB, base aligned to
    it): the inverse of ats_range."""
    if size == 1 << PAGE_SHIFT:
        return base >> PAGE_SHIFT, 0
    ones = size.bit_length() - 1 - PAGE_SHIFT - 1
    return (base >> PAGE_SHIFT) | ((1 << ones) - 1), 1


class DeviceTlb:
    """A device's ATS translation cache: translations it asked for with translation requests
    (AT=01b), tagged by PASID (None: requests without PASID), each with the permissions the
    completion granted. A hit needs no IOMMU walk (the device issues a translated request)."""

    def __init__(self, rid: int):
        self.rid = rid
        self.entries: dict[tuple, dict] = {}     # (pasid, priv, base) -> entry

    def lookup(self, addr, pasid, access, priv):
        need = {"read": "r", "write": "w", "exec": "x"}[access]
        for (p, pv, base), e in self.entries.items():
            if p == pasid and pv == priv and base <= addr < base + e["size"] and \
                    need in e["perm"]:
                return e
        return None

    def fill(self, addr, pasid, priv, r):
        base = addr & ~(r["size"] - 1)
        self.entries[(pasid, priv, base)] = {
            "sid": self.rid, "pasid": pasid, "priv": priv, "base": base, "size": r["size"],
            "pa": r["pa"] & ~(r["size"] - 1), "perm": r["perm"], "pgtt": r["pgtt"],
            "did": r["did"], "pasid_used": r["pasid"]}

    def invalidate(self, pasid, base, size, *, any_pasid=False) -> int:
        """Remove the entries of this PASID (None: those without PASID; any_pasid: all) that
        overlap [base, base + size); returns how many."""
        gone = [k for k, e in self.entries.items()
                if (any_pasid or k[0] == pasid) and e["base"] < base + size and
                base < e["base"] + e["size"]]
        for k in gone:
            del self.entries[k]
        return len(gone)

    def export(self):
        return [dict(e) for e in self.entries.values()]

    def restore(self, entries):
        self.entries = {(e["pasid"], e["priv"], e["base"]): dict(e) for e in entries}


def cache_view(u) -> dict:
    """Every cache of unit u, each entry with stale (memory no longer gives what it holds) and
    fix (the invalidation descriptor that removes it, when stale): {context, pasid, iotlb,
    psc, iec, devtlb, stats}."""
    k = u.walker
    mem = u.mem
    mamv = u.cap_field("MAMV")
    out = {"context": [], "pasid": [], "iotlb": [], "psc": [], "iec": [], "devtlb": []}
    for e in k.cached_contexts():
        now = [mem.read_u64(e["ctx_pa"] + 8 * i) for i in range(4)]
        stale = now != e["ctx"] or mem.read_u64(e["root_pa"]) != e["root"]
        out["context"].append(dict(e, stale=stale, problem="the root or context entry in "
                                   "memory differs from the context-cache",
                                   fix=f"CC_INV_DSC G=device SID={e['sid']:#x} FM=0"))
    for e in k.cached_pasids():
        now = [mem.read_u64(e["pe_pa"] + 8 * i) for i in range(8)]
        stale = now != e["pe"] or mem.read_u64(e["dir_pa"]) != e["pde"]
        out["pasid"].append(dict(e, stale=stale, problem="the PASID entry in memory differs "
                                 "from the PASID-cache",
                                 fix=f"PC_INV_DSC G=pasid DID={e['did']} PASID={e['pasid']}"))
    for e in k.tlb_entries():
        pasid = e["pasid"] if e["pv"] else None
        r = k.translate(e["sid"], e["in_base"], pasid, priv=e["priv"] and e["pv"], dry=True)
        stale = not (r["kind"] == "translated" and r["pa"] == e["out_base"] and
                     r["perm"] == e["perm"] and r["size"] >= e["size"])
        am = (e["size"] >> PAGE_SHIFT).bit_length() - 1
        if e["pgtt"] in ("first_stage", "nested"):
            fix = (f"P_IOTLB_INV_DSC G=page DID={e['did']} PASID={e['pasid']} "
                   f"ADDR={e['in_base']:#x} AM={am}")
        else:
            fix = f"IOTLB_INV_DSC G=page DID={e['did']} ADDR={e['in_base']:#x} AM={am}"
        out["iotlb"].append(dict(e, stale=stale, problem=f"cached {e['in_base']:#x} -> "
                                 f"{e['out_base']:#x} {e['perm']} ({e['pgtt']}), tables "
                                 f"{_now(r)}", fix=fix))
    for e in k.psc_entries():
        now = mem.read_u64(e["entry_pa"])
        # A page-selective invalidation with IH=0 removes the non-leaf entries whose region
        # overlaps its range: any part of the region will do (AM is at most CAP_REG.MAMV).
        am = min((e["size"] >> PAGE_SHIFT).bit_length() - 1, mamv)
        if e["stage"] == 2:
            fix = f"IOTLB_INV_DSC G=page DID={e['did']} ADDR={e['region']:#x} AM={am} IH=0"
        else:
            fix = (f"P_IOTLB_INV_DSC G=page DID={e['did']} PASID={e['pasid']} "
                   f"ADDR={e['region']:#x} AM={am} IH=0")
        name = _PSC_NAMES[e["level"]]
        out["psc"].append(dict(e, cache=("" if e["stage"] == 1 else "SL-") + name,
                               stale=now != e["entry"],
                               problem=f"cached {name} at {e['entry_pa']:#x} = "
                                       f"{e['entry']:#x}, memory now {now:#x}", fix=fix))
    for e in k.iec_entries():
        now = [mem.read_u64(e["irte_pa"]), mem.read_u64(e["irte_pa"] + 8)]
        out["iec"].append(dict(e, stale=now != e["irte"],
                               problem=f"IRTE {e['index']} in memory differs from the "
                                       f"interrupt entry cache",
                               fix=f"IEC_INV_DSC G=index IIDX={e['index']} IM=0"))
    for rid, atc in sorted(u.device_tlbs.items()):
        for e in atc.export():
            r = k.translate(rid, e["base"], e["pasid"], priv=e["priv"], at=1, dry=True)
            stale = not (r["kind"] == "translated" and r["pa"] == e["pa"] and
                         r["perm"] == e["perm"] and r["size"] >= e["size"])
            addr, s = ats_encode(e["base"], e["size"])
            if e["pasid"] is None:
                fix = f"DEV_TLB_INV_DSC SID={rid:#x} ADDR={addr << PAGE_SHIFT:#x} S={s}"
            else:
                fix = (f"P_DEV_TLB_INV_DSC SID={rid:#x} PASID={e['pasid']} "
                       f"ADDR={addr << PAGE_SHIFT:#x} S={s}")
            out["devtlb"].append(dict(e, stale=stale, problem=f"device {rid:#06x} caches "
                                      f"{e['base']:#x} -> {e['pa']:#x} {e['perm']}, tables "
                                      f"{_now(r)}", fix=fix))
    out["stats"] = dict(k.tlb_stats)
    return out


_PSC_NAMES = {5: "PML5E", 4: "PML4E", 3: "PDPE", 2: "PDE"}
_KEYS = {"context": ("sid",), "pasid": ("sid", "pasid", "did"),
         "iotlb": ("did", "pasid", "in_base", "size"),
         "psc": ("cache", "did", "pasid", "region", "size"), "iec": ("index",),
         "devtlb": ("sid", "pasid", "base", "size")}


def _now(r):
    if r["fault"]:
        return f"now {r['fault']['name']}"
    if r["pa"] is not None:
        return f"now {r['pa']:#x} {r['perm']}"
    return f"now {r['kind']}"


def stale_entries(u) -> list[dict]:
    """The stale cached entries of unit u: {kind (context, pasid, iotlb, psc, iec, devtlb),
    key, problem, fix (descriptor and fields)}."""
    view = cache_view(u)
    return [{"kind": kind, "key": {f: e[f] for f in _KEYS[kind]}, "problem": e["problem"],
             "fix": e["fix"]}
            for kind in ("context", "pasid", "iotlb", "psc", "iec", "devtlb")
            for e in view[kind] if e["stale"]]

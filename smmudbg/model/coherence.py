"""Coherence check: which cached entries disagree with the tables in memory now.

A hardware SMMU may keep using a cached STE, CD or translation until the right invalidation
removes it (IHI 0070 3.21, 16.2). This module compares every entry in an Smmu's config cache and
IOTLB with a fresh look at the current tables (the walker's own readers, Walker.read_ste and
read_cd, and Walker.translate_uncached, which neither read nor fill the caches) and names, for
each disagreement, the command that removes the stale entry.

Each result is a dict:
    kind     'STE', 'CD' or 'TLB'
    key      what the entry is cached under (sid / ssid / vmid, asid, address)
    problem  how it differs from memory
    fix      the command as text, e.g. 'CMD_CFGI_STE StreamID=0x8 Leaf=1'
    command  (name, {field: value}) - ready for Smmu.submit()
"""
from __future__ import annotations

from core_cy.physmem import MemFault

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..errors import ModelError

_PAGE = 4096
STE = fmt("STE")
CD = fmt("CD")


def _cmd(name: str, text_fields: dict, fields: dict) -> tuple[str, tuple]:
    text = " ".join([name] + [f"{k}={v:#x}" if isinstance(v, int) and k not in ("Leaf",)
                              else f"{k}={v}" for k, v in text_fields.items()])
    return text, (name, fields)


def _fresh_ste(smmu, sid):
    """(pa, words) of the STE for sid in the current stream table, or (None, reason)."""
    r = smmu.walker.read_ste(sid)
    if r["words"] is None:
        f = r["fault"]
        return None, r["reason"] or (f["type"] if f else "not read")
    return r["ste_pa"], r["words"]


def _ssid_arg(ssid, ste_words):
    """The SubstreamID a fresh walk for CD `ssid` uses (IHI 0070 5.2): CD 0 serves traffic
    without a SubstreamID when S1CDMax=0 or S1DSS=substream0 (then SubstreamID 0 itself is
    terminated); under S1DSS=terminate or bypass it serves SubstreamID 0."""
    if ssid != 0 or ste_words is None:
        return ssid
    if not STE.field("S1CDMax").get(ste_words) or \
            STE.field("S1DSS").get(ste_words) == C.STE_S1DSS_substream0:
        return None
    return 0


def _read_cd(smmu, sid, ssid):
    """Walker.read_cd, or None when the stream has no stage 1 for that SubstreamID."""
    try:
        return smmu.walker.read_cd(sid, ssid)
    except ValueError:
        return None


def _fresh_cd(smmu, sid, ssid):
    """(pa, words) of the CD the SMMU would use now for (sid, ssid), or (None, reason)."""
    r = _read_cd(smmu, sid, _ssid_arg(ssid, smmu.walker.read_ste(sid)["words"]))
    if r is None or r["fault"] is not None:
        why = "the stream has no stage 1" if r is None else r["reason"] or r["fault"]["type"]
        return None, f"the CD is no longer reachable ({why})"
    return r["cd_pa"], r["words"]


def _contexts(smmu):
    """Every (sid, ssid-or-None, kind, vmid, asid, illegal) that the current tables define,
    found with the walker's readers (caches bypassed): the first 256 SubstreamIDs, and any
    other whose CD is in the config cache. Used to find the streams that can hit a given IOTLB
    entry. illegal: the SMMU rejects the STE (C_BAD_STE)."""
    w = smmu.walker
    cached_cds = w.cached_cds()
    out = []
    # Only the STEs memory holds with V=1, a page at a time: a table of 2^32 STEs (or 2^26
    # L1STDs) is not read entry by entry.
    sids = []
    try:
        for _, stes in smmu.scan_stream_table():
            sids.extend(sid for sid, _, _ in stes)
    except ModelError:
        pass                # (an L1STD with nothing behind it: no STE after it is reachable)
    for sid in sids:
        words = w.read_ste(sid)["words"]
        if words is None:
            continue
        cfg = STE.field("Config").get(words)
        if not STE.field("V").get(words) or cfg not in (C.STE_Config_s1_trans,
                                                         C.STE_Config_s2_trans,
                                                         C.STE_Config_nested):
            continue
        vmid = STE.field("S2VMID").get(words) if smmu.features.get("S2P") else 0
        if w.check_ste(list(words)):     # illegal: no CD to walk to; every ASID under its VMID
            kind = {C.STE_Config_s2_trans: "S2", C.STE_Config_nested: "NESTED"}.get(cfg, "S1")
            out.append((sid, None, kind, vmid, None, True))
            continue
        if cfg == C.STE_Config_s2_trans:
            out.append((sid, None, "S2", vmid, None, False))
            continue
        cdmax = STE.field("S1CDMax").get(words)
        if STE.field("S1DSS").get(words) == C.STE_S1DSS_bypass and cfg == C.STE_Config_nested \
                and cdmax:
            out.append((sid, None, "S2", vmid, None, False))   # S1DSS=bypass: stage 2 only
        ssids = list(range(min(1 << cdmax, 256)))
        ssids += sorted({c["ssid"] for c in cached_cds if c["sid"] == sid
                         and 256 <= c["ssid"] < 1 << cdmax})
        for ssid in ssids:
            arg = _ssid_arg(ssid, words)
            r = _read_cd(smmu, sid, arg)
            if r is None or r["fault"] is not None:
                continue
            asid = CD.field("ASID").get(r["words"])
            kind = "NESTED" if cfg == C.STE_Config_nested else "S1"
            out.append((sid, arg, kind, vmid, asid, False))
    return out


def _address(cmd, addr):
    """The Address field of a TLBI command for addr (its low bits are taken as zero)."""
    return addr >> fmt(cmd).field("Address").address_shift


def _tlb_fix(smmu, e):
    addr = e["in_base"]
    if e["kind"] == "S2":
        return _cmd("CMD_TLBI_S2_IPA", {"VMID": e["vmid"], "Addr": addr},
                    {"VMID": e["vmid"], "Address": _address("CMD_TLBI_S2_IPA", addr)})
    if e["kind"] == "EL2":
        return _cmd("CMD_TLBI_EL2_VA", {"Addr": addr},
                    {"Address": _address("CMD_TLBI_EL2_VA", addr)})
    vmid = e["vmid"] if smmu.features.get("S2P") else 0
    if e["global"]:
        return _cmd("CMD_TLBI_NH_VAA", {"VMID": vmid, "Addr": addr},
                    {"VMID": vmid, "Address": _address("CMD_TLBI_NH_VAA", addr)})
    return _cmd("CMD_TLBI_NH_VA", {"VMID": vmid, "ASID": e["asid"], "Addr": addr},
                {"VMID": vmid, "ASID": e["asid"], "Address": _address("CMD_TLBI_NH_VA", addr)})


def _fresh_walk(w, sid, addr, ssid, priv):
    """An uncached walk that reports the permissions the address has at this privilege: a read,
    else (on F_PERMISSION) a write, else an instruction fetch. A read alone would report no
    permission for pages an access of another kind may use (EL0 execute-only: AP=0b00 with
    UXN=0 at stage 1; stage-2 write-only S2AP=0b10), which the cached entry rightly holds."""
    for kind in ({}, {"write": True}, {"instr": True}):
        r = w.translate_uncached(sid, addr, ssid, priv=priv, **kind)
        if r["fault"] is None or r["fault"]["type"] != "F_PERMISSION":
            return r
    return r


def _perm_of(r):
    if r["fault"] is None:
        return r["perm"]
    return "---" if r["fault"]["type"] == "F_PERMISSION" else None


def _check_tlb(smmu, e, contexts):
    """Problems of one IOTLB entry against fresh walks from every stream that can hit it."""
    w = smmu.walker
    users, under_illegal = [], False
    for sid, ssid, kind, vmid, asid, illegal in contexts:
        if kind != e["kind"] or vmid != e["vmid"]:
            continue
        if kind in ("S1", "NESTED") and not e["global"] and asid != e["asid"] \
                and not illegal:
            continue
        if illegal:
            # The STE itself is rejected (check reports it as illegal): its transactions
            # stop at C_BAD_STE before any IOTLB lookup, so its entries are not to blame.
            under_illegal = True
            continue
        users.append((sid, ssid))
    if not users:
        if under_illegal:
            return []
        return ["no stream uses this VMID/ASID now: the entry would be hit again if it were "
                "reused"]
    problems = []
    last = e["in_base"] + e["size"] - _PAGE
    for sid, ssid in users:
        for addr in sorted({e["in_base"], last}):
            off = addr - e["in_base"]
            for priv, key in ((True, "perm_priv"), (False, "perm_unpriv")):
                r = _fresh_walk(w, sid, addr, ssid, priv)
                perm = _perm_of(r)
                where = f"SID {sid:#x}{'' if ssid is None else f' SSID {ssid:#x}'} {addr:#x}"
                if perm is None:
                    problems.append(f"{where}: a fresh walk faults "
                                    f"({r['fault']['type']}), the entry translates it")
                    return problems
                if perm != "---" and r["pa"] != e["out_base"] + off:
                    problems.append(f"{where}: fresh walk gives PA {r['pa']:#x}, the entry "
                                    f"{e['out_base'] + off:#x}")
                    return problems
                if perm != e[key]:
                    problems.append(f"{where}: fresh walk gives "
                                    f"{'privileged' if priv else 'unprivileged'} permission "
                                    f"{perm}, the entry {e[key]}")
                    return problems
    return problems


def stale_entries(smmu) -> list[dict]:
    """Every cached STE, CD and IOTLB entry of `smmu` that disagrees with a fresh walk of the
    tables in memory, each with the command that would remove it (see the module doc)."""
    out = []
    w = smmu.walker
    for c in w.cached_stes():
        sid = c["sid"]
        pa, words = _fresh_ste(smmu, sid)
        problem = None
        leaf = 1
        if pa is None:
            problem = f"the STE is no longer reachable: {words}"
            leaf = 0
        elif pa != c["ste_pa"]:
            problem = f"the stream table now locates the STE at {pa:#x}, not {c['ste_pa']:#x}"
            leaf = 0        # the L1STD changed: Leaf=0 also drops a cached L1STD (4.3.1)
        elif words != c["words"]:
            dws = [i for i in range(STE.nwords) if words[i] != c["words"][i]]
            problem = "STE dword " + ", ".join(map(str, dws)) + " changed in memory"
        if problem:
            text, cmd = _cmd("CMD_CFGI_STE", {"StreamID": sid, "Leaf": leaf},
                             {"StreamID": sid, "Leaf": leaf})
            out.append({"kind": "STE", "key": {"sid": sid}, "problem": problem, "fix": text,
                        "command": cmd})
    for c in w.cached_cds():
        sid, ssid = c["sid"], c["ssid"]
        problem = None
        leaf = 1
        try:
            mem_words = smmu.mem.read_words(c["cd_pa"], CD.nwords)
        except MemFault as e:
            mem_words = None
            problem = str(e)
        if mem_words is not None and mem_words != c["words"]:
            dws = [i for i in range(CD.nwords) if mem_words[i] != c["words"][i]]
            problem = "CD dword " + ", ".join(map(str, dws)) + " changed in memory"
        if problem is None:
            pa, _ = _fresh_cd(smmu, sid, ssid)
            if pa is not None and pa != c["cd_pa"]:
                problem = f"the CD is now located at {pa:#x}, not {c['cd_pa']:#x}"
                leaf = 0    # an L1CD (or the STE's CD pointer) changed
        if problem:
            text, cmd = _cmd("CMD_CFGI_CD", {"StreamID": sid, "SubstreamID": ssid,
                                             "Leaf": leaf},
                             {"StreamID": sid, "SubstreamID": ssid, "Leaf": leaf})
            out.append({"kind": "CD", "key": {"sid": sid, "ssid": ssid}, "problem": problem,
                        "fix": text, "command": cmd})
    entries = w.tlb_entries()
    if entries:
        contexts = _contexts(smmu)
        for e in entries:
            problems = _check_tlb(smmu, e, contexts)
            if problems:
                text, cmd = _tlb_fix(smmu, e)
                out.append({"kind": "TLB",
                            "key": {k: e[k] for k in ("kind", "vmid", "asid", "in_base",
                                                      "size")},
                            "problem": "; ".join(problems), "fix": text, "command": cmd})
    return out

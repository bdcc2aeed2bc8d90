"""Faults that explain themselves: which stage, level and descriptor, the rule that fired, and
what would change the answer.

explain(fault, steps, ctx) reads the walk's fault record and trace steps (each descriptor's raw
value, decoded with the field tables) and, for configuration faults, the walker's reason. ctx:
{ste: STE words or None, cd: CD words or None, features: SMMU IDR features} from the model
(words as in memory now; the first dword of each comes from the trace when the memory is gone).
The rules restate the architecture (Arm ARM VMSAv8-64 stage-1/2 permissions, IHI 0070 events);
the permission bits themselves come from core_cy.scan.leaf_perms, the walker's rule.
"""
from __future__ import annotations

from core_cy.scan import leaf_perms
from core_cy.vmsa import descriptor

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C

STE, CD = fmt("STE"), fmt("CD")
S1_BLOCK, S1_TABLE, S2_BLOCK = fmt("S1_BLOCK"), fmt("S1_TABLE"), fmt("S2_BLOCK")

# What changes a configuration fault, by the walker's reason text (core_cy.walk REASONS).
REASON_FIX = {
    "STE.V=0": "software writes the STE with V=1 (then CMD_CFGI_STE and CMD_SYNC)",
    "STE.Config=abort": "STE.Config=bypass or a translating Config (0b1xx) lets traffic through",
    "SMMUEN=0 and SMMU_GBPA.ABORT=1": "SMMU_GBPA.ABORT=0 or SMMU_CR0.SMMUEN=1",
    "SMMUEN=0 and the address is beyond the OAS": "an address within SMMU_IDR5.OAS",
    "CD.V=0": "software writes the CD with V=1 (then CMD_CFGI_CD and CMD_SYNC)",
    "L1CD.V=0": "a valid L1CD (V=1, L2Ptr) for this SubstreamID's CD leaf table",
    "no SubstreamID and STE.S1DSS=terminate":
        "a transaction with a SubstreamID, or STE.S1DSS=bypass/substream0",
    "SubstreamID 0 given with STE.S1DSS=substream0":
        "SubstreamID other than 0 (0 is reserved for transactions without one), or "
        "STE.S1DSS other than substream0",
    "SubstreamID given but stage 1 is not enabled in the STE":
        "a transaction without a SubstreamID, or STE.Config with stage 1",
    "SubstreamID given but STE.S1CDMax=0": "STE.S1CDMax > 0 (a CD table), or no SubstreamID",
    "SubstreamID is beyond STE.S1CDMax": "a larger STE.S1CDMax, or a smaller SubstreamID",
    "StreamID is beyond SMMU_STRTAB_BASE_CFG.LOG2SIZE / SMMU_IDR1.SIDSIZE":
        "a larger SMMU_STRTAB_BASE_CFG.LOG2SIZE (within SMMU_IDR1.SIDSIZE)",
    "L1STD.Span is 0 (invalid) or reserved":
        "an L1STD with Span covering this StreamID and L2Ptr to its STE array",
    "StreamID's L2 index is beyond L1STD.Span": "a larger L1STD.Span",
}


def _fields(f, d: int, names) -> dict:
    return {n: f.field(n).get([d]) for n in names}


def _b(v: int, width: int = 2) -> str:
    return f"0b{v:0{width}b}"


def _out(text, rule, change, stage=None, level=None, step=None, fields=None) -> dict:
    return {"text": text + (f"; {change}" if change else ""), "rule": rule, "stage": stage,
            "level": level, "descriptor": None if step is None else step["desc"],
            "descriptor_pa": None if step is None else step.get("desc_pa"),
            "fields": fields or {}, "change": change}


def _where(typ: str, stage, level, step) -> str:
    s = typ
    if stage:
        s += f" at stage {stage}"
    if level is not None:
        s += f" level {level}"
    if step is not None and step.get("desc_pa") is not None:
        s += f" (descriptor {step['desc']:#018x} at PA {step['desc_pa']:#x}"
        if step.get("desc_ipa") is not None:
            s += f", IPA {step['desc_ipa']:#x}"
        s += ")"
    return s


def access_words(fault: dict) -> tuple[str, bool]:
    acc = "exec" if fault.get("ind") else ("read" if fault.get("rnw") else "write")
    return acc, bool(fault.get("pnu"))


def _priv_text(priv: bool) -> str:
    return "privileged (PnU=1)" if priv else "unprivileged (PnU=0)"


# ---------------------------------------------------------------------------------------------
def explain(fault: dict | None, steps: list, ctx: dict | None = None) -> dict | None:
    """The explanation of a walk's fault, or None when there is no fault: {text, rule, stage,
    level, descriptor, descriptor_pa, fields (decoded fields the rule read), change}."""
    if not fault:
        return None
    ctx = ctx or {}
    typ = fault["type"]
    fn = _BY_TYPE.get(typ, _other)
    return fn(fault, steps or [], ctx)


def _config(fault, steps, ctx):
    typ, reason = fault["type"], fault.get("reason") or ""
    what = {"C_BAD_STE": "the STE", "C_BAD_CD": "the CD", "C_BAD_STREAMID": "the StreamID",
            "C_BAD_SUBSTREAMID": "the SubstreamID", "F_STREAM_DISABLED": "the transaction",
            "ABORT": "the transaction"}.get(typ, "the configuration")
    step = next((s for s in reversed(steps) if s["what"] in ("STE", "CD", "L1STD", "L1CD")),
                None)
    text = f"{typ}: {what} is rejected: {reason or 'no reason recorded'}"
    if typ == "ABORT":
        text = f"terminated without an event: {reason}"
    if step is not None and step.get("desc_pa") is not None and typ in ("C_BAD_STE", "C_BAD_CD"):
        text += f" ({step['what']} at PA {step['desc_pa']:#x}, dword 0 {step['desc']:#018x})"
    change = REASON_FIX.get(reason)
    if change is None and reason:
        # "FIELD ... but SMMU_IDRn.X ..." reasons: the field against what the SMMU supports.
        field = reason.split(" ")[0].rstrip(",")
        if " but " in reason:
            change = f"{field} within what the SMMU supports ({reason.split(' but ')[-1]})"
        else:
            change = f"a legal {field}"
    return _out(text, f"{typ}:{reason}", change, step=step)


def _fetch(fault, steps, ctx):
    typ = fault["type"]
    what = {"F_STE_FETCH": "STE (or L1STD)", "F_CD_FETCH": "CD (or L1CD)"}[typ]
    addr = fault.get("fetch_addr")
    text = f"{typ}: reading the {what} at PA {addr:#x} aborted: no memory there" \
        if addr is not None else f"{typ}: reading the {what} aborted"
    base = "SMMU_STRTAB_BASE / L1STD.L2Ptr" if typ == "F_STE_FETCH" else \
        "STE.S1ContextPtr / L1CD.L2Ptr"
    return _out(text, f"{typ}:abort", f"{base} pointing at memory changes it")


def _last(steps, stage=None, outcomes=None):
    for s in reversed(steps):
        if s["what"] not in ("S1", "S2", "TLB"):
            continue
        if stage is not None and s["stage"] != stage:
            continue
        if outcomes is None or s["outcome"] in outcomes:
            return s
    return None


def _stage_of(fault) -> int:
    return 2 if fault.get("s2") else 1


def _purpose(fault) -> str:
    c = fault.get("class")
    ipa = fault.get("ipa")
    at = f" {ipa:#x}" if ipa is not None else ""
    if c == "TT":
        return f" while translating the IPA{at} of a stage-1 table descriptor (CLASS=TT)"
    if c == "CD":
        return f" while translating the IPA{at} of the CD (CLASS=CD)"
    return ""


def _eabt(fault, steps, ctx):
    st = _last(steps, None, ("abort",))
    stage = st["stage"] if st else _stage_of(fault)
    level = st["level"] if st else None
    addr = fault.get("fetch_addr")
    text = f"F_WALK_EABT at stage {stage}" + (f" level {level}" if level is not None else "") + \
        f": the table descriptor read at PA {addr:#x} aborted (no memory there)" + \
        _purpose(fault)
    return _out(text, f"F_WALK_EABT:stage{stage}",
                "the table address in the level-above descriptor (or CD.TTB0/STE.S2TTB for "
                "the root table) pointing at memory changes it", stage, level, st,
                {"FetchAddr": addr})


def _translation(fault, steps, ctx):
    stage = _stage_of(fault)
    st = _last(steps, stage)
    if st is None or st["level"] is None or st.get("desc_pa") is None:
        # Before any descriptor: the input is outside what the tables translate.
        if stage == 2:
            text = (f"F_TRANSLATION at stage 2: IPA {fault.get('ipa') or 0:#x} is beyond the "
                    f"stage-2 input size (64 - STE.S2T0SZ bits)" + _purpose(fault))
            return _out(text, "F_TRANSLATION:s2-input-size",
                        "a smaller STE.S2T0SZ (larger input range) changes it", 2)
        cd = ctx.get("cd")
        if cd is not None:
            v = CD.decode(cd)
            addr = fault.get("input_addr", 0)
            region = 1 if (addr >> 55) & 1 else 0
            if v[f"EPD{region}"]:
                return _out(f"F_TRANSLATION at stage 1: {addr:#x} selects TTB{region} and "
                            f"CD.EPD{region}=1 disables walks there", f"F_TRANSLATION:EPD{region}",
                            f"CD.EPD{region}=0 with a TTB{region}, or an address in the other "
                            f"half", 1, fields={f"EPD{region}": 1})
            tsz = v[f"T{region}SZ"]
            return _out(f"F_TRANSLATION at stage 1: {addr:#x} is outside the {64 - tsz}-bit "
                        f"input range of TTB{region} (CD.T{region}SZ={tsz})",
                        "F_TRANSLATION:s1-input-size",
                        f"a smaller CD.T{region}SZ or an address within the range", 1,
                        fields={f"T{region}SZ": tsz})
        return _out("F_TRANSLATION at stage 1: the input address is outside the range the CD's "
                    "tables translate", "F_TRANSLATION:s1-input-size", "", 1)
    d, level = st["desc"], st["level"]
    fmt_ = S1_BLOCK if stage == 1 else S2_BLOCK
    valid = fmt_.field("Valid").get([d])
    if not valid:
        why = "Valid=0 (no mapping)"
        rule = "invalid"
        change = "a mapping (map, or a valid descriptor) for this address changes it"
    elif level == 3:
        why = "bits[1:0]=0b01 is reserved at level 3"
        rule = "reserved"
        change = "a page descriptor (bits[1:0]=0b11) changes it"
    else:
        why = f"a block descriptor is not allowed at level {level} for this granule"
        rule = "block-level"
        change = "a table descriptor, or a block at a level that allows one, changes it"
    text = _where("F_TRANSLATION", stage, level, st) + f": {why}" + _purpose(fault)
    return _out(text, f"F_TRANSLATION:{rule}", change, stage, level, st,
                {"Valid": valid})


def _addr_size(fault, steps, ctx):
    stage = _stage_of(fault)
    st = _last(steps, stage, ("fault",))
    if st is None:
        # Bypass or stage-2-only input checked against the OAS before any walk.
        return _out(f"F_ADDR_SIZE: input address {fault.get('input_addr', 0):#x} is beyond the "
                    f"SMMU's output address size (SMMU_IDR5.OAS)", "F_ADDR_SIZE:input",
                    "an address within the OAS", None)
    d = st["desc"]
    # The address the descriptor holds, by the walker's decode (the level's output base for a
    # leaf; what matters here is its size, and a leaf's low bits are below any size limit).
    dkind, addr = descriptor(d, st["level"], 12)
    kind = "next-level table address" if st["outcome"] == "fault" and dkind == "table" \
        else "output address"
    size = "STE.S2PS" if stage == 2 else "CD.IPS"
    text = _where("F_ADDR_SIZE", stage, st["level"], st) + \
        f": the {kind} {addr or 0:#x} is beyond the size {size} allows" + \
        _purpose(fault)
    return _out(text, f"F_ADDR_SIZE:stage{stage}", f"a larger {size} (within SMMU_IDR5.OAS) or "
                f"a smaller address changes it", stage, st["level"], st)


def _access(fault, steps, ctx):
    stage = _stage_of(fault)
    st = _last(steps, stage, ("fault",))
    level = st["level"] if st else None
    if stage == 1:
        flags = "CD.AFFD=0 and CD.HA=0"
        fix = "software setting AF=1, CD.HA=1 (hardware update, SMMU_IDR0.HTTU) or CD.AFFD=1"
    else:
        flags = "STE.S2AFFD=0 and STE.S2HA=0"
        fix = "software setting AF=1, STE.S2HA=1 (SMMU_IDR0.HTTU) or STE.S2AFFD=1"
    text = _where("F_ACCESS", stage, level, st) + f": the leaf has AF=0 and {flags}" + \
        _purpose(fault)
    return _out(text, f"F_ACCESS:stage{stage}", f"{fix} changes it", stage, level, st, {"AF": 0})


def _perm_s1(fault, steps, ctx, st):
    acc, priv = access_words(fault)
    d, level = st["desc"], st["level"]
    f = _fields(S1_BLOCK, d, ("AP", "PXN", "UXN"))
    cd = ctx.get("cd")
    ste = ctx.get("ste")
    feats = ctx.get("features") or {}
    cdv = CD.decode(cd) if cd is not None else {}
    had = bool(cdv.get("HAD0") and feats.get("HAD"))
    el2 = bool(ste is not None and feats.get("HYP") and STE.field("Config").get(ste) == 5
               and STE.field("STRW").get(ste) == 2)
    wxn, pan = bool(cdv.get("WXN")), bool(cdv.get("PAN"))
    tap, tpxn, tuxn, tlevels = 0, False, False, []
    i = steps.index(st)
    # The stage-1 table descriptors of this walk (back to the previous non-table S1 step).
    for s in reversed(steps[:i]):
        if s["what"] != "S1" or s["outcome"] != "table":
            if s["what"] in ("S1", "CD", "TLB"):
                break
            continue
        if not had:
            t = _fields(S1_TABLE, s["desc"], ("APTable", "PXNTable", "UXNTable"))
            if any(t.values()):
                tlevels.append((s["level"], t))
            tap |= t["APTable"]
            tpxn = tpxn or bool(t["PXNTable"])
            tuxn = tuxn or bool(t["UXNTable"])
    perm = leaf_perms(1, d, tap, tpxn, tuxn, el2=el2, pan=pan, wxn=wxn)
    have = (perm if priv else perm >> 3) & 7
    ap = f["AP"]
    where = _where("F_PERMISSION", 1, level, st)
    tbl_note = "".join(f"; level-{lv} table descriptor has " +
                       ", ".join(f"{k}={v:#x}" for k, v in t.items() if v) for lv, t in tlevels)
    fields = dict(f, **({"WXN": 1} if wxn else {}), **({"PAN": 1} if pan else {}))
    # AP[2] (in RO_EL1 and RO_any) makes it read-only, AP[1] (RW_any, RO_any) EL0-accessible;
    # APTable no_write / no_EL0 take them away below a table.
    ro = bool(ap & C.S1_BLOCK_AP_RO_EL1 or tap & C.S1_TABLE_APTable_no_write)
    el0 = bool(ap & C.S1_BLOCK_AP_RW_any) and not tap & C.S1_TABLE_APTable_no_EL0

    def out(rule, why, change):
        return _out(f"{where}: {why}{tbl_note}", f"F_PERMISSION:s1:{rule}", change, 1, level,
                    st, fields)

    if el2:
        if acc == "write" and ro:
            return out("ro", f"AP={_b(ap)} is read-only (EL2 regime: AP[2]=1)",
                       "AP[2]=0 changes it")
        if acc == "exec":
            if f["UXN"] or tuxn:
                return out("xn", "XN=1 (bit 54, EL2 regime) forbids execution" if f["UXN"]
                           else "XNTable=1 in a table descriptor forbids execution",
                           "XN=0 (and XNTable=0) changes it")
            return out("wxn", "CD.WXN=1 and the page is writable: write implies execute-never",
                       "CD.WXN=0 or a read-only page changes it")
    if not priv and acc in ("read", "write") and not el0:
        src = f"AP={_b(ap)} grants EL1 only" if not ap & C.S1_BLOCK_AP_RW_any else \
            "APTable[0]=1 in a table descriptor removes EL0 access"
        return out("unprivileged", f"{src} and the transaction is unprivileged (PnU=0)",
                   "a privileged access (PnU=1; on hardware also STE.PRIVCFG=0b11, an override "
                   "this model does not apply) or AP[1]=1 changes it")
    if priv and acc in ("read", "write") and pan and el0:
        return out("pan", f"CD.PAN=1 and AP={_b(ap)} makes the page EL0-accessible: "
                   "privileged data access is refused (PAN)",
                   "CD.PAN=0, an unprivileged access, or AP[1]=0 changes it")
    if acc == "write" and ro:
        src = f"AP={_b(ap)} is read-only (AP[2]=1)" if ap & C.S1_BLOCK_AP_RO_EL1 else \
            "APTable[1]=1 in a table descriptor makes the range read-only"
        return out("ro", f"{src} and the access is a write",
                   "AP[2]=0 (or hardware dirty state: CD.HA=1, CD.HD=1 and DBM=1) changes it")
    if acc == "exec" and priv:
        if f["PXN"]:
            return out("pxn", "PXN=1 forbids privileged execution", "PXN=0 changes it")
        if tpxn:
            return out("pxn-table", "PXNTable=1 in a table descriptor forbids privileged "
                       "execution", "PXNTable=0 changes it")
        if el0 and not ro:
            return out("el0-writable", f"AP={_b(ap)} makes the page writable at EL0, so it is "
                       "privileged execute-never (a location writable at EL0 is never "
                       "executable at EL1)", "AP=0b00 (EL1 only) or a read-only AP changes it")
        if wxn and not ro:
            return out("wxn", "CD.WXN=1 and the page is writable: write implies execute-never",
                       "CD.WXN=0 or a read-only AP changes it")
    if acc == "exec" and not priv:
        if f["UXN"]:
            return out("uxn", "UXN=1 forbids unprivileged execution", "UXN=0 changes it")
        if tuxn:
            return out("uxn-table", "UXNTable=1 in a table descriptor forbids unprivileged "
                       "execution", "UXNTable=0 changes it")
        if wxn and el0 and not ro:
            return out("wxn", "CD.WXN=1 and the page is writable at EL0: write implies "
                       "execute-never", "CD.WXN=0 or a read-only AP changes it")
    return out("other", f"the leaf grants {_rwx(have)} to a {_priv_text(priv)} access and the "
               f"access is {acc}", "")


def _rwx(b: int) -> str:
    return ("r" if b & 1 else "-") + ("w" if b & 2 else "-") + ("x" if b & 4 else "-")


def _perm_s2(fault, steps, ctx, st):
    acc, priv = access_words(fault)
    d, level = st["desc"], st["level"]
    f = _fields(S2_BLOCK, d, ("S2AP", "XN"))
    xnx = bool((ctx.get("features") or {}).get("XNX", 1))
    where = _where("F_PERMISSION", 2, level, st)
    cls = fault.get("class")
    if cls in ("TT", "CD"):
        acc = "read"           # table and CD fetches are reads
    purpose = _purpose(fault)

    def out(rule, why, change):
        return _out(f"{where}: {why}{purpose}", f"F_PERMISSION:s2:{rule}", change, 2, level, st,
                    f)
    # S2AP[0] (RO, RW) grants read, S2AP[1] (WO, RW) write.
    if acc == "read" and not f["S2AP"] & C.S2_BLOCK_S2AP_RO:
        return out("s2ap-read", f"S2AP={_b(f['S2AP'])} does not grant read",
                   "S2AP[0]=1 changes it")
    if acc == "write" and not f["S2AP"] & C.S2_BLOCK_S2AP_WO:
        return out("s2ap-write", f"S2AP={_b(f['S2AP'])} does not grant write",
                   "S2AP[1]=1 (or hardware dirty state: STE.S2HD=1 and DBM=1) changes it")
    if acc == "exec":
        xn = f["XN"] if xnx else f["XN"] & C.S2_BLOCK_XN_no_exec
        meaning = {1: "XN=0b01 forbids privileged execution (SMMU_IDR3.XNX)",
                   2: "XN=0b10 forbids execution at any privilege",
                   3: "XN=0b11 forbids unprivileged execution (SMMU_IDR3.XNX)"}.get(xn)
        if meaning:
            return out("xn", meaning + f" and the access is {_priv_text(priv)}",
                       "XN=0b00 changes it" + ("" if xn == 2 else
                                                 ", or an access of the other privilege"))
    return out("other", f"S2AP={_b(f['S2AP'])} XN={_b(f['XN'])} and the access is {acc}", "")


def _permission(fault, steps, ctx):
    stage = _stage_of(fault)
    st = _last(steps, stage, ("fault",))
    if st is None:
        st = _last(steps, None, ("cached",))
        acc, priv = access_words(fault)
        return _out(f"F_PERMISSION at stage {stage}: the IOTLB entry (cached) does not grant a "
                    f"{_priv_text(priv)} {acc}", f"F_PERMISSION:s{stage}:cached",
                    "new permissions in the tables apply after the TLB invalidation for this "
                    "address and CMD_SYNC", stage, st["level"] if st else None, None)
    return (_perm_s1 if stage == 1 else _perm_s2)(fault, steps, ctx, st)


def _other(fault, steps, ctx):
    return _out(f"{fault['type']}" + (f": {fault['reason']}" if fault.get("reason") else ""),
                fault["type"], "")


_BY_TYPE = {
    "C_BAD_STE": _config, "C_BAD_CD": _config, "C_BAD_STREAMID": _config,
    "C_BAD_SUBSTREAMID": _config, "F_STREAM_DISABLED": _config, "ABORT": _config,
    "F_STE_FETCH": _fetch, "F_CD_FETCH": _fetch, "F_WALK_EABT": _eabt,
    "F_TRANSLATION": _translation, "F_ADDR_SIZE": _addr_size, "F_ACCESS": _access,
    "F_PERMISSION": _permission,
}

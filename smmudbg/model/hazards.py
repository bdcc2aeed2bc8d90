"""STE and CD update hazards: rewriting a live structure with 64-bit stores.

The SMMU reads an STE or CD as a whole but software can only store 64 bits at a time, and a
cached copy changes only on CMD_CFGI_* + CMD_SYNC (IHI 0070 3.21.3). A change is safe without
first making the entry invalid ("hitless") when the SMMU, reading at any point of the update,
sees either the old or the new configuration. Whether that holds depends on which bits the
configuration actually uses: fields the current Config does not use are IGNORED (5.2, 5.4) and
can be changed freely.

This module implements that analysis, following the procedure the Linux arm-smmu-v3 driver uses
(arm_smmu_write_entry; see smmu-facts 1.4 and 10.1):
  * used bits per Config (STE) or per V/EPD0 (CD);
  * which qwords must change in used bits once every unused bit has been moved to its target;
  * one such qword: hitless, in up to 3 CMD_SYNC-separated steps (unused bits, the critical
    qword, then clean-up); two or more: a breaking update (V=0, qwords 1..7, then qword 0);
  * a step that changes nothing needs no sync;
and, separately, a check of an arbitrary store order for torn states.

Field positions come from the field tables (smmudbg.arch.fieldtable), never from constants here.
"""
from __future__ import annotations

from ..arch.fieldtable import fmt
from ..arch.smmuv3 import consts as C
from ..errors import ModelError

STE = fmt("STE")
CD = fmt("CD")
NQ = STE.nwords
_ALL = (1 << 64) - 1

# STE.Config values that enable stage 1 / stage 2 (IHI 0070 5.2).
S1_CONFIGS = (C.STE_Config_s1_trans, C.STE_Config_nested)
S2_CONFIGS = (C.STE_Config_s2_trans, C.STE_Config_nested)


def _mask(table, *names) -> list[int]:
    m = [0] * NQ
    for n in names:
        f = table.field(n)
        m[f.dword] |= f.inplace_mask
    return m


def _or(a, b):
    return [x | y for x, y in zip(a, b)]


def _words(w, what) -> list[int]:
    w = list(w)
    if len(w) != NQ or any(not isinstance(x, int) or x < 0 or x >> 64 for x in w):
        raise ModelError(f"{what} must be 8 64-bit words")
    return w


# The S2 "VTCR" group Linux treats as one field: S2T0SZ..S2PS (dw2[50:32]).
_VTCR = ("S2T0SZ", "S2SL0", "S2IR0", "S2OR0", "S2SH0", "S2TG", "S2PS")


def ste_used_bits(words, newer: bool = True) -> list[int]:
    """Bits of an STE the SMMU uses under its Config (smmu-facts 1.4; IHI 0070 5.2: fields of a
    stage that Config does not enable are IGNORED, and with V=0 everything but V is). `newer`
    adds what recent kernels also count: MEV (both stages) and S2S."""
    w = _words(words, "an STE")
    used = _mask(STE, "V")
    if not STE.field("V").get(w):
        return used
    used = _or(used, _mask(STE, "Config"))
    cfg = STE.field("Config").get(w)
    if cfg in S1_CONFIGS:
        used = _or(used, _mask(STE, "S1Fmt", "S1ContextPtr", "S1CDMax", "S1DSS", "S1CIR",
                               "S1COR", "S1CSH", "S1STALLD", "STRW", "EATS", "S2VMID"))
        if newer:
            used = _or(used, _mask(STE, "MEV"))
        if STE.field("S1DSS").get(w) == C.STE_S1DSS_bypass:
            used = _or(used, _mask(STE, "SHCFG"))
    if cfg in S2_CONFIGS:
        used = _or(used, _mask(STE, "EATS", "SHCFG", "S2FWB", "S2VMID", *_VTCR, "S2AA64",
                               "S2ENDI", "S2PTW", "S2R", "S2TTB"))
        if newer:
            used = _or(used, _mask(STE, "MEV", "S2S"))
    if cfg == C.STE_Config_bypass:
        used = _or(used, _mask(STE, "SHCFG"))
    return used


def ste_update_safe(cur, target) -> list[int]:
    """Bits that may change in one store without a hazard even while used (newer kernels):
    MEV only changes how events are merged, and merged records may appear anyway (3.5.5);
    EATS=TRANS when neither entry uses S1CHK or S2S (EATS=1 with S2S=1 is ILLEGAL, 5.2)."""
    safe = _mask(STE, "MEV")
    eats = STE.field("EATS")
    s2s = STE.field("S2S")
    # EATS values with bit 1 set (S1CHK, and TRANS_DPT as Linux counts it) are not update-safe.
    s1chk = {C.STE_EATS_s1chk, C.STE_EATS_trans_dpt}
    if not {eats.get(cur), eats.get(target)} & s1chk and not (s2s.get(cur) or s2s.get(target)):
        safe[eats.dword] |= C.STE_EATS_trans << eats.lo
    return safe


def cd_used_bits(words) -> list[int]:
    """Bits of a CD the SMMU uses: only V when V=0; otherwise all, except that EPD0=1 makes the
    TTB0 walk fields IGNORED (IHI 0070 5.4)."""
    w = _words(words, "a CD")
    used = _mask(CD, "V")
    if not CD.field("V").get(w):
        return used
    used = [_ALL] * NQ
    if CD.field("EPD0").get(w):
        off = _mask(CD, "T0SZ", "TG0", "IR0", "OR0", "SH0", "TTB0")
        used = [u & ~o for u, o in zip(used, off)]
    return used


def _used(kind, w, newer):
    return ste_used_bits(w, newer) if kind == "ste" else cd_used_bits(w)


def _safe(kind, cur, target, newer):
    if kind == "ste" and newer:
        return ste_update_safe(cur, target)
    return [0] * NQ


def plan_update(cur, target, kind: str = "ste", newer: bool = True) -> dict:
    """How to move a live STE/CD from `cur` to `target` with 64-bit stores and syncs.

    Returns {hitless, critical_qwords, syncs, steps, invalid_written}: each step is
    {"write": [(qword, value)...], "entry": words after the step, "why": text} and is followed
    by one CMD_CFGI_* + CMD_SYNC; steps that would change nothing are left out (no sync)."""
    kind = kind.lower()
    if kind not in ("ste", "cd"):
        raise ModelError(f"kind must be 'ste' or 'cd', not {kind!r}")
    cur = _words(cur, "the current entry")
    target = _words(target, "the target entry")
    cur_used = _used(kind, cur, newer)
    tgt_used = _used(kind, target, newer)
    safe = [s & cu & tu for s, cu, tu in zip(_safe(kind, cur, target, newer), cur_used,
                                              tgt_used)]
    unused_update = []
    critical = []
    for i in range(NQ):
        cu = cur_used[i] & ~safe[i]
        # Bits the current configuration ignores can take their new value at once.
        unused_update.append((cur[i] & cu) | (target[i] & ~cu))
        if (unused_update[i] & tgt_used[i]) != target[i] & tgt_used[i]:
            critical.append(i)
    entry = list(cur)
    steps = []

    def step(new, why):
        writes = [(i, new[i]) for i in range(NQ) if new[i] != entry[i]]
        if writes:
            for i, v in writes:
                entry[i] = v
            steps.append({"write": writes, "entry": list(entry), "why": why})

    if len(critical) == 1:
        c = critical[0]
        first = list(unused_update)
        first[c] = entry[c]
        step(first, "set the bits the current configuration ignores")
        crit = list(entry)
        crit[c] = target[c]
        step(crit, f"switch configuration with one store to qword {c}")
        step(list(target), "clear the bits the new configuration ignores")
    elif critical:
        z = list(entry)
        z[0] = 0
        step(z, "break: make the entry invalid (V=0)")
        rest = list(entry)
        rest[1:] = target[1:]
        step(rest, "write qwords 1-7")
        step(list(target), "write qword 0 (valid again)")
    else:
        step(list(target), "only ignored or update-safe bits change")
    # A step that leaves qword 0 all-zero has made the entry invalid (V is bit 0 of an STE and
    # bit 31 of a CD; the break-before-make path writes qword 0 = 0): not hitless.
    invalid = any(s["entry"][0] == 0 for s in steps)
    return {"hitless": not invalid,
            "critical_qwords": critical, "syncs": len(steps), "steps": steps,
            "invalid_written": invalid}


def same_config(entry, ref, kind="ste", newer=True) -> bool:
    """True if the SMMU, reading `entry`, sees the configuration `ref` describes: they agree in
    every bit `entry`'s own configuration uses (update-safe bits excepted)."""
    used = _used(kind, entry, newer)
    safe = _safe(kind, entry, ref, newer)
    return all((e & u & ~s) == (r & u & ~s) for e, r, u, s in zip(entry, ref, used, safe))


def torn_states(old, new, order=None, kind: str = "ste", walker=None, newer: bool = True):
    """Every state a reader can see while `old` is overwritten by `new` with 64-bit stores in
    `order` (qword indexes; default 0..7, as a memcpy does) and no sync in between.

    Returns a list of {after_store, qword, entry, status} for the intermediate states, where
    status is 'old', 'new', 'invalid' (V=0: transactions get C_BAD_STE/C_BAD_CD, disruptive but
    not torn), 'illegal: <reason>' (walker.check_ste/check_cd rejects the mix) or 'torn' (a
    configuration that is neither the old nor the new one)."""
    kind = kind.lower()
    old = _words(old, "the old entry")
    new = _words(new, "the new entry")
    order = list(range(NQ)) if order is None else list(order)
    if sorted(order) != list(range(NQ)):
        raise ModelError("order must list each qword index 0..7 once")
    vfield = STE.field("V") if kind == "ste" else CD.field("V")
    entry = list(old)
    out = []
    for n, q in enumerate(order[:-1]):
        entry[q] = new[q]
        if entry == old or entry == new:
            continue
        if not vfield.get(entry):
            status = "invalid"
        elif same_config(entry, old, kind, newer):
            status = "old"
        elif same_config(entry, new, kind, newer):
            status = "new"
        else:
            status = "torn"
        if status != "invalid" and walker is not None:
            why = walker.check_ste(entry) if kind == "ste" else walker.check_cd(entry)
            if why and "abort" not in why.lower():
                status = f"illegal: {why}"
        out.append({"after_store": n + 1, "qword": q, "entry": list(entry), "status": status})
    return out


def analyze(old, new, kind: str = "ste", order=None, walker=None, newer: bool = True) -> dict:
    """One report for rewriting a live STE/CD: the hitless plan (plan_update) and the hazards of
    writing it directly in `order` without syncs (torn_states)."""
    plan = plan_update(old, new, kind, newer)
    states = torn_states(old, new, order, kind, walker, newer)
    bad = [s for s in states if s["status"] == "torn" or s["status"].startswith("illegal")]
    return {"hitless": plan["hitless"], "critical_qwords": plan["critical_qwords"],
            "syncs": plan["syncs"], "steps": plan["steps"],
            "changed_qwords": [i for i in range(NQ) if old[i] != new[i]],
            "direct_write_states": states, "torn": bool(bad), "torn_states": bad}

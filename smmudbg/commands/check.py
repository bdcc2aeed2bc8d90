"""check: one report of everything suspicious in the current state."""
from __future__ import annotations

from .. import results as res
from ..arch.fieldtable import fmt
from ..errors import ModelError
from ..model import coherence, system_checks
from .registry import Arg, NameT, command

STE = fmt("STE")


def _stream_problems(ctx, m):
    """STEs of the declared streams that the SMMU would reject (C_BAD_STE)."""
    out = []
    seen = set()
    for (smmu, sid), st in ctx.system.streams.items():
        if smmu != m.name:
            continue
        try:
            words = m.ste_words(sid)
        except ModelError as e:
            out.append({"sid": sid, "device": st.name, "problem": str(e)})
            continue
        key = tuple(words)
        if key in seen:            # streams sharing one configuration: check it once
            continue
        why = m.check_ste(words)
        if why and why != "STE.Config=abort":
            out.append({"sid": sid, "device": st.name, "problem": f"C_BAD_STE: {why}"})
        else:
            seen.add(key)
    return out


def _hazard(m, entry, kind):
    """For a cached STE/CD that memory no longer matches: how the change should have been
    made (hitless or not, with how many syncs), and whether a reader could have seen a torn
    mix of old and new while it was written."""
    mem = entry["memory"]
    if mem is None or not entry["stale"]:
        return None
    a = m.update_hazards(entry["words"], mem, kind)
    return {"kind": kind.upper(), "sid": entry["sid"], "ssid": entry.get("ssid"),
            "changed_qwords": a["changed_qwords"], "hitless": a["hitless"],
            "syncs_needed": a["syncs"], "critical_qwords": a["critical_qwords"],
            "torn": a["torn"],
            "torn_states": [{"after_store": s["after_store"], "qword": s["qword"],
                             "status": s["status"]} for s in a["torn_states"]],
            "plan": [{"write": [[q, v] for q, v in s["write"]], "why": s["why"]}
                     for s in a["steps"]]}


@command("check", Arg("smmu", NameT("iommus", "SMMU or VT-d unit", "SMMU"),
                      "only this SMMU (or VT-d unit)", optional=True),
         pure=True)
def check(ctx, smmu=None):
    """Everything suspicious in the current state: stale cached entries and their fixes,
    update hazards, illegal STEs and global errors, per SMMU.

    The report, per SMMU (or for SMMU only):

    stale    cached STEs, CDs and IOTLB entries that memory no longer matches, each with the
             commands that remove it: the invalidation, then CMD_SYNC (fix_commands: lines
             to run as they are)
    hazards  for each stale STE/CD: whether the change could have been made hitless (and in
             how many CMD_CFGI + CMD_SYNC steps) and whether a reader could have seen a torn
             mix of old and new qwords while it was being written
    illegal  STEs of declared streams that the SMMU rejects (C_BAD_STE and why)
    errors   active global errors (GERROR), event queue overflow, events not yet read,
             invalidations still set to be dropped

    system   (without SMMU) the MSI path of every vector of every PCI device, IORT
             consistency, ITS command errors, nesting-parent S2 sharing, and the vSMMUs:
             accelerated-mode topology rules, guest STEs out of sync with the host (refused
             or not yet invalidated), a stopped guest command queue, guest invalidations the
             VMM did not forward and the stale host IOTLB entries they left; each with its
             fix

    A VT-d unit's report: stale context-cache, PASID-cache and IOTLB entries, each with the
    invalidation descriptor that removes it (fix_commands: `cmd UNIT DESCRIPTOR ...`), and the
    faults it recorded (errors)."""
    names = [smmu] if smmu else list(ctx.system.smmus) + list(ctx.system.vtds)
    reports, total = [], 0
    for name in names:
        if name in ctx.system.vtds:
            rep = _vtd_report(ctx, name)
            total += rep["problems"]
            reports.append(rep)
            continue
        m = ctx.system.smmu(name)
        stale = coherence.stale_entries(m)
        for s in stale:
            s["command"] = [s["command"][0], s["command"][1]]
            # complete: the invalidation only takes effect for certain after a CMD_SYNC
            s["fix_commands"] = [f"cmd {name} {s['fix']}", f"cmd {name} CMD_SYNC"]
        stes, cds = m.cached_entries()
        haz = [h for h in (_hazard(m, e, "ste") for e in stes) if h]
        haz += [h for h in (_hazard(m, e, "cd") for e in cds) if h]
        illegal = _stream_problems(ctx, m)
        errors = [f"GERROR.{g} active" for g in m.gerror_active()]
        if m.evtq_overflow:
            errors.append("event queue overflowed: records were lost")
        pending = m.evtq.unread()
        if m.cmdq.drop_budget:
            errors.append(f"the next {m.cmdq.drop_budget} invalidations will be dropped")
        n = len(stale) + len(illegal) + len(errors) + sum(1 for h in haz if h["torn"])
        total += n
        reports.append({"smmu": name, "stale": stale, "hazards": haz, "illegal": illegal,
                        "errors": errors, "unread_events": pending, "problems": n})
    # The system around the SMMUs (model/system_checks.py): MSI paths, IORT, ITS, S2 sharing.
    extra = system_checks.findings(ctx.system) if smmu is None else []
    total += sum(1 for f in extra if f["severity"] == "error")
    return res.Check(**{"smmus": reports, "problems": total, "clean": total == 0,
                        "not_checked": [], "system": extra})


def _vtd_report(ctx, name):
    """A VT-d unit's part of the report, in the SMMUs' shape."""
    u = ctx.system.vtd(name)
    stale = []
    for e in u.stale_entries():
        desc, *fields = e["fix"].split()
        stale.append({"kind": e["kind"].upper(), "key": e["key"], "problem": e["problem"],
                      "fix": e["fix"], "command": [desc, fields],
                      "fix_commands": [f"cmd {name} {e['fix']}"]})
    errors = ([f"{len(u.faults)} fault(s) recorded (events {name})"] if u.faults else []) + \
        ([f"invalidation queue stopped: {u.iq_error}"] if u.iq_error else []) + \
        ([f"the next {u.drop_budget} invalidation descriptors will be dropped"]
         if u.drop_budget else [])
    return {"smmu": name, "stale": stale, "hazards": [], "illegal": [], "errors": errors,
            "unread_events": len(u.faults), "problems": len(stale) + (1 if u.iq_error else 0)}

"""The walk command: one transaction through the SMMU, step by step."""
from __future__ import annotations

from .. import results as res
from .registry import Address, Choice, CommandError, Flag, Int, Stream, command
from .vtd import pasid_values


@command("walk", Stream("target", "DEVICE, or SMMU SID (VT-d: UNIT RID)"),
         Address("address", "input address"),
         Int("ssid", "SubstreamID (PASID); none: a transaction without one", keyword=True,
             hi=(1 << 20) - 1),
         Int("pasid", "VT-d: the request's PASID; none: a request without PASID (the same as "
             "ssid)", keyword=True, hi=(1 << 20) - 1, complete=pasid_values),
         Choice("access", ("read", "write", "exec"), "access type", default="read"),
         Flag("priv", "a privileged access"),
         Flag("dry", "look only: no cache fill, no event recorded, memory unchanged"))
def walk(ctx, target, address, ssid=None, pasid=None, access="read", priv=False, dry=False):
    """Translate ADDRESS for a stream the way the SMMU does, showing every table fetch.

    walk DEVICE ADDRESS [ssid=N] [access=read|write|exec] [priv] [dry]
    walk SMMU SID ADDRESS ...

    The result has pa (the output address, or null), ipa (the intermediate address of a
    nested walk), perm, hit (served by the IOTLB), fault (null, or the event: type such as
    F_TRANSLATION, s2, class CD/TT/IN, ipa, fetch_addr, input_addr, rnw, ind, pnu, ...) and
    steps (each fetch: what, stage, level, table, index, desc_ipa, desc_pa, desc, outcome) and,
    with a fault, explanation: the level, descriptor and rule that fired and what would change
    the answer.
    Like a real transaction it fills the IOTLB and config cache and records its event.
    With dry it only looks: the same walk and trace from the tables in memory, caches neither
    read nor filled, no event recorded, memory left as it was (for a real dump).

    On an Intel VT-d device (or UNIT RID): the request goes root entry -> context entry ->
    PASID directory -> PASID entry -> first-stage (FS) and/or second-stage (SS) levels, with
    pasid=N (or ssid=N) for a request with PASID; the result is a vtd-walk (help results)
    with the fault's reason code (SCT_6, SFS_2, ...) when it faults; a recorded fault is
    logged (events UNIT) unless dry; dry also leaves A/D flags as they are."""
    smmu_name, sid = target
    if smmu_name in ctx.system.vtds:
        return _vtd_walk(ctx, smmu_name, sid, address, ssid, pasid, access, priv, dry)
    if pasid is not None:
        if ssid is not None and ssid != pasid:
            raise CommandError("walk: ssid and pasid name the same thing; give one")
        ssid = pasid
    m = ctx.system.smmu(smmu_name)
    if dry:
        r = m.translate_dry(sid, address, ssid, access=access, priv=priv)
    else:
        r = m.translate(sid, address, ssid, access=access, priv=priv, trace=True)
    st = ctx.system.streams.get((smmu_name, sid))
    return res.Walk(smmu=smmu_name, sid=sid, device=st.name if st else None, ssid=ssid,
                    address=address, access=access, priv=priv, pa=r["pa"], ipa=r["ipa"],
                    perm=r["perm"], hit=r["hit"], fault=r["fault"], event=r.get("event"),
                    steps=r["steps"], dry=dry,
                    explanation=m.explain_fault(sid, ssid, r["fault"], r["steps"]))


def _vtd_walk(ctx, unit_name, rid, address, ssid, pasid, access, priv, dry):
    if ssid is not None and pasid is not None and ssid != pasid:
        raise CommandError("walk: ssid and pasid name the same thing; give one")
    p = pasid if pasid is not None else ssid
    u = ctx.system.vtd(unit_name)
    r = u.translate(rid, address, p, access=access, priv=priv, dry=dry)
    dev = u.devices.get(rid)
    fault = r["fault"]
    return res.VtdWalk(unit=unit_name, rid=rid, device=dev.name if dev else None, pasid=p,
                       address=address, access=access, priv=priv, outcome=r["kind"],
                       pa=r["pa"], gpa=r["gpa"], size=r["size"], perm=r["perm"],
                       pgtt=r["pgtt"], did=r["did"], pasid_used=r["pasid"], snoop=r["snoop"],
                       fault=fault, fault_index=r.get("fault_index"), steps=r["steps"],
                       dry=dry)

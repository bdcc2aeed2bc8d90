"""The walk command: one transaction through the SMMU, step by step."""
from __future__ import annotations

from .. import results as res
from .registry import Address, Choice, Flag, Int, Stream, command


@command("walk", Stream("target", "DEVICE, or SMMU SID"), Address("address", "input address"),
         Int("ssid", "SubstreamID (PASID); none: a transaction without one", keyword=True,
             hi=(1 << 20) - 1),
         Choice("access", ("read", "write", "exec"), "access type", default="read"),
         Flag("priv", "a privileged access"),
         Flag("dry", "look only: no cache fill, no event recorded, memory unchanged"))
def walk(ctx, target, address, ssid=None, access="read", priv=False, dry=False):
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
    read nor filled, no event recorded, memory left as it was (for a real dump)."""
    smmu_name, sid = target
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

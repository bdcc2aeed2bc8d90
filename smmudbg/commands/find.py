"""The find command: reverse lookup from a physical (or intermediate) address range to the
streams and input addresses that map it."""
from __future__ import annotations

from .. import results as res
from .registry import CommandError, Int, Iommu, Text, Vm, command, parse_int, shown


def parse_range(text: str, what: str) -> tuple[int, int]:
    """ADDR, ADDR..END (END exclusive) or ADDR+SIZE -> (addr, size)."""
    try:
        if ".." in text:
            a, b = text.split("..", 1)
            lo, hi = parse_int(a), parse_int(b)
            if hi <= lo:
                raise CommandError(f"find: {what}: {shown(text)}: END must be above ADDR")
            size = hi - lo
        elif "+" in text:
            a, b = text.split("+", 1)
            lo, size = parse_int(a), parse_int(b)
        else:
            lo, size = parse_int(text), 1
    except ValueError:
        raise CommandError(f"find: {what}: {shown(text)} is not ADDR, ADDR..END or ADDR+SIZE") \
            from None
    if lo < 0 or size < 0:
        raise CommandError(f"find: {what}: {shown(text)}: addresses and sizes are not negative")
    return lo, size


FIND_MAX_ROWS = 1_000_000     # a row is a dict: about 1 KiB each, so at most ~1 GiB


@command("find", Text("pa", "physical range: ADDR, ADDR..END (END exclusive) or ADDR+SIZE",
                      keyword=True, metavar="RANGE"),
         Text("ipa", "intermediate range of a VM (same forms)", keyword=True, metavar="RANGE"),
         Vm("vm", "with ipa=: only the streams of this VM (its stage-2 VMIDs)", keyword=True),
         Iommu("smmu", "only this SMMU (or VT-d unit)", optional=True),
         Int("sid", "only this StreamID", keyword=True, hi=(1 << 32) - 1),
         Int("limit", f"at most this many mappings (default 10000, at most {FIND_MAX_ROWS})",
             keyword=True, default=10_000, lo=1, hi=FIND_MAX_ROWS),
         pure=True)
def find(ctx, pa=None, ipa=None, vm=None, smmu=None, sid=None, limit=10_000):
    """Who maps an address: every (SMMU, StreamID, SubstreamID, IOVA range) whose translation
    lands in the range, with both stages' permissions.

    find pa=RANGE [SMMU] [sid=N]          stage 1, stage 2, nested (IOVA -> IPA -> PA), bypass
    find ipa=RANGE [vm=VM] [SMMU] [sid=N] streams with a stage 2: nested stage-1 outputs in the
                                          IPA range, stage-2-only streams where stage 2 maps it

    RANGE is ADDR, ADDR..END (END exclusive) or ADDR+SIZE. Every valid, legal STE is asked
    (streams whose STE and CD are the same, once); each table tree is scanned once (streams
    sharing a domain share it). Stage 1 covers each
    CD's TTB0 and TTB1 (upper VA range) unless CD.EPD0/EPD1 disables it. SSID "-" is traffic
    without a SubstreamID (S1CDMax=0, or CD 0 under S1DSS=substream0); S1DSS=bypass sends that
    traffic past stage 1 (a bypass or stage-2 row with a note). A bypass STE maps every PA
    below the OAS to itself. At most limit mappings are listed: a larger answer says so and
    how to narrow it.

    On Intel VT-d (pa= only): each requester's RID_PASID entry and the PASIDs it was given,
    through the walker's reader: nested IOVA -> GPA (the ipa column) -> PA, first or second
    stage alone, pass-through; sid= is the requester ID, ssid the PASID, the note names the
    PGTT and DID."""
    if (pa is None) == (ipa is None):
        raise CommandError("find: give one of pa=RANGE or ipa=RANGE")
    if vm is not None and pa is not None:
        raise CommandError("find: vm= goes with ipa=")
    space = "pa" if pa is not None else "ipa"
    addr, size = parse_range(pa if pa is not None else ipa, space)
    units = [smmu] if smmu in ctx.system.vtds else [] if smmu is not None else \
        list(ctx.system.vtds)
    if smmu in ctx.system.vtds and space == "ipa":
        raise CommandError("find: ipa= is an SMMU's intermediate space; on VT-d use pa=")
    if smmu in ctx.system.vtds or not ctx.system.smmus:
        r = {"hits": [], "scanned": {"streams": 0, "trees": 0, "descriptors": 0,
                                     "unreadable": 0}, "truncated": False}
        if size <= 0 or addr + size >= 1 << 64:
            raise CommandError(f"find: range {addr:#x}+{size:#x} is empty or reaches the end "
                               f"of the 64-bit space")
    else:
        r = ctx.system.find_mappings(space, addr, size, smmu, sid, vm, limit)
    if space == "pa":
        from ..model import vtd_pt
        for name in units:
            v = vtd_pt.find(ctx.system.vtd(name), addr, size, sid, limit - len(r["hits"]))
            r["hits"] += v["hits"]
            r["scanned"]["trees"] += v["trees"]
            r["truncated"] = r["truncated"] or v["truncated"]
    n = len(r["hits"])
    msg = f"{n} mapping{'s' if n != 1 else ''} of {space.upper()} {addr:#x}+{size:#x}"
    if r["truncated"]:
        msg = (f"the first {n} mappings of {space.upper()} {addr:#x}+{size:#x} (there are more: "
               f"narrow the range, name an SMMU or sid=, or raise limit=)")
    return res.Find(space=space, addr=addr, size=size, hits=r["hits"], scanned=r["scanned"],
                    truncated=r["truncated"], message=msg)

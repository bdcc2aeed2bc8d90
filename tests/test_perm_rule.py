"""The one leaf-permission rule (core_cy.vmsa s1_leaf_perms / s2_perms, used by the walk and by
the whole-tree scans behind `pt` and `find`), against the Arm ARM's tables written out here.

Stage 1, EL1&0 regime (Arm ARM D8.4, AArch64.S1DirectBasePermissions): AP[2:1] 00 privileged
read/write, 01 read/write at both levels, 10 privileged read-only, 11 read-only at both;
APTable[1] removes write at every level below, APTable[0] removes EL0 access; privileged
execute unless PXN, PXNTable, memory writable at EL0, or WXN with privileged write; EL0 execute
unless UXN, UXNTable, or WXN with EL0 write; PAN denies privileged data access to memory EL0
can access. EL2 regime (STE.STRW=EL2): one privilege level, AP[2] only, APTable[1] only, bit 54
is XN and bit 60 XNTable. Stage 2 (D8.4.x, IHI 0070 XNX): S2AP[0] read, S2AP[1] write;
XN[1:0] 00 executable, 01 not at EL1, 10 not at all, 11 not at EL0; without SMMU_IDR3.XNX only
XN[1] is used.
"""
import itertools

from core_cy.scan import leaf_perms
from smmudbg.arch.fieldtable import fmt

S1 = fmt("S1_BLOCK")
S2 = fmt("S2_BLOCK")
R, W, X = 1, 2, 4
AP_EL10 = {0b00: (R | W, 0), 0b01: (R | W, R | W), 0b10: (R, 0), 0b11: (R, R)}
S2_XN = {0b00: (True, True), 0b01: (False, True), 0b10: (False, False), 0b11: (True, False)}


def s1_desc(ap, pxn, uxn):
    w = [1 | (1 << 10)]
    for name, v in (("AP", ap), ("PXN", pxn), ("UXN", uxn)):
        S1.field(name).put(w, v)
    return w[0]


def spec_s1(ap, pxn, uxn, tap, tpxn, tuxn, el2, pan, wxn):
    if el2:
        data = R if ap & 0b10 or tap & 0b10 else R | W
        x = not (uxn or tuxn or (wxn and data & W))
        p = data | (X if x else 0)
        return p, p
    priv, unpriv = AP_EL10[ap]
    if tap & 0b10:
        priv, unpriv = priv & ~W, unpriv & ~W
    if tap & 0b01:
        unpriv = 0
    px = not (pxn or tpxn or unpriv & W or (wxn and priv & W))
    ux = not (uxn or tuxn or (wxn and unpriv & W))
    if pan and unpriv:
        priv = 0
    return priv | (X if px else 0), unpriv | (X if ux else 0)


def test_stage1_rule_matches_the_architecture_for_every_combination():
    n = 0
    for ap, pxn, uxn, tap, tpxn, tuxn, el2, pan, wxn in itertools.product(
            range(4), (0, 1), (0, 1), range(4), (0, 1), (0, 1), (0, 1), (0, 1), (0, 1)):
        if el2 and pan:
            continue                       # PAN has no meaning with one privilege level
        bits = leaf_perms(1, s1_desc(ap, pxn, uxn), tap, bool(tpxn), bool(tuxn),
                          el2=bool(el2), pan=bool(pan), wxn=bool(wxn))
        want = spec_s1(ap, pxn, uxn, tap, tpxn, tuxn, el2, pan, wxn)
        assert (bits & 7, bits >> 3) == want, (ap, pxn, uxn, tap, tpxn, tuxn, el2, pan, wxn)
        n += 1
    assert n == 4 * 2 * 2 * 4 * 2 * 2 * 6


def test_stage2_rule_matches_the_architecture_for_every_combination():
    for s2ap, xn, xnx in itertools.product(range(4), range(4), (False, True)):
        w = [1 | (1 << 10)]
        S2.field("S2AP").put(w, s2ap)
        S2.field("XN").put(w, xn)
        data = (R if s2ap & 1 else 0) | (W if s2ap & 2 else 0)
        px, ux = S2_XN[xn if xnx else xn & 0b10]
        bits = leaf_perms(2, w[0], xnx=xnx)
        assert bits & 7 == data | (X if px else 0), (s2ap, xn, xnx)
        assert bits >> 3 == data | (X if ux else 0), (s2ap, xn, xnx)


def test_examples_named_in_the_spec():
    # AP=0b01 (EL0 read/write) is never privileged-executable, even with PXN=0.
    assert leaf_perms(1, s1_desc(0b01, 0, 0)) == (R | W) | ((R | W | X) << 3)
    # PAN: privileged data access to EL0-readable memory is denied, execution is not.
    assert leaf_perms(1, s1_desc(0b11, 0, 1), pan=True) & 7 == X
    # Stage 2 XN=0b01: executable at EL0 only.
    w = [1 | (1 << 10)]
    S2.field("S2AP").put(w, 3)
    S2.field("XN").put(w, 1)
    assert leaf_perms(2, w[0]) == (R | W) | ((R | W | X) << 3)

"""HWPTs on an SMMUv3: the paging (stage-2, nesting parent) domain and the nested domain.

The host STEs are built as arm-smmu-v3.c / arm-smmu-v3-iommufd.c build them
(arm_smmu_make_s2_domain_ste, arm_smmu_make_abort_ste, arm_smmu_make_nested_domain_ste) and
written into the physical stream table in binary through Smmu.write_ste, followed by
CMD_CFGI_STE and CMD_SYNC, so they walk like any other STE.
"""
from __future__ import annotations

import errno as E

from core_cy.ptbuild import BuildError, TableBuilder

from ...arch.fieldtable import fmt
from ...arch.smmuv3 import consts as C
from ...errors import ModelError
from .errors import fail
from .ioas import PAGE_SIZE

STE = fmt("STE")
CD = fmt("CD")
_F = STE.field
# io-pgtable-arm's stage-1 MAIR: index 0 write-back RWA (0xff), 1 non-cacheable (0x44),
# 2 Device-nGnRE (0x04), 3 inner NC / outer WB (0xf4) (ARM_LPAE_MAIR_ATTR_IDX_*).
LPAE_S1_MAIR = 0xff | 0x44 << 8 | 0x04 << 16 | 0xf4 << 24

# Linux's STRTAB_STE_*_NESTING_ALLOWED (arm-smmu-v3.h): the vSTE fields userspace may set.
# S1ContextPtr is STRTAB_STE_0_S1CTXPTR_MASK = address bits [51:6] in Linux, narrower than the
# architecture's [55:6]: bits 55:52 are outside the allowed set (-EIO).
LINUX_PA_BITS = 52
NESTING_ALLOWED_0 = (sum(_F(n).inplace_mask for n in ("V", "Config", "S1Fmt", "S1CDMax"))
                     | (_F("S1ContextPtr").inplace_mask & ((1 << LINUX_PA_BITS) - 1)))
NESTING_ALLOWED_1 = sum(_F(n).inplace_mask for n in
                        ("S1DSS", "S1CIR", "S1COR", "S1CSH", "S1STALLD", "EATS"))
# include/uapi/linux/iommufd.h
IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0
IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1
IOMMU_HWPT_FAULT_ID_VALID = 1 << 2
IOMMU_HWPT_DATA_NONE = 0
IOMMU_HWPT_DATA_ARM_SMMUV3 = 2


def s2_ias(smmu) -> int:
    """Linux's smmu->ias for an S2 domain: max(40 if AArch32 tables are supported, OAS)
    (arm_smmu_device_hw_probe); capped at 48 bits, the largest the table builder models."""
    oas = C.STE_S2PS_addr_bits[smmu.features.get("OAS", 5)]
    ias = max(40 if smmu.features.get("TTF", 2) == 3 else 0, oas)
    return min(ias, 48)


def walk_attrs(smmu) -> tuple[int, int]:
    """io-pgtable's table-walk attributes: inner/outer write-back and inner shareable when
    the SMMU walks coherently (IDR0.COHACC, ARM_SMMU_FEAT_COHERENCY), else non-cacheable
    and outer shareable. Returns (cacheability, shareability) in STE/CD encoding."""
    if smmu.features.get("COHACC"):
        return C.STE_S2IR0_WBRA, C.STE_S2SH0_ISH
    return C.STE_S2IR0_NC, C.STE_S2SH0_OSH


def abort_ste() -> list[int]:
    """arm_smmu_make_abort_ste: V=1, Config=abort, everything else 0."""
    return STE.encode(V=1, Config=C.STE_Config_abort)


class HwptPaging:
    """A paging HWPT on one SMMU: an io-pgtable tree in host memory, filled from its IOAS
    (iopt_table_add_domain) and kept in sync on IOAS_MAP / IOAS_UNMAP. Stage 2
    (ARM_64_LPAE_S2, with a VMID) for a nesting parent or on an SMMU without stage 1; else
    stage 1 (ARM_64_LPAE_S1, with an ASID), as arm_smmu_domain_alloc_paging_flags prefers."""

    kind = "paging"
    page_size = PAGE_SIZE                    # smallest page of pgsize_bitmap on a 4K host

    def __init__(self, hwpt_id: int, ioas, smmu, vmid: int, nest_parent: bool,
                 enforce_cc: bool, stage: int = 2, asid: int = 0):
        self.id = hwpt_id
        self.ioas = ioas
        self.smmu = smmu
        self.stage = stage
        self.vmid = vmid
        self.asid = asid
        self.nest_parent = nest_parent
        self.enforce_cache_coherency = enforce_cc
        self.label = f"HWPT {hwpt_id}"
        # stage 1: ias = 48 (no VAX, VA_BITS 48), arm_smmu_domain_finalise
        ias = s2_ias(smmu) if stage == 2 else 48
        try:
            self.tables = TableBuilder(smmu.mem, stage, PAGE_SIZE, ias, smmu.alloc)
        except BuildError as e:
            raise ModelError(f"{self.label}: {e}") from None
        self.aperture_end = (1 << self.tables.ias) - 1
        self.read_only_mapped = False
        self.devices: list = []              # Device objects attached (directly or nested)
        self.sw_msi: dict[int, int] = {}     # IOVA -> doorbell PA mapped by iommufd_sw_msi

    # -- io-pgtable --------------------------------------------------------------------------
    def map_area(self, area) -> None:
        # iommufd maps with IOMMU_CACHE (conv_iommu_prot) and never IOMMU_NOEXEC: normal
        # write-back memory, executable.
        try:
            self.tables.map(area.iova, area.pa, area.length, read=area.read,
                            write=area.write, exec_=True, user=True, ng=True, attrindx=0)
        except BuildError as e:
            raise ModelError(f"{self.label}: {e}") from None
        if not area.write:
            self.read_only_mapped = True

    def unmap_area(self, area) -> None:
        try:
            self.tables.unmap(area.iova, area.length)
        except BuildError as e:
            raise ModelError(f"{self.label}: {e}") from None
        self.flush_range(area.iova, area.length)

    def map_sw_msi(self, iova: int, doorbell_pa: int) -> None:
        """iommufd_sw_msi_install: one PAGE_SIZE MMIO page (IOMMU_MMIO: Device-nGnRE) at the
        SW_MSI IOVA, read/write."""
        if iova in self.sw_msi:
            return
        self.tables.map(iova, doorbell_pa, PAGE_SIZE, read=True, write=True, exec_=False,
                        memattr=1)
        self.sw_msi[iova] = doorbell_pa

    def flush_range(self, iova: int, length: int) -> None:
        """The TLB maintenance after an S2 unmap (arm_smmu_tlb_inv_range_domain): the range
        by CMD_TLBI_S2_IPA, then, for a nesting parent, CMD_TLBI_NH_ALL on the VMID because
        every nested S1 translation through it is stale too. One CMD_TLBI_S12_VMALL above 64
        pages (the model's stand-in for Linux's range-invalidation encoding)."""
        cmds = []
        pages = length // PAGE_SIZE
        if self.stage == 1:
            # arm_smmu_tlb_inv_range_asid: CMD_TLBI_NH_VA per page on the ASID (VMID 0);
            # the whole ASID above 64 pages
            va = fmt("CMD_TLBI_NH_VA").field("Address")
            cmds = ([("CMD_TLBI_NH_ASID", {"ASID": self.asid})] if pages > 64 else
                    [("CMD_TLBI_NH_VA", {"ASID": self.asid,
                                         "Address": va.from_address(iova + i * PAGE_SIZE)})
                     for i in range(pages)])
        elif pages > 64:
            cmds.append(("CMD_TLBI_S12_VMALL", {"VMID": self.vmid}))
        else:
            ipa = fmt("CMD_TLBI_S2_IPA").field("Address")
            cmds += [("CMD_TLBI_S2_IPA", {"VMID": self.vmid,
                                          "Address": ipa.from_address(iova + i * PAGE_SIZE)})
                     for i in range(pages)]
            if self.nest_parent:
                cmds.append(("CMD_TLBI_NH_ALL", {"VMID": self.vmid}))
        if self.smmu.field("CMDQ_BASE", "ADDR"):
            self.smmu.submit(cmds + ["CMD_SYNC"])

    # -- STEs ----------------------------------------------------------------------------------
    def s2_ste(self, ats: bool = False, vmid: int | None = None, smmu=None) -> list[int]:
        """arm_smmu_make_s2_domain_ste: Config=S2_TRANS, the VTCR fields of io-pgtable's S2
        config (inner/outer WBWA, inner shareable), S2AA64, S2PTW, S2R, S2TTB; S2FWB when
        IDR3.FWB, SHCFG=incoming when IDR1.ATTR_TYPES_OVR; EATS=TRANS when ATS is on."""
        t = self.tables
        f = (smmu or self.smmu).features
        cache, share = walk_attrs(smmu or self.smmu)
        words = STE.encode(
            V=1, Config=C.STE_Config_s2_trans,
            EATS=C.STE_EATS_trans if ats else C.STE_EATS_abort,
            S2FWB=1 if f.get("FWB") else 0,
            SHCFG=C.STE_SHCFG_incoming if f.get("ATTR_TYPES_OVR") else 0,
            S2VMID=self.vmid if vmid is None else vmid,
            S2T0SZ=t.tsz, S2SL0=t.sl0, S2IR0=cache, S2OR0=cache, S2SH0=share, S2TG=t.tg, S2PS=f.get("OAS", 5), S2AA64=1, S2PTW=1, S2R=1,
            S2TTB=_F("S2TTB").from_address(t.root))
        return words

    def s1_cd(self) -> list[int]:
        """arm_smmu_make_s1_cd: TCR fields of the stage-1 tree, EPD1, V, IPS, AA64, R, A,
        ASET (not shared with the CPU), the ASID, TTB0 and io-pgtable's MAIR."""
        t = self.tables
        cache, share = walk_attrs(self.smmu)
        return CD.encode(T0SZ=t.tsz, TG0=t.tg, IR0=cache, OR0=cache, SH0=share, EPD1=1, V=1,
                         IPS=self.smmu.features.get("OAS", 5), AA64=1, R=1, A=1, ASET=1,
                         ASID=self.asid, TTB0=CD.field("TTB0").from_address(t.root),
                         MAIR0=LPAE_S1_MAIR)

    def cdtable_ste(self, cdtab: int, ats: bool = False) -> list[int]:
        """arm_smmu_make_cdtable_ste for SSID 0: Config=S1_TRANS, a linear table of one CD
        (a device without PASID: ssid_bits 0), S1DSS=SSID0, the CD-fetch attributes of a
        (non-)coherent SMMU, S1STALLD when the SMMU supports stalls and the device does not
        stall, EATS=TRANS with ATS. STRW is NS-EL1 (a host without VHE/E2H)."""
        f = self.smmu.features
        cache, share = walk_attrs(self.smmu)
        stalls = f.get("STALL_MODEL", 0) in (0, 2)        # ARM_SMMU_FEAT_STALLS
        return STE.encode(V=1, Config=C.STE_Config_s1_trans, S1Fmt=C.STE_S1Fmt_linear,
                          S1ContextPtr=_F("S1ContextPtr").from_address(cdtab), S1CDMax=0,
                          S1DSS=C.STE_S1DSS_substream0, S1CIR=cache, S1COR=cache,
                          S1CSH=share, S1STALLD=1 if stalls else 0,
                          EATS=C.STE_EATS_trans if ats else C.STE_EATS_abort)

    def translate(self, iova: int):
        return self.ioas.translate(iova)


def validate_vste(ste0: int, ste1: int):
    """arm_smmu_validate_vste. Returns (ste0, ste1, enable_ats) as the nested domain keeps
    them (EATS stripped), or raises with the kernel's errno."""
    op = "IOMMU_HWPT_ALLOC"
    if not _F("V").get([ste0, ste1]):
        return 0, 0, False                   # non-valid: zeroed, acts as abort
    if ste0 & ~NESTING_ALLOWED_0 or ste1 & ~NESTING_ALLOWED_1:
        bad0, bad1 = ste0 & ~NESTING_ALLOWED_0, ste1 & ~NESTING_ALLOWED_1
        fail(E.EIO, op, f"vSTE sets bits outside STRTAB_STE_0/1_NESTING_ALLOWED "
             f"(dw0 {bad0:#x}, dw1 {bad1:#x})", "arm_smmu_validate_vste")
    cfg = _F("Config").get([ste0, ste1])
    if cfg not in (C.STE_Config_abort, C.STE_Config_bypass, C.STE_Config_s1_trans):
        fail(E.EIO, op, f"vSTE Config {cfg:#b} ({_F('Config').value_name(cfg)}) is not abort, "
             f"bypass or s1_trans", "arm_smmu_validate_vste")
    eats = _F("EATS").get([ste0, ste1])
    ste1 &= ~_F("EATS").inplace_mask
    if eats not in (C.STE_EATS_abort, C.STE_EATS_trans):
        fail(E.EIO, op, f"vSTE EATS {eats} is neither abort (0) nor trans (1)",
             "arm_smmu_validate_vste")
    return ste0, ste1, cfg == C.STE_Config_s1_trans and eats == C.STE_EATS_trans


class HwptNested:
    """A nested HWPT allocated on a vIOMMU from an IOMMU_HWPT_DATA_ARM_SMMUV3 vSTE."""

    kind = "nested"

    def __init__(self, hwpt_id: int, viommu, ste0: int, ste1: int):
        self.id = hwpt_id
        self.viommu = viommu
        self.user_ste = (ste0, ste1)         # as userspace passed it
        self.ste0, self.ste1, self.enable_ats = validate_vste(ste0, ste1)
        self.devices: list = []

    @property
    def parent(self) -> HwptPaging:
        return self.viommu.parent

    @property
    def config(self) -> int:
        """The Config the host acts on: abort when V=0 (arm_smmu_make_nested_domain_ste)."""
        if not _F("V").get([self.ste0, self.ste1]):
            return C.STE_Config_abort
        return _F("Config").get([self.ste0, self.ste1])

    def host_ste(self, ats: bool = False) -> list[int]:
        """arm_smmu_make_nested_domain_ste: abort, the parent's S2 STE (bypass), or the S2 STE
        with dw0 = V | Config=NESTED | the vSTE's dw0 fields and dw1 |= the vSTE's dw1 | MEV;
        the VMID is the vIOMMU's."""
        cfg = self.config
        if cfg == C.STE_Config_s1_trans:
            w = self.parent.s2_ste(ats, vmid=self.viommu.vmid, smmu=self.viommu.smmu)
            w[0] = STE.encode(V=1, Config=C.STE_Config_nested)[0] | \
                (self.ste0 & ~_F("Config").inplace_mask)
            w[1] |= self.ste1 | _F("MEV").inplace_mask
            return w
        if cfg == C.STE_Config_bypass:
            return self.parent.s2_ste(ats, vmid=self.viommu.vmid, smmu=self.viommu.smmu)
        return abort_ste()


__all__ = ["HwptPaging", "HwptNested", "validate_vste", "abort_ste", "s2_ias",
           "NESTING_ALLOWED_0", "NESTING_ALLOWED_1"]

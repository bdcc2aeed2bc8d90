"""import qemu: replace the session's system by a real one, a QEMU guest's memory and SMMU
registers (smmudbg/importers/qemu.py). Its argument line is read by importers/qemu_args.py; the
`smmudbg import-qemu` subcommand is a front end, smmudbg/import_cli.py."""
from __future__ import annotations

from .. import results as res
from ..importers.qemu_args import parse_import_args
from .registry import AddressT, CommandError, command


@command("import qemu", raw=True)
def import_qemu(ctx, text):
    """Replace the system by a QEMU guest's: its memory dump, SMMUv3 and GICv3 ITS registers.

    import qemu MEMORY --regs REGS.json [--gic GIC.json] [--ram-base ADDR]
    (also: import qemu MEMORY regs=REGS.json gic=GIC.json ram_base=ADDR)

    MEMORY is an ELF core from QEMU's dump-guest-memory, or a raw image from pmemsave (loaded
    at --ram-base, default 0x40000000: RAM of the arm virt board); either may be xz-compressed.
    REGS.json maps SMMUv3 register names (SMMU_IDR0, SMMU_IDR1, SMMU_IDR5 required; SMMU_CR0,
    SMMU_STRTAB_BASE, SMMU_STRTAB_BASE_CFG, SMMU_CMDQ_*, SMMU_EVTQ_* or SMMU_EVENTQ_*, ...) to
    values (integers or "0x..." strings).

    The new system has one SMMU, smmu0: its ID registers are the given values (and decide what
    the walker supports), its other registers hold the snapshot's values (nothing is replayed:
    pending commands stay pending), and its memory is the dump, mapped read-only and copied a
    page at a time on write; addresses outside the dump are unbacked (a walk there is an
    external abort). Streams with a valid STE other than Config=abort are listed as streams.
    The result lists the segments, the stream table, the streams and warnings (parts of the
    tables the dump lacks). The files are read again when the session is replayed.

    The GICv3 ITS and redistributor registers, in REGS.json or in GIC.json (GITS_CTLR and
    GITS_TYPER required; GITS_CBASER, GITS_CWRITER, GITS_CREADR, GITS_BASER0..7, GITS_IIDR;
    GICR_CTLR[n], GICR_TYPER[n], GICR_PROPBASER[n], GICR_PENDBASER[n], GICR_IIDR[n],
    GICR_WAKER[n] for redistributor frame n), add ITS its0 at QEMU virt's 0x08080000: its
    device table (flat or two-level), ITTs and collection table are read from the dump in
    QEMU's entry layout, with QEMU virt's ID mappings (RID = StreamID = DeviceID), so `its`
    and `msi SMMU SID ADDRESS data=N` work on the guest.

    QEMU's `info pci` output saved as info-pci.txt beside REGS.json names the streams (the
    -device id=, else the device model: virtio-blk, ...). Registers the files do not give
    show as "not provided" in `regs` and `its`.

    An x86-64 guest (QEMU q35 with intel-iommu): REGS.json holds DMAR_* registers (DMAR_ +
    the VT-d name: DMAR_CAP_REG, DMAR_ECAP_REG, DMAR_GSTS_REG and DMAR_RTADDR_REG required;
    DMAR_IQA_REG, DMAR_IQH_REG, DMAR_IQT_REG, DMAR_IRTA_REG, DMAR_FRCD_REG[n], ...) and the
    system has one VT-d unit, dmar0, over every segment of the dump (RAM and ROM; a raw image
    loads at --ram-base, default 0): the root table at RTADDR_REG (scalable mode), the
    invalidation queue, the interrupt remapping table and the fault records (events dmar0)
    from the registers. The requesters with a present context entry are its devices: walk,
    context and pasid take `dmar0 RID`. The architecture comes from the ELF's e_machine and
    the register names; a mix is an error."""
    from ..importers.qemu import import_qemu as do_import
    a = parse_import_args(text)
    if a["ram_base"] is not None:
        try:
            a["ram_base"] = AddressT().convert(ctx, a["ram_base"], {})
        except ValueError as e:
            raise CommandError(f"import qemu: ram_base: {e}") from None
    system, report = do_import(a["memory"], a["regs"], ram_base=a["ram_base"], gic=a["gic"])
    ctx.system = system
    if "unit" in report:                        # an x86-64 guest with VT-d
        msg = (f"imported {a['memory']}: {report['unit']} ({report['mode']} mode, TES="
               f"{int(report['translation'])}) with {len(report['devices'])} device(s), "
               f"{len(report['segments'])} segment(s), {report['faults']} fault record(s)"
               + (f", {len(report['warnings'])} warning(s)" if report["warnings"] else ""))
        return res.VtdImport(**report, ram_base=a["ram_base"], message=msg)
    data = dict(report, ram_base=a["ram_base"])
    msg = (f"imported {a['memory']}: {report['smmu']} with {len(report['streams'])} stream(s), "
           f"{len(report['segments'])} segment(s), SMMUEN={int(report['smmuen'])}"
           + (f", ITS {report['its']['name']} with {report['its']['redistributors']} "
              f"redistributor(s)" if report.get("its") else "")
           + (f", {len(report['warnings'])} warning(s)" if report["warnings"] else ""))
    return res.Import(**data, message=msg)


import_qemu.complete = lambda ctx: ["--regs", "--gic", "--ram-base"]

"""vIOMMU, vDEVICE and vEVENTQ on an SMMUv3 (drivers/iommu/iommufd/viommu.c, eventq.c,
driver.c; arm-smmu-v3-iommufd.c for the SMMUv3 parts)."""
from __future__ import annotations

import errno as E

from ...arch.fieldtable import fmt
from ...arch.smmuv3.events import CMD_SIZE, EVENT_SIZE, event_name
from ...arch.smmuv3.fields_queue import OPCODES
from ...errors import ModelError
from .errors import fail
from .results import InvalidationResult, VeventInfo

_OPCODE = fmt("CMD_SYNC").field("Opcode")
_BY_OPCODE = {v: k for k, v in OPCODES.items() if k != "CMD_CFGI_ALL"}
# CMDQ_BATCH_ENTRIES = BITS_PER_LONG (arm-smmu-v3.h): arm_vsmmu_cache_invalidate issues a
# batch each time it holds CMDQ_BATCH_ENTRIES - 1 converted commands, and at the end.
CMDQ_BATCH_ENTRIES = 64
_TLBI_VMID = ("CMD_TLBI_NH_VA", "CMD_TLBI_NH_VAA", "CMD_TLBI_NH_ALL", "CMD_TLBI_NH_ASID")
_SID_CMDS = ("CMD_ATC_INV", "CMD_CFGI_CD", "CMD_CFGI_CD_ALL")
# include/uapi/linux/iommufd.h
IOMMU_VIOMMU_TYPE_ARM_SMMUV3 = 1
IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3 = 1
IOMMU_VEVENTQ_TYPE_ARM_SMMUV3 = 1
IOMMU_VEVENTQ_FLAG_LOST_EVENTS = 1 << 0
INT_MAX = (1 << 31) - 1
# Events arm_smmu_handle_event may hand to a vIOMMU (any other is not forwarded).
FORWARDED_EVENTS = ("C_BAD_STE", "F_STREAM_DISABLED", "C_BAD_SUBSTREAMID", "C_BAD_CD",
                    "F_TRANSLATION", "F_ADDR_SIZE", "F_ACCESS", "F_PERMISSION")
_EVT = fmt("EVT_F_TRANSLATION")         # common header: StreamID in dw0, S2 and Stall in dw1


class Vdevice:
    def __init__(self, vdev_id: int, viommu, device, vsid: int):
        self.id = vdev_id
        self.viommu = viommu
        self.device = device
        self.vsid = vsid


class Veventq:
    """iommufd_veventq: a bounded list of vEVENTs with sequence numbers and the lost-events
    header (iommufd_viommu_report_event, iommufd_vevent_handler, iommufd_veventq_fops_read)."""

    def __init__(self, q_id: int, viommu, depth: int):
        self.id = q_id
        self.viommu = viommu
        self.depth = depth
        self.sequence = 0
        self.num_events = 0
        self.deliver: list[list] = []        # [sequence, raw or None (the lost header)]
        self.lost_in_list = False

    def report(self, raw: bytes) -> None:
        if self.num_events == self.depth:
            item = None                      # the queue is full: the lost-events header
        else:
            item = raw
            self.num_events += 1
        # The lost header, when it is the last node, is taken out before the new node goes
        # in; the new node may be the lost header itself (a sequence update).
        if self.lost_in_list and self.deliver and self.deliver[-1][1] is None:
            self.deliver.pop()
            self.lost_in_list = False
        self.deliver.append([self.sequence, item])
        if item is None:
            self.lost_in_list = True
        self.sequence = (self.sequence + 1) & INT_MAX

    def read(self, max_records: int | None = None) -> list[VeventInfo]:
        """read(2) on the vEVENTQ fd: headers {flags, sequence}, each normal one followed by
        the 32-byte event."""
        out = []
        while self.deliver and (max_records is None or len(out) < max_records):
            seq, raw = self.deliver.pop(0)
            if raw is None:
                self.lost_in_list = False
                out.append(VeventInfo(sequence=seq, lost_events=True))
                continue
            self.num_events -= 1
            words = _EVT.from_bytes(raw)
            out.append(VeventInfo(sequence=seq, lost_events=False, event=event_name(raw[0]),
                                  vsid=_EVT.field("StreamID").get(words), raw=raw))
        return out


class Viommu:
    """arm_vsmmu: a physical SMMU, the nesting-parent S2 HWPT, the VMID, vDEVICEs by vSID."""

    def __init__(self, viommu_id: int, smmu, parent, vmid: int):
        self.id = viommu_id
        self.smmu = smmu
        self.parent = parent
        self.vmid = vmid
        self.vdevs: dict[int, Vdevice] = {}
        self.veventq: Veventq | None = None

    # -- IOMMU_HWPT_INVALIDATE ---------------------------------------------------------------
    def convert(self, raw: bytes) -> bytes | None:
        """arm_vsmmu_convert_user_cmd: the command to send, or None (-EIO)."""
        f0 = fmt("CMD_SYNC")
        words = f0.from_bytes(raw)
        name = _BY_OPCODE.get(_OPCODE.get(words))
        if name == "CMD_TLBI_NSNH_ALL":          # becomes NH_ALL on the vIOMMU's VMID
            f = fmt("CMD_TLBI_NH_ALL")
            return f.to_bytes(f.encode(Opcode=OPCODES["CMD_TLBI_NH_ALL"], VMID=self.vmid))
        if name in _TLBI_VMID:
            f = fmt(name)
            f.field("VMID").put(words, self.vmid)
            return f.to_bytes(words)
        if name in _SID_CMDS:
            f = fmt(name)
            vsid = f.field("StreamID").get(words)
            vdev = self.vdevs.get(vsid)
            if vdev is None:                      # arm_vsmmu_vsid_to_sid: -EIO
                return None
            f.field("StreamID").put(words, vdev.device.sid)   # master->streams[0].id
            return f.to_bytes(words)
        return None

    def invalidate(self, entries, data_type: int = IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3,
                   entry_len: int = CMD_SIZE) -> InvalidationResult:
        """IOMMU_HWPT_INVALIDATE on this vIOMMU (iommufd_hwpt_invalidate ->
        arm_vsmmu_cache_invalidate). entry_num out = the entries converted before a refused
        one (or all). As the kernel does, a refused entry ends the call before the converted
        commands of the current, not yet issued batch are sent: they are counted as handled
        but never reach the command queue."""
        op = "IOMMU_HWPT_INVALIDATE"
        entries = [bytes(e) for e in entries]
        if entries and not entry_len:
            fail(E.EINVAL, op, "entry_len is 0 with entries", "iommufd_hwpt_invalidate")
        if data_type != IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3:
            fail(E.EINVAL, op, f"data_type {data_type} is not "
                 f"IOMMU_VIOMMU_INVALIDATE_DATA_ARM_SMMUV3",
                 "iommu_copy_struct_from_full_user_array")
        if any(len(e) != entry_len for e in entries):
            raise ModelError(f"{op}: every entry must be entry_len ({entry_len}) bytes")
        # copy_struct_from_user per entry: a shorter entry is zero-extended, a longer one must
        # have only zero bytes past the kernel's 16 (else -E2BIG)
        for i, e in enumerate(entries):
            if any(e[CMD_SIZE:]):
                fail(E.E2BIG, op, f"entry {i} has non-zero bytes past {CMD_SIZE}",
                     "copy_struct_from_user")
        entries = [e[:CMD_SIZE].ljust(CMD_SIZE, b"\0") for e in entries]
        sent: list[str] = []
        batch: list[bytes] = []
        for i, raw in enumerate(entries):
            cmd = self.convert(raw)
            if cmd is None:
                name = _BY_OPCODE.get(raw[0], f"opcode {raw[0]:#x}")
                why = (f"entry {i}: {name}: vSID has no vDEVICE" if name in _SID_CMDS else
                       f"entry {i}: {name} is not an accepted invalidation")
                return InvalidationResult(handled=i, errno=E.EIO, error=why, sent=tuple(sent))
            batch.append(cmd)
            if i + 1 != len(entries) and len(batch) != CMDQ_BATCH_ENTRIES - 1:
                continue
            sent += self._issue(batch)
            batch = []
        return InvalidationResult(handled=len(entries), errno=0, error="", sent=tuple(sent))

    def _issue(self, cmds: list[bytes]) -> list[str]:
        """arm_smmu_cmdq_issue_cmdlist(..., sync=true): the commands then a CMD_SYNC."""
        log = self.smmu.submit(list(cmds) + ["CMD_SYNC"])
        return [r.get("command", "?") + (f" ({r['error']})" if r.get("error") else "")
                for r in log]

    # -- events --------------------------------------------------------------------------------
    def report_event(self, raw: bytes, vsid: int) -> None:
        """arm_vmaster_report_event: StreamID replaced by the vSID, the rest unchanged; then
        iommufd_viommu_report_event (-EOPNOTSUPP without a vEVENTQ)."""
        words = _EVT.from_bytes(raw)
        _EVT.field("StreamID").put(words, vsid)
        if self.veventq is None:
            fail(E.EOPNOTSUPP, "report_event", f"vIOMMU {self.id} has no vEVENTQ",
                 "iommufd_viommu_report_event")
        self.veventq.report(_EVT.to_bytes(words)[:EVENT_SIZE])


def event_sid(raw: bytes) -> tuple[str, int, bool, bool]:
    """(name, StreamID, S2, Stall) of a raw event record, read as arm_smmu_decode_event does."""
    words = _EVT.from_bytes(raw)
    return (event_name(raw[0]), _EVT.field("StreamID").get(words),
            bool(_EVT.field("S2").get(words)), bool(_EVT.field("Stall").get(words)))

"""An attachment to a running QEMU: its QMP connection, the guest RAM as a live memory
backing, its SMMU registers, and the Systems built from them (the live view and snapshots).

Guest RAM is one more memory backing of core_cy.physmem.PhysMem: the shared
memory-backend-file mapped read-only (mmap, MAP_SHARED) and mapped as an image region, so a
read sees the guest's stores as they happen and a write by smmudbg (set, inject) copies the
page first and never reaches the guest. Without a shared file, pid=PID reads the RAM of any
QEMU through /proc/PID/mem at the host address HMP `gpa2hva` gives: that view is a copy taken
when it is built (`attach`, `refresh`), not live.
"""
from __future__ import annotations

import mmap
import os
import time

from ..importers.qemu import QemuImportError, build_system, check_regs
from ..importers.qemu_dump import Segment
from ..textfile import display_name, open_regular
from . import regs as RG
from . import state as S
from .qmp import AttachError, Qmp, VmGone

VIRT_RAM_BASE = 0x40000000
VIRT_SMMU_BASE = 0x09050000
_PAGE = 4096
_REG_RETRIES = 5


class Attachment:
    """What `attach qemu` opens. `detach()` closes it and leaves the VM as it was."""

    def __init__(self, qmp_path: str, ram: str | None = None, pid: int | None = None,
                 ram_base: int = VIRT_RAM_BASE, smmu_base: int = VIRT_SMMU_BASE):
        if ram is None and pid is None:
            raise AttachError("attach: give ram=FILE (QEMU's memory-backend-file, share=on) "
                              "or pid=PID (QEMU's process, read through /proc/PID/mem)")
        self.path, self.ram_path, self.pid = qmp_path, ram, pid
        self.ram_base, self.smmu_base = ram_base, smmu_base
        self.gone: str | None = None         # why the VM is no longer reachable
        self.qmp = Qmp(qmp_path)
        try:
            self._check_qemu()
            self.ram_size = self._ram_size()
            self.buf = self._map_ram()
            self.regs = self.read_regs()
        except BaseException:
            self.qmp.close()
            raise

    # -- connection ---------------------------------------------------------------------------
    def _check_qemu(self):
        g = self.qmp.greeting
        try:
            v = g._raw["QMP"]["version"]["qemu"]
            self.qemu_version = f"{v['major']}.{v['minor']}.{v['micro']}"
        except Exception:
            self.qemu_version = "unknown"

    def _ram_size(self) -> int:
        try:
            return int(self.qmp.execute("query-memory-size-summary")["base-memory"])
        except (KeyError, TypeError, ValueError):
            raise AttachError(f"attach: {self.path}: query-memory-size-summary gave no "
                              f"base-memory") from None

    def _map_ram(self):
        if self.ram_path is not None:
            # A regular file only: opening a FIFO named here would block the attach forever.
            with open_regular(self.ram_path, AttachError, "memory-backend-file") as f:
                size = os.fstat(f.fileno()).st_size
                if size != self.ram_size:
                    raise AttachError(f"attach: ram={display_name(self.ram_path)}: {size:#x} "
                                      f"bytes, but the VM has {self.ram_size:#x} bytes of RAM "
                                      f"(not this VM's memory-backend-file?)")
                return mmap.mmap(f.fileno(), size, mmap.MAP_SHARED, mmap.PROT_READ)
        return self._copy_from_pid()

    def _copy_from_pid(self):
        out = self.qmp.hmp(f"gpa2hva {self.ram_base:#x}")
        try:
            hva = int(out.strip().rsplit(" ", 1)[1], 16)
        except (IndexError, ValueError):
            raise AttachError(f"attach: {self.path}: gpa2hva {self.ram_base:#x} answered "
                              f"{out.strip()!r}") from None
        buf = mmap.mmap(-1, self.ram_size)
        try:
            with open(f"/proc/{self.pid}/mem", "rb", buffering=0) as f:
                f.seek(hva)
                got = f.readinto(buf)
        except OSError as e:
            raise AttachError(f"attach: pid={self.pid}: /proc/{self.pid}/mem: {e.strerror} "
                              f"(needs ptrace rights over QEMU)") from None
        if got != self.ram_size:
            raise AttachError(f"attach: pid={self.pid}: read {got:#x} of {self.ram_size:#x} "
                              f"bytes of guest RAM")
        return buf

    @property
    def live(self) -> bool:
        """True when the RAM view follows the guest (a shared file), False for a pid copy."""
        return self.ram_path is not None

    def call(self, fn, *args):
        """Run a QMP-using function; a dropped connection marks the attachment gone."""
        if self.gone:
            raise VmGone(self.gone)
        try:
            return fn(*args)
        except VmGone as e:
            self.gone = str(e)
            raise

    def running(self) -> bool:
        return self.call(self.qmp.running)

    def read_state_regs(self) -> dict[str, int]:
        """All registers, the ID registers as read at attach (they never change): fewer
        monitor round trips while the VM is stopped for a snapshot."""
        regs = dict(self.regs)
        for _ in range(_REG_RETRIES):
            regs.update(self.call(RG.read_regs, self.qmp, self.smmu_base, RG.STATE))
            if regs["SMMU_CR0ACK"] == regs["SMMU_CR0"] and \
                    regs["SMMU_IRQ_CTRLACK"] == regs["SMMU_IRQ_CTRL"]:
                break
        return regs

    def read_regs(self, names=RG.NAMES) -> dict[str, int]:
        """The registers, read until CR0ACK/IRQ_CTRLACK agree with CR0/IRQ_CTRL (an update in
        flight is read again)."""
        for _ in range(_REG_RETRIES):
            regs = self.call(RG.read_regs, self.qmp, self.smmu_base, names)
            if names is not RG.NAMES:
                return regs
            RG.check_smmu(regs, self.smmu_base, self.path)
            if regs["SMMU_CR0ACK"] == regs["SMMU_CR0"] and \
                    regs["SMMU_IRQ_CTRLACK"] == regs["SMMU_IRQ_CTRL"]:
                return regs
            time.sleep(0.005)
        return regs

    # -- memory -------------------------------------------------------------------------------
    def read(self, pa: int, n: int) -> bytes:
        off = pa - self.ram_base
        if off < 0 or off + n > self.ram_size:
            raise S.Unreadable(f"{pa:#x} is outside guest RAM {self.ram_base:#x}-"
                               f"{self.ram_base + self.ram_size - 1:#x}")
        return self.buf[off:off + n]

    def segments(self):
        return [Segment(self.ram_base, memoryview(self.buf))]

    def build(self, regs: dict, name: str):
        """A System over the live RAM with these registers (walker caches off: the tables
        change under it)."""
        try:
            warnings = check_regs(regs, f"{self.path} registers")
            system, report = build_system(self.segments(), regs, self.ram_path or
                                          f"/proc/{self.pid}/mem", f"qmp:{self.path}",
                                          warnings, name)
        except QemuImportError as e:
            raise AttachError(f"attach: {e}") from None
        for smmu in system.smmus.values():
            smmu.walker.configure(caching=False)
        return system, report

    def refresh_copy(self):
        """pid mode: copy guest RAM again."""
        if not self.live:
            self.buf = self.call(self._copy_from_pid)

    # -- stop / cont --------------------------------------------------------------------------
    def frozen(self):
        """A context manager: the VM stopped inside (if it was running), as it was after."""
        return _Frozen(self)

    def detach(self) -> bool:
        """Close the connection; the VM keeps running (or stays paused). Returns whether the
        VM was running when smmudbg left it (None when it is gone)."""
        state = None
        if not self.gone:
            try:
                state = self.qmp.running()
            except AttachError:
                state = None
        self.qmp.close()
        return state


class _Frozen:
    def __init__(self, att: Attachment):
        self.att = att
        self.was_running = None
        self.ms = 0.0

    def __enter__(self):
        self.was_running = self.att.running()
        self.t0 = time.perf_counter()
        if self.was_running:
            self.att.call(self.att.qmp.execute, "stop")
        return self

    def __exit__(self, *exc):
        # Never `cont` a VM the user had paused: only the one this stopped.
        if self.was_running and not self.att.gone:
            try:
                self.att.call(self.att.qmp.execute, "cont")
            except AttachError:
                pass
        # how long the VM was stopped: 0 when this did not stop it
        self.ms = (time.perf_counter() - self.t0) * 1000 if self.was_running else 0.0
        return False

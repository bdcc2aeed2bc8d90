"""Commands over parts of the system that are not modelled yet. They are declared so `help`
lists them and completion knows them, and each says plainly that it is not available: nothing
here pretends to work."""
from __future__ import annotations

from .registry import Int, Text, command

ITS = "not modelled yet (ITS arrives with the system model)"
IOMMUFD = "not modelled yet (iommufd objects arrive with the system model)"
IORT = "not modelled yet (PCI topology and IORT arrive with the system model)"
VSMMU = "not modelled yet (vSMMUs arrive with the system model; `vms` shows VM memory)"


@command("its", Text("name", optional=True, metavar="ITS"), available=ITS, pure=True)
def its(ctx, name=None):
    """GICv3 ITS tables: device table, ITT, collection table, LPI pending state."""
    raise AssertionError("unavailable")


@command("msi", Text("device", metavar="DEVICE"), Int("vector"), available=ITS)
def msi(ctx, device, vector):
    """Follow an MSI from a device to its LPI: gIOVA -> gDB -> hDB -> ITS -> LPI."""
    raise AssertionError("unavailable")


@command("iommufd", available=IOMMUFD, pure=True)
def iommufd(ctx):
    """iommufd objects: IOAS, nesting-parent HWPT, nested HWPT, vIOMMU, vDEVICE."""
    raise AssertionError("unavailable")


@command("iort", available=IORT, pure=True)
def iort(ctx):
    """IORT-style ID mappings: RID -> StreamID and RID -> ITS DeviceID."""
    raise AssertionError("unavailable")


@command("vsmmu", Text("vm", optional=True, metavar="VM"), available=VSMMU, pure=True)
def vsmmu(ctx, vm=None):
    """A VM's vSMMU: its guest stream table, queues and the accelerated-mode rules."""
    raise AssertionError("unavailable")

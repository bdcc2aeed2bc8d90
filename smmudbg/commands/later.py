"""Commands over parts of the system that are not wired yet (`its`, `msi`, `iort` and
`iommufd` are in system.py). They are declared so `help`
lists them and completion knows them, and each says plainly that it is not available: nothing
here pretends to work."""
from __future__ import annotations

from .registry import Text, command

VSMMU = "not modelled yet (vSMMUs arrive with the system model; `vms` shows VM memory)"


@command("vsmmu", Text("vm", optional=True, metavar="VM"), available=VSMMU, pure=True)
def vsmmu(ctx, vm=None):
    """A VM's vSMMU: its guest stream table, queues and the accelerated-mode rules."""
    raise AssertionError("unavailable")

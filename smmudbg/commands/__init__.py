"""Commands: one registry (registry.py) and the command modules that declare into it.

Importing this package registers every command. Front ends use:

    from smmudbg.commands import REGISTRY        # names, help, usage, completion
    from smmudbg.session import Session          # Session().execute("walk nic0 0x10000123")
"""
from .registry import REGISTRY, Result, CommandError  # noqa: F401
from . import inspect, walk, change, inject, check, session_cmds, meta, system  # noqa: F401,E402
from . import importer  # noqa: F401,E402  (import qemu; owner: issue 7)
from . import find  # noqa: F401,E402  (reverse lookup)
from . import diff  # noqa: F401,E402
from . import attach  # noqa: F401,E402  (attach qemu, snapshot, watch; issue 17)
from . import vsmmu  # noqa: F401,E402  (vSMMUs: guest side, trap-and-forward; issue 12)
from . import vtd  # noqa: F401,E402  (Intel VT-d entry views; issue 16)
from . import vtd_iommufd  # noqa: F401,E402  (iommufd on VT-d; issue 16)
from . import vtd_inject  # noqa: F401,E402  (VT-d injections; issue 16)

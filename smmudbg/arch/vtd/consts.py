"""VT-d constants by name, for the Python layers: the same names core_cy/_vtd.pxd gives the
Cython core (naming scheme: smmudbg/arch/constgen.py), built from the tables here.

    from smmudbg.arch.vtd.consts import PASID_ENTRY_PGTT_nested, SFS_2, P_IOTLB_INV_DSC_TYPE
    PASID_ENTRY_AW_addr_bits[2] == 48;  FAULT_NAMES[0x71] == "SFS_2"
"""
import importlib

from smmudbg.arch import constgen

from . import TABLES

_MODULES = [importlib.import_module(f"{__package__}.{m}") for m in TABLES]
BUILT = constgen.build([vars(m) for m in _MODULES])
NAMES = constgen.python_namespace(BUILT)
globals().update(NAMES)

# Reverse maps, for display.
FAULT_NAMES = {v: n for g, entries in BUILT["enums"] if g == "VtdFaultReason" for n, v in entries}
INV_DSC_NAMES = {v: n[:-len("_TYPE")] for g, entries in BUILT["enums"] if g == "VtdInvDscType"
                 for n, v in entries}

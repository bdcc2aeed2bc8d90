"""SMMUv3 constants by name, for the Python layers: the same names core_cy/_smmuv3.pxd gives
the Cython core (naming scheme: smmudbg/arch/constgen.py), built from the field tables here.

    from smmudbg.arch.smmuv3.consts import STE_Config_nested, F_TRANSLATION, CMD_SYNC
    STE_S2PS_addr_bits[5] == 48;  CD_TG1_granule_shift[2] == 12;  REASON_TEXT[R_STE_V]

Lookups (`*_addr_bits`, `*_granule_shift`) are dicts here (functions in Cython); an address
field's address is Field.address(words) / Field.to_address(value) in Python.
"""
import importlib

from smmudbg.arch import constgen

from . import TABLES

_MODULES = [importlib.import_module(f"{__package__}.{m}") for m in TABLES]
BUILT = constgen.build([vars(m) for m in _MODULES])
NAMES = constgen.python_namespace(BUILT)
globals().update(NAMES)

# Reverse maps, for display.
EVENT_NAMES = {v: n for g, entries in BUILT["enums"] if g == "EventType" for n, v in entries}
REASON_IDS = [n for g, entries in BUILT["texts"] if g == "Reason" for n, _t in entries]

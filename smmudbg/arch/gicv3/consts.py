"""GICv3 ITS constants by name, for the Python layers: the same names core_cy/_gicv3.pxd gives
the Cython core (naming scheme: smmudbg/arch/constgen.py), built from the tables here.

    from smmudbg.arch.gicv3.consts import GITS_CMD_MAPD, MAPD_DEVICE_OOR, GITS_BASER_Type_Devices
"""
import importlib

from smmudbg.arch import constgen

from . import TABLES

_MODULES = [importlib.import_module(f"{__package__}.{m}") for m in TABLES]
BUILT = constgen.build([vars(m) for m in _MODULES])
NAMES = constgen.python_namespace(BUILT)
globals().update(NAMES)

# Reverse maps, for display.
COMMAND_NAMES = {v: n[len("GITS_CMD_"):] for g, entries in BUILT["enums"] if g == "ItsCmdOpcode"
                 for n, v in entries}
ERROR_NAMES = {v: n for g, entries in BUILT["enums"] if g == "ItsError" for n, v in entries}

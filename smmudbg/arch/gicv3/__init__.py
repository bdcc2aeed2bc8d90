"""GICv3/GICv4 Interrupt Translation Service (Arm IHI 0069): the ITS registers, the ITS
commands, and the in-memory table entries.

Pure data: the modules below hold this architecture's tables (FORMATS, CODES);
smmudbg.arch.fieldtable and core_cy/gen_fields.py find them here. The device, interrupt
translation and collection table entries are IMPLEMENTATION DEFINED by the architecture: they
are named layouts (layouts.py, LAYOUTS["qemu"]), so another implementation's layout can be
added beside QEMU's. The level-1 entry of a two-level table is architected (ITS_L1E).
"""
TABLES = ("registers", "commands", "layouts")

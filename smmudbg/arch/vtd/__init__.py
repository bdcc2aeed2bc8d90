"""Intel VT-d (Intel Virtualization Technology for Directed I/O, Architecture Specification
rev 4.x/5.0): the remapping-unit registers, the root / context / PASID structures, the first-
and second-stage paging entries, the invalidation descriptors, the fault reasons, and the
interrupt-remapping table entries with the MSI formats that select them.

Pure data: the modules below hold this architecture's tables (FORMATS, CODES);
smmudbg.arch.fieldtable and core_cy/gen_fields.py find them here. Names are the spec's
(CAP_REG.SAGAW, PASID table entry PGTT, FRCD_REG.FR, IRTE.SVT); the fault reasons are
named by their condition codes (LRT.1 -> LRT_1, SFS.4 -> SFS_4). docs/vtd.md says what is
modeled and from where.
"""
TABLES = ("registers", "entries", "paging", "invalidation", "interrupt", "faults")

"""SMMUv3 (Arm IHI 0070) and the VMSAv8-64 descriptors it walks.

Pure data: the modules below hold this architecture's tables (FORMATS, and DESCRIPTORS, CODES,
TEXTS where they have them); smmudbg.arch.fieldtable and core_cy/gen_fields.py find them here.
"""
TABLES = ("fields", "fields_queue", "registers", "reasons")

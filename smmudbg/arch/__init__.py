"""Architectures the debugger decodes, one subpackage each (smmuv3 now; gicv3 and vtd next).

    formats("smmuv3")          every format of one architecture, by name
    fmt("STE"), fmt("smmuv3:STE")   one format
    architectures()            ['smmuv3', ...]: the subpackages that list their TABLES

Each architecture's constants (enum values, codes, masks) are in smmudbg.arch.<arch>.consts.
"""
from .fieldtable import Field, FieldError, Format, architectures, fmt, formats

__all__ = ["Field", "FieldError", "Format", "architectures", "fmt", "formats"]

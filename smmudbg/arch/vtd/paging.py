"""VT-d first-stage and second-stage paging entries, one table per level and kind (VT-d spec
9.7, 9.8).

Pure data, no imports. First-stage entries are x86 IA-32e paging entries (4-level from PML4E,
5-level from PML5E) with VT-d's extended-accessed bit EA; second-stage entries are VT-d's own
(EPT-like: R, W, X, no present bit: R=W=0 means not present).

Per level: PML5E and PML4E always point to a table; PDPE and PDE point to a table (PS=0) or map
a 1GB / 2MB page (PS=1: FS_PDPE_1G, FS_PDE_2M, SS_PDPE_1G, SS_PDE_2M); a PTE maps a 4KB page.
Address fields hold [51:12] (tables, 4KB pages), [51:21] (2MB) or [51:30] (1GB); bits above the
host address width are reserved. In a first-stage large-page entry bit 12 is PAT.
"""

_EMT = {0: "UC", 1: "WC", 2: "reserved", 3: "reserved", 4: "WT", 5: "WP", 6: "WB",
        7: "reserved"}


def _fs(kind):
    """A first-stage entry: kind is 'table', 'page4k' or 'large' (2MB / 1GB)."""
    out = [
        ("P", 0, 0, 0, "Present"),
        ("RW", 0, 1, 1, "Read/write: 0 = writes not allowed (R/W)"),
        ("US", 0, 2, 2, "User/supervisor: 0 = user requests not allowed (U/S)"),
        ("PWT", 0, 3, 3, "Page-level write-through"),
        ("PCD", 0, 4, 4, "Page-level cache disable"),
        ("A", 0, 5, 5, "Accessed"),
    ]
    if kind != "table":
        out.append(("D", 0, 6, 6, "Dirty"))
    if kind == "page4k":
        out.append(("PAT", 0, 7, 7, "Page attribute table index bit"))
    else:
        out.append(("PS", 0, 7, 7, "Page size: 1 maps a page (PDPE, PDE); reserved in PML4E, "
                                   "PML5E"))
    if kind != "table":
        out.append(("G", 0, 8, 8, "Global"))
    out.append(("EA", 0, 10, 10, "Extended accessed (set with A when PASID_ENTRY.EAFE=1)"))
    if kind == "large":
        out.append(("PAT", 0, 12, 12, "Page attribute table index bit"))
    out.append(("XD", 0, 63, 63, "Execute disable"))
    return out


def _ss(kind):
    """A second-stage entry: kind is 'table', 'page4k' or 'large'."""
    out = [
        ("R", 0, 0, 0, "Read"),
        ("W", 0, 1, 1, "Write"),
        ("X", 0, 2, 2, "Execute (checked when PASID_ENTRY.SLEE=1)"),
    ]
    if kind != "table":
        out += [("EMT", 0, 5, 3, "Extended memory type", _EMT),
                ("IPAT", 0, 6, 6, "Ignore PAT")]
    if kind != "page4k":
        out.append(("PS", 0, 7, 7, "Page size: 1 maps a page (PDPE, PDE); reserved in PML4E, "
                                   "PML5E"))
    out.append(("A", 0, 8, 8, "Accessed (updated when PASID_ENTRY.SLADE=1)"))
    if kind != "table":
        out += [("D", 0, 9, 9, "Dirty (updated when PASID_ENTRY.SLADE=1)"),
                ("SNP", 0, 11, 11, "Snoop: the access snoops processor caches (ECAP_REG.SC)"),
                ("TM", 0, 62, 62, "Transient mapping (with device-TLBs, ECAP_REG.DT)")]
    return out


def _addr(lo, doc):
    return ("ADDR", 0, 51, lo, doc, None, {"addr": lo})


_TABLE = "Next-level table address [51:12]"
FORMATS = {
    "FS_PML5E": (8, _fs("table") + [_addr(12, _TABLE)]),
    "FS_PML4E": (8, _fs("table") + [_addr(12, _TABLE)]),
    "FS_PDPE": (8, _fs("table") + [_addr(12, _TABLE)]),
    "FS_PDPE_1G": (8, _fs("large") + [_addr(30, "1GB page address [51:30]")]),
    "FS_PDE": (8, _fs("table") + [_addr(12, _TABLE)]),
    "FS_PDE_2M": (8, _fs("large") + [_addr(21, "2MB page address [51:21]")]),
    "FS_PTE": (8, _fs("page4k") + [_addr(12, "4KB page address [51:12]")]),
    "SS_PML5E": (8, _ss("table") + [_addr(12, _TABLE)]),
    "SS_PML4E": (8, _ss("table") + [_addr(12, _TABLE)]),
    "SS_PDPE": (8, _ss("table") + [_addr(12, _TABLE)]),
    "SS_PDPE_1G": (8, _ss("large") + [_addr(30, "1GB page address [51:30]")]),
    "SS_PDE": (8, _ss("table") + [_addr(12, _TABLE)]),
    "SS_PDE_2M": (8, _ss("large") + [_addr(21, "2MB page address [51:21]")]),
    "SS_PTE": (8, _ss("page4k") + [_addr(12, "4KB page address [51:12]")]),
}

# The entry tables by level (5 = PML5E ... 1 = PTE), table and page forms, for readers.
FS_LEVELS = {5: ("FS_PML5E", None), 4: ("FS_PML4E", None), 3: ("FS_PDPE", "FS_PDPE_1G"),
             2: ("FS_PDE", "FS_PDE_2M"), 1: (None, "FS_PTE")}
SS_LEVELS = {5: ("SS_PML5E", None), 4: ("SS_PML4E", None), 3: ("SS_PDPE", "SS_PDPE_1G"),
             2: ("SS_PDE", "SS_PDE_2M"), 1: (None, "SS_PTE")}

# Paging geometry (9.7, 9.8): 4 KiB tables of 512 8-byte entries at both stages, so each
# level resolves 9 more input bits above the 4 KiB page offset.
CODES = {"VtdPagingGeometry": {"PAGING_PAGE_SHIFT": 12, "PAGING_LEVEL_BITS": 9}}

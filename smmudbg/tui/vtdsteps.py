"""An Intel VT-d walk or interrupt request as steps for the walk stepper, with VT-d's names.

A DMA walk (`walk` on a VT-d device: a vtd-walk result) is stepped as it happened: RID -> root
entry -> context entry -> PASID directory entry -> PASID entry -> each first-stage level (FS
PML4E ... FS PTE) with the second-stage sub-walk of its table's GPA -> the final second stage
of the output GPA. Each step's entry is shown field by field (the bit view) by the field
tables' format for that entry (SM_ROOT_ENTRY, SM_CONTEXT_ENTRY, PASID_DIR_ENTRY, PASID_ENTRY,
FS_PML4E ... FS_PTE, SS_PML4E ... SS_PTE); the fields that decide the step are marked.

An interrupt request (`msi` on a VT-d device: vtd-msi) is stepped RID and message ->
IRTE (handle/subhandle -> index) -> vector and destination. Nothing here reaches the model: it
only reshapes the result the command returned."""
from __future__ import annotations

from rich.text import Text

from ..arch.fieldtable import fmt
from .fmt import hx

OK = ("ok", "table", "large", "page")
_WHAT = {"root": "root entry", "context": "context entry", "pasid_dir": "PASID dir entry",
         "pasid_entry": "PASID entry", "tlb": "IOTLB hit"}
_LEVEL = {5: "PML5E", 4: "PML4E", 3: "PDPE", 2: "PDE", 1: "PTE"}
_LARGE = {3: "_1G", 2: "_2M"}
# The fields that decide each kind of step (marked in the bit view).
_KEY = {"SM_ROOT_ENTRY": ("LP", "LCTP", "UP", "UCTP"),
        "SM_CONTEXT_ENTRY": ("P", "PASIDE", "PDTS", "PASIDDIRPTR"),
        "PASID_DIR_ENTRY": ("P", "SMPTBLPTR"), "PASID_ENTRY": ("P", "PGTT", "AW", "SLPTPTR"),
        "FS": ("P", "RW", "US", "PS", "XD", "ADDR"), "SS": ("R", "W", "X", "PS", "ADDR")}


def is_vtd(r: dict | None) -> bool:
    return bool(r) and r.get("kind") in ("vtd-walk", "vtd-msi")


def step_name(s: dict) -> str:
    if s["what"] in ("fs", "ss"):
        name = f"{s['what'].upper()} {_LEVEL.get(s['level'], '?')}"
        if s.get("purpose") == "fs_table":
            name += " (FS table)"
        return name
    return _WHAT.get(s["what"], s["what"])


def entry_format(w: dict, s: dict) -> tuple[str, list] | None:
    """(field-table format, words) of the entry a step read (the trace holds its first
    64 bits; a root entry's half is placed where it sits)."""
    d = s["desc"]
    if s["what"] == "root":
        return "SM_ROOT_ENTRY", ([0, d] if w["rid"] & 0xFF >= 128 else [d, 0])
    if s["what"] == "context":
        return "SM_CONTEXT_ENTRY", [d, 0, 0, 0]
    if s["what"] == "pasid_dir":
        return "PASID_DIR_ENTRY", [d]
    if s["what"] == "pasid_entry":
        return "PASID_ENTRY", [d] + [0] * 7
    if s["what"] in ("fs", "ss") and s["level"] in _LEVEL:
        base = f"{s['what'].upper()}_{_LEVEL[s['level']]}"
        if s["outcome"] == "large":
            return base + _LARGE[s["level"]], [d]
        if s["outcome"] == "page" or s["level"] == 1:
            return f"{s['what'].upper()}_PTE", [d]
        return base, [d]
    return None


def _shown(f, words) -> str:
    """A field's value as the bit view shows it: its name for the value, an address field's
    address, else hex."""
    v = f.get(words)
    if f.is_address:
        return hx(v << f.lo)
    return f.value_name(v) or hx(v)


def summary(w: dict) -> Text:
    t = Text()
    who = w["device"] or f"{w['unit']} RID {hx(w['rid'])}"
    t.append(f"{who} {hx(w['address'])}", style="bold")
    t.append(f" pasid {w['pasid']}" if w["pasid"] is not None else " (no PASID)")
    t.append(f" {w['access']}{' priv' if w['priv'] else ''}{' dry' if w['dry'] else ''}: ")
    f = w["fault"]
    if f:
        t.append(f"{f['name']} ({f['reason']:#04x})", style="bold red")
    elif w["outcome"] == "translated":
        if w["gpa"] is not None:
            t.append(f"GPA {hx(w['gpa'])} -> ")
        t.append(f"PA {hx(w['pa'])} {w['perm']}", style="green")
        t.append(f" {w['pgtt']} DID {w['did']}")
    else:
        t.append(w["outcome"])
    t.append(f"  {len(w['steps'])} steps")
    return t


def detail(w: dict, i: int) -> Text:
    """Step i of a VT-d walk: where the entry is, its value, and its fields (the bit view),
    with the fields that decide the step marked."""
    s = w["steps"][i]
    t = Text()
    t.append(f"step {i + 1}/{len(w['steps'])}: {step_name(s)}", style="bold")
    t.append(f"  input {hx(s.get('in_addr'))}\n")
    t.append(f"table {hx(s['table'])} index {s['index']}: entry at ")
    if s.get("desc_gpa") is not None:
        t.append(f"GPA {hx(s['desc_gpa'])} = ")
    t.append(f"PA {hx(s['desc_pa'])}\n")
    t.append(f"value {hx(s['desc'])} -> {s['outcome']}\n",
             style="" if s["outcome"] in OK else "bold red")
    ef = entry_format(w, s)
    if ef is not None:
        name, words = ef
        key = _KEY.get(name) or _KEY.get(name[:2], ())
        fields = fmt(name, "vtd").fields
        # the deciding fields on one line first (a small screen shows at least these)
        t.append(f"{name}: ", style="bold")
        t.append(" ".join(f"{f.name}={_shown(f, words)}"
                          for f in fields if f.name in key and
                          (f.dword == 0 or name == "SM_ROOT_ENTRY")) + "\n",
                 style="bold yellow")
        for f in fields:
            if f.dword != 0 and name != "SM_ROOT_ENTRY":
                continue
            v = f.get(words)
            if not v and f.name not in key:
                continue
            bits = f"{f.hi}:{f.lo}" if f.hi != f.lo else str(f.lo)
            mark = f.name in key
            t.append(f"  {'>' if mark else ' '} {f.name:<12} [{bits:>5}] "
                     f"{hx(v << f.lo if f.is_address else v):<14}",
                     style="bold yellow" if mark else "")
            t.append(f"{f.value_name(v) or ''}\n", style="dim")
    if i == len(w["steps"]) - 1 and w["fault"]:
        f = w["fault"]
        t.append(f"fault {f['name']} ({f['reason']:#04x}): {f['meaning']}\n", style="bold red")
        if not f["recorded"]:
            t.append("not recorded (FPD=1)\n", style="dim")
        elif w.get("fault_index") is not None:
            t.append(f"fault record {w['fault_index']} (events {w['unit']})\n")
        elif w["dry"]:
            t.append("dry walk: no fault recorded (clear dry to record it)\n", style="dim")
    return t


# -- interrupt requests ------------------------------------------------------------------------
def msi_rows(r: dict) -> list[dict]:
    """Rows of an interrupt request through interrupt remapping."""
    f = r["fault"]
    rows = [{"name": "interrupt request", "table": f"RID {hx(r['rid'])}", "idx": "",
             "at": hx(r["address"]), "value": f"data {hx(r['msi_data'])}",
             "outcome": r["format"], "ok": True}]
    if r["format"] == "compatibility":
        rows.append({"name": "compatibility format", "table": "", "idx": "", "at": "",
                     "value": "", "outcome": "not remapped" if r["ok"] else "blocked",
                     "ok": r["ok"]})
    elif r["index"] is not None:
        rows.append({"name": "IRTE", "table": "IRTA_REG", "idx": str(r["index"]),
                     "at": hx(r["irte_pa"]),
                     "value": " ".join(f"{w:016x}" for w in r["irte"]) if r["irte"] else "-",
                     "outcome": "posted" if r["posted"] else ("ok" if r["ok"] else "fault"),
                     "ok": r["ok"]})
    if r["ok"]:
        rows.append({"name": "posted descriptor" if r["posted"] else "interrupt",
                     "table": "", "idx": "", "at": hx(r["pda"]) if r["posted"] else "",
                     "value": f"vector {hx(r['vector'])}" + ("" if r["posted"] else
                                                           f" dest {hx(r['dest'])}"),
                     "outcome": r["delivery"] or "posted", "ok": True})
    elif f and (len(rows) == 1 or rows[-1]["ok"]):
        rows.append({"name": "fault", "table": "", "idx": "", "at": "", "value": "",
                     "outcome": f["name"], "ok": False})
    return rows


def msi_summary(r: dict) -> Text:
    t = Text()
    who = r["device"] or f"{r['unit']} RID {hx(r['rid'])}"
    t.append(f"{who} MSI {hx(r['address'])} data {hx(r['msi_data'])}: ", style="bold")
    if r["ok"]:
        t.append(f"vector {hx(r['vector'])}", style="green")
        if not r["posted"]:
            t.append(f" -> {r['dest_mode']} dest {hx(r['dest'])}, {r['delivery']}, "
                     f"{r['trigger']}")
        else:
            t.append(" posted")
    else:
        t.append(f"{r['fault']['name']} ({r['fault']['reason']:#04x})", style="bold red")
    return t


def msi_detail(r: dict, rows: list[dict], i: int) -> Text:
    x = rows[i]
    t = Text()
    t.append(f"step {i + 1}/{len(rows)}: {x['name']}\n", style="bold")
    if x["name"] == "interrupt request":
        fm = fmt("MSI_ADDR_REMAP", "vtd")
        if r["format"] == "remappable":
            v = fm.decode([r["address"]])
            t.append("remappable format: " + ", ".join(f"{k}={hx(v[k])}" for k in
                                                        ("HANDLE", "HANDLE_15", "SHV", "IF"))
                     + "\n")
            t.append(f"handle -> IRTE index {r['index']}"
                     + (" (+ subhandle from data, SHV=1)" if v.get("SHV") else "") + "\n")
        else:
            t.append("compatibility format: the address and data carry the interrupt as is\n")
        t.append("the range 0xFEE00000-0xFEEFFFFF is not translated by the DMA tables "
                 f"(a DMA walk of this write: {r['dma_walk']})\n", style="dim")
    elif x["name"] == "IRTE" and r["irte"]:
        name = "IRTE_POSTED" if r["posted"] else "IRTE"
        key = ("P", "V", "VV", "DST", "DLM", "DM", "TM", "SVT", "SQ", "SID", "PDA_L",
               "PDA_H")
        t.append(f"{name} at {hx(r['irte_pa'])}\n", style="bold")
        for f in fmt(name, "vtd").fields:
            v = f.get(r["irte"])
            if not v and f.name not in key:
                continue
            bits = f"{f.hi}:{f.lo}" if f.hi != f.lo else str(f.lo)
            t.append(f"  {'>' if f.name in key else ' '} {f.name:<8} [{f.dword}:{bits:>5}] "
                     f"{hx(v):<12}", style="bold yellow" if f.name in key else "")
            t.append(f"{f.value_name(v) or ''}\n", style="dim")
    elif r["ok"]:
        t.append(f"vector {hx(r['vector'])}, destination {hx(r['dest'])} ({r['dest_mode']}), "
                 f"delivery {r['delivery']}, trigger {r['trigger']}\n")
    if not x["ok"] and r["fault"]:
        f = r["fault"]
        t.append(f"fault {f['name']} ({f['reason']:#04x}): {f['meaning']}\n", style="bold red")
    return t

"""An MSI as steps for the walk stepper: the `msi` command's typed result (results.Msi) laid out
one row per thing the write passes through, in the order the hardware meets them:

    RID (the message and the MSI RID) -> IORT nodes (RID -> StreamID -> DeviceID)
      -> the SMMU's walk (L1STD, STE, CD, stage 1 with its stage-2 sub-walks, final stage 2)
      -> the region the write lands on (GITS_TRANSLATER) -> ITS reads (DTE: DeviceID,
         ITE: EventID, CTE: collection) -> the LPI on its target redistributor

A broken path ends at the failing layer's last row, with the layer's reason and fix. Nothing
here reaches the model: it only reshapes the result the command returned."""
from __future__ import annotations

import shlex

from rich.style import Style
from rich.text import Text

from .fmt import hx, step_name

WALK_OK = ("ok", "table", "block", "page")


def msi_line(target: str, vector: str, address: str = "", dry: bool = True) -> str:
    """The `msi` command line for the stepper's form: DEVICE VECTOR, or with an SMMU and a
    StreamID as the target the raw form SMMU SID ADDRESS data=VECTOR (the doorbell IOVA in
    the address field, the MSI data in the vector field)."""
    words = shlex.split(target)
    parts = ["msi", *words]
    if len(words) >= 2:
        parts += [address.strip(), f"data={vector.strip()}"]
    else:
        parts.append(vector.strip())
    if dry:
        parts.append("dry")
    return " ".join(p for p in parts if p)


def _row(layer: str, name: str, table="", idx="", at="", value="", outcome="", ok=True,
         detail: str = "", **kw) -> dict:
    return {"layer": layer, "name": name, "table": table, "idx": idx, "at": at,
            "value": value, "outcome": outcome, "ok": ok, "detail": detail, **kw}


def _walk_rows(step: dict) -> list[dict]:
    rows = []
    for i, s in enumerate(step.get("walk") or []):
        at = hx(s["desc_pa"])
        if s.get("desc_ipa") is not None and s["desc_ipa"] != s["desc_pa"]:
            at = f"{hx(s['desc_ipa'])}>{at}"
        rows.append(_row("smmu", step_name(s), hx(s["table"]), str(s["index"]), at,
                         f"{s['desc']:#018x}" if s["desc"] is not None else "-", s["outcome"],
                         s["outcome"] in WALK_OK, walk_index=i,
                         detail=f"input {hx(s.get('in_addr'))}: table {hx(s['table'])} index "
                                f"{s['index']}, descriptor at "
                                + (f"IPA {hx(s['desc_ipa'])} = " if s.get("desc_ipa") is not None
                                   else "") + f"PA {hx(s['desc_pa'])}\nvalue {hx(s['desc'])} "
                                f"-> {s['outcome']}"))
    return rows


def _iort_rows(step: dict) -> list[dict]:
    rows = []
    for n in step.get("nodes") or []:
        out = (f"{hx(n['input_id'])}->{hx(n['output_id'])}" if n["output_id"] is not None
               else hx(n["input_id"]))
        what = n["failure"] or n["output_node"] or n["note"] or ""
        rows.append(_row("iort", f"IORT {n['node']}", n["type"],
                         "" if n["mapping"] is None else str(n["mapping"]), "", out, what,
                         not n["failure"],
                         detail=f"{n['type']} node {n['node']}: ID {hx(n['input_id'])}"
                         + (f" through mapping {n['mapping']} -> ID {hx(n['output_id'])} at "
                            f"{n['output_node']}" if n["output_id"] is not None else "")
                         + (f"; {n['note']}" if n["note"] else "")))
    return rows


def _its_rows(step: dict) -> list[dict]:
    rows = []
    for s in step.get("its_steps") or []:
        name = {"DTE": "ITS DTE", "ITE": "ITS ITE", "CTE": "ITS CTE",
                "redistributor": "LPI"}.get(s["what"], s["what"])
        fields = ", ".join(f"{k}={v:#x}" if isinstance(v, int) and v > 9 else f"{k}={v}"
                           for k, v in s["fields"].items())
        rows.append(_row("its", name, "", "" if s["index"] is None else hx(s["index"]),
                         hx(s["address"]) if s["address"] is not None else "",
                         hx(s["raw"]) if s["raw"] is not None else "-", s["outcome"], s["ok"],
                         its_what=s["what"], its_index=s["index"],
                         detail=f"{s['what']} {s['index'] if s['index'] is not None else ''}"
                                f": {fields} -> {s['outcome']}"))
    return rows


def msi_rows(r: dict) -> list[dict]:
    """The stepper's rows for one `msi` result (its JSON form)."""
    rows: list[dict] = []
    for st in r["steps"]:
        what = st["what"]
        if what == "msi":
            sub = [_row("msi", "RID", str(st["input"]), "", hx(st["output"]),
                        hx(st.get("data")), st.get("kind") or "", True)]
        elif what == "iort":
            sub = _iort_rows(st)
        elif what == "smmu":
            sub = _walk_rows(st)
        elif what == "region":
            sub = [_row("region", "region", str(st.get("region") or "nothing"), "",
                        hx(st["input"]), "",
                        "GITS_TRANSLATER" if st["ok"] else "not a doorbell", st["ok"])]
        elif what == "its":
            sub = _its_rows(st)
        else:
            sub = []
        if not sub:
            sub = [_row(what, what.upper() if len(what) <= 4 else what, "", "", "", "",
                        "ok" if st["ok"] else "failed", st["ok"])]
        # the layer's own summary goes with its last row; a failure marks that row
        last = sub[-1]
        last["layer_detail"] = st.get("detail")
        if not st["ok"]:
            last.update(ok=False, reason=st.get("reason"), fix=st.get("fix"))
            # the event the failure raises names the row (the descriptor's own outcome, such
            # as invalid, stays in the detail)
            if st.get("fault"):
                last["outcome"] = st["fault"]
            elif last["outcome"] in WALK_OK or last["outcome"] in ("valid", ""):
                last["outcome"] = "failed"
        for x in sub:
            x["step"] = what
        rows += sub
    return rows


# Which ITS table each ITS read is a row of (the ITS panel's tables, tui/itsview.py).
ITS_TABLE = {"L1 device table": "devices", "DTE": "devices", "ITE": "itt",
             "L1 collection table": "collections", "CTE": "collections",
             "collection (held in the ITS)": "collections", "redistributor": "mappings"}


def its_target(r: dict, x: dict) -> tuple[str, str, int, int] | None:
    """Where an MSI row is in the ITS panel: (ITS, table, DeviceID, row index: DeviceID,
    EventID or ICID), for the ITS reads and GITS_TRANSLATER; None for the other rows."""
    if r.get("its") is None or r.get("device_id") is None:
        return None
    dev = r["device_id"]
    if x["step"] == "region" and x["ok"]:
        return r["its"], "devices", dev, dev        # the write's DeviceID: its DTE first
    kind = ITS_TABLE.get(x.get("its_what"))
    if kind is None:
        return None
    if kind == "devices":
        return r["its"], kind, dev, dev
    if kind == "collections":
        return r["its"], kind, dev, x["its_index"]
    return r["its"], kind, dev, r["msi_data"]       # ITE, LPI: the EventID is the data


def msi_summary(r: dict) -> Text:
    t = Text()
    who = (f"{r['device']} vector {r['vector']}" if r["device"] is not None
           else f"{r['smmu']} SID {hx(r['sid'])} raw")
    t.append(f"MSI {who}", style="bold")
    t.append(f": write {hx(r['msi_data'])} to {hx(r['address'])}")
    if r["ipa"] is not None:
        t.append(f" -> gDB {hx(r['ipa'])}")
    if r["pa"] is not None:
        t.append(f" -> {hx(r['pa'])}")
    t.append(": ")
    if r["ok"]:
        t.append(f"LPI {r['intid']} collection {r['icid']} redistributor {r['target']}",
                 style="green")
    else:
        t.append(f"broken at {r['failed']}", style="bold red")
    return t


def msi_detail(r: dict, rows: list[dict], i: int) -> Text:
    """What the stepper's detail box says for row i."""
    x = rows[i]
    t = Text()
    t.append(f"MSI step {i + 1}/{len(rows)}: {x['name']}", style="bold")
    t.append(f"  ({x['step']})\n")
    if x["detail"]:
        t.append(x["detail"] + "\n")
    if x.get("layer_detail"):
        t.append(x["layer_detail"] + "\n", style="" if x["ok"] else "dim")
    if not x["ok"]:
        if x.get("reason"):
            t.append(f"broken: {x['reason']}\n", style="bold red")
        if x.get("fix"):
            t.append(f"fix: {x['fix']}\n", style="yellow")
    target = its_target(r, x)
    if target is not None:
        its, kind, _dev, idx = target
        t.append(f"-> {its} {kind} row {hx(idx)} in the ITS panel (j, Enter or click)",
                 style=Style(color="cyan", meta={"@click": "its_jump"}))
    return t

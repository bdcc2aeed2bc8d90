"""Typed results: every command's result on every example scenario renders (a renderer error
fails here), round-trips through its JSON form, and shows addresses as addresses."""
import glob
import json
import os
from pathlib import Path

import pytest

from smmudbg.commands import REGISTRY
from smmudbg.model import scenario as sc
from smmudbg.render import render_text
from smmudbg.results import KINDS, Result
from smmudbg.session import Session, canonical

ROOT = Path(__file__).resolve().parent.parent
# Every example but large-system.toml (262,144 streams, 1,000,000 pages: there for load time and
# memory, tests/test_large_system.py; every command runs on large.toml's 65,536 streams here, and
# replaying a session of it rebuilds the system each time).
SCENARIOS = [("default", sc.builtin("default"))] + [
    (os.path.basename(p), Path(p).read_text()) for p in sorted(glob.glob(str(ROOT / "examples"
                                                                          / "*.toml")))
    if os.path.basename(p) != "large-system.toml"]
QEMU = ROOT / "tests" / "fixtures" / "qemu"
# Commands that need a running QEMU (and their kinds): tests/test_attach.py runs them against a
# fake QMP server and checks their results with check_result.
ATTACH_COMMANDS = {"attach qemu", "attach status", "detach", "snapshot", "view", "watch",
                   "attach-diff", "attach poll"}
VTD_KINDS = {"vtd-walk", "vtd-entries", "vtd-faults", "vtd-inv", "vtd-msi", "vtd-pt",
             "vtd-pt-lookup", "vtd-inject", "vtd-caches", "vtd-units",
             "vtd-iq"}
ATTACH_KINDS = {"attach", "attach-status", "detach", "snapshot", "view", "watch",
                "attach-poll"}


def lines_for(s: Session, tmp: Path) -> list[str]:
    """Command lines that exercise every available command on this session's system."""
    sysm = s.system
    smmu = next(iter(sysm.smmus), "smmu0")      # a VT-d-only system refuses the SMMU lines
    out = ["help", "help walk", "help set", "topology", "smmus", "vms", f"regs {smmu}",
           f"regs {smmu} CR0", f"strtab {smmu}", f"strtab {smmu} all count=4", f"tlb {smmu}",
           f"cfgcache {smmu}", f"cmdq {smmu}", f"events {smmu}", "check", f"check {smmu}",
           "find pa=0x40000000+2M", "find ipa=0x40000000+4K",
           f"cmdq {smmu} history=300", f"events {smmu} all summary", "json", "json off",
           "diff @0",
           "mem 0x40000000 32", "mem 0 16"]
    for vm in sysm.vms:
        out.append(f"mem 0x40000000 16 vm={vm}")
    for name, st in sysm.devices.items():
        out += [f"ste {name}", f"walk {name} 0x1000", f"walk {name} 0x1000 dry",
                f"walk {name} 0x1000 access=write priv"]
        if st.spec["cds"]:
            out += [f"cd {name}", f"cdtable {name}", f"cdtable {name} all", f"pt {name}"]
            addr = sysm.domains[st.spec["cds"][0]["domain"]].spec["maps"]
            if addr:
                a = addr[0]["in"] + 0x10
                out += [f"walk {name} {a:#x}", f"walk {name} {a:#x} dry",
                        f"pt {name} addr={a:#x}"]
        if st.spec["s2"]:
            out.append(f"pt {name} stage=2")
            if st.spec["cds"]:
                out.append(f"pt {name} stage=nested")
    for name, dom in sysm.domains.items():
        out += [f"pt {name}", f"pt {name} limit=3"]
        if dom.spec["maps"]:
            a = dom.spec["maps"][0]["in"]
            out += [f"pt {name} addr={a:#x}"]
    # The system around the SMMUs: IORT, ITS and the MSI path (refused where not modelled).
    out += ["pci", "iort", "its", f"msi {smmu} 0x8 0x8000040 data=0", "inject its-page nic9",
            "inject iort nic9"]
    if sysm.pci is not None:
        for name, d in sysm.pci.devices.items():
            out.append(f"iort {name}")
            if d.msix or d.msi:
                out += [f"msi {name} 0", f"msi {name} 0 dry"]
        dev = next((n for n, d in sysm.pci.devices.items() if d.msix or d.msi), None)
        if dev and sysm.its:
            out += [f"inject its-discard {dev}", f"inject its-movi {dev}", "back", "back"]
        if dev:
            out += [f"inject its-page {dev}", f"msi {dev} 0", f"inject iort {dev}",
                    f"iort {dev}", f"msi {dev} 0", "check", "back", "back", "back"]
    for name in sysm.its:
        out += [f"its {name}", f"its {name} device=0x100"]
    out += ["iommufd"] + ([f"iommufd {v}" for v in ("devices", "ioas", "hwpt", "viommu",
                                                     "vdevice")] if sysm.iommufd else [])
    # iommufd on VT-d: the view, and an invalidation on each device (refused without one)
    out += ["iommufd vtd", "iommufd-invalidate nope 0 1"]
    for name in (sysm.vtd_iommufd.devices if sysm.vtd_iommufd else ()):
        out += [f"iommufd-invalidate {name} 0x7f0000001000 1 leaf",
                f"iommufd-invalidate {name} 0x1000 0xffffffffffffffff"]
    # vSMMUs: refused without one; on a system with one, the guest side and the forwarding.
    out += ["vsmmu", "vcmd nope CMD_SYNC", "vste nope 0 V=0", "vevents nope",
            "hwpt-invalidate nope CMD_SYNC", "inject vtlbi-lost nope", "inject vste-reject nope 0",
            "inject its-discard nic9", "inject its-movi nic9"]
    for vs in sysm.vsmmus.values():
        vsid = min(vs.vsids)
        vi = s.system.iommufd.name_of(vs.viommus[0].id)
        out += [f"vsmmu {vs.name}", f"vsmmu {vs.vm.name}", f"vste {vs.name} {vsid:#x} V=1",
                f"vcmd {vs.name} CMD_CFGI_STE StreamID={vsid:#x}",
                f"vcmd {vs.name} CMD_TLBI_NH_ASID ASID=1", f"vcmd {vs.name} CMD_TLBI_S2_IPA",
                f"vcmd {vs.name} resume", f"hwpt-invalidate {vi} CMD_TLBI_NH_ALL",
                f"inject vtlbi-lost {vs.name}", f"inject vste-reject {vs.name} {vsid:#x}",
                f"inject event {smmu} F_TRANSLATION StreamID={vs.vsids[vsid].sid:#x}",
                f"vevents {vs.name}", "check"]
    # Intel VT-d units: walks, entry views and fault records (refused on an SMMU's devices).
    out.append("vtds")
    out += [f"inject retarget-irte {m} 0" for m in list(sysm.smmus)[:1]]   # refused on an SMMU
    for unit in sysm.vtds:
        out += [f"events {unit}", f"events {unit} sid=0x10", f"check {unit}",
                f"drop-invalidations {unit} 1", f"drop-invalidations {unit} 0",
                f"tlb {unit}", f"cfgcache {unit}", f"regs {unit}", f"regs {unit} CAP_REG",
                f"cmdq {unit}", f"cmdq {unit} history=2", f"find pa=0x62000000+0x1000 {unit}",
                f"cmd {unit} IOTLB_INV_DSC G=global", f"cmd {unit} INV_WAIT_DSC"]
    for name in list(sysm.vtd_devices) + list(sysm.devices)[:1]:
        out += [f"walk {name} 0x1000", f"walk {name} 0x1000 dry", f"walk {name} 0x1000 pasid=9",
                f"context {name}", f"pasid {name}", f"pasid {name} pasid=9", f"msi {name} 0",
                f"pt {name}", f"pt {name} stage=2", f"pt {name} stage=nested",
                f"pt {name} addr=0x1000", f"walk {name} 0x7f0000001234",
                f"inject clear-present {name} 0x7f0000001234", f"inject corrupt-pasid {name}",
                f"inject invalidate-pasid {name}", f"inject corrupt-context {name}",
                f"inject invalidate-context {name}", "back", "back", "back", "back", "back",
                f"set pasid {name} DID=9", f"set context {name} FPD=1", "back", "back"]
    for unit in sysm.vtds:
        out += [f"msi {unit} 0x10 0xfee00010 data=0", f"msi {unit} 0x10 0xfee01000 data=0x41",
                f"tlb {unit}", f"cfgcache {unit}", f"inject retarget-irte {unit} 0",
                f"inject retarget-irte {unit} 0 dest=0x300", "back", "back"]
    if not sysm.smmus:      # the SMMU's views and changes, refused in one line on a VT-d device
        d = next(iter(sysm.vtd_devices), "nic0")
        out += [f"ste {d}", f"cd {d}", f"cdtable {d}", f"set cd {d} EPD1=1",
                f"set ste {d} S2VMID=3", f"map {d} 0x7000000000 0x40000000 4K",
                f"unmap {d} 0x7000000000 4K"] + [
            f"inject {k} {d}" + (" 0x1000" if k in ("clear-af", "drop-perm", "unmap") else "")
            for k in ("clear-af", "corrupt-cd", "corrupt-ste", "drop-perm", "invalidate-cd",
                      "invalidate-ste", "reserved-ste", "unmap")]
    out += ["expect ok", "history", "history 2"]
    # Changes, on the first device with a CD and the first domain with a mapping.
    dev = next((n for n, st in sysm.devices.items() if st.spec["cds"]), None)
    dom = next((n for n, d in sysm.domains.items() if d.spec["maps"]), None)
    if dom:
        a = sysm.domains[dom].spec["maps"][0]["in"]
        out += [f"map {dom} 0x7000000000 0x40000000 4K", f"unmap {dom} 0x7000000000 4K",
                f"inject clear-af {dom} {a:#x}", f"inject drop-perm {dom} {a:#x}",
                f"inject unmap {dom} {a:#x}"]
    if dev:
        out += [f"set cd {dev} EPD1=1", f"inject corrupt-cd {dev}", f"inject invalidate-cd {dev}",
                f"set ste {dev} S2VMID=3", f"inject corrupt-ste {dev}",
                f"inject reserved-ste {dev}", f"inject invalidate-ste {dev}",
                f"walk {dev} 0x1000", "check"]
    out += ["set desc 0x40000000 AF=1", f"set reg {smmu} GBPA ABORT=1",
            f"set reg {smmu} EVENTQ_CONS 0",
            f"inject event {smmu} F_TRANSLATION StreamID=8 InputAddr=0x1000 IPA=0x41",
            f"drop-invalidations {smmu} 1", f"cmd {smmu} CMD_CFGI_ALL", f"cmd {smmu} CMD_SYNC",
            f"cmd {smmu} CMD_TLBI_NH_VA VMID=1 ASID=1 Addr=0x10000000",
            f"consume-events {smmu} 1", f"events {smmu}", f"cmdq {smmu}", f"tlb {smmu}",
            "back", "forward", "goto 1", f"goto {len(s.log)}", f"save {tmp / 's.json'}",
            f"save {tmp / 'r.json'} results", "replay", f"replay {tmp / 's.json'}",
            f"load {tmp / 's.json'}", "expect ok"]
    return out


def check_result(out):
    """One outcome: a typed Result whose JSON form round-trips and which renders."""
    r = out.result
    assert type(r) is KINDS[r.kind], (out.command, type(r))
    j = r.to_json()
    assert json.loads(canonical(j)) == j, out.command         # plain JSON data
    back = Result.from_json(j)
    assert back == r and back.to_json() == j, out.command
    text = render_text(r, width=160)
    assert text.strip(), out.command
    return r.kind


@pytest.mark.parametrize("name,text", SCENARIOS, ids=[n for n, _ in SCENARIOS])
def test_every_command_result_renders(name, text, tmp_path):
    s = Session(text, name)
    used, kinds = set(), set()
    for line in lines_for(s, tmp_path):
        out = s.execute(line)
        used.add(REGISTRY.lookup(REGISTRY.tokenize(line))[0].name)
        if out.ok:
            kinds.add(check_result(out))
        else:       # a refusal is one line naming the command, never an internal error
            assert "internal error" not in out.error and "\n" not in out.error, (line, out.error)
    available = {n for n, c in REGISTRY.commands.items() if c.available is None}
    assert available - used <= {"import qemu"} | ATTACH_COMMANDS
    if name == "default":
        # every kind appears on the default scenario but the imports', attach's, the VT-d
        # units', the vSMMUs' and those of iommufd objects it does not have
        assert set(KINDS) - kinds <= {"import", "vtd-import", "its", "iommufd", "inject-iort",
                                      "vsmmu", "vcmd", "vste", "vevents", "hwpt-invalidate",
                                      "inject-vsmmu", "inject-its", "vtd-iommufd",
                                      "vtd-hwpt-inv"} | ATTACH_KINDS \
            | VTD_KINDS, set(KINDS) - kinds
    if name == "vtd-nested.toml":
        assert VTD_KINDS <= kinds
    if name == "vtd-iommufd.toml":
        assert {"vtd-iommufd", "vtd-hwpt-inv", "vtd-walk"} <= kinds
    if name == "msi-its.toml":
        assert {"iort", "its", "msi", "inject-iort"} <= kinds
    if name == "vsmmu-accel.toml":
        assert {"iort", "its", "msi", "iommufd"} <= kinds
    if name == "vsmmu-vm.toml":
        assert {"vsmmu", "vcmd", "vste", "vevents", "hwpt-invalidate", "inject-vsmmu",
                "inject-its", "msi"} <= kinds


def test_import_result_renders():
    s = Session()
    out = s.execute(f"import qemu {QEMU / 'memory.elf.xz'} --regs {QEMU / 'regs.json'}")
    assert out.ok, out.error
    assert check_result(out) == "import"
    for line in ["strtab smmu0", "topology", "events smmu0", "cmdq smmu0"]:
        check_result(s.execute(line))


def test_unknown_kind_or_field_is_refused():
    with pytest.raises(ValueError, match="unknown result kind"):
        Result.from_json({"kind": "nope"})
    j = Session().run("topology").to_json()
    with pytest.raises(ValueError, match="no field 'extra'"):
        Result.from_json(dict(j, extra=1))


def test_a_renderer_error_is_not_hidden():
    s = Session()
    j = s.run("walk nic0 0x10000123").to_json()
    del j["steps"]
    with pytest.raises(KeyError):
        render_text(j)


# ---------------------------------------------------------------------------------------------
# Addresses are addresses
# ---------------------------------------------------------------------------------------------
def default_spec():
    return sc.parse(sc.builtin("default"), "default")


def test_event_ipa_is_the_address_mapped_in_the_scenario():
    spec = default_spec()
    dma = next(d for d in spec["domain"] if d["name"] == "nic0-dma")
    iova, ipa = dma["maps"][0]["in"], dma["maps"][0]["out"]     # nic0's IOVA -> IPA
    s = Session()
    assert s.execute(f"inject unmap vm0-s2 {ipa:#x}").ok        # the stage-2 leaf goes
    w = s.run(f"walk nic0 {iova + 0x123:#x}")
    assert (w.fault["type"], w.fault["s2"]) == ("F_TRANSLATION", True)
    ev = s.run("events smmu0").entries[-1]
    assert ev["event"] == "F_TRANSLATION" and ev["fields"]["S2"] == 1
    assert ev["ipa"] == ipa                 # IPA[55:12] of IPA ipa + 0x123, as an address
    assert ev["fetch_addr"] is None
    assert f"{ipa:#x}" in render_text(s.run("events smmu0"))


def test_event_fetch_addr_is_the_table_address():
    s = Session()
    table = 0x2_0000_0000                    # beyond the scenario's RAM: nothing there
    assert s.execute(f"set cd nvme0 TTB0={table:#x}").ok
    w = s.run("walk nvme0 0xffff0000")
    assert w.fault["type"] == "F_WALK_EABT"
    ev = s.run("events smmu0").entries[-1]
    # the first fetch is the root descriptor for VA 0xffff0000: index 0 of the table
    assert ev["fetch_addr"] == w.fault["fetch_addr"] == table
    assert f"{table:#x}" in render_text(s.run("events smmu0"))


def test_set_ste_takes_addresses_and_raw_values():
    s = Session()
    r = s.run("set ste gpu0 S2TTB=0x40008000")
    assert r.changes[0]["address"] and r.changes[0]["new"] == 0x40008000
    words = s.run("ste gpu0").words
    assert (words[3] >> 4) & ((1 << 52) - 1) == 0x40008000 >> 4     # S2TTB is STE[243:196]
    assert s.run("ste gpu0").fields["S2TTB"] << 4 == 0x40008000
    assert s.run("ste gpu0").addresses["S2TTB"] == 0x40008000
    r = s.run("set ste gpu0 S2TTB.raw=0x4000900")
    assert s.run("ste gpu0").fields["S2TTB"] == 0x4000900 and r.changes[0]["new"] == 0x40009000
    err = s.execute("set ste gpu0 S2TTB=0x40008008").error
    assert "S2TTB" in err and "16-byte aligned" in err and "S2TTB.raw" in err
    assert "address" in s.run("help set ste").help


def test_set_cd_ttb0_is_an_address():
    s = Session()
    s.run("set cd nvme0 TTB0=0x50100000")
    assert s.run("cdtable nvme0").cds[0]["ttb0"] == 0x50100000
    assert s.run("cd nvme0").fields["TTB0"] << 4 == 0x50100000
    assert s.run("cd nvme0").addresses["TTB0"] == 0x50100000


def test_counts_and_levels_print_in_decimal():
    s = Session()
    s.run("walk nic0 0x10000123")           # nic0-dma and vm0-s2 map it with 2 MiB blocks
    e = s.run("tlb smmu0").entries[0]
    assert (e["s1level"], e["s2level"]) == (2, 2)
    row = next(r for r in render_text(s.run("tlb smmu0"), width=200).splitlines()
               if r.startswith("NESTED"))
    cells = [c.strip() for c in row.split("\u2502")]
    assert cells[7:9] == ["2", "2"]                  # s1level, s2level: not 0x2
    assert cells[3] == "0x10000000"                  # addresses stay hex
    text = render_text(s.run("consume-events smmu0"), width=200)
    assert "consumed  0" in text


# ---------------------------------------------------------------------------------------------
# walk ... dry
# ---------------------------------------------------------------------------------------------
def state(s):
    return {k: s.run(k).to_json() for k in ("tlb smmu0", "cfgcache smmu0", "events smmu0")}


@pytest.mark.parametrize("line", ["walk nic0 0x10000123", "walk nic0 0x30000000",
                                  "walk nvme0 0xffff0010 access=write",
                                  "walk nic0 0x7f0000000010 ssid=1"])
def test_walk_dry_changes_nothing(line):
    s, ref = Session(), Session()
    before = state(s)
    mem_before = s.system.mem.read(0x4000_0000, 0x10_0000)
    dry = s.run(line + " dry")
    assert dry.dry and dry.event is None and not dry.hit
    assert state(s) == before
    assert s.system.mem.read(0x4000_0000, 0x10_0000) == mem_before
    real = ref.run(line)                       # the same walk for real: same answer and trace
    assert (dry.pa, dry.ipa, dry.perm, dry.steps) == (real.pa, real.ipa, real.perm, real.steps)
    assert (dry.fault is None) == (real.fault is None)
    if real.fault:
        assert dry.fault == real.fault
        assert state(ref)["events smmu0"]["entries"] and real.event is not None


def test_walk_dry_sees_memory_not_the_cache():
    s = Session()
    s.run("walk nic0 0x10000123")                     # cached
    s.run("inject unmap nic0-dma 0x10000000")         # no TLBI
    assert s.run("walk nic0 0x10000123 dry").fault["type"] == "F_TRANSLATION"
    assert s.run("walk nic0 0x10000123").pa == 0x61000123      # the stale IOTLB entry


def test_walk_dry_keeps_the_access_flag():
    spec = sc.builtin("default").replace("HTTU = 0", "HTTU = 1")
    s = Session(spec, "httu")
    s.run("inject clear-af host-dma 0xffff0000")
    s.run("set cd nvme0 HA=1")
    pt0 = s.run("pt host-dma addr=0xffff0000").leaf["desc"]
    r = s.run("walk nvme0 0xffff0010 dry")
    assert r.fault is None
    assert s.run("pt host-dma addr=0xffff0000").leaf["desc"] == pt0      # AF still 0
    s.run("walk nvme0 0xffff0010")
    assert s.run("pt host-dma addr=0xffff0000").leaf["desc"] != pt0      # the real walk sets AF


def test_cmd_takes_the_address_or_the_raw_field():
    s = Session()
    a = s.run("cmd smmu0 CMD_TLBI_NH_VA VMID=1 ASID=1 Addr=0x10000000").log[0]["fields"]
    b = s.run("cmd smmu0 CMD_TLBI_NH_VA VMID=1 ASID=1 Address.raw=0x10000").log[0]["fields"]
    assert a["Address"] == b["Address"] == 0x10000000 >> 12     # VA[63:12]
    err = s.execute("cmd smmu0 CMD_TLBI_NH_VA Nope.raw=1").error
    assert err.startswith("cmd: ") and "Nope" in err
    assert "FIELD.raw" in s.run("help cmd").help


def test_docs_list_every_kind_with_its_fields():
    from dataclasses import fields
    doc = (ROOT / "docs" / "results.md").read_text()
    for k, cls in KINDS.items():
        keys = ", ".join(f.metadata.get("json", f.name) for f in fields(cls)
                         if f.name != "message")
        assert f"| `{k}` | `{cls.__name__}` | {keys} |" in doc, k

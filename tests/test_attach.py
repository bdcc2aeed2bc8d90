"""attach/snapshot/watch/detach against a fake QEMU (tests/attach_fake.py): a QMP server on a
Unix socket answering `xp` from the QEMU fixture's registers, and a RAM file holding that
fixture's pages. Expected values come from tests/fixtures/qemu/README.md and translations.json
(QEMU's own trace), never from smmudbg's reading of them."""
import json
import os
import shutil
import tempfile

import pytest

pytest.importorskip("qemu.qmp")

from attach_fake import QEMU, RAM_BASE, FakeQemu, write_ram  # noqa: E402
from smmudbg.arch.fieldtable import fmt  # noqa: E402
from smmudbg.arch.smmuv3.events import encode_cmd, encode_event  # noqa: E402
from smmudbg.session import Session  # noqa: E402
from test_results import check_result  # noqa: E402

STE = fmt("STE")
STE8 = 0x4ba60200               # README: SID 0x8's STE (Config 5, S1ContextPtr 0x485d9000)
CMDQ = 0x4bb00000               # README: CMDQ base, 65536 entries, PROD = CONS = 0x1c0
EVTQ = 0x4bc00000               # README: EVTQ base, 32768 entries, PROD = CONS = 0


@pytest.fixture
def vm():
    d = tempfile.mkdtemp(prefix="att", dir="/tmp")      # Unix socket paths are short
    ram = os.path.join(d, "ram")
    write_ram(ram)
    fake = FakeQemu(os.path.join(d, "qmp.sock"), ram)
    yield fake
    fake.close()
    shutil.rmtree(d, ignore_errors=True)


def attach(vm, extra=""):
    s = Session()
    out = s.execute(f"attach qemu {vm.path} ram={vm.ram_path} {extra}")
    assert out.ok, out.error
    return s, out.result


def make_bypass(vm):
    """The guest moves SID 0x8 to bypass (STE Config=0b100), announces it with CMD_CFGI_STE +
    CMD_SYNC at the CMDQ's PROD index, and the SMMU consumes both."""
    words = list(STE.from_bytes(vm.peek(STE8, 64)))
    STE.field("Config").put(words, 0b100)
    vm.poke(STE8, STE.to_bytes(words))
    prod = vm.regs["SMMU_CMDQ_PROD"]
    vm.poke(CMDQ + 16 * prod, encode_cmd("CMD_CFGI_STE", StreamID=8, Leaf=1)
            + encode_cmd("CMD_SYNC"))
    vm.regs["SMMU_CMDQ_PROD"] = vm.regs["SMMU_CMDQ_CONS"] = prod + 2


# ---------------------------------------------------------------------------------------------
def test_attach_builds_the_guest_system(vm):
    s, r = attach(vm)
    check_result(s.last)
    assert r.qemu == "7.2.0" and r.vm_running and r.view == "live"
    assert [(x["sid"], x["config"]) for x in r.streams] == [
        (0x8, "s1"), (0x10, "s1"), (0x100, "s1")]       # the importer's names
    assert r.registers["SMMU_STRTAB_BASE"] == 0x40000000481b2000
    # One xp per register, each /1wx or /1gx by the register's size (never /Nwx with N > 1).
    xps = [l for l in vm.log if l.startswith("xp")]
    assert xps and all(l.split()[1] in ("/1wx", "/1gx") for l in xps)
    assert "xp /1gx 0x9050080" in xps and "xp /1wx 0x9050088" in xps
    assert "xp /1wx 0x90600a8" in xps        # SMMU_EVENTQ_PROD lives in page 1
    ste = s.run("ste smmu0 0x8")
    assert ste.addr == STE8 and ste.addresses["S1ContextPtr"] == 0x485d9000
    assert s.run("cd smmu0 0x8").fields["ASID"] == 2
    # Translations QEMU's trace reported and that are still mapped walk to their PA.
    tr = [t for t in json.loads((QEMU / "translations.json").read_text()) if t["still_mapped"]]
    for t in tr[:20]:
        w = s.run(f"walk smmu0 {t['sid']:#x} {t['iova']} dry")
        assert w.pa == int(t["pa"], 16), t
    assert "live view" in s.run("topology").description
    assert s.log == []                      # nothing on the live view is recorded


def test_the_live_view_follows_the_guest_and_never_writes_it(vm):
    s, _ = attach(vm)
    assert s.run("ste smmu0 0x8").config == "s1_trans"
    make_bypass(vm)
    assert s.run("ste smmu0 0x8").config == "bypass"          # no re-attach needed
    before = vm.peek(STE8, 64)
    assert s.execute("set ste smmu0 0x10 S2VMID=7").ok          # smmudbg's own write...
    assert s.run("ste smmu0 0x10").fields["S2VMID"] == 7
    assert vm.peek(0x4ba60400, 64) == vm.peek(0x4ba60400, 64) and \
        STE.field("S2VMID").get(STE.from_bytes(vm.peek(0x4ba60400, 64))) == 0   # ...stays here
    assert vm.peek(STE8, 64) == before


def test_snapshot_stops_only_a_running_vm_and_costs_what_changed(vm):
    s, _ = attach(vm)
    del vm.log[:]
    r = s.run("snapshot")
    check_result(s.last)
    assert r.name == "s1" and r.vm_was_running and r.pause_ms > 0
    qmp = [l for l in vm.log if not l.startswith("xp")]
    # One pause: a single stop, the state read, a single cont (the figure: bench_attach.py).
    assert qmp.count("stop") == qmp.count("cont") == 1
    assert qmp.index("stop") < qmp.index("cont") and vm.running
    # stream table L1 + 2 L2 tables (8 pages) + 2 CD pages + 8 table pages + 2 x 256 queue
    # pages: the README's 531 needed pages.
    assert r.pages == 531
    # Pages are kept by content: the README's 21 non-zero pages (at most) and one zero page.
    assert r.new_pages <= 22
    assert "snapshot s1" in s.run("topology").description
    assert s.run("ste smmu0 0x8").config == "s1_trans"
    make_bypass(vm)                       # the guest goes on; the snapshot does not move
    assert s.run("ste smmu0 0x8").config == "s1_trans"
    n = len(s.log)
    d = s.run("diff s1 live")
    check_result(s.last)
    assert len(s.log) == n                  # a diff that read the live VM is not recorded
    m = d.smmus[0]
    assert {x["name"] for x in m["registers"]} == {"SMMU_CMDQ_PROD", "SMMU_CMDQ_CONS"}
    assert m["stes"] == [{"sid": 8, "change": "changed",
                          "fields": [{"field": "Config", "a": 5, "b": 4}]}]
    assert m["mappings"] and {x["change"] for x in m["mappings"]} == {"removed"}
    assert {x["sid"] for x in m["mappings"]} == {8}
    # diff live alone: from the view shown (snapshot s1) to the live VM; the old command
    # name still works and says to use diff.
    assert s.run("diff live").smmus[0]["stes"] == m["stes"]
    old = s.run("attach-diff s1")
    assert old.kind == "diff" and "use diff s1 live" in old.message
    assert old.smmus[0]["stes"] == m["stes"]
    # A second snapshot copies the changed pages only: the STE page and the CMDQ page.
    vm.running = False                    # the user paused the VM: snapshot must not resume it
    del vm.log[:]
    r2 = s.run("snapshot")
    assert r2.name == "s2" and not r2.vm_was_running and r2.pause_ms == 0    # not stopped
    assert r2.new_pages == 2
    assert "stop" not in vm.log and "cont" not in vm.log and not vm.running
    assert s.run("diff s1 s2").smmus[0]["stes"][0]["fields"] == \
        [{"field": "Config", "a": 5, "b": 4}]
    # diff SNAPSHOT alone: from it to the view shown (s2 now): nothing changed in between.
    assert s.run("diff s2").identical and s.run("diff s1").from_ == "snapshot s1"
    err = s.execute("diff s9").error
    assert "s1, s2" in err and "\n" not in err
    assert s.run("view live").view == "live"
    check_result(s.last)
    st = s.run("attach status")
    check_result(s.last)
    assert st.attached and st.view == "live" and [x["name"] for x in st.snapshots] == ["s1",
                                                                                      "s2"]


def test_watch_reports_the_cfgi_ste_and_the_ste_change(vm):
    s, _ = attach(vm)

    def guest(fake, line):
        if fake.hmp_count == 150:          # a few polls in: the guest switches SID 0x8
            make_bypass(fake)
            prod = fake.regs["SMMU_EVENTQ_PROD"]
            fake.poke(EVTQ + 32 * prod, encode_event("F_TRANSLATION", StreamID=0x10,
                                                     InputAddr=0x1234000))
            fake.regs["SMMU_EVENTQ_PROD"] = prod + 1
            fake.regs["SMMU_GERROR"] ^= 1 << 2     # GERROR.EVENTQ_ABT_ERR toggles: active
    vm.on_hmp = guest
    w = s.run("watch 1 interval=5")
    check_result(s.last)
    names = [(c["command"], c["what"]) for c in w.commands]
    assert names == [("CMD_CFGI_STE", "StreamID 0x8"), ("CMD_SYNC", "wait for completion")]
    assert w.commands[0]["index"] == 0x1c0
    ch = [c for c in w.changes if c["sid"] == 8]
    assert ch and ch[0]["config"] == ["s1_trans", "bypass"]
    assert ch[0]["t_ms"] >= w.commands[0]["t_ms"]
    assert [(e["event"], e["sid"]) for e in w.events] == [("F_TRANSLATION", 0x10)]
    assert "not mapped" in w.events[0]["explanation"]
    assert [g["errors"] for g in w.gerrors] == [["EVENTQ_ABT_ERR"]]
    assert w.polls > 3 and vm.running


def test_detach_leaves_a_paused_vm_paused(vm):
    vm.running = False
    s, r = attach(vm)
    assert not r.vm_running
    s.run("snapshot")
    d = s.run("detach")
    check_result(s.last)
    assert d.vm_running is False and "cont" not in vm.log and not vm.running
    assert d.view == "s1" and s.run("ste smmu0 0x8").config == "s1_trans"
    assert "not attached" in s.execute("watch 1").error


def test_a_saved_attached_session_replays_offline(vm, tmp_path):
    s, _ = attach(vm)
    s.run("snapshot first")
    s.run("ste smmu0 0x8")
    make_bypass(vm)
    s.run("view live")
    s.run("snapshot")
    s.run("ste smmu0 0x8")
    assert [e.command for e in s.log] == ["snapshot first", "ste smmu0 0x8", "snapshot s2",
                                          "ste smmu0 0x8"]
    path = tmp_path / "att.json"
    s.run(f"save {path}")
    side = tmp_path / "att.json.snapshots"
    doc = json.loads(path.read_text())
    assert doc["version"] == 2 and doc["snapshots"]["file"] == side.name
    s.run("detach")
    vm.close()                            # the VM is gone: replay reads the snapshot file
    t, report = Session.load(str(path))
    assert report["identical"], report
    assert t.run("ste smmu0 0x8").config == "bypass"
    assert t.run("view first").view == "first" and t.run("ste smmu0 0x8").config == "s1_trans"
    # A damaged or foreign snapshot file is refused in one line.
    side.write_text(side.read_text().replace('"first"', '"other"'))
    err = Session().execute(f"load {path}").error
    assert "snapshot file does not match the session" in err and "\n" not in err


# -- errors, each one line --------------------------------------------------------------------
def one_line(out, *words):
    assert not out.ok and "\n" not in out.error and "internal error" not in out.error, out.error
    for w in words:
        assert w in out.error, out.error
    return out.error


def test_socket_absent(tmp_path):
    one_line(Session().execute(f"attach qemu {tmp_path}/none.sock ram=x"), "no such socket",
             "-qmp")


def test_socket_busy_or_not_qemu(monkeypatch):
    from smmudbg.attach import qmp
    monkeypatch.setattr(qmp, "CONNECT_TIMEOUT", 0.5)
    d = tempfile.mkdtemp(prefix="att", dir="/tmp")
    try:
        busy = FakeQemu(os.path.join(d, "busy.sock"), mode="silent")
        one_line(Session().execute(f"attach qemu {busy.path} ram=x"), "busy", "second -qmp")
        busy.close()
        odd = FakeQemu(os.path.join(d, "odd.sock"), mode="garbage")
        one_line(Session().execute(f"attach qemu {odd.path} ram=x"), "not a QEMU")
        odd.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_no_smmu_at_the_base(vm):
    one_line(Session().execute(f"attach qemu {vm.path} ram={vm.ram_path} smmu-base=0x1000"),
             "no SMMUv3 at 0x1000", "smmu-base")
    assert "cont" not in vm.log and "stop" not in vm.log


def test_ram_file_of_the_wrong_size(vm, tmp_path):
    small = tmp_path / "small"
    small.write_bytes(bytes(4096))
    one_line(Session().execute(f"attach qemu {vm.path} ram={small}"), "0x1000 bytes",
             f"{256 << 20:#x}")


def test_ram_that_is_not_a_regular_file(vm, tmp_path):
    """A FIFO as ram= blocked the attach in open() (issue 15); a NUL byte in the socket's name
    was 'internal error: ValueError' (found by the long command fuzz run)."""
    import signal
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    signal.alarm(30)                    # a regression fails instead of blocking the suite
    try:
        one_line(Session().execute(f"attach qemu {vm.path} ram={fifo}"),
                 f"{fifo}: not a memory-backend-file (a FIFO, not a regular file)")
    finally:
        signal.alarm(0)
    assert one_line(Session().execute("attach qemu 'a\x00b' pid=3")) == \
        "attach: 'a\\x00b': file name contains a NUL byte"


def test_vm_gone_keeps_the_last_snapshot(vm):
    s, _ = attach(vm)
    s.run("snapshot")
    s.run("view live")
    vm.kill_client()
    err = one_line(s.execute("ste smmu0 0x8"), "VM gone", "snapshot s1")
    assert s.run("attach status").view == "s1" and err
    assert s.run("ste smmu0 0x8").config == "s1_trans"


def test_cli_attach_runs_a_script(vm, tmp_path, capsys):
    from smmudbg.cli import main
    script = tmp_path / "s.txt"
    script.write_text("ste smmu0 0x8\nsnapshot\n")
    rc = main(["attach", "qemu", vm.path, f"ram={vm.ram_path}", "--run", str(script),
               "--json"])
    assert rc == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["result"]["kind"] for x in lines] == ["ste", "snapshot"]
    assert vm.running and vm.log.count("stop") == vm.log.count("cont") == 1


def test_goto_and_load_leave_the_attach_views(vm, tmp_path):
    s, _ = attach(vm)
    s.run("snapshot")
    s.run("ste smmu0 0x8")
    s.run("goto 0")                        # before the snapshot: the scenario again
    st = s.run("attach status")
    assert st.view is None and st.attached and "nic0" in s.system.devices
    s.run("goto 2")
    assert s.run("attach status").view == "s1"
    s.run(f"save {tmp_path / 'a.json'}")
    s.run("view live")
    del vm.log[:]
    s.run(f"load {tmp_path / 'a.json'}")   # another session: this one detaches first
    st = s.run("attach status")
    assert not st.attached and st.view == "s1" and vm.running and "cont" not in vm.log


def test_every_reply_says_whether_it_was_read_live_or_from_a_snapshot(vm):
    # A reply read from the running guest may catch a structure mid-update: each command's
    # outcome (the JSON line of `run --json`, the `> line` echo of a script) names its view.
    import io
    from smmudbg.script import run_script
    s, _ = attach(vm)
    buf = io.StringIO()
    run_script(["ste smmu0 0x8", "snapshot", "ste smmu0 0x8", "view live", "regs smmu0"], s,
               as_json=True, out=buf)
    views = [json.loads(x)["view"] for x in buf.getvalue().splitlines()]
    assert views == ["live", "snapshot s1", "snapshot s1", "live", "live"]
    buf = io.StringIO()
    run_script(["ste smmu0 0x8"], s, out=buf)
    assert buf.getvalue().splitlines()[0] == "> ste smmu0 0x8   [live]"
    # A session never attached says nothing.
    assert "view" not in Session().execute("smmus").to_json()

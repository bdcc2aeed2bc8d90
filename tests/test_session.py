"""Sessions: save -> load -> replay identical, atomic saves, damaged files rejected with the
existing file untouched, example sessions replay, fuzzing of the loader."""
import glob
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smmudbg.errors import SmmuDbgError
from smmudbg.session import FORMAT, VERSION, Session, SessionError, parse_session, read_session

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = ["walk nic0 0x10000123", "inject unmap vm0-s2 0x41000000", "walk nic0 0x10000123",
          "cmd smmu0 CMD_TLBI_S12_VMALL VMID=1", "walk nic0 0x10000123", "ste nic0",
          "ste smmu0 0x10000", "events smmu0"]


def run(s, lines):
    for line in lines:
        s.execute(line)
    return s


def test_save_load_replay_identical(tmp_path):
    s = run(Session(), SCRIPT)
    p = str(tmp_path / "a.json")
    s.save(p)
    doc = json.load(open(p))
    assert doc["format"] == FORMAT and doc["version"] == VERSION
    assert doc["scenario"] == s.scenario_text
    assert [e["command"] for e in doc["log"]] == SCRIPT
    assert all(len(e["digest"]) == 64 for e in doc["log"])
    assert doc["log"][6]["ok"] is False and "beyond" in doc["log"][6]["error"]
    loaded, report = Session.load(p)
    assert report["identical"] and report["replayed"] == len(SCRIPT)
    assert [e.digest for e in loaded.log] == [e.digest for e in s.log]
    # the rebuilt state is the same state
    assert loaded.run("tlb smmu0").data == s.run("tlb smmu0").data
    assert loaded.run("events smmu0").data == s.run("events smmu0").data


def test_saved_log_keeps_readable_bounded_summaries(tmp_path):
    s = run(Session(), SCRIPT + ["strtab smmu0 all count=40"])
    p = str(tmp_path / "a.json")
    s.save(p)
    doc = json.load(open(p))
    walk = doc["log"][0]["summary"]
    assert walk["kind"] == "walk"
    assert (walk["pa"], walk["ipa"]) == (0x61000123, 0x41000123)     # the scenario's mapping
    assert "summary" not in doc["log"][6]                            # a failed command
    ev = doc["log"][7]["summary"]
    assert ev["kind"] == "events" and ev["entries"][0]["ipa"] == 0x41000000
    big = doc["log"][8]["summary"]                                    # 40 rows: too long
    assert big["kind"] == "strtab" and len(json.dumps(big, separators=(",", ":"))) <= 1024
    assert big["entries"][0]["sid"] == 0 and big["entries"][-1].endswith(" more")
    assert all(len(json.dumps(e.get("summary", {}), separators=(",", ":"))) <= 1024
               for e in doc["log"])
    # a diverging replay shows the recorded summary beside the new result
    doc["log"][0]["digest"] = "0" * 64
    open(p, "w").write(json.dumps(doc))
    r = Session().run(f"replay {p}").data
    assert r["diverged"]["index"] == 1
    assert r["diverged"]["expected"]["summary"]["pa"] == 0x61000123


def test_replay_reports_first_divergence(tmp_path):
    s = run(Session(), SCRIPT[:3])
    p = str(tmp_path / "a.json")
    s.save(p, results=True)
    doc = json.load(open(p))
    doc["log"][2]["digest"] = "0" * 64                  # the recorded result of command 3
    open(p, "w").write(json.dumps(doc))
    r = Session().run(f"replay {p}").data
    assert not r["identical"] and r["differing"] == 1
    d = r["diverged"]
    assert d["index"] == 3 and d["command"] == SCRIPT[2]
    assert d["expected"]["digest"] == "0" * 64 and "result" in d["expected"]
    assert d["got"]["result"]["kind"] == "walk"


def test_goto_is_the_same_state_as_running_to_there():
    s = run(Session(), SCRIPT)
    for n in (0, 2, 3, 5, 7):
        s.goto(n)
        ref = run(Session(), SCRIPT[:n])
        for probe in ("tlb smmu0", "cfgcache smmu0", "events smmu0", "pt vm0-s2"):
            assert s.run(probe).data == ref.run(probe).data, (n, probe)
    assert len(s.log) == len(SCRIPT)       # read-only probes in the past are not recorded


def test_position_survives_save_and_load(tmp_path):
    s = run(Session(), SCRIPT)
    s.goto(2)
    p = str(tmp_path / "p.json")
    s.save(p)
    loaded, _ = Session.load(p)
    assert loaded.position == 2 and len(loaded.log) == len(SCRIPT)


def test_save_is_atomic_and_keeps_nothing_behind(tmp_path):
    s = run(Session(), SCRIPT[:2])
    p = tmp_path / "a.json"
    s.save(str(p))
    s.save(str(p))
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_failed_save_leaves_existing_file(tmp_path, monkeypatch):
    s = run(Session(), SCRIPT[:2])
    p = tmp_path / "a.json"
    s.save(str(p))
    before = p.read_bytes()
    s.execute("walk gpu0 0x40000000")

    def boom(*a, **k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(SessionError, match="No space left"):
        s.save(str(p))
    assert p.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


@pytest.mark.parametrize("damage,msg", [
    (lambda t: t[: len(t) // 2], "not valid JSON"),
    (lambda t: "[]", "expected a JSON object"),
    (lambda t: t.replace('"smmudbg-session"', '"other"'), "format is 'other'"),
    (lambda t: t.replace('"version": 1', '"version": 3'), "version 3 is not supported"),
    (lambda t: t.replace('"version": 1', '"version": "1"'), "version '1' is not supported"),
    (lambda t: t.replace('"ok": true', '"ok": "yes"', 1), "log[0].ok"),
    (lambda t: t.replace('"digest": "', '"digest": "zz', 1), "not a SHA-256"),
    (lambda t: t.replace('"log": [', '"extra": 1, "log": [', 1), "unknown key 'extra'"),
    (lambda t: t.replace('name = \\"default\\"', 'name = [', 1), "damaged session"),
])
def test_damaged_session_rejected_existing_untouched(tmp_path, damage, msg):
    good = run(Session(), SCRIPT[:2])
    keep = tmp_path / "keep.json"
    good.save(str(keep))
    keep_bytes = keep.read_bytes()
    bad = tmp_path / "bad.json"
    text = keep.read_text()
    damaged = damage(text)
    assert damaged != text
    bad.write_text(damaged)
    with pytest.raises(SessionError, match=msg.replace("[", r"\[").replace("(", r"\(")) as e:
        Session.load(str(bad))
    assert "\n" not in str(e.value)
    # through the command: the current session is kept
    cur = run(Session(), ["walk gpu0 0x40000000"])
    out = cur.execute(f"load {bad}")
    assert not out.ok and len(cur.log) == 1
    assert bad.read_text() == damaged and keep.read_bytes() == keep_bytes


@pytest.mark.parametrize("cmd", ["save /tmp/evil.json", "load x.json", "replay x.json",
                                 "goto 0", "expect pa == 1", "nosuch", "help"])
def test_session_commands_in_a_log_are_rejected(tmp_path, cmd):
    doc = run(Session(), SCRIPT[:1]).to_json()
    doc["log"].append({"command": cmd, "digest": "0" * 64, "ok": True})
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    with pytest.raises(SessionError, match="damaged session: log.1..command"):
        Session.load(str(p))
    assert not os.path.exists("/tmp/evil.json") or cmd != "save /tmp/evil.json"


def test_not_utf8_and_missing(tmp_path):
    p = tmp_path / "b.json"
    p.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SessionError, match="not UTF-8"):
        read_session(str(p))
    with pytest.raises(SessionError, match="No such file"):
        read_session(str(tmp_path / "none.json"))


def test_autosave(tmp_path):
    s = Session()
    s.autosave_path = str(tmp_path / "auto.json")
    assert s.autosave(force=True) is None              # nothing to save yet
    s.execute("walk nic0 0x10000123")
    assert s.autosave(interval=3600) is None            # too soon
    assert s.autosave(force=True) == s.autosave_path
    loaded, r = Session.load(s.autosave_path)
    assert r["identical"] and len(loaded.log) == 1


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "sessions", "*.json"))))
def test_example_sessions_replay_identically(path):
    out = Session().execute(f"replay {path}")
    assert out.ok, out.error
    assert out.result.data["identical"], out.result.data["diverged"]
    assert out.result.data["replayed"] > 0


def test_sessions_dir_not_empty():
    assert len(glob.glob(os.path.join(ROOT, "sessions", "*.json"))) >= 3


# -- fuzzing the loader -------------------------------------------------------------------------
_base = None


def _base_doc():
    global _base
    if _base is None:
        s = run(Session(), SCRIPT[:2])
        _base = s.to_json()
    return json.loads(json.dumps(_base))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20)
    | st.floats(allow_nan=False),
    lambda ch: st.lists(ch, max_size=4) | st.dictionaries(st.text(max_size=8), ch, max_size=4),
    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from(["format", "version", "created", "smmudbg", "scenario", "log",
                            "position", "scenario_where", "junk"]),
       value=json_values)
def test_fuzz_loader_top_level(key, value):
    doc = _base_doc()
    doc[key] = value
    try:
        parse_session(json.dumps(doc))
    except SmmuDbgError as e:
        assert "\n" not in str(e)


@settings(max_examples=300, deadline=None)
@given(i=st.integers(0, 1), key=st.sampled_from(["command", "digest", "ok", "error", "result",
                                                  "x"]), value=json_values)
def test_fuzz_loader_log_entries(i, key, value):
    doc = _base_doc()
    doc["log"][i][key] = value
    try:
        parse_session(json.dumps(doc))
    except SmmuDbgError as e:
        assert "\n" not in str(e)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_fuzz_loader_bytes(tmp_path_factory, data):
    p = tmp_path_factory.mktemp("f") / "x.json"
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    with pytest.raises(SmmuDbgError):
        read_session(str(p))


@settings(max_examples=100, deadline=None)
@given(cmds=st.lists(st.text(max_size=40), max_size=4))
def test_fuzz_loaded_commands_never_escape(tmp_path_factory, cmds):
    """A well-formed file with arbitrary command strings: loading runs them as smmudbg commands
    only, and nothing but SmmuDbgError comes out."""
    doc = _base_doc()
    doc["log"] = [{"command": c, "digest": "0" * 64, "ok": True} for c in cmds
                  if "\n" not in c]
    doc["position"] = len(doc["log"])
    p = tmp_path_factory.mktemp("c") / "c.json"
    p.write_text(json.dumps(doc))
    try:
        Session.load(str(p))
    except SmmuDbgError as e:
        assert "\n" not in str(e)


def test_save_never_replaces_a_node_that_is_not_a_regular_file(tmp_path):
    # A save renames a temporary file over its target: over /dev/null (as root) that would
    # destroy the device node. Anything there that is not a regular file is refused and left.
    import stat as _stat
    from smmudbg.session import Session, SessionError
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    d = tmp_path / "dir.json"
    d.mkdir()
    for target in (fifo, d):
        with pytest.raises(SessionError, match="not a regular file"):
            Session().save(str(target))
    assert _stat.S_ISFIFO(os.stat(fifo).st_mode) and d.is_dir()
    real = tmp_path / "real.json"
    real.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    Session().save(str(link))                        # writes through the link, keeps the link
    assert link.is_symlink() and '"scenario"' in real.read_text()

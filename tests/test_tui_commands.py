"""What the UI reads beyond the plain views: `strtab` rows carry legal/problem (legality per row) and `ste/cd ...
all` (every field in the bit view). Expected values come from the default scenario's TOML
(smmudbg/data/default.toml): gpu0 at SID 0x200 is stage 2 only, legacy0 at 0x300 bypass,
quarantine0 at 0x301 abort, nic0 at 0x8 nested with S1CDMax 2 (linear CD table, 4 CDs)."""
from smmudbg.session import Session


def ok(s, line):
    out = s.execute(line)
    assert out.ok, out.error
    return out.result.to_json()


def test_strtab_legal_rows():
    s = Session()
    rows = ok(s, "strtab smmu0 sid=0x2ff count=3 all")["entries"]
    assert [r["sid"] for r in rows] == [0x2ff, 0x300, 0x301]
    assert rows[0]["legal"] is False and "V=0" in rows[0]["problem"]   # no stream at 0x2ff
    assert rows[1]["legal"] is True and rows[1]["problem"] is None     # bypass
    assert rows[2]["legal"] is True                                    # abort is legal
    ok(s, "inject invalidate-ste gpu0")
    row = ok(s, "strtab smmu0 sid=0x200 count=1")["entries"]
    assert row[0]["sid"] == 0x300                                      # V=0 is not listed
    row = ok(s, "strtab smmu0 sid=0x200 count=1 all")["entries"][0]
    assert row["legal"] is False and "V=0" in row["problem"]
    # The legal / illegal filters keep only the rows the SMMU accepts / rejects.
    assert all(r["legal"] for r in ok(s, "strtab smmu0 all count=8 legal")["entries"])
    bad = ok(s, "strtab smmu0 sid=0x200 all count=2 illegal")["entries"]
    assert bad[0]["sid"] == 0x200 and not any(r["legal"] for r in bad)


def test_ste_cd_all_fields():
    s = Session()
    few = {r["field"] for r in ok(s, "ste gpu0")["rows"]}
    every = {r["field"]: r for r in ok(s, "ste gpu0 all")["rows"]}
    assert "S1CDMax" not in few and every["S1CDMax"]["value"] == 0     # stage 2 only: no CDs
    assert few < set(every)
    assert every["Config"]["bits"] == "3:1" and every["Config"]["dword"] == 0
    cd = {r["field"]: r for r in ok(s, "cd nic0 1 all")["rows"]}
    assert cd["ASID"]["value"] == 2 and "EPD1" in cd

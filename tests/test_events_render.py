"""`events` in the REPL: each event's explanation is shown below its row (issue 14), within
80 columns, and a pipe gets it unwrapped."""
from smmudbg.render import render_text
from smmudbg.session import Session


def faulted():
    s = Session()
    # nic0 (default scenario) maps nothing at IOVA 0x1234_5000: a translation fault, recorded.
    assert s.execute("walk nic0 0x12345000").ok
    assert s.execute("walk gpu0 0x90000000 access=exec priv").ok
    return s


def test_each_event_row_is_followed_by_its_explanation():
    s = faulted()
    out = s.execute("events smmu0")
    ents = out.result.to_json()["entries"]
    assert len(ents) == 2 and all(e["explanation"] for e in ents)
    text = render_text(out.result, width=80)
    lines = text.splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [i for i, line in enumerate(lines) if line.startswith(("0 ", "1 "))]
    assert len(rows) == 2
    for i, e in zip(rows, ents):
        # The row, then "why:" with the explanation's start on the next line.
        assert lines[i + 1].strip().startswith("why: " + e["explanation"][:20])
    # The whole explanation is there, wrapped onto the lines below the row.
    below = " ".join(x.strip() for x in lines[rows[0] + 1:rows[1]])
    assert ents[0]["explanation"] in below.removeprefix("why: ")


def test_piped_output_keeps_each_explanation_on_one_line():
    s = faulted()
    text = render_text(s.execute("events smmu0").result, width=None)
    ents = s.execute("events smmu0").result.to_json()["entries"]
    for e in ents:
        assert f"  why: {e['explanation']}" in text.splitlines()


def test_all_records_carry_explanations_too():
    s = faulted()
    out = s.execute("events smmu0 all")
    ents = out.result.to_json()["entries"]
    assert [e["explanation"] is not None for e in ents] == [True, True]
    text = render_text(out.result, width=80)
    assert text.count("why: ") == 2 and max(len(x) for x in text.splitlines()) <= 80

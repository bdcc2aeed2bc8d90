"""Re-record the example sessions in sessions/ after an intended change of command results.

Each session's commands are re-run on its embedded scenario and saved with fresh digests and
result summaries. It prints which commands' results changed; review `git diff sessions/` (the
summaries show what changed) before committing: replay tests exist to catch unintended changes.

    python scripts/rerecord_sessions.py [sessions/*.json]
"""
import glob
import sys

from smmudbg.session import Session, read_session


def rerecord(path):
    """Re-record one session file; returns [(index, command)] of the entries whose result or
    status changed."""
    doc = read_session(path)
    s = Session(doc["scenario"], doc.get("scenario_where", "scenario"), path=path)
    changed = []
    for i, e in enumerate(doc["log"], 1):
        out = s.execute(e["command"])
        if out.digest != e["digest"] or out.ok != e["ok"]:
            changed.append((i, e["command"]))
    s.save(path, results=any("result" in e for e in doc["log"]))
    return len(doc["log"]), changed


if __name__ == "__main__":
    for p in sys.argv[1:] or sorted(glob.glob("sessions/*.json")):
        n, changed = rerecord(p)
        print(f"{p}: {n} commands re-recorded, {len(changed)} results changed")
        for i, line in changed[:20]:
            print(f"  #{i} {line}")
        if len(changed) > 20:
            print(f"  ... {len(changed) - 20} more")

"""Re-record the example sessions in sessions/ after an intended change of command results.

Each session's commands are re-run on its embedded scenario and saved with fresh digests.
Review `git diff sessions/` (and why results changed) before committing: replay tests exist to
catch unintended changes.

    python scripts/rerecord_sessions.py [sessions/*.json]
"""
import glob
import json
import sys

from smmudbg.session import Session, read_session


def rerecord(path):
    doc = read_session(path)
    s = Session(doc["scenario"], doc.get("scenario_where", "scenario"), path=path)
    for e in doc["log"]:
        s.execute(e["command"])
    s.save(path, results=any("result" in e for e in doc["log"]))
    return len(doc["log"])


if __name__ == "__main__":
    for p in sys.argv[1:] or sorted(glob.glob("sessions/*.json")):
        print(f"{p}: {rerecord(p)} commands re-recorded")

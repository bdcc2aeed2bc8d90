"""Long session work for the UI's workers: replaying a log one command at a time so a progress
bar can follow. Each command still goes through Session.execute (the registry) on a fresh
session built from the scenario, exactly as `replay` does; the report has replay's shape."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..session import Entry, Session


def replay_source(session: Session, path: str | None):
    """(fresh session, entries) for replaying path, or this session's own log."""
    # imported here: the UI imports this module before its first frame, the model after it
    from ..session import Entry, Session, entries_of, read_session
    if path is None:
        fresh = Session(session.scenario_text, session.where)
        entries = [Entry(e.command, e.digest, e.ok, error=e.error, result=e.result,
                         summary=e.summary) for e in session.log]
    else:
        doc = read_session(path)
        fresh = Session(doc["scenario"], doc.get("scenario_where", path))
        entries = entries_of(doc)
    return fresh, entries


def replay_steps(fresh: Session, entries: list[Entry], progress=None) -> dict:
    """Session.replay_log one entry at a time, calling progress(done, total) after each."""
    first, differing = None, 0
    for i, e in enumerate(entries):
        r = fresh.replay_log([e])
        if not r["identical"]:
            differing += 1
            if first is None:
                first = dict(r["diverged"], index=i + 1)
        if progress:
            progress(i + 1, len(entries))
    return {"replayed": len(entries), "identical": first is None, "differing": differing,
            "diverged": first}

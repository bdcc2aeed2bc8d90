"""The UI's one door to the system: the command registry, through the Session.

Two ways through it, nothing else:
- run(line): a user action (typed, chosen from a menu, bound to a key). It goes through
  Session.execute, so it is recorded in the command log exactly as if typed in the REPL, and
  replays the same.
- query(line): what a view shows (a page of the stream table, an STE for the bit view). It
  parses and calls the registry like run() but is not recorded: only read-only (pure) commands
  are accepted, so a view can never change the state behind the user's back.

The lock keeps a worker thread (replay, goto, load) and the UI thread from running two
commands at once on the same Session.

The registry (and with it the model) is imported on first use, not with the UI: the UI's
first frame is on the terminal before the model is imported, which the loader does in a
worker (registry()).
"""
from __future__ import annotations

import threading

from ..errors import SmmuDbgError


def registry():
    """The module of the command registry (REGISTRY, call), imported when first needed."""
    from ..commands import registry as r
    return r


class QueryError(SmmuDbgError):
    """A view asked for something the registry refused (one line)."""


class Bridge:
    def __init__(self, session):
        self.session = session
        self.lock = threading.RLock()

    def run(self, line: str):
        """Run a user's command line (recorded). Returns the session Outcome."""
        if self.session is None:
            raise QueryError("the model is still loading")
        with self.lock:
            out = self.session.execute(line)
            self.session.autosave()
            return out

    def query(self, line: str) -> dict:
        """Run a read-only command for a view (not recorded). Returns the result's JSON form;
        raises QueryError with the registry's one-line error (also while the model is still
        loading: the loader's worker imports the registry)."""
        if self.session is None:
            raise QueryError("the model is still loading")
        with self.lock:
            try:
                r = registry()
                cmd, kwargs = r.REGISTRY.parse(self.session, line)
                if not cmd.pure:
                    raise QueryError(f"{cmd.name}: not a read-only command")
                return r.call(self.session, cmd, kwargs).to_json()
            except SmmuDbgError as e:
                raise QueryError(str(e)) from None
            except Exception as e:          # a view must never crash the UI
                raise QueryError(f"internal error: {type(e).__name__}: {e}") from None

    def try_query(self, line: str) -> dict | None:
        try:
            return self.query(line)
        except QueryError:
            return None

    def complete(self, text: str) -> list[str]:
        if self.session is None:        # still loading: no candidates (and no import here)
            return []
        try:
            return registry().REGISTRY.complete(self.session, text)
        except Exception:
            return []

    @property
    def title(self) -> str:
        s = self.session
        pos = f" @{s.position}/{len(s.log)}" if s.position != len(s.log) else ""
        return f"{s.system_name}{pos}"

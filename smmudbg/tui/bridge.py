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
"""
from __future__ import annotations

import threading

from ..commands.registry import REGISTRY, call
from ..errors import SmmuDbgError


class QueryError(SmmuDbgError):
    """A view asked for something the registry refused (one line)."""


class Bridge:
    def __init__(self, session):
        self.session = session
        self.lock = threading.RLock()

    def run(self, line: str):
        """Run a user's command line (recorded). Returns the session Outcome."""
        with self.lock:
            out = self.session.execute(line)
            self.session.autosave()
            return out

    def query(self, line: str) -> dict:
        """Run a read-only command for a view (not recorded). Returns the result's JSON form;
        raises QueryError with the registry's one-line error."""
        with self.lock:
            try:
                cmd, kwargs = REGISTRY.parse(self.session, line)
                if not cmd.pure:
                    raise QueryError(f"{cmd.name}: not a read-only command")
                return call(self.session, cmd, kwargs).to_json()
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
        try:
            return REGISTRY.complete(self.session, text)
        except Exception:
            return []

    @property
    def title(self) -> str:
        s = self.session
        pos = f" @{s.position}/{len(s.log)}" if s.position != len(s.log) else ""
        return f"{s.system_name}{pos}"

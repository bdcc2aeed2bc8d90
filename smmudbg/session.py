"""A debugging session: the system, the command log with result digests, save/load/replay and
time travel.

Every command a front end runs goes through Session.execute(line): the registry parses and
runs it, and the session records it (the command text, a SHA-256 digest of its result's
canonical JSON, whether it succeeded, and a size-bounded summary of the result that a saved
file keeps so a re-recorded session can be read in a diff). A saved session is a versioned
JSON document that embeds the scenario text and that log; loading one only parses JSON
(nothing in the file is executed as code) and rebuilds the state by re-running the logged
commands on a fresh System. A session attached to a running QEMU (smmudbg/attach/,
docs/attach.md) records only what can be replayed: its snapshots, saved beside the file
(FILE.snapshots, referenced by name and SHA-256 from a version-2 session), and the commands
run on them.

Time travel: the session keeps checkpoints of the whole system (model/checkpoint.py: memory
snapshots with copy-on-write pages and the model objects' state) at position 0, every
CHECKPOINT_EVERY log positions and at each goto target. `goto N` restores the nearest checkpoint
at or before N (or continues from the current position when that is nearer) and re-runs the
logged commands after it (skipping commands that only read state); where no checkpoint can be
taken (walker caches that cannot be saved) it rebuilds the system from the scenario and re-runs
the first N. The rest of the log is kept, so `goto` can go forward again until a command that
changes state is run, which drops the entries (and checkpoints) after the current position.
Read-only commands run in the past are not recorded.
"""
from __future__ import annotations

import datetime as _dt
import gc
import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass

from . import __version__
from .errors import SmmuDbgError, brief
from .model import checkpoint as ckpt
from .model import scenario as sc
from .model.system import System
from .textfile import display_name, read_text

FORMAT = "smmudbg-session"
VERSION = 1
VERSION_SNAPSHOTS = 2           # a session with a snapshot file (attach, issue 17)
SNAPSHOTS_SUFFIX = ".snapshots"
MAX_SESSION_BYTES = 64 << 20
MAX_COMMAND_CHARS = 4096
CHECKPOINT_EVERY = 128          # log positions between automatic checkpoints
MAX_CHECKPOINTS = 128           # beyond this, every second one is dropped (spacing doubles)


class SessionError(SmmuDbgError):
    """A session file that cannot be saved, loaded or replayed."""


def release() -> None:
    """Free a system that was just dropped now, not at some later collection: a System and
    its parts refer to each other (platform, MMIO callbacks), so only the cycle collector
    frees them, and each holds its modeled RAM as an address-space reservation (1 GiB for the
    default scenario). Without this, a few `load`s or `replay`s in a row fail under an
    address-space limit (`ulimit -v`)."""
    gc.collect()


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def digest(result_json) -> str:
    return hashlib.sha256(canonical(result_json).encode()).hexdigest()


SUMMARY_CHARS = 1024


def summarize(result_json: dict, limit: int = SUMMARY_CHARS) -> dict:
    """A readable, size-bounded copy of a result's JSON for the session file, so a re-recorded
    session can be reviewed in a diff: the whole result when it is small, else lists cut to
    their first entries (with a "... N more" string), wide objects and deep parts replaced by
    their size. Top-level values that are not lists or objects are always kept."""
    for items, depth in ((16, 8), (8, 5), (4, 4), (2, 3), (1, 2), (0, 1)):
        out = _shrink(result_json, items, depth, top=True)
        if len(canonical(out)) <= limit:
            return out
    return {"kind": result_json.get("kind"), "summary": "too large to summarize"}


def _shrink(x, items: int, depth: int, top: bool = False):
    if isinstance(x, dict):
        if depth <= 0 or not top and len(x) > 4 * max(items, 1):
            return f"<{len(x)} fields>"
        return {k: _shrink(v, items, depth - 1) for k, v in x.items()}
    if isinstance(x, list):
        if depth <= 0:
            return f"<{len(x)} entries>"
        out = [_shrink(v, items, depth - 1) for v in x[:items]]
        if len(x) > items:
            out.append(f"... {len(x) - items} more")
        return out
    if isinstance(x, str) and len(x) > 160:
        return x[:160] + f"... ({len(x)} chars)"
    return x


@dataclass
class Entry:
    command: str
    digest: str
    ok: bool
    pure: bool = False          # a read-only command (not stored: recomputed from the registry)
    error: str | None = None    # the error line of a failed command
    result: dict | None = None  # the result itself (kept in memory; saved with `save F results`)
    summary: dict | None = None  # a bounded readable copy of the result, as read from a file

    def to_json(self, results: bool = False) -> dict:
        """The log entry as saved: command, digest, ok, the error of a failed command, and a
        summary of the result (summarize(): readable next to its digest) or, with results,
        the whole result."""
        out = {"command": self.command, "digest": self.digest, "ok": self.ok}
        if self.error is not None:
            out["error"] = self.error
        if results and self.result is not None:
            out["result"] = self.result
        else:
            summary = summarize(self.result) if self.result is not None else self.summary
            if summary is not None:
                out["summary"] = summary
        return out


@dataclass
class Outcome:
    """What one executed line produced: the result (or None) and the error line (or None)."""
    command: str
    result: object = None        # registry.Result
    error: str | None = None
    digest: str | None = None    # of the result's canonical JSON (or of the error)
    view: str | None = None      # attached sessions: "live" or "snapshot NAME" (what was read)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        v = {"view": self.view} if self.view else {}
        if self.ok:
            return {"command": self.command, "ok": True, **v, "result": self.result.to_json()}
        return {"command": self.command, "ok": False, **v, "error": self.error}


class Session:
    """The state a front end works on. `system` is rebuilt on load/goto: look it up each time."""

    def __init__(self, scenario_text: str | None = None, where: str = "scenario",
                 path: str | None = None):
        from .commands import registry  # noqa: F401  (registers every command)
        if scenario_text is None:
            scenario_text, where = sc.builtin("default"), "built-in default scenario"
        self.scenario_text = scenario_text
        self.where = where
        self.spec_json = canonical(sc.parse(scenario_text, where))
        self.system = self._fresh_system()
        self.log: list[Entry] = []
        self.position = 0               # state = after the first `position` log entries
        self.last = None                # the last Outcome (for `expect`)
        self.path = path                # where `save` writes by default
        self.autosave_path: str | None = None
        self.dirty = False
        self.keep_results = True        # keep each result in memory (for `save F results`)
        self._last_autosave = time.monotonic()
        self._checkpoints: dict[int, ckpt.Checkpoint] = {}    # log position -> checkpoint
        self._latest: ckpt.Checkpoint | None = None            # the last one taken
        self._checkpoint()

    @classmethod
    def from_file(cls, scenario_path: str) -> "Session":
        return cls(read_text(scenario_path, SessionError, "scenario file"), scenario_path)

    @property
    def system_name(self) -> str:
        """The name of the system now loaded (the scenario's, or an import's)."""
        return getattr(self.system, "name", None) or "scenario"

    def _fresh_system(self) -> System:
        return System(json.loads(self.spec_json))

    # -- running commands ---------------------------------------------------------------------
    def execute(self, line: str) -> Outcome:
        """Run one command line. Errors become Outcome.error (one line); internal errors are
        reported as 'internal error: ...'. Logged commands are recorded."""
        from .commands.registry import REGISTRY, call
        line = line.strip()
        try:
            cmd, kwargs = REGISTRY.parse(self, line)
        except SmmuDbgError as e:
            out = Outcome(line, error=str(e))
            self.last = out
            return out
        except Exception as e:      # a parser bug must not become a traceback
            out = Outcome(line, error=f"internal error: {type(e).__name__}: {e}")
            self.last = out
            return out
        attach = getattr(self, "attach_state", None)     # set by `attach qemu` (issue 17)
        before = self.system
        try:
            if attach is not None:
                attach.before(self)     # live view: registers read again, view rebuilt
            result = call(self, cmd, kwargs)
            out = Outcome(line, result=result)
            body = result.to_json()
        except SmmuDbgError as e:
            out = Outcome(line, error=str(e))
            body = {"error": out.error}
        except Exception as e:
            out = Outcome(line, error=f"internal error: {type(e).__name__}: {e}")
            body = {"error": out.error}
        replaced = self.system is not before and attach is None
        before = None
        if replaced:            # (load, import qemu, goto: the old system is garbage now; an
            release()           # attached session rebuilds its live view on every command)
        out.digest = digest(body)
        if attach is not None and attach.view:
            # A reply read from a running guest may catch a structure mid-update: say which.
            out.view = "live" if attach.is_live else f"snapshot {attach.view}"
        live = attach is not None and attach.is_live
        if attach is not None and attach.unlogged:
            live = True                 # the command read the live VM (diff live)
        if cmd.logged and not live and not (cmd.pure and self.position < len(self.log)):
            # (a read-only command while looking at the past is not recorded: recording it
            # would drop the commands after this position; nor is one on a live guest: it
            # cannot be replayed)
            logged_line = attach.log_as if attach is not None and attach.log_as else line
            self._record(Entry(logged_line, out.digest, out.ok, cmd.pure, out.error,
                               body if out.ok and self.keep_results else None))
        if cmd.name != "expect":
            self.last = out
        return out

    def run(self, line: str):
        """execute() that raises the error instead of returning it (for Python callers)."""
        out = self.execute(line)
        if not out.ok:
            raise SmmuDbgError(out.error)
        return out.result

    def _record(self, entry: Entry) -> None:
        if self.position < len(self.log):
            del self.log[self.position:]
            for p in [p for p in self._checkpoints if p > self.position]:
                del self._checkpoints[p]        # they belong to the dropped entries
        self.log.append(entry)
        self.position = len(self.log)
        self.dirty = True
        if self.position % CHECKPOINT_EVERY == 0 and not entry.pure:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Checkpoint the state at the current position (if it can be restored exactly)."""
        if self.position not in self._checkpoints:
            cp = ckpt.capture(self.system, self._latest)
            if cp is not None:
                self._checkpoints[self.position] = self._latest = cp
                if len(self._checkpoints) > MAX_CHECKPOINTS:
                    # Bound the memory held (each holds copies of the caches and the pages
                    # written since the previous one): keep 0, the newest and every second.
                    ps = sorted(self._checkpoints)
                    for p in ps[1:-1:2]:
                        del self._checkpoints[p]

    def load_file(self, path: str) -> dict:
        """`load`: become the session saved in path (the current one is kept if the file is
        rejected). Returns the replay report."""
        new, report = type(self).load(path)
        self.adopt(new)
        return report

    def replay_file(self, path: str | None = None) -> dict:
        """`replay`: re-run a session file's log (default: this session's) on a fresh system
        from its scenario and compare results. This session is not changed."""
        if path is None:
            fresh = type(self)(self.scenario_text, self.where)
            st = getattr(self, "attach_state", None)
            if st is not None and st.store.snapshots:     # offline: replays take these
                from .attach.view import state_of
                state_of(fresh).store = st.store
            entries = [Entry(e.command, e.digest, e.ok, error=e.error, result=e.result,
                             summary=e.summary) for e in self.log]
        else:
            doc = read_session(path)
            fresh = type(self)(doc["scenario"], doc.get("scenario_where", path))
            fresh._load_snapshots(doc, path)
            entries = entries_of(doc)
        try:
            return fresh.replay_log(entries)
        finally:
            del fresh
            release()

    def adopt(self, other: "Session") -> None:
        """Become `other` (after `load`), keeping this session's autosave file."""
        keep = self.autosave_path
        mine = self.__dict__.pop("attach_state", None)
        if mine is not None and mine is not other.__dict__.get("attach_state"):
            mine.close()        # an attached session loads another: leave its VM as it was
        self.__dict__.update(other.__dict__)
        if getattr(self, "attach_state", None) is not None:
            self.attach_state.rebind(self)
        self.autosave_path = keep

    # -- time travel --------------------------------------------------------------------------
    def goto(self, n: int) -> int:
        """Make the state the one after the first n logged commands: from the nearest
        checkpoint at or before n, or from here when going forward is nearer, re-running the
        commands in between. Returns how many commands ran."""
        if n < 0 or n > len(self.log):
            raise SessionError(f"goto: {n} is outside the log (0..{len(self.log)})")
        from .commands.registry import REGISTRY, call
        old = self.system
        best = max((p for p in self._checkpoints if p <= n), default=None)
        if self.position <= n and (best is None or best <= self.position):
            start = self.position                   # forward: continue from here
        elif best is not None:
            cp = self._checkpoints[best]            # restore the nearest checkpoint
            cp.restore()
            self.system = cp.system
            start = best
        else:
            self.system = self._fresh_system()      # no checkpoint: rebuild, then re-run
            start = 0
        ran = 0
        for i, e in enumerate(self.log[start:n]):
            if e.pure:
                continue
            try:
                cmd, kwargs = REGISTRY.parse(self, e.command)
            except SmmuDbgError as err:
                if start == 0 and i == 0 and ran == 0 and best is None:
                    self.system = old
                    raise SessionError(f"goto: cannot re-run {e.command!r}: {err}") from None
                self.position = start + i
                raise SessionError(f"goto: stopped at #{start + i + 1}: cannot re-run "
                                   f"{e.command!r}: {err}") from None
            try:
                call(self, cmd, kwargs)
            except Exception:       # it failed when it was logged too: same effect again
                pass
            ran += 1
            if (start + i + 1) % CHECKPOINT_EVERY == 0:
                self.position = start + i + 1
                self._checkpoint()
        self.position = n
        self.last = None
        self._checkpoint()                          # coming back here is then immediate
        return ran

    # -- replay -------------------------------------------------------------------------------
    def replay_log(self, entries: list[Entry]) -> dict:
        """Run every entry on this (fresh) session, comparing result digests. Returns a report:
        {replayed, identical, differing (count), diverged: None | the first divergence with
        the command, its position and both results (the recorded one as far as the file
        holds it: its digest, and its result or error when saved)}."""
        first, differing = None, 0
        for i, e in enumerate(entries):
            out = self.execute(e.command)
            d = out.digest
            if d is None:
                d = digest({"error": out.error})
            if d != e.digest or out.ok != e.ok:
                body = out.result.to_json() if out.ok else {"error": out.error}
                differing += 1
                if first is None:
                    expected = {"ok": e.ok, "digest": e.digest}
                    if e.error is not None:
                        expected["error"] = e.error
                    if e.result is not None:
                        expected["result"] = e.result
                    elif e.summary is not None:
                        expected["summary"] = e.summary
                    first = {"index": i + 1, "command": e.command, "expected": expected,
                             "got": {"ok": out.ok, "digest": d, "result": body}}
        return {"replayed": len(entries), "identical": first is None, "differing": differing,
                "diverged": first}

    # -- save / load --------------------------------------------------------------------------
    def to_json(self, results: bool = False, snapshots: dict | None = None) -> dict:
        extra = {"snapshots": snapshots} if snapshots else {}
        return {"format": FORMAT, "version": VERSION_SNAPSHOTS if snapshots else VERSION,
                **extra,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "smmudbg": __version__, "scenario": self.scenario_text,
                "scenario_where": self.where, "position": self.position,
                "log": [e.to_json(results) for e in self.log]}

    def save(self, path: str | None = None, results: bool = False) -> str:
        """Write the session to path (atomically). With results, each entry keeps its result
        too, so a replay that diverges can show the recorded result beside the new one."""
        path = path or self.path
        if not path:
            raise SessionError("save: name a file (save FILE)")
        snaps = self._save_snapshots(path)
        write_atomic(path, json.dumps(self.to_json(results, snaps), indent=1) + "\n")
        self.path = path
        self.dirty = False
        return path

    def autosave(self, force: bool = False, interval: float = 60.0) -> str | None:
        """Save to autosave_path if there is something new and (unless force) at least
        `interval` seconds passed since the last autosave. The REPL calls this on exit (force)
        and from time to time. Returns the path written, or None."""
        if not self.autosave_path or not (self.dirty or force and self.log):
            return None
        now = time.monotonic()
        if not force and now - self._last_autosave < interval:
            return None
        snaps = self._save_snapshots(self.autosave_path)
        write_atomic(self.autosave_path, json.dumps(self.to_json(False, snaps), indent=1) + "\n")
        self._last_autosave = now
        return self.autosave_path

    def _save_snapshots(self, path: str) -> dict | None:
        """An attached session's snapshots go to a sidecar file beside the session (written
        first, atomically); the session references it by name and digest."""
        st = getattr(self, "attach_state", None)
        if st is None or not st.store.snapshots:
            return None
        text = st.store.to_text()
        side = path + SNAPSHOTS_SUFFIX
        write_atomic(side, text)
        return {"file": os.path.basename(side),
                "sha256": hashlib.sha256(text.encode()).hexdigest()}

    def _load_snapshots(self, doc: dict, path: str) -> None:
        ref = doc.get("snapshots")
        if not ref:
            return
        from .attach.store import MAX_SIDECAR_BYTES, Store
        from .attach.view import state_of
        side = os.path.join(os.path.dirname(os.path.abspath(path)), ref["file"])
        text = read_text(side, SessionError, "snapshot file", MAX_SIDECAR_BYTES)
        if hashlib.sha256(text.encode()).hexdigest() != ref["sha256"]:
            raise SessionError(f"{side}: the snapshot file does not match the session (its "
                               f"digest differs: saved by another session?)")
        state_of(self).store = Store.from_text(text, side)

    @classmethod
    def load(cls, path: str) -> tuple["Session", dict]:
        """Read and check a session file, rebuild its state. Returns (session, replay report)."""
        doc = read_session(path)
        s = cls(doc["scenario"], doc.get("scenario_where", f"{path}: scenario"), path=path)
        s._load_snapshots(doc, path)
        entries = entries_of(doc)
        report = s.replay_log(entries)
        pos = doc.get("position", len(entries))
        if pos != len(s.log):
            s.goto(min(pos, len(s.log)))
        s.dirty = False
        s.path = path
        return s, report


# ---------------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------------
def default_autosave_path() -> str:
    """Where front ends autosave: $SMMUDBG_AUTOSAVE, else
    $XDG_STATE_HOME/smmudbg/last-session.json (XDG_STATE_HOME defaults to ~/.local/state)."""
    env = os.environ.get("SMMUDBG_AUTOSAVE")
    if env:
        return env
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "state")
    return os.path.join(base, "smmudbg", "last-session.json")


TMP_PREFIX, TMP_SUFFIX = ".smmudbg-", ".tmp"
STALE_AFTER = 600       # seconds: a temporary without a pid in its name older than this is stale


def remove_stale_temporaries(directory: str) -> list[str]:
    """Remove the temporaries write_atomic left in directory when its process was killed
    mid-save: `.smmudbg-PID-XXXX.tmp` whose process is gone, and pid-less `.smmudbg-XXXX.tmp` (older versions) older than
    STALE_AFTER. Only regular files of that pattern are touched. Returns the names removed."""
    removed = []
    try:
        names = os.listdir(directory)
    except (OSError, ValueError):
        return removed
    now = time.time()
    for name in names:
        if not (name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX)):
            continue
        middle = name[len(TMP_PREFIX):-len(TMP_SUFFIX)]
        pid, dash, _ = middle.partition("-")
        full = os.path.join(directory, name)
        try:
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                continue
            if dash and pid.isdigit():
                if int(pid) == os.getpid() or _alive(int(pid)):
                    continue
            elif now - st.st_mtime < STALE_AFTER:
                continue
            os.unlink(full)
            removed.append(name)
        except OSError:
            continue
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True         # (someone else's process, or not a pid: leave its file alone)
    return True


def _regular_target(path: str) -> str:
    """The file a save replaces: path itself, or the regular file a symlink names. Anything
    else that exists there (a device such as /dev/null, a FIFO, a directory) is refused: the
    rename of a save would replace the node itself, and as root that destroys it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return path
    except OSError as e:
        raise SessionError(f"{display_name(path)}: cannot write: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SessionError(f"{display_name(path)}: cannot write: not a regular file")
    return os.path.realpath(path) if os.path.islink(path) else path


def write_atomic(path: str, text: str) -> None:
    """Write text to path atomically: a temporary file in the same directory, fsync, rename,
    fsync the directory. A failure leaves any existing file untouched."""
    if not path or "\0" in path:
        raise SessionError(f"{display_name(path)}: cannot write: "
                           + ("file name contains a NUL byte" if path else "empty file name"))
    path = _regular_target(path)
    d = os.path.dirname(os.path.abspath(path)) or "."
    remove_stale_temporaries(d)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=TMP_SUFFIX,
                                   dir=d)
    except OSError as e:
        raise SessionError(f"{display_name(path)}: cannot write: {e.strerror}") from None
    try:
        try:
            mode = os.stat(path).st_mode & 0o777         # keep an existing file's mode
        except OSError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise SessionError(f"{display_name(path)}: cannot write: {e.strerror}") from None
    try:
        dfd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


_TOP = {"format": str, "version": int, "created": str, "smmudbg": str, "scenario": str,
        "log": list}
_OPTIONAL = {"scenario_where": str, "position": int}
_ENTRY = {"command": str, "digest": str, "ok": bool}
_ENTRY_OPTIONAL = {"error": str, "result": dict, "summary": dict}


def parse_session(text: str, where: str = "session") -> dict:
    """Check a session document (JSON text). Raises SessionError with one line."""
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        msg = str(e).split("\n")[0] if isinstance(e, ValueError) else "nested too deeply"
        raise SessionError(f"{where}: not a session file (not valid JSON: {msg})") from None
    if not isinstance(doc, dict):
        raise SessionError(f"{where}: not a session file (expected a JSON object)")
    if doc.get("format") != FORMAT:
        raise SessionError(f"{where}: not a session file (format is {brief(doc.get('format'))}, "
                           f"expected {FORMAT!r})")
    v = doc.get("version")
    if type(v) is not int or v not in (VERSION, VERSION_SNAPSHOTS):
        raise SessionError(f"{where}: session version {brief(v, True)} is not supported "
                           f"(this smmudbg reads versions {VERSION} and {VERSION_SNAPSHOTS})")
    for key, typ in _TOP.items():
        if key not in doc:
            raise SessionError(f"{where}: damaged session: missing {key!r}")
        if type(doc[key]) is not typ:
            raise SessionError(f"{where}: damaged session: {key!r} is not a {typ.__name__}")
    for key, typ in _OPTIONAL.items():
        if key in doc and type(doc[key]) is not typ:
            raise SessionError(f"{where}: damaged session: {key!r} is not a {typ.__name__}")
    if v == VERSION_SNAPSHOTS:
        ref = doc.get("snapshots")
        if not (isinstance(ref, dict) and set(ref) == {"file", "sha256"}
                and isinstance(ref["file"], str) and isinstance(ref["sha256"], str)
                and ref["file"] and os.path.basename(ref["file"]) == ref["file"]
                and ref["file"] not in (".", "..")):
            raise SessionError(f"{where}: damaged session: 'snapshots' is not "
                               f"{{file: a name beside the session, sha256}}")
    elif "snapshots" in doc:
        raise SessionError(f"{where}: damaged session: unknown key 'snapshots'")
    extra = set(doc) - set(_TOP) - set(_OPTIONAL) - {"snapshots"}
    if extra:
        raise SessionError(f"{where}: damaged session: unknown key {brief(sorted(extra)[0])}")
    for i, e in enumerate(doc["log"]):
        if not isinstance(e, dict):
            raise SessionError(f"{where}: damaged session: log[{i}] is not an object")
        for key, typ in _ENTRY.items():
            if type(e.get(key)) is not typ:
                raise SessionError(f"{where}: damaged session: log[{i}].{key} is missing or "
                                   f"not a {typ.__name__}")
        for key, typ in _ENTRY_OPTIONAL.items():
            if key in e and type(e[key]) is not typ:
                raise SessionError(f"{where}: damaged session: log[{i}].{key} is not a "
                                   f"{typ.__name__}")
        extra = set(e) - set(_ENTRY) - set(_ENTRY_OPTIONAL)
        if extra:
            raise SessionError(f"{where}: damaged session: log[{i}] has unknown key "
                               f"{brief(sorted(extra)[0])}")
        if len(e["command"]) > MAX_COMMAND_CHARS or "\n" in e["command"]:
            raise SessionError(f"{where}: damaged session: log[{i}].command is not one line")
        _check_logged_command(where, i, e["command"])
        d = e["digest"]
        if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
            raise SessionError(f"{where}: damaged session: log[{i}].digest is not a SHA-256")
    pos = doc.get("position", len(doc["log"]))
    if not 0 <= pos <= len(doc["log"]):
        raise SessionError(f"{where}: damaged session: position {brief(pos, True)} is "
                           f"outside the log (0..{len(doc['log'])})")
    return doc


def _check_logged_command(where: str, i: int, line: str) -> None:
    """A log entry must name a command that is recorded in logs: session commands (save, load,
    replay...) never are, so a file holding one is not a session this program wrote - and
    replaying it must never write or read other files."""
    from .commands.registry import REGISTRY
    try:
        cmd, _ = REGISTRY.lookup(REGISTRY.tokenize(line))
    except SmmuDbgError as e:
        raise SessionError(f"{where}: damaged session: log[{i}].command: {e}") from None
    if not cmd.logged:
        raise SessionError(f"{where}: damaged session: log[{i}].command: {cmd.name!r} is never "
                           f"logged")


def entries_of(doc: dict) -> list[Entry]:
    """The log of a checked session document as Entries."""
    return [Entry(e["command"], e["digest"], e["ok"], error=e.get("error"),
                  result=e.get("result"), summary=e.get("summary")) for e in doc["log"]]


def read_session(path: str) -> dict:
    text = read_text(path, SessionError, "session file", MAX_SESSION_BYTES)
    doc = parse_session(text, display_name(path))
    try:
        sc.parse(doc["scenario"], "scenario")
    except SmmuDbgError as e:
        raise SessionError(f"{display_name(path)}: damaged session: {e}") from None   # (once)
    return doc

"""The one command registry: every user action, from any front end, is a command declared here.

A command is declared once, with the `command` decorator:

    @command("walk", Stream("target"), Address("address"), Int("ssid", keyword=True),
             Choice("access", ("read", "write", "exec"), default="read"), Flag("priv"))
    def walk(ctx, target, address, ssid=None, access="read", priv=False):
        '''Translate ADDRESS for a stream, step by step.'''   # <- this is `help walk`
        return Walk(smmu=..., pa=..., steps=[...], ...)

Arguments are positional (in order) or key=value options (`keyword=True`, and every Flag).
The parser splits a line shell-style (quotes group, `#` starts a comment), converts each
argument by its type and raises one-line errors naming the command and the argument:
`walk: ssid: 'x' is not a number`. Types also complete: given the System (and the arguments
parsed so far) they return candidate strings, which is what the REPL and the TUI offer.

A handler gets a context (the Session: `.system`, `.last`, ...) and the converted arguments, and
returns a typed Result (smmudbg/results.py: one dataclass per kind, with a stable JSON form).
Front ends render Results; they never reach into the model themselves.
"""
from __future__ import annotations

import inspect
import shlex
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import SmmuDbgError
from ..results import Result  # noqa: F401  (what every handler returns)


class CommandError(SmmuDbgError):
    """A command line that does not parse, or a command that cannot do what was asked."""


# ---------------------------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------------------------
U64_MAX = (1 << 64) - 1
MAX_NUMBER_CHARS = 256      # no argument is wider than 64 bits: a longer number is an error


def shown(text: str, quote: bool = True, limit: int = 40) -> str:
    """A user's token for an error line (repr() with quote), cut short when long."""
    q = repr if quote else str
    return q(text) if len(text) <= limit else q(text[:limit]) + f"... ({len(text)} chars)"


def parse_int(text: str) -> int:
    """0x10, 16, 0b1000, 0o20, 1_000 and 4K/2M/1G sizes. Raises ValueError."""
    if len(text) > MAX_NUMBER_CHARS:
        raise ValueError(text)          # (int() of thousands of digits is slow, or refused)
    t = text.strip().replace("_", "").lower()
    mult = 1
    if t and t[-1] in "kmgt" and not t.startswith(("0x", "-0x")):
        mult = 1 << (10 * ("kmgt".index(t[-1]) + 1))
        t = t[:-1]
    if not t:
        raise ValueError(text)
    return int(t, 0) * mult


class ArgType:
    """How one argument is read from the line and completed."""
    metavar = "VALUE"
    ntokens = 1          # how many positional tokens the argument may take (Stream takes 1 or 2)

    def convert(self, ctx, text: str, args: dict) -> Any:
        return text

    def candidates(self, ctx, args: dict) -> list[str]:
        return []


class IntT(ArgType):
    metavar = "N"

    def __init__(self, lo: int | None = 0, hi: int | None = None, what: str = "number",
                 complete=None):
        # Every number the model takes fits in 64 bits (registers, addresses, sizes, counts):
        # the type refuses the rest, so no handler sees an int C or a queue cannot hold.
        self.lo = -(1 << 63) if lo is None else lo
        self.hi = U64_MAX if hi is None else hi
        self.what = what
        self._complete = complete       # (ctx, args) -> the values worth offering, or None

    def candidates(self, ctx, args):
        return list(self._complete(ctx, args)) if self._complete else []

    def convert(self, ctx, text, args):
        try:
            v = parse_int(text)
        except ValueError:
            raise ValueError(f"{shown(text)} is not a number") from None
        if v < self.lo:
            raise ValueError(f"{shown(text, False)} is below {self.lo:#x}" if self.lo else
                             f"{shown(text, False)} is negative")
        if v > self.hi:
            raise ValueError(f"{shown(text, False)} is above {self.hi:#x}")
        return v


class AddressT(IntT):
    metavar = "ADDRESS"

    def __init__(self):
        super().__init__(0, (1 << 64) - 1, "address")

    def convert(self, ctx, text, args):
        try:
            v = parse_int(text)
        except ValueError:
            raise ValueError(f"{shown(text)} is not an address") from None
        if v < 0 or v >> 64:
            raise ValueError(f"{shown(text, False)} is not a 64-bit address")
        return v


class NameT(ArgType):
    """A name looked up in a collection of the System (SMMUs, devices, domains, VMs)."""

    def __init__(self, collection: str, noun: str, metavar: str):
        self.collection, self.noun, self.metavar = collection, noun, metavar

    def names(self, ctx) -> list[str]:
        return list(getattr(ctx.system, self.collection))

    def convert(self, ctx, text, args):
        names = self.names(ctx)
        if text not in names:
            have = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
            raise ValueError(f"no {self.noun} named {shown(text)}; have: {have or 'none'}")
        return text

    def candidates(self, ctx, args):
        return self.names(ctx)


class ChoiceT(ArgType):
    def __init__(self, choices):
        self.choices = tuple(choices)
        self.metavar = "|".join(self.choices)

    def convert(self, ctx, text, args):
        low = text.lower()
        for c in self.choices:
            if c.lower() == low:
                return c
        raise ValueError(f"{shown(text)} is not one of {', '.join(self.choices)}")

    def candidates(self, ctx, args):
        return list(self.choices)


class BoolT(ArgType):
    metavar = "true|false"

    def convert(self, ctx, text, args):
        low = text.lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{shown(text)} is not true or false")

    def candidates(self, ctx, args):
        return ["true", "false"]


class YesNoT(BoolT):
    """A filter's answer: yes keeps the rows that are, no the rows that are not."""
    metavar = "yes|no"

    def convert(self, ctx, text, args):
        try:
            return super().convert(ctx, text, args)
        except ValueError:
            raise ValueError(f"{shown(text)} is not yes or no") from None

    def candidates(self, ctx, args):
        return ["yes", "no"]


class TextT(ArgType):
    def __init__(self, metavar="TEXT", complete: Callable | None = None):
        self.metavar = metavar
        self._complete = complete

    def candidates(self, ctx, args):
        return list(self._complete(ctx, args)) if self._complete else []


class StreamT(ArgType):
    """A stream: a device name (one token) or an SMMU name and a StreamID (two tokens).
    Converts to (smmu_name, sid)."""
    metavar = "DEVICE|SMMU SID"
    ntokens = 2

    def convert(self, ctx, text, args):
        raise AssertionError("StreamT is converted by the parser")

    def candidates(self, ctx, args):
        return list(ctx.system.smmus) + list(ctx.system.devices) + list(ctx.system.vtds) + \
            list(ctx.system.vtd_devices)

    @staticmethod
    def sids(ctx, smmu: str, prefix: str = "", limit: int = 256) -> list[str]:
        if smmu in ctx.system.vtds:
            return [h for h in (f"{r:#x}" for r in ctx.system.vtds[smmu].devices)
                    if h.startswith(prefix)][:limit]
        out = []
        for (s, sid) in ctx.system.streams:
            if s == smmu:
                h = f"{sid:#x}"
                if h.startswith(prefix):
                    out.append(h)
                    if len(out) >= limit:
                        break
        return out


@dataclass
class Arg:
    name: str
    type: ArgType
    help: str = ""
    optional: bool = False
    default: Any = None
    keyword: bool = False        # given as name=value (any position)
    flag: bool = False           # a bare word sets it to True (name=false also accepted)

    @property
    def usage(self) -> str:
        if self.flag:
            return f"[{self.name}]"
        if self.keyword:
            return f"[{self.name}={self.type.metavar}]"
        m = self.type.metavar
        if m in ("N", "VALUE", "TEXT"):
            m = self.name.upper()
        return f"[{m}]" if self.optional else m


# Constructors used in declarations -----------------------------------------------------------
def Int(name, help="", *, lo=0, hi=None, optional=False, default=None, keyword=False,
        complete=None):
    return Arg(name, IntT(lo, hi, complete=complete), help, optional or keyword, default,
               keyword)


def Address(name, help="", *, optional=False, default=None, keyword=False):
    return Arg(name, AddressT(), help, optional or keyword, default, keyword)


def Smmu(name="smmu", help="an SMMU by name", *, optional=False):
    return Arg(name, NameT("smmus", "SMMU", "SMMU"), help, optional)


def Iommu(name="smmu", help="an SMMU or a VT-d unit by name", *, optional=False):
    """An IOMMU of either architecture; the command picks the architecture from it."""
    return Arg(name, NameT("iommus", "SMMU or VT-d unit", "SMMU"), help, optional)


def Device(name="device", help="a device by name", *, optional=False):
    return Arg(name, NameT("devices", "device", "DEVICE"), help, optional)


def Domain(name="domain", help="a translation domain by name", *, optional=False):
    return Arg(name, NameT("domains", "domain", "DOMAIN"), help, optional)


def Vm(name="vm", help="a VM by name", *, optional=False, keyword=False):
    return Arg(name, NameT("vms", "VM", "VM"), help, optional or keyword, None, keyword)


def Stream(name="stream", help="a device name, or an SMMU name and a StreamID"):
    return Arg(name, StreamT(), help)


def Choice(name, choices, help="", *, default=None, optional=False, keyword=True):
    return Arg(name, ChoiceT(choices), help, optional or keyword or default is not None,
               default, keyword)


def Flag(name, help=""):
    return Arg(name, BoolT(), help, True, False, True, True)


def Filter(name, help=""):
    """A yes/no filter: the bare word or name=yes keeps the rows that are, name=no the rows
    that are not; not given, None (no filter). (A Flag's name=no would mean "no filter".)"""
    return Arg(name, YesNoT(), help, True, None, True, True)


def Text(name, help="", *, optional=False, default=None, metavar="TEXT", complete=None,
         keyword=False):
    return Arg(name, TextT(metavar, complete), help, optional or keyword, default, keyword)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------
@dataclass
class Assignments:
    """FIELD=VALUE tokens a command takes after its arguments (`set ste ... V=1 Config=s2_trans`).

    fields(ctx, args) returns the field table (a Format) the names come from, for completion;
    handlers validate names and values themselves through the field table."""
    metavar: str = "FIELD=VALUE"
    fields: Callable | None = None
    required: bool = True


@dataclass
class Command:
    name: str
    args: list[Arg]
    handler: Callable
    help: str
    summary: str
    area: str
    pure: bool = False              # reads state only: time travel may skip it
    logged: bool = True             # recorded in the session log (False for meta commands)
    raw: bool = False               # handler gets the rest of the line as `text`
    assignments: Assignments | None = None
    available: str | None = None    # None, or why the command is not available yet

    @property
    def usage(self) -> str:
        parts = [self.name] + [a.usage for a in self.args]
        if self.assignments:
            parts.append(self.assignments.metavar + " ...")
        if self.raw:
            parts.append("EXPRESSION")
        return " ".join(parts)

    def arg(self, name: str) -> Arg | None:
        for a in self.args:
            if a.name == name:
                return a
        return None


class Registry:
    def __init__(self):
        self.commands: dict[str, Command] = {}

    def add(self, cmd: Command) -> None:
        if cmd.name in self.commands:
            raise AssertionError(f"command {cmd.name!r} declared twice")
        self.commands[cmd.name] = cmd

    def names(self) -> list[str]:
        return sorted(self.commands)

    def groups(self) -> set[str]:
        return {n.split()[0] for n in self.commands if " " in n}

    def get(self, name: str) -> Command:
        try:
            return self.commands[name]
        except KeyError:
            raise CommandError(f"unknown command {shown(name)} (try: help)") from None

    # -- parsing ----------------------------------------------------------------------------
    @staticmethod
    def tokenize(line: str) -> list[str]:
        if not any(c in line for c in "'\"#\\"):
            return line.split()         # the common case: no quoting, no comment
        try:
            lex = shlex.shlex(line, posix=True, punctuation_chars=False)
            lex.whitespace_split = True
            lex.commenters = "#"
            return list(lex)
        except ValueError as e:
            raise CommandError(f"cannot split the line: {str(e).lower()}") from None

    def lookup(self, tokens: list[str]) -> tuple[Command, int]:
        """The command named by the leading tokens and how many tokens its name used."""
        if not tokens:
            raise CommandError("empty command")
        if len(tokens) >= 2 and f"{tokens[0]} {tokens[1]}" in self.commands:
            return self.commands[f"{tokens[0]} {tokens[1]}"], 2
        if tokens[0] in self.commands:
            return self.commands[tokens[0]], 1
        if tokens[0] in self.groups():
            subs = sorted(n.split()[1] for n in self.commands if n.startswith(tokens[0] + " "))
            what = f"{shown(tokens[1])} is not" if len(tokens) > 1 else "missing:"
            raise CommandError(f"{tokens[0]}: {what} one of {', '.join(subs)}")
        raise CommandError(f"unknown command {shown(tokens[0])} (try: help)")

    def parse(self, ctx, line: str) -> tuple[Command, dict]:
        """Split and convert a command line. Returns (command, keyword arguments)."""
        tokens = self.tokenize(line)
        cmd, used = self.lookup(tokens)
        if cmd.raw:
            text = strip_comment(line).strip()
            for _ in range(used):
                parts = text.split(None, 1)
                text = parts[1] if len(parts) > 1 else ""
            return cmd, {"text": text}
        return cmd, self.bind(ctx, cmd, tokens[used:])

    def bind(self, ctx, cmd: Command, tokens: list[str]) -> dict:
        name = cmd.name
        values: dict[str, Any] = {}
        assigns: list[tuple[str, str]] = []
        positional = [a for a in cmd.args if not a.keyword]
        by_key = {a.name: a for a in cmd.args if a.keyword}
        pos_tokens: list[str] = []
        for tok in tokens:
            key, eq, val = tok.partition("=")
            if eq and key in by_key:
                a = by_key[key]
                if key in values:
                    raise CommandError(f"{name}: {key}: given twice")
                values[key] = self._convert(ctx, name, a, val, values)
            elif not eq and tok in by_key and by_key[tok].flag:
                values[tok] = True
            elif eq and key and cmd.assignments is not None:
                if len(tok) > MAX_NUMBER_CHARS:     # (no field name or value is this long)
                    raise CommandError(f"{name}: {shown(tok)}: not a {cmd.assignments.metavar}")
                assigns.append((key, val))
            else:
                if assigns and cmd.assignments is not None:
                    raise CommandError(f"{name}: {shown(tok)}: expected {cmd.assignments.metavar} "
                                       f"after the first assignment")
                pos_tokens.append(tok)
        i = 0
        for a in positional:
            if i >= len(pos_tokens):
                if a.optional:
                    values[a.name] = a.default
                    continue
                raise CommandError(f"{name}: missing {a.usage} (usage: {cmd.usage})")
            if isinstance(a.type, StreamT):
                values[a.name], i = self._stream(ctx, name, a, pos_tokens, i)
            else:
                values[a.name] = self._convert(ctx, name, a, pos_tokens[i], values)
                i += 1
        if i < len(pos_tokens):
            extra = pos_tokens[i]
            if "=" in extra:
                known = ", ".join(by_key) or "none"
                raise CommandError(f"{name}: unknown option {shown(extra.split('=')[0])} "
                                   f"(options: {known})")
            raise CommandError(f"{name}: unexpected {shown(extra)} (usage: {cmd.usage})")
        for a in by_key.values():
            values.setdefault(a.name, a.default)
        if cmd.assignments is not None:
            if cmd.assignments.required and not assigns:
                raise CommandError(f"{name}: missing {cmd.assignments.metavar} "
                                   f"(usage: {cmd.usage})")
            values["assign"] = assigns
        return values

    @staticmethod
    def _convert(ctx, name, a: Arg, text: str, values: dict):
        try:
            return a.type.convert(ctx, text, values)
        except ValueError as e:
            raise CommandError(f"{name}: {a.name}: {e}") from None

    @staticmethod
    def _stream(ctx, name, a: Arg, toks: list[str], i: int):
        first = toks[i]
        sysm = ctx.system
        if first in sysm.devices:
            d = sysm.devices[first]
            return (d.smmu, d.sid), i + 1
        if first in sysm.vtd_devices:           # a requester behind a VT-d unit
            d = sysm.vtd_devices[first]
            return (d.smmu, d.sid), i + 1
        if first in sysm.smmus or first in sysm.vtds:
            vtd = first in sysm.vtds
            if i + 1 >= len(toks):
                raise CommandError(f"{name}: {a.name}: missing the "
                                   f"{'requester ID' if vtd else 'StreamID'} after {first}")
            try:
                sid = parse_int(toks[i + 1])
            except ValueError:
                raise CommandError(f"{name}: sid: {shown(toks[i + 1])} is not a number") \
                    from None
            if sid < 0 or sid >> 32:
                raise CommandError(f"{name}: sid: {shown(toks[i + 1], False)} does not fit in 32 bits")
            if vtd and sid >> 16:
                raise CommandError(f"{name}: sid: {shown(toks[i + 1], False)} is not a 16-bit "
                                   f"requester ID (bus << 8 | devfn)")
            return (first, sid), i + 2
        known = list(sysm.smmus) + list(sysm.vtds) + list(sysm.devices)[:10]
        raise CommandError(f"{name}: {a.name}: {shown(first)} is neither an SMMU nor a device; "
                           f"have: {', '.join(known)}")

    # -- completion -------------------------------------------------------------------------
    def complete(self, ctx, text: str) -> list[str]:
        """Candidates for the last (partial) word of `text`, the line up to the cursor.

        Each candidate replaces that whole word; for FIELD=VALUE words the candidates are
        complete `FIELD=value` words."""
        try:
            tokens = self.tokenize(text)
        except CommandError:
            return []
        if text and not text[-1].isspace():
            partial = tokens.pop() if tokens else ""
        else:
            partial = ""
        if not tokens:
            heads = sorted({n.split()[0] for n in self.commands})
            return [h for h in heads if h.startswith(partial)]
        if len(tokens) == 1 and tokens[0] in self.groups() and tokens[0] not in self.commands:
            subs = sorted(n.split()[1] for n in self.commands if n.startswith(tokens[0] + " "))
            return [s for s in subs if s.startswith(partial)]
        try:
            cmd, used = self.lookup(tokens)
        except CommandError:
            return []
        try:
            return [c for c in self._complete_args(ctx, cmd, tokens[used:], partial)
                    if c.startswith(partial)]
        except SmmuDbgError:
            return []

    @staticmethod
    def _given(ctx, cmd: Command, tokens: list[str], by_key: dict) -> dict:
        """{argument name: token(s)} of the positional arguments already typed."""
        pos = [t for t in tokens if "=" not in t and not (t in by_key and by_key[t].flag)]
        args, i = {}, 0
        for a in (a for a in cmd.args if not a.keyword):
            if i >= len(pos):
                break
            if isinstance(a.type, StreamT) and (pos[i] in ctx.system.smmus or
                                                pos[i] in ctx.system.vtds):
                args[a.name] = tuple(pos[i:i + 2])
                i += 2
            else:
                args[a.name] = pos[i]
                i += 1
        return args

    def _complete_args(self, ctx, cmd: Command, tokens: list[str], partial: str) -> list[str]:
        if cmd.raw:
            return list(_raw_candidates(cmd, ctx))
        by_key = {a.name: a for a in cmd.args if a.keyword}
        key, eq, _ = partial.partition("=")
        if eq:
            if key in by_key:
                # the positionals given so far (a VT-d unit's fault names, not an SMMU's events)
                return [f"{key}={c}" for c in
                        by_key[key].type.candidates(ctx, self._given(ctx, cmd, tokens, by_key))]
            if cmd.assignments and cmd.assignments.fields:
                return [f"{key}={c}" for c in self._field_values(ctx, cmd, tokens, key)]
            return []
        # Which positional comes next? Count positional tokens, streams taking 1 or 2.
        pos = [t for t in tokens if "=" not in t and not (t in by_key and by_key[t].flag)]
        positional = [a for a in cmd.args if not a.keyword]
        i, out, args = 0, [], {}
        for a in positional:
            if i >= len(pos):
                out.extend(a.type.candidates(ctx, args))
                break
            if isinstance(a.type, StreamT):
                if pos[i] in ctx.system.smmus or pos[i] in ctx.system.vtds:
                    if i + 1 >= len(pos):
                        return StreamT.sids(ctx, pos[i], partial)
                    args[a.name] = (pos[i], pos[i + 1])
                    i += 2
                else:
                    args[a.name] = pos[i]
                    i += 1
            else:
                args[a.name] = pos[i]
                i += 1
        else:
            if cmd.assignments and cmd.assignments.fields:
                out.extend(f"{f}=" for f in self._field_names(ctx, cmd, tokens))
        given = {t.split("=")[0] for t in tokens}
        out.extend(f"{a.name}=" if not a.flag else a.name
                   for a in by_key.values() if a.name not in given)
        return out

    def _format_for(self, ctx, cmd, tokens):
        try:
            return cmd.assignments.fields(ctx, tokens)
        except Exception:       # completion must never fail the front end
            return None

    def _field_names(self, ctx, cmd, tokens):
        f = self._format_for(ctx, cmd, tokens)
        return [x.name for x in f.fields] if f is not None else []

    def _field_values(self, ctx, cmd, tokens, key):
        f = self._format_for(ctx, cmd, tokens)
        if f is None:
            return []
        try:
            fld = f.field(key)
        except Exception:
            return []
        return [n for n in fld.enum.values() if not n.startswith("reserved")]


def strip_comment(line: str) -> str:
    """The line without its `#` comment (a `#` inside quotes is kept)."""
    q = None
    for i, ch in enumerate(line):
        if q:
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
        elif ch == "#":
            return line[:i]
    return line


def _raw_candidates(cmd, ctx):
    comp = getattr(cmd.handler, "complete", None)
    return comp(ctx) if comp else []


REGISTRY = Registry()


def run(ctx, line: str) -> tuple[Command, Result]:
    """Parse and run one command line against ctx. Errors are SmmuDbgError (one line)."""
    cmd, kwargs = REGISTRY.parse(ctx, line)
    return cmd, call(ctx, cmd, kwargs)


def call(ctx, cmd: Command, kwargs: dict) -> Result:
    if cmd.available is not None:
        raise CommandError(f"{cmd.name}: {cmd.available}")
    result = cmd.handler(ctx, **kwargs)
    if not isinstance(result, Result):
        raise AssertionError(f"{cmd.name} returned {type(result).__name__}, not a Result")
    return result


def command(name: str, *args: Arg, pure: bool = False, logged: bool = True, raw: bool = False,
            assignments: Assignments | None = None, available: str | None = None):
    """Declare a command. The handler's docstring is its help text (first line: summary)."""
    def deco(fn):
        doc = inspect.cleandoc(fn.__doc__ or "")
        if not doc:
            raise AssertionError(f"command {name!r} has no docstring (it is the help text)")
        area = fn.__module__.rsplit(".", 1)[-1]
        summary = " ".join(doc.split("\n\n", 1)[0].split())
        REGISTRY.add(Command(name, list(args), fn, doc, summary, area, pure, logged,
                             raw, assignments, available))
        return fn
    return deco

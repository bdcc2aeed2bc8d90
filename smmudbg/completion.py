"""Completion for the REPL (and any prompt_toolkit front end): a Completer over the command
registry.

The registry does the knowing: given the line up to the cursor it tokenizes it, finds the
command and which argument is being typed, and asks that argument's type for candidates (command
names, SMMU and device names, the StreamIDs present, STE/CD field names, enum values, command
opcodes). This module only turns those candidates into prompt_toolkit Completions, each
replacing the word under the cursor, with a short description where the registry has one
(a command's summary, an option's help).
"""
from __future__ import annotations

from typing import Iterable

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from .commands.registry import REGISTRY, NameT, Registry, strip_comment

__all__ = ["RegistryCompleter", "complete_line", "names_of"]


def _partial(text: str) -> str:
    """The word being completed: what follows the last blank (empty after a blank)."""
    if not text or text[-1].isspace():
        return ""
    return text.split()[-1]


def _meta_first(s: str, width: int = 60) -> str:
    s = " ".join(s.split())
    return s if len(s) <= width else s[: width - 1] + "…"


class RegistryCompleter(Completer):
    """Completes a command line against `ctx` (the Session) through `registry`."""

    def __init__(self, ctx, registry: Registry = REGISTRY):
        self.ctx = ctx
        self.registry = registry

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        text = document.text_before_cursor
        if "\n" in text or strip_comment(text) != text:
            return                      # nothing to complete inside a comment
        try:
            candidates = self.registry.complete(self.ctx, text)
        except Exception:               # completion must never break the prompt
            return
        partial = _partial(text)
        metas = self._metas(text, partial)
        seen = set()
        for c in candidates:
            if c in seen:
                continue
            seen.add(c)
            display = c
            if "=" in partial and "=" in c:
                display = c.split("=", 1)[1]
            yield Completion(c, start_position=-len(partial), display=display,
                             display_meta=metas.get(c.rstrip("="), ""))

    # -- descriptions ---------------------------------------------------------------------------
    def _metas(self, text: str, partial: str) -> dict:
        """Descriptions for command words, subcommands and key= options (from the registry)."""
        reg = self.registry
        try:
            tokens = reg.tokenize(text)
        except Exception:
            return {}
        if partial and tokens:
            tokens = tokens[:-1]
        out = {}
        if not tokens:
            for name, cmd in reg.commands.items():
                head = name.split()[0]
                if " " in name:
                    subs = sorted(n.split()[1] for n in reg.commands if n.startswith(head + " "))
                    out[head] = _meta_first(f"{head} " + "|".join(subs))
                else:
                    out[head] = _meta_first(cmd.summary)
            return out
        if len(tokens) == 1 and tokens[0] in reg.groups():
            for name, cmd in reg.commands.items():
                if name.startswith(tokens[0] + " "):
                    out[name.split()[1]] = _meta_first(cmd.summary)
            return out
        try:
            cmd, _ = reg.lookup(tokens)
        except Exception:
            return {}
        for a in cmd.args:
            if a.keyword:
                out[a.name] = _meta_first(a.help or a.usage)
        return out


def complete_line(ctx, text: str, registry: Registry = REGISTRY) -> list[str]:
    """The completion texts for a line (cursor at its end): a helper for tests and scripts."""
    comp = RegistryCompleter(ctx, registry)
    return [c.text for c in comp.get_completions(Document(text), CompleteEvent())]


def names_of(ctx, collection: str, registry: Registry = REGISTRY) -> list[str]:
    """The names an argument type of the registry completes for `collection` ("smmus",
    "devices", "domains", "vms"): what the lexer highlights. Empty if no command takes one."""
    for cmd in registry.commands.values():
        for a in cmd.args:
            if isinstance(a.type, NameT) and a.type.collection == collection:
                try:
                    return list(a.type.candidates(ctx, {}))
                except Exception:
                    return []
    return []

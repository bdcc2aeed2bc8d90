"""The command palette's provider: every command of the registry with its summary. Choosing
one puts `NAME ` into the command line (or runs it when it takes no arguments)."""
from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .bridge import registry


def entries() -> list[tuple[str, str, bool]]:
    """(name, help line, takes arguments) for every available command."""
    REGISTRY = registry().REGISTRY
    out = []
    for name in REGISTRY.names():
        c = REGISTRY.commands[name]
        if c.available is not None:
            continue
        needs = any(not a.optional for a in c.args) or bool(c.assignments) or c.raw
        out.append((name, f"{c.usage}: {c.summary}", needs))
    return out


class RegistryCommands(Provider):
    """Nothing while the model loads (the registry is imported by the loader's worker)."""

    def _entries(self) -> list[tuple[str, str, bool]]:
        return entries() if getattr(self.app, "session", None) is not None else []

    async def discover(self) -> Hits:
        for name, help_, needs in self._entries():
            yield DiscoveryHit(name, partial(self.app.palette_pick, name, needs), help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_, needs in self._entries():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name),
                          partial(self.app.palette_pick, name, needs), help=help_)

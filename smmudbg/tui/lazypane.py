"""A tab whose content is built the first time it is shown.

Mounting a widget costs a stylesheet pass over it, and mounting every tab's views before the
first frame took longer than the whole stream table's first paint (examples/large.toml); most
sessions never open most tabs. So a hidden tab holds only a factory until the app awaits
ensure() on its first show (see SmmuDbgApp.when_shown)."""
from __future__ import annotations

from typing import Callable

from textual.widget import Widget
from textual.widgets import TabPane


class LazyPane(TabPane):
    def __init__(self, title: str, factory: Callable[[], Widget], **kw):
        super().__init__(title, **kw)
        self.factory = factory
        self.ready = False
        self._mounting = None

    async def ensure(self) -> None:
        """Mount the content (once); returns when it is composed and mounted."""
        if self.ready:
            return
        if self._mounting is None:
            self._mounting = self.mount(self.factory())
        await self._mounting
        self.ready = True

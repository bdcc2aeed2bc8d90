"""A tab whose content is built the first time it is shown.

Mounting a widget costs a stylesheet pass over it, and mounting every tab's views before the
first frame took longer than the whole stream table's first paint (examples/large.toml); most
sessions never open most tabs. So a hidden tab holds only a factory until the app awaits
ensure() on its first show (see SmmuDbgApp.when_shown)."""
from __future__ import annotations

from typing import Callable

from textual.widget import Widget
from textual.widgets import TabbedContent, TabPane


class TabSet(TabbedContent):
    """TabbedContent whose tab is chosen by the user or the app only, never by where the
    focus lands: when a tab switch hides the focused widget, Textual hands the focus to a
    sibling (in the tab being hidden), and TabbedContent would switch back to that tab."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.prevent_default()
        event.stop()


class Pane(TabPane):
    """A tab whose widgets take the focus only while it is the active tab: when the focused
    widget is hidden by a tab switch, Textual passes the focus to a sibling it still deems
    focusable (one in the tab being hidden), and TabbedContent then switches back to that
    tab. A direct child asks shown() in its allow_focus."""

    def shown(self) -> bool:
        tabs = self.parent.parent if self.parent is not None else None   # ContentSwitcher's
        return getattr(tabs, "active", self.id) == self.id

    def allow_focus_children(self) -> bool:
        return super().allow_focus_children() and self.shown()


def in_shown_pane(widget) -> bool:
    """For a Pane's child's allow_focus: False while its tab is being hidden."""
    p = widget.parent
    return not isinstance(p, Pane) or p.shown()


class LazyPane(Pane):
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

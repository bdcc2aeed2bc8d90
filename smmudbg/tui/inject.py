"""The inject/invalidate menu (key i): the registry's `inject ...`, `drop-invalidations`
and invalidation commands for the stream in focus (on a VT-d system, the VT-d injections for
the requester in focus and the unit's invalidation descriptors). Choosing an entry returns its command line;
one that still needs an argument ends with a blank and goes to the command line to finish."""
from __future__ import annotations

from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ..commands.registry import REGISTRY


def vtd_menu_lines(target: str | None, unit: str) -> list[tuple[str, str]]:
    """The VT-d unit's: its injections (commands/vtd_inject.py) for the requester in focus,
    a lost descriptor, and the invalidation descriptors that clean up."""
    out = []
    for name in REGISTRY.names():
        c = REGISTRY.commands[name]
        if name.startswith("inject ") and c.area == "vtd_inject":
            line = f"{name} {target}" if target else f"{name} "
            line += " " if target and any(not a.optional for a in c.args[1:]) else ""
            out.append((line, c.summary))
    out += [(f"drop-invalidations {unit} 1", REGISTRY.commands["drop-invalidations"].summary),
            (f"cmd {unit} CC_INV_DSC G=global", "invalidate the whole context-cache"),
            (f"cmd {unit} PC_INV_DSC G=global", "invalidate the whole PASID-cache"),
            (f"cmd {unit} IOTLB_INV_DSC G=global", "invalidate the whole IOTLB"),
            (f"cmd {unit} ", REGISTRY.commands["cmd"].summary)]
    return out


def menu_lines(stream: str | None, smmu: str | None, vtd: str | None = None,
               vtd_target: str | None = None) -> list[tuple[str, str]]:
    """(command line, help) for each action on offer: an SMMU's, or with no SMMU in focus a
    VT-d unit's (vtd, with vtd_target the requester in focus)."""
    if smmu is None and vtd is not None:
        return vtd_menu_lines(vtd_target, vtd)
    out = []
    for name in REGISTRY.names():
        c = REGISTRY.commands[name]
        if c.available is not None:
            continue
        if name.startswith("inject ") and c.area != "vtd_inject":
            first = c.args[0].name if c.args else ""
            if first == "target" and stream:
                line = f"{name} {stream}"
                line += " " if any(not a.optional for a in c.args[1:]) else ""
            elif first == "smmu" and smmu:
                line = f"{name} {smmu} "
            else:
                line = f"{name} "
            out.append((line, c.summary))
    if smmu:
        out += [(f"drop-invalidations {smmu} 1",
                 REGISTRY.commands["drop-invalidations"].summary),
                (f"cmd {smmu} CMD_CFGI_ALL", "invalidate every cached STE and CD"),
                (f"cmd {smmu} CMD_TLBI_NSNH_ALL", "invalidate every non-secure IOTLB entry"),
                (f"cmd {smmu} ", REGISTRY.commands["cmd"].summary),
                (f"consume-events {smmu}", REGISTRY.commands["consume-events"].summary)]
    return out


class InjectMenu(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "dismiss(None)", "close")]

    def __init__(self, stream: str | None, smmu: str | None, vtd: str | None = None,
                 vtd_target: str | None = None):
        super().__init__()
        self.lines = menu_lines(stream, smmu, vtd, vtd_target)

    def compose(self):
        yield Static("Inject or invalidate (Enter runs; Esc closes)", id="menu-title")
        yield OptionList(*[Option(f"{line.strip()}  - {help_}", id=str(i))
                           for i, (line, help_) in enumerate(self.lines)], id="menu")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.lines[int(event.option.id)][0])

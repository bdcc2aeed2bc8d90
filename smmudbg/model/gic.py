"""GICv3 redistributors as far as the ITS needs them: one per PE, each with its set of pending
LPIs (Arm IHI 0069, 5.1: LPI INTIDs start at 8192).

The LPI pending tables (GICR_PENDBASER) and the configuration table (GICR_PROPBASER: enable,
priority) are not modelled: an LPI the ITS raises is pending on its target, whatever its
configuration. `pending` is a set per redistributor, named by processor number (the RDbase
value when GITS_TYPER.PTA = 0).
"""
from __future__ import annotations


class Redistributors:
    """The pending LPIs of `count` redistributors, numbered 0..count-1."""

    def __init__(self, count: int = 1):
        if count < 1:
            raise ValueError("a GIC has at least one redistributor")
        self.pending: list[set[int]] = [set() for _ in range(count)]

    def __len__(self) -> int:
        return len(self.pending)

    def exists(self, pe: int) -> bool:
        return 0 <= pe < len(self.pending)

    def set_pending(self, pe: int, intid: int) -> None:
        self.pending[pe].add(intid)

    def clear_pending(self, pe: int, intid: int) -> None:
        self.pending[pe].discard(intid)

    def is_pending(self, pe: int, intid: int) -> bool:
        return intid in self.pending[pe]

    def move(self, intid: int, src: int, dst: int) -> None:
        """MOVI: a pending LPI follows its collection to the new target."""
        if src != dst and intid in self.pending[src]:
            self.pending[src].discard(intid)
            self.pending[dst].add(intid)

    def move_all(self, src: int, dst: int) -> None:
        """MOVALL: every pending LPI of `src` becomes pending on `dst`."""
        if src != dst:
            self.pending[dst] |= self.pending[src]
            self.pending[src].clear()

    def where(self, intid: int) -> list[int]:
        """The redistributors on which `intid` is pending."""
        return [pe for pe, s in enumerate(self.pending) if intid in s]

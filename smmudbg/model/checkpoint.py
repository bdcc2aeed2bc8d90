"""Checkpoints of a whole modeled system, for fast time travel.

A checkpoint is a memory snapshot (PhysMem.snapshot: copy-on-write pages, cost follows the pages
written since the previous one) plus the Python model state: the attributes of every model object
reachable from the System (SMMU registers, queue state, events and interrupts, allocators, domains,
...), with their lists, dicts and sets copied and everything else shared. Objects that never change
after the system is built (streams, VM layouts: SHARED) are shared without being looked into, so a
checkpoint of a system with 65,536 streams copies two dicts, not 65,536 objects. Restoring puts the
saved attributes back into the same objects, so references held elsewhere stay valid.

Each SMMU's walker (core_cy) is restored from the SMMU's registers (stream table base and format,
SMMUEN, GBPA.ABORT) and its saved caching switch; its caches (IOTLB, config cache) are saved with
Walker.export_caches() and put back with import_caches() where the walker has them. A walker with
caching on and no export_caches cannot be restored exactly: capture() then returns None and the
caller rebuilds instead.
"""
from __future__ import annotations

from core_cy.physmem import PhysMem
from core_cy.ptbuild import TableBuilder

from .system import Stream, Vm

# Model classes whose objects never change once built: shared, not copied.
SHARED = {Stream, Vm}
_LEAF = {int, str, bytes, float, bool, type(None), frozenset} | SHARED
_MODEL_MODULES = ("smmudbg.model", "core_cy.ptbuild")


def _is_model(obj) -> bool:
    t = type(obj)
    return hasattr(obj, "__dict__") and t.__module__.startswith(_MODEL_MODULES) \
        and not isinstance(obj, type)


BIG = 32        # containers longer than this are compared before being copied


class _Capture:
    def __init__(self, prev: "Checkpoint | None"):
        self.objects: dict[int, tuple[object, dict]] = {}
        self.mems: dict[int, PhysMem] = {}
        self.smmus: list = []
        # Big containers of leaves (the stream tables) rarely change: share the previous
        # checkpoint's copy while the live one still equals it (compared at C speed).
        self.prev_big = prev._big if prev is not None else {}
        self.big: dict[int, tuple[object, object]] = {}

    def _big(self, v):
        c = v.copy()
        self.big[id(v)] = (v, c)
        return c

    def copy(self, v):
        t = type(v)
        if t in _LEAF:
            return v
        old = self.prev_big.get(id(v))
        if old is not None and old[0] is v and v == old[1]:
            self.big[id(v)] = old           # unchanged since the previous checkpoint
            return old[1]
        if t is dict:
            if len(v) > BIG and _LEAF.issuperset(map(type, v.values())):
                return self._big(v)
            c = v.copy()
            for k, x in c.items():          # replacing values only: safe while iterating
                if type(x) not in _LEAF:
                    c[k] = self.copy(x)
            return c
        if t is list:
            if len(v) > BIG and _LEAF.issuperset(map(type, v)):
                return self._big(v)
            return [x if type(x) in _LEAF else self.copy(x) for x in v]
        if t is set:
            return set(v)
        if t is tuple:
            return tuple(x if type(x) in _LEAF else self.copy(x) for x in v)
        if t is PhysMem:
            self.mems[id(v)] = v
        elif t is TableBuilder:
            self.copy(v.alloc)              # a builder's only changing state is its allocator
        elif _is_model(v):
            self.visit(v)
        return v

    def visit(self, obj) -> None:
        if id(obj) in self.objects:
            return
        self.objects[id(obj)] = (obj, {})
        # An SMMU's walker is reprogrammed from its registers; its caches (and a VT-d unit's,
        # whose registers do not change after the build) are carried over.
        if hasattr(obj, "walker") and hasattr(obj, "regs"):
            self.smmus.append(obj)
        self.objects[id(obj)] = (obj, self.copy(vars(obj)))


def _clone(v):
    """A copy of saved state for putting back (containers new, everything else shared)."""
    t = type(v)
    if t is dict:
        c = v.copy()
        if len(c) > BIG and _LEAF.issuperset(map(type, c.values())):
            return c
        for k, x in c.items():
            if type(x) not in _LEAF:
                c[k] = _clone(x)
        return c
    if t is list:
        if len(v) > BIG and _LEAF.issuperset(map(type, v)):
            return list(v)
        return [x if type(x) in _LEAF else _clone(x) for x in v]
    if t is set:
        return set(v)
    if t is tuple:
        return tuple(x if type(x) in _LEAF else _clone(x) for x in v)
    return v


class Checkpoint:
    """The state of one System at one moment; restore() puts it back (any number of times)."""

    def __init__(self, system, objects, snaps, walkers, big):
        self.system = system
        self._objects = objects         # [(obj, saved attributes)]
        self._snaps = snaps             # [(PhysMem, Snapshot)]
        self._walkers = walkers         # [(smmu, caching, exported caches or None)]
        self._big = big                 # id(live container) -> (live, copy)

    def restore(self) -> None:
        for mem, snap in self._snaps:
            mem.restore(snap)
        for obj, state in self._objects:
            d = vars(obj)
            for k in [k for k in d if k not in state]:
                del d[k]
            for k, v in state.items():
                cur = d.get(k)
                if type(cur) is type(v) and type(v) in (dict, list) and len(v) > BIG \
                        and cur == v:
                    continue                # unchanged big container: keep the live one
                d[k] = _clone(v)
        for smmu, caching, caches in self._walkers:
            if getattr(smmu, "arch", "") == "vtd":
                smmu.walker.caching = caching
            else:
                _configure(smmu, caching)
            if caches is not None:
                smmu.walker.import_caches(caches)


def _configure(smmu, caching: bool) -> None:
    """Program the walker from the SMMU's registers, as their writes did."""
    smmu.walker.configure(
        strtab_base=smmu.reg_address("STRTAB_BASE"),
        strtab_fmt=smmu.field("STRTAB_BASE_CFG", "FMT"),
        strtab_split=smmu.field("STRTAB_BASE_CFG", "SPLIT"),
        strtab_log2size=smmu.field("STRTAB_BASE_CFG", "LOG2SIZE"),
        smmuen=bool(smmu.field("CR0", "SMMUEN")),
        gbpa_abort=bool(smmu.field("GBPA", "ABORT")),
        caching=caching)


def exact(system) -> bool:
    """Whether capture(system) can be restored exactly (see the module docstring)."""
    return all(not s.walker.caching or hasattr(s.walker, "export_caches")
               for s in system.smmus.values())


def capture(system, prev: Checkpoint | None = None) -> Checkpoint | None:
    """A checkpoint of system now, or None when its walker caches cannot be saved. prev: an
    earlier checkpoint, whose copies of unchanged big containers are shared."""
    if not exact(system):
        return None
    c = _Capture(prev)
    c.visit(system)
    walkers = []
    for smmu in c.smmus:
        w = smmu.walker
        if not w.caching and not hasattr(w, "export_caches"):
            walkers.append((smmu, False, None))
        else:
            walkers.append((smmu, w.caching, w.export_caches()))
    snaps = [(m, m.snapshot()) for m in c.mems.values()]
    return Checkpoint(system, list(c.objects.values()), snaps, walkers, c.big)

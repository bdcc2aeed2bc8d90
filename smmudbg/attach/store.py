"""Snapshots of an attached VM, kept in the session and saved beside it.

A snapshot is the SMMU registers and the guest pages that hold the SMMU's state (stream
table, CD tables, page tables, command and event queues) read while the VM was stopped.
Pages are kept by content (SHA-256): a page that did not change since an earlier snapshot is
the same object, so each snapshot costs what changed. A snapshot becomes a System like an
imported dump: the pages are read-only images, anything else is unbacked (strict memory).

Saved sessions reference a sidecar file (SESSION.json.snapshots): versioned JSON, each distinct
page once (zlib, base64), each snapshot as its registers and {page address: page digest}.
Loading parses JSON and checks digests; nothing in it is executed.
"""
from __future__ import annotations

import base64
import hashlib
import json
import zlib
from dataclasses import dataclass, field

from ..errors import SmmuDbgError
from ..importers.qemu import QemuImportError, build_system, check_regs, parse_regs
from ..importers.qemu_dump import Segment

FORMAT = "smmudbg-snapshots"
VERSION = 1
PAGE = 4096
MAX_SIDECAR_BYTES = 1 << 30


class StoreError(SmmuDbgError):
    """A snapshot file that cannot be written or read (one line)."""


@dataclass
class Snapshot:
    name: str
    regs: dict                      # architected register name -> value
    pages: dict                     # page address -> digest (hex)
    taken: str                      # UTC time, ISO 8601
    pause_ms: float                 # how long the VM was stopped for it (0: it was paused)
    vm_was_running: bool
    source: str                     # the QMP socket it was taken from
    new_pages: int = 0              # pages no earlier snapshot had

    def to_json(self) -> dict:
        return {"name": self.name, "regs": {k: f"{v:#x}" for k, v in self.regs.items()},
                "pages": {f"{pa:#x}": d for pa, d in sorted(self.pages.items())},
                "taken": self.taken, "pause_ms": self.pause_ms,
                "vm_was_running": self.vm_was_running, "source": self.source,
                "new_pages": self.new_pages}


@dataclass
class Store:
    snapshots: dict = field(default_factory=dict)      # name -> Snapshot
    blobs: dict = field(default_factory=dict)          # digest -> page bytes

    def add(self, name, regs, pages: dict, **meta) -> Snapshot:
        """Keep a snapshot; pages: {page address: bytes}."""
        refs, new = {}, 0
        for pa, data in pages.items():
            d = hashlib.sha256(data).hexdigest()
            if d not in self.blobs:
                self.blobs[d] = bytes(data)
                new += 1
            refs[pa] = d
        snap = Snapshot(name, dict(regs), refs, new_pages=new, **meta)
        self.snapshots[name] = snap
        return snap

    def read(self, snap: Snapshot):
        """A read(pa, n) over a snapshot's pages (state.Unreadable outside them)."""
        from .state import Unreadable
        pages = snap.pages

        def read(pa: int, n: int) -> bytes:
            out = bytearray()
            while n > 0:
                base = pa & ~(PAGE - 1)
                d = pages.get(base)
                if d is None:
                    raise Unreadable(f"{pa:#x} is not in snapshot {snap.name}")
                take = min(n, base + PAGE - pa)
                out += self.blobs[d][pa - base:pa - base + take]
                pa, n = pa + take, n - take
            return bytes(out)
        return read

    def system(self, snap: Snapshot):
        """The snapshot as a System (like an imported dump: pages read-only, rest unbacked)."""
        segs, run, start = [], bytearray(), None
        for pa in sorted(snap.pages):
            if start is not None and pa != start + len(run):
                segs.append(Segment(start, memoryview(bytes(run))))
                run, start = bytearray(), None
            if start is None:
                start = pa
            run += self.blobs[snap.pages[pa]]
        if start is not None:
            segs.append(Segment(start, memoryview(bytes(run))))
        try:
            warnings = check_regs(snap.regs, f"snapshot {snap.name}")
            return build_system(segs, snap.regs, f"snapshot {snap.name}",
                                f"snapshot {snap.name}", warnings, f"snapshot:{snap.name}")
        except QemuImportError as e:
            raise StoreError(f"snapshot {snap.name}: {e}") from None

    # -- the sidecar --------------------------------------------------------------------------
    def to_text(self) -> str:
        used = {d for s in self.snapshots.values() for d in s.pages.values()}
        pages = {d: base64.b64encode(zlib.compress(self.blobs[d], 6)).decode()
                 for d in sorted(used)}
        return json.dumps({"format": FORMAT, "version": VERSION,
                           "snapshots": [s.to_json() for s in self.snapshots.values()],
                           "pages": pages}, separators=(",", ":")) + "\n"

    @classmethod
    def from_text(cls, text: str, where: str) -> "Store":
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            raise StoreError(f"{where}: not a snapshot file (not valid JSON)") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise StoreError(f"{where}: not a snapshot file (format is not {FORMAT!r})")
        if doc.get("version") != VERSION:
            raise StoreError(f"{where}: snapshot file version {doc.get('version')!r} is not "
                             f"supported (this smmudbg reads version {VERSION})")
        st = cls()
        pages = doc.get("pages")
        if not isinstance(pages, dict):
            raise StoreError(f"{where}: damaged snapshot file: 'pages' is not an object")
        for d, b64 in pages.items():
            try:
                data = zlib.decompress(base64.b64decode(b64, validate=True), bufsize=PAGE)
            except (ValueError, TypeError, zlib.error):
                raise StoreError(f"{where}: damaged snapshot file: page {d[:16]} does not "
                                 f"decode") from None
            if len(data) != PAGE or hashlib.sha256(data).hexdigest() != d:
                raise StoreError(f"{where}: damaged snapshot file: page {d[:16]} does not "
                                 f"match its digest")
            st.blobs[d] = data
        snaps = doc.get("snapshots")
        if not isinstance(snaps, list):
            raise StoreError(f"{where}: damaged snapshot file: 'snapshots' is not a list")
        for i, s in enumerate(snaps):
            try:
                name = s["name"]
                regs = parse_regs(s["regs"], f"{where}: snapshot {name}")
                refs = {int(pa, 16): d for pa, d in s["pages"].items()}
                for pa, d in refs.items():
                    if d not in st.blobs or pa % PAGE:
                        raise ValueError(pa)
                snap = Snapshot(str(name), regs, refs, str(s["taken"]), float(s["pause_ms"]),
                                bool(s["vm_was_running"]), str(s["source"]),
                                int(s.get("new_pages", 0)))
            except SmmuDbgError:
                raise
            except (KeyError, TypeError, ValueError, AttributeError):
                raise StoreError(f"{where}: damaged snapshot file: snapshots[{i}]") from None
            st.snapshots[snap.name] = snap
        return st

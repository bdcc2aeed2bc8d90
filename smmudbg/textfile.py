"""Reading a user's text file (scenario, session, register dump) with one-line errors.

Size-bounded so a wrong path (a disk image given as a session) fails fast instead of filling
memory; nothing read is ever executed."""
from __future__ import annotations

import os


def read_text(path, error, what: str, max_bytes: int = 64 << 20) -> str:
    """The UTF-8 text of path; error(message) for a missing, oversized or non-UTF-8 file."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise error(f"{name}: cannot open: {e.strerror or e}") from None
    if len(raw) > max_bytes:
        raise error(f"{name}: not a {what} (larger than {max_bytes >> 20} MiB)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{name}: not a {what} (not UTF-8 text at byte {e.start})") from None

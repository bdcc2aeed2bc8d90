"""Opening a user's file (scenario, script, session, register dump, memory dump) safely.

One reader for every file a user names: only a regular file is opened (a FIFO, a directory or a
device such as /dev/zero is refused before anything is read, and a FIFO never blocks), reads are
size-bounded so a wrong path (a disk image given as a session) fails fast instead of filling
memory, and every failure is one line naming the file and the reason. Nothing read is executed.

    text = read_text(path, ScenarioError, "scenario file")          # UTF-8, <= 64 MiB
    data = read_bytes(path, DumpError, "register file", 1 << 20)
    with open_regular(path, DumpError, "memory dump") as f: ...     # binary, unbounded (mmap it)
"""
from __future__ import annotations

import os
import stat

__all__ = ["MAX_TEXT_BYTES", "display_name", "open_regular", "read_bytes", "read_text"]

#: Default bound on a text file read whole (scripts, scenarios, sessions).
MAX_TEXT_BYTES = 64 << 20

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


MAX_NAME_CHARS = 160        # a longer file name is shown cut, with its length


def display_name(path) -> str:
    """The file name as one short printable line: repr() when it holds control characters or
    NUL; a name longer than MAX_NAME_CHARS keeps its start and its end (the file's own name)."""
    name = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name) or not name.isprintable():
        name = repr(name)
    if len(name) > MAX_NAME_CHARS:
        half = MAX_NAME_CHARS // 2 - 10
        name = f"{name[:half]}...{name[-half:]} ({len(name)} characters)"
    return name


def _kind(mode: int) -> str:
    for test, what in _KINDS:
        if test(mode):
            return what
    return "not a regular file"


def open_regular(path, error, what: str):
    """A binary file object for path, which must name a regular file; error(message) otherwise.

    The name is checked with stat() before opening (a device or FIFO is never opened), then opened
    O_NONBLOCK (so a FIFO swapped in between cannot block) and checked again with fstat()."""
    try:
        name = os.fspath(path)
    except TypeError:
        raise error(f"{path!r}: not a file name") from None
    shown = display_name(name)
    if not name:
        raise error(f"empty file name (expected a {what})")
    if ("\0" in name) if isinstance(name, str) else (b"\0" in name):
        raise error(f"{shown}: file name contains a NUL byte")
    try:
        st = os.stat(name)
    except (OSError, ValueError) as e:
        raise error(f"{shown}: cannot open: {getattr(e, 'strerror', None) or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{shown}: not a {what} ({_kind(st.st_mode)}, not a regular file)")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) \
        | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(name, flags)
    except OSError as e:
        raise error(f"{shown}: cannot open: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{shown}: not a {what} ({_kind(st.st_mode)}, not a regular file)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, error, what: str, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of a regular file of at most max_bytes; error(message) otherwise."""
    shown = display_name(path if not isinstance(path, os.PathLike) else os.fspath(path))
    with open_regular(path, error, what) as f:
        if os.fstat(f.fileno()).st_size > max_bytes:
            raise error(f"{shown}: not a {what} (larger than {_size(max_bytes)})")
        try:
            raw = f.read(max_bytes + 1)     # the file may grow after fstat
        except OSError as e:
            raise error(f"{shown}: cannot read: {e.strerror or e}") from None
    if len(raw) > max_bytes:
        raise error(f"{shown}: not a {what} (larger than {_size(max_bytes)})")
    return raw


def read_text(path, error, what: str, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of a regular file of at most max_bytes; error(message) for a missing,
    oversized, non-regular or non-UTF-8 file."""
    raw = read_bytes(path, error, what, max_bytes)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        shown = display_name(path if not isinstance(path, os.PathLike) else os.fspath(path))
        raise error(f"{shown}: not a {what} (not UTF-8 text at byte {e.start})") from None


def _size(n: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and not n & ((1 << shift) - 1):
            return f"{n >> shift} {unit}"
    return f"{n} bytes"

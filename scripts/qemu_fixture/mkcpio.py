#!/usr/bin/env python3
"""Build a gzip-free "newc" cpio archive (an initramfs) from a directory tree.

Pure stdlib so the fixture script needs no cpio binary. All entries are owned
by root, mtimes are fixed to 0, and the order is sorted, so the archive is
reproducible from the same inputs.

usage: mkcpio.py SRC_DIR OUT.cpio
"""
import os
import stat
import sys


def _entry(out, name, mode, data=b"", ino=0, nlink=1, rdev=(0, 0)):
    namez = name.encode() + b"\0"
    hdr = "070701" + "".join(
        "%08x" % v
        for v in (
            ino, mode, 0, 0, nlink, 0, len(data), 0, 0, rdev[0], rdev[1],
            len(namez), 0,
        )
    )
    out.write(hdr.encode())
    out.write(namez)
    out.write(b"\0" * ((4 - (110 + len(namez)) % 4) % 4))
    out.write(data)
    out.write(b"\0" * ((4 - len(data) % 4) % 4))


def build(src, dst):
    paths = []
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for n in sorted(dirs + files):
            paths.append(os.path.join(root, n))
    paths.sort()
    ino = 1
    with open(dst, "wb") as out:
        # a console node so the kernel can open /dev/console before devtmpfs is mounted
        _entry(out, "dev", stat.S_IFDIR | 0o755, ino=ino, nlink=2)
        ino += 1
        _entry(out, "dev/console", stat.S_IFCHR | 0o600, ino=ino, rdev=(5, 1))
        ino += 1
        for p in paths:
            rel = os.path.relpath(p, src)
            if rel == "dev":
                continue
            st = os.lstat(p)
            perm = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                _entry(out, rel, stat.S_IFLNK | 0o777, os.readlink(p).encode(), ino=ino)
            elif stat.S_ISDIR(st.st_mode):
                _entry(out, rel, stat.S_IFDIR | perm, ino=ino, nlink=2)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    _entry(out, rel, stat.S_IFREG | perm, f.read(), ino=ino)
            else:
                raise SystemExit("unsupported file type: %s" % p)
            ino += 1
        _entry(out, "TRAILER!!!", 0)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    build(sys.argv[1], sys.argv[2])

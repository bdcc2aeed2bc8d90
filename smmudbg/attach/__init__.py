"""Attach to a running QEMU guest: its SMMUv3 registers over QMP and its RAM, live
(docs/attach.md). Modules: qmp (the connection), regs (xp reads), live (the attachment and its
memory backing), state (streams, STEs, CDs, mappings and their diff), store (snapshots and the
session's sidecar file), view (which view a session shows), watch (polling). The command-line
front end is smmudbg/attach_cli.py."""

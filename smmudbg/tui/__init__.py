"""The full-screen Textual UI over the command registry (see docs/tui.md).

    run(loader, where)   open the UI; loader() builds the Session in a worker. Returns
                         (exit code, the Session or None, the load error or None).
"""
from __future__ import annotations


def run(loader, where: str = ""):
    from .app import SmmuDbgApp
    app = SmmuDbgApp(loader=loader, where=where)
    rc = app.run()
    return (rc or 0) if app.load_error is None else 1, app.session, app.load_error

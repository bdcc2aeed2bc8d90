"""The Pilot steps the UI tests share: type a line on the command line and wait until the UI has
run it (its worker finished and the views redrawn)."""
from __future__ import annotations

from smmudbg.tui.commandline import CommandLine


async def command(app, pilot, line):
    cl = app.query_one(CommandLine)
    cl.focus()
    cl.value = line
    await pilot.press("enter")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def run(pilot, line):
    """command() on the pilot's own app (the snapshot tests' before-hooks get only the pilot)."""
    await command(pilot.app, pilot, line)

"""The UI's responsiveness on examples/large.toml (65,536 streams), headless (App.run_test).

Figures (targets from issue 13):
- first paint of the stream table once the model is loaded: the app started on a ready
  Session until its first frame (stream table included) is done; and a cold repaint of the
  table (row cache emptied, as after a state change)            target < 200 ms
- keypress to render while scrolling (down, pagedown) and jumping anywhere in 65,536 rows
  (end, home, a StreamID chosen at random)                       target < 50 ms
- opening an STE detail (Enter on a row: STE and CD bit views)   target < 50 ms

Each time is from the key (or call) to the end of pilot.pause(), which returns once the
screen has been refreshed. Pilot itself costs time: after each key it waits until every
widget's message queue is idle, which in an app of this size takes about as long as a frame.
So the floor is measured in the same app (a key bound to nothing: "z", and a bare
pilot.pause()) and each figure is also given net of it. "render rows" is the synchronous
work of drawing every visible row of the stream table after a jump (the part of a frame that
is ours). Building the system from
the scenario is reported apart.

    python benchmarks/bench_tui.py [--quick]
"""
from __future__ import annotations

import asyncio
import os
import random
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from textual.app import App                          # noqa: E402
from textual.widgets import Footer, Header, Static   # noqa: E402

from smmudbg.session import Session                 # noqa: E402
from smmudbg.tui.app import SmmuDbgApp               # noqa: E402
from smmudbg.tui.streamtable import StreamTable      # noqa: E402

SIZE = (160, 48)


FLOOR = {"key": 0.0, "call": 0.0}


def fig(name, ts, target, floor=None):
    ts = [t * 1e3 for t in ts]
    med, worst = statistics.median(ts), max(ts)
    net = med - FLOOR[floor] if floor else med
    ok = "ok" if net < target else "OVER"
    print(f"{name:36s} median {med:7.2f} ms  max {worst:7.2f} ms  net {net:7.2f} ms  "
          f"(n={len(ts)}, target < {target} ms: {ok})")


class Empty(App):
    def compose(self):
        yield Header()
        yield Static("x")
        yield Footer()


async def floor(reps):
    app = Empty()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        ks, cs = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            await pilot.press("z")
            await pilot.pause()
            ks.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await pilot.pause()
            cs.append(time.perf_counter() - t0)
    print(f"(an empty app: key+pause {statistics.median(ks) * 1e3:.2f} ms, pause "
          f"{statistics.median(cs) * 1e3:.2f} ms)")


async def first_paint(session):
    """From the moment the loader hands over the built Session (the model is loaded) to the
    first stream-table row drawn: the UI's own start-up on top of the model."""
    handed = {}

    def loader():
        handed["t"] = time.perf_counter()
        return session
    app = SmmuDbgApp(loader=loader, where="large.toml")
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(500):
            await pilot.pause(0.005)
            if app.query(StreamTable) and app.query_one(StreamTable).first_paint:
                break
        fig("model loaded to stream table painted",
            [app.query_one(StreamTable).first_paint - handed["t"]], 200)


async def bench(session, reps):
    t0 = time.perf_counter()
    app = SmmuDbgApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        first = time.perf_counter() - t0
        fig("app start to first paint", [first], 200)
        t = app.query_one(StreamTable)
        t.focus()
        await pilot.pause()
        ks, cs = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            await pilot.press("z")              # bound to nothing: Pilot's own cost
            await pilot.pause()
            ks.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await pilot.pause()
            cs.append(time.perf_counter() - t0)
        FLOOR["key"] = statistics.median(ks) * 1e3
        FLOOR["call"] = statistics.median(cs) * 1e3
        print(f"Pilot floor in this app: key+pause {FLOOR['key']:.2f} ms, pause "
              f"{FLOOR['call']:.2f} ms")
        cold = []
        for _ in range(reps):
            t0 = time.perf_counter()
            t.invalidate()
            await pilot.pause()
            cold.append(time.perf_counter() - t0)
        fig("stream table cold repaint", cold, 200, "call")

        async def keys(name, key_list):
            ts = []
            for k in key_list:
                t0 = time.perf_counter()
                await pilot.press(k)
                await pilot.pause()
                ts.append(time.perf_counter() - t0)
            fig(name, ts, 50, "key")
        await keys("key down", ["down"] * reps)
        await keys("key pagedown", ["pagedown"] * reps)
        await keys("key end / home (jump 65,535 rows)", ["end", "home"] * (reps // 2))
        rnd = random.Random(1)
        ts = []
        for _ in range(reps):
            sid = rnd.randrange(1 << 16)
            t0 = time.perf_counter()
            t.go(sid)
            await pilot.pause()
            ts.append(time.perf_counter() - t0)
        fig("jump to a random StreamID", ts, 50, "call")
        ts = []
        h = t.scrollable_content_region.height
        for _ in range(reps):
            t.invalidate()
            t.go(rnd.randrange(1 << 16), announce=False)
            t0 = time.perf_counter()
            for y in range(h):
                t.render_line(y)
            ts.append(time.perf_counter() - t0)
        fig(f"render rows ({h} visible, cold cache)", ts, 50)
        ts = []
        for _ in range(reps):
            t.go(rnd.randrange(0x8000))      # nested streams: STE and CD views both fill
            t.focus()
            await pilot.pause()
            t0 = time.perf_counter()
            await pilot.press("enter")
            await pilot.pause()
            ts.append(time.perf_counter() - t0)
            app.show_tab("streams")
            await pilot.pause()
        fig("open STE detail (Enter)", ts, 50, "key")
        ts = []
        for _ in range(reps):
            sid = rnd.randrange(0x8000)
            t0 = time.perf_counter()
            app.focus_stream("smmu0", sid)      # what Enter does, without Pilot's key path
            await pilot.pause()
            ts.append(time.perf_counter() - t0)
            app.show_tab("streams")
            await pilot.pause()
        fig("open STE detail (direct call)", ts, 50, "call")


def main():
    quick = "--quick" in sys.argv
    t0 = time.perf_counter()
    session = Session.from_file(os.path.join(ROOT, "examples", "large.toml"))
    print(f"build the large system (not the UI): {time.perf_counter() - t0:.2f} s")
    reps = 10 if quick else 40
    asyncio.run(floor(reps))
    asyncio.run(first_paint(session))
    asyncio.run(bench(session, reps))


if __name__ == "__main__":
    main()

"""The UI's responsiveness on examples/large.toml (65,536 streams), headless (App.run_test).

The three figures of issue 13 item 8, printed last against their targets:
- first paint of the stream table once the model is loaded: from the moment the loader hands
  over the built Session to the last visible row of the table drawn (every run a new app on
  the same Session)                                              target < 200 ms
- keypress to render while scrolling (down, pagedown) and jumping anywhere in 65,536 rows
  (end, home, a StreamID chosen at random); the worst of their medians  target < 50 ms
- opening an STE detail (Enter on a row: the STE and CD bit views under the table)
                                                                 target < 50 ms

Each key figure is from the key (or call) to the end of pilot.pause(), which returns once the
screen has been refreshed. Pilot itself costs time: after each key it waits until every
widget's message queue is idle, which in an app of this size takes about as long as a frame.
So the floor is measured in the same app (a key bound to nothing: "z", and a bare
pilot.pause()) and each figure is given net of it. Each line also gives the median CPU time
of the UI thread over the same span (thread_time): the machine is shared, and CPU time is
what the UI spends whatever the load. "render rows" is the synchronous work of drawing every
visible row of the stream table after a jump (the part of a frame that is ours). Building the
system from the scenario is reported apart.

    python benchmarks/bench_tui.py [--quick] [--profile first|ste]

--profile runs pyinstrument (not a dependency: pip install pyinstrument) over the first
paint or over opening STE details, and prints its tree instead of the figures.

Opening a file, the whole program from process start (issue 13's "opens a real QEMU dump and
the large example without a visible pause"):

    python benchmarks/bench_tui.py --open [--runs 5]
    python benchmarks/bench_tui.py --profile-load [FILE]     (default examples/large.toml)

--open runs `smmudbg FILE` in a 160x48 pseudo-terminal for the default scenario, large.toml,
large-system.toml and the QEMU dump fixture and prints, per file, the medians of: the wall
time from the fork to the UI's first frame on the terminal and to the stream table's rows on
it, the time Ctrl-Q takes to end the program when sent on the first frame (the model still
loading), the process's CPU time, and, in a fresh process whose imports are done, the CPU
time of the loader alone (building the model: parse, check, build). An empty Textual app's
first frame is printed first: the floor under any Textual program here. --profile-load
prints a cProfile of that loader.
"""
from __future__ import annotations

import asyncio
import fcntl
import json
import lzma
import os
import pty
import random
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from textual.app import App                          # noqa: E402
from textual.widgets import Footer, Header, Static   # noqa: E402

from smmudbg.session import Session                 # noqa: E402
from smmudbg.tui.app import SmmuDbgApp               # noqa: E402
from smmudbg.tui.entryview import EntryView          # noqa: E402
from smmudbg.tui.streamtable import StreamTable      # noqa: E402

SIZE = (160, 48)
FLOOR = {"key": 0.0, "call": 0.0}
SUMMARY: dict[str, tuple[float, float]] = {}     # figure -> (net median ms, target ms)


def fig(name, ts, target, floor=None, cpu=None):
    """Print one figure; returns its median net of the floor (ms)."""
    ts = [t * 1e3 for t in ts]
    med, worst = statistics.median(ts), max(ts)
    net = med - FLOOR[floor] if floor else med
    ok = "ok" if net < target else "OVER"
    c = f"  cpu {statistics.median(cpu) * 1e3:6.2f} ms" if cpu else ""
    print(f"{name:38s} median {med:7.2f} ms  max {worst:7.2f} ms  net {net:7.2f} ms{c}  "
          f"(n={len(ts)}, < {target} ms: {ok})")
    return net


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


FP_CPU: list[float] = []


async def first_paint_once(session) -> float:
    """From the moment the loader hands over the built Session (the model is loaded) to the
    stream table fully drawn: the UI's own start-up on top of the model. FP_CPU gets the UI
    thread's CPU time from the hand-over reaching it (_loaded) to the same paint."""
    handed, cpu = {}, {}

    def loader():
        handed["t"] = time.perf_counter()
        return session
    app = SmmuDbgApp(loader=loader, where="large.toml")
    loaded = app._loaded

    async def timed_loaded(s):
        cpu["t0"] = time.thread_time()
        await loaded(s)
    app._loaded = timed_loaded
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(2000):
            await pilot.pause(0.001)
            if app.query(StreamTable) and app.query_one(StreamTable).first_paint:
                t = app.query_one(StreamTable)
                FP_CPU.append(t.first_paint_cpu - cpu["t0"])
                break
        return app.query_one(StreamTable).first_paint - handed["t"]


async def timed(pilot, action, ts, cpu):
    t0, c0 = time.perf_counter(), time.thread_time()
    await action()
    await pilot.pause()
    ts.append(time.perf_counter() - t0)
    cpu.append(time.thread_time() - c0)


async def bench(session, reps):
    app = SmmuDbgApp(session)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
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
        cold, cpu = [], []
        for _ in range(reps):
            async def inval():
                t.invalidate()
            await timed(pilot, inval, cold, cpu)
        fig("stream table cold repaint", cold, 200, "call", cpu)

        async def keys(name, key_list):
            ts, cpu = [], []
            for k in key_list:
                await timed(pilot, lambda: pilot.press(k), ts, cpu)
            return fig(name, ts, 50, "key", cpu)
        worst = max([await keys("key down", ["down"] * reps),
                     await keys("key pagedown", ["pagedown"] * reps),
                     await keys("key end / home (jump 65,535 rows)",
                                ["end", "home"] * (reps // 2))])
        rnd = random.Random(1)
        ts, cpu = [], []
        for _ in range(reps):
            sid = rnd.randrange(1 << 16)

            async def jump():
                t.go(sid)
            await timed(pilot, jump, ts, cpu)
        worst = max(worst, fig("jump to a random StreamID", ts, 50, "call", cpu))
        SUMMARY["keypress to render (scroll, jump; worst)"] = (worst, 50)
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
        ts, cpu = [], []
        for _ in range(reps):
            t.go(rnd.randrange(0x8000))      # nested streams: STE and CD views both fill
            await pilot.pause()
            await timed(pilot, lambda: pilot.press("enter"), ts, cpu)
        assert app.query_one(EntryView).display and app.focused is t
        SUMMARY["open an STE detail (Enter)"] = (
            fig("open STE detail (Enter)", ts, 50, "key", cpu), 50)
        ts, cpu = [], []
        for _ in range(reps):
            sid = rnd.randrange(0x8000)

            async def direct():
                app.focus_stream("smmu0", sid)   # what Enter does, without Pilot's key path
            await timed(pilot, direct, ts, cpu)
        fig("open STE detail (direct call)", ts, 50, "call", cpu)


def profile(session, what, reps):
    from pyinstrument import Profiler
    p = Profiler(interval=0.001, async_mode="disabled")

    async def ste():
        app = SmmuDbgApp(session)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            t = app.query_one(StreamTable)
            rnd = random.Random(1)
            for _ in range(reps):
                t.go(rnd.randrange(0x8000))
                await pilot.pause()
                p.start()
                await pilot.press("enter")
                await pilot.pause()
                p.stop()

    async def first():
        orig = SmmuDbgApp._loaded

        async def loaded(self, s):
            p.start()
            await orig(self, s)
        SmmuDbgApp._loaded = loaded
        for _ in range(reps):
            await first_paint_once(session)
            p.stop()
    asyncio.run(ste() if what == "ste" else first())
    p.print(color=False, unicode=False)


# -- open to ready: the whole program, from process start, in a pseudo-terminal ----------------
# What a user sees after typing `smmudbg FILE`: the time to the UI's first frame on the terminal
# and to the stream table's rows on it, per file; and the CPU time of building the model (the
# loader alone, in a fresh process whose imports are done), measured apart.
OPEN_FILES = {
    "default scenario": [],
    "large.toml": [os.path.join(ROOT, "examples", "large.toml")],
    "large-system.toml": [os.path.join(ROOT, "examples", "large-system.toml")],
    "QEMU dump": ["{qemu}/memory.elf", "--regs", os.path.join(ROOT, "tests", "fixtures", "qemu",
                                                                "regs.json")],
}
# The first frame: the header's title (drawn with the loading placeholder); the stream table
# usable: one of its rows (StreamID, device, config), drawn once the model is there.
FIRST = re.compile(rb"smmudbg")
ROW = re.compile(rb"0x[0-9a-f]{4}\s+\S+\s+(abort|bypass|s1|s2|nested|-)\s")
PROG = "import sys; from smmudbg.cli import main; sys.exit(main())"
EMPTY_APP = ("from textual.app import App\nfrom textual.widgets import Footer, Header, Static\n"
             "class E(App):\n    def compose(self):\n        yield Header()\n"
             "        yield Static('smmudbg')\n        yield Footer()\nE().run()\n")


def child_env(pyc: str) -> dict:
    """The child imports this tree, with its bytecode cached (an installed package has it;
    PYTHONDONTWRITEBYTECODE would make every run compile smmudbg's sources again)."""
    env = dict(os.environ, TERM="xterm-256color", PYTHONPATH=ROOT, PYTHONPYCACHEPREFIX=pyc,
               COLUMNS="160", LINES="48")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("NO_COLOR", None)
    return env


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system, every thread) a running process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def in_pty(argv: list[str], env: dict, quit_at: str = "ready", timeout: float = 60) -> dict:
    """Run argv in a 160x48 pseudo-terminal; seconds from fork to the first frame ("first")
    and to a stream table row ("ready"), the child's CPU time by then ("first_cpu",
    "ready_cpu": what a loaded machine inflates less), its CPU time in all, and, when
    quit_at is "first", the time from Ctrl-Q sent on the first frame (the model still
    loading) to the exit."""
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:                                    # the child: nothing but exec
        os.chdir(ROOT)
        os.execvpe(argv[0], argv, env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    got: dict[str, float] = {}
    buf, sent = b"", None
    while time.perf_counter() - t0 < timeout:
        r, _, _ = select.select([fd], [], [], 0.005)
        if r:
            try:
                data = os.read(fd, 1 << 16)
            except OSError:
                break
            if not data:
                break
            buf += data
            now = time.perf_counter() - t0
            for key, pattern in (("first", FIRST), ("ready", ROW)):
                if key not in got and pattern.search(buf):
                    got[key] = now
                    got[key + "_cpu"] = cpu_of(pid)
        if sent is None and quit_at in got:
            os.write(fd, b"\x11")                   # Ctrl-Q: quit
            sent = time.perf_counter()
    if sent is None:
        os.write(fd, b"\x11")
        sent = time.perf_counter()
    while True:                                     # drain until the child closes the pty
        r, _, _ = select.select([fd], [], [], 1)
        try:
            if not r or not os.read(fd, 1 << 16):
                break
        except OSError:
            break
    _, _, ru = os.wait4(pid, 0)
    got["quit"] = time.perf_counter() - sent
    got["cpu"] = ru.ru_utime + ru.ru_stime
    os.close(fd)
    return got


def model_cpu(args: list[str]) -> dict:
    """In this (fresh) process: the file's check and the loader the UI runs (cli._loader),
    timed after the imports."""
    from smmudbg import cli
    import smmudbg.session                           # noqa: F401  (imported before timing)
    import smmudbg.commands                          # noqa: F401
    ns = cli._parser_main().parse_args(args)
    t, c = time.perf_counter(), time.process_time()
    cli._loader(ns)()
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c}


def open_figures(runs: int) -> None:
    tmp = tempfile.mkdtemp(prefix="bench-open-")
    try:
        with open(os.path.join(tmp, "memory.elf"), "wb") as f:
            f.write(lzma.decompress(open(os.path.join(
                ROOT, "tests", "fixtures", "qemu", "memory.elf.xz"), "rb").read()))
        env = child_env(os.path.join(tmp, "pyc"))
        # autosave on quit goes to the user's data directory: keep it in the temporary one
        env["XDG_DATA_HOME"] = env["XDG_STATE_HOME"] = os.path.join(tmp, "data")
        py = sys.executable
        in_pty([py, "-c", PROG], env)               # fills the bytecode cache
        print(f"open to ready: `smmudbg FILE` in a 160x48 pseudo-terminal, medians of {runs} "
              f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}); wall seconds from "
              f"the fork")
        e = [in_pty([py, "-c", EMPTY_APP], env, quit_at="first") for _ in range(runs)]
        print(f"  {'(an empty Textual app)':22s} first frame {med(e, 'first'):5.2f} s (CPU "
              f"{med(e, 'first_cpu'):4.2f}){'':62s}process CPU {med(e, 'cpu'):4.2f} s")
        for name, args in OPEN_FILES.items():
            args = [a.format(qemu=tmp) for a in args]
            rs = [in_pty([py, "-c", PROG] + args, env) for _ in range(runs)]
            qs = [in_pty([py, "-c", PROG] + args, env, quit_at="first") for _ in range(runs)]
            ms = [json.loads(subprocess.run(
                [py, os.path.abspath(__file__), "--model-cpu", json.dumps(args)], env=env,
                check=True, capture_output=True, text=True).stdout.splitlines()[-1])
                for _ in range(runs)]
            print(f"  {name:22s} first frame {med(rs, 'first'):5.2f} s (CPU "
                  f"{med(rs, 'first_cpu'):4.2f})  stream table {med(rs, 'ready'):5.2f} s (CPU "
                  f"{med(rs, 'ready_cpu'):4.2f})  Ctrl-Q while loading {med(qs, 'quit'):4.2f} s"
                  f"  process CPU {med(rs, 'cpu'):4.2f} s  model build CPU "
                  f"{med(ms, 'cpu'):5.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def med(rows: list[dict], key: str) -> float:
    return statistics.median(r.get(key, float("nan")) for r in rows)


def profile_load(path: str) -> None:
    """cProfile of the loader the UI runs (imports done first), by cumulative time."""
    import cProfile
    import pstats
    from smmudbg import cli
    import smmudbg.commands                          # noqa: F401
    import smmudbg.session                           # noqa: F401
    loader = cli._loader(cli._parser_main().parse_args([path]))
    p = cProfile.Profile()
    p.runcall(loader)
    pstats.Stats(p).sort_stats("cumulative").print_stats(30)


def main():
    if "--model-cpu" in sys.argv:
        print(json.dumps(model_cpu(json.loads(sys.argv[sys.argv.index("--model-cpu") + 1]))))
        return
    if "--open" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 5
        open_figures(runs)
        return
    if "--profile-load" in sys.argv:
        rest = sys.argv[sys.argv.index("--profile-load") + 1:]
        profile_load(rest[0] if rest else os.path.join(ROOT, "examples", "large.toml"))
        return
    quick = "--quick" in sys.argv
    reps = 10 if quick else 40
    t0 = time.perf_counter()
    session = Session.from_file(os.path.join(ROOT, "examples", "large.toml"))
    print(f"build the large system (not the UI): {time.perf_counter() - t0:.2f} s")
    if "--profile" in sys.argv:
        profile(session, sys.argv[sys.argv.index("--profile") + 1], 5)
        return
    asyncio.run(floor(reps))
    fps = [asyncio.run(first_paint_once(session)) for _ in range(5 if quick else 11)]
    SUMMARY["first paint of the stream table"] = (
        fig("model loaded to stream table painted", fps, 200, cpu=FP_CPU), 200)
    asyncio.run(bench(session, reps))
    print(f"\nissue 13 item 8 (medians, net of Pilot's floor; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}):")
    for name, (v, target) in SUMMARY.items():
        print(f"  {name:44s} {v:7.1f} ms   target < {target} ms   "
              f"{'met' if v < target else 'NOT MET'}")


if __name__ == "__main__":
    main()

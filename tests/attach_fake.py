"""A fake QEMU for the attach tests: a QMP server on a Unix socket (greeting, qmp_capabilities,
query-status, stop/cont, query-memory-size-summary, human-monitor-command answering `xp /1wx`
and `/1gx` from a register dict, gpa2hva), and the guest RAM as a file the test writes.

The RAM holds the QEMU fixture's pages (tests/fixtures/qemu: a Linux guest's stream table,
CDs, page tables and queues) at their guest addresses, so the expected values are the ones
that fixture's README lists."""
from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

from smmudbg.arch.smmuv3 import registers as R
from smmudbg.importers.qemu import load_regs
from smmudbg.importers.qemu_dump import load_memory

ROOT = Path(__file__).resolve().parent.parent
QEMU = ROOT / "tests" / "fixtures" / "qemu"
RAM_BASE = 0x40000000
RAM_SIZE = 256 << 20
SMMU_BASE = 0x09050000


def write_ram(path) -> None:
    with open(path, "wb") as f:
        f.truncate(RAM_SIZE)
        for s in load_memory(str(QEMU / "memory.elf.xz")):
            f.seek(s.pa - RAM_BASE)
            f.write(bytes(s.data))


class FakeQemu:
    """Serves one client at a time, like QEMU's QMP socket. `regs` maps architected names to
    values; `log` lists the QMP commands executed (xp lines included); `on_hmp(fake, line)`
    runs before each human-monitor-command is answered."""

    def __init__(self, path, ram_path=None, running=True, mode="qemu", ram_size=RAM_SIZE):
        self.path, self.ram_path, self.running, self.mode = str(path), ram_path, running, mode
        self.ram_size = ram_size
        self.regs = dict(load_regs(QEMU / "regs.json"))
        self.regs.setdefault("SMMU_CR0ACK", self.regs["SMMU_CR0"])
        self.regs.setdefault("SMMU_IRQ_CTRLACK", self.regs["SMMU_IRQ_CTRL"])
        self.log: list[str] = []
        self.on_hmp = None
        self.hmp_count = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(1)
        self.stopped = False
        self.conn = None
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    # -- the RAM --------------------------------------------------------------------------------
    def poke(self, pa: int, data: bytes) -> None:
        with open(self.ram_path, "r+b") as f:
            f.seek(pa - RAM_BASE)
            f.write(data)

    def peek(self, pa: int, n: int) -> bytes:
        with open(self.ram_path, "rb") as f:
            f.seek(pa - RAM_BASE)
            return f.read(n)

    # -- the server -----------------------------------------------------------------------------
    def _serve(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conn = conn
            try:
                self._client(conn)
            except OSError:
                pass
            finally:
                conn.close()

    def _client(self, conn):
        if self.mode == "silent":          # accepts, never greets (a busy or odd socket)
            while conn.recv(4096):
                pass
            return
        if self.mode == "garbage":
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
            while conn.recv(4096):
                pass
            return
        greet = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7},
                                     "package": "fake"}, "capabilities": []}}
        conn.sendall(json.dumps(greet).encode() + b"\r\n")
        # A JSON stream, as QEMU parses it: the client sends no newlines.
        dec, buf = json.JSONDecoder(), ""
        while True:
            chunk = conn.recv(65536)
            if not chunk:
                return
            buf += chunk.decode()
            while True:
                buf = buf.lstrip()
                try:
                    msg, end = dec.raw_decode(buf)
                except ValueError:
                    break
                buf = buf[end:]
                reply = self._answer(msg)
                if reply is None:
                    return                  # "QEMU exits"
                if "id" in msg:
                    reply["id"] = msg["id"]
                conn.sendall(json.dumps(reply).encode() + b"\r\n")

    def _answer(self, msg):
        cmd, args = msg.get("execute"), msg.get("arguments") or {}
        if cmd == "human-monitor-command":
            line = args["command-line"]
            self.log.append(line)
            self.hmp_count += 1
            if self.on_hmp is not None:
                if self.on_hmp(self, line) == "die":
                    return None
            return {"return": self._hmp(line)}
        self.log.append(cmd)
        if cmd == "qmp_capabilities":
            return {"return": {}}
        if cmd == "query-status":
            return {"return": {"running": self.running,
                               "status": "running" if self.running else "paused"}}
        if cmd == "stop":
            self.running = False
            return {"return": {}}
        if cmd == "cont":
            self.running = True
            return {"return": {}}
        if cmd == "query-memory-size-summary":
            return {"return": {"base-memory": self.ram_size}}
        return {"error": {"class": "CommandNotFound", "desc": f"The command {cmd} has not "
                                                              f"been found"}}

    def _hmp(self, line: str) -> str:
        parts = line.split()
        if parts[0] == "xp" and parts[1] in ("/1wx", "/1gx"):
            addr = int(parts[2], 16)
            value = 0
            for name, off in R.OFFSETS.items():
                if SMMU_BASE + off == addr and name in self.regs:
                    value = self.regs[name]
            if parts[1] == "/1wx":
                return f"{addr:016x}: 0x{value & 0xFFFFFFFF:08x}\r\n"
            return f"{addr:016x}: 0x{value:016x}\r\n"
        if parts[0] == "gpa2hva":
            return f"Host virtual address for {parts[1]} (mach-virt.ram) is 0x7f0000000000\r\n"
        return f"unknown command: '{parts[0]}'\r\n"

    def kill_client(self):
        """QEMU goes away: the connection drops and nobody listens any more."""
        self.stopped = True
        try:
            self.sock.close()
        except OSError:
            pass
        if self.conn is not None:
            try:
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.kill_client()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

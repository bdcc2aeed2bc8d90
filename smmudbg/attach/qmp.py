"""A synchronous QMP client for the (synchronous) command registry, over the QEMU project's
own library (PyPI qemu-qmp, `qemu.qmp`).

qemu.qmp is asyncio; its event loop runs in a helper thread owned by this client, so callers
in any thread (the REPL, a Textual UI that runs its own loop) call plain methods that wait
with a timeout. Every failure is an AttachError of one line naming the socket.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket as _socket
import stat
import threading

from ..errors import SmmuDbgError
from ..textfile import display_name

CONNECT_TIMEOUT = 3.0
COMMAND_TIMEOUT = 10.0


class AttachError(SmmuDbgError):
    """attach/detach/snapshot/watch cannot do what was asked (one line)."""


class VmGone(AttachError):
    """The QMP connection dropped: QEMU exited or closed the socket."""


class Qmp:
    """One QMP connection. hmp(line) runs a monitor command; execute(cmd, **args) a QMP one."""

    def __init__(self, path: str, connect_timeout: float | None = None):
        from qemu.qmp import QMPClient          # imported here: only attach needs it
        self.path = path
        if connect_timeout is None:
            connect_timeout = CONNECT_TIMEOUT
        _check_socket(path)
        # qemu.qmp logs connection failures at ERROR; the one-line AttachError says it.
        logging.getLogger("qemu.qmp").addHandler(logging.NullHandler())
        logging.getLogger("qemu.qmp").propagate = False
        self._loop = asyncio.new_event_loop()
        # A dropped connection leaves qemu.qmp's reader task failed: not the user's concern.
        self._loop.set_exception_handler(lambda loop, ctx: None)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="smmudbg-qmp")
        self._thread.start()
        self._client = QMPClient("smmudbg")
        try:
            self._run(self._connect(), connect_timeout)
        except asyncio.TimeoutError:
            self._shutdown()
            raise AttachError(f"attach: {path}: no QMP greeting within {connect_timeout:g} s: "
                              f"the socket is busy (a QMP socket serves one client: start "
                              f"QEMU with a second -qmp socket for smmudbg) or not QEMU's"
                              ) from None
        except AttachError:
            self._shutdown()
            raise
        except Exception as e:
            self._shutdown()
            raise AttachError(f"attach: {path}: {_why(e)}") from None
        self.greeting = self._client.greeting

    async def _connect(self):
        await self._client.connect(self.path)

    def _run(self, coro, timeout):
        fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout), self._loop)
        try:
            return fut.result(timeout + 1)
        except TimeoutError:
            fut.cancel()
            raise asyncio.TimeoutError() from None

    def execute(self, cmd: str, **args):
        """A QMP command's return value. Raises VmGone if QEMU went away, AttachError if the
        command failed."""
        from qemu.qmp import ExecuteError
        if self._client is None:
            raise VmGone(f"{self.path}: not connected")
        try:
            return self._run(self._client.execute(cmd, args or None), COMMAND_TIMEOUT)
        except ExecuteError as e:
            desc = e.error.desc if hasattr(e, "error") else str(e)
            raise AttachError(f"{self.path}: QMP {cmd}: {desc}") from None
        except asyncio.TimeoutError:
            raise VmGone(f"{self.path}: QMP {cmd}: no answer in {COMMAND_TIMEOUT:g} s") from None
        except Exception as e:
            raise VmGone(f"{self.path}: QEMU is gone ({_why(e, connected=True)})") from None

    def hmp(self, line: str) -> str:
        return self.execute("human-monitor-command", **{"command-line": line})

    def running(self) -> bool:
        return bool(self.execute("query-status").get("running"))

    def close(self) -> None:
        if self._client is not None:
            try:
                self._run(self._client.disconnect(), 2.0)
            except Exception:
                pass
        self._shutdown()

    def _shutdown(self):
        self._client = None
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(2)
        if not self._loop.is_running():
            self._loop.close()


def _check_socket(path: str) -> None:
    shown = display_name(path)
    if "\0" in path:
        raise AttachError(f"attach: {shown}: file name contains a NUL byte")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AttachError(f"attach: {shown}: no such socket (start QEMU with "
                          f"-qmp unix:{shown},server=on,wait=off)") from None
    except OSError as e:
        raise AttachError(f"attach: {shown}: {e.strerror}") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise AttachError(f"attach: {shown}: not a Unix socket (give QEMU's -qmp socket)")


def _why(e: BaseException, connected: bool = False) -> str:
    """One line for a connection failure, from the innermost cause. connected: the greeting
    was read before, so anything but an OS error is the connection going away (qemu.qmp
    raises its own state errors once the peer closed it)."""
    while getattr(e, "exc", None) is not None or e.__cause__ is not None:
        e = getattr(e, "exc", None) or e.__cause__
    if isinstance(e, ConnectionRefusedError):
        return "connection refused (no QEMU listens there: it exited and left the socket file)"
    if isinstance(e, (ConnectionResetError, BrokenPipeError, EOFError)):
        return "the connection was closed"
    if isinstance(e, _socket.timeout):
        return "timed out"
    msg = str(e).split("\n")[0] or type(e).__name__
    if isinstance(e, OSError):
        return e.strerror or msg
    if connected:
        return "the connection was closed"
    # Anything else is the peer speaking something other than QMP (a JSON or greeting error).
    return f"not a QEMU QMP socket (its greeting: {msg})"

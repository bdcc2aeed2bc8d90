"""The interactive front end: a prompt_toolkit REPL over the command registry.

    smmudbg                  opens it on the built-in default scenario (cli.py calls run())
    python -m smmudbg.repl   the same, without the CLI's other modes

Every line goes through Session.execute(), i.e. through the one registry: the REPL never looks
at the model itself. What it adds is the terminal around that:

- a prompt naming the scenario (and the log position after time travel: `@3/7`);
- completion from the registry's completers (smmudbg/completion.py): command names, SMMU and
  device names, the StreamIDs present, STE/CD field names, enum values, command opcodes;
- syntax highlighting with the command-language lexer (smmudbg/lexer.py);
- persistent history in $XDG_STATE_HOME/smmudbg/history (~/.local/state/smmudbg/history),
  created on demand; a history file that cannot be written costs one warning, nothing more;
- suggestions from history (accept with Right arrow or Ctrl-E);
- results rendered with rich through smmudbg.render; errors as one red line, never a traceback;
- Ctrl-C cancels the line (or interrupts a running command), Ctrl-D (or `quit`) leaves;
- the session autosaved (Session.autosave) after commands at most every `autosave_interval`
  seconds, from a background task while the prompt waits, and on exit.
"""
from __future__ import annotations

import asyncio
import os
import sys

from prompt_toolkit import PromptSession
from prompt_toolkit.auto_suggest import AutoSuggestFromHistory
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import FileHistory, History
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.styles import Style, merge_styles, style_from_pygments_dict
from pygments.token import (Comment, Error, Keyword, Name, Number, Operator, String)
from rich.console import Console
from rich.text import Text

from . import __version__
from .commands.registry import REGISTRY
from .completion import RegistryCompleter, names_of
from .errors import SmmuDbgError
from .lexer import DEVICE, SMMU, STREAMID, lexer_for

__all__ = ["run", "Repl", "history_path", "main"]

QUIT_WORDS = ("quit", "exit")
AUTOSAVE_INTERVAL = 60.0


# ---------------------------------------------------------------------------------------------
# History
# ---------------------------------------------------------------------------------------------
def state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local",
                                                            "state")
    return os.path.join(base, "smmudbg")


def history_path() -> str:
    return os.path.join(state_dir(), "history")


class SafeFileHistory(FileHistory):
    """FileHistory that creates its directory on first write and never raises: a history that
    cannot be read or written leaves `error` set (the REPL warns once) and works in memory."""

    def __init__(self, filename: str):
        super().__init__(filename)
        self.error: str | None = None

    def load_history_strings(self):
        try:
            return list(super().load_history_strings())
        except (OSError, UnicodeError, ValueError) as e:
            self.error = f"cannot read {self.filename}: {getattr(e, 'strerror', None) or e}"
            return []

    def store_string(self, string: str) -> None:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.filename)), exist_ok=True)
            super().store_string(string)
        except OSError as e:
            self.error = f"cannot write {self.filename}: {e.strerror or e}"


# ---------------------------------------------------------------------------------------------
# Style
# ---------------------------------------------------------------------------------------------
PYGMENTS_STYLE = style_from_pygments_dict({
    Keyword: "bold #5fafff",
    Error: "#ff5f5f",
    Comment: "italic #808080",
    String: "#d7af5f",
    Number: "#87d7af",
    Operator: "#808080",
    Name.Attribute: "#d787d7",
    Name.Constant: "#ffaf5f",
    SMMU: "bold #87d700",
    DEVICE: "#87d700",
    STREAMID: "bold #ffd75f",
})

UI_STYLE = Style.from_dict({
    "prompt.app": "#808080",
    "prompt.scenario": "bold #5fafff",
    "prompt.position": "#ffaf5f",
    "prompt.arrow": "bold",
    "completion-menu.completion": "bg:#303030 #d0d0d0",
    "completion-menu.completion.current": "bg:#5f87af #ffffff",
    "completion-menu.meta.completion": "bg:#262626 #8a8a8a",
    "completion-menu.meta.completion.current": "bg:#5f87af #e4e4e4",
    "auto-suggestion": "#6c6c6c",
})


# ---------------------------------------------------------------------------------------------
# The REPL
# ---------------------------------------------------------------------------------------------
class Repl:
    """One interactive session. `input`/`output` are prompt_toolkit's (tests pass a pipe input
    and DummyOutput); `console` is where results go (a rich Console on stdout by default)."""

    def __init__(self, session=None, *, console: Console | None = None, input=None, output=None,
                 history: History | str | None = None,
                 autosave_interval: float = AUTOSAVE_INTERVAL):
        if session is None:
            from .session import Session
            session = Session()
        self.session = session
        # Output to a file or a pipe is written unwrapped and unpadded (render_text(width=
        # None)); a console given by the caller is used as it is.
        self.plain = console is None and not sys.stdout.isatty()
        self.console = console or Console(highlight=False, markup=False)
        self.autosave_interval = autosave_interval
        self._warned: set[str] = set()
        if history is None:
            history = history_path()
        if isinstance(history, str):
            history = SafeFileHistory(history)
        self.history = history
        self.completer = RegistryCompleter(session)
        lexer = lexer_for(commands=REGISTRY.names,
                          smmus=lambda: names_of(self.session, "smmus"),
                          devices=lambda: names_of(self.session, "devices"))
        self.prompt = PromptSession(
            message=self._message,
            history=self.history,
            completer=self.completer,
            complete_while_typing=True,
            auto_suggest=AutoSuggestFromHistory(),
            lexer=PygmentsLexer(lexer),
            style=merge_styles([PYGMENTS_STYLE, UI_STYLE]),
            include_default_pygments_style=False,
            input=input, output=output,
            enable_history_search=False,
        )

    # -- the prompt ------------------------------------------------------------------------------
    def scenario_name(self) -> str:
        return self.session.system_name

    def _message(self) -> FormattedText:
        parts = [("class:prompt.app", "smmudbg"), ("class:prompt.app", "["),
                 ("class:prompt.scenario", self.scenario_name())]
        s = self.session
        if s.position != len(s.log):
            parts.append(("class:prompt.position", f" @{s.position}/{len(s.log)}"))
        parts += [("class:prompt.app", "]"), ("class:prompt.arrow", "> ")]
        return FormattedText(parts)

    def banner(self) -> None:
        # The system shown (an import or attach replaces the scenario's), not the scenario.
        desc = (getattr(self.session.system, "spec", None) or {}).get("description") or ""
        t = Text(f"smmudbg {__version__}", style="bold")
        t.append(f"  scenario {self.scenario_name()}", style="bold cyan")
        if desc:
            t.append(f": {desc}")
        self.console.print(t, soft_wrap=True)
        self.console.print(Text("Tab completes, `help` lists the commands, `help COMMAND` "
                                "explains one, Ctrl-D leaves.", style="dim"), soft_wrap=True)

    # -- output ----------------------------------------------------------------------------------
    def error(self, message: str) -> None:
        """One red line."""
        self.console.print(Text(" ".join(str(message).split()), style="bold red"),
                           soft_wrap=True)

    def warn_once(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            self.console.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)

    # -- one line --------------------------------------------------------------------------------
    def handle(self, line: str) -> bool:
        """Run one line and print its result or its error. False when the line asks to quit."""
        text = line.strip()
        if not text or text.startswith("#"):
            return True
        if text in QUIT_WORDS:
            return False
        from .script import json_line, split_json_flag
        text, as_json = split_json_flag(text)
        try:
            out = self.session.execute(text)
            if out.ok and out.result.kind == "json-mode":
                self.console.print(Text(out.result.message), soft_wrap=True)
            elif as_json or getattr(self.session, "json_output", False):
                # exactly `smmudbg run --json`'s line: not wrapped, not highlighted
                self.console.print(Text(json_line(out)), soft_wrap=True, highlight=False)
            elif out.ok and self.plain:
                from .render import render_text
                self.console.file.write(render_text(out.result, width=None) + "\n")
            elif out.ok:
                from .render import render
                self.console.print(render(out.result))
                self.console.print()        # a blank line before the next prompt
            else:
                self.error(out.error)
        except KeyboardInterrupt:
            self.error("interrupted")
        except SmmuDbgError as e:
            self.error(str(e))
        except Exception as e:      # a bug must not become a traceback
            self.error(f"internal error: {type(e).__name__}: {e}")
        self.autosave()
        return True

    def autosave(self, force: bool = False) -> str | None:
        try:
            return self.session.autosave(force=force, interval=self.autosave_interval)
        except SmmuDbgError as e:
            self.warn_once(f"autosave: {e}")
        except Exception as e:
            self.warn_once(f"autosave: internal error: {type(e).__name__}: {e}")
        return None

    async def _autosave_loop(self) -> None:
        """While the prompt waits: save what the last commands changed once the interval
        passed (the prompt and this task share the event loop, so no command is running)."""
        while True:
            await asyncio.sleep(max(1.0, self.autosave_interval / 4))
            self.autosave()

    def _pre_run(self) -> None:
        app = self.prompt.app
        if self.session.autosave_path:
            app.create_background_task(self._autosave_loop())

    # -- the loop --------------------------------------------------------------------------------
    def run(self, banner: bool = True) -> int:
        if banner:
            self.banner()
        try:
            while True:
                try:
                    line = self.prompt.prompt(pre_run=self._pre_run)
                except KeyboardInterrupt:       # Ctrl-C: drop the line, prompt again
                    continue
                except EOFError:                # Ctrl-D: leave
                    break
                err = getattr(self.history, "error", None)
                if err:
                    self.warn_once(f"history: {err} (history kept in memory only)")
                if not self.handle(line):
                    break
        finally:
            path = self.autosave(force=True)
            if path:
                self.console.print(Text(f"session saved to {path} (open it again with: "
                                        f"smmudbg {path})", style="dim"), soft_wrap=True)
        return 0


def run(session=None, **kwargs) -> int:
    """Open the REPL on `session` (the built-in default scenario if None). Returns the exit
    status. This is what `smmudbg` with no arguments calls (cli._interactive)."""
    if session is not None and getattr(session, "autosave_path", None) is None:
        session.autosave_path = _default_autosave_path()
    return Repl(session, **kwargs).run()


def _default_autosave_path() -> str | None:
    from .session import default_autosave_path
    try:
        path = default_autosave_path()
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path
    except OSError:
        return None


def main(argv=None) -> int:
    """`python -m smmudbg.repl [SCENARIO.toml|SESSION.json]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from .session import Session
        if not argv:
            session = Session()
        elif argv[0].endswith(".json"):
            session = Session.load(argv[0])[0]
        else:
            session = Session.from_file(argv[0])
        session.autosave_path = _default_autosave_path()
        return run(session)
    except SmmuDbgError as e:
        Console(stderr=True, highlight=False, markup=False).print(Text(str(e), style="bold red"))
        return 1
    except Exception as e:
        Console(stderr=True, highlight=False, markup=False).print(
            Text(f"internal error: {type(e).__name__}: {e}", style="bold red"))
        return 70


if __name__ == "__main__":
    sys.exit(main())

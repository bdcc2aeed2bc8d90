"""A Pygments lexer for the smmudbg command language (REPL lines and script files).

    walk smmu0 0x8 0x10000123 ssid=1 access=write priv   # a comment
    set ste nic0 Config=s2_trans S2T0SZ=24
    cmd smmu0 CMD_CFGI_STE StreamID=0x8

Tokens: the command word (and the subcommand of a group such as `set ste`) as Keyword, or
Error when it names no command (a prefix of one stays plain Name); key=value options and
FIELD=VALUE assignments (key as Name.Attribute, `=` as Operator, the value as a number or
Name.Constant); numbers (hex, decimal, binary, octal, 4K/2M sizes); UPPERCASE field names and
opcodes (CMD_CFGI_STE) as Name.Constant; quoted strings; `#` comments. With the names of the
model given (options `commands`, `smmus`, `devices`), SMMU names are Name.Namespace, device
names Name.Variable and the number right after an SMMU name is a StreamID (Name.Label).
Without them, `smmu...` words count as SMMU names.

The lexer knows nothing of the model itself: the REPL passes it the names it got from the
command registry (see `lexer_for`).
"""
from __future__ import annotations

import re

from pygments.lexer import RegexLexer, bygroups
from pygments.token import (Comment, Error, Keyword, Name, Number, Operator, String, Text,
                            Whitespace)

__all__ = ["CommandLexer", "lexer_for", "STREAMID", "SMMU", "DEVICE"]

STREAMID = Name.Label
SMMU = Name.Namespace
DEVICE = Name.Variable

_NUMBER = r"-?(?:0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|\d[\d_]*[kKmMgGtT]?)"
_END = r"(?=[\s#]|$)"
_FIELDISH = re.compile(r"^[A-Z][A-Z0-9_]*[A-Z0-9_]$|^[A-Z][a-z0-9]*[A-Z][A-Za-z0-9_]*$")


class CommandLexer(RegexLexer):
    """The smmudbg command language. Options (lists of names): commands, smmus, devices."""

    name = "smmudbg"
    aliases = ["smmudbg"]
    filenames = ["*.smmudbg"]

    tokens = {
        "root": [
            (r"\s+", Whitespace),
            (r"#.*$", Comment.Single),
            (r'"(?:[^"\\\n]|\\.)*"?', String.Double),
            (r"'[^'\n]*'?", String.Single),
            # key=value: an option or a FIELD=VALUE assignment
            (r"([A-Za-z_][\w.-]*)(=)(" + _NUMBER + ")" + _END,
             bygroups(Name.Attribute, Operator, Number)),
            (r'([A-Za-z_][\w.-]*)(=)("(?:[^"\\\n]|\\.)*"?)',
             bygroups(Name.Attribute, Operator, String.Double)),
            (r"([A-Za-z_][\w.-]*)(=)([^\s#]*)", bygroups(Name.Attribute, Operator, Name.Constant)),
            (r"0[xX][0-9a-fA-F_]+" + _END, Number.Hex),
            (r"0[bB][01_]+" + _END, Number.Bin),
            (r"0[oO][0-7_]+" + _END, Number.Oct),
            (r"-?\d[\d_]*[kKmMgGtT]?" + _END, Number.Integer),
            (r"(==|!=|<=|>=|<|>)", Operator),
            (r"[^\s#=\"']+", Name),
            (r"[=\"']", Text),
        ],
    }

    def __init__(self, **options):
        super().__init__(**options)
        self.commands = set(options.get("commands") or ())
        self.smmus = set(options.get("smmus") or ())
        self.devices = set(options.get("devices") or ())

    # -- second pass: command word, names of the model, StreamIDs ------------------------------
    def _is_smmu(self, word: str) -> bool:
        if self.smmus:
            return word in self.smmus
        return bool(re.fullmatch(r"smmu\w*", word))

    def get_tokens_unprocessed(self, text, stack=("root",)):
        words = 0               # words seen on the current line (not counting whitespace)
        first = None
        after_smmu = False
        heads = {c.split()[0] for c in self.commands}
        for index, tok, value in super().get_tokens_unprocessed(text, stack):
            if tok in (Whitespace, Text) and "\n" in value:
                words, first, after_smmu = 0, None, False
            if tok is Whitespace or tok is Comment.Single:
                yield index, tok, value
                continue
            words += 1
            if words == 1 and tok is Name:
                first = value
                if not self.commands or value in heads or value in ("exit", "quit"):
                    tok = Keyword
                elif not any(h.startswith(value) for h in heads):
                    tok = Error         # a prefix being typed stays plain

            elif (words == 2 and tok is Name and first is not None
                  and f"{first} {value}" in self.commands):
                tok = Keyword
            elif after_smmu and tok in Number:
                tok = STREAMID
            elif tok is Name:
                if self._is_smmu(value):
                    tok = SMMU
                elif value in self.devices:
                    tok = DEVICE
                elif _FIELDISH.match(value):
                    tok = Name.Constant
            after_smmu = tok is SMMU
            yield index, tok, value


def lexer_for(commands=(), smmus=(), devices=()) -> type:
    """A CommandLexer subclass bound to these names (prompt_toolkit's PygmentsLexer wants a
    class). Each argument may be a callable returning the names: it is called again each time
    a line is lexed, so the names follow the session (after `load`, say)."""

    def _get(x):
        try:
            return set(x() if callable(x) else x)
        except Exception:           # highlighting must never break the prompt
            return set()

    class BoundCommandLexer(CommandLexer):
        def get_tokens_unprocessed(self, text, stack=("root",)):
            self.commands, self.smmus, self.devices = _get(commands), _get(smmus), _get(devices)
            return super().get_tokens_unprocessed(text, stack)

    return BoundCommandLexer

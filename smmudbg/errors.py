"""Errors a user sees as one line. Anything else escaping a command is a bug (and is reported as
one line too, by the front ends)."""


class SmmuDbgError(Exception):
    """A user-facing error: the message names what and where."""


class ScenarioError(SmmuDbgError):
    """A malformed scenario file or value."""


class ModelError(SmmuDbgError):
    """A request the model cannot honour (unknown name, address out of range...)."""

"""The errors nasty raises for problems a user can fix.

Every user-facing failure is a NastyError, so the CLI can catch that one class and
print its message instead of a traceback. Anything else escaping is a bug in nasty.
"""


class NastyError(Exception):
    """Base of all user-facing errors.

    The message is one line saying what is wrong and what to do about it. Messages
    are built from file names and user input, so stray newlines are folded here
    rather than trusted to every raise site.
    """

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


class DatasetError(NastyError):
    """A dataset is missing, incomplete, corrupt or unsafe to load."""


class BudgetError(NastyError):
    """A budget is malformed, or no architecture in the space can meet it."""


class RunError(NastyError):
    """A run folder or run configuration is unusable (e.g. cannot be resumed)."""


class TrainingError(NastyError):
    """Training cannot go on: bad settings, or the model diverged."""


class NastyWarning(UserWarning):
    """Something nasty accepted but the user should know (a file skipped, a class with no
    images). The CLI prints it as one line, `nasty: warning: ...`."""

    def __str__(self) -> str:
        return " ".join(super().__str__().split())


def warn(message: str) -> None:
    """Emit a one-line NastyWarning (printed by the CLI; Python callers see a UserWarning)."""
    import warnings
    warnings.warn(NastyWarning(message), stacklevel=2)


def brief(value, width: int = 60) -> str:
    """repr() of a user's value for a message, bounded however large or deeply shared the value
    is (a YAML 'billion laughs' is 9**9 strings deep in one small file): never the whole thing."""
    import reprlib
    r = reprlib.Repr()
    r.maxlevel, r.maxlist, r.maxtuple, r.maxdict, r.maxset = 2, 4, 4, 4, 4
    r.maxstring, r.maxother, r.maxlong = width, width, width
    text = " ".join(r.repr(value).split())
    return text if len(text) <= width else text[:width - 3] + "..."

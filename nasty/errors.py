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

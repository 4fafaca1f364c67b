"""Errors the services raise; the CLI and the UI turn them into messages and exit codes."""


class TributaryError(Exception):
    """Base class: a problem the user can act on, with a message meant for them."""

    exit_code = 1


class ValidationError(TributaryError):
    """Bad input. Carries every broken rule as (field, message) so a form can show each one."""

    exit_code = 2

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{field}: {message}" for field, message in self.problems))

    @classmethod
    def single(cls, field: str, message: str) -> "ValidationError":
        return cls([(field, message)])


class NotFound(TributaryError):
    exit_code = 3


class Conflict(TributaryError):
    """The request clashes with the current state (a name taken, a run already active...)."""

    exit_code = 4

"""One exception type for problems the user can fix: the CLI prints its message, not a traceback."""


class UserError(Exception):
    """Bad input, a missing file or an unbuilt stage; the message says which and what to do."""


"""Errors a user can cause. The CLI turns any of them into one line and exit code 2."""


class MemzooError(ValueError):
    """Bad input: an unknown name, an impossible parameter, a malformed file."""


class ConfigError(MemzooError):
    """A configuration value or key is invalid; the message names the field."""


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first line of ``err``'s message (its type name if it has none), at most ``limit``
    characters: how an exception from a library is quoted in a one-line error."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:limit]

"""Errors a user can cause. The CLI turns any of them into one line and exit code 2."""


class MemzooError(ValueError):
    """Bad input: an unknown name, an impossible parameter, a malformed file."""


class ConfigError(MemzooError):
    """A configuration value or key is invalid; the message names the field."""

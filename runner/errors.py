"""Errors a user can cause. The CLI turns each into one line and exit code 2."""


class UserInputError(Exception):
    """Bad input detected before any work starts: the message says what, where and how to fix it."""


class ConfigError(UserInputError):
    """An experiment file or override is invalid."""


class DataError(UserInputError):
    """The data a config points at is missing, empty or unusable."""


class CheckpointError(UserInputError):
    """A checkpoint is missing, corrupt or was not written by this runner."""


class UsageError(UserInputError):
    """A command-line flag is missing, unknown or has a value of the wrong kind."""

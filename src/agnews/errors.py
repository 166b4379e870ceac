"""Errors a user can fix; stages print their message and exit non-zero, without a traceback."""


class AgnewsError(Exception):
    """Base class: a problem with the user's input, not a bug."""


class ConfigError(AgnewsError):
    """A parameter in params.yaml (or a preset) is invalid; the message names it."""


class DataError(AgnewsError):
    """An input file is missing or malformed; the message names the file and row."""


class TrainingError(AgnewsError):
    """Training cannot go on (e.g. the loss became NaN); the message says where."""

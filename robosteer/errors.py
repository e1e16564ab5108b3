"""Errors robosteer raises for bad input. Each message names the problem and the fix."""


class RobosteerError(Exception):
    """Bad input or a state robosteer cannot work with; the message says what to change.

    The CLI prints these as one clear line (no traceback) and exits with status 2.
    """

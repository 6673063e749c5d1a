"""The one user-facing error type of the engine.

Anything a person can get wrong (a path, a parameter, a file that is not a checkpoint) raises
`VAEError` with a one-line message; front ends show the message, never a traceback.
"""


class VAEError(Exception):
    """Expected bad input: the message is meant for the user, on one line."""

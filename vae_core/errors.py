"""The one user-facing error type of the engine.

Anything a person can get wrong (a path, a parameter, a file that is not a checkpoint) raises
`VAEError` with a one-line message; front ends show the message, never a traceback.
"""


class VAEError(Exception):
    """Expected bad input: the message is meant for the user, on one line."""


def first_line(e: Exception, limit: int = 160) -> str:
    """An exception's first line, shortened at a word boundary: for quoting a library's error in a
    one-line message."""
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + " …"

"""The project's own error type: something the user can fix, told in one line."""


class Face2FaceError(Exception):
    """An error caused by input or environment; the CLI prints it as one line and exits 1."""

"""Headless core of ResNeXt Studio: data, models, training, prediction, export, runs. Never imports Qt."""

__version__ = "0.1.0"


def quiet_closed_terminal() -> None:
    """stdout and stderr to the null device (on SIGHUP: their terminal is gone, and a write to it fails)."""
    import contextlib
    import os
    import sys

    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(null, stream.fileno())
        os.close(null)

"""ResNeXt Studio entry point: no arguments (or `gui`) opens the window; a subcommand runs headless (core.cli)."""

from __future__ import annotations

import sys

GUI_COMMANDS = {"gui"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in GUI_COMMANDS:
        from gui.app import main as gui_main

        return gui_main(argv[1:] if argv else [])
    from core.cli import main as cli_main

    return cli_main(argv)


def entry() -> int:
    """The process's entry (the console scripts, `python main.py`): main(), then a quiet shutdown."""
    from core import exit_on_signals_with, ignore_signals_at_the_last

    ignore_signals_at_the_last()
    rc = main()
    exit_on_signals_with(rc)
    return rc


if __name__ == "__main__":
    sys.exit(entry())

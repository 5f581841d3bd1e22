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


if __name__ == "__main__":
    sys.exit(main())

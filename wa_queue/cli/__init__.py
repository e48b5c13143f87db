"""The `waq` command line: main.py holds the group, the other modules its commands by kind."""

from wa_queue.cli.main import main

__all__ = ["main"]

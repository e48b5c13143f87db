"""python -m wa_queue.simulator --port N [--host H] [--auto-scan] [--state-file PATH]"""

from __future__ import annotations

import argparse

from wa_queue.simulator.app import serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wa_queue.simulator", description="Run the WhatsApp Web simulator.")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--auto-scan", action="store_true", help="link every new browser by itself")
    parser.add_argument("--state-file", default=None, help="JSON file that keeps links and messages across restarts")
    args = parser.parse_args(argv)
    serve(args.port, host=args.host, auto_scan=args.auto_scan, state_file=args.state_file)


if __name__ == "__main__":
    main()

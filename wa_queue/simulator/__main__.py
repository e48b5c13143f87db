"""python -m wa_queue.simulator --port N [--host H] [--auto-scan] [--state-file PATH] [--markup NAME] [--lenient]
[--boot-delay-s S] [--clock-skew-s S]; the defaults of the last four come from WAQ_SIM_MARKUP, WAQ_SIM_STRICT,
WAQ_SIM_BOOT_DELAY_S, WAQ_SIM_CLOCK_SKEW_S."""

from __future__ import annotations

import argparse

from wa_queue.errors import ConfigError
from wa_queue.settings import Settings
from wa_queue.simulator.app import serve
from wa_queue.simulator.profiles import MARKUPS
from wa_queue.simulator.state import SimError, check_clock_skew


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wa_queue.simulator", description="Run the WhatsApp Web simulator.")
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        parser.error(str(exc))
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--auto-scan", action="store_true", help="link every new browser by itself")
    parser.add_argument("--state-file", default=None, help="JSON file that keeps links and messages across restarts")
    parser.add_argument("--markup", choices=MARKUPS, default=settings.sim_markup, help="form of the message rows")
    parser.add_argument("--lenient", action="store_true", default=not settings.sim_strict,
                        help="the old immediate page: synchronous editor, no delays, overlays or browser check")
    parser.add_argument("--boot-delay-s", type=float, default=settings.sim_boot_delay_s,
                        help='how long every full page load shows "Loading your chats"')
    parser.add_argument("--clock-skew-s", type=float, default=settings.sim_clock_skew_s,
                        help="shift every time the page shows by this many seconds (negative: behind)")
    args = parser.parse_args(argv)
    try:
        check_clock_skew(args.clock_skew_s)
    except SimError as exc:
        parser.error(str(exc))
    serve(args.port, host=args.host, auto_scan=args.auto_scan, state_file=args.state_file, markup=args.markup,
          strict=not args.lenient, config={"boot_delay_s": args.boot_delay_s}, clock_skew_s=args.clock_skew_s)


if __name__ == "__main__":
    main()

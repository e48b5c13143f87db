"""`python -m wa_queue.cli`."""

from wa_queue.cli.main import main

main()

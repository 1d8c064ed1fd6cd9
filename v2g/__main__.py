"""Run the command line as ``python -m v2g``."""

from v2g.cli import main

main()

"""Entry point: python -m lab up|down|status|serve|fault|prometheus."""

import sys

from lab.cli import main

sys.exit(main())

"""`python -m agnews.ladder`: see agnews.ladder.cli."""

import sys

from agnews.ladder.cli import main

sys.exit(main())

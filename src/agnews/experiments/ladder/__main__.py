"""`python -m agnews ladder`: see agnews.experiments.ladder.cli."""

import sys

from agnews.experiments.ladder.cli import main

sys.exit(main())

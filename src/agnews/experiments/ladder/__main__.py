"""`python -m agnews ladder`: see agnews.experiments.ladder.command."""

import sys

from agnews.experiments.ladder.command import main

sys.exit(main())

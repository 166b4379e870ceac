"""Stage check: validate the whole params.yaml before any other stage runs.

DVC deletes a stage's outputs before it runs the stage's command, so a stage that finds a bad
parameter itself has already lost its last good outputs (`-S model.cell=transformer` used to
delete models/model.pt). This stage runs first: every other stage depends on its output, a
bad value stops the pipeline here, and nothing downstream is touched. Its output is the same
for every valid params file, so it never makes the stages after it rerun.

--out  marker file written when the params are valid (paths.params_check)
"""

from argparse import Namespace

from agnews.atomic import write_text
from agnews.cli import run_stage
from agnews.config import Config


def main(args: Namespace, cfg: Config) -> None:
    write_text(args.out, "params.yaml is valid\n")  # the same bytes for every valid file
    print("check: params.yaml is valid")


if __name__ == "__main__":
    run_stage(main, __doc__, {"--out": "marker written when params.yaml is valid"})

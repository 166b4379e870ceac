"""Stage download: AG News from the HuggingFace hub (or data.local_dir CSVs) into the raw dir.

--out  folder receiving train.jsonl, test.jsonl and source.json (paths.raw_dir)
"""

from argparse import Namespace

from agnews.cli import run_stage
from agnews.config import Config
from agnews.data.raw import download


def main(args: Namespace, cfg: Config) -> None:
    rows = download(cfg.data.hub_dataset, cfg.data.local_dir, args.out, cfg.data.hub_revision)
    print(f"download: {rows['train']} train and {rows['test']} test rows -> {args.out}")


if __name__ == "__main__":
    run_stage(main, __doc__, {"--out": "raw data folder (paths.raw_dir)"})

"""Stage prepare: tokenize once, carve validation from train, build the vocabulary, cache shards.

--raw          download's folder (paths.raw_dir)
--out          folder receiving vocab.json and {train,val,test}.npz (paths.prepared_dir)
--metrics      JSON with vocabulary size, split sizes and the length coverage table
--length-hist  CSV of the train text-length histogram (a DVC plot)
"""

from argparse import Namespace

from agnews.cli import run_stage
from agnews.config import Config
from agnews.data.prepare import prepare_dataset


def main(args: Namespace, cfg: Config) -> None:
    p = cfg.prepare
    metrics = prepare_dataset(
        raw_dir=args.raw,
        out_dir=args.out,
        metrics_path=args.metrics,
        length_hist_path=args.length_hist,
        min_count=p.min_count,
        val_size=p.val_size,
        seed=p.seed,
        num_workers=p.num_workers,
        ngrams=p.ngrams,
        ngram_min_count=p.ngram_min_count,
    )
    print(f"prepare: vocabulary of {metrics['vocab_size']} words, rows {metrics['rows']}")


if __name__ == "__main__":
    run_stage(
        main,
        __doc__,
        {
            "--raw": "raw data folder (paths.raw_dir)",
            "--out": "prepared data folder (paths.prepared_dir)",
            "--metrics": "prepare metrics JSON (paths.prepare_metrics)",
            "--length-hist": "length histogram CSV (paths.length_hist)",
        },
    )

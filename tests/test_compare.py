"""agnews.experiments.compare on `dvc exp show --json`-shaped input: a row per run, 120 columns."""

from agnews.experiments.compare import collect, model_label, render, table_cells

PATHS = {"model": "models/model.pt", "test_metrics": "metrics/test.json",
         "train_live_dir": "dvclive/train"}  # fmt: skip


def _exp(name, model=None, train=None, val=0.9, test=0.89, state=None, error=None, paths=None):
    paths = {**PATHS, **(paths or {})}
    params = {
        "paths": paths,
        "data": {"local_dir": "data/external/x"},
        "prepare": {"min_count": 25},
        "model": {"cell": "rnn", "layers": 1, "bidirectional": "none", "pooling": "max",
                  "fixed_len": None, "ngram_dim": 0, "embedding_dim": 256, **(model or {})},
        "train": {"epochs": 5, "lr": 0.001, "batch_size": 32, "seed": 53, **(train or {})},
    }  # fmt: skip
    data = {
        "rev": name * 8,
        "params": {"params.yaml": {"data": params}},
        "metrics": {
            paths["test_metrics"]: {"data": {"accuracy": test, "macro_f1": test - 0.001}},
            f"{paths['train_live_dir']}/metrics.json": {
                "data": {"best_val_acc": val, "train_seconds": 123.4}
            },
        },
    }
    return {"executor": {"state": state} if state else None, "name": name,
            "revs": [{"name": name, "data": data, "error": error}]}  # fmt: skip


def _shown():
    base = _exp("main")["revs"][0]["data"]
    return [
        {"rev": "workspace", "name": None, "data": base, "experiments": []},
        {
            "rev": "abc1234def",
            "name": "main",
            "data": base,
            "experiments": [
                _exp("gru-run", model={"cell": "gru"}, val=0.91, test=0.905),
                _exp(
                    "best-run",
                    model={
                        "cell": "lstm",
                        "layers": 2,
                        "bidirectional": "all",
                        "pooling": "flatten+mean+max",
                        "fixed_len": 70,
                        "embedding_dim": 128,
                    },
                    train={"lr": 0.002, "batch_size": 64},
                ),
                _exp("waiting", state="queued"),
                _exp("broken", error={"msg": "failed"}),
            ],
        },
    ]


def test_one_row_per_run_in_120_columns_with_what_decides():
    rows, base = collect(_shown())
    assert [r.name for r in rows] == ["main", "gru-run", "best-run", "waiting", "broken"]
    table = render(table_cells(rows, base), 120, markdown=False).splitlines()
    assert max(len(line) for line in table) <= 120
    assert table[0].split()[:5] == ["experiment", "model", "ep", "lr", "batch"]
    gru = next(line for line in table if line.startswith("gru-run"))
    assert " gru max " in gru and " 91.00 " in gru and " 90.50 " in gru and " 123" in gru
    best = next(line for line in table if line.startswith("best-run"))
    assert "lstm 2x bi flatten70+mean+max" in best and "0.002" in best and " 64 " in best
    assert "model.embedding_dim=128" in best  # other changes, the shown ones left out
    assert "model.cell" not in best and "paths." not in best
    assert "queued" in next(line for line in table if line.startswith("waiting"))
    assert "failed" in next(line for line in table if line.startswith("broken"))


def test_markdown_and_narrow_tables_stay_in_width():
    rows, base = collect(_shown())
    lines = render(table_cells(rows, base), 120, markdown=True).splitlines()
    assert all(line.startswith("| ") and line.endswith(" |") for line in lines)
    assert max(len(line) for line in lines) == 120
    assert lines[1].startswith("| ---") and "-: |" in lines[1]  # numbers right-aligned


def test_model_label_names_the_parts():
    p = {"model.cell": "gru", "model.layers": 1, "model.bidirectional": "top",
         "model.pooling": "mean+max", "model.fixed_len": None, "model.ngram_dim": 64}  # fmt: skip
    assert model_label(p) == "gru bi-top mean+max +bag64"
    assert model_label({**p, "model.ngram_logits": True}).endswith("+bag64 +wide")


def test_metrics_are_read_from_the_paths_each_run_names():
    moved = _exp("moved", val=0.93, test=0.92,
                 paths={"test_metrics": "out/t.json", "train_live_dir": "live/tr"})  # fmt: skip
    shown = [{"rev": "abc1234def", "name": "main", "data": _exp("main")["revs"][0]["data"],
              "experiments": [moved]}]  # fmt: skip
    rows, _ = collect(shown)
    [row] = [r for r in rows if r.name == "moved"]
    assert row.test["accuracy"] == 0.92 and row.live["best_val_acc"] == 0.93


def test_rows_never_sort_by_test_accuracy(capsys):
    import pytest

    from agnews.experiments.compare import main

    with pytest.raises(SystemExit) as exc:
        main(["--sort", "test"])
    assert exc.value.code == 2
    assert "invalid choice: 'test'" in capsys.readouterr().err

"""The linear peers run on exactly the pipeline's rows and write what the ladder report reads."""

import json

from helpers import SAMPLE_DIR

from agnews.peers import main
from agnews.prepare import split_rows
from agnews.raw import download


def test_peers_score_the_pipelines_rows(tmp_path, params):
    import yaml

    download("unused", str(SAMPLE_DIR), tmp_path / "raw")
    params["paths"]["raw_dir"] = str(tmp_path / "raw")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "peers.json"
    assert main(["--params", str(tmp_path / "params.yaml"), "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    splits = split_rows(
        tmp_path / "raw", params["prepare"]["val_size"], params["prepare"]["seed"], 1
    )
    assert report["data"]["rows"] == {s: len(v) for s, v in splits.labels.items()}
    names = [p["name"] for p in report["peers"]]
    assert "TF-IDF uni+bigrams + LinearSVC (C=0.5)" in names
    assert any(
        n.startswith("TF-IDF uni+bigrams + LinearSVC (C=") and "best on val" in n for n in names
    )
    assert any(n.startswith("fastText") for n in names)
    for peer in report["peers"]:
        assert 0.25 < peer["test_acc"] <= 1.0 and 0.0 <= peer["val_acc"] <= 1.0, peer
        assert peer["fit_seconds"] >= 0
    assert str(tmp_path) not in json.dumps({k: v for k, v in report.items() if k != "data"})

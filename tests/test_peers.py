"""The linear peers run on exactly the pipeline's rows and write what the ladder report reads."""

import json

from helpers import SAMPLE_DIR

from agnews.peers import main
from agnews.prepare import split_rows
from agnews.raw import download


def test_peers_score_the_pipelines_rows(tmp_path, params, prepared_dir):
    import numpy as np
    import yaml

    from agnews.predictions import read_predictions
    from agnews.shards import load_shard

    download("unused", str(SAMPLE_DIR), tmp_path / "raw")
    params["paths"]["raw_dir"] = str(tmp_path / "raw")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "peers.json"
    preds = tmp_path / "reports" / "peers"
    argv = ["--params", str(tmp_path / "params.yaml"), "--out", str(out), "--predictions", preds]
    assert main([str(a) for a in argv]) == 0
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
        # per-row test predictions in the evaluate stage's format and test order
        p = read_predictions(out.parent / peer["predictions"])
        assert peer["predictions"].startswith("reports/peers/")
        assert p.labels.tolist() == load_shard(prepared_dir / "test.npz").labels.tolist()
        assert round(p.accuracy, 6) == peer["test_acc"], peer
        top2 = np.sort(p.probs, axis=1)[:, -2:]  # the predicted class is the most probable,
        clear = top2[:, 1] - top2[:, 0] > 1e-3  # where 4 decimals tell the top two apart
        assert (p.probs.argmax(axis=1) == p.predicted)[clear].all(), peer
        if not peer["name"].startswith("fastText"):  # it learns nothing from 400 rows
            assert len(set(map(tuple, p.probs.round(2)))) > 10  # probabilities, not one-hot
    assert str(tmp_path) not in json.dumps({k: v for k, v in report.items() if k != "data"})

"""Reading AG News: the real sample, the hub code path (on a local folder), and bad input."""

import gzip
import json

import pytest
from helpers import SAMPLE_DIR

from agnews.data.raw import (
    download,
    find_split_file,
    load_hub,
    load_local,
    read_csv_split,
    read_raw,
    resolve_local_dir,
)
from agnews.errors import DataError

GOOD = '"3","Title","Description"\n"1","T2","D2"\n"2","T3","D3"\n"4","T4","D4"\n'


def _write(tmp_path, train: str | bytes, test: str | bytes = GOOD, gz=False):
    d = tmp_path / "ag"
    d.mkdir(parents=True, exist_ok=True)
    for name, body in (("train", train), ("test", test)):
        data = body.encode() if isinstance(body, str) else body
        if gz:
            (d / f"{name}.csv.gz").write_bytes(gzip.compress(data))
        else:
            (d / f"{name}.csv").write_bytes(data)
    return d


def test_real_sample_reads_with_hf_text_and_labels():
    rows = read_csv_split(SAMPLE_DIR / "train.csv.gz")
    assert len(rows) == 400
    assert sorted({r.label for r in rows}) == [0, 1, 2, 3]
    first = rows[0]
    assert first.label == 2  # class 3 = Business
    assert first.text.startswith("Wall St. Bears Claw Back Into the Black (Reuters) Reuters - ")


def test_download_writes_jsonl_and_source(tmp_path):
    rows = download("unused", str(SAMPLE_DIR), tmp_path / "raw")
    assert rows == {"train": 400, "test": 200}
    source = json.loads((tmp_path / "raw" / "source.json").read_text())
    assert source["source"] == "local"
    assert source["splits"]["test"]["per_class"] == [50, 50, 50, 50]
    assert len(read_raw(tmp_path / "raw", "test")) == 200


def test_plain_and_gzip_csv_read_the_same(tmp_path):
    plain = read_csv_split(find_split_file(_write(tmp_path / "a", GOOD), "train"))
    gz = read_csv_split(find_split_file(_write(tmp_path / "b", GOOD, gz=True), "train"))
    assert plain == gz and len(plain) == 4
    assert plain[0].text == "Title Description"


def test_train_file_found_by_prefix(tmp_path):
    d = _write(tmp_path, GOOD)
    (d / "train.csv").rename(d / "train_partial.csv")
    assert find_split_file(d, "train").name == "train_partial.csv"


@pytest.mark.parametrize(
    ("train", "expect"),
    [
        ("", r"train\.csv: the split is empty"),
        ('"1","only two"\n', r"train\.csv: row 1: expected 3 columns .* found 2"),
        (GOOD + '"2","a","b","c"\n', r"train\.csv: row 5: expected 3 columns .* found 4"),
        (GOOD + '"5","a","b"\n', r"train\.csv: row 5: class '5' is not one of 1, 2, 3, 4"),
        (GOOD + '"x","a","b"\n', r"train\.csv: row 5: class 'x'"),
        ('"1","a","b"\n"2","a","b"\n"3","a","b"\n', r"train\.csv: no rows of class\(es\) Sci/Tech"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path, train, expect):
    d = _write(tmp_path, train)
    with pytest.raises(DataError, match=expect):
        download("unused", str(d), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()  # nothing half-written


def test_non_utf8_names_the_row(tmp_path):
    d = _write(tmp_path, GOOD.encode() + b'"1","caf\xe9","x"\n')
    with pytest.raises(DataError, match=r"train\.csv: row 5: not valid UTF-8"):
        download("unused", str(d), tmp_path / "raw")


def test_truncated_gzip(tmp_path):
    d = _write(tmp_path, GOOD * 50, gz=True)
    blob = (d / "train.csv.gz").read_bytes()
    (d / "train.csv.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match=r"train\.csv\.gz: not a valid gzip file"):
        download("unused", str(d), tmp_path / "raw")


def test_missing_files_and_folder(tmp_path):
    with pytest.raises(DataError, match="is not a directory"):
        download("unused", str(tmp_path / "nowhere"), tmp_path / "raw")
    d = _write(tmp_path, GOOD)
    (d / "test.csv").unlink()
    with pytest.raises(DataError, match=r"expected exactly one test\*\.csv or test\*\.csv\.gz"):
        download("unused", str(d), tmp_path / "raw")


def test_two_candidate_files_are_an_error_not_a_silent_pick(tmp_path):
    d = _write(tmp_path, GOOD)
    (d / "train.csv.gz").write_bytes(gzip.compress(GOOD.encode()))
    with pytest.raises(DataError, match=r"found 2 files \(train\.csv, train\.csv\.gz\)"):
        find_split_file(d, "train")


def test_utf8_byte_order_mark_is_dropped(tmp_path):
    d = _write(tmp_path, b"\xef\xbb\xbf" + GOOD.encode())
    rows = read_csv_split(find_split_file(d, "train"))
    assert rows[0].label == 2 and rows[0].text == "Title Description"


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        ("\ufeff" + GOOD, "UTF-16 text"),  # encoded as UTF-16 below
        (GOOD + '"1","a\x00b","c"\n', "row 5: NUL byte"),
        (GOOD + '"1","' + "x" * 200_000 + '","c"\n', r"row 5: a field longer than 131,072"),
    ],
)
def test_encodings_binary_and_huge_fields_are_one_clear_error(tmp_path, body, expect):
    data = body.encode("utf-16") if expect == "UTF-16 text" else body.encode()
    d = _write(tmp_path, data)
    with pytest.raises(DataError, match=r"train\.csv: " + expect):
        download("unused", str(d), tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


def test_relative_local_dir_is_read_from_the_project_root(tmp_path, monkeypatch):
    project = tmp_path / "project"
    d = _write(project / "data" / "external", GOOD)
    monkeypatch.chdir(project)
    assert resolve_local_dir("data/external/ag") == d
    splits, source = load_local("data/external/ag")
    assert len(splits["train"]) == 4
    assert source["local_dir"] == "data/external/ag"  # as written: no machine path recorded
    assert source["files"]["train"] == {"file": "train.csv", "md5": source["files"]["train"]["md5"]}


def test_queued_experiment_finds_a_git_ignored_relative_dir_in_its_project(tmp_path):
    project = tmp_path / "project"
    d = _write(project / "data" / "external", GOOD)
    copy = project / ".dvc" / "tmp" / "exps" / "tmpabc123"  # where DVC runs a queued experiment
    copy.mkdir(parents=True)
    assert resolve_local_dir("data/external/ag", cwd=copy) == d
    temp = project / ".dvc" / "tmp" / "exps" / "standalone" / "tmpxyz"  # dvc exp run --temp
    temp.mkdir(parents=True)
    assert resolve_local_dir("data/external/ag", cwd=temp) == d
    # a folder the copy has itself (one git tracks) wins
    own = _write(copy / "data" / "external", GOOD)
    assert resolve_local_dir("data/external/ag", cwd=copy) == own
    # anywhere else a missing relative folder stays missing
    assert not resolve_local_dir("data/external/ag", cwd=tmp_path).exists()


def test_failed_download_keeps_the_previous_output(tmp_path):
    good = _write(tmp_path / "good", GOOD)
    download("unused", str(good), tmp_path / "raw")
    before = (tmp_path / "raw" / "train.jsonl").read_text()
    bad = _write(tmp_path / "bad", GOOD + '"9","a","b"\n')
    with pytest.raises(DataError):
        download("unused", str(bad), tmp_path / "raw")
    assert (tmp_path / "raw" / "train.jsonl").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".raw")] == []


def test_hub_path_reads_a_datasets_folder(tmp_path):
    """The default (hub) code path, fed a local folder that datasets.load_dataset understands."""
    splits, source = load_hub(_hub_folder(tmp_path, _hub_split("train"), test=_hub_split("test")))
    assert source["source"] == "hub" and len(splits["train"]) == 8
    assert splits["test"][1].label == 1 and splits["test"][1].text == "test text 1"


def test_hub_failure_suggests_local_dir(tmp_path):
    with pytest.raises(DataError, match=r"data\.local_dir"):
        load_hub(str(tmp_path / "no-such-dataset"))


def _hub_split(prefix: str = "") -> dict:
    """8 well-formed rows, two of each class."""
    return {"text": [f"{prefix} text {i}".strip() for i in range(8)], "label": [0, 1, 2, 3] * 2}


def _hub_folder(tmp_path, train: dict, test: dict | None) -> str:
    """A folder datasets.load_dataset reads as a dataset: train.parquet and, unless `test` is
    None, test.parquet."""
    import datasets

    d = tmp_path / "hubcopy"
    d.mkdir()
    for split, columns in (("train", train), ("test", test)):
        if columns is not None:
            datasets.Dataset.from_dict(columns).to_parquet(str(d / f"{split}.parquet"))
    return str(d)


@pytest.mark.parametrize(
    ("train", "message"),
    [
        (
            {"text": ["a"] * 4, "label": [0, 1, 2, 4]},
            r"hubcopy/train: row 3: label 4 is not in 0\.\.3",
        ),
        ({"text": ["a"] * 4, "label": [0, 1, -1, 3]}, r"hubcopy/train: row 2: label -1 is not"),
        (
            {"text": ["a", None, "c", "d"], "label": [0, 1, 2, 3]},
            r"train: row 1: text is not a string",
        ),
        ({"text": ["a"] * 4}, r"hubcopy/train: missing column\(s\) label"),
        ({"body": ["a"] * 4, "label": [0, 1, 2, 3]}, r"hubcopy/train: missing column\(s\) text"),
        (
            {"text": ["a"] * 3, "label": [0, 1, 2]},
            r"hubcopy/train: no rows of class\(es\) Sci/Tech",
        ),
    ],
)
def test_hub_path_rejects_bad_rows_naming_split_and_row(tmp_path, train, message):
    # a folder's splits must share their columns for datasets to load it at all
    test = train if {"text", "label"} - set(train) else _hub_split()
    with pytest.raises(DataError, match=message):
        load_hub(_hub_folder(tmp_path, train, test))


def test_hub_path_keeps_every_row_and_label(tmp_path):
    splits, source = load_hub(
        _hub_folder(tmp_path, {"text": ["w", "x", "y", "z"], "label": [3, 2, 1, 0]}, _hub_split())
    )
    assert [(e.label, e.text) for e in splits["train"]] == [(3, "w"), (2, "x"), (1, "y"), (0, "z")]
    assert len(splits["test"]) == 8 and set(source["fingerprints"]) == {"train", "test"}
    assert source["dataset"].endswith("hubcopy")


def test_hub_failure_message_names_the_dataset_and_the_way_out(tmp_path):
    with pytest.raises(DataError) as err:
        load_hub(str(tmp_path / "no-such-dataset"))
    text = str(err.value)
    assert text.startswith("data.hub_dataset: cannot load ") and "no-such-dataset" in text
    assert text.endswith("Offline? Point data.local_dir at AG News CSV files instead.")


def test_hub_dataset_without_a_test_split_is_named(tmp_path):
    with pytest.raises(DataError, match=r"hubcopy: no 'test' split \(found train\)"):
        load_hub(_hub_folder(tmp_path, _hub_split(), test=None))


def test_hub_revision_is_asked_for_and_recorded(tmp_path, monkeypatch):
    """data.hub_revision pins the hub dataset: it reaches load_dataset and source.json."""
    import datasets

    folder = _hub_folder(tmp_path, _hub_split("train"), test=_hub_split("test"))
    real, asked = datasets.load_dataset, []

    def spy(name, **kwargs):
        asked.append(kwargs.get("revision"))
        return real(name)  # a local folder has no revisions

    monkeypatch.setattr(datasets, "load_dataset", spy)
    rows = download(folder, None, tmp_path / "raw", hub_revision="0123abc")
    assert rows == {"train": 8, "test": 8} and asked == ["0123abc"]
    source = json.loads((tmp_path / "raw" / "source.json").read_text())
    assert source["source"] == "hub" and source["revision"] == "0123abc"

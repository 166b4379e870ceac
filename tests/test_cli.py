"""Stage entry points: a full disk (or any OS error), bad params and a crash never leave a
half-written output, and the user gets one `error:` line, not a traceback."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE_DIR, TINY, committed_params, override

from agnews.cli import run_stage
from agnews.raw import download


def _params_file(tmp_path: Path, **changes) -> Path:
    import yaml

    params = override(committed_params(), {**TINY, "data.local_dir": str(SAMPLE_DIR), **changes})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _download_main(args, cfg) -> None:
    download(cfg.data.hub_dataset, cfg.data.local_dir, args.out)


def _run(monkeypatch, argv: list[str]) -> int:
    monkeypatch.setattr(sys, "argv", ["stage", *argv])
    with pytest.raises(SystemExit) as exit_:
        run_stage(_download_main, "doc", {"--out": "raw folder"})
        raise SystemExit(0)
    return exit_.value.code


def test_a_full_disk_is_one_line_and_keeps_the_previous_output(tmp_path, monkeypatch, capsys):
    params, out = _params_file(tmp_path), tmp_path / "raw"
    assert _run(monkeypatch, ["--params", str(params), "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    real_write_text = Path.write_text

    def full_disk(self, *args, **kwargs):
        if self.name == "source.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    capsys.readouterr()
    assert _run(monkeypatch, ["--params", str(params), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "No space left on device; outputs were not written" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".raw")] == []  # no debris


def test_a_bad_param_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    params = _params_file(tmp_path, **{"train.lr": "fast"})
    assert _run(monkeypatch, ["--params", str(params), "--out", str(tmp_path / "raw")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {params}: train.lr: 'fast' is invalid; expected float\n"
    assert not (tmp_path / "raw").exists()


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch):
    """Only the user's errors are turned into one line; a programming error stays visible."""
    params = _params_file(tmp_path)

    def buggy(args, cfg):
        raise KeyError("a bug")

    monkeypatch.setattr(sys, "argv", ["stage", "--params", str(params), "--out", "x"])
    with pytest.raises(KeyError):
        run_stage(buggy, "doc", {"--out": "raw folder"})

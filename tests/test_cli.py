"""Stage entry points: a full disk (or any OS error), bad params and a crash never leave a
half-written output, and the user gets one `error:` line, not a traceback."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
from helpers import SAMPLE_DIR, TINY, committed_params, override

from agnews.cli import run_stage
from agnews.data.raw import download


def _params_file(tmp_path: Path, **changes) -> Path:
    import yaml

    params = override(committed_params(), {**TINY, "data.local_dir": str(SAMPLE_DIR), **changes})
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _download_main(args, cfg) -> None:
    download(cfg.data.hub_dataset, cfg.data.local_dir, args.out, cfg.data.hub_revision)


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


class _FillingDisk:
    """A file that takes `room` bytes, then fails every write with ENOSPC like a disk that fills
    up mid-save, while flush and close still succeed (so torch's own error is what surfaces)."""

    def __init__(self, path, mode, room=1000):
        self.file, self.room = open(path, mode), room  # noqa: SIM115

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()


@pytest.mark.parametrize("disk", ["/dev/full", "fills mid-save"])
def test_a_disk_that_fills_during_the_checkpoint_save_is_one_line(
    tmp_path, monkeypatch, capsys, disk
):
    """torch.save onto a full disk: /dev/full (every write and the final flush fail) or a disk
    that fills up mid-save (torch's zip writer raises its own RuntimeError, the OSError only its
    context). Either way the stage says one `error: <checkpoint>: ...` line."""
    import contextlib

    import torch

    from agnews.model import checkpoints

    if disk == "/dev/full":

        @contextlib.contextmanager
        def onto_a_full_disk(path):
            yield Path("/dev/full")

        monkeypatch.setattr(checkpoints, "atomic_path", onto_a_full_disk)
    else:
        monkeypatch.setattr(checkpoints, "open", _FillingDisk, raising=False)
    target = tmp_path / "model.pt"

    def save_main(args, cfg) -> None:
        checkpoints.save_atomically(target, {"weights": torch.zeros(100_000)})

    monkeypatch.setattr(sys, "argv", ["stage", "--params", str(_params_file(tmp_path))])
    with pytest.raises(SystemExit) as exit_:
        run_stage(save_main, "doc", {})
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1, err
    assert err == f"error: {target}: No space left on device; outputs were not written\n"
    assert list(tmp_path.glob(".model.pt*")) == [] and not target.exists()  # no debris

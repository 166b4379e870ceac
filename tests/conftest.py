"""Shared fixtures: the project's params, the real-data sample, small configs, prepared data."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SAMPLE_DIR, TINY, committed_params, download_and_prepare, override

from agnews.config import Config, config_from_dict


@pytest.fixture
def params() -> dict:
    """params.yaml as committed, as a plain dict (a fresh copy per test): the tests do not
    depend on what a user changed in the workspace's params.yaml."""
    return committed_params()


@pytest.fixture
def tiny_config(params) -> Config:
    return config_from_dict(override(params, TINY))


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory) -> Path:
    """The real-data sample, downloaded (read locally) and prepared once per session."""
    root = tmp_path_factory.mktemp("prepared")
    download_and_prepare(SAMPLE_DIR, root, min_count=1, val_size=0.2, seed=0)
    return root / "out"


@pytest.fixture(scope="session")
def trained_model(prepared_dir, tmp_path_factory) -> Path:
    """A tiny model trained for one epoch on the prepared sample (checkpoint path)."""
    from agnews.model.training import train_model

    cfg = config_from_dict(override(committed_params(), TINY))
    out = tmp_path_factory.mktemp("trained")
    train_model(prepared_dir, out / "model.pt", out / "live", cfg.model, cfg.train)
    return out / "model.pt"

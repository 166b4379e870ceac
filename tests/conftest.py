"""Shared fixtures: the project's params, the real-data sample, small configs, prepared data."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import SAMPLE_DIR, TINY, committed_params, download_and_prepare, override

from agnews.config import Config, config_from_dict

# The files whose tests take minutes (real DVC pipelines, a Ray cluster, storage servers, a
# browser), slowest first: run before the rest, so that with `./test.sh`'s two processes
# (pytest-xdist, one file at a time per process) the short files fill in beside them instead of
# a long file starting last and running alone.
SLOW_FIRST = (
    "test_ray_cluster.py",
    "test_pipeline_e2e.py",
    "test_team_remote.py",
    "test_plots_offline.py",
    "test_serve_load.py",
    "test_bench.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow files first (SLOW_FIRST's order), the rest as collected; a file's own order kept."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))


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

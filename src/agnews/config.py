"""Typed, validated view of params.yaml.

params.yaml is the single source of configuration: every default and the reason for it lives
there. This module only checks it: each section maps onto a frozen dataclass, unknown or missing
keys raise, enumerated values must be one of their choices, sizes must be positive. Every stage
loads and validates the whole file before it does any work, so a typo fails in seconds, not after
an hour of training.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from agnews.errors import ConfigError
from agnews.yaml12 import load_yaml

POOLING_MODES = ("max", "mean", "last", "flatten")
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are unsigned 32/64-bit; keep both happy
# Upper bounds of the model's sizes: far above any preset (the largest is flatten_dim 1024), low
# enough that a typo (or a damaged checkpoint's config) fails here instead of allocating
# without bound. 0 turns flatten_dim's projection and ngram_dim's bag off.
MAX_ENSEMBLE = 10  # train.ensemble: members trained one after another, each a whole run
SIZE_LIMITS = {
    "embedding_dim": 8192,
    "hidden_size": 8192,
    "layers": 16,
    "head_hidden": 8192,
    "head_layers": 16,
    "flatten_dim": 16384,
    "ngram_dim": 4096,
}


@dataclass(frozen=True)
class PathsConfig:
    corpus_dir: str  # the git-tracked AG News CSV folders; a change there reruns download
    params_check: str  # check's marker: params.yaml is valid (every stage depends on it)
    raw_dir: str  # download's output: train.jsonl, test.jsonl, source.json
    prepared_dir: str  # prepare's output: vocab.json and the train/val/test shards
    prepare_metrics: str  # vocabulary size, split sizes, length coverage table
    length_hist: str  # text-length histogram (DVC plot data)
    model: str  # the checkpoint selected on validation accuracy
    train_live_dir: str  # dvclive directory of the train stage
    train_state: str  # resumable training state (train.resume), deleted when training ends
    test_metrics: str  # evaluate's metrics JSON
    confusion: str  # evaluate's (actual, predicted) rows for the confusion-matrix plot
    predictions: str  # evaluate's per-test-row labels and probabilities (CSV)
    errors: str  # evaluate's error analysis, Markdown, readable in a terminal
    per_class: str  # evaluate's per-class precision/recall/F1 rows for the bar chart
    calibration: str  # evaluate's calibration metrics JSON (ECE before/after temperature)
    reliability: str  # evaluate's reliability-diagram rows (validation and test)


@dataclass(frozen=True)
class DataConfig:
    hub_dataset: str  # HuggingFace dataset id, used when local_dir is null
    hub_revision: str | None  # the hub dataset's git revision (a commit); null = its newest
    local_dir: str | None  # folder with AG News CSVs in the original format; null = hub

    def __post_init__(self) -> None:
        rev = self.hub_revision
        _check(
            rev is None or (rev != "" and not any(c.isspace() for c in rev)),
            "data.hub_revision",
            "must be a revision of the hub dataset (a commit hash, tag or branch) or null",
        )


@dataclass(frozen=True)
class PrepareConfig:
    min_count: int  # keep words seen more than this many times in the training split
    val_size: float  # share of train carved out (stratified) as the validation split
    seed: int  # seed of the validation split
    num_workers: int  # tokenizer processes; 0 = one per CPU core
    ngrams: int  # highest word n-gram order kept for the bag-of-n-grams path; 0 = none
    ngram_min_count: int  # keep n-grams seen more than this many times in the training split

    def __post_init__(self) -> None:
        _check(self.min_count >= 0, "prepare.min_count", "must be >= 0")
        _check(0.0 < self.val_size < 1.0, "prepare.val_size", "must be in (0, 1)")
        _check_seed(self.seed, "prepare.seed")
        _check(self.num_workers >= 0, "prepare.num_workers", "must be >= 0 (0 = one per core)")
        _check(0 <= self.ngrams <= 5, "prepare.ngrams", "must be in 0..5 (0 = no n-grams)")
        _check(self.ngram_min_count >= 0, "prepare.ngram_min_count", "must be >= 0")


@dataclass(frozen=True)
class ModelConfig:
    cell: Literal["rnn", "gru", "lstm"]
    embedding_dim: int
    hidden_size: int
    layers: int
    bidirectional: Literal["none", "all", "top"]  # "top": only the last layer is bidirectional
    layer_activation: Literal["none", "tanh"]  # applied between stacked recurrent layers
    rnn_dropout: float  # dropout between stacked recurrent layers
    embedding_dropout: float
    pooling: str  # "+"-joined subset of max, mean, last, flatten, e.g. "flatten+mean+max"
    fixed_len: int | None  # tokens per text (pad/truncate) for flatten pooling
    flatten_dim: int  # size the flattened outputs are projected to; 0 = no projection
    head_hidden: int
    head_layers: int
    head_dropout: float
    head_concat_pooled: bool  # concatenate the pooled vector to the first head layer's output
    skip_embedding: bool  # also pool the embeddings themselves (a skip connection past the RNN)
    ngram_dim: int  # size of the bag-of-n-grams vector joined to the pooled one; 0 = no bag
    ngram_logits: bool  # add a linear model over the TF-IDF-weighted n-grams to the logits
    encode_padding: bool  # the notebook's flatten models: padding is read and pooled like words

    def __post_init__(self) -> None:
        for key, most in SIZE_LIMITS.items():
            value = getattr(self, key)
            low = 0 if key in ("flatten_dim", "ngram_dim") else 1
            _check(low <= value <= most, f"model.{key}", f"must be in {low}..{most}")
        for key in ("rnn_dropout", "embedding_dropout", "head_dropout"):
            _check(0.0 <= getattr(self, key) < 1.0, f"model.{key}", "must be in [0, 1)")
        modes = self.pooling_modes
        for mode in modes:
            _check(
                mode in POOLING_MODES,
                "model.pooling",
                f"unknown mode {mode!r} in {self.pooling!r}; valid modes: "
                f"{', '.join(POOLING_MODES)} (join several with '+')",
            )
        _check(len(set(modes)) == len(modes), "model.pooling", f"{self.pooling!r} repeats a mode")
        if "flatten" in modes:
            _check(
                self.fixed_len is not None,
                "model.fixed_len",
                "flatten pooling needs a fixed length (e.g. model.fixed_len=70)",
            )
        if self.fixed_len is not None:
            _check(3 <= self.fixed_len <= 4096, "model.fixed_len", "must be in 3..4096 (bos, eos)")
            _check(
                "flatten" in modes,
                "model.fixed_len",
                f"{self.fixed_len} is set but model.pooling={self.pooling!r} has no flatten: it "
                "would only cut every text to its first tokens; set model.fixed_len=null (or "
                "use train.max_len to truncate), or add flatten to model.pooling",
            )
        if self.encode_padding:
            _check(
                self.fixed_len is not None,
                "model.encode_padding",
                "needs model.fixed_len (with variable-width batches a text's result would "
                "depend on the longest text it is batched with)",
            )
        if self.bidirectional == "top":
            _check(self.layers >= 2, "model.bidirectional", "'top' needs model.layers >= 2")
        if self.head_concat_pooled:
            _check(
                self.head_layers >= 2,
                "model.head_concat_pooled",
                "needs model.head_layers >= 2 (the pooled vector joins after the first layer)",
            )

    @property
    def pooling_modes(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.pooling.split("+"))


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    lr: float
    optimizer: Literal["adam", "adamw", "sgd"]
    weight_decay: float
    lr_schedule: Literal["constant", "linear", "cosine"]
    warmup_steps: int
    grad_clip: float  # max global grad norm; 0 = off
    word_dropout: float  # share of words replaced by <unk> in training batches
    evals_per_epoch: int  # validation passes per epoch (the notebook did 2)
    max_len: int  # tokens (with bos/eos) beyond which a text is truncated
    bucketing: bool  # sort by length within shuffled chunks so batches carry little padding
    bucket_chunk: int  # batches per sorting chunk
    eval_batch_size: int
    log_every: int  # optimizer steps between per-step loss points
    seed: int
    device: Literal["auto", "cpu", "cuda"]
    amp: bool  # bf16 autocast on CUDA and on CPUs with native bf16 (agnews.runtime)
    resume: bool  # save state every epoch; a rerun continues after the last complete epoch
    ngram_lr: float  # learning rate of the n-gram linear model (model.ngram_logits)
    ngram_weight_decay: float  # L2 penalty on the n-gram linear model's weights
    ensemble: int  # models trained from seeds seed..seed+ensemble-1, probabilities averaged
    patience: int  # validation passes without a new best before training stops; 0 = never
    flush_denormal: bool  # flush float32 denormals to zero while training (CPU speed)
    sparse_ngrams: bool  # n-gram tables get sparse gradients and torch.optim.SparseAdam

    def __post_init__(self) -> None:
        for key in (
            "epochs",
            "batch_size",
            "evals_per_epoch",
            "max_len",
            "bucket_chunk",
            "eval_batch_size",
            "log_every",
        ):
            _check(getattr(self, key) > 0, f"train.{key}", "must be a positive integer")
        _check(self.lr > 0, "train.lr", "must be > 0")
        _check(self.lr <= 10, "train.lr", "must be <= 10 (a learning rate above that diverges)")
        _check(0 < self.ngram_lr <= 10, "train.ngram_lr", "must be in (0, 10]")
        _check(self.ngram_weight_decay >= 0, "train.ngram_weight_decay", "must be >= 0")
        _check(
            1 <= self.ensemble <= MAX_ENSEMBLE, "train.ensemble", f"must be in 1..{MAX_ENSEMBLE}"
        )
        _check(self.patience >= 0, "train.patience", "must be >= 0 (0 = no early stopping)")
        _check(self.seed + self.ensemble - 1 <= MAX_SEED, "train.seed", "+ ensemble - 1 overflows")
        _check(
            not (self.resume and self.ensemble > 1),
            "train.resume",
            "is not supported with train.ensemble > 1 (each member takes one run's time: "
            "train them as separate runs to resume them)",
        )
        _check(self.weight_decay >= 0, "train.weight_decay", "must be >= 0")
        _check(self.warmup_steps >= 0, "train.warmup_steps", "must be >= 0")
        _check(self.grad_clip >= 0, "train.grad_clip", "must be >= 0 (0 turns clipping off)")
        _check(0.0 <= self.word_dropout < 1.0, "train.word_dropout", "must be in [0, 1)")
        _check(self.max_len >= 3, "train.max_len", "must be >= 3 (bos, a word, eos)")
        _check_seed(self.seed, "train.seed")


@dataclass(frozen=True)
class EvaluateConfig:
    batch_size: int
    calibrate: bool  # fit a temperature on validation and report ECE before and after it
    ece_bins: int  # equal-width confidence bins of the expected calibration error
    error_examples: int  # headlines shown per confused pair and among the confident mistakes

    def __post_init__(self) -> None:
        _check(self.batch_size > 0, "evaluate.batch_size", "must be a positive integer")
        _check(2 <= self.ece_bins <= 100, "evaluate.ece_bins", "must be in 2..100")
        _check(1 <= self.error_examples <= 100, "evaluate.error_examples", "must be in 1..100")


@dataclass(frozen=True)
class Config:
    paths: PathsConfig
    data: DataConfig
    prepare: PrepareConfig
    model: ModelConfig
    train: TrainConfig
    evaluate: EvaluateConfig

    def __post_init__(self) -> None:
        if self.model.ngram_dim:
            _check(
                self.prepare.ngrams >= 1,
                "model.ngram_dim",
                f"{self.model.ngram_dim} needs n-grams from prepare: set prepare.ngrams >= 1 "
                "(or model.ngram_dim=0)",
            )
        if self.model.ngram_logits:
            _check(
                self.prepare.ngrams >= 1,
                "model.ngram_logits",
                "needs n-grams from prepare: set prepare.ngrams >= 1 (or model.ngram_logits=false)",
            )
        if self.train.sparse_ngrams and uses_ngrams(self.model):
            t = self.train
            _check(
                t.optimizer in ("adam", "adamw"),
                "train.sparse_ngrams",
                f"needs train.optimizer adam or adamw (SparseAdam updates the n-gram tables), "
                f"not {t.optimizer}; or set train.sparse_ngrams=false",
            )
            decays = {"train.ngram_weight_decay": t.ngram_weight_decay}
            if self.model.ngram_dim:  # the bag table is in the network's group
                decays["train.weight_decay"] = t.weight_decay
            for key, value in decays.items():
                _check(
                    value == 0,
                    "train.sparse_ngrams",
                    f"SparseAdam has no weight decay, but {key}={value}: set it to 0 or set "
                    "train.sparse_ngrams=false (dense Adam over the whole n-gram tables)",
                )
        if self.model.fixed_len is not None:
            _check(
                self.model.fixed_len <= self.train.max_len,
                "model.fixed_len",
                f"{self.model.fixed_len} exceeds train.max_len={self.train.max_len}",
            )


def uses_ngrams(cfg: ModelConfig) -> bool:
    """Whether the model reads each text's n-grams (prepared with prepare.ngrams >= 1) through
    its n-gram tables (model.ngram_dim, model.ngram_logits)."""
    return cfg.ngram_dim > 0 or cfg.ngram_logits


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {message}")


def _check_seed(seed: int, key: str) -> None:
    _check(0 <= seed <= MAX_SEED, key, f"must be in 0..{MAX_SEED}")


def _type_ok(value: Any, hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_type_ok(value, arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    raise TypeError(f"unsupported config type {hint!r}")


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(hint))
    if typing.get_origin(hint) in (types.UnionType, typing.Union):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    return "null" if hint is type(None) else hint.__name__


def _check_keys(raw: Any, valid: list[str], prefix: str, noun: str) -> None:
    """`raw` must be a mapping with exactly the keys `valid` (errors start with `prefix`)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix}expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise ConfigError(
            f"{prefix}unknown {noun}(s) {', '.join(map(str, unknown))}; "
            f"valid {noun}s: {', '.join(valid)}"
        )
    missing = [k for k in valid if k not in raw]
    if missing:
        raise ConfigError(f"{prefix}missing {noun}(s) {', '.join(missing)}")


def section_from_dict(cls: type, raw: Any, name: str) -> Any:
    """Build dataclass `cls` from mapping `raw` (params section `name`), rejecting any mismatch."""
    hints = typing.get_type_hints(cls)
    fields = [f.name for f in dataclasses.fields(cls)]
    _check_keys(raw, fields, f"{name}: ", "key")
    for key in fields:
        value = raw[key]
        if not _type_ok(value, hints[key]):
            raise ConfigError(
                f"{name}.{key}: {value!r} is invalid; expected {_describe(hints[key])}"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name}.{key}: {value!r} is invalid; expected a finite number")
        if isinstance(value, int) and not isinstance(value, bool) and hints[key] is float:
            raw = {**raw, key: float(value)}
    return cls(**{k: raw[k] for k in fields})


def config_from_dict(raw: Any) -> Config:
    """Validate a whole params mapping (as parsed from params.yaml)."""
    sections = {f.name: typing.get_type_hints(Config)[f.name] for f in dataclasses.fields(Config)}
    _check_keys(raw, list(sections), "", "section")
    return Config(**{s: section_from_dict(cls, raw[s], s) for s, cls in sections.items()})


def load_params(path: str | Path = "params.yaml") -> Config:
    """Read and validate params.yaml; every error names the file and the offending key."""
    path = Path(path)
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return config_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def to_dict(section: Any) -> dict[str, Any]:
    """Plain-dict form of a config section (stored in checkpoints and metrics)."""
    return dataclasses.asdict(section)

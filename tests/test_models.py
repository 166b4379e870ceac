"""Pooling ignores padding: a text's logits do not depend on what it is batched with."""

import dataclasses

import pytest
import torch
import yaml
from helpers import ROOT

from agnews.config import ModelConfig
from agnews.data.batching import InputSpec
from agnews.experiments.presets import load_presets, preset_config
from agnews.model.classifier import TextClassifier, pool

VOCAB, PAD = 50, 0


def _model(cfg: ModelConfig, vocab: int = VOCAB) -> TextClassifier:
    return TextClassifier(cfg, vocab, InputSpec(PAD, 256, cfg.fixed_len))


def _cfg(tiny_config, **changes) -> ModelConfig:
    return dataclasses.replace(tiny_config.model, **changes)


def _logits_alone_and_padded(model, fixed_len=None):
    """Logits of a 5-token text run alone vs. batched (padded) beside a 12-token text."""
    torch.manual_seed(0)
    short = torch.randint(1, VOCAB, (5,))
    long = torch.randint(1, VOCAB, (12,))
    width = fixed_len or 5
    alone = torch.full((1, width), PAD)
    alone[0, :5] = short
    width = fixed_len or 12
    batch = torch.full((2, width), PAD)
    batch[0, :5] = short
    batch[1, : min(12, width)] = long[:width]
    model.eval()
    with torch.no_grad():
        a = model(alone, torch.tensor([5]))
        b = model(batch, torch.tensor([5, min(12, width)]))
    return a[0], b[0]


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("bidirectional", ["none", "all", "top"])
@pytest.mark.parametrize("pooling", ["max", "mean", "last", "max+mean+last"])
def test_padding_does_not_change_pooled_result(tiny_config, cell, bidirectional, pooling):
    cfg = _cfg(tiny_config, cell=cell, bidirectional=bidirectional, pooling=pooling, layers=2)
    torch.manual_seed(1)
    a, b = _logits_alone_and_padded(_model(cfg))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("bidirectional", ["none", "all"])
@pytest.mark.parametrize("pooling", ["max", "mean", "last", "max+mean"])
def test_skip_embedding_ignores_padding_too(tiny_config, bidirectional, pooling):
    cfg = _cfg(tiny_config, cell="gru", bidirectional=bidirectional, pooling=pooling)
    torch.manual_seed(1)
    a, b = _logits_alone_and_padded(_model(_skip(cfg)))
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def _skip(cfg: ModelConfig) -> ModelConfig:
    return dataclasses.replace(cfg, skip_embedding=True)


def test_skip_embedding_pools_the_embeddings_beside_the_encoder(tiny_config):
    cfg = _cfg(tiny_config, cell="gru", bidirectional="all", pooling="mean+max", hidden_size=8)
    cfg = dataclasses.replace(cfg, embedding_dim=5, head_layers=1, head_dropout=0.0)
    model = _model(_skip(cfg))
    assert model.pooled_dim == 2 * (16 + 5)  # (mean, max) x (2H encoder + E embedding)
    # the embedding half of the mean-pooled vector is the mean of the text's embeddings
    captured = {}
    model.head[0].register_forward_hook(lambda m, inp, out: captured.update(x=inp[0]))
    ids = torch.tensor([[3, 4, 5, PAD]])
    model.eval()
    with torch.no_grad():
        model(ids, torch.tensor([3]))
        expected = model.embedding(ids[:, :3]).mean(dim=1)  # (1, E)
    torch.testing.assert_close(captured["x"][:, 16:21], expected)


@pytest.mark.parametrize("bidirectional", ["none", "all"])
@pytest.mark.parametrize("skip", [False, True])
def test_flatten_sees_zeros_past_the_text_end(tiny_config, bidirectional, skip):
    cfg = _cfg(
        tiny_config,
        cell="lstm",
        bidirectional=bidirectional,
        pooling="flatten+mean+max",
        fixed_len=8,
        skip_embedding=skip,
    )
    torch.manual_seed(1)
    a, b = _logits_alone_and_padded(_model(cfg), fixed_len=8)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_pool_modes_on_a_hand_made_tensor():
    out = torch.tensor([[[1.0, -1.0], [3.0, -3.0], [0.0, 0.0]]])  # (B=1, T=3, D=2), 1 pad
    lengths = torch.tensor([2])
    assert pool(out, lengths, "max", False).tolist() == [[3.0, -1.0]]
    assert pool(out, lengths, "mean", False).tolist() == [[2.0, -2.0]]
    assert pool(out, lengths, "last", False).tolist() == [[3.0, -3.0]]
    # bidirectional: forward half from the last real token, backward half from position 0
    assert pool(out, lengths, "last", True).tolist() == [[3.0, -1.0]]
    assert pool(out, lengths, "flatten", False).tolist() == [[1.0, -1.0, 3.0, -3.0, 0.0, 0.0]]
    neg = torch.tensor([[[-5.0], [-7.0], [0.0]]])
    assert pool(neg, lengths, "max", False).tolist() == [[-5.0]]  # padding's 0 is not the max


def test_head_concat_pooled_widens_second_layer(tiny_config):
    cfg = _cfg(tiny_config, head_layers=2, head_concat_pooled=True, hidden_size=8, head_hidden=6)
    model = _model(cfg)
    assert model.head[1][1].in_features == 6 + 8


def test_notebook_best_shapes(tiny_config):
    cfg = _cfg(
        tiny_config,
        cell="lstm",
        layers=2,
        bidirectional="all",
        pooling="flatten+mean+max",
        fixed_len=70,
        hidden_size=8,
        flatten_dim=32,
    )
    model = _model(cfg)
    assert model.flatten_proj[1].in_features == 70 * 16  # fixed_len * 2H
    assert model.pooled_dim == 32 + 16 + 16  # flatten_dim + mean(2H) + max(2H)


PRESETS = load_presets(ROOT / "presets.yaml")


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_trains_one_step(params, name):
    from agnews.model.classifier import uses_ngrams

    cfg = preset_config(PRESETS, name, params).model
    torch.manual_seed(0)
    bag_size = 40 if uses_ngrams(cfg) else None
    model = TextClassifier(cfg, 300, InputSpec(PAD, 256, cfg.fixed_len), bag_size)
    width = cfg.fixed_len or 20
    ids = torch.randint(1, 300, (4, width))
    lengths = torch.tensor([width, width - 3, 5, 3])
    ids[1, width - 3 :] = PAD
    ids[2, 5:] = PAD
    ids[3, 3:] = PAD
    bag = dict(
        bag=torch.randint(0, 40, (10,)), bag_offsets=torch.tensor([0, 3, 5, 9]),
        bag_weights=torch.rand(10),
    ) if bag_size else {}  # fmt: skip
    logits = model(ids, lengths, **bag)
    assert logits.shape == (4, 4)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_presets_file_documents_every_preset():
    raw = yaml.safe_load((ROOT / "presets.yaml").read_text())
    for name, preset in raw.items():
        if preset["notebook_acc"] is None:  # ours, beyond the notebook
            assert "beyond the notebook" in preset["notebook"], name
            continue
        assert preset["notebook"].startswith("In ["), name
        assert isinstance(preset["notebook_acc"], float), name


@pytest.mark.parametrize("bidirectional", ["none", "all"])
def test_the_ngram_bag_does_not_depend_on_the_batch(tiny_config, bidirectional):
    cfg = _cfg(tiny_config, cell="gru", bidirectional=bidirectional, pooling="mean", ngram_dim=6)
    torch.manual_seed(1)
    model = TextClassifier(cfg, VOCAB, InputSpec(PAD, 256, None), bag_size=30).eval()
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 5, 6, 8, 11, 3]])
    bag, offsets = torch.tensor([4, 5, 1, 2, 3, 9]), torch.tensor([0, 2])
    with torch.no_grad():
        both = model(ids, torch.tensor([4, 6]), bag, offsets)
        alone = model(ids[:1, :4], torch.tensor([4]), bag[:2], offsets[:1])
    torch.testing.assert_close(both[0], alone[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="n-gram bag"):
        model(ids, torch.tensor([4, 6]))


def test_reverse_real_tokens_reverses_each_row_in_place_and_is_its_own_inverse():
    from agnews.model.classifier import reverse_real_tokens

    x = torch.arange(2 * 5, dtype=torch.float32).reshape(2, 5, 1)  # rows 0..4 and 5..9
    out = reverse_real_tokens(x, torch.tensor([3, 5]))
    assert out[..., 0].tolist() == [[2, 1, 0, 3, 4], [9, 8, 7, 6, 5]]
    assert torch.equal(reverse_real_tokens(out, torch.tensor([3, 5])), x)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_bidirectional_layer_reads_each_text_both_ways_like_a_lone_sequence(cell):
    """Row by row, each direction equals the cell run on that text alone (what a packed
    sequence computes): the right-to-left one starts at the text's last real token."""
    from agnews.model.classifier import _CELLS, RecurrentLayer

    torch.manual_seed(0)
    layer = RecurrentLayer(_CELLS[cell], 4, 3, bidirectional=True).eval()
    x = torch.randn(3, 6, 4)
    lengths = torch.tensor([6, 2, 4])
    with torch.no_grad():
        out = layer(x, lengths)  # (B, T, 2H)
        for b, n in enumerate(lengths.tolist()):
            text = x[b : b + 1, :n]  # (1, n, I)
            fwd, _ = layer.forward_cell(text)
            bwd, _ = layer.backward_cell(text.flip(1))
            torch.testing.assert_close(out[b, :n, :3], fwd[0])
            torch.testing.assert_close(out[b, :n, 3:], bwd[0].flip(0))


def test_encode_padding_reads_the_padding_the_notebooks_way(tiny_config):
    """The ablation of the notebook's flatten models: still the same answer alone or batched
    (every batch is fixed_len wide), but padding now changes the encoding, and <pad> learns."""
    cfg = _cfg(
        tiny_config, cell="lstm", bidirectional="all", pooling="flatten+mean+max", fixed_len=8
    )
    torch.manual_seed(1)
    notebook = _model(dataclasses.replace(cfg, encode_padding=True))
    a, b = _logits_alone_and_padded(notebook, fixed_len=8)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert notebook.embedding.padding_idx is None
    torch.manual_seed(1)
    ours = _model(cfg)
    ours.load_state_dict(notebook.state_dict())
    c, _ = _logits_alone_and_padded(ours, fixed_len=8)
    assert not torch.allclose(a, c)


def test_the_ngram_bag_is_weighted_by_tf_idf(tiny_config):
    cfg = _cfg(tiny_config, cell="gru", pooling="mean", ngram_dim=6)
    torch.manual_seed(1)
    model = TextClassifier(cfg, VOCAB, InputSpec(PAD, 256, None), bag_size=30).eval()
    ids, lengths = torch.tensor([[2, 7, 9, 3]]), torch.tensor([4])
    bag, offsets = torch.tensor([4, 5]), torch.tensor([0])
    with torch.no_grad():
        a = model(ids, lengths, bag, offsets, torch.tensor([0.9, 0.1]))
        b = model(ids, lengths, bag, offsets, torch.tensor([0.1, 0.9]))
    assert not torch.allclose(a, b)


def test_layer_activation_puts_tanh_between_layers(tiny_config):
    tanh = _model(_cfg(tiny_config, layers=2, layer_activation="tanh"))
    none = _model(_cfg(tiny_config, layers=2, layer_activation="none"))
    assert isinstance(tanh.encoder.activation, torch.nn.Tanh)
    assert isinstance(none.encoder.activation, torch.nn.Identity)
    # the notebook's head ends in tanh -> Linear -> 4 logits
    assert isinstance(tanh.projection[0], torch.nn.Tanh) and len(tanh.projection) == 2

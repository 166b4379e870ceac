"""Benchmark: training samples/s of the notebook's data path vs ours, and prepare's docs/s.

    python bench/throughput.py --data-dir ../shared/data/ag_news [--batches 150] [--device auto]
    python bench/throughput.py --data-dir tests/fixtures/ag_news_sample --batches 1 --repeats 1 \\
        --warmup 1 --size 8 --batch-sizes 32,64          # tiny: the test suite's run

(a) "notebook": a faithful re-implementation of the course notebook's path: `WordDataset`
    lower-cases, strips punctuation and runs nltk `word_tokenize` in `__getitem__` (every epoch),
    `collate_fn_with_padding` pads with Python loops to the longest text of a random batch (max
    256), a shuffling DataLoader feeds the notebook's model (embedding -> nn.RNN/GRU over the
    padded batch -> max pooling over all positions -> head).
(b) "ours": the prepared shards, length-bucketed batches cut with numpy, the padded batch with
    padding-blind pooling (agnews.data.batching + agnews.model.classifier), same sizes (embedding
    and hidden 256, max pooling, one tanh/Linear/dropout head layer).
Both train with Adam on the same real training rows, at batch sizes 32 and 256, for `--batches`
steps after 5 warm-up steps (timed with a CUDA sync on GPU); each figure is the median of
`--repeats` interleaved runs. `--size`, `--batch-sizes` and `--warmup` change those defaults
(for a tiny run: the figures then say nothing about the real sizes).
Then tokenization throughput with 1 and 2 worker processes. Prints tables; nothing is asserted
(this is a measurement, not a test).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import string
import time
from pathlib import Path

import numpy as np
import torch
from nltk.tokenize import word_tokenize
from torch import nn
from torch.utils.data import DataLoader

from agnews.config import load_params
from agnews.data.batching import InputSpec, make_batch, train_order
from agnews.data.raw import load_local
from agnews.data.shards import shard_from_ids
from agnews.data.text import tokenize, tokenize_all
from agnews.data.vocab import build_vocab
from agnews.model.classifier import TextClassifier
from agnews.model.optimizers import make_optimizers
from agnews.runtime import pick_device

# --- (a) the notebook's data path and model, as in its cells 6, 9 and 16 --------------------


class WordDataset:
    def __init__(self, sentences, word2ind):
        self.data = sentences
        self.word2ind = word2ind
        self.unk_id = word2ind["<unk>"]
        self.bos_id = word2ind["<bos>"]
        self.eos_id = word2ind["<eos>"]

    def __getitem__(self, idx):
        processed_text = (
            self.data[idx]["text"].lower().translate(str.maketrans("", "", string.punctuation))
        )
        tokenized_sentence = [self.bos_id]
        tokenized_sentence += [
            self.word2ind.get(word, self.unk_id)
            for word in word_tokenize(processed_text, preserve_line=True)
        ]
        tokenized_sentence += [self.eos_id]
        return {"text": tokenized_sentence, "label": self.data[idx]["label"]}

    def __len__(self):
        return len(self.data)


def make_collate(pad_id, device, max_len=256):
    def collate_fn_with_padding(input_batch):
        seq_lens = [len(x["text"]) for x in input_batch]
        max_seq_len = min(max(seq_lens), max_len)
        new_batch = []
        for sequence in input_batch:
            sequence["text"] = sequence["text"][:max_seq_len]
            for _ in range(max_seq_len - len(sequence["text"])):
                sequence["text"].append(pad_id)
            new_batch.append(sequence["text"])
        sequences = torch.LongTensor(new_batch).to(device)
        labels = torch.LongTensor([x["label"] for x in input_batch]).to(device)
        return {"input_ids": sequences, "label": labels}

    return collate_fn_with_padding


class NotebookModel(nn.Module):
    def __init__(self, cell, hidden_dim, vocab_size, num_classes=4):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, hidden_dim)
        self.rnn = {"rnn": nn.RNN, "gru": nn.GRU}[cell](hidden_dim, hidden_dim, batch_first=True)
        self.linear = nn.Linear(hidden_dim, hidden_dim)
        self.projection = nn.Linear(hidden_dim, num_classes)
        self.non_lin = nn.Tanh()
        self.dropout = nn.Dropout(p=0.1)

    def forward(self, input_batch):
        output, _ = self.rnn(self.embedding(input_batch))
        output = output.max(dim=1)[0]
        output = self.dropout(self.linear(self.non_lin(output)))
        return self.projection(self.non_lin(output))


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_notebook(examples, word2ind, cell, size, batch_size, n_batches, warmup, device):
    torch.manual_seed(0)
    model = NotebookModel(cell, size, len(word2ind)).to(device)
    optimizer = torch.optim.Adam(model.parameters())
    criterion = nn.CrossEntropyLoss()  # (the notebook's ignore_index=pad_id is a bug; no cost)
    loader = DataLoader(
        WordDataset(examples, word2ind),
        shuffle=True,
        batch_size=batch_size,
        collate_fn=make_collate(word2ind["<pad>"], device),
    )
    model.train()
    seen, started, tokens, real = 0, None, 0, 0
    for i, batch in enumerate(loader):
        if i == warmup:
            _sync(device)
            started = time.perf_counter()
        optimizer.zero_grad()
        loss = criterion(model(batch["input_ids"]), batch["label"])
        loss.backward()
        optimizer.step()
        if i >= warmup:
            seen += len(batch["label"])
            tokens += batch["input_ids"].numel()
            real += int((batch["input_ids"] != word2ind["<pad>"]).sum())
        if i == warmup + n_batches - 1:
            break
    if started is None:
        raise SystemExit(
            f"{len(examples)} rows make {len(loader)} batches of {batch_size}: "
            f"none left to time after {warmup} warm-up steps"
        )
    _sync(device)
    return seen / (time.perf_counter() - started), tokens / real


def bench_ours(shard, vocab, model_cfg, train_cfg, batch_size, n_batches, warmup, device):
    torch.manual_seed(0)
    inputs = InputSpec(vocab.pad_id, train_cfg.max_len, model_cfg.fixed_len)
    model = TextClassifier(model_cfg, len(vocab), inputs).to(device)
    (optimizer,) = make_optimizers(model, train_cfg)  # Adam, fused (train.sparse_ngrams off)
    rng = np.random.default_rng(0)
    batches = train_order(shard.lengths, batch_size, rng, True, train_cfg.bucket_chunk)
    model.train()
    seen, started, tokens, real = 0, None, 0, 0
    for i, index in enumerate(batches[: warmup + n_batches]):
        if i == warmup:
            _sync(device)
            started = time.perf_counter()
        batch = make_batch(shard, index, inputs).to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model.classify(batch), batch.labels)
        loss.backward()
        optimizer.step()
        if i >= warmup:
            seen += len(index)
            tokens += batch.ids.numel()
            real += int(batch.lengths.sum())
    _sync(device)
    return seen / (time.perf_counter() - started), tokens / real


def bench_nltk(texts):
    """The notebook's way: nltk word_tokenize on each whole text, one process."""
    started = time.perf_counter()
    for t in texts:
        text = t.lower().translate(str.maketrans("", "", string.punctuation))
        word_tokenize(text, preserve_line=True)
    return len(texts) / (time.perf_counter() - started)


def bench_tokenize(texts, workers):
    """docs/s with `workers` processes, starting from a cold word cache."""
    from agnews.data import text as text_module

    text_module._nltk_word_cached.cache_clear()
    started = time.perf_counter()
    tokenize_all(texts, num_workers=workers)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="folder with AG News CSVs")
    parser.add_argument("--batches", type=int, default=150, help="timed steps per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="measurements; the median is shown")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--size", type=int, default=256, help="embedding and hidden size")
    parser.add_argument("--batch-sizes", default="32,256", help="comma-separated batch sizes")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each timing")
    args = parser.parse_args()

    device = pick_device(args.device)
    cfg = load_params(args.params)
    splits, _ = load_local(Path(args.data_dir))
    train = splits["train"]
    texts = [e.text for e in train]
    tokens = [tokenize(t) for t in texts]
    vocab = build_vocab(tokens, cfg.prepare.min_count)
    shard = shard_from_ids([vocab.encode(t) for t in tokens], [e.label for e in train])
    word2ind = dict(vocab.stoi)
    examples = [{"text": e.text, "label": e.label} for e in train]

    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    print(
        f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"data: {len(train)} real AG News train rows from {args.data_dir}, vocab {len(vocab)}")
    print()
    print("| model | batch | notebook samples/s | ours samples/s | ratio | padded/real tokens |")
    print("|---|---|---|---|---|---|")
    for cell in ("rnn", "gru"):
        model_cfg = dataclasses.replace(
            cfg.model,
            cell=cell,
            pooling="max",
            layers=1,
            bidirectional="none",
            hidden_size=args.size,
            embedding_dim=args.size,
            head_hidden=args.size,
            head_layers=1,
            head_concat_pooled=False,
            fixed_len=None,
        )
        for batch_size in [int(b) for b in args.batch_sizes.split(",")]:
            nb_runs, our_runs = [], []
            for _ in range(args.repeats):  # interleaved, so drift hits both alike
                timing = (batch_size, args.batches, args.warmup, device)
                nb_runs.append(bench_notebook(examples, word2ind, cell, args.size, *timing))
                our_runs.append(bench_ours(shard, vocab, model_cfg, cfg.train, *timing))
            nb, nb_pad = sorted(nb_runs)[len(nb_runs) // 2]
            ours, our_pad = sorted(our_runs)[len(our_runs) // 2]
            print(
                f"| {cell} {args.size} | {batch_size} | {nb:,.0f} | {ours:,.0f} | {ours / nb:.1f}x "
                f"| {nb_pad:.2f} (nb) vs {our_pad:.2f} |"
            )
    all_texts = texts + [e.text for e in splits["test"]]
    full_size = all_texts * 7  # about the full 127,600 texts (120,000 train + 7,600 test)
    print()
    print(
        "| prepare tokenization | 1 worker docs/s | 2 workers docs/s | nltk word_tokenize docs/s |"
    )
    print("|---|---|---|---|")
    nltk_rate = bench_nltk(all_texts)
    for name, docs in (("real texts here", all_texts), ("x7, full-size", full_size)):
        one = sorted(bench_tokenize(docs, 1) for _ in range(args.repeats))[args.repeats // 2]
        two = sorted(bench_tokenize(docs, 2) for _ in range(args.repeats))[args.repeats // 2]
        print(f"| {len(docs):,} {name} | {one:,.0f} | {two:,.0f} | {nltk_rate:,.0f} |")


if __name__ == "__main__":
    main()

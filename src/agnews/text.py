"""The notebook's text preprocessing: lower-case, strip string.punctuation, nltk word_tokenize.

`word_tokenize(..., preserve_line=True)` skips sentence splitting, so no punkt model is needed.
Tokenization runs once, in the prepare stage, in parallel; the output does not depend on the
number of workers (chunks are mapped in order).
"""

from __future__ import annotations

import os
import string
from collections.abc import Sequence
from multiprocessing import get_context

from nltk.tokenize import word_tokenize
from tqdm import tqdm

_STRIP_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """Lower-case and remove every character of `string.punctuation`."""
    return text.lower().translate(_STRIP_PUNCTUATION)


def tokenize(text: str) -> list[str]:
    """Words of `text` after `normalize`, as nltk's Treebank tokenizer splits them."""
    return word_tokenize(normalize(text), preserve_line=True)


def _tokenize_chunk(texts: Sequence[str]) -> list[list[str]]:
    return [tokenize(t) for t in texts]


def resolve_workers(num_workers: int) -> int:
    """0 means one worker per CPU core available to this process."""
    if num_workers > 0:
        return num_workers
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def tokenize_all(
    texts: Sequence[str], num_workers: int = 1, chunk_size: int = 2000, desc: str = "tokenize"
) -> list[list[str]]:
    """Tokenize every text, in order, with `num_workers` processes (0 = all cores)."""
    workers = resolve_workers(num_workers)
    chunks = [texts[i : i + chunk_size] for i in range(0, len(texts), chunk_size)]
    out: list[list[str]] = []
    bar = tqdm(total=len(texts), desc=desc, unit="doc", mininterval=1.0)
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            out.extend(_tokenize_chunk(chunk))
            bar.update(len(chunk))
    else:
        with get_context("spawn").Pool(workers) as pool:
            for tokens in pool.imap(_tokenize_chunk, chunks):
                out.extend(tokens)
                bar.update(len(tokens))
    bar.close()
    return out

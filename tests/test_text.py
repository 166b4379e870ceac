import re

from helpers import SAMPLE_DIR
from nltk.tokenize import word_tokenize

from agnews.data.raw import read_csv_split
from agnews.data.text import normalize, tokenize, tokenize_all


def test_normalize_lowercases_and_strips_punctuation():
    assert normalize("Wall St. Bears Claw Back (Reuters)!") == "wall st bears claw back reuters"
    assert normalize("U.S.-led \\band $5.50") == "usled band 550"


def test_tokenize_uses_nltk_treebank_words():
    assert tokenize("Oil prices hit $50; can't stop") == [
        "oil",
        "prices",
        "hit",
        "50",
        "cant",
        "stop",
    ]
    assert tokenize("!!!") == []


def test_tokenize_all_is_the_same_for_any_worker_count():
    texts = [f"Text number {i}, about Sports & Business." for i in range(50)]
    one = tokenize_all(texts, num_workers=1, chunk_size=7)
    two = tokenize_all(texts, num_workers=2, chunk_size=7)
    assert one == two == [tokenize(t) for t in texts]


TRICKY = [
    "I cannot believe they're gonna win -- wanna bet? Gimme a break, lemme see, gotta go.",
    "“Quoted” text, it’s fine… – en dash — em dash ‘single’ «guillemets» „low“",
    "Prices: $5.50/share (up 3%); e-mail: x@y.com #hashtag & <b>html</b> [1] {2}",
    "Tabs\tand\nnewlines and  double  spaces, \\band backslash, A.B.C. Ph.D.",
    "Unicode: café naïve résumé Zürich 東京 مرحبا 123abc abc123 ½",
]


def test_fast_tokenize_equals_nltk_on_the_real_sample_and_tricky_text():
    """The per-word fast path gives exactly nltk's output on the whole text."""
    texts = TRICKY + [e.text for s in ("train", "test") for e in _sample(s)]
    for text in texts:
        assert tokenize(text) == word_tokenize(normalize(text), preserve_line=True), text


def test_every_contraction_nltk_splits_is_handled():
    # every plain-word rule of nltk's contraction lists, found by asking nltk itself
    from nltk.tokenize.destructive import NLTKWordTokenizer

    for pattern in NLTKWordTokenizer.CONTRACTIONS2 + NLTKWordTokenizer.CONTRACTIONS3:
        word = "".join(re.findall(r"\(([a-z']+)\)", pattern.pattern))
        if word.isalnum():
            assert tokenize(word) == word_tokenize(word, preserve_line=True) != [word]


def _sample(split):
    return read_csv_split(SAMPLE_DIR / f"{split}.csv.gz")


def test_zero_workers_means_one_per_available_core():
    import os

    from agnews.data.text import resolve_workers

    assert resolve_workers(0) == len(os.sched_getaffinity(0))
    assert resolve_workers(3) == 3 and resolve_workers(1) == 1


def test_the_word_cache_is_bounded_in_bytes_not_only_entries():
    """A service fed unique or huge non-ASCII words must not grow: long words are never kept,
    and the memo holds at most CACHE_ENTRIES short words (issue: 100 requests of one unique
    980 kB word grew a server by 190 MB; 200k words like `zürich{i}` grew predict by 67 MB)."""
    import tracemalloc

    from agnews.data import text

    text._nltk_word_cached.cache_clear()
    huge = "é" * 200_000
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(5):
        assert tokenize(f"{huge}{i}") == [f"{huge}{i}"]
    kept = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert kept < 100_000  # nothing of the 1 MB of huge words stays
    assert text._nltk_word_cached.cache_info().currsize == 0  # huge words are not memoized
    for i in range(100):
        text._nltk_word(f"zürich{i}")
    assert text._nltk_word_cached.cache_info().currsize == 100  # short ones are
    # at most 2**16 entries of at most 32 characters: a few MB whatever the input
    assert text._nltk_word_cached.cache_parameters()["maxsize"] == text.CACHE_ENTRIES <= 1 << 16
    assert text.CACHE_WORD_CHARS <= 32
    assert tokenize("Zürich's café") == ["zürichs", "café"]  # the same tokens as before
    text._nltk_word_cached.cache_clear()

from agnews.text import normalize, tokenize, tokenize_all


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

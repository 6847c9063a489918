"""Topic quality: NPMI conventions, top-word rankings, perplexity variants, the LDA peer, progress output."""

import json
import math
import types

import numpy as np
import pytest
import torch

from frugaltext.errors import ConfigError, DataFormatError
from frugaltext.models.nvdm import NVDM, NVDMConfig
from frugaltext.topics.job import train_topics
from frugaltext.topics.lda import fit_lda, lda_document_bounds
from frugaltext.topics.metrics import (
    document_bounds,
    npmi_coherence,
    perplexities,
    perplexities_from_bounds,
    perplexity,
    top_word_document_share,
    top_words,
    topic_diversity,
)
from frugaltext.topics.vocabulary import BowVocabulary
from tests.conftest import TOY_TEXTS

CORPUS = ["oil crude", "oil crude", "wheat grain", "wheat grain oil"]


def test_a_pair_that_never_cooccurs_scores_minus_one_strict_and_zero_lau():
    # crude and wheat never share a document; oil and crude share 2 of 4 documents
    strict = npmi_coherence([["crude", "wheat"], ["oil", "crude"]], CORPUS)
    lau = npmi_coherence([["crude", "wheat"], ["oil", "crude"]], CORPUS, convention="lau")
    assert strict[0] == -1.0 and lau[0] == 0.0
    # pairs that do co-occur score the same under both: log(0.5 / (0.75 * 0.5)) / -log(0.5)
    expected = math.log(0.5 / (0.75 * 0.5)) / -math.log(0.5)
    np.testing.assert_allclose([strict[1], lau[1]], [expected, expected])
    vocab = BowVocabulary().fit(CORPUS)
    np.testing.assert_allclose(npmi_coherence([["crude", "wheat"]], vocab.transform(CORPUS), vocab,
                                              convention="lau"), [0.0])
    with pytest.raises(ConfigError, match="convention must be one of strict, lau"):
        npmi_coherence([["oil", "crude"]], CORPUS, convention="bouma")


def _constructed_nvdm() -> tuple[NVDM, BowVocabulary]:
    """Three words, three topics: "rare" has large decoder weights in every topic and a very negative bias;
    "common" stands out in topic 1 only and has a large bias."""
    vocab = BowVocabulary().fit(["common rare plain"])
    assert vocab.words_ == ["common", "plain", "rare"]
    model = NVDM(NVDMConfig(vocab_size=3, hidden_size=4, n_topics=3))
    with torch.no_grad():
        # decoder.weight has shape (vocab_size, n_topics): row = word, column = topic
        model.decoder.weight.copy_(torch.tensor([[1.0, -1.0, -1.0],    # common
                                                 [0.0, 0.0, 0.0],      # plain
                                                 [5.0, 4.0, 4.5]]))    # rare
        model.decoder.bias.copy_(torch.tensor([3.0, 0.0, -6.0]))
    return model, vocab


def test_standardised_and_bias_rankings_put_a_frequent_word_above_a_rare_one():
    model, vocab = _constructed_nvdm()
    assert top_words(model, vocab, n=1, by="decoder")[0] == ["rare"]  # raw U: the rare word wins topic 1
    assert top_words(model, vocab, n=1, by="standardized")[0] == ["common"]
    assert top_words(model, vocab, n=1, by="bias_plus_decoder", scale=2.0)[0] == ["common"]  # 5 > 4
    assert top_words(model, vocab, n=1)[0] == ["common"]  # the default ranking
    with pytest.raises(ConfigError, match="top_words_by must be one of"):
        top_words(model, vocab, n=1, by="lift")


def test_per_document_and_corpus_perplexity_by_hand():
    # document 1: 10 nats over 5 words, document 2: 3 nats over 1 word
    values = perplexities_from_bounds(np.array([10.0, 3.0]), np.array([5.0, 1.0]))
    assert values["corpus"] == pytest.approx(math.exp(13 / 6))
    assert values["per_document"] == pytest.approx(math.exp((2.0 + 3.0) / 2))
    with pytest.raises(DataFormatError, match="positive word counts"):
        perplexities_from_bounds(np.array([1.0]), np.array([0.0]))


def test_nvdm_perplexities_come_from_the_same_document_bounds():
    vocab = BowVocabulary().fit(TOY_TEXTS)
    model = NVDM(NVDMConfig(vocab_size=len(vocab), hidden_size=8, n_topics=3))
    bow = vocab.transform(TOY_TEXTS)
    nll, n_words = document_bounds(model, bow, seed=1)
    assert nll.shape == (8,) and np.all(nll > 0)
    np.testing.assert_array_equal(n_words, np.asarray(bow.sum(axis=1)).ravel())
    both = perplexities(model, bow, seed=1)
    assert both["per_document"] == pytest.approx(math.exp(np.mean(nll / n_words)))
    assert perplexity(model, bow, seed=1) == pytest.approx(both["corpus"])
    assert perplexity(model, bow, seed=1, per_document=True) == pytest.approx(both["per_document"])


def test_top_word_share_and_diversity():
    vocab = BowVocabulary().fit(CORPUS)
    bow = vocab.transform(CORPUS)
    # oil is in 3 of 4 documents, wheat in 2 of 4
    assert top_word_document_share([["oil", "wheat"]], bow, vocab, min_share=0.6) == 0.5
    assert topic_diversity([["oil", "crude"], ["oil", "wheat"]]) == 0.75
    assert topic_diversity([]) is None


def test_lda_bounds_match_scikit_learns_and_the_lda_job_writes_files(tmp_path):
    from scipy.special import gammaln, psi

    vocab = BowVocabulary().fit(TOY_TEXTS)
    bow = vocab.transform(TOY_TEXTS)
    lda, history = fit_lda(bow, 3, epochs=3, batch_size=4, seed=0)
    assert len(history) == 3 and lda.components_.shape == (3, len(vocab))
    nll, n_words = lda_document_bounds(lda, bow)
    # scikit-learn's corpus bound = our document bounds + the topic-word term
    comp, eta = lda.components_, lda.topic_word_prior_
    e_log_beta = psi(comp) - psi(comp.sum(1, keepdims=True))
    beta_term = (np.sum((eta - comp) * e_log_beta) + np.sum(gammaln(comp) - gammaln(eta))
                 + np.sum(gammaln(eta * comp.shape[1]) - gammaln(comp.sum(1))))
    gamma = lda.transform(bow.astype(np.float64), normalize=False)
    assert -nll.sum() + beta_term == pytest.approx(lda._approx_bound(bow.astype(np.float64), gamma, False))

    result = train_topics(TOY_TEXTS * 2, n_topics=3, output_dir=tmp_path, model="lda", min_df=1,
                          max_size=None, epochs=3, batch_size=4, n_top_words=4, validation_fraction=0.25)
    payload = json.loads((tmp_path / "topics.json").read_text())
    assert payload["model"] == "lda" and len(payload["topics"]) == 3
    assert payload["perplexity"] > 1 and payload["perplexity_per_document"] > 1
    assert payload["sklearn_perplexity"] > 1
    assert all(-1 <= t["npmi"] <= t["npmi_lau"] <= 1 for t in payload["topics"])
    assert (tmp_path / "lda" / "lda.npz").is_file() and BowVocabulary.load(tmp_path / "lda").words_
    assert result.model_name == "lda" and result.npmi_mean_lau >= result.npmi_mean
    with pytest.raises(ConfigError, match="model must be one of nvdm, lda"):
        train_topics(TOY_TEXTS, model="plsa")


def test_training_shows_progress_and_selects_on_per_document_perplexity(capsys):
    result = train_topics(TOY_TEXTS * 2, n_topics=2, min_df=1, max_size=None, hidden_size=8, epochs=3,
                          batch_size=8, n_top_words=3, validation_fraction=0.25, progress=True)
    err = capsys.readouterr().err
    assert "NVDM epochs" in err and "3/3" in err
    assert all("valid_perplexity_per_document" in row for row in result.history)
    assert result.perplexity_per_document == pytest.approx(
        min(row["valid_perplexity_per_document"] for row in result.history), rel=1e-5)
    train_topics(TOY_TEXTS * 2, n_topics=2, min_df=1, max_size=None, hidden_size=8, epochs=2,
                 batch_size=8, validation_fraction=0.25, progress=False)
    assert "NVDM epochs" not in capsys.readouterr().err


def test_npmi_reference_is_the_named_split():
    split = types.SimpleNamespace
    data = types.SimpleNamespace(train=split(texts=TOY_TEXTS), validation=split(texts=TOY_TEXTS[:2]),
                                 test=split(texts=["oil wheat", "crude grain"]))
    kwargs = dict(n_topics=2, min_df=1, max_size=None, hidden_size=8, epochs=1, batch_size=8,
                  n_top_words=3)
    held_out = train_topics(data, npmi_reference="test", **kwargs)
    assert held_out.npmi_reference == "test" and held_out.extra["n_reference_documents"] == 2
    fallback = train_topics(TOY_TEXTS * 2, npmi_reference="test", validation_fraction=0.25, **kwargs)
    assert fallback.npmi_reference == "train"  # a plain list has no test split
    with pytest.raises(ConfigError, match="npmi_reference must be one of"):
        train_topics(data, npmi_reference="wiki", **kwargs)


def test_the_topics_command_trains_lda_and_prints_both_conventions(tmp_path):
    from typer.testing import CliRunner

    from frugaltext.cli.app import app
    from tests.test_compare import _toy_dir

    args = ["topics", "--data", str(_toy_dir(tmp_path)), "--n-topics", "2", "--output", str(tmp_path / "t"),
            "--model", "lda", "--epochs", "2", "--min-df", "1", "--n-top-words", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    printed = " ".join(result.stdout.split())  # rich wraps long lines
    assert "(per document " in printed and "(Lau convention " in printed
    assert "reference: train texts" in printed
    assert json.loads((tmp_path / "t" / "topics.json").read_text())["model"] == "lda"

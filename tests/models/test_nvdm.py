import json
import math

import numpy as np
import pytest
import torch
from scipy import sparse

from frugaltext.errors import ConfigError, DataFormatError, ModelLoadError
from frugaltext.models.nvdm import NVDM, NVDMConfig
from frugaltext.topics.job import train_topics
from frugaltext.topics.metrics import npmi_coherence, perplexity, top_words
from frugaltext.topics.training import pretrain_nvdm
from frugaltext.topics.vocabulary import BowVocabulary
from tests.conftest import TOY_TEXTS

TINY = dict(hidden_size=16, n_topics=4)


@pytest.fixture(scope="module")
def vocab():
    return BowVocabulary().fit(TOY_TEXTS)


def test_vocabulary_lowercases_removes_stop_words_and_ignores_oov():
    vocab = BowVocabulary().fit(["The Oil price and THE oil", "oil and wheat"])
    assert vocab.words_ == ["oil", "price", "wheat"]  # "the", "and" are stop words; lower-cased
    bow = vocab.transform(["OIL oil unknownword the price"])
    assert sparse.issparse(bow) and bow.dtype == np.float32 and bow.shape == (1, 3)
    np.testing.assert_array_equal(bow.toarray(), [[2.0, 1.0, 0.0]])
    assert vocab.transform(["nothing known here"]).nnz == 0


def test_vocabulary_min_df_and_max_size():
    texts = ["oil crude", "oil wheat", "oil crude barrel"]
    assert BowVocabulary(min_df=2).fit(texts).words_ == ["crude", "oil"]
    assert BowVocabulary(max_size=1).fit(texts).words_ == ["oil"]
    with pytest.raises(ConfigError, match="lower min_df"):
        BowVocabulary(min_df=5).fit(texts)
    with pytest.raises(ConfigError, match="min_df must be an integer >= 1"):
        BowVocabulary(min_df=0).fit(texts)


def test_vocabulary_json_round_trip(vocab, tmp_path):
    path = vocab.save(tmp_path / "v.json")
    payload = json.loads(path.read_text())
    assert payload["words"] == vocab.words_
    loaded = BowVocabulary.load(path)
    assert loaded.words_ == vocab.words_
    assert (loaded.transform(TOY_TEXTS) != vocab.transform(TOY_TEXTS)).nnz == 0
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="not a frugaltext bag-of-words vocabulary"):
        BowVocabulary.load(tmp_path / "bad.json")
    with pytest.raises(ModelLoadError, match="not built"):
        BowVocabulary().transform(["oil"])


def test_forward_shapes_and_eval_uses_mean(vocab):
    torch.manual_seed(0)
    model = NVDM(NVDMConfig(vocab_size=len(vocab), **TINY))
    bow = torch.from_numpy(vocab.transform(TOY_TEXTS).toarray())
    model.train()
    out = model(bow)
    assert out.recon.shape == (8,) and out.kl.shape == (8,) and out.h_tm.shape == (8, 4)
    torch.testing.assert_close(out.loss, (out.recon + out.kl).mean())
    assert (out.kl >= 0).all() and (out.recon > 0).all()
    model.eval()
    out = model(bow)
    torch.testing.assert_close(out.h_tm, out.mu)
    torch.testing.assert_close(model(bow).h_tm, out.h_tm)  # deterministic at eval
    no_loss = model(bow, compute_loss=False)
    assert no_loss.loss is None and no_loss.recon is None
    with pytest.raises(DataFormatError, match=r"bow must have shape \(batch_size, 25\)"):
        model(torch.zeros(2, 3))


def test_loss_falls_on_toy_corpus(vocab):
    bow = vocab.transform(TOY_TEXTS)
    config = NVDMConfig(vocab_size=len(vocab), **TINY)
    untrained = NVDM(config)
    model, history = pretrain_nvdm(bow, config, epochs=50, batch_size=8, learning_rate=3e-2, seed=0)
    assert len(history) == 50  # one step per epoch: 50 Adam steps
    assert history[-1]["train_loss"] < 0.7 * history[0]["train_loss"]
    assert not model.training
    ppl_before, ppl_after = perplexity(untrained, bow), perplexity(model, bow)
    assert math.isfinite(ppl_after) and 1.0 < ppl_after < ppl_before


def test_early_stopping_on_held_out_perplexity(vocab):
    bow = vocab.transform(TOY_TEXTS)
    config = NVDMConfig(vocab_size=len(vocab), **TINY)
    # a learning rate this large makes held-out perplexity stop improving quickly
    model, history = pretrain_nvdm(bow[:6], config, epochs=200, batch_size=6, learning_rate=0.5,
                                   bow_valid=bow[6:], patience=2, seed=0)
    assert len(history) < 200
    best = min(row["valid_perplexity_per_document"] for row in history)  # selection: per-document
    assert perplexity(model, bow[6:], seed=0, per_document=True) == pytest.approx(best, rel=1e-5)


def test_perplexity_is_reproducible_and_skips_empty_documents(vocab):
    model = NVDM(NVDMConfig(vocab_size=len(vocab), **TINY))
    bow = vocab.transform(TOY_TEXTS + ["nothing in the vocabulary"])
    assert perplexity(model, bow, seed=3) == perplexity(model, bow[:8], seed=3)
    with pytest.raises(DataFormatError, match="no document contains a vocabulary word"):
        perplexity(model, vocab.transform(["zzz"]))


def test_top_words_shape(vocab):
    model = NVDM(NVDMConfig(vocab_size=len(vocab), **TINY))
    words = top_words(model, vocab, n=5, by="decoder")
    assert len(words) == 4 and all(len(t) == 5 for t in words)
    assert all(w in vocab.words_ for t in words for w in t)
    column = model.decoder.weight[:, 0]
    assert words[0][0] == vocab.words_[int(column.argmax())]  # the authors' ranking: raw decoder row
    default = top_words(model, vocab, n=5)  # bias_plus_decoder: c + 2 U_k (c is 0 at initialisation)
    assert default == words
    with pytest.raises(ConfigError, match="n must be in"):
        top_words(model, vocab, n=0)


def test_npmi_values():
    texts = ["oil crude", "oil crude", "wheat grain", "wheat grain"]
    # oil and crude always together: P(oil, crude) = P(oil) = 0.5 -> NPMI 1; oil and wheat never: -1
    scores = npmi_coherence([["oil", "crude"], ["oil", "wheat"], ["oil", "crude", "wheat"]], texts)
    np.testing.assert_allclose(scores[:2], [1.0, -1.0])
    np.testing.assert_allclose(scores[2], np.mean([1.0, -1.0, -1.0]))
    vocab = BowVocabulary().fit(texts)
    bow_scores = npmi_coherence([["oil", "crude"], ["oil", "wheat"]], vocab.transform(texts), vocab)
    np.testing.assert_allclose(bow_scores, [1.0, -1.0])
    with pytest.raises(ConfigError, match="pass vocab="):
        npmi_coherence([["oil", "crude"]], vocab.transform(texts))


def test_npmi_in_range_on_toy_topics(vocab):
    model = NVDM(NVDMConfig(vocab_size=len(vocab), **TINY))
    scores = npmi_coherence(top_words(model, vocab, n=6), TOY_TEXTS, vocab)
    assert scores.shape == (4,) and ((scores >= -1) & (scores <= 1)).all()


def test_save_load_round_trip(vocab, tmp_path):
    model = NVDM(NVDMConfig(vocab_size=len(vocab), **TINY)).eval()
    model.save_pretrained(tmp_path)
    loaded = NVDM.from_pretrained(tmp_path).eval()
    bow = torch.from_numpy(vocab.transform(TOY_TEXTS).toarray())
    torch.testing.assert_close(loaded(bow).h_tm, model(bow).h_tm, rtol=0, atol=0)


def test_config_validation():
    with pytest.raises(ConfigError, match="activation must be one of"):
        NVDMConfig(activation="swish")
    with pytest.raises(ConfigError, match="n_topics must be a positive integer"):
        NVDMConfig(n_topics=0)


def test_train_topics_writes_files(tmp_path):
    result = train_topics(TOY_TEXTS * 2, n_topics=3, output_dir=tmp_path, min_df=1, max_size=None,
                          hidden_size=8, epochs=5, batch_size=8, n_top_words=4, validation_fraction=0.25,
                          seed=0)
    payload = json.loads((tmp_path / "topics.json").read_text())
    assert payload["n_topics"] == 3 and len(payload["topics"]) == 3
    assert all(len(t["words"]) == 4 and -1 <= t["npmi"] <= 1 for t in payload["topics"])
    assert payload["perplexity"] == pytest.approx(result.perplexity) and result.perplexity > 1
    lines = (tmp_path / "topics.txt").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("topic 1 (npmi ")
    reloaded = NVDM.from_pretrained(tmp_path / "nvdm")
    assert reloaded.config.n_topics == 3
    assert BowVocabulary.load(tmp_path / "nvdm").words_ == result.vocab.words_


def test_old_import_paths_still_work_and_the_fit_record_has_a_new_name():
    import frugaltext.models.nvdm as old
    import frugaltext.topics as topics
    from frugaltext.models.nvdm import PretrainedTopicModel, TopicModelFit, mean_npmi, write_topics
    from frugaltext.topics import job, metrics, training, vocabulary

    assert PretrainedTopicModel is TopicModelFit is training.TopicModelFit
    assert old.BowVocabulary is vocabulary.BowVocabulary and old.to_bow_tensor is vocabulary.to_bow_tensor
    assert old.perplexity is metrics.perplexity and mean_npmi is metrics.mean_npmi
    assert old.pretrain_topic_model is training.pretrain_topic_model and write_topics is job.write_topics
    assert old.TopicsResult is job.TopicsResult and old.BOW_VOCABULARY_FILE == "bow_vocabulary.json"
    assert topics.train_topics is job.train_topics
    assert set(old.__all__) >= {"NVDM", "BowVocabulary", "train_topics", "TopicModelFit"}
    with pytest.raises(AttributeError):
        old.no_such_name  # noqa: B018

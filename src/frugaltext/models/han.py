"""Hierarchical Attention Network (Yang et al. 2016), a DocBERT baseline (Adhikari et al. 2019, Table 2).

Architecture
------------
Word level: embeddings -> a BiGRU over each sentence -> attention pooling with a learned word context vector
(u_it = tanh(W_w h_it + b_w), a_it = softmax_t(u_it . u_w), s_i = sum_t a_it h_it; Yang et al. eqs. 5-7) ->
one vector per sentence. Sentence level: a BiGRU over the sentence vectors -> attention with a sentence
context vector (eqs. 8-10) -> the document vector -> dropout -> a linear layer giving the logits. Loss: CE
(single-label) or BCE (multi-label), or, with ``teacher_logits``, the distillation losses of the other
students (:mod:`frugaltext.training.distillation`).

Defaults follow hedwig's ``models/han`` (castorini/hedwig, the DocBERT authors' code): 50 hidden units per
direction at both levels, 300-dimensional word embeddings; hedwig's HAN applies no dropout (its ``--dropout``
flag is unused by the model), hence ``dropout=0.0``. hedwig runs every padded sentence and padded word through
the GRUs; we do not (see below), so a document's output does not depend on its batch.

Inputs and padding
------------------
``input_ids`` and ``attention_mask`` have shape (batch_size, n_sentences, n_words): each document is a list of
sentences, each sentence a list of word ids with its padding at the end. Word-level GRUs read packed sequences
of each sentence's true length, and only non-empty sentences are encoded; the sentence GRU then reads, per
document, its non-empty sentences in their order, packed. So extra padded sentences, extra padded words, and
empty sentences anywhere (a sentence whose mask is all zero) never change a document's logits (tested). A
document without any word is encoded as one all-zero sentence vector.

Sentence splitting
------------------
:func:`split_sentences` uses spaCy's rule-based ``sentencizer`` on a blank English pipeline (``spacy.blank
("en")``): it is maintained, runs offline (no model download; spaCy 3.8 is already a dependency for the
transfer set's part-of-speech tags), is deterministic and fast (punctuation rules, no parser). Newswire
abbreviations ("U.S.") can split a sentence too early; for HAN that costs little (Yang et al. split with
Stanford CoreNLP; hedwig with its own regex on newlines and full stops). :func:`encode_hierarchical` turns
texts into nested word ids with :class:`frugaltext.models.students.WordVocabulary`, and
:func:`pad_hierarchical` pads them into the model's tensors. The packaged Reuters-8 has no punctuation, so
each of its documents is one "sentence"; :func:`encode_hierarchical` then cuts it into pseudo-sentences of
``max_words`` words (``long_sentences="split"``), which keeps the hierarchy (and the whole document up to
``max_sentences x max_words`` words) instead of truncating it to one sentence.

FLOPs
-----
On CPU, ``nn.GRU`` runs as matrix products (``aten.addmm``) that ``torch.utils.flop_counter`` counts, packed
or not (torch 2.13), unlike the LSTM's fused ``aten.mkldnn_rnn_layer`` (which
:mod:`frugaltext.models.students` registers), so :func:`frugaltext.cost.flops.count_flops` counts HAN without
any registration (tested).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import AutoConfig, AutoModelForSequenceClassification, PreTrainedConfig, PreTrainedModel
from transformers import initialization as init

from frugaltext.errors import ConfigError
from frugaltext.models.student_common import (
    check_int,
    check_loss_settings,
    check_probability,
    classification_loss,
    finish_config,
)
from frugaltext.models.students import AttentionPooling, StudentOutput, WordVocabulary

__all__ = [
    "HANConfig",
    "HANForSequenceClassification",
    "encode_hierarchical",
    "pad_hierarchical",
    "split_sentences",
]


# ==================================================================================================
# Sentence splitting and hierarchical encoding
# ==================================================================================================
@functools.lru_cache(maxsize=1)
def _sentencizer() -> Any:
    """A blank English spaCy pipeline with the rule-based sentencizer (built once per process)."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.max_length = 10_000_000
    return nlp


def split_sentences(texts: Sequence[str], max_sentences: int | None = None, nlp: Any = None,
                    batch_size: int = 256) -> list[list[str]]:
    """Split each text into sentences with spaCy's rule-based sentencizer (see the module docstring).

    Parameters
    ----------
    texts : sequence of str
    max_sentences : int >= 1, optional
        Keep the first ``max_sentences`` sentences of each text (head truncation).
    nlp : spacy.Language, optional
        A pipeline that sets sentence boundaries; default ``spacy.blank("en")`` + ``sentencizer``.
    batch_size : int, default 256
        Texts per ``nlp.pipe`` batch.

    Returns
    -------
    list of list of str
        Per text, its sentences, stripped; whitespace-only sentences are dropped, so an empty text gives [].

    Raises
    ------
    ConfigError
        If ``max_sentences`` < 1.
    """
    if max_sentences is not None and (isinstance(max_sentences, bool) or int(max_sentences) < 1):
        raise ConfigError(f"split_sentences: max_sentences must be an integer >= 1 or None, got "
                          f"{max_sentences!r}")
    nlp = _sentencizer() if nlp is None else nlp
    out: list[list[str]] = []
    for doc in nlp.pipe(list(texts), batch_size=batch_size):
        sentences = [s.text.strip() for s in doc.sents]
        sentences = [s for s in sentences if s]
        out.append(sentences[: int(max_sentences)] if max_sentences is not None else sentences)
    return out


def encode_hierarchical(vocabulary: WordVocabulary, texts: Sequence[str], max_sentences: int = 32,
                        max_words: int = 64, long_sentences: str = "split",
                        nlp: Any = None) -> list[list[list[int]]]:
    """Word ids per sentence per text: :func:`split_sentences`, then :meth:`WordVocabulary.tokenize`.

    Sentences without any word token (punctuation only) are dropped; a text without any word gives one
    sentence ``[[UNK]]``, as :meth:`WordVocabulary.encode` does. A sentence longer than ``max_words`` is cut
    into consecutive pieces of ``max_words`` words (``long_sentences="split"``, the default) or truncated
    (``"truncate"``). Splitting matters for corpora stored without punctuation, such as the packaged
    Reuters-8 (lower-cased, punctuation removed): the sentencizer sees each document as ONE sentence, and
    truncation would keep only its first ``max_words`` words, while splitting keeps up to ``max_sentences x
    max_words`` words as fixed-length pseudo-sentences.

    Parameters
    ----------
    vocabulary : WordVocabulary
    texts : sequence of str
    max_sentences : int >= 1, default 32
        Sentences (after splitting long ones) kept per text, the first ones.
    max_words : int >= 1, default 64
        Words per sentence.
    long_sentences : {"split", "truncate"}, default "split"
    nlp : spacy.Language, optional
        As in :func:`split_sentences`.

    Returns
    -------
    list (texts) of list (sentences, 1 to max_sentences) of list (word ids, 1 to max_words) of int

    Raises
    ------
    ConfigError
        If ``max_sentences`` or ``max_words`` < 1, or ``long_sentences`` is unknown.
    """
    for name, value in (("max_sentences", max_sentences), ("max_words", max_words)):
        if isinstance(value, bool) or int(value) < 1:
            raise ConfigError(f"encode_hierarchical: {name} must be an integer >= 1, got {value!r}")
    if long_sentences not in ("split", "truncate"):
        raise ConfigError(f"encode_hierarchical: long_sentences must be 'split' or 'truncate', got "
                          f"{long_sentences!r}")
    max_sentences, max_words = int(max_sentences), int(max_words)
    unk = vocabulary.unk_token_id
    docs: list[list[list[int]]] = []
    for sentences in split_sentences(texts, nlp=nlp):
        doc: list[list[int]] = []
        for sentence in sentences:
            ids = [vocabulary.index.get(w, unk) for w in vocabulary.tokenize(sentence)]
            stop = len(ids) if long_sentences == "split" else min(len(ids), max_words)
            doc.extend(ids[i:i + max_words] for i in range(0, stop, max_words))
            if len(doc) >= max_sentences:
                break
        docs.append(doc[:max_sentences] or [[unk]])
    return docs


def pad_hierarchical(docs: Sequence[Sequence[Sequence[int]]],
                     pad_token_id: int = 0) -> dict[str, torch.Tensor]:
    """Right-pad nested word ids into the HAN's inputs.

    Parameters
    ----------
    docs : sequence (batch) of sequence (sentences) of sequence (word ids) of int
    pad_token_id : int, default 0

    Returns
    -------
    dict
        ``input_ids`` and ``attention_mask``: long tensors of shape (batch_size, n_sentences, n_words), the
        largest sentence count and sentence length of the batch (at least 1 each).
    """
    n_sentences = max(1, max((len(d) for d in docs), default=0))
    n_words = max(1, max((len(s) for d in docs for s in d), default=0))
    input_ids = torch.full((len(docs), n_sentences, n_words), int(pad_token_id), dtype=torch.long)
    attention_mask = torch.zeros((len(docs), n_sentences, n_words), dtype=torch.long)
    for i, doc in enumerate(docs):
        for j, sentence in enumerate(doc):
            if sentence:
                input_ids[i, j, : len(sentence)] = torch.tensor(list(sentence), dtype=torch.long)
                attention_mask[i, j, : len(sentence)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}


# ==================================================================================================
# Configuration
# ==================================================================================================
class HANConfig(PreTrainedConfig):
    r"""Configuration of :class:`HANForSequenceClassification`.

    Parameters
    ----------
    vocab_size : int >= 2, default 2
        Rows of the word embedding matrix (a :class:`WordVocabulary` or a teacher's WordPiece vocabulary).
    embedding_dim : int, default 300
        Word embedding size (hedwig: 300, word2vec).
    word_hidden_size : int, default 50
        Word-level GRU units per direction (hedwig ``--word-num-hidden 50``; Yang et al. use 50 too).
    sentence_hidden_size : int, default 50
        Sentence-level GRU units per direction (hedwig ``--sentence-num-hidden 50``).
    max_sentences, max_words : int, default 32 and 64
        Sentences per document and words per sentence (informative; :func:`encode_hierarchical` truncates).
        Our choice: Reuters-8 documents have ~6 sentences of ~20 words on average.
    dropout : float in [0, 1), default 0.0
        Dropout on the document vector before the output layer (hedwig's HAN has none).
    pad_token_id : int, default 0
        Embedding row that stays zero.
    distillation_loss, alpha, lam, temperature
        As in :class:`frugaltext.models.students.StudentConfig`.
    num_labels, id2label, label2id, problem_type
        As in transformers; single-label (CE, default) or ``"multi_label_classification"`` (BCE).

    Raises
    ------
    ConfigError
        For a value outside the ranges above.
    """

    model_type = "frugaltext_han"

    vocab_size: int = 2
    embedding_dim: int = 300
    word_hidden_size: int = 50
    sentence_hidden_size: int = 50
    max_sentences: int = 32
    max_words: int = 64
    dropout: float | int = 0.0
    pad_token_id: int | None = 0
    distillation_loss: str = "mse"
    alpha: float | int = 0.5
    lam: float | int | None = None
    temperature: float | int = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        finish_config(self)
        self._validate()

    def _validate(self) -> None:
        where = "HANConfig"
        check_int(self, where, ("vocab_size",), 2)
        check_int(self, where, ("embedding_dim", "word_hidden_size", "sentence_hidden_size", "max_sentences",
                                "max_words"), 1)
        check_probability(self, where, ("dropout",))
        if not 0 <= int(self.pad_token_id) < self.vocab_size:
            raise ConfigError(f"{where}: pad_token_id {self.pad_token_id} is outside the vocabulary "
                              f"(vocab_size {self.vocab_size})")
        check_loss_settings(self, where)

    @property
    def multi_label(self) -> bool:
        """True for ``multi_label_classification``."""
        return self.problem_type == "multi_label_classification"


# ==================================================================================================
# Model
# ==================================================================================================
class HANPreTrainedModel(PreTrainedModel):
    """Initialisation: embeddings uniform(-0.25, 0.25) with a zero [PAD] row (hedwig's "rand" mode), dense
    layers Xavier-uniform with zero biases, GRU weights uniform(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default),
    context vectors normal(0, 1/sqrt(size))."""

    config_class = HANConfig
    base_model_prefix = "han"
    main_input_name = "input_ids"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            if not getattr(module.weight, "_is_hf_initialized", False):
                init.uniform_(module.weight, -0.25, 0.25)
                if module.padding_idx is not None:
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.GRU):
            bound = 1.0 / math.sqrt(module.hidden_size)
            for param in module.parameters():
                init.uniform_(param, -bound, bound)
        elif isinstance(module, AttentionPooling):
            init.normal_(module.context, mean=0.0, std=1.0 / math.sqrt(module.context.numel()))


def _run_gru(gru: nn.GRU, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Run a batch-first BiGRU on packed sequences; returns the padded outputs (batch, seq_len, 2H)."""
    packed = pack_padded_sequence(inputs, lengths.cpu(), batch_first=True, enforce_sorted=False)
    output, _ = gru(packed)
    padded, _ = pad_packed_sequence(output, batch_first=True, total_length=inputs.shape[1])
    return padded


class HANForSequenceClassification(HANPreTrainedModel):
    """Hierarchical Attention Network with an optional distillation loss (see the module docstring).

    ``save_pretrained`` writes ``config.json`` and ``model.safetensors``; after ``import
    frugaltext.models.han``, ``AutoModelForSequenceClassification.from_pretrained(dir)`` restores it.

    Parameters
    ----------
    config : HANConfig
    """

    def __init__(self, config: HANConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.embeddings = nn.Embedding(config.vocab_size, config.embedding_dim,
                                       padding_idx=config.pad_token_id)
        self.word_gru = nn.GRU(config.embedding_dim, config.word_hidden_size, batch_first=True,
                               bidirectional=True)
        self.word_attention = AttentionPooling(2 * config.word_hidden_size)
        self.sentence_gru = nn.GRU(2 * config.word_hidden_size, config.sentence_hidden_size, batch_first=True,
                                   bidirectional=True)
        self.sentence_attention = AttentionPooling(2 * config.sentence_hidden_size)
        self.dropout = nn.Dropout(float(config.dropout))
        self.classifier = nn.Linear(2 * config.sentence_hidden_size, config.num_labels)
        self.post_init()

    def document_vectors(self, input_ids: torch.Tensor,
                         attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Document vectors before the output layer.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, n_sentences, n_words), long
        attention_mask : Tensor of shape (batch_size, n_sentences, n_words), optional
            1 for words, 0 for padding (at the end of each sentence); all-zero rows are empty sentences. All
            ones when omitted.

        Returns
        -------
        Tensor of shape (batch_size, 2 * sentence_hidden_size)

        Raises
        ------
        ConfigError
            If ``input_ids`` is not 3-dimensional.
        """
        if input_ids.dim() != 3:
            raise ConfigError(f"HANForSequenceClassification: input_ids must have shape (batch_size, "
                              f"n_sentences, n_words), got {tuple(input_ids.shape)}; pad documents with "
                              "frugaltext.models.han.pad_hierarchical")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        batch_size, n_sentences, n_words = input_ids.shape
        mask = attention_mask.bool()
        word_lengths = mask.sum(dim=-1)  # (batch, n_sentences)
        # non-empty sentences first, in their order: empty ones anywhere become padding
        order = torch.argsort((word_lengths == 0).to(torch.int8), dim=1, stable=True)
        word_lengths = word_lengths.gather(1, order)
        ids = input_ids.gather(1, order.unsqueeze(-1).expand(-1, -1, n_words))
        sentence_counts = (word_lengths > 0).sum(dim=1)  # (batch,)

        flat_lengths = word_lengths.reshape(-1)
        keep = flat_lengths > 0
        word_size = 2 * self.config.word_hidden_size
        sentence_vectors = self.embeddings.weight.new_zeros((batch_size * n_sentences, word_size))
        if bool(keep.any()):
            lengths = flat_lengths[keep]
            width = int(lengths.max())
            sel_ids = ids.reshape(-1, n_words)[keep][:, :width]
            positions = torch.arange(width, device=sel_ids.device).unsqueeze(0)
            valid = positions < lengths.unsqueeze(1)  # (n_kept, width)
            embedded = self.embeddings(sel_ids.masked_fill(~valid, int(self.config.pad_token_id)))
            embedded = embedded * valid.unsqueeze(-1).to(embedded.dtype)
            word_states = _run_gru(self.word_gru, embedded, lengths)
            pooled = self.word_attention(word_states, valid)
            sentence_vectors = sentence_vectors.index_copy(0, keep.nonzero().squeeze(1), pooled)
        sentence_vectors = sentence_vectors.view(batch_size, n_sentences, word_size)

        doc_lengths = sentence_counts.clamp(min=1)  # a wordless document: one zero sentence vector
        width = int(doc_lengths.max())
        sentence_vectors = sentence_vectors[:, :width]
        sentence_states = _run_gru(self.sentence_gru, sentence_vectors, doc_lengths)
        positions = torch.arange(width, device=sentence_states.device).unsqueeze(0)
        return self.sentence_attention(sentence_states, positions < doc_lengths.unsqueeze(1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, teacher_logits: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> StudentOutput:
        """Classify a batch of documents and, when ``labels`` or ``teacher_logits`` are given, compute the
        loss.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, n_sentences, n_words), long
        attention_mask : Tensor of shape (batch_size, n_sentences, n_words), optional
        labels : Tensor of shape (batch_size,) long, or (batch_size, num_labels) float, optional
            ``-100`` (a row of ``-100`` for multi-label) marks rows without a hard label.
        teacher_logits : Tensor of shape (batch_size, num_labels), optional
            With them the loss is ``config.distillation_loss``; without, plain CE / BCE.
        token_type_ids : ignored

        Returns
        -------
        StudentOutput
            ``logits`` of shape (batch_size, num_labels); ``loss`` of shape () or None.
        """
        features = self.document_vectors(input_ids, attention_mask)
        logits = self.classifier(self.dropout(features))
        return StudentOutput(loss=classification_loss(self.config, logits, labels, teacher_logits),
                             logits=logits)


AutoConfig.register(HANConfig.model_type, HANConfig, exist_ok=True)
AutoModelForSequenceClassification.register(HANConfig, HANForSequenceClassification, exist_ok=True)

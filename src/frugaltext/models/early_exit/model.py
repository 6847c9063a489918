"""The early-exit model: a BERT-family or MPNet backbone with a classifier after every layer, and its output.

Registered with ``AutoConfig`` / ``AutoModelForSequenceClassification`` on import, so
``AutoModelForSequenceClassification.from_pretrained(dir)`` loads a saved model once
:mod:`frugaltext.models.early_exit` is imported.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForSequenceClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import ModelOutput

from frugaltext.errors import ConfigError, ModelLoadError
from frugaltext.models.early_exit.config import (
    EAGER_ONLY_ENCODERS,
    EarlyExitConfig,
    check_encoder_config,
    resolve_layer_loss_weights,
    validate_exit_settings,
)
from frugaltext.models.early_exit.exits import (
    ExitRule,
    ExitTracker,
    _layer_loss,
    joint_exit_loss,
    self_distillation_loss,
    simulate_exits,
)
from frugaltext.models.early_exit.flops import document_flops
from frugaltext.models.encoders import encoder_layer_list


# ==================================================================================================
# Model
# ==================================================================================================
@dataclass
class EarlyExitOutput(ModelOutput):
    """Output of :class:`EarlyExitForSequenceClassification`.

    Attributes
    ----------
    loss : Tensor of shape (), optional
        Training loss (see :meth:`EarlyExitForSequenceClassification.forward`).
    logits : Tensor of shape (batch_size, num_labels)
        Logits of each document's exit layer.
    exit_layer : Tensor of shape (batch_size,), long
        1-based layer at which each document left.
    all_logits : Tensor of shape (L, batch_size, num_labels), optional
        Logits of every exit, when ``all_exits=True``.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    exit_layer: torch.Tensor | None = None
    all_logits: torch.Tensor | None = None


class ExitClassifier(nn.Module):
    """Classifier of one exit on the [CLS] hidden state (see ``EarlyExitConfig.classifier_head``).

    Input (batch_size, hidden_size) -> logits (batch_size, num_labels).
    """

    def __init__(self, hidden_size: int, num_labels: int, dropout: float, head: str = "linear") -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden_size, hidden_size) if head == "dense_tanh" else None
        self.out = nn.Linear(hidden_size, num_labels)

    def forward(self, cls_hidden: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.dropout(cls_hidden)
        if self.dense is not None:
            x = self.dropout(torch.tanh(self.dense(x)))
        return self.out(x)


class EarlyExitForSequenceClassification(PreTrainedModel):
    """A BERT-family or MPNet encoder with a classifier after each of its L layers, and per-document exits.

    Build it from a checkpoint with :meth:`from_encoder`; ``save_pretrained``/``from_pretrained`` keep the
    exit rule, thresholds, calibration table and weights (safetensors + ``config.json``). After
    ``import frugaltext.models.early_exit``, ``AutoModelForSequenceClassification.from_pretrained(dir)``
    loads it.

    Parameters
    ----------
    config : EarlyExitConfig

    Notes
    -----
    The encoder's own layers are called directly, found generically
    (:func:`frugaltext.models.encoders.encoder_layer_list`): embeddings once (then ELECTRA's
    ``embeddings_project`` when it has one), then ``layer(hidden, mask, **extra)`` for each layer, with the
    attention mask built by transformers' ``create_bidirectional_mask`` from the encoder's config, exactly
    as ``BertModel.forward`` does (transformers 5.23), so eager, sdpa, flash and flex attention all work
    for BERT-family encoders. MPNet (``MPNetModel.forward``) gets what its encoder gives every layer: the
    relative position bias ``MPNetEncoder.compute_position_bias(hidden)`` (shape (batch, heads, n, n), from
    ``relative_attention_bias``) as ``position_bias``, and the additive float mask of eager attention, the
    only attention MPNet has. Encoder types are limited to
    :data:`~frugaltext.models.early_exit.config.SUPPORTED_ENCODERS` (a clear :class:`ConfigError`
    otherwise). The pooler is not used (the exits are pooler-free, as PABEE's are) and is not built.
    """

    config_class = EarlyExitConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def __init__(self, config: EarlyExitConfig) -> None:
        super().__init__(config)
        try:
            self.encoder = AutoModel.from_config(config.encoder, add_pooling_layer=False)
        except TypeError:  # an encoder class without a pooler argument
            self.encoder = AutoModel.from_config(config.encoder)
        _check_encoder(self.encoder)
        dropout = config.classifier_dropout
        if dropout is None:
            dropout = getattr(config.encoder, "hidden_dropout_prob", 0.1)
        hidden = config.encoder.hidden_size
        self.classifiers = nn.ModuleList(
            [
                ExitClassifier(hidden, config.num_labels, float(dropout), config.classifier_head)
                for _ in range(config.num_hidden_layers)
            ]
        )
        self.post_init()
        self._apply_stage_freezing()

    # ---- construction ----------------------------------------------------------------------------
    @classmethod
    def from_encoder(
        cls,
        encoder: str | PreTrainedConfig,
        num_labels: int,
        id2label: dict[int, str] | None = None,
        problem_type: str = "single_label_classification",
        attn_implementation: str | None = None,
        **config_kwargs: Any,
    ) -> EarlyExitForSequenceClassification:
        """Wrap a pretrained encoder checkpoint (or a fresh encoder config) with new exit classifiers.

        Parameters
        ----------
        encoder : str or PreTrainedConfig
            A local Hugging Face checkpoint folder (weights are loaded) or an encoder config (random init).
        num_labels : int
        id2label : dict, optional
            Label names; default ``{i: "LABEL_i"}``.
        problem_type : {"single_label_classification", "multi_label_classification"}
        attn_implementation : str, optional
            ``"eager"``, ``"sdpa"``, ...; transformers' default when omitted.
        **config_kwargs
            Other :class:`EarlyExitConfig` fields (exit_rule, entropy_threshold, training_mode, ...).

        Raises
        ------
        ModelLoadError
            If the checkpoint cannot be read.
        ConfigError
            For invalid exit settings, an encoder type outside ``SUPPORTED_ENCODERS`` (checked before the
            weights are read) or an attention implementation the encoder lacks (MPNet: eager only).
        """
        kwargs = {} if attn_implementation is None else {"attn_implementation": attn_implementation}
        pretrained = None
        if isinstance(encoder, PreTrainedConfig):
            check_encoder_config(encoder, attn_implementation, where="early exit")
            encoder_config = encoder
            if attn_implementation is not None:
                encoder_config._attn_implementation = attn_implementation
        else:
            try:
                found_config = AutoConfig.from_pretrained(str(encoder))
            except (OSError, ValueError) as err:
                raise ModelLoadError(
                    f"cannot read the encoder config in {encoder!r} ({err}); "
                    "pass a local Hugging Face checkpoint folder with config.json and weights"
                ) from err
            check_encoder_config(found_config, attn_implementation, where=f"early exit on {encoder}")
            try:  # loaded whole (a checkpoint's pooler weights then match); the pooler is dropped below
                pretrained = AutoModel.from_pretrained(str(encoder), **kwargs)
            except (OSError, ValueError) as err:
                raise ModelLoadError(
                    f"cannot load the encoder from {encoder!r} ({err}); "
                    "pass a local Hugging Face checkpoint folder "
                    "with config.json and weights"
                ) from err
            encoder_config = pretrained.config
        id2label = id2label if id2label is not None else {i: f"LABEL_{i}" for i in range(num_labels)}
        config = EarlyExitConfig(
            encoder=encoder_config,
            num_labels=num_labels,
            id2label=dict(id2label),
            label2id={v: int(k) for k, v in dict(id2label).items()},
            problem_type=problem_type,
            **config_kwargs,
        )
        model = cls(config)
        if pretrained is not None:
            state = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("pooler.")}
            missing, unexpected = model.encoder.load_state_dict(state, strict=False)
            if [k for k in missing if not k.startswith("pooler.")] or unexpected:
                raise ModelLoadError(
                    f"{encoder}: encoder weights do not fit "
                    f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
                )
        if attn_implementation is not None:
            model.config._attn_implementation = attn_implementation
        return model

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Exit classifiers: normal(0, encoder initializer_range) weights, zero biases (BERT's init)."""
        if isinstance(module, nn.Linear):
            init.normal_(
                module.weight, mean=0.0, std=float(getattr(self.config.encoder, "initializer_range", 0.02))
            )
            if module.bias is not None:
                init.zeros_(module.bias)

    # ---- two-stage training ----------------------------------------------------------------------
    def set_training_stage(self, stage: int) -> None:
        """Select the stage of two-stage training (Mei 2020 §3.2.1) and freeze parameters accordingly.

        Stage 1 trains embeddings, all layers and the final classifier (exits 1..L-1 frozen); stage 2 freezes
        those and trains exits 1..L-1 by self-distillation. Frozen parameters get ``requires_grad=False``,
        so optimizers and DDP skip them.

        Raises
        ------
        ConfigError
            If ``training_mode`` is not ``"two_stage"`` or ``stage`` is not 1 or 2.
        """
        if self.config.training_mode != "two_stage":
            raise ConfigError(
                f"set_training_stage: training_mode is {self.config.training_mode!r}; stages exist only with "
                "training_mode='two_stage'"
            )
        if stage not in (1, 2):
            raise ConfigError(f"set_training_stage: stage must be 1 or 2, got {stage!r}")
        self.config.training_stage = stage
        self._apply_stage_freezing()
        self.train(self.training)

    def _apply_stage_freezing(self) -> None:
        backbone = [*self.encoder.parameters(), *self.classifiers[-1].parameters()]
        students = [p for head in self.classifiers[:-1] for p in head.parameters()]
        if self.config.training_mode != "two_stage":
            for p in (*backbone, *students):
                p.requires_grad_(True)
            return
        stage = self.config.training_stage
        for p in backbone:
            p.requires_grad_(stage == 1)
        for p in students:
            p.requires_grad_(stage == 2)

    def _stage2(self) -> bool:
        return self.config.training_mode == "two_stage" and self.config.training_stage == 2

    def train(self, mode: bool = True) -> EarlyExitForSequenceClassification:
        """As ``nn.Module.train``; in stage 2 of two-stage training the frozen backbone stays in eval mode.

        So the features and the teacher distribution are those used at inference, without dropout (our
        choice; FastBERT leaves dropout on in the frozen backbone).
        """
        super().train(mode)
        if mode and self._stage2():
            self.encoder.eval()
            self.classifiers[-1].eval()
        return self

    # ---- encoder pieces --------------------------------------------------------------------------
    @property
    def encoder_layers(self) -> nn.ModuleList:
        """The encoder's L transformer layers (``encoder.layer`` of BERT, RoBERTa, ELECTRA, MPNet, ...)."""
        return encoder_layer_list(self.encoder)

    @property
    def num_layers(self) -> int:
        """L."""
        return len(self.encoder_layers)

    def _embed(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None) -> torch.Tensor:
        """Embeddings of ``input_ids`` (batch_size, seq_len) -> (batch_size, seq_len, hidden_size).

        MPNet's and RoBERTa's embeddings number positions from ``input_ids`` (padding excluded); ELECTRA's
        projection to the hidden size is applied when the encoder has one (``embedding_size != hidden_size``).
        """
        if token_type_ids is not None:
            hidden = self.encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        else:
            hidden = self.encoder.embeddings(input_ids=input_ids)
        project = getattr(self.encoder, "embeddings_project", None)
        return project(hidden) if project is not None else hidden

    def _layer_inputs(self, hidden: torch.Tensor, mask2d: torch.Tensor) -> tuple[Any, dict[str, Any]]:
        """Build the inputs every layer takes besides the hidden states.

        The attention mask in the format of the encoder's attention implementation (as ``BertModel`` builds
        it; MPNet always gets eager's additive float mask, since its layers add the mask to their scores),
        plus, for MPNet, the relative position bias of shape (batch_size, heads, seq_len, seq_len) that
        ``MPNetEncoder.forward`` computes once and passes to every layer.
        """
        mask_config = self.encoder.config
        if mask_config.model_type in EAGER_ONLY_ENCODERS and mask_config._attn_implementation != "eager":
            mask_config = copy.copy(mask_config)
            mask_config._attn_implementation = "eager"
        mask = create_bidirectional_mask(config=mask_config, inputs_embeds=hidden, attention_mask=mask2d)
        extra: dict[str, Any] = {}
        owner = getattr(self.encoder, "encoder", None)
        if hasattr(owner, "compute_position_bias"):  # MPNetEncoder
            extra["position_bias"] = owner.compute_position_bias(hidden)
        return mask, extra

    def _run_layer(self, index: int, hidden: torch.Tensor, mask: Any, extra: dict[str, Any]) -> torch.Tensor:
        out = self.encoder_layers[index](hidden, mask, **extra)
        return out[0] if isinstance(out, tuple) else out

    def resolve_exit_settings(
        self,
        exit_rule: str | None = None,
        entropy_threshold: float | None = None,
        patience: int | None = None,
    ) -> ExitRule:
        """Return the config's exit rule and thresholds with any per-call overrides, validated.

        Raises
        ------
        ConfigError
            For an unknown rule or a threshold out of range.
        """
        rule = self.config.exit_rule if exit_rule is None else exit_rule
        s = self.config.entropy_threshold if entropy_threshold is None else entropy_threshold
        t = self.config.patience if patience is None else patience
        if isinstance(t, float) and t.is_integer():
            t = int(t)
        validate_exit_settings(
            rule, s, t, self.num_layers, where="EarlyExitForSequenceClassification.forward"
        )
        return ExitRule(
            rule=rule, entropy_threshold=float(s), patience=int(t), num_layers=self.num_layers
        )

    # ---- forward ---------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        entropy_threshold: float | None = None,
        patience: int | None = None,
        exit_rule: str | None = None,
        all_exits: bool = False,
        token_type_ids: torch.Tensor | None = None,
    ) -> EarlyExitOutput:
        """Classify a batch, each document leaving at its own layer.

        Parameters
        ----------
        input_ids : Tensor of shape (batch_size, seq_len), long
        attention_mask : Tensor of shape (batch_size, seq_len), optional
            1 for tokens, 0 for padding (right padding, as the BERT tokenizers and our collator produce).
        labels : Tensor of shape (batch_size,) long or (batch_size, num_labels) float 0/1, optional
        entropy_threshold, patience, exit_rule : optional
            Override the config for this call only.
        all_exits : bool
            Also return the logits of every exit (runs all layers for every row).
        token_type_ids : Tensor of shape (batch_size, seq_len), optional

        Returns
        -------
        EarlyExitOutput
            ``logits`` (batch_size, num_labels) of each document's exit layer, ``exit_layer`` (batch_size,),
            ``all_logits`` (L, batch_size, num_labels) when ``all_exits``, and ``loss``:

            * joint: sum_i w_i CE_i / sum_i w_i over the L exits (BCE for multi-label);
            * two_stage, stage 1: CE (BCE) of the final classifier;
            * two_stage, stage 2: sum over exits 1..L-1 of KL(final || exit); computed in training mode even
              without labels, so unlabeled text can be used.

        In training mode, with ``labels`` or with ``all_exits`` every layer runs on every row and the exits
        are applied offline (:func:`simulate_exits`); otherwise only the rows still active run each next
        layer. Both give the same exits.

        Raises
        ------
        ConfigError
            For an invalid override.
        """
        if input_ids is None:
            raise ConfigError("EarlyExitForSequenceClassification.forward: input_ids is required")
        settings = self.resolve_exit_settings(exit_rule, entropy_threshold, patience)
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        needs_loss = labels is not None or (self.training and self._stage2())
        if self.training or needs_loss or all_exits:
            return self._forward_all_layers(
                input_ids, attention_mask, token_type_ids, labels, settings, needs_loss, all_exits
            )
        return self._forward_dynamic(input_ids, attention_mask, token_type_ids, settings)

    def _forward_all_layers(
        self, input_ids, attention_mask, token_type_ids, labels, settings, needs_loss, all_exits
    ) -> EarlyExitOutput:
        hidden = self._embed(input_ids, token_type_ids)
        mask, extra = self._layer_inputs(hidden, attention_mask)
        # In two-stage training the loss of each stage uses only some exits (stage 1: the final one;
        # stage 2: exits 1..L-1, with the final one as a detached teacher): the others run without gradient.
        two_stage = self.config.training_mode == "two_stage"
        stage2 = self._stage2()
        per_layer = []
        for i in range(self.num_layers):
            hidden = self._run_layer(i, hidden, mask, extra)
            is_final = i == self.num_layers - 1
            in_loss = not two_stage or (is_final != stage2)
            cls = hidden[:, 0]
            if in_loss:
                per_layer.append(self.classifiers[i](cls))
            else:
                with torch.no_grad():
                    per_layer.append(self.classifiers[i](cls.detach()))
        all_logits = torch.stack(per_layer)  # (L, B, K)
        loss = None
        if needs_loss:
            multi = self.config.multi_label
            if self.config.training_mode == "joint":
                weights = resolve_layer_loss_weights(self.config.layer_loss_weights, self.num_layers)
                loss = joint_exit_loss(all_logits, labels, weights, multi)
            elif self._stage2():
                loss = self_distillation_loss(all_logits[:-1], all_logits[-1], multi)
            else:
                loss = _layer_loss(all_logits[-1], labels, multi)
        with torch.no_grad():
            exit_layer, _ = simulate_exits(all_logits.detach(), settings, self.config.multi_label)
        index = (exit_layer - 1).view(1, -1, 1).expand(1, -1, all_logits.shape[-1])
        logits = all_logits.gather(0, index).squeeze(0)
        return EarlyExitOutput(
            loss=loss, logits=logits, exit_layer=exit_layer, all_logits=all_logits if all_exits else None
        )

    def _forward_dynamic(self, input_ids, attention_mask, token_type_ids, settings) -> EarlyExitOutput:
        batch_size = input_ids.shape[0]
        num_labels = self.config.num_labels
        hidden = self._embed(input_ids, token_type_ids)
        mask2d = attention_mask
        logits_out = hidden.new_zeros((batch_size, num_labels))
        exit_layer = torch.full((batch_size,), self.num_layers, dtype=torch.long, device=hidden.device)
        active = torch.arange(batch_size, device=hidden.device)
        tracker = ExitTracker(settings, self.config.multi_label)
        evaluate_every_head = settings.effective_rule != "none"
        mask, extra = self._layer_inputs(hidden, mask2d)
        for i in range(self.num_layers):
            if active.numel() == 0:
                break
            hidden = self._run_layer(i, hidden, mask, extra)
            layer = i + 1
            if not evaluate_every_head and layer < self.num_layers:
                continue
            logits = self.classifiers[i](hidden[:, 0])
            leave = tracker.step(logits, layer)
            if not bool(leave.any()):
                continue
            rows = active[leave]
            logits_out[rows] = logits[leave].to(logits_out.dtype)
            exit_layer[rows] = layer
            stay = ~leave
            if not bool(stay.any()):
                break
            active, hidden, mask2d = active[stay], hidden[stay], mask2d[stay]
            tracker.keep(stay)
            # Drop trailing columns that are padding for every remaining row: keys there are masked out,
            # so the remaining rows' results are unchanged while later layers cost less.
            columns = mask2d.bool().any(dim=0).nonzero()
            if columns.numel():
                width = int(columns.max()) + 1
                hidden, mask2d = hidden[:, :width], mask2d[:, :width]
            mask, extra = self._layer_inputs(hidden, mask2d)
        return EarlyExitOutput(logits=logits_out, exit_layer=exit_layer)

    # ---- cost ------------------------------------------------------------------------------------
    def flops_per_document(
        self,
        seq_lens: Sequence[int] | np.ndarray,
        exit_layers: Sequence[int] | np.ndarray,
        exit_rule: str | None = None,
        entropy_threshold: float | None = None,
        patience: int | None = None,
    ) -> np.ndarray:
        """Forward FLOPs of each document from the layers it actually ran (:func:`document_flops`).

        Parameters
        ----------
        seq_lens : array of shape (n_docs,)
            Tokens of each document (its own length, padding excluded).
        exit_layers : array of shape (n_docs,)
            1-based exit layers (from ``forward`` or :func:`simulate_exits`).
        exit_rule, entropy_threshold, patience : optional
            The rule that produced ``exit_layers`` (config by default): a rule that cannot exit early
            evaluates only the final classifier.

        Returns
        -------
        ndarray of shape (n_docs,), float64, FLOPs per document.
        """
        settings = self.resolve_exit_settings(exit_rule, entropy_threshold, patience)
        seq_lens, exit_layers = np.asarray(seq_lens), np.asarray(exit_layers)
        if seq_lens.shape != exit_layers.shape:
            raise ConfigError(
                f"flops_per_document: {seq_lens.shape[0]} lengths but {exit_layers.shape[0]} exit layers"
            )
        heads = np.ones_like(exit_layers) if settings.effective_rule == "none" else exit_layers
        return np.asarray(
            document_flops(self.config, seq_lens, exit_layers, heads), dtype=np.float64
        ).reshape(-1)


def _check_encoder(encoder: nn.Module) -> None:
    """Check that ``encoder`` has the pieces early exit calls: ``.embeddings`` and a list of layers.

    Raises
    ------
    ConfigError
        If either is missing (naming the encoder class).
    """
    try:
        encoder_layer_list(encoder)
        has_layers = True
    except ConfigError:
        has_layers = False
    if not has_layers or not hasattr(encoder, "embeddings"):
        raise ConfigError(
            "early exit needs an encoder with .embeddings and a list of transformer layers (encoder.layer), "
            f"as BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA and MPNet have; {type(encoder).__name__} has not"
        )



# ==================================================================================================
# Auto registration: AutoModelForSequenceClassification.from_pretrained(dir) loads a saved model
# ==================================================================================================
AutoConfig.register(EarlyExitConfig.model_type, EarlyExitConfig, exist_ok=True)
AutoModelForSequenceClassification.register(
    EarlyExitConfig, EarlyExitForSequenceClassification, exist_ok=True
)

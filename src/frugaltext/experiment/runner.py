"""The runner of ``frugaltext compare``: train and evaluate methods over seeds, all costs measured alike.

:func:`run_compare` takes a :class:`~frugaltext.experiment.config.CompareConfig` (from
:func:`~frugaltext.experiment.config.resolve_config`) and, for every method and seed,

1. gives the run a fresh :class:`~frugaltext.cost.meter.CostMeter`;
2. trains inside ``meter.track("train")``;
3. predicts the test split (or the validation split when the data has no test split; the row and the table
   say so) and scores it with :func:`frugaltext.metrics.classification_metrics`;
4. measures the model (parameters, FLOPs per document) and inference (latency at batch 1, throughput at
   batch 32) on the evaluation documents;
5. saves the model to ``<output>/models/<method>-seed<k>/`` and the run's log to
   ``<output>/logs/<method>-seed<k>.log``;
6. adds one row to ``results.json`` and ``results.csv`` with
   :func:`~frugaltext.experiment.results.add_result_row` (atomic writes under a file lock), so an interrupted
   comparison keeps every finished run.

Several processes may share one output directory (``--first-seed 1 --seeds 1`` in one, ``--first-seed 2
--seeds 1`` in another, or the same command twice): each run is checked and trained under its own lock
(:func:`~frugaltext.experiment.results.run_lock`, ``<output>/locks/<method>-seed<k>.lock``). A run another
process holds is passed over with a log line and taken up again at the end: this process waits for the lock,
re-reads ``results.json`` and skips the run if the other process finished it (or trains it if that process
died or failed; the kernel releases the lock of a killed process).

Running again into the same output directory resumes: a run whose method, seed and configuration hash
(:func:`~frugaltext.experiment.config.config_hash`: data source and options plus the method's resolved
settings) are already in ``results.json`` is skipped, but only when its model folder matches its manifest
(``frugaltext_manifest.json``: every file's size and SHA-256, written last by
:meth:`~frugaltext.methods.base.Method.save`). A deleted, truncated or half-saved model folder is logged
(``models/bert-seed0: model.safetensors missing; training bert-seed0 again``) and the run is trained again,
its row replaced. A folder saved before manifests existed is loaded once; if it loads, its manifest is
written and the run counts as done. A row with the same method and seed but another hash (settings changed)
is re-run and replaced. The model is saved into a hidden sibling folder and then moved into place, so
``models/<method>-seed<k>`` is never half written.

A neural run killed part-way resumes from its newest complete Trainer checkpoint in
``<method>-seed<k>/checkpoints`` under ``<output>/work`` (saved each epoch and every ``checkpoint_steps``
optimisation steps); its row records ``train_steps`` and ``resumed_from_step``. The work folder is deleted
once the run has finished (unless ``keep_checkpoints``).

A ``grid`` in the configuration (``--grid bert.max_length=64,128,256,512``) is expanded first
(:func:`~frugaltext.experiment.config.expand_grid`): each value is a variant ``bert@max_length-64`` run like
any method (its own lock, row, model folder; resumed like the others), and its row also holds
``grid: {method, setting, value}``.

A variant that differs from another method of the comparison only in inference-time settings
(:func:`~frugaltext.experiment.config.trained_by`, e.g. ``bert@int8: {inference_quantization: int8}``)
trains nothing: it runs after that method and, for each seed, loads its saved model
(``models/bert-seed<k>``), applies its own inference settings, and is evaluated and costed like any row
(macro-F1, latency, throughput, inference energy, FLOPs, parameters). Its training columns
(:data:`TRAINING_COST_KEYS`) are copied from the training method's row of the same seed, its ``model_dir`` is
that method's folder, and its notes say ``trained_by`` (the method), ``trained_by_config_hash`` and
``trained_by_manifest_sha256`` (SHA-256 of the model's manifest when it was evaluated). Resuming skips it when
its row has its configuration hash and the training method's model folder is intact and unchanged; when that
model was trained again, only the evaluation runs again.

At the end the reports (``table.md``, ``pareto.png``/``.svg``, ``pareto_inference.png``/``.svg``, and for a
grid ``grid_<method>_<setting>.json``/``.csv``/``.png``/``.svg``) are rebuilt
from ``results.json`` by :func:`frugaltext.reports.build_reports`, so they can be remade without training
(``frugaltext report DIR``). With a ``select`` block in the configuration, the cheapest model keeping the
asked share of the reference's macro-F1 is then put into ``<output>/selected/``
(:func:`frugaltext.selection.select`; see :func:`_select_after_run` for the reference).
Log records keep the logger names ``frugaltext.compare`` and ``frugaltext.compare.<method>``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from frugaltext.errors import ConfigError, FrugalTextError
from frugaltext.experiment.config import (
    INFERENCE_ONLY_SETTINGS,
    CompareConfig,
    GridPoint,
    base_method,
    config_hash,
    expand_grid,
    method_settings,
    resolved_settings,
    trained_by,
    write_config,
)
from frugaltext.experiment.provenance import frugaltext_version, machine, package_version, torch_threads
from frugaltext.experiment.results import (
    LOCKS_DIR,
    RESULTS_CSV,
    RESULTS_JSON,
    CompareResult,
    add_result_row,
    lock_holder,
    read_results,
    run_lock,
)
from frugaltext.reports import build_reports

if TYPE_CHECKING:
    from frugaltext.selection import Selection

logger = logging.getLogger("frugaltext.compare")

__all__ = ["TEACHER_METHOD", "TRAINING_COST_KEYS", "order_methods", "run_compare"]

#: Methods whose ``teacher`` setting may be ``"auto"``: the ``bert`` model of the same seed in the same run.
TEACHER_METHOD = "bert"

#: Row fields a variant that reuses another method's model (inference settings only) copies from that
#: method's row of the same seed: the cost of training the model it predicts with.
TRAINING_COST_KEYS = (
    "train_duration_s",
    "train_duration_restored_s",
    "train_energy_kwh_after_resume",
    "epoch_duration_s",
    "epoch_durations_s",
    "n_epochs",
    "train_energy_kwh",
    "train_emissions_kg_co2eq",
    "paper_emissions_kg_co2eq",
    "flops_train_step",
    "train_steps",
    "resumed_from_step",
)


def order_methods(methods: Sequence[str], settings: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Run order: as given, but ``bert`` first when another method's ``teacher`` is ``"auto"``.

    Parameters
    ----------
    methods : sequence of str
    settings : mapping
        Resolved settings per method (``teacher`` is read from the method's ``Settings`` defaults when not
        overridden).

    Raises
    ------
    ConfigError
        If a method needs the ``bert`` teacher but ``bert`` is not among ``methods``.
    """
    needing = [m for m in methods if m != TEACHER_METHOD and _teacher_setting(m, settings) == "auto"]
    if not needing:
        return list(methods)
    if TEACHER_METHOD not in methods:
        raise ConfigError(
            f"{', '.join(needing)} {'uses' if len(needing) == 1 else 'use'} teacher 'auto' "
            f"(the {TEACHER_METHOD} model trained in the same run), "
            f"but {TEACHER_METHOD!r} is not among the methods; add it "
            f"(--methods {TEACHER_METHOD},{','.join(methods)}) "
            f"or give a saved model: --{needing[0]}.teacher /path/to/model"
        )
    return [TEACHER_METHOD, *[m for m in methods if m != TEACHER_METHOD]]


def _teacher_setting(method: str, settings: Mapping[str, Mapping[str, Any]]) -> Any:
    configured = method_settings(method, settings)
    if "teacher" in configured:
        return configured["teacher"]
    from frugaltext.methods.base import get_method_class

    return getattr(get_method_class(base_method(method)).Settings(), "teacher", None)


def _labels_for_run(data: Any) -> tuple[Any, str]:
    if data.test is not None:
        return data.test, "test"
    return data.validation, "validation"


class _RunLog:
    """Log to a file for the duration of a ``with`` block.

    A ``logging.FileHandler`` on the root logger, with the ``frugaltext`` logger lowered to INFO so that its
    records reach the file. :meth:`detail` writes to the file only (long settings and cost dumps that would
    clutter the console).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handler: logging.Handler | None = None
        self._old_level = logging.NOTSET

    def __enter__(self) -> _RunLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
        self.handler.setLevel(logging.INFO)
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(self.handler)
        package = logging.getLogger("frugaltext")
        self._old_level = package.level
        if package.getEffectiveLevel() > logging.INFO:
            package.setLevel(logging.INFO)
        return self

    def detail(self, message: str, *args: Any) -> None:
        """Write an INFO record to this log file only."""
        if self.handler is not None:
            record = logging.LogRecord("frugaltext.compare", logging.INFO, __file__, 0, message, args, None)
            self.handler.handle(record)

    def __exit__(self, *exc: Any) -> None:
        logging.getLogger("frugaltext").setLevel(self._old_level)
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()


def _load_data(config: CompareConfig) -> Any:
    from frugaltext.data import load_data

    data = load_data(
        config.data,
        text_field=config.text_field,
        label_field=config.label_field,
        multi_label=config.multi_label,
        validation_fraction=config.validation_fraction,
        seed=config.data_seed,
    )
    if any(n is not None for n in (config.max_train_docs, config.max_validation_docs, config.max_test_docs)):
        data = data.limit(
            config.max_train_docs, config.max_validation_docs, config.max_test_docs, seed=config.data_seed
        )
    return data


def run_compare(config: CompareConfig, progress: bool = True) -> CompareResult:
    """Train and evaluate every method of ``config`` over its seeds; write results, reports and models.

    See the module docstring for the steps and the files written into ``config.output``.

    Parameters
    ----------
    config : CompareConfig
        Usually from :func:`resolve_config`.
    progress : bool, default True
        Show a rich progress bar over the runs (on stderr).

    Returns
    -------
    CompareResult

    Raises
    ------
    ConfigError
        Unknown method or setting, a ``teacher: auto`` method without ``bert``, a missing reference.
    DataNotFoundError, DataFormatError
        From :func:`frugaltext.data.load_data`.
    FrugalTextError
        Anything a method raises; rows of the runs finished before stay in ``results.json``.
    """
    from frugaltext.experiment.preflight import check_compare, undo_on_failure

    expanded, grid_points = expand_grid(config)  # one variant per grid value, each value checked
    checked = check_compare(expanded, order_methods)  # data, methods, settings, output: before any file
    with undo_on_failure(checked):
        return _run_compare(expanded, progress, checked.data, grid_points, written=config)


def _run_compare(
    config: CompareConfig,
    progress: bool,
    data: Any,
    grid_points: Mapping[str, GridPoint] | None = None,
    written: CompareConfig | None = None,
) -> CompareResult:
    """The comparison of the (grid-expanded) ``config``; ``written`` is the configuration as given, saved as
    ``config.yaml`` (with its ``grid`` block, so that ``--config config.yaml`` expands it again)."""
    from frugaltext.cost.meter import CostSettings
    from frugaltext.methods.base import get_method_class, replace_settings

    output_dir = Path(config.output)
    output_dir.mkdir(parents=True, exist_ok=True)
    for method in config.methods:
        get_method_class(base_method(method))  # unknown names fail before any training
    derived = trained_by(config)
    order = _after_trainers(order_methods(config.methods, config.settings), derived)
    cost_settings = replace_settings(CostSettings(), dict(config.cost), where="cost settings")

    write_config(written or config, output_dir / "config.yaml")
    grid_points = dict(grid_points or {})
    paths = {
        "results_json": output_dir / RESULTS_JSON,
        "results_csv": output_dir / RESULTS_CSV,
        "config": output_dir / "config.yaml",
        "log": output_dir / "compare.log",
    }
    with _RunLog(paths["log"]):
        logger.info(
            "compare: methods %s, seeds %s, data %s, output %s",
            order,
            config.seed_values,
            config.data,
            output_dir,
        )
        for note in data.notes:
            logger.info("data: %s", note)
        for method, trainer in derived.items():
            logger.info("%s: differs from %s only in inference settings (%s); it reuses %s's trained model "
                        "of each seed (no training)", method, trainer, ", ".join(INFERENCE_ONLY_SETTINGS),
                        trainer)
        eval_split, eval_name = _labels_for_run(data)
        if eval_name != "test":
            logger.warning(
                "data %s has no test split: methods are evaluated on the validation split", config.data
            )

        rows = read_results(paths["results_json"])
        data_id = config.data_identity()
        other = sorted({r.get("method", "?") for r in rows if r.get("data_identity", data_id) != data_id})
        if other:
            logger.warning(
                "%s holds rows of %s on other data or data options; runs of this comparison replace rows of "
                "the same method and seed, the others stay and appear in the table: use a new --output to "
                "keep comparisons apart",
                paths["results_json"],
                ", ".join(other),
            )
        runs = [(m, s) for m in order for s in config.seed_values]
        ran: list[str] = []
        skipped: list[str] = []
        busy: list[tuple[str, int]] = []

        def attempt(method: str, seed: int, blocking: bool) -> str:
            run_name = f"{method}-seed{seed}"
            settings = resolved_settings(method, config)
            trainer = derived.get(method)
            if (
                settings.get("teacher") == "auto"
                and method != TEACHER_METHOD
                and (TEACHER_METHOD, seed) in busy
            ):
                logger.info("%s: its teacher %s-seed%d is being trained by another process; later",
                            run_name, TEACHER_METHOD, seed)
                return "busy"
            if trainer is not None and (trainer, seed) in busy:
                logger.info("%s: the model it reuses, %s-seed%d, is being trained by another process; later",
                            run_name, trainer, seed)
                return "busy"
            with run_lock(output_dir, run_name, blocking=blocking) as held:
                if not held:
                    logger.info(
                        "%s: skipping for now, %s is training it (lock %s); results.json is read again at "
                        "the end",
                        run_name,
                        lock_holder(output_dir, run_name),
                        output_dir / LOCKS_DIR / f"{run_name}.lock",
                    )
                    return "busy"
                chash = config_hash(data_id, method, settings)
                rows = read_results(paths["results_json"])  # another process may have added rows
                done = [r for r in rows if r.get("method") == method and r.get("seed") == seed]
                same = [r for r in done if r.get("config_hash") == chash]
                if same:
                    if trainer is None:
                        problem = _stored_model_problem(method, output_dir, run_name)
                    else:
                        problem = _reused_model_problem(same[0], trainer, output_dir, seed)
                    if problem is None:
                        logger.info(
                            "%s: skipping, already done (config hash %s in %s, model folder verified)",
                            run_name,
                            chash,
                            paths["results_json"],
                        )
                        return "skipped"
                    logger.warning(
                        "models/%s: %s; %s %s again (its row in %s will be replaced)",
                        run_name if trainer is None else f"{trainer}-seed{seed}",
                        problem,
                        "training" if trainer is None else "evaluating",
                        run_name,
                        RESULTS_JSON,
                    )
                elif done:
                    logger.info(
                        "%s: settings changed since the stored row (hash %s -> %s); running again",
                        run_name,
                        done[0].get("config_hash"),
                        chash,
                    )
                advance(run_name, skipped=False, starting=True, evaluating=trainer is not None)
                if trainer is not None:
                    row = _evaluate_reused(
                        config, data, eval_split, eval_name, method, trainer, seed, settings, chash,
                        cost_settings, output_dir,
                    )
                    add_result_row(row, output_dir)
                    return "ran"
                row = _run_one(
                    config,
                    data,
                    eval_split,
                    eval_name,
                    method,
                    seed,
                    settings,
                    chash,
                    cost_settings,
                    output_dir,
                    order,
                )
                if method in grid_points:
                    row["grid"] = grid_points[method].as_row()
                add_result_row(row, output_dir)
                return "ran"

        with _progress(progress, len(runs)) as advance:
            for method, seed in runs:
                outcome = attempt(method, seed, blocking=False)
                if outcome == "busy":
                    busy.append((method, seed))
                    continue
                (ran if outcome == "ran" else skipped).append(f"{method}-seed{seed}")
                advance(f"{method}-seed{seed}", skipped=outcome == "skipped")
            # Runs another process held: wait for it, then take its row (or train, if it died or failed).
            while busy:
                method, seed = busy.pop(0)
                run_name = f"{method}-seed{seed}"
                logger.info("%s: waiting for the other process training it to finish", run_name)
                outcome = attempt(method, seed, blocking=True)
                (ran if outcome == "ran" else skipped).append(run_name)
                advance(run_name, skipped=outcome == "skipped")

        rows = read_results(paths["results_json"])
        report = build_reports(paths["results_json"], reference=config.reference)
        logger.info("reports written: %s", ", ".join(str(p) for p in report.paths.values()))
        paths.update(report.paths)
        selection = _select_after_run(config, output_dir, rows) if config.select is not None else None
    if selection is not None:
        paths["selected"] = selection.selected_dir
    return CompareResult(
        output_dir=output_dir,
        rows=rows,
        ran=ran,
        skipped=skipped,
        table_markdown=report.markdown,
        paths=paths,
        table=report.table,
        selection=selection,
    )


class _progress:
    """Context manager giving ``advance(run_name, skipped, starting=False, evaluating=False)``; a rich bar
    when enabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled = enabled
        self.total = total
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("[bold]compare[/] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("starting", total=self.total)
        return self.advance

    def advance(self, run_name: str, skipped: bool, starting: bool = False, evaluating: bool = False) -> None:
        if self._progress is None:
            return
        if starting:  # a row that reuses another method's model only evaluates
            doing = "evaluating" if evaluating else "training"
            self._progress.update(self._task, description=f"{doing} {run_name}")
        else:
            self._progress.update(
                self._task, advance=1, description=f"{run_name} {'skipped (done)' if skipped else 'done'}"
            )

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()


def _stored_model_problem(method_name: str, output_dir: Path, run_name: str) -> str | None:
    """Why the saved model of a finished run cannot be trusted, or None when it can.

    The folder ``<output>/models/<run_name>`` must match its ``frugaltext_manifest.json`` (every file's
    size and SHA-256, :func:`frugaltext.manifest.verify_manifest`). A folder saved by a frugaltext older
    than the manifest (it has ``frugaltext_method.json`` but no manifest) is loaded once with
    :func:`frugaltext.methods.base.load_model`; when it loads its manifest is written now and the run
    counts as done. Methods with ``saves_model = False`` have nothing to check.
    """
    from frugaltext.manifest import MANIFEST_FILE, verify_manifest, write_manifest
    from frugaltext.methods.base import METHOD_FILE, get_method_class, load_model

    if not get_method_class(base_method(method_name)).saves_model:
        return None
    model_dir = output_dir / "models" / run_name
    problem = verify_manifest(model_dir)
    if problem == f"no {MANIFEST_FILE}":
        if not (model_dir / METHOD_FILE).is_file():
            return f"no {MANIFEST_FILE} and no {METHOD_FILE} (the save was cut short)"
        try:
            load_model(model_dir)
        except Exception as err:  # noqa: BLE001 - any failure means "not a usable model"
            return f"no {MANIFEST_FILE} (saved by an older frugaltext) and it does not load: {err}"
        write_manifest(model_dir)
        logger.info("models/%s: saved by an older frugaltext (no manifest); it loads, manifest written",
                    run_name)
        return None
    return problem


def _after_trainers(order: Sequence[str], derived: Mapping[str, str]) -> list[str]:
    """``order`` with every method of ``derived`` moved right after the method whose model it reuses."""
    out = [m for m in order if m not in derived]
    for method in [m for m in order if m in derived]:
        trainer = derived[method]
        later = [i for i, m in enumerate(out) if m == trainer or derived.get(m) == trainer]
        out.insert(later[-1] + 1, method)
    return out


def _manifest_sha256(model_dir: Path) -> str | None:
    """SHA-256 of ``model_dir``'s manifest (changes whenever the model is saved again), None without one."""
    from frugaltext.manifest import MANIFEST_FILE, file_sha256

    path = model_dir / MANIFEST_FILE
    return file_sha256(path) if path.is_file() else None


def _reused_model_problem(row: Mapping[str, Any], trainer: str, output_dir: Path, seed: int) -> str | None:
    """Why the stored row of a variant reusing ``trainer``'s model must be evaluated again, or None.

    The trainer's folder ``models/<trainer>-seed<k>`` must be intact (:func:`_stored_model_problem`) and be
    the model the row was evaluated with (the manifest's SHA-256 stored in the row's notes).
    """
    run_name = f"{trainer}-seed{seed}"
    problem = _stored_model_problem(trainer, output_dir, run_name)
    if problem is not None:
        return problem
    notes = row.get("notes") if isinstance(row.get("notes"), Mapping) else {}
    stored = notes.get("trained_by_manifest_sha256")
    if stored != _manifest_sha256(output_dir / "models" / run_name):
        return "saved again since this variant was evaluated with it"
    return None


def _apply_inference_settings(method: Any, settings: Mapping[str, Any]) -> None:
    """Give a loaded model the inference-only settings (:data:`INFERENCE_ONLY_SETTINGS`) of ``settings``."""
    for key in INFERENCE_ONLY_SETTINGS:
        if key not in settings or getattr(method.settings, key, None) == settings[key]:
            continue
        if key == "inference_quantization":
            method.quantize(settings[key])
        elif key == "int8_keep_fp32_linear":
            method.quantize(getattr(method.settings, "inference_quantization", "none"), settings[key])
        else:  # pragma: no cover - every inference-only setting needs its own line above
            raise ConfigError(f"{method.name}: no way to apply the inference setting {key!r} to a loaded "
                              "model")


def _evaluate_reused(
    config: CompareConfig,
    data: Any,
    eval_split: Any,
    eval_name: str,
    method_name: str,
    trainer: str,
    seed: int,
    settings: dict[str, Any],
    chash: str,
    cost_settings: Any,
    output_dir: Path,
) -> dict[str, Any]:
    """Evaluate and cost ``method_name`` with the saved model of ``trainer`` (same seed); return its row.

    The model ``models/<trainer>-seed<k>`` is loaded (:func:`frugaltext.methods.base.load_model`), given the
    variant's inference settings, scored on the evaluation split and measured (FLOPs, parameters, latency,
    throughput, inference energy) like a trained row; the fields of :data:`TRAINING_COST_KEYS` come from
    ``trainer``'s row of the same seed.

    Raises
    ------
    FrugalTextError
        When ``trainer``'s row of this seed (same configuration hash) is missing from ``results.json`` or
        its model folder does not verify.
    """
    from frugaltext.cost.meter import CostMeter
    from frugaltext.methods.base import load_model, probabilities_to_predictions
    from frugaltext.metrics import classification_metrics

    run_name = f"{method_name}-seed{seed}"
    trainer_run = f"{trainer}-seed{seed}"
    model_dir = output_dir / "models" / trainer_run
    trainer_hash = config_hash(config.data_identity(), trainer, resolved_settings(trainer, config))
    trainer_rows = [r for r in read_results(output_dir / RESULTS_JSON)
                    if r.get("method") == trainer and r.get("seed") == seed
                    and r.get("config_hash") == trainer_hash]
    if not trainer_rows:
        raise FrugalTextError(
            f"{run_name} reuses the model of {trainer_run}, whose row (config hash {trainer_hash}) is not in "
            f"{output_dir / RESULTS_JSON}; run the comparison again so that {trainer} is trained first"
        )
    problem = _stored_model_problem(trainer, output_dir, trainer_run)
    if problem is not None:
        raise FrugalTextError(f"{run_name} reuses {model_dir}, which does not verify ({problem}); run the "
                              f"comparison again so that {trainer_run} is trained again")
    trainer_row = trainer_rows[-1]
    manifest_sha = _manifest_sha256(model_dir)

    with _RunLog(output_dir / "logs" / f"{run_name}.log") as run_log:
        log = logging.getLogger(f"frugaltext.compare.{method_name}")
        log.info("%s: start (seed %d, config hash %s): the model of %s with %s, no training", run_name, seed,
                 chash, trainer_run,
                 ", ".join(f"{k}={settings[k]}" for k in INFERENCE_ONLY_SETTINGS if k in settings))
        run_log.detail("%s: settings %s", run_name, json.dumps(settings, sort_keys=True, default=str))
        started = time.perf_counter()
        try:
            method = load_model(model_dir)
            _apply_inference_settings(method, settings)
            meter = CostMeter(cost_settings)
            proba = method.predict_proba(eval_split.texts)
            y_pred = probabilities_to_predictions(proba, data.multi_label)
            scores = classification_metrics(eval_split.labels, y_pred, data.label_names, data.multi_label)
            log.info("%s: %s macro_f1 %.4f, micro_f1 %.4f, accuracy %.4f", run_name, eval_name,
                     scores["macro_f1"], scores["micro_f1"], scores["accuracy"])
            meter.measure_model(method, eval_split.texts)
            meter.measure_inference(method, eval_split.texts)
        except Exception:
            log.exception("%s: failed", run_name)
            raise
        costs = meter.as_dict()
        run_log.detail("%s: costs %s", run_name, json.dumps(costs, sort_keys=True, default=str))
        log.info("%s: evaluated in %.1f s", run_name, time.perf_counter() - started)

    tail_keys = ("train_steps", "resumed_from_step")
    for key in TRAINING_COST_KEYS:
        if key in tail_keys:
            continue
        if key in trainer_row:
            costs[key] = copy.deepcopy(trainer_row[key])
        else:  # e.g. train_energy_kwh_after_resume of a row that was not resumed
            costs.pop(key, None)
    notes = dict(method.cost_notes())
    notes.update({
        "trained_by": trainer,
        "trained_by_config_hash": trainer_hash,
        "trained_by_manifest_sha256": manifest_sha,
    })
    row = _row(config, data, eval_split, eval_name, method_name, seed, scores)
    row.update(costs)
    row.update(_row_tail(config, settings, cost_settings, chash, model_dir, notes, data,
                         *(trainer_row.get(key) for key in tail_keys)))
    return copy.deepcopy(row)


def _row(config: CompareConfig, data: Any, eval_split: Any, eval_name: str, method_name: str, seed: int,
         scores: Mapping[str, Any]) -> dict[str, Any]:
    """The data and score fields of a results row."""
    return {
        "method": method_name,
        "seed": seed,
        "dataset": data.name,
        "data_source": config.data,
        "task": "multi-label" if data.multi_label else "single-label",
        "num_labels": data.num_labels,
        "n_train": len(data.train),
        "n_validation": len(data.validation),
        "n_test": len(data.test) if data.test is not None else 0,
        "eval_split": eval_name,
        "n_eval": len(eval_split),
        "macro_f1": scores["macro_f1"],
        "micro_f1": scores["micro_f1"],
        "accuracy": scores["accuracy"],
        "weighted_f1": scores["weighted_f1"],
        "per_class": scores["per_class"],
    }


def _row_tail(config: CompareConfig, settings: Mapping[str, Any], cost_settings: Any, chash: str,
              model_dir: Path, notes: Mapping[str, Any], data: Any, train_steps: Any,
              resumed_from_step: Any) -> dict[str, Any]:
    """The notes, settings, training steps and provenance fields of a results row (after the costs)."""
    return {
        "notes": dict(notes),
        "settings": dict(settings),
        "cost_settings": dataclasses.asdict(cost_settings),
        "config_hash": chash,
        "data_identity": config.data_identity(),
        "model_dir": str(model_dir),
        "train_steps": train_steps,
        "resumed_from_step": resumed_from_step,
        "data_notes": list(data.notes),
        "frugaltext_version": frugaltext_version(),
        "torch_version": package_version("torch"),
        "torch_threads": torch_threads(),
        "machine": machine(),
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _save_model(method: Any, model_dir: Path) -> None:
    """Save ``method`` into a hidden sibling folder, then move it to ``model_dir`` (replacing an old one), so
    ``model_dir`` is always either the old or the new complete model."""
    partial = model_dir.with_name(f".{model_dir.name}.partial{os.getpid()}")
    old = model_dir.with_name(f".{model_dir.name}.old{os.getpid()}")
    for leftover in model_dir.parent.glob(f".{model_dir.name}.*"):  # from a killed process
        shutil.rmtree(leftover, ignore_errors=True)
    method.save(partial)
    if not partial.is_dir():  # a non-zero torchrun rank: rank 0 saves
        return
    if model_dir.exists():
        os.replace(model_dir, old)
    os.replace(partial, model_dir)
    shutil.rmtree(old, ignore_errors=True)


def _run_one(
    config: CompareConfig,
    data: Any,
    eval_split: Any,
    eval_name: str,
    method_name: str,
    seed: int,
    settings: dict[str, Any],
    chash: str,
    cost_settings: Any,
    output_dir: Path,
    order: Sequence[str],
) -> dict[str, Any]:
    """Train, evaluate, measure and save one method with one seed; return its results row."""
    from frugaltext.cost.meter import CostMeter
    from frugaltext.methods.base import get_method_class, probabilities_to_predictions
    from frugaltext.metrics import classification_metrics

    run_name = f"{method_name}-seed{seed}"
    model_dir = output_dir / "models" / run_name
    work_dir = output_dir / "work" / run_name
    run_settings = dict(settings)
    if run_settings.get("teacher") == "auto" and method_name != TEACHER_METHOD:
        teacher_dir = output_dir / "models" / f"{TEACHER_METHOD}-seed{seed}"
        if not teacher_dir.is_dir():
            raise ConfigError(
                f"{run_name}: teacher 'auto' needs the {TEACHER_METHOD} model of seed {seed} at "
                f"{teacher_dir}, which is missing; delete the {TEACHER_METHOD} rows of "
                f"{output_dir / RESULTS_JSON} so that it is trained again"
            )
        run_settings["teacher"] = str(teacher_dir)

    with _RunLog(output_dir / "logs" / f"{run_name}.log") as run_log:
        log = logging.getLogger(f"frugaltext.compare.{method_name}")
        log.info("%s: start (seed %d, config hash %s)", run_name, seed, chash)
        run_log.detail("%s: settings %s", run_name, json.dumps(run_settings, sort_keys=True, default=str))
        log.info(
            "%s: data %s: %d train / %d validation / %s documents, %d labels (%s)",
            run_name,
            data.name,
            len(data.train),
            len(data.validation),
            f"{len(eval_split)} {eval_name}",
            data.num_labels,
            "multi-label" if data.multi_label else "single-label",
        )
        cls = get_method_class(base_method(method_name))
        method = cls(**{k: v for k, v in run_settings.items()})
        if hasattr(method, "checkpoint_steps"):
            method.checkpoint_steps = config.checkpoint_steps
        meter = CostMeter(cost_settings)
        work_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        try:
            with meter.track("train"):
                method.fit(data, meter, seed=seed, output_dir=work_dir)
            log.info(
                "%s: trained in %.1f s (%d epochs)",
                run_name,
                meter.phases["train"].duration_s,
                len(meter.epoch_durations_s),
            )
            proba = method.predict_proba(eval_split.texts)
            y_pred = probabilities_to_predictions(proba, data.multi_label)
            scores = classification_metrics(eval_split.labels, y_pred, data.label_names, data.multi_label)
            log.info(
                "%s: %s macro_f1 %.4f, micro_f1 %.4f, accuracy %.4f",
                run_name,
                eval_name,
                scores["macro_f1"],
                scores["micro_f1"],
                scores["accuracy"],
            )
            meter.measure_model(method, eval_split.texts)
            meter.measure_inference(method, eval_split.texts)
            _save_model(method, model_dir)
            log.info("%s: model saved to %s", run_name, model_dir)
        except Exception:
            log.exception("%s: failed", run_name)
            raise
        costs = meter.as_dict()
        run_log.detail("%s: costs %s", run_name, json.dumps(costs, sort_keys=True, default=str))
        if not config.keep_checkpoints:
            shutil.rmtree(work_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                work_dir.parent.rmdir()  # only when empty
        log.info("%s: finished in %.1f s", run_name, time.perf_counter() - started)

    row = _row(config, data, eval_split, eval_name, method_name, seed, scores)
    row.update(costs)
    row.update(_row_tail(config, run_settings, cost_settings, chash, model_dir, method.cost_notes(), data,
                         getattr(method, "train_steps", None), getattr(method, "resumed_steps", None)))
    return copy.deepcopy(row)


def _select_after_run(
    config: CompareConfig, output_dir: Path, rows: Sequence[Mapping[str, Any]]
) -> Selection:
    """``frugaltext select OUTPUT`` with the settings of ``config.select``, logged to ``compare.log``.

    The reference is ``select.reference`` when given (an error if it has no rows), else the comparison's
    ``reference`` when it has rows, else the method of highest mean macro-F1 (the log says which).

    Raises
    ------
    frugaltext.selection.NoCandidateError
        Nothing meets the constraint; ``results.json`` and the reports are already written.
    ModelLoadError
        The pick's model folder is missing.
    """
    from frugaltext.selection import select

    settings = dict(config.select or {})
    reference = settings.get("reference")
    if reference is None and config.reference in {str(r.get("method")) for r in rows}:
        reference = config.reference
    try:
        selection = select(
            output_dir,
            min_retention=settings["min_retention"],
            objective=settings["objective"],
            reference=reference,
        )
    except FrugalTextError as err:
        logger.error("%s (the results and reports are written in %s)", err, output_dir)
        raise
    logger.info(
        "select: %s (seed %d; macro-F1 %.1f %% of %s's) is the cheapest by %s; put into %s",
        selection.selected.method,
        selection.seed,
        selection.selected.retention_pct or 0.0,
        selection.reference,
        selection.objective.name,
        selection.selected_dir,
    )
    return selection

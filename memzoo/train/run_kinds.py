"""The one file that knows the kinds of run: ``memzoo.fit(config)`` picks the recipe.

============  =====================================  =========================================
task.name     recipe                                 model
============  =====================================  =========================================
any task      ``recipes.single_task`` (curriculum,   ``SequenceModel``
              TBPTT segments, DDP under torchrun)
multitask     ``recipes.multitask``                  ``MultiHeadModel`` (one trunk, heads)
translate     ``recipes.translation``                ``Seq2Seq`` (a ``TranslationConfig``)
continual     ``recipes.continual``: two single-     ``SequenceModel``
              task runs on the same weights
============  =====================================  =========================================
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, NamedTuple

from memzoo.errors import ConfigError, MemzooError
from memzoo.files import refuse_links
from memzoo.parsing import load_json_text
from memzoo.train import distributed
from memzoo.train.checkpoint import CONFIG, code_consent
from memzoo.train.config import BaseTrainConfig, RunConfig, build_config, validate_config
from memzoo.train.environment import resolve_device
from memzoo.train.kinds import RESUMABLE, kind_of
from memzoo.train.lifecycle import RunResult, run_lifecycle
from memzoo.train.recipes.continual import continual_phases, run_continual
from memzoo.train.recipes.multitask import MultitaskRecipe
from memzoo.train.recipes.single_task import SingleTaskRecipe
from memzoo.train.recipes.translation import TranslationRecipe
from memzoo.train.resume import LAST, last_folder
from memzoo.train.run_ids import check_run_id, run_folder
from memzoo.train.seq2seq_config import TranslationConfig, validate_translation_config
from memzoo.train.sizes import check_memory


def fit(
    config: RunConfig | TranslationConfig | dict,
    *,
    store=None,
    suite: str | None = None,
    run_id: str | None = None,
    progress: bool | None = None,
    model=None,
    resume_from: str | Path | None = None,
) -> RunResult:
    """Train what ``config`` describes; return the record, the model and its checkpoint folder.

    Args:
        config: a ``RunConfig`` (or dict validated into one); a ``TranslationConfig`` (or a
            dict whose ``model`` has ``encoder_layers``) for translation.
        store: a ``ResultsStore``; when given, the run and its curve are written as they go.
        suite: the benchmark suite this run belongs to (stored with it).
        run_id: defaults to a fresh random id (letters, digits, ``._-``).
        progress: show a progress bar; default: only when stderr is a terminal.
        model: go on training this model (e.g. continual learning) instead of building one.
        resume_from: a run's ``last/`` folder (see ``memzoo.train.resume.resume_run``).
    """
    where = {"store": store, "suite": suite, "run_id": run_id, "progress": progress}  # every kind's
    if _is_translation(config):
        return _translation(config, where, model, resume_from)
    cfg = validate_config(config)
    check_memory(cfg)  # before any data or weights are allocated
    name, kind = cfg.task.name, kind_of(cfg.task.name)
    if resume_from is not None and not kind.resumable:
        raise ConfigError(f"task {name!r} cannot be resumed; only {RESUMABLE} can")
    if cfg.model.rmt is not None and kind.name in ("multitask", "translate"):
        raise ConfigError(f"model.rmt: task {name!r} builds a model of its own; RMT trains single-task runs")
    if not kind.distributed and distributed.env_world()[0] > 1:
        raise ConfigError(f"task {name!r} trains in one process; run it without torchrun")
    return _RUNNERS[kind.name](cfg, where, model, resume_from)


def _single_task(cfg: RunConfig, where: dict[str, Any], model, resume_from) -> RunResult:
    device = resolve_device(cfg.train.device)
    with distributed.session(device) as dctx:
        recipe = SingleTaskRecipe(cfg, model=model, dctx=dctx)
        return run_lifecycle(recipe, resume_from=resume_from, dctx=dctx, device=dctx.device(device), **where)


def _multitask(cfg: RunConfig, where: dict[str, Any], model, resume_from) -> RunResult:
    return run_lifecycle(MultitaskRecipe(cfg, model=model), device=resolve_device(cfg.train.device), **where)


def _continual(cfg: RunConfig, where: dict[str, Any], model, resume_from) -> RunResult:
    cfg_a, cfg_b = continual_phases(cfg)
    return run_continual(cfg_a, cfg_b, model=model, record_config=cfg.model_dump(mode="json"), **where)


def _translate(cfg: RunConfig, where: dict[str, Any], model, resume_from) -> RunResult:
    return _translation(translation_config_from_run(cfg), where, model, resume_from)


def _is_translation(config) -> bool:
    if isinstance(config, TranslationConfig):
        return True
    return (
        isinstance(config, dict)
        and isinstance(config.get("model"), dict)
        and "encoder_layers" in config["model"]
    )


def _translation(config, where: dict[str, Any], model, resume_from) -> RunResult:
    """A translation run (``where``: store, suite, run_id, progress)."""
    if model is not None:
        raise ConfigError("task 'translate' trains a fresh Seq2Seq; passing a model is not supported")
    if resume_from is not None:
        raise ConfigError(f"task 'translate' cannot be resumed; only {RESUMABLE} can")
    cfg = validate_translation_config(config)
    check_memory(cfg)
    recipe = TranslationRecipe(cfg)
    result = run_lifecycle(recipe, device=resolve_device(cfg.train.device), **where)
    result.task = recipe.task
    return result


#: how each kind of run (``memzoo.train.kinds``) is trained, by kind name
_RUNNERS = {"single": _single_task, "multitask": _multitask, "continual": _continual, "translate": _translate}


def translation_config_from_run(cfg: RunConfig) -> TranslationConfig:
    """A ``TranslationConfig`` for a ``RunConfig`` whose task is ``translate`` (what
    ``memzoo train --task translate`` means): ``model.layers`` is the stack of the encoder and
    of the decoder alike; ``train.target_accuracy`` (a fraction) is the target chrF / 100."""
    m, t = cfg.model, cfg.train.model_dump()
    return validate_translation_config(
        {
            "task": {"name": "translate", **cfg.task.params()},
            "model": {
                "encoder_layers": m.layers,
                "decoder_layers": m.layers,
                "d_model": m.d_model,
                "mlp_ratio": m.mlp_ratio,
                "layer_options": m.layer_options,
            },
            "train": {
                **{k: v for k, v in t.items() if k in BaseTrainConfig.model_fields},
                "target_chrf": 100 * t["target_accuracy"],
            },
        }
    )


def resume_run(
    run: str, *, store=None, overrides: list[str] | None = None, progress=None, trust_code: bool = False
):
    """Continue run ``run`` (a run id in ``store``, or a run's checkpoint folder) from the
    last epoch it saved, under the same run id; return the ``RunResult``.

    The config is the stored one (the store's row, else the checkpoint's ``config.json``),
    with ``overrides`` applied (e.g. ``train.epochs=8`` to train longer; a changed epoch count
    changes the learning-rate schedule, so such a run no longer matches an uninterrupted one).
    The store row goes back to ``running`` and keeps the curve of the epochs already done.
    A checkpoint folder's config that names a layer by import path is imported only with
    ``trust_code=True`` (see ``memzoo.train.checkpoint.code_consent``); a stored row is the
    user's own and needs no consent.
    """
    record = None
    if store is not None:
        try:
            record = store.get(run)
        except MemzooError:
            record = None
    target = _stored_target(record, store) if record is not None else _folder_target(run, store, trust_code)
    config, run_id, suite, run_dir, consent = target
    with consent:
        cfg = build_config(config, list(overrides or []))
    if not kind_of(cfg.task.name).resumable:
        raise ConfigError(f"task {cfg.task.name!r} cannot be resumed; only {RESUMABLE} can")
    return fit(
        cfg, store=store, suite=suite, run_id=run_id, progress=progress, resume_from=last_folder(run_dir)
    )


class _ResumeTarget(NamedTuple):
    """What a resume continues: the config, the run id and suite, the run folder, and the
    context its config is validated in (consent to import code, for a checkpoint folder)."""

    config: Any
    run_id: str
    suite: str | None
    run_dir: Path
    consent: AbstractContextManager


def _stored_target(record, store) -> _ResumeTarget:
    """A run stored in ``store``: its row's config; its folder under the config's out_dir."""
    config, run_id = record.config, record.run_id
    train = config.get("train") if isinstance(config, dict) else None
    out_dir = train.get("out_dir", "results/runs") if isinstance(train, dict) else "results/runs"
    try:
        run_dir = run_folder(out_dir, run_id)  # a stored id is checked before it names a folder
    except ConfigError as err:
        raise MemzooError(f"{store.path}: stored run {run_id!r} cannot be resumed: {err}") from None
    refuse_links(run_dir)
    return _ResumeTarget(config, run_id, record.suite, run_dir, nullcontext())


def _folder_target(run: str, store, trust_code: bool) -> _ResumeTarget:
    """A run's checkpoint folder (or its ``last/``): the config in its ``config.json``, going on
    in that folder whatever the config's out_dir says."""
    path = Path(run)
    if not path.is_dir():
        where = f"in {store.path} " if store is not None else ""
        raise MemzooError(f"no run {run!r} {where}and no checkpoint folder of that name")
    run_dir = path.parent if path.name == LAST else path
    refuse_links(run_dir)  # nothing is read through a link planted in the folder
    meta_file = last_folder(path) / CONFIG
    try:
        meta = load_json_text(meta_file.read_text(), meta_file.name)
        config, run_id = meta["config"], check_run_id(meta["run_id"])
    except (ValueError, KeyError, TypeError) as err:  # JSONDecodeError and ConfigError are ValueErrors
        raise MemzooError(f"{meta_file}: not a usable checkpoint config ({err})") from None
    if run_dir.resolve().name != run_id:
        raise MemzooError(
            f"{str(run_dir)!r} holds run {run_id!r}: a run resumes in its own folder, so name the folder {run_id!r}"
        )
    if isinstance(config, dict) and isinstance(config.get("train", {}), dict):
        config = {**config, "train": {**config.get("train", {}), "out_dir": str(run_dir.resolve().parent)}}
    return _ResumeTarget(config, run_id, None, run_dir, code_consent(run_dir, trust_code))

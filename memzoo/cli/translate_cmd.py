"""``memzoo translate``: train an encoder-decoder translation model, store and report the run."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from memzoo.cli.app import app
from memzoo.results import DEFAULT_DB, ResultsStore
from memzoo.train import fit
from memzoo.train.config import load_config_file
from memzoo.train.seq2seq_config import build_translation_config


@app.command("translate", context_settings={"allow_extra_args": False})
def translate_command(
    overrides: list[str] = typer.Argument(
        None, help="key=value overrides, e.g. task.path=pairs.tsv model.score=additive train.beam_size=4"
    ),
    config: Path | None = typer.Option(None, "--config", help="YAML/JSON translation config."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not write to the database."),
    show: int = typer.Option(3, "--show", min=0, help="Held-out translations to print."),
    as_json: bool = typer.Option(False, "--json", help="Last stdout line: one JSON result."),
) -> None:
    """Train a Seq2Seq on the toy grammar (default) or your TSV of sentence pairs (task.path=...)."""
    base = load_config_file(config) if config else {}
    cfg = build_translation_config(base, list(overrides or []))
    store = None if no_store else ResultsStore(db)
    result = fit(cfg, store=store)
    record, metrics = result.record, result.record.metrics
    if as_json:
        summary = {
            "run_id": record.run_id,
            "status": record.status,
            "metrics": metrics,
            "wall_seconds": record.wall_seconds,
            "params": record.params,
            "checkpoint": str(result.checkpoint_dir) if result.checkpoint_dir else None,
            "error": record.error,
        }
        typer.echo(json.dumps(summary))
        return
    console = Console()
    nan = float("nan")
    console.print(
        f"[bold]{record.run_id}[/] {record.status}: chrF {metrics.get('chrf', nan):.1f}, "
        f"BLEU {metrics.get('bleu', nan):.1f}, exact match {metrics.get('exact_match', nan):.3f} "
        f"after {metrics.get('epochs')} epoch(s), {record.wall_seconds:.1f} s, {record.params:,} params"
    )
    baselines = [f"copy the source {metrics['identity_chrf']:.1f}"]
    if "gloss_chrf" in metrics:
        baselines.append(f"word-by-word gloss {metrics['gloss_chrf']:.1f}")
    console.print("baseline chrF: " + ", ".join(baselines))
    for example in metrics.get("examples", [])[:show]:
        text = f"  {example['source']}\n    -> {example['output']}\n    (reference: {example['reference']})"
        console.print(text, markup=False, highlight=False)
    if result.checkpoint_dir:
        console.print(f"checkpoint and tokenizers: {result.checkpoint_dir}", markup=False, highlight=False)
    if record.error:
        console.print(f"[red]{record.error}[/]")

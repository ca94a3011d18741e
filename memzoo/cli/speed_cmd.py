"""``memzoo speed``: the speed benchmark (throughput, decode latency, state bytes, MFU)."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from memzoo import layers as layer_registry
from memzoo.cli.app import app
from memzoo.errors import ConfigError
from memzoo.results import DEFAULT_DB, ResultsStore
from memzoo.speed.run import DEFAULT_MODES, MODES, SpeedSettings, run_speed
from memzoo.train.config import parse_value

DEFAULT_LAYERS = "attention,sliding_window,lstm,linear_attention,deltanet,gated_deltanet,mlstm"


def _int_list(text: str, field: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{field} must be comma-separated integers, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise ConfigError(f"{field} must list positive integers, got {text!r}")
    return values


def _layer_options(items: list[str], names: list[str]) -> dict[str, dict]:
    """``{layer: {key: value}}`` of ``--option LAYER.KEY=VALUE`` items, checked against each
    layer's constructor (an unknown layer or key is a ``ConfigError`` naming the option)."""
    options: dict[str, dict] = {}
    for item in items:
        target, sep, text = item.partition("=")
        layer, dot, key = target.partition(".")
        if not (sep and dot and layer and key):
            raise ConfigError(f"--option must look like LAYER.KEY=VALUE, got {item!r}")
        if layer not in names:
            raise ConfigError(f"--option {item!r}: layer {layer!r} is not in --layers ({', '.join(names)})")
        accepted = layer_registry.accepted_kwargs(layer)
        if key not in accepted:
            raise ConfigError(f"--option {item!r}: {layer} takes {', '.join(sorted(accepted))}")
        options.setdefault(layer, {})[key] = parse_value(text, f"--option {item}")
    return options


@app.command("speed")
def speed_command(
    layers: str = typer.Option(DEFAULT_LAYERS, "--layers", help="Comma-separated layer names."),
    seq_lens: str = typer.Option("256,1024,4096", "--seq-lens", help="Sequence lengths T."),
    batch_size: int = typer.Option(8, "--batch-size", min=1),
    d_model: int = typer.Option(256, "--d-model", min=1),
    positions: str = typer.Option("1,4096", "--positions", help="Decode-step positions."),
    modes: str = typer.Option(
        ",".join(DEFAULT_MODES),
        "--modes",
        help="Any of " + ",".join(MODES) + " (train_step_compiled: torch.compile against eager, "
        "compiles for minutes, so not a default).",
    ),
    repeats: int = typer.Option(5, "--repeats", min=1, help="Timed repeats (median)."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    db: str = typer.Option(DEFAULT_DB, "--db", help="Results database for the rows."),
    no_store: bool = typer.Option(False, "--no-store", help="Do not store the rows."),
    as_json: bool = typer.Option(False, "--json", help="One JSON row per line."),
    option: list[str] = typer.Option(
        [],
        "--option",
        help="A layer's constructor option, LAYER.KEY=VALUE (repeatable), e.g. neural_memory.chunk_size=64.",
    ),
) -> None:
    """Measure tokens/s (fwd, fwd+bwd), decode latency, state bytes and MFU per layer."""
    names = [n.strip() for n in layers.split(",") if n.strip()]
    for name in names:
        layer_registry.get(name)
    chosen_modes = [m.strip() for m in modes.split(",") if m.strip()]
    bad = sorted(set(chosen_modes) - set(MODES))
    if bad:
        raise ConfigError(f"--modes: unknown mode(s) {bad}; allowed: {', '.join(MODES)}")
    if device not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be cpu or cuda, got {device!r}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA device is available")
    settings = SpeedSettings(
        layers=names,
        seq_lens=_int_list(seq_lens, "--seq-lens"),
        batch_size=batch_size,
        d_model=d_model,
        decode_positions=_int_list(positions, "--positions"),
        modes=chosen_modes,
        repeats=repeats,
        device=device,
        layer_options=_layer_options(option, names),
    )
    console = Console(stderr=True)  # progress on stderr, so --json's stdout stays rows only
    rows = run_speed(settings, progress=lambda msg: console.print(f"measuring {msg}", soft_wrap=True))
    if not no_store:
        ResultsStore(db).add_speed_rows(rows)
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    _print_table(rows)


def _print_table(rows: list[dict]) -> None:
    table = Table(title=f"memzoo speed — {rows[0]['machine'] if rows else ''}")
    for column in (
        "layer",
        "mode",
        "T / pos",
        "tokens/s",
        "vs reference",
        "state bytes",
        "MFU",
        "latency ms",
    ):
        table.add_column(column, justify="right" if column != "layer" else "left")
    for r in rows:
        ratio = r.get("ratio_vs_reference")
        ref = r["extra"].get("reference", "")
        table.add_row(
            r["layer"],
            r["mode"],
            str(r["seq_len"]),
            f"{r['tokens_per_s']:,.0f}",
            f"{ratio:.2f}x {ref}" if ratio is not None else "",
            f"{r['state_bytes']:,}" if r.get("state_bytes") is not None else "",
            f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "",
            f"{r['extra']['latency_ms']:.2f}" if "latency_ms" in r["extra"] else "",
        )
    Console(width=150).print(table)

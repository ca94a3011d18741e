"""``memzoo hf-export``: a trained language model's checkpoint as a Hugging Face model folder."""

from __future__ import annotations

from pathlib import Path

import typer

from memzoo import integrations
from memzoo.cli.app import app
from memzoo.errors import MemzooError


@app.command("hf-export")
def hf_export_command(
    checkpoint: Path = typer.Argument(
        ..., help="A run's checkpoint folder (model.safetensors + config.json)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="The Hugging Face folder to write (new, empty or a previous export)."
    ),
) -> None:
    """Write a language-model run as a Hugging Face folder that AutoModelForCausalLM loads after `import memzoo`."""
    try:
        save_hf = integrations.save_hf  # imports the transformers extra on first use
    except ImportError as err:
        raise MemzooError(f"hf-export needs transformers: pip install 'memzoo[hf]' ({err})") from None
    from transformers.utils.logging import disable_progress_bar

    disable_progress_bar()  # a command's output is its result line, not loading bars
    written = save_hf(checkpoint, out)
    typer.echo(
        f"wrote {written} (load it with transformers.AutoModelForCausalLM.from_pretrained after import memzoo)"
    )

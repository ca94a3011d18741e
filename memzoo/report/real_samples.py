"""``text_lm``'s generated samples in the report: for one task setting, the prompt every model
continued and each layer combination's greedy continuation (``sample_prompt``/``sample_text``,
stored by ``memzoo.tasks._text_lm_sample``), from the lowest-seed run at the cell's picked
learning rate. A run that could not generate shows its ``sample_reason``.

Text is escaped and shown with its line breaks (``white-space: pre-wrap``), so what a model
writes can never become markup.
"""

from __future__ import annotations

from memzoo.report.data import caption, esc, html_table, seed_order
from memzoo.report.real_cells import RealCell, metrics_of

_PRE = '<code style="white-space: pre-wrap">{}</code>'


def _first_seed(cell: RealCell) -> dict:
    run = min(cell.runs, key=seed_order)
    return metrics_of(run)


def samples_table(cells: list[RealCell]) -> str | None:
    """The samples of one ``text_lm`` setting (its cells, best first): a caption with the
    prompt, then a row per layer combination; None when no run stored a sample or a reason."""
    rows, prompts = [], []
    for cell in cells:
        metrics = _first_seed(cell)
        if isinstance(metrics.get("sample_text"), str):
            prompts.append(metrics.get("sample_prompt"))
            rows.append([cell.label, _PRE.format(esc(metrics["sample_text"]))])
        elif isinstance(metrics.get("sample_reason"), str):
            rows.append([cell.label, esc(metrics["sample_reason"])])
    if not rows:
        return None
    prompt = prompts[0] if prompts and len(set(prompts)) == 1 else None
    text = (
        "Each model's greedy continuation (the most likely byte each time) of the same prompt "
        "from a test document, from its lowest-seed run at the picked learning rate."
    )
    shown = _PRE.format(esc(prompt)) if prompt is not None else esc("(the runs were given different prompts)")
    return (
        caption(text)
        + f'<p class="caption">Prompt: {shown}</p>'
        + html_table(["model", "continuation"], rows, raw_columns=(1,))
    )

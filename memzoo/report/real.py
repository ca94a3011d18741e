"""The report's "Real sequences" section: the memories on real text, real series and real
music (the ``real`` suite's tasks: ``text_lm``, ``needle_text``, ``series_classify``,
``chorales``), next to model-free baselines, and whether the synthetic recall ranking holds.

For each task setting: a table of the layer combinations (test metric, mean ± std over seeds at
the learning rate picked on validation; state bytes a sequence holds; the baselines the runs
stored) and one sentence saying which memory wins, by how much over the runner-up, and how it
compares with the strongest baseline. Metrics, baselines and the picking rule:
:mod:`memzoo.report.real_cells`. Then ``text_lm``'s long-context curves and ``needle_text``'s
length x depth heatmaps (:mod:`memzoo.report.real_figures`), ``text_lm``'s generated samples
(:mod:`memzoo.report.real_samples`), and the Spearman rank correlation
of each real ranking with the MQAR recall ranking (:mod:`memzoo.report.real_rank`).

The section is left out (None) when the store holds no finished real-task run with its metric.
"""

from __future__ import annotations

from memzoo.report.data import ReportData, caption, esc, html_table
from memzoo.report.real_cells import REAL_METRICS, RealCell, real_cells
from memzoo.report.real_figures import context_figure, needle_heatmaps
from memzoo.report.real_rank import MIN_LAYERS, RECALL_SUITES, Agreement, agreement, recall_scores
from memzoo.report.real_samples import samples_table


def _direction(cell: RealCell) -> str:
    return "higher is better" if cell.spec.higher_is_better else "lower is better"


def setting_table(cells: list[RealCell]) -> str:
    """The table of one task setting: a row per layer combination, best first."""
    names = list(dict.fromkeys(name for c in cells for name in c.baselines))
    spec = cells[0].spec
    header = [
        "layers",
        f"{spec.key} ({_direction(cells[0])})",
        "state bytes",
        "params",
        *names,
        "lr picked on",
    ]
    rows = []
    for cell in cells:
        params = max((r.params for r in cell.runs if isinstance(r.params, int)), default=None)
        rows.append(
            [
                cell.label,
                cell.summary(),
                cell.state_bytes,
                params,
                *[cell.baselines.get(name) for name in names],
                cell.picked_on,
            ]
        )
    return html_table(header, rows)


def verdict(setting: str, cells: list[RealCell]) -> str:
    """One sentence: the best layer combination, its margin over the runner-up, and how it
    compares with the strongest baseline its runs stored.

    >>> from memzoo.report.real_cells import REAL_METRICS
    >>> spec = REAL_METRICS["chorales"]
    >>> a = RealCell("chorales", "lstm", spec, [], 3e-3, [8.0, 8.2], baselines={"key frequencies": 11.0})
    >>> b = RealCell("chorales", "attention", spec, [], 3e-3, [9.0], baselines={"key frequencies": 11.0})
    >>> print(verdict("chorales", [a, b]))
    chorales: lstm wins (nll_per_step 8.100 ± 0.141, n=2), 0.900 better than the runner-up attention (9.000); it beats the strongest baseline, key frequencies (11.000), by 2.900.
    """
    spec = cells[0].spec
    best = cells[0]
    text = f"{setting}: {best.label} wins ({spec.key} {best.mean:.3f}"
    text += f" ± {best.std:.3f}, n={len(best.values)})" if len(best.values) > 1 else ", n=1)"
    if len(cells) > 1:
        runner = cells[1]
        text += f", {abs(best.mean - runner.mean):.3f} better than the runner-up {runner.label} ({runner.mean:.3f})"
    baselines = best.baselines
    if not baselines:
        return text + "; no baseline stored."
    name = max(baselines, key=lambda n: baselines[n] if spec.higher_is_better else -baselines[n])
    gap = abs(best.mean - baselines[name])
    if spec.better(best.mean, baselines[name]):
        return text + f"; it beats the strongest baseline, {name} ({baselines[name]:.3f}), by {gap:.3f}."
    return text + f"; it falls short of the strongest baseline, {name} ({baselines[name]:.3f}), by {gap:.3f}."


def _rank_table(agreements: list[Agreement], recall: dict[str, tuple[float, int]]) -> str:
    rows = []
    for a in agreements:
        rho = "n/a" if a.rho is None else f"{a.rho:.3f}"
        p_value = "n/a" if a.p_value is None else f"{a.p_value:.3g}"
        rows.append([a.setting, a.metric, a.n, rho, p_value, ", ".join(a.layers) or "–"])
    ranking = ", ".join(f"{label} {score:.3f} ({n} cells)" for label, (score, n) in recall.items())
    text = (
        "Spearman rank correlation between the recall ranking (each layer's mean test accuracy "
        f"over its MQAR cells in the {' and '.join(RECALL_SUITES)} suites) and each real task's "
        "ranking (its metric signed so that higher is better), over the layers present in both "
        f"(n); 'n/a' with fewer than {MIN_LAYERS} shared layers or a ranking of ties. rho near 1: "
        "the synthetic verdict holds on real data; near -1: it is reversed. p: two-sided, "
        "scipy.stats.spearmanr (with n this small, only a large |rho| means much). Recall "
        f"scores: {ranking or 'none stored'}."
    )
    return caption(text) + html_table(
        ["real task", "metric", "n", "rho", "p", "layers compared (best first on the real task)"], rows
    )


def real_sequences(data: ReportData) -> str | None:
    """The section's HTML (see the module); None without real-task runs."""
    by_setting = real_cells(data)
    if not by_setting:
        return None
    order = {task: i for i, task in enumerate(REAL_METRICS)}
    settings = sorted(by_setting, key=lambda s: (order[by_setting[s][0].task], s))
    parts = [
        caption(
            "Each real task's held-out metric per layer combination (mean ± std over seeds at the "
            "learning rate picked on validation), the bytes of state a sequence holds at the task's "
            "length (the run's state_bytes), and the "
            "model-free baselines fitted on the same training data and scored on the same test data."
        ),
        '<ul class="caption verdicts">'
        + "".join(f"<li>{esc(verdict(s, by_setting[s]))}</li>" for s in settings)
        + "</ul>",
    ]
    for setting in settings:
        cells = by_setting[setting]
        parts.append(f"<h3>{esc(setting)}</h3>" + caption(f"{cells[0].spec.label}, {_direction(cells[0])}."))
        parts.append(setting_table(cells))
    labels = data.labels()
    text_lm = {s: by_setting[s] for s in settings if by_setting[s][0].task == "text_lm"}
    curve = context_figure(text_lm, labels) if text_lm else None
    if curve is not None:
        figure, missing = curve
        parts.append("<h3>text_lm: bits per byte against context</h3>" + figure)
        if missing:
            parts.append(caption("Missing points: " + " | ".join(missing)))
    for setting in text_lm:
        samples = samples_table(text_lm[setting])
        if samples is not None:
            parts.append(f"<h3>{esc(setting)}: generated text</h3>" + samples)
    needles = [s for s in settings if by_setting[s][0].task == "needle_text"]
    for index, setting in enumerate(needles):
        figures = needle_heatmaps(index, by_setting[setting])
        if figures:
            parts.append(f"<h3>{esc(setting)}: exact match by length and depth</h3>" + "".join(figures))
    recall = recall_scores(data)
    agreements = [agreement(s, by_setting[s], recall) for s in settings]
    parts.append("<h3>Does the recall ranking hold on real data?</h3>" + _rank_table(agreements, recall))
    return "\n".join(parts)

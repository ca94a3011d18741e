"""Bytes that cross a segment boundary (``boundary_state_size``): the budget long-term memories
are compared at. What a layer leaves out must carry nothing: wiping it at a boundary leaves
every later output unchanged, and wiping what it counts does not."""

from __future__ import annotations

import pytest
import torch

from memzoo import layers, tasks
from memzoo.layers.base import state_nbytes_per_sequence
from memzoo.models import SegmentRunner, SequenceModel
from memzoo.train import fit

D = 32


def _outputs_after(layer, first, then, wipe):
    """Outputs on ``then`` after reading ``first``, the state's ``wipe`` fields zeroed between."""
    with torch.no_grad():
        _, state = layer(first)
        state = state._replace(**{name: torch.zeros_like(getattr(state, name)) for name in wipe})
        return layer(then, state)[0]


CASES = [  # layer, options, the segment (or chunk) it collects, fields empty at its boundary
    ("memory_tokens", {"segment_len": 8, "num_memory": 4}, 8, ("seg_k", "seg_v")),
    ("neural_memory", {"chunk_size": 8}, 8, ("pending_k", "pending_v", "pending_z")),
]


@pytest.mark.parametrize("name, options, segment, empty", CASES)
def test_what_is_left_out_at_a_boundary_carries_nothing(name, options, segment, empty):
    torch.manual_seed(0)
    layer = layers.build(name, D, **options).eval()
    first, then = torch.randn(2, 2 * segment, D), torch.randn(2, 5, D)
    kept = _outputs_after(layer, first, then, ())
    assert torch.equal(_outputs_after(layer, first, then, empty), kept)
    _, state = layer(first)
    left_out = state_nbytes_per_sequence([getattr(state, f) for f in empty])  # bytes per sequence
    assert layer.boundary_state_size(segment) == layer.state_size(segment) - left_out
    # the check can fail: what is counted does carry information
    counted = "memory" if name == "memory_tokens" else "w1"
    assert not torch.allclose(_outputs_after(layer, first, then, (counted,)), kept)


def test_off_boundary_reads_and_other_layers_count_their_whole_state():
    mt = layers.build("memory_tokens", D, segment_len=8, num_memory=4)
    assert mt.boundary_state_size(12) == mt.state_size(12)  # a boundary inside its segment
    for name in ("sliding_window", "knn", "persistent", "deltanet"):
        layer = layers.build(name, D)
        assert layer.boundary_state_size(64) == layer.state_size(64)


SEGMENTED_TASK = {
    "name": "cross_segment_recall",
    "vocab_size": 16,
    "num_kv_pairs": 2,
    "distance": 8,
    "segment_len": 16,
}


def _fit_segmented(model: dict, **task):
    """One short epoch of ``model`` on a recall task read in 16-token segments."""
    train = {"num_train": 32, "num_validation": 16, "num_test": 16, "epochs": 1, "batch_size": 16}
    config = {"task": {**SEGMENTED_TASK, **task}, "model": model, "train": {**train, "checkpoint": False}}
    return fit(config, progress=False)


def test_a_model_sums_its_layers_and_a_segmented_run_stores_it(tmp_path):
    model = SequenceModel(
        layers=["sliding_window", "memory_tokens"],
        d_model=D,
        vocab_size=16,
        layer_options={"memory_tokens": {"segment_len": 8}},
    )
    expected = sum(b.layer.boundary_state_size(8) for b in model.blocks)
    assert model.boundary_state_size(8) == expected < model.state_size(8)
    result = _fit_segmented(
        {
            "layers": ["sliding_window", "memory_tokens"],
            "d_model": 16,
            "layer_options": {"memory_tokens": {"segment_len": 16, "num_memory": 4}},
        }
    )
    assert result.metrics["state_bytes_at_boundary"] == result.model.boundary_state_size(16)
    assert result.metrics["state_bytes_at_boundary"] < result.record.state_bytes


@pytest.mark.parametrize("layer", ["knn", "neural_memory", "memory_tokens"])
def test_a_reset_ablation_counts_only_what_its_short_term_layers_carry(layer):
    """The ablation's long-term layers start afresh at every segment, so only the window's
    bytes cross; checked against behaviour: its segmented outputs do not depend on anything the
    long-term layer held before the boundary, while the full model's do."""
    options = {
        "sliding_window": {"window": 4},
        "memory_tokens": {"segment_len": 8},
        "neural_memory": {"chunk_size": 8},
    }
    options = {name: options.get(name, {}) for name in ("sliding_window", layer)}
    kwargs = {"layers": ["sliding_window", layer], "d_model": D, "vocab_size": 16, "layer_options": options}
    torch.manual_seed(0)
    full = SequenceModel(**kwargs).eval()
    ablation = SequenceModel(**kwargs, reset_long_term_memory=True).eval()
    ablation.load_state_dict(full.state_dict())
    window_bytes = full.blocks[0].layer.boundary_state_size(8)
    assert ablation.boundary_state_size(8) == window_bytes < full.boundary_state_size(8)
    x = torch.randint(0, 16, (2, 16))
    other = x.clone()
    other[:, :4] = (x[:, :4] + 1) % 16  # differs only before the window of the second segment
    with torch.no_grad():
        for model, carries in ((ablation, False), (full, True)):
            runner = SegmentRunner(model, 8)
            second = runner(x)[0][:, 8:], runner(other)[0][:, 8:]
            assert torch.allclose(*second) is not carries


def test_a_growing_cache_carries_more_at_a_later_boundary_and_a_run_stores_it_per_distance():
    """Attention keeps every key: across the last boundary of a 600-token sequence read in
    64-token segments it carries 576 tokens, not the first boundary's 64. Fixed-size memories
    carry the same at every boundary. A segmented run stores the bytes per test distance."""
    attention, window = layers.build("attention", D), layers.build("sliding_window", D, window=8)
    assert (
        attention.boundary_state_size(64, 600)
        == attention.state_size(576)
        > attention.boundary_state_size(64)
    )
    assert window.boundary_state_size(64, 600) == window.boundary_state_size(64) == window.state_size(8)
    result = _fit_segmented(
        {"layers": ["sliding_window", "attention"], "d_model": 16}, test_distances=[16, 64]
    )
    by_distance = result.metrics["state_bytes_at_boundary_by_distance"]
    assert by_distance["64"] > by_distance["16"] >= result.metrics["state_bytes_at_boundary"]
    far = tasks.build(**SEGMENTED_TASK, test_distances=[16, 64]).evaluation_sweep()["distance"][64]
    assert by_distance["64"] == result.model.boundary_state_size(16, far.seq_len)

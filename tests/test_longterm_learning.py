"""Long-term memory layers trained for real, each tested on what it is for, where training
did not go, and beside a broken variant of itself that the same check must catch.

- ``neural_memory`` and ``knn`` (and ``memory_tokens``, in test_memory_tokens_learning.py)
  carry key-value pairs across segments: trained on cross-segment recall at distances up to
  64 (sequences of 80 tokens), they must recall at 128 and 256 (memory tokens: 96 and 128),
  far beyond their 4-token window. A memory that works only up to the trained length (its
  long-term layers restarted after 80 tokens) matches them there and fails beyond; the
  reset ablation is at chance everywhere.
- ``persistent`` holds what is fixed across inputs, not one input's pairs: facts of a fixed
  map (``memorization``), which it must hold in its slots, against ``num_slots=0``.

Recall scores hidden answers; 16 values give chance 1/16, and 4 pairs per example give 1/4 to
a memory that knows the example's values but not which key each belongs to: the thresholds
lie well above that.
"""

from __future__ import annotations

import json

import pytest
import torch

from memzoo.layers.persistent import PersistentMemoryAttention
from memzoo.models import SegmentRunner, SequenceModel
from memzoo.models.targets import IGNORE_INDEX
from memzoo.tasks.cross_segment import CrossSegmentRecall
from memzoo.train import build_config, fit
from memzoo.train.evaluation import evaluate
from memzoo.train.recipes.single_task import build_model

WINDOW = 4
SEGMENT = 16
TRAINED = 64  # the longest distance training shows: 80-token sequences, 5 segments
BEYOND = (128, 256)  # 2x and 4x that
CHANCE = 1 / 16  # values are 16 tokens
KEY_AGNOSTIC = 1 / 4  # the values of the example, not which key each goes with
# A first epoch at distance 0 (pairs and queries inside one segment and one local window):
# the read that a memory's content must then serve is learned where it needs no memory.
READ_FIRST = 'train.curriculum={"param": "max_distance", "values": [0], "epochs_per_stage": 1}'
RECALL = [
    "task.name=cross_segment_recall",
    "task.vocab_size=32",
    "task.num_kv_pairs=4",
    "task.distractors=separate",
    "task.distractor_vocab_size=16",
    f"task.segment_len={SEGMENT}",
    f"task.max_distance={TRAINED}",
    f"task.test_distances={list(BEYOND)}",
    "model.d_model=64",
    "train.num_train=4096",
    "train.num_validation=256",
    "train.num_test=256",
    "train.batch_size=32",
    "train.lr=3e-3",
    "train.tbptt_segments=5",  # full backpropagation through the 5 segments
    "train.target_accuracy=0.95",
    "train.checkpoint=false",
]


def train_recall(layer: str, options: dict, *overrides: str):
    cfg = build_config(
        overrides=[
            *RECALL,
            f"model.layers=[sliding_window,{layer}]",
            "model.layer_options=" + json.dumps({"sliding_window": {"window": WINDOW}, layer: options}),
            *overrides,
        ]
    )
    result = fit(cfg, progress=False)
    assert result.status == "completed"
    return cfg, result.model.eval(), result.metrics


def recall_at(model, cfg, distance: int, runner=SegmentRunner, num: int = 256) -> float:
    """Recall accuracy of ``model`` on ``num`` test examples of ``cfg``'s task at exactly
    ``distance`` (drawn as ``accuracy_by_distance`` draws them), read segment by segment by
    a ``runner``."""
    params = cfg.task.build().model_dump(exclude={"seq_len", "test_distances", "max_distance"})
    _, test = CrossSegmentRecall(**{**params, "distance": distance}).split(0, num, seed=cfg.train.seed)
    logits, targets = runner(model, SEGMENT).scored_outputs(test.inputs, test.targets)
    scored = targets != IGNORE_INDEX
    return (logits.argmax(-1) == targets)[scored].float().mean().item()


def forgetting_after(segments: int) -> type[SegmentRunner]:
    """A runner that restarts the long-term layers every ``segments`` segments: a memory
    whose reach ends at the trained length (``segments * SEGMENT`` tokens)."""

    class ForgetsBeyondTraining(SegmentRunner):
        def scored_outputs(self, inputs, targets):
            self.index = 0
            return super().scored_outputs(inputs, targets)

        def _carried(self, state):
            index, self.index = self.index, self.index + 1
            if state is None or index % segments:
                return state
            return [None if b.layer.kind == "long" else s for b, s in zip(self.model.blocks, state)]

    return ForgetsBeyondTraining


def assert_recalls_beyond_training(accuracy: dict[int, float], threshold: float, beyond=BEYOND) -> None:
    """Recall at every distance of ``beyond`` (never trained on) above ``threshold``, which
    must itself lie well above the key-agnostic level."""
    assert threshold > 2 * KEY_AGNOSTIC
    for distance in beyond:
        assert accuracy[distance] > threshold, (distance, accuracy)


def check_recall_beyond_training(model, cfg, metrics, threshold: float, beyond=BEYOND) -> dict:
    """The recall check on ``model`` and on its broken variants, which must fail it: the
    same model restarted after the trained length (80 tokens), and its reset ablation (at
    chance). Returns every accuracy measured (by variant, then distance)."""
    distances = (TRAINED, *beyond)
    measured = {"memory": {d: recall_at(model, cfg, d) for d in distances}}
    for d in beyond:  # the same protocol as the run's accuracy_by_distance
        assert measured["memory"][d] == pytest.approx(metrics["accuracy_by_distance"][str(d)], abs=1e-6)
    assert_recalls_beyond_training(measured["memory"], threshold, beyond)
    horizon = forgetting_after(cfg.task.build().seq_len // SEGMENT)
    measured["forgets after 80 tokens"] = {d: recall_at(model, cfg, d, horizon) for d in distances}
    with pytest.raises(AssertionError):
        assert_recalls_beyond_training(measured["forgets after 80 tokens"], threshold, beyond)
    # At the trained distance the two are the same memory: a test there cannot tell them apart.
    assert measured["forgets after 80 tokens"][TRAINED] == measured["memory"][TRAINED]
    model.reset_long_term_memory = True  # the ablation: nothing crosses a segment boundary
    measured["reset ablation"] = {d: recall_at(model, cfg, d) for d in distances}
    model.reset_long_term_memory = False
    assert max(measured["reset ablation"].values()) < 2 * CHANCE, measured
    return measured


@pytest.mark.slow
def test_neural_memory_recalls_at_distances_beyond_training():
    """A neural memory (O(1) state: MLP weights written every 8 tokens) on a 4-token window,
    trained on distances 16-64, recalls the pairs at 128 and 256: what it writes stays
    readable through 2-4x the distractors training showed, bound to its keys.

    Measured (256 steps, stopped at 0.95 validation accuracy): seed 0 0.97 at 64 and 128,
    0.94 at 256; seed 1 0.96 at all three (threshold 0.75); forgetting after 80 tokens: the
    same at 64, 0.05-0.07 at 128 and 256; reset ablation: 0.06-0.07."""
    cfg, model, metrics = train_recall(
        "neural_memory", {"chunk_size": 8}, "task.distance=16", "train.epochs=5"
    )
    check_recall_beyond_training(model, cfg, metrics, threshold=0.75)


def with_capacity(model: SequenceModel, capacity: int) -> SequenceModel:
    """``model`` (window + knn) with the same weights and a store of ``capacity`` entries."""
    layer = model.blocks[1].layer
    options = {"local_window": layer.local_window, "capacity": capacity, "top_k": layer.top_k}
    small = SequenceModel(
        layers=["sliding_window", "knn"],
        d_model=model.embed.embedding_dim,
        vocab_size=model.embed.num_embeddings,
        num_outputs=model.head.out_features,
        layer_options={"sliding_window": {"window": WINDOW}, "knn": options},
    )
    small.load_state_dict(model.state_dict())
    return small.eval()


@pytest.mark.slow
def test_knn_recalls_from_its_store_beyond_its_window():
    """A kNN memory (a 16-token local window; the tokens that leave it go to a store of 512,
    searched by top-4) on a 4-token window recalls pairs 128 and 256 tokens back, from its
    store: trained on distances up to 64, whose first epoch (distance 0: pairs and queries
    within its local window) trains the key projections the store reuses (its writes are
    detached: the store gives them no gradient; without that epoch it stalled at 0.28, the
    level of knowing the values but not their keys).

    Measured: seed 0 (256 steps) 1.00 at 64, 128 and 256; seed 1 (128 steps: 0.95 on
    validation after the distance-0 epoch) 0.95, 0.92, 0.87 (threshold 0.75); forgetting
    after 80 tokens: the same at 64, 0.06-0.08 beyond; reset ablation: 0.06-0.08; the same
    weights with a store of 64 entries, which FIFO eviction empties of the pairs: 0.06-0.08
    at 128 and 256."""
    cfg, model, metrics = train_recall(
        "knn",
        {"local_window": 16, "capacity": 512, "top_k": 4},
        "task.distance=0",
        "train.epochs=4",
        READ_FIRST,
    )
    check_recall_beyond_training(model, cfg, metrics, threshold=0.75)
    evicting = {d: recall_at(with_capacity(model, 64), cfg, d) for d in BEYOND}
    with pytest.raises(AssertionError):
        assert_recalls_beyond_training(evicting, 0.75)
    assert max(evicting.values()) < 2 * CHANCE, evicting


# --- persistent memory: facts in the weights --------------------------------------------

FACTS = [
    "task.name=memorization",
    "task.num_facts=512",
    "task.num_values=16",
    "task.seq_len=16",
    "model.d_model=32",
    "model.layers=[persistent]",
    "model.mlp_ratio=0",
    "train.num_train=1024",
    "train.num_validation=256",
    "train.num_test=512",
    "train.epochs=20",
    "train.batch_size=32",
    "train.lr=1e-2",
    "train.checkpoint=false",
]


def memorize(num_slots: int):
    """Train a one-layer persistent-memory model (window 4) on 512 fixed facts, its token
    embedding frozen at its random initialisation; returns the model and its test data."""
    options = {"persistent": {"window": 4, "num_slots": num_slots}}
    cfg = build_config(overrides=[*FACTS, "model.layer_options=" + json.dumps(options)])
    task = cfg.task.build()
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, task)
    model.embed.weight.requires_grad_(False)
    frozen = model.embed.weight.clone()
    result = fit(cfg, progress=False, model=model)
    assert result.status == "completed" and torch.equal(result.model.embed.weight, frozen)
    assert result.metrics["facts_seen_fraction"] == 1.0  # every fact was shown: the ceiling is 1
    _, test = task.split(0, cfg.train.num_test, seed=cfg.train.seed)
    return result.model, test, result.metrics["accuracy"]


def without_slots(model: SequenceModel) -> SequenceModel:
    """``model`` with its slots taken out (the rest of its trained weights kept)."""
    layer = model.blocks[0].layer
    bare = SequenceModel(
        layers=["persistent"],
        d_model=model.embed.embedding_dim,
        vocab_size=model.embed.num_embeddings,
        num_outputs=model.head.out_features,
        layer_options={"persistent": {"window": layer.window, "num_slots": 0}},
        mlp_ratio=0,
    )
    slots = ["blocks.0.layer.slot_k", "blocks.0.layer.slot_v"]  # [H, 0, Dh] in the bare model
    kept = {name: value for name, value in model.state_dict().items() if name not in slots}
    missing, unexpected = bare.load_state_dict(kept, strict=False)
    assert sorted(missing) == slots and not unexpected
    return bare.eval()


def facts_recalled(model, test) -> float:
    return evaluate(model, test, "lm", model.head.out_features, torch.device("cpu"))["accuracy"]


def assert_facts_live_in_the_slots(with_slots: float, ablation: float, slots_removed: float) -> None:
    """The slots hold facts: the model recalls them (> 0.9), clearly more than the same model
    trained without slots (by > 0.2), and loses them when its slots are taken out."""
    assert with_slots > 0.9, with_slots
    assert with_slots > ablation + 0.2, (with_slots, ablation)
    assert slots_removed < with_slots - 0.4, (with_slots, slots_removed)


def _slots_never_read(self, batch, dtype):
    return None  # a broken persistent memory: its slots are parameters nobody attends to


@pytest.mark.slow
def test_persistent_slots_hold_fixed_facts_beyond_its_ablation(monkeypatch):
    """Facts of a fixed map (512 keys -> 16 values, the same in every example: knowledge
    across inputs, not in one input) live in the slots. Every weight can hold such facts,
    and a key's own embedding is a table of them: trained freely, the model without slots
    recalled them as well (measured 0.995 against 0.999). So the embedding is frozen at its
    random initialisation and the block has no MLP (a per-position store that persistent
    vectors replace, Sukhbaatar et al. 2019): what the layer adds must then be stored in it.

    Measured (seed 0; seed 1 within 0.02): 64 slots 0.99; the same model with its slots
    taken out 0.22; ``num_slots=0`` (the ablation) 0.64. A broken memory whose slots are
    never read trains to the ablation's level (0.64, unchanged when its slots are taken out)
    and fails the check."""
    model, test, with_slots = memorize(64)
    assert facts_recalled(model.eval(), test) == pytest.approx(with_slots)
    _, _, ablation = memorize(0)
    assert_facts_live_in_the_slots(with_slots, ablation, facts_recalled(without_slots(model), test))

    monkeypatch.setattr(PersistentMemoryAttention, "prefix_kv", _slots_never_read)
    broken, _, broken_accuracy = memorize(64)
    monkeypatch.undo()
    with pytest.raises(AssertionError):
        assert_facts_live_in_the_slots(broken_accuracy, ablation, facts_recalled(without_slots(broken), test))

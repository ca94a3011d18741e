"""Model-level speed rows: one whole training step of a language model built from a layer.

Mode ``train_step``: a 2-block :class:`~memzoo.models.SequenceModel` of the layer (embedding,
blocks with their MLPs, final norm, head) on ``[B, T]`` token ids, every position scored;
one step is zero_grad, forward, loss, backward, gradient clipping and the AdamW update — what
the trainer does per batch (``memzoo.train.optim``, ``memzoo.train.objectives``). Rows give
training tokens/s and model-FLOP utilisation against the matmul peak measured in the same
run; FLOPs are counted by ``torch.utils.flop_counter`` plus the analytic FLOPs of torch's
recurrent modules, which the counter does not see into.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from memzoo.models import SequenceModel
from memzoo.speed.timing import count_flops, paired_median_seconds
from memzoo.train.objectives import training_loss
from memzoo.train.optim import apply_update, make_optimizer, warmup_cosine

VOCAB = 256  # token ids of the timed language model
DEPTH = 2


def _recurrent_flops(model: SequenceModel, batch_size: int, seq_len: int) -> int:
    total = 0
    for block in model.blocks:
        rnn = getattr(block.layer, "rnn", None)
        if isinstance(rnn, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)):
            gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1)
            forward = 2 * batch_size * seq_len * gates * 2 * rnn.hidden_size**2 * rnn.num_layers
            total += 3 * forward  # backward costs twice the forward
    return total


def train_step_rows(name: str, settings, device: torch.device, peak: float) -> Iterator[dict]:
    """``train_step`` rows of layer ``name`` at every sequence length of ``settings``."""
    torch.manual_seed(0)
    options = settings.layer_options.get(name, {})
    model = SequenceModel(
        layers=[name] * DEPTH,
        d_model=settings.d_model,
        vocab_size=VOCAB,
        layer_options={name: options} if options else None,
    ).to(device)
    optimizer = make_optimizer(model, 1e-3, 0.1)
    scheduler = warmup_cosine(optimizer, 10**6, 0.0)
    model.train()
    for seq_len in settings.seq_lens:
        generator = torch.Generator().manual_seed(seq_len)
        inputs = torch.randint(VOCAB, (settings.batch_size, seq_len), generator=generator).to(device)
        targets = torch.randint(VOCAB, (settings.batch_size, seq_len), generator=generator).to(device)

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            training_loss(model, inputs, targets).backward()
            apply_update(model, optimizer, scheduler, 1.0)

        (seconds,) = paired_median_seconds([step], settings.repeats, settings.warmup, device)
        flops = count_flops(step) + _recurrent_flops(model, settings.batch_size, seq_len)
        yield {
            "layer": name,
            "seq_len": seq_len,
            "mode": "train_step",
            "tokens_per_s": settings.batch_size * seq_len / seconds,
            "state_bytes": model.state_size(seq_len),
            "mfu": flops / seconds / peak if flops else None,
            "extra": {"seconds": seconds, "flops": flops, "depth": DEPTH, "vocab": VOCAB, "reference": None},
        }

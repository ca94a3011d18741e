"""Model-level speed rows: one whole training step of a language model built from a layer.

Mode ``train_step``: a 2-block :class:`~memzoo.models.SequenceModel` of the layer (embedding,
blocks with their MLPs, final norm, head) on ``[B, T]`` token ids, every position scored;
one step is zero_grad, forward, loss, backward, gradient clipping and the AdamW update — what
the trainer does per batch (the trainer's own step function, ``memzoo.train.segmented``, and
its update, ``memzoo.train.optim``). Rows give training tokens/s and model-FLOP utilisation
against the matmul peak measured in the same run; FLOPs are counted by
``torch.utils.flop_counter`` plus the analytic FLOPs of torch's recurrent modules, which the
counter does not see into.

Mode ``train_step_compiled``: the same step with the forward and loss run through
``torch.compile`` exactly as ``train.compile=true`` does, timed in alternation with the eager
step on the same model and batch; ``ratio_vs_reference`` = compiled ÷ eager tokens/s. The
warm-up (at least 3 calls) includes the compilation. A layer torch.compile fails on gets no
row; the error goes to the progress output.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import nullcontext

import torch

from memzoo.errors import first_line
from memzoo.models import SequenceModel
from memzoo.speed.timing import count_flops, paired_median_seconds
from memzoo.train.optim import apply_update, make_optimizer, warmup_cosine
from memzoo.train.segmented import make_train_step

VOCAB = 256  # token ids of the timed language model
DEPTH = 2
COMPILE_WARMUP = 3  # warm-up calls of the compiled step at least (the first one compiles)


def _recurrent_flops(model: SequenceModel, batch_size: int, seq_len: int) -> int:
    total = 0
    for block in model.blocks:
        rnn = getattr(block.layer, "rnn", None)
        if isinstance(rnn, (torch.nn.RNN, torch.nn.LSTM, torch.nn.GRU)):
            gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1)
            forward = 2 * batch_size * seq_len * gates * 2 * rnn.hidden_size**2 * rnn.num_layers
            total += 3 * forward  # backward costs twice the forward
    return total


class _Trainer:
    """The timed language model of layer ``name`` with its AdamW and schedule."""

    def __init__(self, name: str, settings, device: torch.device):
        torch.manual_seed(0)
        options = settings.layer_options.get(name, {})
        self.model = SequenceModel(
            layers=[name] * DEPTH,
            d_model=settings.d_model,
            vocab_size=VOCAB,
            layer_options={name: options} if options else None,
        ).to(device)
        self.optimizer = make_optimizer(self.model, 1e-3, 0.1)
        self.scheduler = warmup_cosine(self.optimizer, 10**6, 0.0)
        self.model.train()
        self.settings, self.device = settings, device

    def batch(self, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Random ``inputs, targets [B, T]`` token ids (every position scored)."""
        generator = torch.Generator().manual_seed(seq_len)
        shape = (self.settings.batch_size, seq_len)
        inputs = torch.randint(VOCAB, shape, generator=generator).to(self.device)
        targets = torch.randint(VOCAB, shape, generator=generator).to(self.device)
        return inputs, targets

    def step_fn(self, compile: bool, inputs: torch.Tensor, targets: torch.Tensor) -> Callable[[], None]:
        """One whole training step on the batch, through the trainer's step function."""
        forward_backward = make_train_step(self.model, None, 1, nullcontext, compile=compile)

        def step() -> None:
            self.optimizer.zero_grad(set_to_none=True)
            forward_backward(inputs, targets)
            apply_update(self.model, self.optimizer, self.scheduler, 1.0)

        return step

    def flops(self, step: Callable[[], None], seq_len: int) -> int:
        return count_flops(step) + _recurrent_flops(self.model, self.settings.batch_size, seq_len)

    def row(self, name: str, seq_len: int, mode: str, seconds: float, flops: int, peak: float) -> dict:
        return {
            "layer": name,
            "seq_len": seq_len,
            "mode": mode,
            "tokens_per_s": self.settings.batch_size * seq_len / seconds,
            "state_bytes": self.model.state_size(seq_len),
            "mfu": flops / seconds / peak if flops else None,
            "extra": {"seconds": seconds, "flops": flops, "depth": DEPTH, "vocab": VOCAB, "reference": None},
        }


def train_step_rows(name: str, settings, device: torch.device, peak: float) -> Iterator[dict]:
    """``train_step`` rows of layer ``name`` at every sequence length of ``settings``."""
    trainer = _Trainer(name, settings, device)
    for seq_len in settings.seq_lens:
        step = trainer.step_fn(False, *trainer.batch(seq_len))
        (seconds,) = paired_median_seconds([step], settings.repeats, settings.warmup, device)
        yield trainer.row(name, seq_len, "train_step", seconds, trainer.flops(step, seq_len), peak)


def compiled_train_step_rows(
    name: str, settings, device: torch.device, peak: float, report: Callable[[str], None] | None = None
) -> Iterator[dict]:
    """``train_step_compiled`` rows of layer ``name``: compiled against eager, alternated.

    Each length starts from cleared compile caches (``torch.compiler.reset``), as a training
    run of one length does, so recompilations across layers and lengths never hit the
    recompile limit (past it torch would silently run eager). If compiling fails, the error
    goes to ``report`` (a warning without one) and that length gets no row."""
    trainer = _Trainer(name, settings, device)
    for seq_len in settings.seq_lens:
        inputs, targets = trainer.batch(seq_len)
        eager = trainer.step_fn(False, inputs, targets)
        torch.compiler.reset()
        compiled = trainer.step_fn(True, inputs, targets)
        warmup = max(settings.warmup, COMPILE_WARMUP)
        try:
            compiled_s, eager_s = paired_median_seconds([compiled, eager], settings.repeats, warmup, device)
        except Exception as err:  # no C++ compiler, an op dynamo cannot trace: skip, go on
            first = first_line(err)
            message = f"{name} T={seq_len} train_step_compiled: torch.compile failed, no row ({first})"
            if report is None:
                warnings.warn(message, stacklevel=2)
            else:
                report(message)
            continue
        row = trainer.row(
            name, seq_len, "train_step_compiled", compiled_s, trainer.flops(eager, seq_len), peak
        )
        row["ratio_vs_reference"] = eager_s / compiled_s
        row["extra"].update(
            reference="eager", reference_tokens_per_s=row["tokens_per_s"] * compiled_s / eager_s
        )
        yield row

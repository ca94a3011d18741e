"""Decoding a :class:`~memzoo.models.seq2seq.Seq2Seq`: greedy and beam search, batched.

Shape legend: B batch, K beam size, V target vocabulary, S source positions.

Both encode the source once, then feed the decoder one token at a time, carrying its state
(the memory layers' recurrent form). A sequence ends at ``<eos>``; outputs are the ids before
it. ``max_len`` (default ``2 S + 10``) caps the generated tokens, ``<eos>`` included.

Beam search keeps the K best partial hypotheses per example by summed log-probability. A
finished hypothesis (one that produced ``<eos>``) stays in the beam with its score frozen: it
can only be extended by ``<pad>`` at no cost. At the end each example's K hypotheses are
ranked by length-normalised score ``sum log p / length ** length_penalty`` (length counts
tokens up to and including ``<eos>``; ``length_penalty=0`` ranks by the raw sum). With K = 1
beam search chooses the arg-max token at every step, exactly as greedy decoding does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from memzoo.errors import ConfigError
from memzoo.layers.base import map_state


def _max_len(src: torch.Tensor, max_len: int | None) -> int:
    if max_len is None:
        return 2 * src.shape[1] + 10
    if max_len < 1:
        raise ConfigError(f"max_len must be >= 1, got {max_len}")
    return max_len


def _strip(ids: list[int], eos_id: int, pad_id: int) -> list[int]:
    """Ids before the first ``<eos>``, without padding."""
    if eos_id in ids:
        ids = ids[: ids.index(eos_id)]
    return [i for i in ids if i != pad_id]


@torch.no_grad()
def greedy_decode(model, src: torch.Tensor, *, max_len: int | None = None) -> list[list[int]]:
    """The arg-max target ids for each row of ``src [B, S]`` (a list per row, no specials)."""
    model.eval()
    steps = _max_len(src, max_len)
    memory = model.encode(src)
    batch = src.shape[0]
    tokens = torch.full((batch,), model.bos_id, dtype=torch.long, device=src.device)
    done = torch.zeros(batch, dtype=torch.bool, device=src.device)
    state, out = None, []
    for _ in range(steps):
        logits, state = model.decode(tokens[:, None], memory, state)  # [B, 1, V]
        # the same arg-max as beam search's (log-softmax in fp32), so beam 1 == greedy
        nxt = F.log_softmax(logits[:, -1].float(), dim=-1).argmax(-1)  # [B]
        nxt = nxt.masked_fill(done, model.pad_id)
        out.append(nxt)
        done |= nxt == model.eos_id
        tokens = nxt
        if bool(done.all()):
            break
    rows = torch.stack(out, dim=1).tolist()  # [B, steps]
    return [_strip(r, model.eos_id, model.pad_id) for r in rows]


@torch.no_grad()
def beam_search(
    model,
    src: torch.Tensor,
    *,
    beam_size: int = 4,
    max_len: int | None = None,
    length_penalty: float = 1.0,
) -> list[list[int]]:
    """The best hypothesis by length-normalised log-probability for each row of ``src``."""
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ConfigError(f"beam_size must be an integer >= 1, got {beam_size!r}")
    if length_penalty < 0:
        raise ConfigError(f"length_penalty must be >= 0, got {length_penalty}")
    model.eval()
    steps = _max_len(src, max_len)
    batch, k, device = src.shape[0], beam_size, src.device
    memory = model.encode(src).repeat(k)  # batch B * K, example-major
    scores = torch.zeros(batch, k, dtype=torch.float32, device=device)  # [B, K]
    scores[:, 1:] = float("-inf")  # all beams start as the same empty hypothesis: keep one
    finished = torch.zeros(batch, k, dtype=torch.bool, device=device)
    lengths = torch.zeros(batch, k, dtype=torch.long, device=device)
    history = torch.zeros(batch, k, 0, dtype=torch.long, device=device)  # [B, K, t]
    tokens = torch.full((batch * k,), model.bos_id, dtype=torch.long, device=device)
    offsets = torch.arange(batch, device=device)[:, None] * k  # [B, 1]
    state = None
    for _ in range(steps):
        logits, state = model.decode(tokens[:, None], memory, state)  # [B*K, 1, V]
        logp = F.log_softmax(logits[:, -1].float(), dim=-1)
        vocab = logp.shape[-1]
        logp = logp.view(batch, k, vocab)
        pad_only = torch.full((vocab,), float("-inf"), device=device)
        pad_only[model.pad_id] = 0.0  # a finished hypothesis continues with <pad> at no cost
        logp = torch.where(finished[..., None], pad_only, logp)
        top, flat = (scores[..., None] + logp).view(batch, k * vocab).topk(k, dim=1)  # [B, K]
        origin, token = flat // vocab, flat % vocab  # which beam each new one extends, and how
        was_finished = finished.gather(1, origin)
        lengths = lengths.gather(1, origin) + (~was_finished).long()
        finished = was_finished | (token == model.eos_id)
        history = torch.cat(
            (history.gather(1, origin[..., None].expand(-1, -1, history.shape[2])), token[..., None]), dim=2
        )
        scores = top
        rows = (origin + offsets).view(-1)  # [B*K] rows of the old state each beam continues
        state = map_state(lambda s: s.index_select(0, rows), state)
        tokens = token.view(-1)
        if bool(finished.all()):
            break
    normalised = scores / lengths.clamp_min(1).float() ** length_penalty
    best = normalised.argmax(dim=1)  # [B]
    chosen = history[torch.arange(batch, device=device), best].tolist()
    return [_strip(r, model.eos_id, model.pad_id) for r in chosen]

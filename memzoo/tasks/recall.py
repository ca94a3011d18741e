"""Recall through noise and through multi-token keys: ``noisy_recall`` and ``fuzzy_recall``, the
two harder in-context recall variants of the MAD benchmark (Poli et al. 2024), laid out here
like ``mqar`` (all pairs written first, then queried).

Shape legend: N examples, T ``seq_len``, K ``num_kv_pairs``, V ``vocab_size``, M items, W
tokens per item.

An example is a stream of T + 1 tokens made of *items*: K write pairs ``key value`` (each key
once, so the model can store them), then query pairs drawn uniformly from those K (the key
followed by its stored value again), and for ``noisy_recall`` single noise tokens between
items. ``inputs`` is the stream without its last token; ``targets[t]`` is stream token
``t + 1`` wherever that is a value token of a query pair (next-token convention): the last key
token of a query predicts the first value token, each value token the next one. Writes and
noise are never scored. Keys come from ``[1, V//2)`` (distinct within an example), values from
``[V//2, V)`` (uniform, may repeat); token 0 is never emitted.
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from memzoo.tasks._sampling import sample_distinct
from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData, constant_slice
from memzoo.tasks.registry import register_task


def _locate(lengths, total):
    """Where each of the first ``total`` stream positions falls when items are concatenated.

    ``lengths``: ``[N, M]`` tokens per item. Returns ``item`` and ``slot`` (``[N, total]``):
    position s of row n is token ``slot[n, s]`` of item ``item[n, s]``. Rows must fill ``total``.
    """
    ends = lengths.cumsum(dim=1)  # [N, M] one past each item's last position
    if bool((ends[:, -1] < total).any()):
        raise AssertionError("items do not fill the stream")  # a bug in the caller's item count
    positions = torch.arange(total).expand(lengths.shape[0], total).contiguous()  # [N, total]
    item = torch.searchsorted(ends, positions, right=True)  # first item ending after s
    slot = positions - (ends - lengths).gather(1, item)
    return item, slot


def _gather_tokens(table, row_index, slot):
    """``table [N, R, W]`` looked up at ``[N, S]`` rows and slots -> ``[N, S]`` tokens."""
    width = table.shape[2]
    return table.flatten(1).gather(1, row_index * width + slot)


def _split_stream(stream, is_scored):
    """``[N, T+1]`` stream -> inputs ``[N, T]`` and next-token targets scored where marked."""
    inputs = stream[:, :-1].contiguous()
    targets = torch.where(is_scored[:, 1:], stream[:, 1:], IGNORE_INDEX)
    return inputs, targets


class _RecallBase(Task):
    vocab_size: int = Field(64, ge=4, description="tokens: keys [1, V/2), values [V/2, V)")
    seq_len: int = Field(128, ge=4, description="tokens per example (T)")
    num_kv_pairs: int = Field(8, ge=1, description="distinct key-value pairs per example (K)")

    def _check_key_vocab(self, needed: int, why: str) -> None:
        num_keys = self.vocab_size // 2 - 1
        if num_keys < needed:
            raise ValueError(
                f"vocab_size={self.vocab_size} gives {num_keys} key tokens but num_kv_pairs="
                f"{self.num_kv_pairs} needs {needed} ({why})"
            )


@register_task("noisy_recall")
class NoisyRecall(_RecallBase):
    """Key-value recall with noise tokens (a separate vocabulary) scattered between the pairs.

    Noise tokens are ``[V, V + noise_vocab_size)``: the model embeds them but never predicts
    them, so ``output_vocab_size = V`` < ``input_vocab_size``. Exactly ``round(frac_noise *
    (T + 1))`` stream tokens are noise (one more if needed to fill the stream with whole pairs),
    at uniformly random item boundaries: never between a key and its value.

    Worked example (keys [1, 4), values [4, 8), noise [8, 10); noise 9, the pair 3->6, noise
    8 8, the pair 1->7, then the queries 3, 1, 3, each scored with its value):

    >>> task = NoisyRecall(vocab_size=8, seq_len=12, num_kv_pairs=2, noise_vocab_size=2)
    >>> data = task.generate(num_examples=1, seed=2)
    >>> data.inputs[0].tolist()
    [9, 3, 6, 8, 8, 1, 7, 3, 6, 1, 7, 3]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, -100, 6, -100, 7, -100, 6]
    """

    description = "key-value recall with noise tokens from a separate vocabulary between pairs"

    noise_vocab_size: int = Field(16, ge=1, description="noise tokens [V, V + noise_vocab_size)")
    frac_noise: float = Field(0.2, ge=0, lt=1, description="fraction of positions that are noise")

    @model_validator(mode="after")
    def _check_sizes(self):
        self._check_key_vocab(self.num_kv_pairs, "distinct keys")
        if self._num_pairs() < 2 * self.num_kv_pairs:
            raise ValueError(
                f"seq_len={self.seq_len} with frac_noise={self.frac_noise} leaves room for "
                f"{self._num_pairs()} pairs; num_kv_pairs={self.num_kv_pairs} needs "
                f"{2 * self.num_kv_pairs} (each key written once and queried at least once)"
            )
        return self

    def _num_noise(self) -> int:
        total = self.seq_len + 1
        noise = round(self.frac_noise * total)
        return noise + (total - noise) % 2  # whole pairs fill the rest

    def _num_pairs(self) -> int:
        return (self.seq_len + 1 - self._num_noise()) // 2

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size + self.noise_vocab_size

    @property
    def output_vocab_size(self) -> int:
        return self.vocab_size

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, k, v = num_examples, self.num_kv_pairs, self.vocab_size
        num_noise, num_pairs = self._num_noise(), self._num_pairs()
        num_items = num_pairs + num_noise
        keys = sample_distinct(n, k, 1, v // 2, generator)  # [N, K]
        values = torch.randint(v // 2, v, (n, k), generator=generator)  # [N, K]
        queried = torch.randint(0, k, (n, num_pairs - k), generator=generator)
        pair_ids = torch.cat([torch.arange(k).expand(n, k), queried], dim=1)  # [N, P]

        # Which items are noise: num_noise of the num_items slots, uniformly.
        noise_slots = torch.rand(n, num_items, generator=generator).argsort(dim=1)[:, :num_noise]
        is_noise = torch.zeros(n, num_items, dtype=torch.bool).scatter_(1, noise_slots, True)
        pair_of_item = ((~is_noise).long().cumsum(dim=1) - 1).clamp_min(0)  # [N, M]
        item_pair = pair_ids.gather(1, pair_of_item)  # [N, M] which dictionary pair
        noise = torch.randint(v, v + self.noise_vocab_size, (n, num_items), generator=generator)

        tokens = torch.stack(
            [
                torch.where(is_noise, noise, keys.gather(1, item_pair)),
                torch.where(is_noise, 0, values.gather(1, item_pair)),
            ],
            dim=2,
        )  # [N, M, 2]: a noise item uses slot 0 only
        item, slot = _locate(torch.where(is_noise, 1, 2), self.seq_len + 1)  # [N, T+1] each
        stream = _gather_tokens(tokens, item, slot)  # [N, T+1]
        is_query = ~is_noise & (pair_of_item >= k)  # [N, M]
        is_scored = is_query.gather(1, item) & (slot == 1)  # the value of a query pair
        inputs, targets = _split_stream(stream, is_scored)
        slices = {
            "num_kv_pairs": constant_slice(n, k),
            "num_noise_tokens": (inputs >= v).sum(dim=1),
        }
        return TaskData(inputs, targets, slices)


def _draw_keys(shape, max_len, low, high, generator):
    """Random keys ``[*shape, max_len]`` (zero padded) and their lengths ``[*shape]``."""
    tokens = torch.randint(low, high, (*shape, max_len), generator=generator)
    lengths = torch.randint(1, max_len + 1, shape, generator=generator)
    return torch.where(torch.arange(max_len) < lengths[..., None], tokens, 0), lengths


def _clashes(keys, lengths):
    """``[R, K]``: key j is a prefix of, equal to, or extended by some earlier key i < j."""
    shared = torch.minimum(lengths[:, :, None], lengths[:, None, :])  # [R, K, K]
    same = keys[:, :, None, :] == keys[:, None, :, :]  # [R, K(i), K(j), L]
    agree = same | (torch.arange(keys.shape[-1]) >= shared[..., None])
    earlier = torch.ones(keys.shape[1], keys.shape[1], dtype=torch.bool).triu(diagonal=1)
    return (agree.all(dim=3) & earlier).any(dim=1)


def _prefix_free_keys(n, k, max_len, low, high, generator):
    """``[N, K, max_len]`` keys (zero padded) and ``[N, K]`` lengths in ``[1, max_len]``, tokens
    from ``[low, high)``, such that within a row no key is a prefix of (or equal to) another.

    Prefix-freeness is what makes a query answerable at its last key token: the key read so far
    can be no other key's beginning. All keys are drawn at once; every key that clashes with an
    earlier one is redrawn until none does (so short keys end up slightly rarer than long ones).
    Key 0 never clashes and a key whose earlier keys are settled settles once it draws a first
    token none of them uses: with ``high - low >= 2K`` that has probability >= 1/2 per round.
    """
    keys, lengths = _draw_keys((n, k), max_len, low, high, generator)
    rows = torch.arange(n)
    while rows.numel():
        clash = _clashes(keys[rows], lengths[rows])  # [R, K]
        bad = clash.any(dim=1)
        rows, clash = rows[bad], clash[bad]
        if not rows.numel():
            break
        new_keys, new_lengths = _draw_keys(clash.shape, max_len, low, high, generator)
        keys[rows] = torch.where(clash[..., None], new_keys, keys[rows])
        lengths[rows] = torch.where(clash, new_lengths, lengths[rows])
    return keys, lengths


@register_task("fuzzy_recall")
class FuzzyRecall(_RecallBase):
    """Key-value recall where keys and values are runs of 1 to ``max_key_len`` /
    ``max_value_len`` tokens (lengths uniform per pair; keys prefix-free within an example).

    A query's last key token predicts the value's first token, each value token the next one, so
    a query with an L-token value scores L positions. The stream is cut at T + 1 tokens, which
    may cut the last query short. Slice label ``num_queries``: queries with at least one scored
    token.

    Worked example (keys from [1, 6), values from [6, 12); the pairs (1 5) -> (11) and
    (5 4) -> (11 6) are written, then queried three times, the last query cut short):

    >>> task = FuzzyRecall(vocab_size=12, seq_len=16, num_kv_pairs=2, max_key_len=2,
    ...                    max_value_len=2)
    >>> data = task.generate(num_examples=1, seed=1)
    >>> data.inputs[0].tolist()
    [1, 5, 11, 5, 4, 11, 6, 1, 5, 11, 5, 4, 11, 6, 5, 4]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, -100, -100, 11, -100, -100, 11, 6, -100, -100, 11]
    >>> data.slices["num_queries"].tolist()
    [3]
    """

    description = "key-value recall with keys and values of 1-3 tokens each"

    max_key_len: int = Field(3, ge=1, le=8, description="tokens per key: 1 .. max_key_len")
    max_value_len: int = Field(3, ge=1, le=8, description="tokens per value: 1 .. max_value_len")

    @model_validator(mode="after")
    def _check_sizes(self):
        self._check_key_vocab(2 * self.num_kv_pairs, "2*num_kv_pairs, for prefix-free keys")
        longest_pair = self.max_key_len + self.max_value_len
        if self.seq_len < 2 * self.num_kv_pairs * longest_pair:
            raise ValueError(
                f"num_kv_pairs={self.num_kv_pairs} with max_key_len={self.max_key_len} and "
                f"max_value_len={self.max_value_len} needs seq_len >= 2*num_kv_pairs*"
                f"(max_key_len+max_value_len) = {2 * self.num_kv_pairs * longest_pair}, "
                f"got seq_len={self.seq_len}"
            )
        return self

    @property
    def input_vocab_size(self) -> int:
        return self.vocab_size

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, k, v, t = num_examples, self.num_kv_pairs, self.vocab_size, self.seq_len
        a, b = self.max_key_len, self.max_value_len
        keys, key_len = _prefix_free_keys(n, k, a, 1, v // 2, generator)  # [N, K, a], [N, K]
        values = torch.randint(v // 2, v, (n, k, b), generator=generator)  # [N, K, b]
        value_len = torch.randint(1, b + 1, (n, k), generator=generator)  # [N, K]

        # Every pair is >= 2 tokens, so (T + 2) // 2 items always fill the T + 1 stream tokens.
        num_items = (t + 2) // 2
        queried = torch.randint(0, k, (n, num_items - k), generator=generator)
        item_pair = torch.cat([torch.arange(k).expand(n, k), queried], dim=1)  # [N, M]
        # Each pair as one run of W = a + b slots: key tokens, then value tokens, then padding.
        w = torch.arange(a + b)
        klen = key_len[:, :, None]  # [N, K, 1]
        source = torch.where(w < klen, w, a + w - klen).clamp_max(a + b - 1)
        table = torch.cat([keys, values], dim=2).gather(2, source)  # [N, K, W]

        item, slot = _locate((key_len + value_len).gather(1, item_pair), t + 1)  # [N, T+1]
        pair = item_pair.gather(1, item)  # [N, T+1] dictionary pair at each position
        stream = _gather_tokens(table, pair, slot)  # [N, T+1]
        is_scored = (item >= k) & (slot >= key_len.gather(1, pair))  # value tokens of queries
        inputs, targets = _split_stream(stream, is_scored)
        first_value = (targets != IGNORE_INDEX) & (inputs < v // 2)  # last key token of a query
        slices = {"num_kv_pairs": constant_slice(n, k), "num_queries": first_value.sum(dim=1)}
        return TaskData(inputs, targets, slices)

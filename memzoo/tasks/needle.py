"""Single needle in a haystack: one key-value pair hidden at a random depth of a long
haystack, asked for at the end (RULER's S-NIAH, Hsieh et al. 2024; the needle-in-a-haystack
probes of Titans, Behrouz et al. 2024).

Shape legend: N examples, T ``seq_len``, L ``value_len``, P needle position (depth).

Token ids (disjoint ranges, so the needle is distinguishable from the haystack by content,
as RULER's needle sentence is from its noise or essay haystack)::

    0                   padding (never emitted; reserved)
    1                   the query marker ("what is the value of ...?")
    [2, 2+NK)           keys                      NK = num_keys
    [2+NK, 2+NK+NV)     value tokens ("digits")   NV = num_values
    [2+NK+NV, ...+H)    haystack tokens           H  = haystack_vocab_size

Layout of one example (next-token convention)::

    positions  0 .. P-1     P   P+1 .. P+L    ...          T-L-2   T-L-1   T-L .. T-1
    inputs     haystack     k   v1 ... vL     haystack     1       k       v1 ... vL
    targets    -100         -100 ...                       -100    v1      v2 ... vL -100

- the haystack is uniform over its H tokens; the key is uniform over the keys, the L value
  tokens uniform over the value tokens (repeats allowed, like the digits of RULER's 7-digit
  magic number);
- the needle ``k v1 .. vL`` starts at P, uniform over every position where it fits before
  the query; the query repeats the key after the marker and the value is scored token by
  token (teacher forcing), so L positions are scored;
- ``slices["depth"]``: the needle's depth in tenths of the haystack (0 = the first tenth,
  9 = the last; RULER's depth axis); ``slices["distance"]``: tokens from the needle's last
  value token to the query's key (what a memory must bridge).

``segment_len`` (optional) is the segment length a model reads the example in (the trainer
uses it when ``train.segment_len`` is unset). ``test_lengths``: haystack lengths the trained
model is also evaluated at (the trainer records ``accuracy_by_seq_len``).
"""

from __future__ import annotations

import torch
from pydantic import Field, model_validator

from memzoo.tasks.base import IGNORE_INDEX, Task, TaskData
from memzoo.tasks.registry import register_task

QUERY = 1


@register_task("needle")
class Needle(Task):
    """One key-value needle at a random depth; the key asked for at the end.

    Worked example (keys [2, 6), value tokens [6, 10), haystack [10, 14); the needle 5 -> 7 9
    sits at positions 3-5; the query is the marker 1 and the key 5 at positions 9-10, and
    the value 7 9 is scored at 10 and 11):

    >>> task = Needle(seq_len=13, num_keys=4, num_values=4, value_len=2, haystack_vocab_size=4)
    >>> task.input_vocab_size, task.output_vocab_size
    (14, 10)
    >>> data = task.generate(num_examples=1, seed=2)
    >>> data.inputs[0].tolist()
    [10, 13, 11, 5, 7, 9, 12, 13, 10, 1, 5, 7, 9]
    >>> data.targets[0].tolist()
    [-100, -100, -100, -100, -100, -100, -100, -100, -100, -100, 7, 9, -100]
    >>> data.slices["depth"].tolist(), data.slices["distance"].tolist()
    ([4], [5])
    """

    description = (
        "single needle in a haystack: one key-value pair at a random depth, asked for at the end (S-NIAH)"
    )

    seq_len: int = Field(256, ge=5, description="tokens per example (T)")
    num_keys: int = Field(16, ge=1, description="NK, key tokens")
    num_values: int = Field(16, ge=2, description="NV, value tokens")
    value_len: int = Field(1, ge=1, description="L, tokens of the value (scored one by one)")
    haystack_vocab_size: int = Field(32, ge=1, description="H, haystack tokens")
    segment_len: int | None = Field(None, ge=1, description="segment length the model reads it in")
    test_lengths: tuple[int, ...] = Field(
        (), description="also evaluate the trained model at these seq_len (accuracy_by_seq_len)"
    )

    @model_validator(mode="after")
    def _check_sizes(self):
        shortest = self.min_seq_len(self.value_len)
        if self.seq_len < shortest:
            raise ValueError(
                f"seq_len={self.seq_len} is too short for value_len={self.value_len}: the needle "
                f"and the query take {shortest} tokens"
            )
        short = [t for t in self.test_lengths if t < shortest]
        if short:
            raise ValueError(f"test_lengths {short} are shorter than the needle and query ({shortest})")
        return self

    @staticmethod
    def min_seq_len(value_len: int) -> int:
        return 2 * value_len + 3  # needle (1 + L) + query (2 + L)

    @property
    def input_vocab_size(self) -> int:
        return 2 + self.num_keys + self.num_values + self.haystack_vocab_size

    @property
    def output_vocab_size(self) -> int:
        return 2 + self.num_keys + self.num_values  # only value tokens are scored

    def preferred_segment_len(self) -> int | None:
        """``segment_len`` when set: the example is read segment by segment."""
        return self.segment_len

    def evaluation_sweep(self) -> dict[str, dict[int, Needle]]:
        """The task at each of ``test_lengths`` (``accuracy_by_seq_len``); empty if none."""
        if not self.test_lengths:
            return {}
        params = self.model_dump(exclude={"seq_len", "test_lengths"})
        return {"seq_len": {t: type(self)(**{**params, "seq_len": t}) for t in self.test_lengths}}

    def _generate(self, num_examples: int, generator: torch.Generator) -> TaskData:
        n, t, vl = num_examples, self.seq_len, self.value_len
        key_lo = 2
        value_lo = key_lo + self.num_keys
        hay_lo = value_lo + self.num_values
        inputs = torch.randint(hay_lo, hay_lo + self.haystack_vocab_size, (n, t), generator=generator)
        keys = torch.randint(key_lo, value_lo, (n, 1), generator=generator)  # [N, 1]
        values = torch.randint(value_lo, hay_lo, (n, vl), generator=generator)  # [N, L]
        query_start = t - vl - 2  # the marker's position
        slots = query_start - vl  # needle starts P in [0, slots): it ends before the query
        depth = torch.randint(0, slots, (n,), generator=generator)  # [N] P
        needle = torch.cat((keys, values), dim=1)  # [N, 1 + L]
        cols = depth[:, None] + torch.arange(vl + 1)  # [N, 1 + L]
        inputs.scatter_(1, cols, needle)
        inputs[:, query_start] = QUERY
        inputs[:, query_start + 1 :] = needle
        targets = torch.full_like(inputs, IGNORE_INDEX)  # [N, T]
        targets[:, query_start + 1 : t - 1] = values  # at the key and v1..v(L-1): the next value
        slices = {
            "depth": depth * 10 // slots,
            "distance": (query_start + 1) - (depth + vl),
        }
        return TaskData(inputs, targets, slices)

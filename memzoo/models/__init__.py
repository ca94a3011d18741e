"""Models built from memory layers."""

from memzoo.models.block import MemoryBlock
from memzoo.models.segment_runner import SegmentRunner
from memzoo.models.sequence_model import HEADS, SequenceModel

__all__ = ["HEADS", "MemoryBlock", "SegmentRunner", "SequenceModel"]

from memzoo.models.recurrent_memory import RecurrentMemoryModel  # noqa: E402
from memzoo.models.seq2seq import Seq2Seq  # noqa: E402

__all__ += ["RecurrentMemoryModel", "Seq2Seq"]

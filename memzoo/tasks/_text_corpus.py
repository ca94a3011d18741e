"""A generated, separable text-classification corpus: review-like sentences whose class shows
in the cue words they contain.

Each sentence has 6 to 12 words: 2 or 3 cue words of its own class, with probability 1/4 one
cue word of another class (a distractor, so no single word decides), and neutral filler words
in between, in random order. The own class always has more cues than any other, so a model
that counts cues per class classifies every sentence correctly; a bag of words does too, but
a model must remember cues seen anywhere in the sentence until its final position.

Everything is drawn from a ``torch.Generator``: the same seed gives the same sentences.
"""

from __future__ import annotations

import torch

CLASS_CUES: dict[str, tuple[str, ...]] = {
    "positive": ("great", "wonderful", "loved", "brilliant", "delightful", "superb", "charming", "moving"),
    "negative": ("awful", "boring", "hated", "dreadful", "dull", "clumsy", "tedious", "painful"),
    "funny": ("hilarious", "witty", "laughed", "goofy", "comic", "playful", "silly", "absurd"),
    "scary": ("terrifying", "creepy", "haunting", "eerie", "chilling", "screamed", "dark", "gruesome"),
}
FILLER = (
    "the",
    "movie",
    "film",
    "plot",
    "acting",
    "story",
    "was",
    "is",
    "and",
    "a",
    "very",
    "quite",
    "ending",
    "cast",
    "scenes",
    "this",
    "it",
    "really",
    "director",
    "music",
    "script",
    "i",
    "felt",
    "overall",
    "with",
    "of",
    "at",
    "times",
    "second",
    "half",
    "lead",
    "actor",
)
MAX_CLASSES = len(CLASS_CUES)
MIN_WORDS, MAX_WORDS = 6, 12
DISTRACTOR_PROBABILITY = 0.25


def class_names(num_classes: int) -> list[str]:
    """The first ``num_classes`` class names (class id ``i`` is ``class_names(k)[i]``)."""
    if not 2 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be in [2, {MAX_CLASSES}], got {num_classes}")
    return list(CLASS_CUES)[:num_classes]


def all_words(num_classes: int) -> list[str]:
    """Every word the corpus with ``num_classes`` classes can contain."""
    cues = [w for name in class_names(num_classes) for w in CLASS_CUES[name]]
    return cues + list(FILLER)


def generate_corpus(
    num_examples: int, num_classes: int, generator: torch.Generator
) -> tuple[list[str], torch.Tensor]:
    """``num_examples`` sentences and their class ids ``LongTensor [N]`` (balanced in law).

    >>> texts, labels = generate_corpus(2, 2, torch.Generator().manual_seed(0))
    >>> len(texts), labels.tolist()
    (2, [0, 1])
    """
    names = class_names(num_classes)
    n, width = num_examples, len(CLASS_CUES[names[0]])  # every class has `width` cue words
    labels = torch.randint(0, num_classes, (n,), generator=generator)
    lengths = torch.randint(MIN_WORDS, MAX_WORDS + 1, (n,), generator=generator)
    num_cues = torch.randint(2, 4, (n,), generator=generator)
    has_distractor = torch.rand(n, generator=generator) < DISTRACTOR_PROBABILITY
    # another class: shift the label by 1..C-1 (uniform over the other classes)
    other = (labels + torch.randint(1, num_classes, (n,), generator=generator)) % num_classes
    cue_picks = torch.randint(0, width, (n, 4), generator=generator)
    filler_picks = torch.randint(0, len(FILLER), (n, MAX_WORDS), generator=generator)
    order_keys = torch.rand(n, MAX_WORDS, generator=generator)
    texts = []
    for row in range(n):
        own = CLASS_CUES[names[labels[row]]]
        words = [own[i] for i in cue_picks[row, : num_cues[row]].tolist()]
        if has_distractor[row]:
            words.append(CLASS_CUES[names[other[row]]][int(cue_picks[row, 3])])
        length = int(lengths[row])
        words += [FILLER[i] for i in filler_picks[row, : length - len(words)].tolist()]
        order = order_keys[row, :length].argsort().tolist()
        texts.append(" ".join(words[i] for i in order))
    return texts, labels

"""A local lm-eval task folder built from generated text: no download, no network.

memzoo has no real-text language-modelling task yet, so the harness is shown on sentences of
a tiny template grammar (:func:`generate_text_corpus`, deterministic for a seed).
:func:`write_local_lm_eval_task` writes, into one folder, the documents as JSON lines and
three lm-eval task configs reading them with ``dataset_path: json`` (absolute
``data_files``, so the folder works from any working directory, offline):

=========================  =======================  ==================================================
task                       output type              what it scores
=========================  =======================  ==================================================
``memzoo_text_perplexity``  loglikelihood_rolling   each sentence's likelihood: word and byte
                                                    perplexity, bits per byte
``memzoo_text_choice``      multiple_choice         the last word of a sentence among 4 words, the
                                                    other 3 of the wrong kind (verbs, adjectives)
``memzoo_text_complete``    generate_until          the last word, generated greedily up to ``.``
=========================  =======================  ==================================================

Use it with ``lm_eval.tasks.TaskManager(include_path=folder)`` (Python) or ``--include_path
folder`` (the lm-eval command line).

>>> generate_text_corpus(2, seed=0)
['the fish is in the forest.', 'the horse is in the river.']
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml

from memzoo.errors import MemzooError
from memzoo.files import make_folder, refuse_links, write_file

ADJECTIVES = ("small", "old", "red", "happy", "quiet", "tall", "young", "green")
NOUNS = ("cat", "dog", "bird", "fox", "horse", "mouse", "fish", "child")
VERBS = ("sees", "likes", "follows", "finds", "helps", "chases", "meets", "hears")
PLACES = ("garden", "river", "house", "forest", "field", "market")
TASKS = ("memzoo_text_perplexity", "memzoo_text_choice", "memzoo_text_complete")
TRAIN_SEED, TEST_SEED = 0, 1  # the corpus to train on and the held-out documents


def _sentence(rng: random.Random) -> str:
    """One sentence of the grammar; it always ends with ``<noun>.`` or ``<place>.``."""
    a, n, v, n2 = rng.choice(ADJECTIVES), rng.choice(NOUNS), rng.choice(VERBS), rng.choice(NOUNS)
    form = rng.randrange(3)
    if form == 0:
        return f"the {a} {n} {v} the {n2}."
    if form == 1:
        return f"a {a} {n} {v} the {rng.choice(ADJECTIVES)} {n2} near the {rng.choice(PLACES)}."
    return f"the {n} is in the {rng.choice(PLACES)}."


def generate_text_corpus(num_sentences: int, seed: int = TRAIN_SEED) -> list[str]:
    """``num_sentences`` sentences of the template grammar, the same for the same ``seed``.

    Train a byte LM on ``"\\n".join(sentences)`` (a newline before each sentence is what the
    byte tokenizer reads a document after, see :mod:`memzoo.integrations.tokenizer`)."""
    if isinstance(num_sentences, bool) or not isinstance(num_sentences, int) or num_sentences < 1:
        raise MemzooError(f"num_sentences must be an integer >= 1, got {num_sentences!r}")
    rng = random.Random(seed)
    return [_sentence(rng) for _ in range(num_sentences)]


def _choice_doc(sentence: str, rng: random.Random) -> dict[str, Any]:
    """The sentence without its last word, the last word and 3 wrong kinds of word, shuffled."""
    context, last = sentence[:-1].rsplit(" ", 1)
    wrong = rng.sample(VERBS, 2) + rng.sample(ADJECTIVES, 1)
    choices = [last, *wrong]
    rng.shuffle(choices)
    return {
        "context": context,
        "choices": [c + "." for c in choices],
        "label": choices.index(last),
        "last": last,
    }


def _task_configs(files: dict[str, Path]) -> dict[str, dict[str, Any]]:
    def data(name: str) -> dict[str, Any]:
        kwargs = {"data_files": {"test": str(files[name].resolve())}}
        return {"dataset_path": "json", "dataset_kwargs": kwargs, "test_split": "test"}

    return {
        "memzoo_text_perplexity": {
            **data("documents"),
            "output_type": "loglikelihood_rolling",
            "doc_to_text": "",
            "doc_to_target": "{{text}}",
            "metric_list": [
                {
                    "metric": "word_perplexity",
                    "aggregation": "weighted_perplexity",
                    "higher_is_better": False,
                },
                {
                    "metric": "byte_perplexity",
                    "aggregation": "weighted_perplexity",
                    "higher_is_better": False,
                },
                {"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False},
            ],
        },
        "memzoo_text_choice": {
            **data("choices"),
            "output_type": "multiple_choice",
            "doc_to_text": "{{context}}",
            "doc_to_choice": "choices",
            "doc_to_target": "label",
            "metric_list": [
                {"metric": name, "aggregation": "mean", "higher_is_better": True}
                for name in ("acc", "acc_norm")
            ],
        },
        "memzoo_text_complete": {
            **data("choices"),
            "output_type": "generate_until",
            "doc_to_text": "{{context}}",
            "doc_to_target": "{{last}}",
            "generation_kwargs": {"until": ["."], "max_gen_toks": 16, "do_sample": False},
            "metric_list": [
                {
                    "metric": "exact_match",
                    "aggregation": "mean",
                    "higher_is_better": True,
                    "regexes_to_ignore": ["\\s", "\\."],  # " dog." and "dog" match
                }
            ],
        },
    }


def write_local_lm_eval_task(folder: str | Path, num_documents: int = 64, seed: int = TEST_SEED) -> list[str]:
    """Write the task folder (see the module docstring) of ``num_documents`` held-out sentences
    (``seed``; the default differs from the training corpus's); returns the task names."""
    folder = make_folder(folder, "lm-eval task folder")
    refuse_links(folder, "lm-eval task folder")
    sentences = generate_text_corpus(num_documents, seed)
    rng = random.Random(seed + 1_000)
    rows = {
        "documents": [{"text": s} for s in sentences],
        "choices": [_choice_doc(s, rng) for s in sentences],
    }
    files = {name: folder / f"{name}.jsonl" for name in rows}
    for name, docs in rows.items():
        write_file(files[name], "".join(json.dumps(doc) + "\n" for doc in docs))
    for task, config in _task_configs(files).items():
        body = {"task": task, **config, "metadata": {"version": 1.0}}
        write_file(folder / f"{task}.yaml", yaml.safe_dump(body, sort_keys=False))
    return list(TASKS)

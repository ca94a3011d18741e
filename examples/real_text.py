"""Byte-level language modelling of real text (``text_lm``): bits per byte against n-gram
baselines, and how much each memory gains from the text before a span.

    python examples/real_text.py                                  # LSTM on CPython's pydoc topics
    python examples/real_text.py --layers sliding_window deltanet --steps 600
    python examples/real_text.py --corpus files --folder notes/   # your .txt/.md files

Trains a small model (default: one LSTM block, d_model 64, 150 steps of 32 windows of 128
bytes; about a minute on one CPU core) through ``memzoo.fit``, then prints

- bits per byte (bpb) of the held-out documents' bytes against a byte unigram and an
  interpolated byte n-gram, both fitted on the training documents (lower is better);
- the long-context curve: the same test spans read with C bytes of their document before
  them. A memory that uses context goes down as C grows; full attention is scored only within
  its training window (its line stops, with the reason);
- what the model writes, greedily, after a prompt from a test document.

Documents are split 80/10/10 by a hash of their names: no document is in two splits.
"""

from __future__ import annotations

import argparse
import time

import torch

import memzoo


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="pydoc", choices=["pydoc", "python_source", "files"])
    parser.add_argument("--folder", help="folder of .txt/.md files (with --corpus files)")
    parser.add_argument("--layers", nargs="+", default=["lstm"], help="memory layer per block")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=128, help="bytes per training window")
    parser.add_argument("--steps", type=int, default=150, help="optimiser steps of 32 windows")
    parser.add_argument("--lr", type=float, default=1e-2, help="the real suite's text_lm rate")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a small model: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    task = {"name": "text_lm", "corpus": args.corpus, "seq_len": args.seq_len}
    if args.folder:
        task["folder"] = args.folder
    config = {
        "task": task,
        "model": {"layers": args.layers, "d_model": args.d_model},
        "train": {
            "max_steps": args.steps,
            "num_train": 32 * args.steps,
            "num_validation": 64,
            "num_test": 1_000,  # at most that many test tiles: the pydoc test documents hold ~550
            "batch_size": 32,
            "lr": args.lr,
            "target_accuracy": 1.0,  # no early stop: the whole budget
            "checkpoint": False,
            "seed": 0,
        },
    }
    start = time.perf_counter()
    m = memzoo.fit(config, progress=False).metrics
    seconds = time.perf_counter() - start

    print(
        f"text_lm ({args.corpus}), layers {args.layers}, d_model {args.d_model}, {m['steps']} steps "
        f"in {seconds:.0f} s; {m['test_documents']} test documents ({m['test_bytes']:,} bytes), "
        f"{m['scored']:,} test bytes scored"
    )
    print(f"  model:          {m['bpb']:.3f} bits per byte")
    print(f"  {m['ngram_order']}-gram (bytes): {m['ngram_bpb']:.3f}")
    print(f"  unigram:        {m['unigram_bpb']:.3f}")
    print(f"context curve ({m['context_spans']} spans from {m['context_documents']} test documents):")
    contexts = sorted(
        int(k.rsplit("_", 1)[1]) for k in m if k.startswith("context_bpb_") and k[12:].isdigit()
    )
    for c in contexts:
        value = m[f"context_bpb_{c}"]
        print(f"  C = {c:>5} bytes: " + ("not scored" if value is None else f"{value:.3f} bpb"))
    if m.get("context_bpb_reason"):
        print(f"  ({m['context_bpb_reason']})")
    if "sample_text" in m:
        print(f"greedy continuation of a test prompt:\n  {m['sample_prompt']!r}\n  -> {m['sample_text']!r}")
    return m


if __name__ == "__main__":
    main()

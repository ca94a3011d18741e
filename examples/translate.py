"""Translation with an encoder-decoder whose encoder outputs are the memory the decoder attends to.

    python examples/translate.py                                  # the built-in toy grammar
    python examples/translate.py --score additive --beam 4        # Bahdanau attention, beam search
    python examples/translate.py --path fra.txt --seq-len 48      # your Anki/Tatoeba TSV export

Trains a ``memzoo.models.Seq2Seq`` (LSTM encoder read both ways, LSTM decoder with
cross-attention), then prints held-out chrF/BLEU/exact match for greedy decoding and beam
search against two baselines: copying the source unchanged and (toy grammar) a word-by-word
lexicon gloss. Finally it reloads the checkpoint (weights + both tokenizers) and translates.
"""

from __future__ import annotations

import argparse
import time

import torch

from memzoo import fit
from memzoo.metrics.text import translation_scores
from memzoo.train.seq2seq_config import build_translation_config
from memzoo.train.seq2seq_loading import load_translator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="source<TAB>target file; default: the toy grammar")
    parser.add_argument("--source-column", type=int, default=0)
    parser.add_argument("--target-column", type=int, default=1)
    parser.add_argument(
        "--tokenizer", choices=["bpe", "char", "word"], help="default: word (grammar) / bpe (file)"
    )
    parser.add_argument("--seq-len", type=int, default=16, help="max tokens per sentence")
    parser.add_argument("--encoder", nargs="+", default=["lstm"], help="encoder memory layers")
    parser.add_argument("--decoder", nargs="+", default=["lstm"], help="decoder memory layers")
    parser.add_argument("--score", choices=["dot", "additive"], default="dot", help="cross-attention score")
    parser.add_argument("--beam", type=int, default=4, help="beam size for the second evaluation")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--out-dir", default="results/runs")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a model this small runs fastest on one thread

    task = {"seq_len": args.seq_len, "source_column": args.source_column, "target_column": args.target_column}
    if args.path:
        task["path"] = args.path
    if args.tokenizer:
        task["tokenizer"] = args.tokenizer
    config = build_translation_config(
        {
            "task": task,
            "model": {
                "encoder_layers": args.encoder,
                "decoder_layers": args.decoder,
                "d_model": 32,
                "score": args.score,
            },
            "train": {
                "epochs": args.epochs,
                "num_train": args.num_train,
                "num_test": 300,
                "target_chrf": 99.0,
                "out_dir": args.out_dir,
            },
        }
    )
    start = time.perf_counter()
    result = fit(config, progress=False)
    seconds = time.perf_counter() - start
    m = result.metrics
    print(
        f"translate ({args.path or 'toy grammar'}): encoder {args.encoder}, decoder {args.decoder}, "
        f"{args.score} attention, {result.record.params:,} params, {m['epochs']} epoch(s) in {seconds:.1f} s"
    )
    print(f"  greedy:       chrF {m['chrf']:5.1f}  BLEU {m['bleu']:5.1f}  exact match {m['exact_match']:.3f}")

    split = result.task.translation_split(args.num_train, 300, 300, seed=0)  # the same held-out pairs
    translator = load_translator(result.checkpoint_dir)
    beam = translation_scores(
        translator.translate(split.test.sources, beam_size=args.beam), split.test.references
    )
    print(
        f"  beam {args.beam}:       chrF {beam['chrf']:5.1f}  BLEU {beam['bleu']:5.1f}  "
        f"exact match {beam['exact_match']:.3f}"
    )
    print(f"  baseline, copy the source:  chrF {m['identity_chrf']:5.1f}")
    if "gloss_chrf" in m:
        print(f"  baseline, word-by-word gloss: chrF {m['gloss_chrf']:5.1f}")
    for example in m["examples"][:3]:
        print(f"    {example['source']}  ->  {example['output']}   (reference: {example['reference']})")
    if result.task.grammar is not None:  # sentences never seen in training, from the reloaded model
        sources, references = result.task.pairs(2, seed=2024)
        for source, output, reference in zip(sources, translator.translate(sources), references):
            print(f"    new: {source}  ->  {output}   ({'correct' if output == reference else reference})")
    print(f"checkpoint (model.safetensors, source/target_tokenizer.json): {result.checkpoint_dir}")


if __name__ == "__main__":
    main()

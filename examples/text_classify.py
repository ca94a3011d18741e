"""Text classification with the seed's attention -> LSTM classifier, on your file or a generated corpus.

    python examples/text_classify.py                                   # generated review corpus
    python examples/text_classify.py --path reviews.csv                # your CSV/TSV/JSONL file
    python examples/text_classify.py --path r.jsonl --text-column review --label-column stars

Trains ``model.layers=[attention_lstm]`` (any registered layer works: ``--layers lstm gru``),
then prints accuracy and macro precision/recall/F1 on the held-out rows against the
majority-class baseline, the confusion matrix, and the labels the reloaded checkpoint (weights
+ tokenizer.json + labels.json) gives to a few texts.
"""

from __future__ import annotations

import argparse
import time

import torch

import memzoo
from memzoo import tasks
from memzoo.metrics.confusion import confusion_matrix, format_confusion, majority_baseline, predict_classes
from memzoo.tasks.text_classify import load_artifacts, predict_labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", help="labelled text file (.csv/.tsv/.jsonl); default: generated corpus")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument(
        "--tokenizer", choices=["bpe", "char", "word"], help="default: word (corpus) / bpe (file)"
    )
    parser.add_argument("--seq-len", type=int, default=32, help="max tokens per text")
    parser.add_argument("--layers", nargs="+", default=["attention_lstm"], help="memory layer per block")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--num-train", type=int, default=2000, help="training examples per epoch")
    parser.add_argument("--out-dir", default="results/runs")
    args = parser.parse_args()
    torch.set_num_threads(1)  # a model this small runs fastest on one thread

    task_params = {"name": "text_classify", "seq_len": args.seq_len}
    if args.path:
        task_params.update(path=args.path, text_column=args.text_column, label_column=args.label_column)
    if args.tokenizer:
        task_params["tokenizer"] = args.tokenizer
    config = {
        "task": task_params,
        "model": {"layers": args.layers, "d_model": 32, "mlp_ratio": 2},
        "train": {
            "epochs": args.epochs,
            "batch_size": 32,
            "lr": 3e-3,
            "num_train": args.num_train,
            "num_test": 500,
            "target_accuracy": 0.995,
            "out_dir": args.out_dir,
        },
    }
    start = time.perf_counter()
    result = memzoo.fit(config, progress=False)
    seconds = time.perf_counter() - start

    # The same task (same file, split and tokenizer: all fixed by its parameters) for the report.
    task = tasks.build(**task_params)
    train_data, test_data = task.split(args.num_train, 500, seed=0)
    baseline = majority_baseline(train_data.targets, test_data.targets)
    m = result.metrics
    print(
        f"text_classify ({args.path or 'generated corpus'}), layers {args.layers}, tokenizer "
        f"{task.tokenizer_kind}, {len(test_data)} held-out texts, {m['epochs']} epoch(s) in {seconds:.1f} s"
    )
    print(
        f"  model:    accuracy {m['accuracy']:.3f}  precision {m['precision']:.3f}  recall {m['recall']:.3f}  "
        f"F1 {m['f1']:.3f}"
    )
    print(
        f"  baseline: accuracy {baseline['accuracy']:.3f}  F1 {baseline['f1']:.3f}  (always "
        f"'{task.class_names[baseline['class']]}', the majority class)"
    )
    matrix = confusion_matrix(
        predict_classes(result.model, test_data.inputs), test_data.targets, len(task.class_names)
    )
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_confusion(matrix, task.class_names))

    # The checkpoint holds everything needed to classify raw text later.
    task.save_artifacts(result.checkpoint_dir)
    model = memzoo.load(result.checkpoint_dir)
    tokenizer, classes, seq_len = load_artifacts(result.checkpoint_dir)
    samples = ["i loved this brilliant and charming film", "a dull plot and awful tedious acting"]
    if args.path:  # a few held-out texts (as the model read them: cut to seq_len tokens)
        samples = [task.text_tokenizer.decode(row) for row in test_data.inputs[:3].tolist()]
    for text, label in zip(samples, predict_labels(model, tokenizer, classes, seq_len, samples)):
        print(f"  {text!r} -> {label}")
    print(f"checkpoint (model.safetensors, tokenizer.json, labels.json): {result.checkpoint_dir}")


if __name__ == "__main__":
    main()

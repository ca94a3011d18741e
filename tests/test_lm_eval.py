"""lm-eval scores a memzoo language model on a local task built from generated text, and its
numbers are memzoo's own: rolling log-likelihood = minus memzoo's summed token loss,
loglikelihood = memzoo's conditional log-prob, generate_until = memzoo's greedy generation.
No network: the task reads local JSON lines."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("lm_eval")

import memzoo  # noqa: E402
from memzoo.errors import MemzooError  # noqa: E402
from memzoo.integrations import save_hf  # noqa: E402
from memzoo.integrations.lm_eval_model import MemzooLM  # noqa: E402
from memzoo.integrations.lm_eval_task import generate_text_corpus, write_local_lm_eval_task  # noqa: E402
from memzoo.models import SequenceModel  # noqa: E402
from memzoo.train.checkpoint import save_checkpoint  # noqa: E402
from memzoo.train.objectives import training_loss  # noqa: E402

NEWLINE = 10  # the byte tokenizer's document start
LAYERS, OPTIONS = ["deltanet", "attention"], {"deltanet": {"chunk_size": 16}}
SEQ_LEN = 64


def meta_for(layers, options, vocab, head="lm", d_model=32):
    section = {"layers": layers, "d_model": d_model, "mlp_ratio": 4, "layer_options": options}
    return {
        "run_id": "byte-lm",
        "config": {"model": section, "task": {"name": "text", "seq_len": SEQ_LEN}},
        "input_dim": None,
        "input_vocab_size": vocab,
        "output_vocab_size": vocab if head == "lm" else 3,
        "head": head,
    }


def train_byte_lm(steps: int = 80) -> SequenceModel:
    """A byte LM trained for ``steps`` steps on the generated corpus (seconds on one core)."""
    stream = torch.tensor(list(("\n" + "\n".join(generate_text_corpus(400)) + "\n").encode()))
    torch.manual_seed(0)
    model = SequenceModel(layers=LAYERS, d_model=32, vocab_size=256, layer_options=OPTIONS)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and the machine is shared
    try:
        for _ in range(steps):
            starts = torch.randint(0, len(stream) - SEQ_LEN - 1, (16,), generator=generator)
            window = torch.stack([stream[s : s + SEQ_LEN + 1] for s in starts.tolist()])
            loss = training_loss(model, window[:, :-1], window[:, 1:])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def byte_lm(tmp_path_factory):
    """``(checkpoint folder, Hugging Face export folder, task folder)`` of a trained byte LM."""
    root = tmp_path_factory.mktemp("lm_eval")
    checkpoint = save_checkpoint(root / "ckpt", train_byte_lm(), meta_for(LAYERS, OPTIONS, 256))
    export = save_hf(checkpoint, root / "hf")
    write_local_lm_eval_task(root / "tasks", num_documents=32)
    return checkpoint, export, root / "tasks"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    if "datasets" in sys.modules:  # read at import: keep this test's cache out of ~/.cache
        monkeypatch.setattr(sys.modules["datasets"].config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))


def requests(kind, *arguments):
    from lm_eval.api.instance import Instance

    return [Instance(request_type=kind, doc={}, arguments=args, idx=i) for i, args in enumerate(arguments)]


def memzoo_log_probs(model, ids: list[int]) -> torch.Tensor:
    """Log-probs ``[T - 1]`` of ``ids[1:]`` by memzoo's model run once on the whole sequence."""
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids[:-1]]))
    return torch.log_softmax(logits[0].double(), -1).gather(-1, torch.tensor(ids[1:])[:, None])[:, 0]


def rolling(lm, *texts) -> list[float]:
    return lm.loglikelihood_rolling(requests("loglikelihood_rolling", *[(text,) for text in texts]))


def test_rolling_loglikelihood_is_minus_memzoos_summed_loss(byte_lm):
    checkpoint, _, _ = byte_lm
    model = memzoo.load(checkpoint)
    long_text = " ".join(generate_text_corpus(12, seed=8))  # several trained lengths
    assert len(long_text.encode()) > 4 * SEQ_LEN
    texts = [*generate_text_corpus(5, seed=7), long_text, "é"]
    lm = MemzooLM(pretrained=str(checkpoint))
    assert lm.window == SEQ_LEN  # the run's trained length
    for text, score in zip(texts, rolling(lm, *texts)):
        ids = torch.tensor([[NEWLINE, *text.encode()]])
        with torch.no_grad():
            loss = training_loss(model, ids[:, :-1], ids[:, 1:])  # mean token NLL, memzoo's objective
        assert score == pytest.approx(-float(loss) * (ids.shape[1] - 1), rel=1e-5, abs=1e-4)
    # windows of 5 tokens, the state carried across them: the score of reading it whole
    whole = MemzooLM(pretrained=str(checkpoint), window=10_000)
    small = MemzooLM(pretrained=str(checkpoint), window=5)
    assert rolling(small, long_text)[0] == pytest.approx(rolling(whole, long_text)[0], rel=1e-5)


def test_loglikelihood_is_memzoos_conditional_log_prob(byte_lm):
    checkpoint, export, _ = byte_lm
    model = memzoo.load(checkpoint)
    pairs = [
        ("the small cat sees the", " dog."),
        ("the small cat sees the", " sees."),
        ("", "the fox."),
        ("a", ""),
    ]
    for pretrained in (checkpoint, export):  # a checkpoint folder and a Hugging Face export
        results = MemzooLM(pretrained=str(pretrained)).loglikelihood(requests("loglikelihood", *pairs))
        for (context, continuation), (score, greedy) in zip(pairs, results):
            ids = [NEWLINE, *context.encode(), *continuation.encode()]
            log_probs = memzoo_log_probs(model, ids)[len(context.encode()) :]
            assert score == pytest.approx(float(log_probs.sum()), rel=1e-5, abs=1e-5)
            with torch.no_grad():
                logits, _ = model(torch.tensor([ids[:-1]]))
            argmax = logits[0, len(context.encode()) :].argmax(-1).tolist()
            assert greedy == (argmax == list(continuation.encode()))


def test_generate_until_is_memzoos_greedy_generation(byte_lm):
    checkpoint, _, _ = byte_lm
    model = memzoo.load(checkpoint)
    lm = MemzooLM(pretrained=str(checkpoint))
    contexts = ["the small cat sees the", "a red dog"]
    out = lm.generate_until(
        requests("generate_until", *[(c, {"until": ["."], "max_gen_toks": 24}) for c in contexts])
    )
    for context, text in zip(contexts, out):
        prompt = torch.tensor([[NEWLINE, *context.encode()]])
        generated = model.generate(prompt, 24, greedy=True)[0, prompt.shape[1] :].tolist()
        expected = bytes(generated).decode("utf-8", errors="replace").split(".")[0]
        assert text == expected and "." not in text


def test_simple_evaluate_on_the_local_task(byte_lm):
    """The harness end to end: ``model="memzoo"`` (registered by ``import memzoo``), the local
    task folder; the per-document numbers it logs are memzoo's own."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    checkpoint, _, tasks = byte_lm
    out = lm_eval.simple_evaluate(
        model="memzoo",
        model_args={"pretrained": str(checkpoint)},
        tasks=["memzoo_text_perplexity", "memzoo_text_choice", "memzoo_text_complete"],
        task_manager=TaskManager(include_path=str(tasks), include_defaults=False),
        bootstrap_iters=0,
    )
    results = out["results"]
    perplexity, choice = results["memzoo_text_perplexity"], results["memzoo_text_choice"]
    assert 1.0 < perplexity["byte_perplexity,none"] < 4.0  # uniform over bytes would be 256
    assert perplexity["bits_per_byte,none"] == pytest.approx(math.log2(perplexity["byte_perplexity,none"]))
    assert choice["acc,none"] > 0.25  # 4 choices; the 3 wrong ones are the wrong kind of word
    model = memzoo.load(checkpoint)
    for sample in out["samples"]["memzoo_text_perplexity"][:4]:
        ids = [NEWLINE, *sample["doc"]["text"].encode()]
        assert sample["resps"][0][0] == pytest.approx(float(memzoo_log_probs(model, ids).sum()), rel=1e-5)


def test_models_lm_eval_cannot_read_are_refused(tmp_path):
    small = save_checkpoint(
        tmp_path / "small",
        SequenceModel(layers=["lstm"], d_model=8, vocab_size=64),
        meta_for(["lstm"], {}, 64, d_model=8),
    )
    with pytest.raises(MemzooError, match="byte tokenizer needs a vocabulary of at least 256"):
        MemzooLM(pretrained=str(small))
    clf = SequenceModel(layers=["lstm"], d_model=8, vocab_size=256, head="classify", num_outputs=3)
    with pytest.raises(MemzooError, match="head 'classify'"):
        MemzooLM(model=clf)
    with pytest.raises(MemzooError, match="not a memzoo checkpoint"):
        MemzooLM(pretrained=str(tmp_path / "nothing"))


def run(*args, timeout=240):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.parametrize(
    "first", ["import memzoo\nimport lm_eval.models", "import lm_eval.models\nimport memzoo"]
)
def test_registered_in_either_import_order_beside_lm_evals_own(first):
    code = (
        first
        + "\nfrom lm_eval.api.registry import get_model\nprint(get_model('memzoo').__name__, get_model('dummy').__name__)"
    )
    proc = run("-c", code)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["MemzooLM", "DummyLM"]


def test_lm_eval_command_line_through_memzoo(byte_lm, tmp_path):
    _, export, tasks = byte_lm
    proc = run(
        "-m",
        "memzoo.integrations.lm_eval_model",
        "--model",
        "memzoo",
        "--model_args",
        f"pretrained={export}",
        "--tasks",
        "memzoo_text_perplexity",
        "--include_path",
        str(tasks),
        "--output_path",
        str(tmp_path / "results"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "memzoo_text_perplexity" in proc.stdout and "byte_perplexity" in proc.stdout

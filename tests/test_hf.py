"""Hugging Face: a memzoo LM run exported, reloaded through AutoModelForCausalLM, same logits,
same greedy tokens, generation on memzoo's state (no prefix rerun). No network."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch

pytest.importorskip("transformers")

import memzoo  # noqa: E402
from memzoo.errors import MemzooError  # noqa: E402
from memzoo.integrations import save_hf  # noqa: E402
from memzoo.integrations.hf_config import MemzooConfig  # noqa: E402
from memzoo.integrations.hf_model import MemzooForCausalLM, MemzooState  # noqa: E402
from memzoo.layers.base import state_nbytes_per_sequence  # noqa: E402
from memzoo.models import SequenceModel  # noqa: E402
from memzoo.train.checkpoint import save_checkpoint  # noqa: E402
from memzoo.train.objectives import training_loss  # noqa: E402

VOCAB = 64
CASES = {  # name -> (layers, layer_options): short-term, fast-weight, recurrent, long-term, hybrid
    "attention": (["attention"], {}),
    "deltanet": (["deltanet"], {"deltanet": {"chunk_size": 8}}),
    "lstm": (["lstm"], {}),
    "mlstm": (["mlstm"], {"mlstm": {"chunk_size": 8}}),
    "neural_memory": (["neural_memory"], {"neural_memory": {"chunk_size": 4}}),
    "hybrid": (["deltanet", "attention", "lstm"], {"deltanet": {"chunk_size": 8}}),
}


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def write_checkpoint(folder, layers, options, *, head="lm", seed=0):
    """A checkpoint folder as a run writes it (weights + config.json with the model section)."""
    torch.manual_seed(seed)
    outputs = VOCAB if head == "lm" else 3
    model = SequenceModel(
        layers=layers, d_model=32, vocab_size=VOCAB, head=head, num_outputs=outputs, layer_options=options
    )
    section = {"layers": layers, "d_model": 32, "mlp_ratio": 4, "layer_options": options}
    meta = {
        "run_id": "test-run",
        "config": {"model": section, "task": {"name": "mqar", "seq_len": 16}},
        "input_dim": None,
        "input_vocab_size": VOCAB,
        "output_vocab_size": outputs,
        "head": head,
    }
    return save_checkpoint(folder, model, meta)


def load_hf(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(str(folder))


def record_lengths(model: SequenceModel, lengths: list[int]):
    """Make ``model`` record the number of tokens of each forward call in ``lengths``."""
    forward = model.forward

    def recording(x, state=None):
        lengths.append(x.shape[1])
        return forward(x, state)

    model.forward = recording


@pytest.mark.parametrize("case", sorted(CASES))
def test_export_reload_logits_and_greedy_tokens(tmp_path, case):
    layers, options = CASES[case]
    checkpoint = write_checkpoint(tmp_path / "ckpt", layers, options)
    out = save_hf(checkpoint, tmp_path / "hf")
    assert {"config.json", "model.safetensors", "memzoo_export.json"} <= {p.name for p in out.iterdir()}
    memzoo_model = memzoo.load(checkpoint)
    hf = load_hf(out)
    assert isinstance(hf, MemzooForCausalLM) and not hf.training
    assert hf.config.model_type == "memzoo" and hf.config.train_length == 16

    ids = torch.randint(0, VOCAB, (2, 19), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        reference, _ = memzoo_model(ids)
        torch.testing.assert_close(hf(ids).logits, reference, atol=1e-5, rtol=0)

    prompt, new = ids[:, :7], 9
    expected = memzoo_model.generate(prompt, new, greedy=True)
    lengths: list[int] = []
    record_lengths(hf.model, lengths)
    tokens = hf.generate(prompt, max_new_tokens=new, do_sample=False)
    assert tokens.tolist() == expected.tolist()
    # the prompt read once, then one state step per new token: never a rerun of the prefix
    assert lengths == [7] + [1] * (new - 1)


@pytest.mark.parametrize("case", ["deltanet", "lstm", "mlstm", "neural_memory", "attention"])
def test_the_cache_is_memzoos_state(case):
    """Fast-weight, recurrent and long-term memories hold the same bytes however long the
    generation; attention's KV cache grows with it."""
    layers, options = CASES[case]
    torch.manual_seed(0)
    hf = MemzooForCausalLM(MemzooConfig(layers=layers, d_model=32, vocab_size=VOCAB, layer_options=options))
    prompt = torch.randint(0, VOCAB, (1, 5), generator=torch.Generator().manual_seed(2))
    sizes = []
    for new in (4, 12):
        out = hf.eval().generate(prompt, max_new_tokens=new, do_sample=False, return_dict_in_generate=True)
        assert isinstance(out.cache, MemzooState) and out.cache.seen == 5 + new - 1
        sizes.append(state_nbytes_per_sequence(out.cache.states))
    assert (sizes[0] < sizes[1]) if case == "attention" else (sizes[0] == sizes[1]), sizes


def test_beam_search_reorders_the_state():
    """Beam search on the carried state equals beam search rerunning the prefix (no cache)."""
    torch.manual_seed(0)
    layers, options = CASES["hybrid"]
    hf = MemzooForCausalLM(
        MemzooConfig(layers=layers, d_model=32, vocab_size=VOCAB, layer_options=options)
    ).eval()
    prompt = torch.randint(0, VOCAB, (2, 6), generator=torch.Generator().manual_seed(3))
    cached = hf.generate(prompt, max_new_tokens=6, num_beams=3, do_sample=False)
    rerun = hf.generate(prompt, max_new_tokens=6, num_beams=3, do_sample=False, use_cache=False)
    assert cached.tolist() == rerun.tolist()


def test_save_pretrained_round_trip_and_loss(tmp_path):
    layers, options = CASES["hybrid"]
    torch.manual_seed(0)
    hf = MemzooForCausalLM(
        MemzooConfig(layers=layers, d_model=32, vocab_size=VOCAB, layer_options=options)
    ).eval()
    hf.save_pretrained(str(tmp_path / "a"))
    again = MemzooForCausalLM.from_pretrained(str(tmp_path / "a"))
    assert again.config.to_dict()["layers"] == layers and again.config.layer_options == options
    for name, tensor in hf.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    ids = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        loss = again(ids, labels=ids).loss  # HF convention: labels shifted inside
        expected = training_loss(hf.model, ids[:, :-1], ids[:, 1:])  # memzoo's own objective
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)


def test_padding_and_foreign_caches_are_refused():
    hf = MemzooForCausalLM(MemzooConfig(layers=["lstm"], d_model=32, vocab_size=VOCAB)).eval()
    ids = torch.ones(2, 4, dtype=torch.long)
    with pytest.raises(MemzooError, match="padding"):
        hf(ids, attention_mask=torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]]))
    assert hf(ids, attention_mask=torch.ones(2, 4)).logits.shape == (2, 4, VOCAB)


def test_what_is_not_exportable_is_refused(tmp_path):
    classifier = write_checkpoint(tmp_path / "clf", ["lstm"], {}, head="classify")
    with pytest.raises(MemzooError, match="head is 'classify'"):
        save_hf(classifier, tmp_path / "out")
    foreign = write_checkpoint(tmp_path / "foreign", ["lstm"], {})
    meta = json.loads((foreign / "config.json").read_text())
    meta["config"]["model"]["layers"] = ["memzoo_test_not_imported.module:Layer"]
    (foreign / "config.json").write_text(json.dumps(meta))
    with pytest.raises(MemzooError, match="import path"):
        save_hf(foreign, tmp_path / "out")
    assert "memzoo_test_not_imported" not in sys.modules  # refused, not imported
    with pytest.raises(MemzooError, match="import path"):
        MemzooConfig(layers=["pkg.mod:Layer"], d_model=32, vocab_size=VOCAB)
    assert not (tmp_path / "out").exists()


def test_cli_export_of_a_trained_run(tmp_path, monkeypatch, capsys):
    """A real run (memzoo train's checkpoint) through ``memzoo hf-export``; bad destinations
    are one line and exit 2; a previous export is replaced."""
    from test_hostile import TINY, assert_one_line_error, run_main

    from memzoo.train import build_config, fit

    result = fit(build_config({}, [*TINY, f"train.out_dir={tmp_path / 'runs'}"]), progress=False)
    out = tmp_path / "export"
    for _ in range(2):  # the second replaces the first
        code, stdout, err = run_main(monkeypatch, capsys, ["hf-export", result.checkpoint_dir, "--out", out])
        assert code in (0, None), err
        assert f"wrote {out}" in stdout
    ids = torch.randint(0, 32, (1, 16), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        torch.testing.assert_close(
            load_hf(out)(ids).logits, result.model.cpu().eval()(ids)[0], atol=1e-5, rtol=0
        )
    capsys.readouterr()  # loading bars of load_hf
    provenance = json.loads((out / "memzoo_export.json").read_text())
    assert provenance["run_id"] == result.run_id and provenance["task"]["name"] == "mqar"

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    code, _, err = run_main(monkeypatch, capsys, ["hf-export", result.checkpoint_dir, "--out", busy])
    assert_one_line_error(code, err, "not empty")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    code, _, err = run_main(monkeypatch, capsys, ["hf-export", result.checkpoint_dir, "--out", link])
    assert_one_line_error(code, err, "symbolic link")
    code, _, err = run_main(monkeypatch, capsys, ["hf-export", tmp_path / "nothing", "--out", tmp_path / "x"])
    assert_one_line_error(code, err, "not a memzoo checkpoint")
    assert (busy / "notes.txt").read_text() == "mine" and not (tmp_path / "elsewhere").exists()


def python(code: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=240, env=env
    )


def test_import_memzoo_imports_neither_library():
    proc = python(
        "import sys, memzoo; print(sorted(m for m in ('transformers', 'lm_eval') if m in sys.modules))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


ORDERS = {
    "memzoo then transformers": "import memzoo\nfrom transformers import AutoModelForCausalLM",
    "transformers then memzoo": "import transformers\nimport memzoo\nfrom transformers import AutoModelForCausalLM",
    "auto classes then memzoo": "from transformers import AutoConfig, AutoModelForCausalLM\nimport memzoo",
}


@pytest.mark.parametrize("order", sorted(ORDERS))
def test_auto_classes_know_memzoo_in_either_import_order(tmp_path, order):
    checkpoint = write_checkpoint(
        tmp_path / "ckpt", ["deltanet", "attention"], {"deltanet": {"chunk_size": 8}}
    )
    out = save_hf(checkpoint, tmp_path / "hf")
    code = ORDERS[order] + (
        "\nimport sys, torch\nfrom transformers import AutoConfig"
        "\nmodel = AutoModelForCausalLM.from_pretrained(sys.argv[1])"
        "\nids = torch.arange(10)[None]"
        "\nprint(AutoConfig.from_pretrained(sys.argv[1]).model_type, type(model).__name__,"
        " model.generate(ids, max_new_tokens=4, do_sample=False)[0, 10:].tolist())"
    )
    proc = python(code, out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = memzoo.load(checkpoint).generate(torch.arange(10)[None], 4, greedy=True)[0, 10:].tolist()
    assert proc.stdout.split("\n")[-2] == f"memzoo MemzooForCausalLM {expected}"

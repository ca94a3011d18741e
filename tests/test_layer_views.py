"""The optional inspection views of the memory layers (``write_gates``, ``attention_weights``).

A view is only worth having if it is the real thing: every gate is compared with the value the
forward pass hands its op (captured by wrapping the op the layer calls), and every attention
view reproduces the layer's output from ``weights @ values``.
"""

from __future__ import annotations

import textwrap

import pytest
import torch
from einops import rearrange
from layer_cases import kwargs_for

import memzoo
from memzoo.layers import _views, deltanet, knn, mlstm, neural_memory
from memzoo.layers.base import gate_names, has_attention_view, has_gate_view

D = 16
EXACT = {"atol": 1e-6, "rtol": 0.0}
CLOSE = {"atol": 1e-5, "rtol": 1e-5}

GATES = {
    "deltanet": ["beta"],
    "gated_deltanet": ["beta", "decay"],
    "mlstm": ["input_gate", "log_input_gate", "forget_gate"],
    "neural_memory": ["step_size", "momentum", "decay"],
    "knn": ["gate"],
    "lstm": ["input_gate", "forget_gate"],
    "gru": ["update_gate", "reset_gate"],
}
ATTENTION = {"attention", "attention_lstm", "knn", "persistent", "sliding_window"}


def make(name, seed=0, **kwargs):
    torch.manual_seed(seed)
    return memzoo.layers.build(name, d_model=D, **{**kwargs_for(name), **kwargs}).eval()


def data(batch=2, seq_len=19, seed=1):
    return torch.randn(batch, seq_len, D, generator=torch.Generator().manual_seed(seed))


def spy(monkeypatch, module, name):
    """Wrap ``module.name`` so every call's positional arguments are recorded."""
    calls, original = [], getattr(module, name)

    def recording(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, recording)
    return calls


def per_token(t):  # [B, H, T] as the ops take it -> [B, T, H] as the views give it
    return rearrange(t, "b h t -> b t h")


# ---- which layers have which view ----------------------------------------------------
def test_the_registry_lists_the_layers_with_each_view():
    # (user layers other tests imported by path may be registered too: only memzoo's own here)
    assert [n for n in memzoo.layers.gate_view_layers() if ":" not in n] == sorted(GATES)
    assert {n for n in memzoo.layers.attention_view_layers() if ":" not in n} == ATTENTION


@pytest.mark.parametrize("name", memzoo.layers.names())
def test_every_layer_answers_the_view_helpers(name):
    layer, x = make(name), data(seq_len=10)
    assert gate_names(layer) == GATES.get(name, [])  # [] is the answer "no gate view"
    assert has_gate_view(layer) == (name in GATES)
    assert has_attention_view(layer) == (name in ATTENTION)
    with torch.no_grad():
        if has_gate_view(layer):
            gates = layer.write_gates(x)
            assert list(gates) == gate_names(layer) == list(layer.gate_units)
            for gate in gates.values():
                assert gate.shape[:2] == (2, 10) and gate.dim() == 3
        if has_attention_view(layer):
            w = layer.attention_weights(x)
            assert w.dim() == 4 and w.shape[0] == 2 and w.shape[2:] == (10, 10)
            assert (w.triu(1) == 0).all() and (w >= 0).all() and (w.sum(-1) <= 1 + 1e-5).all()


USER_LAYER = textwrap.dedent(
    '''
    import torch
    from torch import nn

    from memzoo.layers.base import MemoryLayer


    class Plain(MemoryLayer):
        """y = W x, no memory and no view."""

        def __init__(self, d_model: int):
            super().__init__(d_model)
            self.out = nn.Linear(d_model, d_model)

        def init_state(self, batch_size, device=None, dtype=None):
            return None

        def forward(self, x, state=None):
            return self.out(x), None

        def state_size(self, seq_len):
            return 0


    class Leaky(Plain):
        """A leaky average whose forget factor a user shows as a gate."""

        gate_units = {"keep": "a in (0, 1), the share of the average kept"}

        def write_gates(self, x):
            return {"keep": torch.full((*x.shape[:2], 1), 0.5)}
    '''
)


def test_a_user_layer_by_import_path_says_whether_it_has_a_view(tmp_path, monkeypatch):
    (tmp_path / "user_views.py").write_text(USER_LAYER)
    monkeypatch.syspath_prepend(str(tmp_path))
    plain = memzoo.layers.build("user_views:Plain", d_model=D)
    assert not has_gate_view(plain) and gate_names(plain) == [] and not has_attention_view(plain)
    leaky = memzoo.layers.build("user_views:Leaky", d_model=D)
    assert has_gate_view(leaky) and gate_names(leaky) == ["keep"]
    assert leaky.write_gates(data(seq_len=3))["keep"].shape == (2, 3, 1)


# ---- gates: the values the forward hands its op ----------------------------------------
@pytest.mark.parametrize("algorithm", ["chunked", "naive"])
@pytest.mark.parametrize("name", ["deltanet", "gated_deltanet"])
def test_delta_rule_gates_are_what_the_op_gets(name, algorithm, monkeypatch):
    layer, x = make(name, algorithm=algorithm), data()
    calls = spy(monkeypatch, deltanet, "parallel_form")
    with torch.no_grad():
        layer(x)
        gates = layer.write_gates(x)
    (args,) = calls  # (algorithm, chunk_fn, naive_fn, q, k, v, beta[, g])
    torch.testing.assert_close(gates["beta"], per_token(args[6]), **EXACT)
    if name == "gated_deltanet":
        torch.testing.assert_close(gates["decay"], per_token(args[7].exp()), **EXACT)
        assert ((gates["decay"] > 0) & (gates["decay"] < 1)).all()
    assert ((gates["beta"] > 0) & (gates["beta"] < 1)).all()


@pytest.mark.parametrize(
    "name,op", [("deltanet", "delta_rule_step"), ("gated_deltanet", "gated_delta_rule_step")]
)
def test_delta_rule_gates_are_what_the_step_gets(name, op, monkeypatch):
    layer, x = make(name), data(seq_len=6)
    calls = spy(monkeypatch, deltanet, op)
    with torch.no_grad():
        state = None
        for t in range(x.shape[1]):
            _, state = layer(x[:, t : t + 1], state)
        gates = layer.write_gates(x)
    torch.testing.assert_close(gates["beta"], torch.stack([c[3] for c in calls], dim=1), **EXACT)
    if name == "gated_deltanet":
        decay = torch.stack([c[4] for c in calls], dim=1).exp()
        torch.testing.assert_close(gates["decay"], decay, **EXACT)


def test_mlstm_gates_are_what_the_op_gets(monkeypatch):
    layer, x = make("mlstm"), data()
    calls = spy(monkeypatch, mlstm, "parallel_form")
    step_calls = spy(monkeypatch, mlstm, "mlstm_step")
    with torch.no_grad():
        layer(x)
        layer(x[:, :1])  # the step form takes the same gates
        gates = layer.write_gates(x)
    (args,) = calls  # (algorithm, chunk_fn, naive_fn, q, k, v, i, log_f)
    torch.testing.assert_close(gates["log_input_gate"], per_token(args[6]), **EXACT)
    torch.testing.assert_close(gates["input_gate"], per_token(args[6].exp()), **EXACT)
    torch.testing.assert_close(gates["forget_gate"], per_token(args[7].exp()), **EXACT)
    torch.testing.assert_close(gates["log_input_gate"][:, 0], step_calls[0][3], **EXACT)
    assert ((gates["forget_gate"] > 0) & (gates["forget_gate"] < 1)).all()


def test_neural_memory_gates_are_what_the_op_gets(monkeypatch):
    layer, x = make("neural_memory"), data(seq_len=10)  # chunks of 4: two written, two tokens left
    calls = spy(monkeypatch, neural_memory, "chunk_neural_memory")
    with torch.no_grad():
        layer(x)
        gates = layer.write_gates(x)
    (args,) = calls  # (q, k, v, theta, log_eta, log_keep, gamma, chunk_size, initial_state)
    theta, log_eta, log_keep = args[3:6]  # [B, H, T], [B, H, N], [B, H, N]
    torch.testing.assert_close(gates["step_size"], per_token(theta), **EXACT)
    eta, alpha = per_token(log_eta.exp()), per_token(-torch.expm1(log_keep))  # [B, N, H]
    for c in range(2):
        for t in range(4 * c, 4 * c + 4):  # a chunk's gates on each of its tokens
            torch.testing.assert_close(gates["momentum"][:, t], eta[:, c], **EXACT)
            torch.testing.assert_close(gates["decay"][:, t], alpha[:, c], **EXACT)
    assert gates["momentum"][:, 8:].isnan().all() and gates["decay"][:, 8:].isnan().all()
    assert gates["step_size"].isfinite().all()


def test_knn_gate_is_the_mix_the_forward_applies(monkeypatch):
    layer, x = make("knn"), data()  # window 4: the store is empty for tokens 0..3
    calls = spy(monkeypatch, knn, "ring_retrieve")
    with torch.no_grad():
        layer(x)
        gate = layer.write_gates(x)["gate"]  # [B, T, H]
    (args,) = calls
    with torch.no_grad():
        found = knn.ring_retrieve(*args, top_k=layer.top_k).found  # [B, H, T, 1]
    applied = torch.sigmoid(layer.gate).view(1, -1, 1) * found[..., 0]  # as forward: g = gate * found
    torch.testing.assert_close(gate, per_token(applied), **EXACT)
    assert (gate[:, :4] == 0).all() and (gate[:, 4:] == torch.sigmoid(layer.gate)).all()


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_recurrent_gates_come_from_the_modules_own_recurrence(name, num_layers):
    layer, x = make(name, num_layers=num_layers), data(seq_len=7)
    steps = _views.lstm_steps if name == "lstm" else _views.gru_steps
    with torch.no_grad():
        gates, y = steps(layer.rnn, x)
        y_module, _ = layer(x)
        shown = layer.write_gates(x)
    torch.testing.assert_close(y, y_module, **CLOSE)  # the recurrence is the module's
    assert shown.keys() == gates.keys()
    for name_, gate in shown.items():
        torch.testing.assert_close(gate, gates[name_], **EXACT)
        assert gate.shape == (2, 7, num_layers * D) and ((gate > 0) & (gate < 1)).all()


# ---- attention: weights @ values is the layer's read -----------------------------------
def read(weights, values):
    """``[B, H, T, S] @ [B, H, S, Dh]`` -> ``[B, T, D]`` (heads merged)."""
    return rearrange(weights @ values, "b h t d -> b t (h d)")


def assert_rows(weights, total=1.0):
    torch.testing.assert_close(weights.sum(-1), torch.full_like(weights[..., 0], 1.0) * total, **CLOSE)


@pytest.mark.parametrize("rope", [True, False])
@pytest.mark.parametrize("score", ["dot", "cosine", "additive"])
def test_attention_weights_reproduce_the_output(score, rope):
    layer, x = make("attention", score=score, rope=rope), data()
    with torch.no_grad():
        w = layer.attention_weights(x)  # [B, H, T, T]
        y = layer.out(read(w, layer.project(x, 0)[2]))
        y_forward, cache = layer(x)
        x2 = data(seq_len=5, seed=2)  # a chunk after a cache: [B, H, 5, 19 + 5]
        w2 = layer.attention_weights(x2, cache)
        y2 = layer.out(read(w2, torch.cat((cache.v, layer.project(x2, 19)[2]), dim=2)))
        y2_forward, _ = layer(x2, cache)
    assert w.shape == (2, 4, 19, 19) and (w.triu(1) == 0).all()
    assert_rows(w)
    torch.testing.assert_close(y, y_forward, **CLOSE)
    assert w2.shape == (2, 4, 5, 24) and (w2[..., 20:].triu(1) == 0).all()
    torch.testing.assert_close(y2, y2_forward, **CLOSE)


def test_attention_lstm_weights_reproduce_the_context_it_feeds_the_lstm():
    layer, x = make("attention_lstm"), data()
    with torch.no_grad():
        w = layer.attention_weights(x)
        context = layer.attn.out(read(w, layer.attn.project(x, 0)[2]))
        y, _ = layer.lstm(torch.cat((x, context), dim=-1))
        y_forward, _ = layer(x)
    assert (w.triu(1) == 0).all()
    assert_rows(w)
    torch.testing.assert_close(y, y_forward, **CLOSE)


def band(t_len, window):
    pos = torch.arange(t_len)
    lag = pos.unsqueeze(1) - pos.unsqueeze(0)
    return (lag >= 0) & (lag < window)  # [T, T]


@pytest.mark.parametrize("name", ["sliding_window", "persistent"])
def test_window_weights_reproduce_the_output(name):
    layer, x = make(name), data()  # window 5; persistent: 4 slots
    state = layer.init_state(2)
    with torch.no_grad():
        w = layer.attention_weights(x)  # [B, H, T, T]
        v = layer.project(x, state.pos)[2]
        slots = layer.slot_weights(x) if name == "persistent" else w[..., :0]
        values = torch.cat((layer.prefix_kv(2, x.dtype)[1], v), dim=2) if name == "persistent" else v
        y = layer.out(read(torch.cat((slots, w), dim=-1), values))
        y_forward, _ = layer(x)
    assert (w[..., ~band(19, 5)] == 0).all(), "weight outside the window"
    assert_rows(w, 1.0 - slots.sum(-1))
    assert_rows(torch.cat((slots, w), dim=-1))
    torch.testing.assert_close(y, y_forward, **CLOSE)
    if name == "persistent":
        assert slots.shape == (2, 4, 19, 4) and slots.sum(-1).min() > 0, "no mass on the slots"


def test_knn_weights_reproduce_the_output_local_and_retrieved():
    layer, x = make("knn"), data(seq_len=20)  # window 4, capacity 6, top_k 3
    with torch.no_grad():
        local, retrieved, gate = layer.read_weights(x)
        w = layer.attention_weights(x)
        _, _, v = layer._project(x)
        y_forward, _ = layer(x)
    assert (w.triu(1) == 0).all()
    assert_rows(w)
    assert (local[..., ~band(20, 4)] == 0).all()
    stored = band(20, 4 + 6) & ~band(20, 4)  # tokens t-W-C+1 .. t-W
    assert (retrieved[..., ~stored] == 0).all()
    assert ((retrieved > 0).sum(-1) <= 3).all() and ((retrieved > 0).sum(-1)[..., 4:] >= 1).all()
    assert_rows(retrieved[:, :, 4:])  # tokens 0..3: empty store, nothing retrieved
    assert (retrieved[:, :, :4] == 0).all()
    shown = layer.write_gates(x)["gate"].transpose(1, 2)  # [B, H, T]
    torch.testing.assert_close(gate[..., 0].expand(2, -1, -1), shown, **EXACT)
    torch.testing.assert_close(layer.out(read(w, v)), y_forward, **CLOSE)

"""Per-layer options used by the registry-wide tests (small, fast settings).

A layer that is not listed here is tested with its defaults.
"""

LAYER_TEST_KWARGS: dict[str, dict] = {
    "rnn": {},
    "lstm": {},
    "gru": {},
    "linear_attention": {"chunk_size": 8},  # fast-weight layers: several chunks per test input
    "deltanet": {"chunk_size": 8},
    "gated_deltanet": {"chunk_size": 8},
    "mlstm": {"chunk_size": 8},
    "persistent": {"num_slots": 4, "window": 5},  # the band bites, as for sliding_window
    "memory_tokens": {"segment_len": 5, "num_memory": 3, "xl_cache": True},  # segments cross
    "knn": {"local_window": 4, "capacity": 6, "top_k": 3},  # tokens reach the store, evict
    "neural_memory": {"chunk_size": 4},  # several memory updates within a test sequence
    "sliding_window": {"window": 5},  # smaller than the test sequences, so the band bites
    "attention_lstm": {"score": "additive"},  # "attention" runs the default "dot" score
}


def kwargs_for(name: str) -> dict:
    return dict(LAYER_TEST_KWARGS.get(name, {}))


# fp32 state tolerance of the whole == chunked == step contract where 1e-4 is too tight for
# rounding alone. neural_memory's momentum is a sum of per-token gradients that largely cancel
# (measured: 1.2e-4 relative in fp32, 8e-16 in fp64 on the same case), so the contract test
# also checks it exactly in fp64 (test_fp64_contract_is_exact).
STATE_TOL = {"neural_memory": 1e-3}


def state_tol_for(name: str) -> float:
    return STATE_TOL.get(name, 1e-4)

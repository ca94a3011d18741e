"""Bridges to where researchers work: Hugging Face ``transformers`` and ``lm-eval``.

Each bridge is an extra (``pip install 'memzoo[hf]'``, ``'memzoo[lmeval]'``) imported lazily:
``import memzoo`` imports neither library; it only installs the hooks of
:mod:`memzoo.integrations.autoregister`, which register memzoo with a library when that
library's registry is loaded. The names below are imported on first use:

- :class:`MemzooConfig`, :class:`MemzooForCausalLM` (``hf_config``, ``hf_model``): a memzoo
  language model as a ``transformers`` model (``AutoModelForCausalLM``, ``generate``);
- :func:`save_hf` (``hf_export``): a training run's checkpoint folder -> a Hugging Face folder;
- :class:`MemzooLM` (``lm_eval_model``): the lm-eval model ``"memzoo"``;
- :class:`ByteTokenizer`, :func:`tokenizer_for` (``tokenizer``): text <-> token ids;
- :func:`write_local_lm_eval_task` (``lm_eval_task``): a local lm-eval task folder (no download).
"""

from __future__ import annotations

import importlib

from memzoo.integrations.autoregister import install_import_hooks

_LAZY = {
    "MemzooConfig": "hf_config",
    "MemzooForCausalLM": "hf_model",
    "MemzooState": "hf_model",
    "save_hf": "hf_export",
    "MemzooLM": "lm_eval_model",
    "ByteTokenizer": "tokenizer",
    "tokenizer_for": "tokenizer",
    "write_local_lm_eval_task": "lm_eval_task",
    "generate_text_corpus": "lm_eval_task",
}

__all__ = ["install_import_hooks", *_LAZY]


def __getattr__(name: str):
    """Import the module that holds ``name`` on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)

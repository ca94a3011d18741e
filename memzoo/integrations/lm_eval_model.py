"""The lm-eval model ``"memzoo"``: a memzoo language model scored by lm-evaluation-harness.

Shape legend: T tokens, K lm-head outputs.

``MemzooLM(pretrained=FOLDER)`` reads a memzoo run's checkpoint folder (``memzoo.load``) or a
Hugging Face export of one (:func:`memzoo.integrations.save_hf`); ``MemzooLM(model=...)``
takes a :class:`~memzoo.models.SequenceModel` (``head="lm"``) or a ``MemzooForCausalLM``.
Text becomes token ids with the run's saved tokenizer, else UTF-8 bytes (ids 0..255; see
:mod:`memzoo.integrations.tokenizer`). Every request is read after the tokenizer's document
start (a newline for bytes, ``<bos>`` otherwise), in eval mode, without gradients:

- ``loglikelihood(context, continuation)``: ``sum_i log p(cont_i | start, context, cont_<i)``
  and whether greedy decoding would produce the continuation. The context is read once and
  its state reused for the next request with the same context (the choices of a
  multiple-choice question): a memzoo state is never modified in place.
- ``loglikelihood_rolling(text)``: ``sum_t log p(x_t | start, x_<t)`` over every token, each
  scored once. The text is read in windows of ``window`` tokens **with the memory state
  carried from window to window** (memzoo's segment reading), not in lm-eval's
  re-read overlapping windows: a text longer than the model's trained length is read whole
  by its memory: a recurrent or fast-weight state stays the same size, an attention KV cache
  grows with the text (attention then reads positions beyond those it was trained on). As
  every memzoo layer gives the same outputs whole or chunked, the score equals the model run
  on the whole text (``window`` only bounds one call's activations) and equals minus memzoo's
  summed token cross-entropy of the text after the start token.
- ``generate_until(context, {until, max_gen_toks, do_sample, temperature})``: the prompt read
  once, then one token at a time on the carried state (greedy unless ``do_sample``), stopped
  at the first ``until`` string (cut off) or after ``max_gen_toks`` tokens.

Requests are scored one at a time (``batch_size`` is accepted for lm-eval's command line and
not used: a byte-level memzoo model is small and a state step is cheap).

How lm-eval finds ``"memzoo"``: ``import memzoo`` registers it (lazily) as soon as lm-eval
loads its model registry, so the Python API works after ``import memzoo``::

    lm_eval.simple_evaluate(model="memzoo", model_args={"pretrained": FOLDER}, tasks=[...],
                            task_manager=TaskManager(include_path=TASKS))

The ``lm_eval`` command never imports memzoo; run lm-eval's command line through this module,
which does: ``python -m memzoo.integrations.lm_eval_model --model memzoo --model_args
pretrained=FOLDER --tasks memzoo_text_perplexity --include_path TASKS``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lm_eval.models  # noqa: F401  (lm-eval's own models first: a non-empty registry is not refilled)
import torch
from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from memzoo.errors import MemzooError
from memzoo.integrations.autoregister import LM_EVAL_MODEL_NAME, register_lm_eval_model
from memzoo.integrations.hf_config import MODEL_TYPE
from memzoo.integrations.hf_model import MemzooForCausalLM
from memzoo.integrations.tokenizer import ByteTokenizer, tokenizer_for
from memzoo.models import SequenceModel
from memzoo.models.generate import next_token
from memzoo.train.checkpoint import CONFIG, read_meta
from memzoo.train.loading import load

DEFAULT_WINDOW = 1024  # tokens per forward call when the run's trained length is unknown
DEFAULT_MAX_GEN_TOKS = 256


def load_language_model(folder: str | Path) -> tuple[SequenceModel, int | None]:
    """``(model in eval mode, trained length or None)`` from a memzoo checkpoint folder or a
    Hugging Face export folder; a ``MemzooError`` for anything else."""
    folder = Path(folder)
    config = folder / CONFIG
    if not config.is_file() or config.is_symlink():
        raise MemzooError(f"{str(folder)!r} is not a memzoo checkpoint or Hugging Face export (no {CONFIG})")
    meta = read_meta(config)
    if meta.get("model_type") == MODEL_TYPE:
        hf = MemzooForCausalLM.from_pretrained(str(folder))
        return hf.model.eval(), hf.config.train_length
    model = load(folder)  # a layer named by import path is refused (no trust_code here)
    task = model.checkpoint_meta.get("config", {}).get("task", {})
    length = task.get("seq_len") if isinstance(task, dict) else None
    return model, length if isinstance(length, int) and not isinstance(length, bool) else None


def pick_device(device: str | None) -> torch.device:
    """``device``, or CUDA when available; a CUDA device asked for where there is none (lm-eval's
    command line asks for ``cuda`` by default) falls back to the CPU with a warning."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        warnings.warn(
            f"device {device!r} asked for, but CUDA is not available: running on the CPU", stacklevel=3
        )
        return torch.device("cpu")
    return chosen


def _as_sequence_model(model: Any) -> SequenceModel:
    model = model.model if isinstance(model, MemzooForCausalLM) else model
    if (
        not isinstance(model, SequenceModel)
        or model.head_kind != "lm"
        or not hasattr(model.embed, "num_embeddings")
    ):
        raise MemzooError(
            "MemzooLM needs a memzoo language model: a SequenceModel with head 'lm' and token inputs "
            f"(or a MemzooForCausalLM); got {type(model).__name__}"
            + (f" with head {model.head_kind!r}" if isinstance(model, SequenceModel) else "")
        )
    return model


class MemzooLM(LM):
    """A memzoo language model for lm-eval (see the module docstring for what each request
    type computes).

    Args:
        pretrained: a memzoo checkpoint folder or a Hugging Face export folder — or
        model: a ``SequenceModel`` (``head="lm"``) / ``MemzooForCausalLM`` (exactly one of the two).
        tokenizer: ``None`` (the folder's saved tokenizer, else bytes), ``"bytes"``, or an
            object with ``encode(str) -> list[int]`` and ``decode(ids) -> str``.
        prefix_token_id: the id every request is read after (default: the tokenizer's
            document start).
        window: tokens per forward call (default: the run's trained length, else 1024).
        device: ``"cpu"``, ``"cuda"``... (default: CUDA when available; CUDA asked for where
            there is none falls back to the CPU with a warning).
        batch_size, max_batch_size: accepted from lm-eval's command line, not used.
    """

    def __init__(
        self,
        pretrained: str | Path | None = None,
        model: Any = None,
        tokenizer: Any = None,
        prefix_token_id: int | None = None,
        window: int | None = None,
        device: str | None = None,
        batch_size: Any = None,
        max_batch_size: Any = None,
    ):
        super().__init__()
        if (pretrained is None) == (model is None):
            raise MemzooError("MemzooLM needs exactly one of pretrained=FOLDER or model=...")
        length = None
        if pretrained is not None:
            model, length = load_language_model(pretrained)
        self.model = _as_sequence_model(model).eval()
        vocab = self.model.embed.num_embeddings
        if tokenizer is None:
            tokenizer, start = tokenizer_for(pretrained, vocab)
        elif tokenizer == "bytes":
            tokenizer, start = tokenizer_for(None, vocab)
        else:
            start = getattr(tokenizer, "prefix_token_id", None)
        self.tokenizer = tokenizer
        self.prefix_token_id = int(prefix_token_id if prefix_token_id is not None else (start or 0))
        self.window = int(window or length or DEFAULT_WINDOW)
        if self.window < 1 or not 0 <= self.prefix_token_id < vocab:
            raise MemzooError(f"window must be >= 1 and prefix_token_id in [0, {vocab})")
        self._device = pick_device(device)
        self.model.to(self._device)
        self._context: tuple[tuple[int, ...], torch.Tensor, Any] | None = None  # the last context read

    # ----------------------------------------------------------------- reading
    @torch.no_grad()
    def _read(self, ids: list[int], state: Any) -> tuple[torch.Tensor, Any]:
        """Read ``ids`` after ``state`` window by window; ``(log-probs [T, K] fp32, state)``."""
        outputs = []
        for start in range(0, len(ids), self.window):
            chunk = torch.tensor([ids[start : start + self.window]], device=self._device)
            logits, state = self.model(chunk, state)  # [1, t, K]
            outputs.append(torch.log_softmax(logits[0].float(), dim=-1))
        if not outputs:
            return torch.zeros(0, self.model.head.out_features, device=self._device), state
        return torch.cat(outputs), state

    def _after_context(self, context_ids: list[int]) -> tuple[torch.Tensor, Any]:
        """``(log-probs [K] of the next token, state)`` after the start token and ``context_ids``;
        the last context's reading is reused when it comes again."""
        key = tuple(context_ids)
        if self._context is None or self._context[0] != key:
            log_probs, state = self._read([self.prefix_token_id, *context_ids], None)
            self._context = (key, log_probs[-1], state)
        return self._context[1], self._context[2]

    def _continuation(self, context_ids: list[int], ids: list[int]) -> tuple[float, bool]:
        """``(sum of log p of ids after the context, whether each is the arg-max)``."""
        if not ids:
            return 0.0, True
        first, state = self._after_context(context_ids)
        rest, _ = self._read(ids[:-1], state)  # [T - 1, K]
        log_probs = torch.cat([first[None], rest])  # [T, K]: row i predicts ids[i]
        target = torch.tensor(ids, device=self._device)
        if int(target.max()) >= log_probs.shape[-1]:
            return float("-inf"), False  # a token the head cannot emit
        chosen = log_probs.gather(-1, target[:, None]).squeeze(-1)
        greedy = bool((log_probs.argmax(dim=-1) == target).all())
        return float(chosen.double().sum()), greedy

    def _split(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Token ids of the context and of the continuation; when the tokenizer merges across
        the boundary, the continuation is what the whole text adds to the context."""
        context_ids = self.tokenizer.encode(context)
        whole = self.tokenizer.encode(context + continuation)
        if whole[: len(context_ids)] == context_ids:
            return context_ids, whole[len(context_ids) :]
        return context_ids, self.tokenizer.encode(continuation)

    # ----------------------------------------------------------------- lm-eval's requests
    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        results = []
        for request in requests:
            context, continuation = request.args
            result = self._continuation(*self._split(context, continuation))
            self.cache_hook.add_partial("loglikelihood", request.args, result)
            results.append(result)
        return results

    def loglikelihood_rolling(self, requests) -> list[float]:
        results = []
        for request in requests:
            (text,) = request.args[:1]
            score, _ = self._continuation([], self.tokenizer.encode(text))
            self.cache_hook.add_partial("loglikelihood_rolling", request.args, score)
            results.append(score)
        return results

    def generate_until(self, requests) -> list[str]:
        results = []
        for request in requests:
            context, options = request.args[0], dict(request.args[1] if len(request.args) > 1 else {})
            text = self._generate(context, options)
            self.cache_hook.add_partial("generate_until", request.args, text)
            results.append(text)
        return results

    @torch.no_grad()
    def _generate(self, context: str, options: dict[str, Any]) -> str:
        until = options.get("until") or []
        until = [stop for stop in ([until] if isinstance(until, str) else until) if stop]
        max_tokens = int(options.get("max_gen_toks", DEFAULT_MAX_GEN_TOKS))
        temperature = float(options.get("temperature", 1.0) or 0.0)
        greedy = not options.get("do_sample", False) or temperature == 0.0
        log_probs, state = self._after_context(self.tokenizer.encode(context))
        generated: list[int] = []
        text = ""
        for _ in range(max_tokens):
            token = next_token(log_probs[None], temperature=temperature or 1.0, greedy=greedy)
            generated.append(int(token))
            text = self.tokenizer.decode(generated)
            if any(stop in text for stop in until) or len(generated) == max_tokens:
                break
            step, state = self._read([int(token)], state)
            log_probs = step[-1]
        cut = min((text.index(stop) for stop in until if stop in text), default=len(text))
        return text[:cut]


def _register(cls: type[MemzooLM]) -> type[MemzooLM]:
    """Register ``cls`` as lm-eval's ``"memzoo"`` (not when run as a script: lm-eval then
    imports this module under its own name from the lazy entry)."""
    if __name__ == "__main__":
        register_lm_eval_model()
        return cls
    return register_model(LM_EVAL_MODEL_NAME)(cls)


_register(MemzooLM)
__all__ = ["ByteTokenizer", "MemzooLM", "load_language_model"]

if __name__ == "__main__":
    from lm_eval.__main__ import cli_evaluate

    cli_evaluate()

"""Registration with transformers and lm-eval when (and only when) they are imported.

``import memzoo`` calls :func:`install_import_hooks`, which costs a dictionary and a finder on
``sys.meta_path``: neither transformers nor lm-eval is imported. The registration then runs
right after the module that holds each registry finishes loading, whichever comes first,
``import memzoo`` or the library:

=================================================  ===============================================
module loaded                                      what memzoo registers
=================================================  ===============================================
``transformers.models.auto.configuration_auto``    ``AutoConfig``: model_type ``"memzoo"``
                                                   (imports ``memzoo.integrations.hf_config``)
``transformers.models.auto.modeling_auto``         ``AutoModelForCausalLM``: ``MemzooForCausalLM``
                                                   (imports ``memzoo.integrations.hf_model``)
``lm_eval.models``                                 the lm-eval model ``"memzoo"``, as a lazy
                                                   ``"module:Class"`` entry (nothing imported)
=================================================  ===============================================

A module already loaded when ``import memzoo`` runs is registered at once. ``import
transformers`` alone loads none of the ``auto`` modules (they are lazy), so it stays as cheap
as it was; the model classes are imported when the user first reaches for an Auto model
class. A registration that fails (an incompatible library version) is a warning, never an
error inside someone else's import.

The finder wraps only the loader of the watched modules, and hands the module its own loader
back as soon as it has run.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
import warnings
from collections.abc import Callable

LM_EVAL_MODEL_NAME = "memzoo"
LM_EVAL_MODEL_PATH = "memzoo.integrations.lm_eval_model:MemzooLM"


def _import(module: str) -> Callable[[], None]:
    return lambda: importlib.import_module(module)  # the module registers itself when imported


def register_lm_eval_model() -> None:
    """Register ``"memzoo"`` with lm-eval's model registry as a lazy placeholder (lm-eval
    imports :mod:`memzoo.integrations.lm_eval_model` the first time the name is used)."""
    from lm_eval.api.registry import model_registry

    if LM_EVAL_MODEL_NAME not in model_registry:
        model_registry.register(LM_EVAL_MODEL_NAME, target=LM_EVAL_MODEL_PATH)


# module whose loading completes -> what memzoo then registers
_ACTIONS: dict[str, Callable[[], None]] = {
    "transformers.models.auto.configuration_auto": _import("memzoo.integrations.hf_config"),
    "transformers.models.auto.modeling_auto": _import("memzoo.integrations.hf_model"),
    "lm_eval.models": register_lm_eval_model,
}
_pending: dict[str, Callable[[], None]] = {}
_lock = threading.Lock()
_installed = False


def _run(name: str, action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as err:  # never break the library's own import
        warnings.warn(
            f"memzoo could not register with {name.split('.')[0]} ({type(err).__name__}: {err}); "
            "its memzoo classes are unavailable in this process",
            RuntimeWarning,
            stacklevel=2,
        )


class _ThenRegister:
    """The real loader of a watched module, followed by memzoo's registration."""

    def __init__(self, loader, name: str, action: Callable[[], None]):
        self.loader, self.name, self.action = loader, name, action

    def create_module(self, spec):
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module) -> None:
        self.loader.exec_module(module)
        module.__loader__ = self.loader  # the module keeps no trace of the wrapper
        if getattr(module, "__spec__", None) is not None:
            module.__spec__.loader = self.loader
        _run(self.name, self.action)

    def __getattr__(self, attribute):  # get_code, get_source, is_package, resource readers...
        return getattr(self.loader, attribute)


class _AfterImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: asks the finders after it, and wraps the loader of a watched
    module so that memzoo registers once the module has run."""

    def find_spec(self, fullname, path, target=None):
        with _lock:
            action = _pending.get(fullname)
        if action is None:
            return None
        spec = None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        with _lock:
            if _pending.pop(fullname, None) is None:
                return None  # another thread took it
            if not _pending and self in sys.meta_path:
                sys.meta_path.remove(self)
        spec.loader = _ThenRegister(spec.loader, fullname, action)
        return spec


_FINDER = _AfterImportFinder()


def install_import_hooks() -> None:
    """Register with every watched library module already loaded; watch for the others.

    Cheap and idempotent: called by ``import memzoo``."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        now = [(name, action) for name, action in _ACTIONS.items() if name in sys.modules]
        _pending.update((name, action) for name, action in _ACTIONS.items() if name not in sys.modules)
        if _pending:
            sys.meta_path.insert(0, _FINDER)
    for name, action in now:
        _run(name, action)

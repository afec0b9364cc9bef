"""medallion: Kafka → Bronze → Silver → Gold → Feast, from one command."""

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os as _os
import sys
from types import ModuleType

RUN_ID_ENV = "MEDALLION_RUN_ID"

if _os.environ.get(RUN_ID_ENV):
    # A process a stage started (Spark's Python workers inherit the environment): its log lines carry the
    # stage's run id too, as the driver's do (`logger.contextualize` there).
    from loguru import logger as _logger

    _logger.configure(extra={"run_id": _os.environ[RUN_ID_ENV]})

_GROUPS = ("core", "engines", "operations")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """The import paths from before the modules were grouped into ``core``, ``engines`` and
    ``operations`` (``medallion.config``, ``medallion.kafka.source``, ...) name the same module objects as
    the new paths, so a user's script, notebook or feature repository keeps working (and a monkeypatch
    through either path patches the one module). New code uses the new paths; the layers test reads only
    those."""

    def __init__(self) -> None:
        self._own_spec: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        top, _, rest = fullname.partition(".")
        first = rest.split(".")[0]
        if top != __name__ or not rest or first in _GROUPS:
            return None
        for group in _GROUPS:  # the moved module is the first part: medallion.kafka(.source) -> engines
            if importlib.util.find_spec(f"{__name__}.{group}.{first}") is not None:
                return importlib.util.spec_from_loader(fullname, self, origin=f"{__name__}.{group}.{rest}")
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(str(spec.origin))
        self._own_spec[module.__name__] = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the module; give it back its own.
        module.__spec__ = self._own_spec.pop(module.__name__)


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    # First: below an old path (``medallion.kafka.source``) the path finder would load a second copy.
    sys.meta_path.insert(0, _MovedModules())

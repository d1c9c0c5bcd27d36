"""Keep TensorFlow's import-time C++ log lines off a terminal.

Importing TensorFlow prints, on every machine without CUDA, lines such as
`WARNING: All log messages before absl::InitializeLog() is called are written to STDERR` and
`I0000 ... cudart_stub.cc:31] Could not find cuda drivers on your machine`. They come from C++
before TensorFlow reads `TF_CPP_MIN_LOG_LEVEL`, so no setting hides them, and a new user reads
them as errors. `quiet_tensorflow_import()` (the CLI calls it unless `--verbose`) points the
process's stderr at /dev/null while the `tensorflow` package itself executes, the first time
anything imports it, wherever that happens; an import that fails still raises its exception.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Iterator
from types import ModuleType


@contextlib.contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2 (C++ and Python writes alike) goes to /dev/null inside the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds `tensorflow` as the normal path finder does, and runs it with stderr silenced."""

    def find_spec(self, name: str, path=None, target: ModuleType | None = None):
        if name != "tensorflow":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_quietly(module: ModuleType) -> None:
            # only now: `importlib.util.find_spec("tensorflow")` (is it installed?) also
            # asks this finder, and must not use up the silence of the real import
            remove_quiet_import()
            with stderr_silenced():
                run(module)

        spec.loader.exec_module = exec_quietly  # this spec's loader only
        return spec


_FINDER = _QuietTensorFlowFinder()


def quiet_tensorflow_import() -> None:
    """Silence TensorFlow's import-time log lines from now on (no-op once it is imported)."""
    if "tensorflow" not in sys.modules and _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


def remove_quiet_import() -> None:
    with contextlib.suppress(ValueError):
        sys.meta_path.remove(_FINDER)

"""What the libraries we import say on their own, silenced: transformers' "Loading weights"
bars and chatty loggers, and lines printed while a package is imported (pyvene's notice that
its optional nnsight backend is not installed, on every import).

A script's ``runtime.setup_logging`` calls :func:`quiet_libraries`, and so does every worker
process a stage spawns (they do not run setup_logging).
"""
from __future__ import annotations

import logging
import sys


def quiet_libraries() -> None:
    """transformers' bars off, the chatty loggers at WARNING, pyvene's import notice
    filtered."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:
        pass
    for noisy in ("transformers", "pyvene", "matplotlib", "PIL", "urllib3", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    quiet_import_notices()


# Lines a library prints (not logs) while it is imported, and which say nothing about a run:
# pyvene announces on every import that its optional nnsight backend is not installed.
IMPORT_NOTICES = {"pyvene": ("nnsight is not detected",)}


class _QuietImport:
    """A meta-path finder that runs a package's first import with the known notices of
    IMPORT_NOTICES dropped from its stdout (every other line still printed)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in IMPORT_NOTICES:
            return None
        import importlib.machinery

        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _FilteredLoader(spec.loader, IMPORT_NOTICES[fullname])
        return spec


class _FilteredLoader:
    def __init__(self, loader, notices):
        self.loader, self.notices = loader, notices

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        import contextlib
        import io

        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                self.loader.exec_module(module)
        finally:
            for line in printed.getvalue().splitlines(keepends=True):
                if not any(notice in line for notice in self.notices):
                    sys.stdout.write(line)

    def __getattr__(self, name):          # get_resource_reader, is_package, ...
        return getattr(self.loader, name)


def quiet_import_notices() -> None:
    """Filter IMPORT_NOTICES out of the imports still to come (once per process; a package
    already imported has printed them already)."""
    if not any(isinstance(f, _QuietImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietImport())

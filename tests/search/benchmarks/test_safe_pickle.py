"""The restricted unpickler: plain data in, every global refused, bad bytes as one line."""

from __future__ import annotations

import copyreg
import os
import pickle
from collections import OrderedDict
from pathlib import Path

import pytest

from archsmith.errors import ArchsmithError
from archsmith.search.benchmarks.safe_pickle import load_plain, load_plain_file

# what every protocol pickles without a global
BASIC = {
    "421211": {"val_acc": [82.09, 81.6, 82.24], "latency": [0.0139] * 3, "n": 3},
    "nested": [[1, 2.5, -3], {"a": None, "b": True}, (1, "x"), float("inf")],
    "big": 2**80,
    "unicode": "caf\u00e9",
    "empty": [{}, [], ()],
}
# protocol 4 added opcodes for sets and bytes (older ones pickle them through builtins.set and
# _codecs.encode, globals that are refused)
PLAIN = {**BASIC, "sets": [{4, 5}, frozenset({6})], "bytes": b"\x00\xff"}


def _one_line(err: pytest.ExceptionInfo[ArchsmithError]) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_loads_as_pickle_does(protocol: int) -> None:
    obj = PLAIN if protocol >= 4 else BASIC
    data = pickle.dumps(obj, protocol=protocol)
    assert load_plain(data) == pickle.loads(data) == obj


@pytest.mark.parametrize("protocol", [0, 2, 3])
def test_old_protocol_sets_name_a_global(protocol: int) -> None:
    with pytest.raises(ArchsmithError, match=r"refused.*(__builtin__|builtins)\.set"):
        load_plain(pickle.dumps({1, 2}, protocol=protocol))


def test_shared_references_are_kept() -> None:
    inner = [1, 2]
    out = load_plain(pickle.dumps({"a": inner, "b": inner}, protocol=4))
    assert out["a"] is out["b"]


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo pwned",))


class _Point:
    def __init__(self) -> None:
        self.x = 1


@pytest.mark.parametrize(
    ("obj", "named"),
    [
        (_Evil(), "system"),  # os.system via REDUCE (module posix or nt)
        ({"ok": [1], "bad": _Evil()}, "system"),  # hidden inside plain data
        (_Point(), ("_Point", "_reconstructor")),  # any class instance (protocol 0: copyreg)
        (OrderedDict(a=1), "OrderedDict"),  # even a harmless standard-library class
        (os.system, "system"),  # a bare function reference
    ],
)
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_every_global_is_refused(obj: object, named: str | tuple[str, ...], protocol: int) -> None:
    data = pickle.dumps(obj, protocol=protocol)
    with pytest.raises(ArchsmithError) as err:
        load_plain(data, source="evil.pkl")
    text = _one_line(err)
    assert text.startswith("evil.pkl: refused")
    assert any(name in text for name in ((named,) if isinstance(named, str) else named))


def test_copyreg_extension_codes_are_refused() -> None:
    # EXT1 resolves a global through the copyreg registry: it must go through find_class too
    copyreg.add_extension(__name__, "_Point", 240)
    try:
        data = pickle.dumps(_Point(), protocol=2)
    finally:
        copyreg.remove_extension(__name__, "_Point", 240)
    assert b"\x82" in data  # the EXT1 opcode was used
    copyreg.add_extension(__name__, "_Point", 240)
    try:
        with pytest.raises(ArchsmithError, match="refused"):
            load_plain(data)
    finally:
        copyreg.remove_extension(__name__, "_Point", 240)


def test_persistent_ids_are_refused() -> None:
    with pytest.raises(ArchsmithError) as err:
        load_plain(b"\x80\x04Pabc\n.")  # PERSID "abc", STOP
    assert "not a valid pickle" in _one_line(err)


@pytest.mark.parametrize("cut", [1, 2, 10, -1])
def test_truncated_data_is_one_line(cut: int) -> None:
    data = pickle.dumps(PLAIN, protocol=4)
    with pytest.raises(ArchsmithError) as err:
        load_plain(data[:cut], source="t.pkl")
    assert _one_line(err).startswith("t.pkl: not a valid pickle")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a pickle at all",
        b"\x80\x04\x95",
        b"\x80\x04K\x01K\x02K\x03s.",
        b"\x80\x04h\x05.",
        b"\xff" * 64,
    ],
)
def test_garbage_is_one_line(data: bytes) -> None:
    with pytest.raises(ArchsmithError) as err:
        load_plain(data)
    assert "not a valid pickle" in _one_line(err)


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(ArchsmithError, match="bytes after its end"):
        load_plain(pickle.dumps([1, 2], protocol=4) + b"junk")


def test_file_helper(tmp_path: Path) -> None:
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps(PLAIN, protocol=4))
    assert load_plain_file(good) == PLAIN
    with pytest.raises(ArchsmithError) as err:
        load_plain_file(tmp_path / "missing.pkl")
    assert "cannot read" in _one_line(err)
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(ArchsmithError) as err:
        load_plain_file(bad)
    assert "bad.pkl" in _one_line(err)

"""User spaces from files (``FILE.py:FUNCTION``), the checks on what a space returns, and
rebuilding a design from its parameters; every bad input is one line."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from archsmith.errors import ArchsmithError
from archsmith.search.spaces import (
    CheckedSpace,
    check_spec_names,
    load_space,
    rebuild,
    vector_space,
)
from archsmith.spec import BlockSpec, Spec
from archsmith.tasks import get_task

GOOD = """
import dataclasses
import optuna
from archsmith.spec import BlockSpec, Spec

@dataclasses.dataclass
class Widths:  # a dataclass: the module must be in sys.modules while it runs
    low: int = 8

def space(trial, task):
    width = trial.suggest_int("width", Widths().low, 32, step=8)
    norm = trial.suggest_categorical("norm", ["layernorm", "none"])
    return Spec(task=task.name, model="mlp", options={"hidden": [width], "norm_layer": norm})

def as_dict(trial, task):
    return {"model": "mlp", "options": {"hidden": [trial.suggest_int("w", 4, 8)]}}

def typo(trial, task):
    norm = trial.suggest_categorical("norm", ["layrnorm"])
    return Spec(task=task.name, model="mlp", options={"hidden": [8], "norm_layer": norm})

def blocks(trial, task):
    act = trial.suggest_categorical("act", ["rleu"])
    return Spec(blocks=[BlockSpec("linear", {"out_features": 8}), BlockSpec("act", {"layer": act})])

def not_a_spec(trial, task):
    return 42

def one_argument(trial):
    return None

NUMBER = 3
"""


def write(tmp_path: Path, text: str, name: str = "space.py") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one_line_error(ref: str) -> str:
    with pytest.raises(ArchsmithError) as err:
        load_space(ref)
    message = str(err.value)
    assert "\n" not in message
    return message


def test_a_space_file_loads_and_its_designs_build(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    space = load_space(f"{path}:space")
    assert isinstance(space, CheckedSpace) and space.label == "space.py:space"
    task = get_task("digits-flat")
    spec = space(optuna.trial.FixedTrial({"width": 24, "norm": "layernorm"}), task)
    assert spec.options == {"hidden": [24], "norm_layer": "layernorm"}
    assert rebuild(space, {"width": 24, "norm": "layernorm"}, task) == spec
    from_dict = load_space(f"{path}:as_dict")(optuna.trial.FixedTrial({"w": 5}), task)
    assert isinstance(from_dict, Spec) and from_dict.options == {"hidden": [5]}


def test_two_files_of_one_name_do_not_collide(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write(tmp_path / "a", "def space(t, k):\n    return 'a'\n")
    b = write(tmp_path / "b", "def space(t, k):\n    return 'b'\n")
    assert load_space(f"{a}:space").fn(None, None) == "a"
    assert load_space(f"{b}:space").fn(None, None) == "b"


def test_bad_space_references_are_one_line_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    broken = write(tmp_path, "def space(trial, task)\n    return 1\n", "broken.py")
    raising = write(tmp_path, "import no_such_module_here\n", "raising.py")
    cases = [
        (f"{tmp_path}/nope.py:space", r"cannot load '.*nope\.py': no such file"),
        (f"{tmp_path}:space", "is a directory"),
        (str(path), "expected FILE.py:FUNCTION"),
        (f"{path}:", "expected FILE.py:FUNCTION"),
        (f"{broken}:space", r"'.*broken\.py' has a syntax error at line 1"),
        (f"{raising}:space", r"importing '.*raising\.py' failed: ModuleNotFoundError"),
        (f"{path}:missing", r"'.*space\.py' has no function 'missing' \(functions: .*space"),
        (f"{path}:NUMBER", r"'NUMBER' in '.*space\.py' is not a function \(it is a int\)"),
        (f"{path}:one_argument", r"'one_argument' in '.*space\.py' must take \(trial, task\)"),
    ]
    for ref, pattern in cases:
        message = one_line_error(ref)
        assert message.startswith("--space: "), message
        assert re.search(pattern, message), (ref, message)


def test_a_space_that_names_an_unregistered_layer_names_the_parameter(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    task = get_task("digits-flat")
    study = optuna.create_study()
    with pytest.raises(ArchsmithError) as err:
        load_space(f"{path}:typo")(study.ask(), task)
    message = str(err.value)
    assert message.startswith("space space.py:typo: parameter 'norm' chose options.norm_layer")
    assert "'layrnorm', which is not a registered norm layer (did you mean 'layernorm'" in message
    assert "\n" not in message
    with pytest.raises(ArchsmithError, match=r"parameter 'act' chose blocks\[1\]\.layer = 'rleu'"):
        load_space(f"{path}:blocks")(study.ask(), task)
    with pytest.raises(ArchsmithError, match="must return an archsmith Spec, got int"):
        load_space(f"{path}:not_a_spec")(study.ask(), task)


def test_check_spec_names_without_parameters_names_the_field() -> None:
    check_spec_names(Spec(model="transformer", options={"attn_layer": "gla", "mlp_layer": "moe"}))
    bad = [
        (Spec(model="mpl"), r"spec: model = 'mpl', which is not a registered model \(did you mean 'mlp'"),
        (Spec(model="rev_cnn", options={"norm_layer": "evonorm"}), r"options\.norm_layer = 'evonorm'.*norm layer"),
        (Spec(model="transformer", options={"attn_layer": "flash"}), r"options\.attn_layer = 'flash'.*attn layer"),
        (Spec(blocks=[BlockSpec("conv", {"out_channels": 4}), BlockSpec("pooling")]), r"blocks\[1\]\.type = 'pooling'.*block \(did you mean 'pool'"),
        (Spec(blocks=[BlockSpec("transformer", {"mlp_layer": "mixture"})]), r"blocks\[0\]\.mlp_layer = 'mixture'.*mlp layer"),
    ]  # fmt: skip
    for spec, pattern in bad:
        with pytest.raises(ArchsmithError, match=pattern):
            check_spec_names(spec)


def test_rebuild_names_missing_and_stale_parameters() -> None:
    task = get_task("digits-flat")
    params = {"model": "mlp", "width": 32, "depth": 2, "norm": "layernorm", "act": "relu"}
    with pytest.raises(
        ArchsmithError, match=r"rebuild: the parameters lack 'linear'.*choices: 'btt'"
    ):
        rebuild(vector_space, params, task)
    stale = {**params, "linear": "dense", "norm": "evonorm"}  # a norm since unregistered
    with pytest.raises(ArchsmithError, match=r"rebuild: parameter 'norm' = 'evonorm' is outside"):
        rebuild(vector_space, stale, task)
    with pytest.raises(
        ArchsmithError, match=r"parameter 'width' = 40 is outside .*range 16\.\.128 step 16"
    ):
        rebuild(vector_space, {**params, "linear": "dense", "width": 40}, task)
    # unused parameters (a branch not taken) are fine
    spec = rebuild(vector_space, {**params, "linear": "dense", "gate": "joint"}, task)
    assert spec.options["hidden"] == [32, 32]

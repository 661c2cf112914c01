"""A small user space for the search's tests: an MLP on a vector task (trains in a second)."""

import optuna

from archsmith.spec import Spec
from archsmith.tasks import Task


def space(trial: optuna.Trial, task: Task) -> Spec:
    width = trial.suggest_categorical("width", [8, 16, 32, 64])
    depth = trial.suggest_int("depth", 1, 2)
    return Spec(task=task.name, model="mlp", options={"hidden": [width] * depth})


def unregistered(trial: optuna.Trial, task: Task) -> Spec:
    layer = trial.suggest_categorical("norm", ["layrnorm"])
    return Spec(task=task.name, model="mlp", options={"hidden": [8], "norm_layer": layer})

"""The best design and the Pareto front, against the hand-known answer, a naive dominance check
written from the definition, and Optuna's own ``best_trial`` / ``best_trials``."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import torch
from report_studies import HandStudy, journal

from archsmith.build import build
from archsmith.search import records
from archsmith.search.config import SearchConfig
from archsmith.search.report import best_of, pareto_front, write_best_spec
from archsmith.search.report.best import best_trial, is_feasible, nondominated
from archsmith.spec import load_spec


def test_single_objective_best_is_the_hand_known_one(hand: HandStudy) -> None:
    best = best_trial(hand.study)
    # #2 and #6 tie on the metric; #6 has fewer parameters (4,608 < 8,192); #7 is higher but
    # over the params budget
    assert best is not None and best.number == hand.best == 6
    # Optuna's constrained best trial: the same value (it too skips #7), the earlier of the tie
    assert (best.value, hand.study.best_trial.number) == (hand.study.best_trial.value, 2)
    kinds = {e.number: e.kind for e in hand.expected}
    assert {t.number for t in hand.study.get_trials() if is_feasible(t)} == {
        n for n, k in kinds.items() if k == "complete"
    }


def naive_front(hand: HandStudy) -> set[int]:
    """The definition: a feasible trial no feasible trial is at least as good as everywhere
    and strictly better somewhere (metric up, params and flops down)."""
    done = [e for e in hand.expected if e.kind == "complete"]

    def better_or_equal(a: list[float], b: list[float]) -> bool:
        return a[0] >= b[0] and a[1] <= b[1] and a[2] <= b[2]

    front = set()
    for e in done:
        assert e.values is not None
        beaten = False
        for o in done:
            assert o.values is not None
            if better_or_equal(o.values, e.values) and o.values != e.values:
                beaten = True
        if not beaten:
            front.add(e.number)
    return front


def test_pareto_front_matches_the_definition_and_optuna(pareto: HandStudy) -> None:
    front = pareto_front(pareto.study)
    numbers = [t.number for t in front]
    assert len(set(numbers)) == len(numbers)
    assert set(numbers) == naive_front(pareto)
    # Optuna's front with constraints: every trial here carries them, so feasibility agrees
    assert set(numbers) == {t.number for t in pareto.study.best_trials}
    metrics = [t.values[0] for t in front]
    assert metrics == sorted(metrics, reverse=True)  # best metric first
    best = best_of(pareto.study.get_trials(), ["maximize", "minimize", "minimize"])
    assert best is not None and best.number == numbers[0]
    top = [t for t in front if t.values[0] == max(metrics)]
    # ties on the metric go to the cheaper design, then the earlier trial
    assert best.number == min(top, key=lambda t: (t.values[1], t.values[2], t.number)).number


def test_a_tie_on_the_metric_goes_to_the_cheaper_then_the_earlier_design() -> None:
    study = optuna.create_study(directions=["maximize", "minimize", "minimize"])
    # hand-made: #0 and #2 are the same point, #1 is cheaper in params (the first cost), #3 is
    # the cheapest but scores less; all four are on the front
    for values in ([0.9, 30_000, 1e6], [0.9, 20_000, 5e6], [0.9, 30_000, 1e6], [0.8, 1_000, 1e5]):
        study.tell(study.ask(), values)
    assert [t.number for t in pareto_front(study)] == [1, 0, 2, 3]


def test_nondominated_keeps_equal_points() -> None:
    # hand-computed (larger is better): (1, 1) twice, neither dominates the other; (0, 2) is
    # better in the second coordinate; (0, 0) and (1, 0) are dominated by (1, 1)
    assert nondominated([(1, 1), (0, 0), (1, 1), (0, 2), (1, 0)]) == [0, 2, 3]
    assert nondominated([]) == []


def test_best_spec_is_the_best_trials_spec_and_builds(hand: HandStudy, tmp_path: Path) -> None:
    path = write_best_spec(hand.study, tmp_path / "best_spec.json")
    assert path is not None
    assert json.loads(path.read_text()) == hand.best_spec
    spec = load_spec(path)  # what `archsmith train --spec` reads
    model = build(spec)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)  # digits: 10 classes


def test_no_best_spec_for_a_benchmark_or_before_a_feasible_trial(
    bench: HandStudy, tmp_path: Path
) -> None:
    assert write_best_spec(bench.study, tmp_path / "b.json") is None
    empty = optuna.create_study(storage=journal(tmp_path / "e.log"), direction="maximize")
    empty.set_user_attr(records.STUDY_CONFIG, SearchConfig(task="digits").to_dict())
    assert write_best_spec(empty, tmp_path / "e.json") is None
    assert not (tmp_path / "b.json").exists() and not (tmp_path / "e.json").exists()


def test_a_spec_without_a_task_gets_the_searchs(tmp_path: Path) -> None:
    config = SearchConfig(task="digits", task_options={"seed": 3})
    study = optuna.create_study(storage=journal(tmp_path / "j.log"), direction="maximize")
    study.set_user_attr(records.STUDY_CONFIG, config.to_dict())
    trial = study.ask()
    trial.set_user_attr(records.SPEC, {"archsmith_spec": 1, "model": "mlp", "options": {}})
    study.tell(trial, 0.5)
    path = write_best_spec(study, tmp_path / "s.json")
    assert path is not None
    got = json.loads(path.read_text())
    assert (got["task"], got["task_options"], got["model"]) == ("digits", {"seed": 3}, "mlp")


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_direction_decides_the_best(tmp_path: Path, direction: str) -> None:
    study = optuna.create_study(storage=journal(tmp_path / "j.log"), direction=direction)
    for value in (0.3, 0.1, 0.7):
        study.tell(study.ask(), value)
    best = best_trial(study)
    assert best is not None and best.number == study.best_trial.number
    assert best.value == (0.7 if direction == "maximize" else 0.1)

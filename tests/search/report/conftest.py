"""Fixtures: the hand-made studies of ``report_studies`` in a fresh journal storage each."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the tests import report_studies by name

from report_studies import (
    HandStudy,
    benchmark_study,
    pareto_study,
    task_study,
)


@pytest.fixture(scope="module")
def hand(tmp_path_factory: pytest.TempPathFactory) -> HandStudy:
    """Shared by a module's tests, which only read it (journal writes fsync: ~1 s a study)."""
    return task_study(tmp_path_factory.mktemp("hand"))


@pytest.fixture
def fresh_hand(tmp_path: Path) -> HandStudy:
    """A task study of the test's own, to add trials to."""
    return task_study(tmp_path)


@pytest.fixture
def pareto(tmp_path: Path) -> HandStudy:
    return pareto_study(tmp_path)


@pytest.fixture
def bench(tmp_path: Path) -> HandStudy:
    return benchmark_study(tmp_path)

"""The report directory and its page: parsed with the standard library's HTML parser, every
embedded plot decoded with Pillow, and the study's own text shown escaped."""

from __future__ import annotations

import base64
import csv
import io
import json
from html import escape
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pytest
from PIL import Image
from report_studies import NASTY, HandStudy, journal

from archsmith.search import records
from archsmith.search.config import SearchConfig
from archsmith.search.report import build_report, pareto_front, trials_frame
from archsmith.search.report.html import TOP
from archsmith.search.report.plots import _spans_decades

N_PLOTS = 4  # Pareto front, metric against each cost, best so far, budget rejections


class Page(HTMLParser):
    """Collects what the tests look at: images, scripts, outside links, rows and text."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.scripts = 0
        self.outside: list[str] = []
        self.front_rows = 0
        self.text: list[str] = []
        self.headings: list[str] = []
        self._heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key) and not str(a[key]).startswith("data:"):
                self.outside.append(str(a[key]))
        if tag == "link":
            self.outside.append(str(a))
        if tag == "tr" and a.get("class") == "front":
            self.front_rows += 1
        self._heading = tag == "h2"

    def handle_endtag(self, tag: str) -> None:
        self._heading = False

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._heading:
            self.headings.append(data)


def parse(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    page.close()
    return page


def decoded_pngs(page: Page) -> list[Image.Image]:
    out = []
    for src in page.images:
        head, _, data = src.partition(",")
        assert head == "data:image/png;base64"
        image = Image.open(io.BytesIO(base64.b64decode(data, validate=True)))
        image.load()  # decodes every pixel: a truncated or corrupt PNG raises here
        assert image.format == "PNG"
        out.append(image)
    return out


@pytest.fixture(scope="module")
def built(hand: HandStudy, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Page]:
    """The hand study's report, built once for the module's read-only checks."""
    index = build_report(hand.study, tmp_path_factory.mktemp("report") / "run")
    return index, parse(index)


def test_report_directory_layout(hand: HandStudy, built: tuple[Path, Page]) -> None:
    index, _ = built
    run = index.parent.parent
    assert index == run / "report" / "index.html"
    assert json.loads((run / "best_spec.json").read_text()) == hand.best_spec
    with open(run / "trials.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == len(hand.expected)
    assert list(run.rglob(".*")) == []  # every file was renamed into place, no temp left


def test_page_is_self_contained_with_decodable_plots(built: tuple[Path, Page]) -> None:
    _, page = built
    assert page.scripts == 0 and page.outside == []
    images = decoded_pngs(page)
    assert len(images) == N_PLOTS
    assert all(w > 100 and h > 100 for w, h in (im.size for im in images))
    text = "".join(page.text)
    assert "Best design" in page.headings and "Plots" in page.headings
    assert "#6" in text and "act=relu, depth=2, width=48" in text  # the best design's params


def test_text_from_the_study_is_escaped(built: tuple[Path, Page]) -> None:
    index, page = built
    raw = index.read_text(encoding="utf-8")
    assert NASTY not in raw and escape(NASTY) in raw  # the failed trial's error
    assert "<gelu&>" not in raw and escape("<gelu&>") in raw  # a categorical parameter
    assert page.scripts == 0  # the error's <script> stayed text
    assert NASTY in "".join(page.text)  # and reads back as the message itself


def test_running_trials_are_shown_as_running(built: tuple[Path, Page]) -> None:
    _, page = built
    assert "Running now" in page.headings
    text = "".join(page.text)
    assert "#10running" in text.replace(" ", "")  # the running trial's row: number, state
    assert "still running or queued" in text


def test_counts_are_the_hand_counts(built: tuple[Path, Page]) -> None:
    text = "".join(built[1].text)
    # 5 complete (one over a budget), 2 rejected (one per budget), 1 pruned, 1 failed; the
    # stale trial is not counted (its retry is queued): 7 evaluated of the 10 asked for
    assert "trials evaluated7 of 10" in text
    assert "rejected by budget2 (activation_mb: 1, params: 1)" in text
    assert "complete5 (1 of them over a budget" in text


@pytest.mark.parametrize("running", [0, 1])
def test_a_study_with_no_finished_trial(tmp_path: Path, running: int) -> None:
    study = optuna.create_study(storage=journal(tmp_path / "j.log"), direction="maximize")
    study.set_user_attr(records.STUDY_CONFIG, SearchConfig(task="digits").to_dict())
    for _ in range(running):
        study.ask()  # running, not finished
    index = build_report(study, tmp_path / "run")
    page = parse(index)
    assert "No trial has finished yet." in "".join(page.text)
    assert len(decoded_pngs(page)) == N_PLOTS  # the same sections, saying there is nothing yet
    assert not (tmp_path / "run" / "best_spec.json").exists()
    with open(tmp_path / "run" / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["number"], r["state"]) for r in rows] == [("0", "RUNNING")] * running


def test_a_rejection_without_its_budget_is_counted_as_unknown(tmp_path: Path) -> None:
    study = optuna.create_study(storage=journal(tmp_path / "j.log"), direction="maximize")
    trial = study.ask()
    trial.set_user_attr(records.REJECTED, "over something")  # a hand-written, older record
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    page = parse(build_report(study, tmp_path))
    assert "rejected by budget1 (?: 1)" in "".join(page.text)
    assert len(decoded_pngs(page)) == N_PLOTS


def test_benchmark_report_has_regret_and_no_spec(bench: HandStudy, tmp_path: Path) -> None:
    page = parse(build_report(bench.study, tmp_path))
    assert len(decoded_pngs(page)) == N_PLOTS
    assert "regret" in page.text
    assert not (tmp_path / "best_spec.json").exists()


def test_pareto_report_highlights_the_front(pareto: HandStudy, tmp_path: Path) -> None:
    page = parse(build_report(pareto.study, tmp_path))
    assert page.front_rows == min(TOP, len(pareto_front(pareto.study)))
    assert len(decoded_pngs(page)) == N_PLOTS


def test_rebuilt_from_the_storage_alone_during_a_run(fresh_hand: HandStudy, tmp_path: Path) -> None:
    study = fresh_hand.study
    # another process (``archsmith report``) opens the same journal with nothing but its path
    again = optuna.load_study(study_name=study.study_name, storage=journal(fresh_hand.storage_path))
    assert trials_frame(again).to_csv() == trials_frame(study).to_csv()
    # the run goes on: the queued retry of #9 runs and fails, then a new trial starts
    again.tell(again.ask(), state=optuna.trial.TrialState.FAIL)
    again.ask()
    third = build_report(study, tmp_path / "a").parent.parent / "trials.csv"
    with open(third, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["number"], r["state"]) for r in rows[-2:]] == [("11", "FAIL"), ("12", "RUNNING")]


@pytest.mark.parametrize(
    ("values", "log"),
    [([1, 10, 100], True), ([1, 99], False), ([0, 10, 1000], False), ([5], False)],
)
def test_log_axis_only_when_a_cost_spans_two_decades(values: list[float], log: bool) -> None:
    import pandas as pd

    assert _spans_decades(pd.Series(values, dtype=float)) is log

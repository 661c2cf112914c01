"""The report in a real browser: headless Chromium (the Debian package ``chromium``).

Three checks, each with a control showing it can fail:

1. **No console messages.** Chromium run with ``--enable-logging=stderr`` writes every console
   message of the page (uncaught errors, Content-Security-Policy violations, blocked loads) as
   a ``...:CONSOLE...`` line. The report is static, so *any* such line is a failure.
2. **The plots load.** ``--dump-dom`` prints the DOM only, not whether an image decoded, and
   the report runs no script (its CSP forbids one). So the test loads a *copy* of the page with
   the CSP tag removed and one probe script added that, on ``load`` (fired after every image
   has loaded or failed), writes each image's ``naturalWidth`` / ``naturalHeight`` into the DOM;
   ``--dump-dom`` then prints them. Each must equal the size Pillow reads from the same bytes:
   a data URI Chromium cannot decode gives 0 x 0.
3. **The screenshot shows them.** A 1280 x 2000 screenshot of the unmodified page must contain
   the Pareto plot's front colour (pixels only a rendered plot has), beside the check by eye.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import optuna
import pytest
from PIL import Image
from report_studies import HandStudy, journal

from archsmith.search import records
from archsmith.search.config import SearchConfig
from archsmith.search.report import build_report

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs headless Chromium: apt-get install chromium (scripts/system-deps.sh)",
    ),
]

_PROBE = """<script>
window.addEventListener("load", () => {
  const sizes = [...document.images].map(i => [i.naturalWidth, i.naturalHeight]);
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(sizes);
  document.body.appendChild(out);
});
</script>"""
_CSP_TAG = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>')
FRONT_RGB = (0xD1, 0x49, 0x5B)  # plots._FRONT: the front's markers and line


def chromium(profile: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """One headless Chromium run; a profile of the test's own, so parallel tests don't share."""
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={profile}",
        *args,
        url,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def probed_sizes(page: Path, tmp_path: Path) -> tuple[list[list[int]], list[str]]:
    """``[naturalWidth, naturalHeight]`` of each image of ``page`` as Chromium loads it, and the
    console lines of that run (docstring, check 2)."""
    html = _CSP_TAG.sub("", page.read_text(encoding="utf-8"))
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", _PROBE + "</body>"), encoding="utf-8")
    done = chromium(tmp_path / "profile-probe", probe.as_uri(), "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout)
    assert found is not None, "the probe did not run: " + done.stdout[-500:]
    return json.loads(found.group(1)), console_lines(done.stderr)


def embedded_sizes(page: Path) -> list[tuple[int, int]]:
    sources = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page.read_text())
    return [Image.open(io.BytesIO(base64.b64decode(s))).size for s in sources]


def test_the_checks_catch_a_broken_page(tmp_path: Path) -> None:
    """Controls: a script error is a console line, an undecodable image probes as 0 x 0."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>'
        '<img src="data:image/png;base64,iVBORw0KGgoAAAAA">'
        "<script>not_defined()</script></body></html>"
    )
    done = chromium(tmp_path / "profile", bad.as_uri(), "--dump-dom")
    assert any("Uncaught ReferenceError" in line for line in console_lines(done.stderr))
    sizes, _ = probed_sizes(bad, tmp_path)
    assert sizes == [[0, 0]]


def empty_study(tmp_path: Path) -> optuna.Study:
    study = optuna.create_study(storage=journal(tmp_path / "e.log"), direction="maximize")
    study.set_user_attr(records.STUDY_CONFIG, SearchConfig(task="digits").to_dict())
    return study


@pytest.mark.parametrize("which", ["hand", "pareto", "empty"])
def test_report_opens_in_chromium_with_its_plots(
    which: str, hand: HandStudy, pareto: HandStudy, tmp_path: Path
) -> None:
    study = {"hand": hand.study, "pareto": pareto.study}.get(which) or empty_study(tmp_path)
    page = build_report(study, tmp_path / "run")
    assert len(_CSP_TAG.findall(page.read_text())) == 1  # the page runs under its CSP
    shot = tmp_path / "screenshot.png"
    done = chromium(
        tmp_path / "profile", page.as_uri(), f"--screenshot={shot}", "--window-size=1280,2000"
    )
    assert console_lines(done.stderr) == []  # check 1: the page itself, CSP in force
    sizes, console = probed_sizes(page, tmp_path)
    assert console == []
    expected = embedded_sizes(page)
    assert len(expected) == 4
    assert [tuple(s) for s in sizes] == expected  # check 2: every plot decoded, full size
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape == (2000, 1280, 3)
    front = np.all(np.abs(image.astype(int) - FRONT_RGB) <= 8, axis=-1).sum()
    if which == "empty":
        assert front == 0  # nothing finished: no front drawn (the control for the pixel check)
    else:
        assert front > 200  # check 3: the Pareto plot is on screen

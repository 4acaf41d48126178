"""The HIT templates in headless Chromium: nothing can be submitted before every clip has
played to the end and every question is answered.

The page is the rendered template plus a scenario script; ``chromium --headless --dump-dom``
runs it and prints the DOM, from which the scenario's findings are read. The audio sources
are dummies: the scenario fires the ``ended`` events a finished playback fires. CI installs
Debian's chromium and sets ``MOS_TOOLS_BROWSER_REQUIRED=1``, which turns a missing browser
into a failure instead of a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mos_tools.cli import main
from mos_tools.templates import render

SCENARIO = """
<script>
(function () {
  var log = {};
  var form = document.getElementById("mturk_form");
  var submitted = [];
  form.addEventListener("submit", function (e) {
    submitted.push(!e.defaultPrevented);
    e.preventDefault();  // stay on the page
  });
  function radios(name) { return form.querySelectorAll("input[name='" + name + "']"); }
  function names() {
    var seen = {};
    form.querySelectorAll("input[type=radio]").forEach(function (r) { seen[r.name] = 1; });
    return Object.keys(seen);
  }
  function answerAll() {
    names().forEach(function (n) { radios(n)[radios(n).length - 1].click(); });
  }
  function checked() {
    return names().filter(function (n) {
      return form.querySelector("input[name='" + n + "']:checked") !== null;
    }).length;
  }
  var N = form.querySelectorAll("audio").length;
  log.n_audio = N;
  log.n_questions = names().length;
  log.button_disabled_at_start = document.getElementById("submitButton").disabled;
  answerAll();
  log.answered_before_playing = checked();
  form.requestSubmit();
  log.submit_before_playing = submitted[submitted.length - 1];
  for (var i = 1; i < N; i++) {
    document.getElementById("audio_" + i).dispatchEvent(new Event("ended"));
  }
  answerAll();
  log.answered_all_but_last = checked();
  log.button_disabled_all_but_last = document.getElementById("submitButton").disabled;
  form.requestSubmit();
  log.submit_all_but_last = submitted[submitted.length - 1];
  document.getElementById("audio_" + N).dispatchEvent(new Event("ended"));
  log.button_disabled_played_unanswered = document.getElementById("submitButton").disabled;
  form.requestSubmit();
  log.submit_played_unanswered = submitted[submitted.length - 1];
  answerAll();
  log.button_disabled_complete = document.getElementById("submitButton").disabled;
  form.requestSubmit();
  log.submit_complete = submitted[submitted.length - 1];
  var out = document.createElement("pre");
  out.id = "scenario";
  out.textContent = JSON.stringify(log);
  document.body.appendChild(out);
})();
</script>
</body>"""


def browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    if os.environ.get("MOS_TOOLS_BROWSER_REQUIRED") == "1":
        pytest.fail("MOS_TOOLS_BROWSER_REQUIRED=1 but no chromium on PATH (apt install chromium)")
    pytest.skip("no chromium on PATH (apt install chromium); CI requires it")
    return None


def run_scenario(html: str, tmp_path: Path) -> dict[str, object]:
    exe = browser()
    assert exe is not None
    page = tmp_path / "hit.html"
    html = re.sub(r"\$\{(url_\d+|recording_\d+_url)\}", r"\1.wav", html)  # what MTurk puts in
    page.write_text(html.replace("</body>", SCENARIO))
    result = subprocess.run(
        [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    match = re.search(r'<pre id="scenario">(.*?)</pre>', result.stdout)
    assert match, f"the scenario did not run:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return json.loads(match.group(1).replace("&quot;", '"'))  # type: ignore[no-any-return]


@pytest.mark.parametrize("style", ["mos-tools", "reference"])
@pytest.mark.parametrize(("kind", "n", "questions"), [("music", 3, 6), ("speech", 4, 10)])
def test_the_form_unlocks_only_when_everything_is_played_and_answered(
    kind: str, n: int, questions: int, style: str, tmp_path: Path
) -> None:
    log = run_scenario(render(kind, n, style=style), tmp_path)  # type: ignore[arg-type]
    assert log["n_audio"] == n
    assert log["n_questions"] == questions
    assert log["button_disabled_at_start"] is True
    assert log["answered_before_playing"] == 0  # disabled answers cannot be ticked
    assert log["submit_before_playing"] is False
    # Every clip but the last played: those answers unlock, the per-HIT ones do not.
    per_hit = 2 if kind == "speech" else 0
    assert log["answered_all_but_last"] == questions - per_hit - (questions - per_hit) // n
    assert log["button_disabled_all_but_last"] is True
    assert log["submit_all_but_last"] is False
    assert log["button_disabled_played_unanswered"] is True
    assert log["submit_played_unanswered"] is False
    assert log["button_disabled_complete"] is False
    assert log["submit_complete"] is True


def test_templates_carry_the_mturk_variables_and_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["template", "speech", "3"]) == 0
    html = capsys.readouterr().out
    assert [f"${{url_{i}}}" in html for i in (1, 2, 3)] == [True, True, True]
    assert "${url_4}" not in html
    for name in ("digit_1", "intelligibility_3", 'name="quality"', 'name="diversity"'):
        assert name in html
    music = render("music", 2)
    assert 'name="quality_2"' in music
    assert 'name="musicality_1"' in music
    with pytest.raises(SystemExit) as usage:
        main(["template", "music", "0"])
    assert usage.value.code == 2
    reference = render("music", 2, style="reference")
    assert "${recording_0_url}" in reference
    assert "${recording_1_url}" in reference
    assert 'name="recording_1_musicality"' in reference
    assert "argument n: 0 must be at least 1" in capsys.readouterr().err

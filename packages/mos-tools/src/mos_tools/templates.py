"""``template``: the HIT HTML for N recordings, with MTurk's ``${url_i}`` variables.

- ``music``: per recording, audio fidelity and musicality on 1-5 scales (after Dieleman et
  al. 2018). Answers: ``quality_i``, ``musicality_i``.
- ``speech``: per recording, the digit heard (0-9) and its intelligibility (1-5); once per
  HIT, the average quality (1-5) and the speaker diversity (1-5). Answers: ``digit_i``,
  ``intelligibility_i``, ``quality``, ``diversity``.

Each recording's questions are disabled until its clip has played to the end; the submit
button stays disabled, and a submit is refused, until every clip is played and every
question answered. Paste the file into an MTurk project's layout (or serve it as an
HTMLQuestion); MTurk substitutes ``${url_1}`` ... from the batch CSV.
"""

from __future__ import annotations

from html import escape
from typing import Literal

from .errors import MosError

Kind = Literal["music", "speech"]

_MUSIC = (
    ("quality", "Audio fidelity: how clean is the sound (no noise, crackles, distortion)?"),
    ("musicality", "Musicality: how musical is it (melody, harmony, rhythm)?"),
)
_SCALE = ("1 Bad", "2 Poor", "3 Fair", "4 Good", "5 Excellent")


def _radios(name: str, options: list[tuple[str, str]]) -> str:
    return "\n".join(
        f'        <label><input type="radio" name="{name}" value="{escape(v)}" required> '
        f"{escape(text)}</label>"
        for v, text in options
    )


def _scale(name: str, question: str) -> str:
    opts = [(str(i + 1), label) for i, label in enumerate(_SCALE)]
    return f'      <p class="q">{escape(question)}</p>\n{_radios(name, opts)}'


def render(kind: Kind, n: int) -> str:
    """The HIT HTML for ``n`` recordings."""
    if kind not in ("music", "speech"):
        raise MosError(f"template kind must be music or speech; got {kind!r}")
    if not 1 <= n <= 100:
        raise MosError(f"N must be between 1 and 100 recordings; got {n}")
    blocks = []
    for i in range(1, n + 1):
        if kind == "music":
            questions = "\n".join(_scale(f"{name}_{i}", text) for name, text in _MUSIC)
        else:
            digits = [(str(d), str(d)) for d in range(10)]
            digit = _radios(f"digit_{i}", digits)
            intelligibility = _scale(f"intelligibility_{i}", "How intelligible is the digit?")
            questions = (
                f'      <p class="q">Which digit (0-9) do you hear?</p>\n{digit}\n{intelligibility}'
            )
        blocks.append(
            f"""  <section class="clip">
    <h3>Recording {i}</h3>
    <audio id="audio_{i}" controls preload="auto" src="${{url_{i}}}"></audio>
    <fieldset id="answers_{i}" disabled>
      <legend>Play the whole recording to answer</legend>
{questions}
    </fieldset>
  </section>"""
        )
    overall = ""
    if kind == "speech":
        overall = f"""  <section class="overall">
    <h3>All recordings together</h3>
    <fieldset id="answers_overall" disabled>
      <legend>Play every recording to answer</legend>
{_scale("quality", "Average quality of the recordings")}
{_scale("diversity", "Speaker diversity: how different do the speakers sound?")}
    </fieldset>
  </section>"""
    title = "Rate these music recordings" if kind == "music" else "Rate these spoken digits"
    return f"""<!DOCTYPE html>
<!-- mos-tools template {kind} {n}: MTurk substitutes ${{url_1}} ... ${{url_{n}}} -->
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ font-family: sans-serif; max-width: 52em; margin: 1em auto; }}
  section {{ border: 1px solid #ccc; padding: 0.5em 1em; margin: 1em 0; }}
  fieldset[disabled] {{ opacity: 0.5; }}
  label {{ margin-right: 1em; white-space: nowrap; }}
  #status {{ color: #a00; }}
</style>
</head>
<body>
<h2>{title}</h2>
<p>Listen to each recording to the end with headphones, then answer its questions. The
submit button unlocks when every recording has been played and every question answered.</p>
<form id="mturk_form" method="post" action="https://www.mturk.com/mturk/externalSubmit">
  <input type="hidden" id="assignmentId" name="assignmentId" value="">
{chr(10).join(blocks)}
{overall}
  <p id="status" role="status"></p>
  <input type="submit" id="submitButton" value="Submit" disabled>
</form>
<script>
(function () {{
  "use strict";
  var N = {n};
  var form = document.getElementById("mturk_form");
  var submit = document.getElementById("submitButton");
  var status = document.getElementById("status");
  var played = [];
  var params = new URLSearchParams(window.location.search);
  document.getElementById("assignmentId").value = params.get("assignmentId") || "";
  if (params.get("turkSubmitTo")) {{
    form.action = params.get("turkSubmitTo") + "/mturk/externalSubmit";
  }}
  function names() {{
    var seen = {{}};
    Array.prototype.forEach.call(form.querySelectorAll("input[type=radio]"), function (r) {{
      seen[r.name] = true;
    }});
    return Object.keys(seen);
  }}
  function answered(name) {{
    return form.querySelector("input[name='" + name + "']:checked") !== null;
  }}
  function complete() {{
    for (var i = 1; i <= N; i++) {{ if (!played[i]) return false; }}
    return names().every(answered);
  }}
  function update() {{
    var all = true;
    for (var i = 1; i <= N; i++) {{
      document.getElementById("answers_" + i).disabled = !played[i];
      all = all && !!played[i];
    }}
    var overall = document.getElementById("answers_overall");
    if (overall) overall.disabled = !all;
    submit.disabled = !complete();
    status.textContent = submit.disabled ? "Play every recording and answer every question." : "";
  }}
  for (var i = 1; i <= N; i++) {{
    (function (k) {{
      document.getElementById("audio_" + k).addEventListener("ended", function () {{
        played[k] = true;
        update();
      }});
    }})(i);
  }}
  form.addEventListener("change", update);
  form.addEventListener("submit", function (event) {{
    if (!complete()) {{
      event.preventDefault();
      update();
    }}
  }});
  window.mosTemplate = {{ complete: complete, update: update }};
  update();
}})();
</script>
</body>
</html>
"""

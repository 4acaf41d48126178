"""``template``: the HIT HTML for N recordings, with MTurk's ``${url_i}`` variables.

- ``music``: per recording, audio fidelity and musicality on 1-5 scales (after Dieleman et
  al. 2018). Answers: ``quality_i``, ``musicality_i``.
- ``speech``: per recording, the digit heard (0-9) and its intelligibility (1-5); once per
  HIT, the average quality (1-5) and the speaker diversity (1-5). Answers: ``digit_i``,
  ``intelligibility_i``, ``quality``, ``diversity``.

``style="reference"`` names the fields as the reference's templates do: the clip URLs
``${recording_0_url}`` ... (from 0) and the answers ``recording_<i>_<question>``; per-HIT
answers keep their names. ``score`` reads either.

Each recording's questions are disabled until its clip has played to the end; the submit
button stays disabled, and a submit is refused, until every clip is played and every
question answered. Paste the file into an MTurk project's layout (or serve it as an
HTMLQuestion); MTurk substitutes ``${url_1}`` ... from the batch CSV. ``mos-tools serve``
renders the same page with the clips' own addresses, its form action and its hidden fields.
Everything placed in the page is HTML-escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Literal

from .errors import MosError

Kind = Literal["music", "speech"]
FieldStyle = Literal["mos-tools", "reference"]


def field_name(style: FieldStyle, question: str, k: int) -> str:
    """The answer field of recording ``k`` (counted from 1) for ``question``."""
    return f"recording_{k - 1}_{question}" if style == "reference" else f"{question}_{k}"


def url_variable(style: FieldStyle, k: int) -> str:
    """The batch-CSV column of recording ``k`` (counted from 1)."""
    return f"recording_{k - 1}_url" if style == "reference" else f"url_{k}"


_MUSIC = (
    ("quality", "Audio fidelity: how clean is the sound (no noise, crackles, distortion)?"),
    ("musicality", "Musicality: how musical is it (melody, harmony, rhythm)?"),
)
_SCALE = ("1 Bad", "2 Poor", "3 Fair", "4 Good", "5 Excellent")
MTURK_SUBMIT = "https://www.mturk.com/mturk/externalSubmit"
# On MTurk the page learns its assignment and where to submit from its query string.
_MTURK_SCRIPT = """  var params = new URLSearchParams(window.location.search);
  document.getElementById("assignmentId").value = params.get("assignmentId") || "";
  if (params.get("turkSubmitTo")) {
    form.action = params.get("turkSubmitTo") + "/mturk/externalSubmit";
  }"""


def _radios(name: str, options: list[tuple[str, str]], chosen: str | None) -> str:
    return "\n".join(
        f'        <label><input type="radio" name="{escape(name)}" value="{escape(v)}" required'
        f"{' checked' if chosen == v else ''}> {escape(text)}</label>"
        for v, text in options
    )


def _scale(name: str, question: str, chosen: str | None) -> str:
    opts = [(str(i + 1), label) for i, label in enumerate(_SCALE)]
    return f'      <p class="q">{escape(question)}</p>\n{_radios(name, opts, chosen)}'


def render(
    kind: Kind,
    n: int,
    *,
    style: FieldStyle = "mos-tools",
    sources: Sequence[str] | None = None,
    action: str | None = None,
    hidden: Mapping[str, str] | None = None,
    answers: Mapping[str, str] | None = None,
    extra_script: str = "",
) -> str:
    """The HIT HTML for ``n`` recordings.

    Args:
        style: the field names (mos-tools' or the reference's).
        sources: the clips' addresses (default: the batch CSV's ``${...}`` variables).
        action: the form's target (default: MTurk's, or ``turkSubmitTo``).
        hidden: extra hidden fields (``serve``'s CSRF token).
        answers: answers to show as chosen (a saved draft); their clips count as played.
        extra_script: JavaScript appended after the page's own (no ``</script>`` inside).
    """
    if kind not in ("music", "speech"):
        raise MosError(f"template kind must be music or speech; got {kind!r}")
    if not 1 <= n <= 100:
        raise MosError(f"N must be between 1 and 100 recordings; got {n}")
    if style not in ("mos-tools", "reference"):
        raise MosError(f"template style must be mos-tools or reference; got {style!r}")
    if sources is not None and len(sources) != n:
        raise MosError(f"{len(sources)} clip addresses for {n} recordings")
    if "</" in extra_script:
        raise MosError("extra_script may not contain '</'")
    chosen = dict(answers or {})
    blocks = []
    played = []
    for i in range(1, n + 1):
        names = []
        if kind == "music":
            questions = "\n".join(
                _scale(field_name(style, name, i), text, chosen.get(field_name(style, name, i)))
                for name, text in _MUSIC
            )
            names = [field_name(style, name, i) for name, _ in _MUSIC]
        else:
            digits = [(str(d), str(d)) for d in range(10)]
            digit_name = field_name(style, "digit", i)
            intel_name = field_name(style, "intelligibility", i)
            digit = _radios(digit_name, digits, chosen.get(digit_name))
            intelligibility = _scale(
                intel_name, "How intelligible is the digit?", chosen.get(intel_name)
            )
            questions = (
                f'      <p class="q">Which digit (0-9) do you hear?</p>\n{digit}\n{intelligibility}'
            )
            names = [digit_name, intel_name]
        if any(name in chosen for name in names):
            played.append(i)
        src = escape(sources[i - 1]) if sources is not None else f"${{{url_variable(style, i)}}}"
        blocks.append(
            f"""  <section class="clip">
    <h3>Recording {i}</h3>
    <audio id="audio_{i}" controls preload="auto" src="{src}"></audio>
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
{_scale("quality", "Average quality of the recordings", chosen.get("quality"))}
{
            _scale(
                "diversity",
                "Speaker diversity: how different do the speakers sound?",
                chosen.get("diversity"),
            )
        }
    </fieldset>
  </section>"""
    title = "Rate these music recordings" if kind == "music" else "Rate these spoken digits"
    fields = dict(hidden or {})
    if action is None:
        fields = {"assignmentId": "", **fields}
    hidden_fields = "\n".join(
        f'  <input type="hidden" id="{escape(k)}" name="{escape(k)}" value="{escape(v)}">'
        for k, v in fields.items()
    )
    mturk_script = _MTURK_SCRIPT if action is None else ""
    first, last = url_variable(style, 1), url_variable(style, n)
    origin = (
        f"MTurk substitutes ${{{first}}} ... ${{{last}}}" if sources is None else "served locally"
    )
    return f"""<!DOCTYPE html>
<!-- mos-tools template {kind} {n}: {origin} -->
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
<form id="mturk_form" method="post" action="{escape(action or MTURK_SUBMIT)}">
{hidden_fields}
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
  {json.dumps(played)}.forEach(function (k) {{ played[k] = true; }});
{mturk_script}
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
  window.mosTemplate = {{ complete: complete, update: update, played: played }};
  update();
}})();
{extra_script}
</script>
</body>
</html>
"""

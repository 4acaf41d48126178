"""``mos-tools serve``: a local listening-test server for a lab or a small team.

It serves the HITs ``build-hits`` wrote (one or more condition folders), one page per HIT
with the same questions as the MTurk templates; raters join by name (an open study) or by
an invitation link (``mos-tools invite``; once any invitation exists, only invited raters
get in). Each rater rates each HIT at most once, every answer is saved as a draft the moment
it is given, and a submission is one SQLite transaction. ``mos-tools export`` writes the
ratings as an MTurk results CSV, so ``mos-tools score`` works unchanged.

Flask builds the pages, waitress serves them (a production WSGI server, pure Python). Audio
is streamed only for clips the manifests list (no path from the request reaches the file
system); forms carry a CSRF token; the server binds to 127.0.0.1 unless ``--host`` says
otherwise.
"""

from __future__ import annotations

import hmac
import random
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

from .errors import MosError
from .hits import read_manifest
from .store import AlreadyRated, Rater, Store
from .templates import FieldStyle, Kind, field_name, render, url_variable

SCALES = {"quality", "musicality", "intelligibility", "diversity"}


@dataclass
class Hit:
    """One HIT of a study: its clips in page order and the answers its page asks."""

    key: str  # "<condition>/<hit>", unique over the studies served
    condition: str
    clips: list[tuple[str, dict[str, Any]]]  # (uid, clip) in position order
    form: Kind
    style: FieldStyle
    folder: Path

    def fields(self) -> dict[str, set[str]]:
        """Answer field -> its allowed values."""
        scale = {str(v) for v in range(1, 6)}
        out: dict[str, set[str]] = {}
        for k in range(1, len(self.clips) + 1):
            if self.form == "music":
                for q in ("quality", "musicality"):
                    out[field_name(self.style, q, k)] = scale
            else:
                out[field_name(self.style, "digit", k)] = {str(d) for d in range(10)}
                out[field_name(self.style, "intelligibility", k)] = scale
        if self.form == "speech":
            out["quality"] = scale
            out["diversity"] = scale
        return out

    def url_columns(self) -> list[tuple[str, str]]:
        """``(batch-CSV column, URL)`` per clip, as the HIT's page on MTurk had them."""
        return [
            (url_variable(self.style, k), clip["url"]) for k, (_, clip) in enumerate(self.clips, 1)
        ]


@dataclass
class Study:
    """Everything served: the HITs of every condition folder, and where its audio is."""

    hits: dict[str, Hit] = field(default_factory=dict)
    audio: dict[tuple[str, str], Path] = field(default_factory=dict)  # (condition, uid) -> wav

    @classmethod
    def load(cls, folders: Sequence[Path], form: str | None = None) -> Study:
        study = cls()
        for given in folders:
            folder = given.resolve()  # Flask reads relative paths against its own package
            manifest = read_manifest(folder / "manifest.json")
            condition = str(manifest.get("condition", folder.name))
            given_kind = form or str(manifest.get("form", "music"))
            if given_kind not in ("music", "speech"):
                raise MosError(f"{folder}: form {given_kind!r}; choose music or speech (--form)")
            kind: Kind = "speech" if given_kind == "speech" else "music"
            style: FieldStyle = "reference" if manifest.get("style") == "reference" else "mos-tools"
            grouped: dict[str, list[tuple[str, dict[str, Any]]]] = {}
            for uid, clip in manifest["clips"].items():
                grouped.setdefault(clip["hit"], []).append((uid, clip))
                wav = folder / clip["batch"] / f"{uid}.wav"
                if not wav.is_file():
                    raise MosError(f"{wav}: missing (is {folder} the folder build-hits wrote?)")
                study.audio[(condition, uid)] = wav
            for hit, clips in grouped.items():
                clips.sort(key=lambda item: item[1]["position"])
                if kind == "speech" and len({c["method"] for _, c in clips}) > 1:
                    raise MosError(
                        f"{folder}: HIT {hit} mixes methods, which the speech form's per-HIT "
                        "questions cannot score; rebuild with --hit-layout per-method"
                    )
                key = f"{condition}/{hit}"
                if key in study.hits:
                    raise MosError(f"{folder}: condition {condition!r} is served twice")
                study.hits[key] = Hit(key, condition, clips, kind, style, folder)
        if not study.hits:
            raise MosError("no HITs to serve")
        return study

    def order_for(self, rater: Rater) -> list[str]:
        """The HITs in an order of the rater's own (seeded by their id: stable across visits,
        different between raters)."""
        keys = sorted(self.hits)
        random.Random(rater.id).shuffle(keys)
        return keys


def _page(title: str, body: str) -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>body {{ font-family: sans-serif; max-width: 40em; margin: 2em auto; }}
.progress {{ font-size: 1.2em; }} .error {{ color: #a00; }}</style></head>
<body><h2>{escape(title)}</h2>
{body}
</body></html>"""


_DRAFT_SCRIPT = """(function () {
  "use strict";
  var form = document.getElementById("mturk_form");
  var token = document.getElementById("csrf_token").value;
  var target = form.getAttribute("data-draft");
  form.addEventListener("change", function (event) {
    var input = event.target;
    if (!input.name || input.type !== "radio") return;
    var body = {};
    body[input.name] = input.value;
    fetch(target, {method: "POST", credentials: "same-origin",
                   headers: {"Content-Type": "application/json", "X-CSRF-Token": token},
                   body: JSON.stringify(body)}).then(function (r) {
      document.getElementById("saved").textContent = r.ok ? "Answer saved." : "Not saved.";
    });
  });
})();"""


def make_app(study: Study, store_path: Path) -> Any:
    """The Flask application serving ``study`` with its ratings in ``store_path``."""
    from flask import Flask, Response, abort, g, redirect, request, send_file, session

    app = Flask("mos_tools.serve")
    first = Store(store_path)
    app.secret_key = first.ensure_meta("secret", secrets.token_hex(32))
    first.close()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        MAX_CONTENT_LENGTH=256 * 1024,
    )
    local = threading.local()

    def store() -> Store:
        if getattr(local, "store", None) is None:
            local.store = Store(store_path)
        return local.store  # type: ignore[no-any-return]

    def csrf_token() -> str:
        if "csrf" not in session:
            session["csrf"] = secrets.token_urlsafe(24)
        return str(session["csrf"])

    def check_csrf(sent: str | None) -> None:
        expected = session.get("csrf")
        if not expected or not sent or not hmac.compare_digest(str(expected), sent):
            abort(403, "the form's security token is missing or wrong; reload the page")

    def current() -> Rater | None:
        rater_id = session.get("rater")
        return store().rater_by_id(int(rater_id)) if isinstance(rater_id, int) else None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; "
            "style-src 'self' 'unsafe-inline'; media-src 'self'; form-action 'self'"
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(400)
    @app.errorhandler(403)
    @app.errorhandler(404)
    @app.errorhandler(409)
    @app.errorhandler(413)
    def error(exc: Any) -> tuple[str, int]:
        text = escape(str(getattr(exc, "description", exc)))
        page = _page("Listening test", f'<p class="error">{text}</p><p><a href="/">Back</a></p>')
        return page, int(getattr(exc, "code", 400))

    @app.get("/")
    def home() -> Any:
        rater = current()
        if rater is None:
            if store().has_invitations():
                return _page("Listening test", "<p>Open the invitation link you were sent.</p>")
            return _page(
                "Listening test",
                f"""<form method="post" action="/join">
<input type="hidden" name="csrf_token" value="{escape(csrf_token())}">
<label>Your name <input name="name" required maxlength="40" autofocus></label>
<input type="submit" value="Start"></form>""",
            )
        order = study.order_for(rater)
        done = store().rated(rater)
        left = [key for key in order if key not in done]
        progress = (
            f'<p class="progress" id="progress">{len(done & set(order))} of {len(order)} HITs '
            f"rated; {len(left)} remain.</p>"
        )
        if not left:
            return _page(f"Thank you, {rater.name}", progress + "<p>Every HIT is rated.</p>")
        return _page(
            f"Welcome, {rater.name}",
            progress + f'<p><a id="next" href="/hit/{escape(left[0])}">Rate the next HIT</a></p>',
        )

    @app.post("/join")
    def join() -> Any:
        check_csrf(request.form.get("csrf_token"))
        if store().has_invitations():
            abort(403, "this study is by invitation: open the link you were sent")
        try:
            rater = store().join(request.form.get("name", ""))
        except MosError as exc:
            abort(400, str(exc))
        session["rater"] = rater.id
        return redirect("/", code=303)

    @app.get("/join/<token>")
    def invited(token: str) -> Any:
        rater = store().rater_by_token(token)
        if rater is None:
            abort(403, "unknown invitation: ask for a new link")
        session.clear()
        session["rater"] = rater.id
        return redirect("/", code=303)

    def hit_or_404(condition: str, name: str) -> Hit:
        hit = study.hits.get(f"{condition}/{name}")
        if hit is None:
            abort(404, "no such HIT")
        return hit

    def rater_or_403() -> Rater:
        rater = current()
        if rater is None:
            abort(403, "join the study first")
        return rater

    @app.get("/hit/<condition>/<name>")
    def show(condition: str, name: str) -> Any:
        hit = hit_or_404(condition, name)
        rater = rater_or_403()
        if hit.key in store().rated(rater):
            abort(409, "you have rated this HIT already; thank you")
        g.hit = hit
        page = render(
            hit.form,
            len(hit.clips),
            style=hit.style,
            sources=[f"/audio/{hit.condition}/{uid}.wav" for uid, _ in hit.clips],
            action=f"/hit/{hit.key}",
            hidden={"csrf_token": csrf_token()},
            answers=store().draft(rater, hit.key),
            extra_script=_DRAFT_SCRIPT,
        )
        page = page.replace(
            '<form id="mturk_form"', f'<form id="mturk_form" data-draft="/draft/{escape(hit.key)}"'
        )
        page = page.replace(
            '<p id="status" role="status"></p>',
            '<p id="status" role="status"></p><p id="saved"></p>'
            f'<p><a href="/">Progress</a> (rating as {escape(rater.name)})</p>',
        )
        return page

    def answers_of(hit: Hit, given: dict[str, str], *, complete: bool) -> dict[str, str]:
        allowed = hit.fields()
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            abort(400, f"unknown answer field {unknown[0]}")
        bad = sorted(k for k, v in given.items() if v not in allowed[k])
        if bad:
            abort(400, f"{bad[0]}: {given[bad[0]]!r} is not one of the choices")
        missing = sorted(set(allowed) - set(given))
        if complete and missing:
            abort(400, f"answer every question first ({len(missing)} missing, e.g. {missing[0]})")
        return given

    @app.post("/hit/<condition>/<name>")
    def submit(condition: str, name: str) -> Any:
        hit = hit_or_404(condition, name)
        check_csrf(request.form.get("csrf_token"))
        rater = rater_or_403()
        given = {k: v for k, v in request.form.items() if k not in {"csrf_token", "assignmentId"}}
        answers = answers_of(hit, given, complete=True)
        try:
            store().submit(rater, hit.key, hit.url_columns(), answers)
        except AlreadyRated:
            abort(409, "you have rated this HIT already; the first answers count")
        return redirect("/", code=303)

    @app.post("/draft/<condition>/<name>")
    def draft(condition: str, name: str) -> Any:
        hit = hit_or_404(condition, name)
        check_csrf(request.headers.get("X-CSRF-Token"))
        rater = rater_or_403()
        given = request.get_json(silent=True)
        if not isinstance(given, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in given.items()
        ):
            abort(400, "a draft is a JSON object of answer fields")
        try:
            store().save_draft(rater, hit.key, answers_of(hit, given, complete=False))
        except AlreadyRated:
            abort(409, "you have rated this HIT already")
        return "", 204

    @app.get("/audio/<condition>/<clip>")
    def audio(condition: str, clip: str) -> Any:
        uid = clip.removesuffix(".wav")
        path = study.audio.get((condition, uid)) if clip.endswith(".wav") else None
        if path is None:
            abort(404, "no such clip")
        return send_file(path, mimetype="audio/wav", conditional=True, max_age=0)

    return app


def serve(
    folders: Sequence[Path],
    *,
    db: Path,
    host: str = "127.0.0.1",
    port: int = 8000,
    form: str | None = None,
    threads: int = 8,
    announce: Any = print,
) -> None:
    """Serve until interrupted."""
    import waitress  # type: ignore[import-untyped]  # no stubs; one call

    study = Study.load(folders, form)
    app = make_app(study, db)
    announce(
        f"serving {len(study.hits)} HITs at http://{host}:{port}/ (ratings in {db}); Ctrl-C stops",
    )
    waitress.serve(app, host=host, port=port, threads=threads, ident="mos-tools", _quiet=True)

"""``mos-tools serve`` through Flask's test client: joining, invitations, CSRF, drafts, one
rating per rater and HIT, audio only from the manifest, and export -> score unchanged."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pytest

from mos_tools.cli import main
from mos_tools.hits import build_hits
from mos_tools.score import Rules, read_results, summarize
from mos_tools.serve import Study, make_app
from mos_tools.store import Store
from mos_tools.testing import make_input


@pytest.fixture
def study_dir(tmp_path: Path) -> Path:
    src = make_input(tmp_path / "in", ["real", "gen"], 4)
    build_hits(condition="demo", input_dir=src, methods=["real", "gen"], batch_size=2,
               output_dir=tmp_path / "hits", seed=3)  # fmt: skip
    return tmp_path / "hits" / "demo"


@pytest.fixture
def client(study_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)  # relative paths, as a user types them
    app = make_app(Study.load([Path("hits/demo")]), Path("ratings.sqlite"))
    app.testing = True
    return app.test_client()


def token_of(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def join(client: Any, name: str) -> None:
    page = client.get("/").get_data(as_text=True)
    response = client.post("/join", data={"name": name, "csrf_token": token_of(page)})
    assert response.status_code == 303


def next_hit(client: Any) -> str:
    page = client.get("/").get_data(as_text=True)
    match = re.search(r'id="next" href="(/hit/[^"]+)"', page)
    assert match, page
    return match.group(1)


def answer_all(page: str, value: str = "4") -> dict[str, str]:
    names = sorted(set(re.findall(r'type="radio" name="([^"]+)"', page)))
    return {name: value for name in names}


def test_a_rater_joins_rates_every_hit_and_the_export_scores(
    client: Any, study_dir: Path, tmp_path: Path
) -> None:
    join(client, "alice")
    page = client.get("/").get_data(as_text=True)
    assert "0 of 4 HITs rated; 4 remain." in page
    for done in range(4):
        url = next_hit(client)
        form = client.get(url).get_data(as_text=True)
        assert form.count("<audio") == 2
        assert re.findall(r'src="(/audio/demo/[0-9a-f]{16}\.wav)"', form)
        response = client.post(url, data={"csrf_token": token_of(form), **answer_all(form)})
        assert response.status_code == 303
        assert f"{done + 1} of 4 HITs rated" in client.get("/").get_data(as_text=True)
    assert "Every HIT is rated." in client.get("/").get_data(as_text=True)
    out = tmp_path / "results.csv"
    assert main(["export", "--db", str(tmp_path / "ratings.sqlite"), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 4
    assert {r["WorkerId"] for r in rows} == {"alice"}
    assert set(rows[0]) >= {"HITId", "AssignmentId", "Input.url_1", "Answer.quality_1",
                            "Answer.musicality_2"}  # fmt: skip
    from mos_tools.hits import read_manifest

    manifest = read_manifest(study_dir / "manifest.json")
    ratings, _ = read_results([out], manifest)
    summary = summarize(ratings, [], manifest, Rules(outlier_z=0))
    assert {r["mos"] for r in summary["scores"]} == {4.0}
    assert sum(r["n_ratings"] for r in summary["scores"]) == 4 * 2 * 2


def test_a_hit_is_rated_once_and_the_first_answers_count(client: Any, tmp_path: Path) -> None:
    join(client, "bob")
    url = next_hit(client)
    form = client.get(url).get_data(as_text=True)
    token = token_of(form)
    assert client.post(url, data={"csrf_token": token, **answer_all(form, "2")}).status_code == 303
    again = client.post(url, data={"csrf_token": token, **answer_all(form, "5")})
    assert again.status_code == 409
    assert "rated this HIT already" in again.get_data(as_text=True)
    assert client.get(url).status_code == 409
    store = Store(tmp_path / "ratings.sqlite")
    (submission,) = store.submissions()
    assert set(submission["answers"].values()) == {"2"}


def test_forms_without_the_csrf_token_are_refused(client: Any) -> None:
    join(client, "carol")
    url = next_hit(client)
    form = client.get(url).get_data(as_text=True)
    for token in ("", "forged"):
        response = client.post(url, data={"csrf_token": token, **answer_all(form)})
        assert response.status_code == 403
    assert client.post("/join", data={"name": "mallory"}).status_code == 403
    draft = client.post(url.replace("/hit/", "/draft/"), json={"quality_1": "3"})
    assert draft.status_code == 403


def test_incomplete_or_invalid_answers_are_refused(client: Any) -> None:
    join(client, "dave")
    url = next_hit(client)
    form = client.get(url).get_data(as_text=True)
    answers = answer_all(form)
    token = token_of(form)
    partial = dict(list(answers.items())[:-1])
    response = client.post(url, data={"csrf_token": token, **partial})
    assert response.status_code == 400
    assert "answer every question first (1 missing" in response.get_data(as_text=True)
    wrong = {**answers, "quality_1": "9"}
    assert client.post(url, data={"csrf_token": token, **wrong}).status_code == 400
    extra = {**answers, "evil": "1"}
    assert client.post(url, data={"csrf_token": token, **extra}).status_code == 400


def test_drafts_are_saved_per_answer_and_restored(client: Any) -> None:
    join(client, "erin")
    url = next_hit(client)
    form = client.get(url).get_data(as_text=True)
    headers = {"X-CSRF-Token": token_of(form)}
    draft_url = url.replace("/hit/", "/draft/")
    assert client.post(draft_url, json={"quality_1": "3"}, headers=headers).status_code == 204
    assert client.post(draft_url, json={"musicality_1": "5"}, headers=headers).status_code == 204
    assert client.post(draft_url, json={"quality_1": "7"}, headers=headers).status_code == 400
    again = client.get(url).get_data(as_text=True)
    assert 'name="quality_1" value="3" required checked' in again
    assert 'name="musicality_1" value="5" required checked' in again
    assert "[1].forEach" in again  # clip 1 was played: its answers stay unlocked


@pytest.mark.parametrize(
    "path",
    [
        "/audio/demo/../manifest.json",
        "/audio/demo/..%2fmanifest.json",
        "/audio/demo/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/audio/../../etc/passwd",
        "/audio/demo/manifest.json",
        "/audio/other/0000000000000000.wav",
        "/audio/demo/batch000",
    ],
)
def test_no_path_outside_the_manifest_can_be_requested(client: Any, path: str) -> None:
    assert client.get(path).status_code == 404


def test_audio_is_served_for_listed_clips(client: Any, study_dir: Path) -> None:
    wav = next(study_dir.glob("batch000/*.wav"))
    with client.get(f"/audio/demo/{wav.name}") as response:
        assert response.status_code == 200
        assert response.mimetype == "audio/wav"
        assert response.data == wav.read_bytes()
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    with client.get(f"/audio/demo/{wav.name}", headers={"Range": "bytes=0-3"}) as partial:
        assert partial.status_code == 206  # seeking in the player works
        assert partial.data == b"RIFF"


def test_invitations_close_the_study_and_forged_tokens_are_refused(
    client: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "ratings.sqlite"
    assert main(["invite", "frank", "grace", "--db", str(db), "--url", "http://lab:9000/"]) == 0
    links = dict(line.split("\t") for line in capsys.readouterr().out.splitlines())
    assert set(links) == {"frank", "grace"}
    assert all(link.startswith("http://lab:9000/join/") for link in links.values())
    page = client.get("/").get_data(as_text=True)
    assert "Open the invitation link" in page
    assert client.post("/join", data={"name": "eve", "csrf_token": "x"}).status_code == 403
    assert client.get("/join/forged-token").status_code == 403
    token = links["frank"].rsplit("/", 1)[1]
    assert client.get(f"/join/{token}").status_code == 303
    assert "Welcome, frank" in client.get("/").get_data(as_text=True)
    assert main(["invite", "frank", "--db", str(db)]) == 2
    assert "rater 'frank' exists already" in capsys.readouterr().err


def test_two_raters_see_their_own_progress(client: Any, study_dir: Path, tmp_path: Path) -> None:
    join(client, "henry")
    url = next_hit(client)
    form = client.get(url).get_data(as_text=True)
    client.post(url, data={"csrf_token": token_of(form), **answer_all(form)})
    other = make_app(Study.load([study_dir]), tmp_path / "ratings.sqlite").test_client()
    join(other, "iris")
    assert "0 of 4 HITs rated" in other.get("/").get_data(as_text=True)
    assert "1 of 4 HITs rated" in client.get("/").get_data(as_text=True)


def test_bad_serve_and_export_input_is_one_line(
    tmp_path: Path, study_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", str(tmp_path), "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "manifest.json: no such manifest" in capsys.readouterr().err
    assert (
        main(["export", "--db", str(tmp_path / "none.sqlite"), "--out", str(tmp_path / "o.csv")])
        == 2
    )
    assert "no such ratings database" in capsys.readouterr().err
    (tmp_path / "junk.sqlite").write_text("not a database at all" * 100)
    assert (
        main(["export", "--db", str(tmp_path / "junk.sqlite"), "--out", str(tmp_path / "o.csv")])
        == 2
    )
    assert "not a mos-tools ratings database" in capsys.readouterr().err
    Store(tmp_path / "empty.sqlite").close()
    assert (
        main(["export", "--db", str(tmp_path / "empty.sqlite"), "--out", str(tmp_path / "o.csv")])
        == 2
    )
    assert "holds no submitted ratings yet" in capsys.readouterr().err
    (study_dir / "batch000").rename(study_dir / "moved")
    assert main(["serve", str(study_dir), "--db", str(tmp_path / "r.sqlite")]) == 2
    assert "missing (is" in capsys.readouterr().err

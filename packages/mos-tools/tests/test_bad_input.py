"""Every bad input to mos-tools is one line and exit 2, and nothing is half-written.

The reliability issue's mos-tools cases: hostile condition and method names (URL and HTML
injection), files that are not wavs, URL templates with unknown fields, malformed labels,
results and manifests, header-only results, outputs that would overwrite, tabs in names,
and the permissions of what is written for upload.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mos_tools.cli import main
from mos_tools.templates import render
from mos_tools.testing import make_input, write_wav


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        status = int(exc.code or 0)
    return status, capsys.readouterr().err


def hits_args(src: Path, out: Path, *extra: str, condition: str = "c") -> list[str]:
    return ["build-hits", f"--condition={condition}", "--input-dir", str(src), "--methods", "a",
            "b", "--batch-size", "2", "--output-dir", str(out), "--seed", "1", *extra]  # fmt: skip


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return make_input(tmp_path / "in", ["a", "b"], 4)


def one_error(status: int, err: str, expected: str) -> None:
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mos-tools: error: ")
    assert expected in lines[0], lines[0]


# -- 18: names that would escape a URL or the page ------------------------------------------------
@pytest.mark.parametrize(
    "condition",
    [
        'x" onerror="alert(1)',
        "%2e%2e",
        "..\\..\\x",
        "a#b?c",
        "..",
        ".hidden",
        "a/b",
        "-rf",
        "café",
        "x" * 101,
    ],
)
def test_unsafe_conditions_are_refused(
    condition: str, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = run(capsys, *hits_args(src, tmp_path / "o", condition=condition))
    one_error(status, err, "--condition")
    assert "use letters, digits, '.', '_' and '-'" in err
    assert not (tmp_path / "o").exists()


def test_unsafe_method_names_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_input(tmp_path / "in", ["a", "b<script>"], 2)
    status, err = run(capsys, "build-hits", "--condition", "c", "--input-dir", str(src),
                      "--methods", "a", "b<script>", "--batch-size", "1", "--output-dir",
                      str(tmp_path / "o"))  # fmt: skip
    one_error(status, err, "--methods 'b<script>'")


def test_everything_placed_in_a_page_is_escaped() -> None:
    page = render("music", 1, sources=['x" onerror="alert(1)'], hidden={"t": '"><script>'})
    assert 'src="x&quot; onerror=&quot;alert(1)"' in page
    assert "<script>alert" not in page
    assert 'value="&quot;&gt;&lt;script&gt;"' in page


# -- 19: every clip is a readable wav of the expected rate ----------------------------------------
@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (lambda p: p.write_text("just text"), "not a wav file (no RIFF/WAVE header)"),
        (lambda p: (p.unlink(), p.mkdir()), "not a file (a folder or device named .wav?)"),
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated: its header promises 160"),
        (lambda p: p.write_bytes(b""), "not a wav file"),
        (lambda p: write_wav(p, rate=8000), "8000 Hz, but"),
    ],
)
def test_clips_that_are_not_playable_wavs_are_named(
    damage, expected: str, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = src / "b" / "clip01.wav"
    damage(victim)
    status, err = run(capsys, *hits_args(src, tmp_path / "o"))
    one_error(status, err, f"{victim}: {expected}")
    assert not (tmp_path / "o").exists()  # checked before anything is written


def test_an_expected_rate_is_enforced(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = run(capsys, *hits_args(src, tmp_path / "o", "--sample-rate", "22050"))
    one_error(status, err, "16000 Hz, but --sample-rate 22050 is 22050 Hz")


# -- 20: templates, labels, results and manifests -------------------------------------------------
@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("https://x/{bucket}/{uid}.wav", "unknown field {bucket}"),
        ("https://x/{0}/{uid}", "unknown field {0}"),
        ("https://x/{}/{}.wav", "2 positional {}"),
        ("https://x/{condition}.wav", "must contain {uid}"),
        ("https://x/{uid!r}", "format specs and conversions are not allowed"),
        ("https://x/{uid", "expected '}'"),
        ('https://x/"{uid}', "which would break the HIT page"),
        ("https://x y/{uid}", "which would break the HIT page"),
    ],
)
def test_url_templates_are_checked(
    template: str, expected: str, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, err = run(capsys, *hits_args(src, tmp_path / "o", "--url-template", template))
    one_error(status, err, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"method,file\na,clip00.wav\n", "missing column label"),
        (b"method,file,label\na,clip00.wav,seven\n", ":2: label is 'seven', not a class number"),
        (b"method,file,label\na,clip00.wav,1\na,clip00.wav,2\n", ":3: a/clip00.wav is labelled"),
        (b"method,file,label\na,clip00.wav\n", ":2: wrong number of fields"),
        (b"method,file,label\n\xff,x,1\n", "not UTF-8 text (byte 18)"),
    ],
)
def test_bad_labels_are_named(
    text: bytes, expected: str, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (src / "labels.csv").write_bytes(text)
    status, err = run(capsys, *hits_args(src, tmp_path / "o"))
    one_error(status, err, expected)


@pytest.fixture
def built(src: Path, tmp_path: Path) -> Path:
    assert main(hits_args(src, tmp_path / "o")) == 0
    return tmp_path / "o" / "c"


def _results(built: Path, text: str | bytes) -> Path:
    path = built.parent / "results.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def _a_row(built: Path) -> tuple[str, str]:
    urls = (built / "urls.csv").read_text().splitlines()[1].split(",")
    head = "HITId,AssignmentId,WorkerId," + ",".join(f"Input.url_{i}" for i in (1, 2))
    head += ",Answer.quality_1,Answer.quality_2"
    return head, f"H,A,W,{urls[0]},{urls[1]},3,4"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda h, r: (h + "\n" + r + "\n").encode("utf-16"), "not UTF-8 text (byte 0)"),
        (lambda h, r: h + ",Input.url_x\n" + r + ",y\n", "column 'Input.url_x' looks like a clip"),
        (lambda h, r: h + "\n", "no ratings (only a header, or every assignment rejected)"),
        (lambda h, r: h.replace("WorkerId", "Worker") + "\n" + r + "\n", "missing column WorkerId"),
        (lambda h, r: h + "\n" + r + ",extra\n", ":2: more fields than the header has"),
        (lambda h, r: h + "\n" + r.replace(",3,", ",inf,") + "\n", "is 'inf', not a number"),
    ],
)
def test_bad_results_are_one_line(
    make, expected: str, built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(built, make(*_a_row(built)))
    status, err = run(capsys, "score", "--results", str(results), "--manifest",
                      str(built / "manifest.json"))  # fmt: skip
    one_error(status, err, expected)


@pytest.mark.parametrize(
    ("manifest", "expected"),
    [
        (b"{not json", "not a JSON manifest"),
        (b'{"condition": "c"}', "lacks its clips"),
        (b'{"clips": {"u": {"method": "a"}}}', "clip 'u' lacks its method, file, url or hit"),
        (b"\xff\xfe", "not a JSON manifest"),
    ],
)
def test_bad_manifests_are_one_line(
    manifest: bytes, expected: str, built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(built, "\n".join(_a_row(built)) + "\n")
    bad = built.parent / "bad.json"
    bad.write_bytes(manifest)
    status, err = run(capsys, "score", "--results", str(results), "--manifest", str(bad))
    one_error(status, err, expected)


# -- 22: outputs are never overwritten without --force --------------------------------------------
def test_template_out_needs_force_and_a_real_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "hit.html"
    out.write_text("mine")
    one_error(*run(capsys, "template", "music", "3", "--out", str(out)), "exists; pass --force")
    assert out.read_text() == "mine"
    assert run(capsys, "template", "music", "3", "--out", str(out), "--force")[0] == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    one_error(*run(capsys, "template", "music", "3", "--out", str(tmp_path)), "is a folder")
    one_error(*run(capsys, "template", "music", "3", "--out", str(tmp_path / "no" / "x.html")),
              "does not exist")  # fmt: skip


def test_score_out_needs_force_and_a_folder(
    built: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = _results(built, "\n".join(_a_row(built)) + "\n")
    args = ["score", "--results", str(results), "--manifest", str(built / "manifest.json"),
            "--outlier-z", "0"]  # fmt: skip
    out = built.parent / "scores"
    assert run(capsys, *args, "--out", str(out))[0] == 0
    before = (out / "scores.csv").read_text()
    one_error(*run(capsys, *args, "--out", str(out)), "holds scores.csv, scores.json; pass --force")
    assert (out / "scores.csv").read_text() == before
    assert run(capsys, *args, "--out", str(out), "--force")[0] == 0
    one_error(*run(capsys, *args, "--out", str(results)), "is a file; name a folder")


# -- 23: names that break the study's text files --------------------------------------------------
@pytest.mark.parametrize("name", ["a\tb.wav", "line\nbreak.wav", "bell\x07.wav"])
def test_file_names_with_control_characters_are_refused(
    name: str, src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for method in ("a", "b"):
        write_wav(src / method / name)
    status, err = run(capsys, *hits_args(src, tmp_path / "o"))
    assert status == 2
    assert "file names may not hold tabs, newlines, control characters" in err


def test_spaces_are_refused_only_where_the_reference_separates_by_space(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_input(tmp_path / "in", ["a", "b"], 2, pattern="take {}.wav")
    args = ["build-hits", "--condition", "c", "--input-dir", str(src), "--methods", "a", "b",
            "--batch-size", "1", "--hit-layout", "all-methods", "--output-dir",
            str(tmp_path / "o")]  # fmt: skip
    assert run(capsys, *args)[0] == 0
    status, err = run(capsys, *args, "--style", "reference", "--output-dir", str(tmp_path / "r"))
    one_error(status, err, "or spaces (the reference's uids.txt is space-separated)")


# -- 9: what is written for upload follows the umask ----------------------------------------------
def test_the_hits_folder_follows_the_umask(src: Path, tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        (src / "a" / "clip00.wav").chmod(0o600)  # the source's mode is not copied
        assert main(hits_args(src, tmp_path / "o")) == 0
    finally:
        os.umask(old)
    root = tmp_path / "o" / "c"
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    for path in root.rglob("*"):
        expected = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == expected, path
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["sample_rate"] == 16000


def test_an_os_error_is_one_line_with_status_1(
    src: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    status, err = run(capsys, *hits_args(src, blocker / "o"))
    assert status == 1
    assert err == f"mos-tools: error: {blocker / 'o'}: Not a directory (ENOTDIR)\n"

"""build-hits and select-confident: layouts, formats, determinism, bad input."""

from __future__ import annotations

import csv
import json
import re
import wave
from pathlib import Path

import pytest

from mos_tools.cli import main
from mos_tools.errors import MosError
from mos_tools.hits import build_hits
from mos_tools.npy import write_matrix
from mos_tools.select import select_confident


def write_wav(path: Path, value: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(bytes([value % 256, 0]) * 160)


def make_input(root: Path, methods: list[str], n: int) -> Path:
    for m_index, method in enumerate(methods):
        for i in range(n):
            write_wav(root / method / f"clip{i:02d}.wav", value=m_index * 10 + i)
    return root


def test_build_hits_writes_every_file_in_its_format(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in", ["real", "sashimi", "wavenet"], 6)
    manifest = build_hits(condition="music", input_dir=src, methods=["real", "sashimi", "wavenet"],
                          batch_size=3, output_dir=tmp_path / "out", seed=7,
                          url_template="https://cdn.test/{condition}/{batch}/{uid}.wav",
                          gold_method="real")  # fmt: skip
    root = tmp_path / "out" / "music"
    assert (root / "batches.txt").read_text().splitlines() == ["batch000", "batch001"]
    uid_lines = [line.split("\t") for line in (root / "uids.txt").read_text().splitlines()]
    assert len(uid_lines) == 18
    assert all(re.fullmatch(r"[0-9a-f]{16}", uid) for uid, _, _ in uid_lines)
    assert len({uid for uid, _, _ in uid_lines}) == 18
    with (root / "urls.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["url_1", "url_2", "url_3"]
    assert len(rows) == 1 + 6  # 18 clips, 3 per HIT
    for batch in ("batch000", "batch001"):
        with (root / f"urls_{batch}.csv").open() as handle:
            batch_rows = list(csv.reader(handle))
        assert batch_rows[0] == ["url_1", "url_2", "url_3"]
        assert all(
            url.startswith(f"https://cdn.test/music/{batch}/") for r in batch_rows[1:] for url in r
        )
    for uid, method, name in uid_lines:
        clip = manifest["clips"][uid]
        copied = root / clip["batch"] / f"{uid}.wav"
        assert copied.read_bytes() == (src / method / name).read_bytes()
    assert json.loads((root / "manifest.json").read_text())["seed"] == 7
    assert sorted(manifest["gold"]) == sorted(u for u, m, _ in uid_lines if m == "real")
    # Every batch holds every method's version of the same files.
    for batch in ("batch000", "batch001"):
        files = {
            (c["method"], c["file"]) for c in manifest["clips"].values() if c["batch"] == batch
        }
        names = {f for _, f in files}
        assert files == {(m, f) for m in ("real", "sashimi", "wavenet") for f in names}


def test_the_seed_fixes_the_assignment(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in", ["a", "b"], 4)
    layout = []
    for out in ("o1", "o2"):
        m = build_hits(condition="c", input_dir=src, methods=["a", "b"], batch_size=2,
                       output_dir=tmp_path / out, seed=11)  # fmt: skip
        layout.append(
            sorted((c["hit"], c["position"], c["method"], c["file"]) for c in m["clips"].values())
        )
    assert layout[0] == layout[1]


def test_per_method_layout_keeps_hits_pure(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in", ["a", "b"], 4)
    m = build_hits(condition="s", input_dir=src, methods=["a", "b"], batch_size=2,
                   output_dir=tmp_path / "o", seed=1, hit_layout="per-method")  # fmt: skip
    by_hit: dict[str, set[str]] = {}
    for clip in m["clips"].values():
        by_hit.setdefault(clip["hit"], set()).add(clip["method"])
    assert all(len(methods) == 1 for methods in by_hit.values())


def test_bad_input_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_input(tmp_path / "in", ["a", "b"], 4)
    (src / "b" / "clip03.wav").unlink()
    with pytest.raises(
        MosError, match=r"in/b: lacks clip03.wav compared with .*in/a; every method"
    ):
        build_hits(condition="c", input_dir=src, methods=["a", "b"], batch_size=2,
                   output_dir=tmp_path / "o")  # fmt: skip
    src2 = make_input(tmp_path / "in2", ["a"], 6)
    with pytest.raises(
        MosError, match=r"--batch-size 4 must divide the 6 files per method; use one of 1, 2, 3, 6"
    ):
        build_hits(
            condition="c", input_dir=src2, methods=["a"], batch_size=4, output_dir=tmp_path / "o"
        )
    build_hits(
        condition="c", input_dir=src2, methods=["a"], batch_size=3, output_dir=tmp_path / "o"
    )
    marker = next((tmp_path / "o" / "c").glob("batch000/*.wav"))
    argv = ["build-hits", "--condition", "c", "--input-dir", str(src2), "--methods", "a",
            "--batch-size", "3", "--output-dir", str(tmp_path / "o")]  # fmt: skip
    assert main(argv) == 2
    assert "already exists; pass --force to replace it" in capsys.readouterr().err
    assert marker.exists()  # nothing was overwritten
    assert main([*argv, "--force"]) == 0
    assert not marker.exists()
    assert main(["build-hits", "--condition", "d", "--input-dir", str(src2), "--methods", "zz",
                 "--batch-size", "3", "--output-dir", str(tmp_path / "o")]) == 2  # fmt: skip
    assert "zz: missing; --methods names a folder of --input-dir" in capsys.readouterr().err


def test_select_confident_keeps_the_top_k_per_class(tmp_path: Path) -> None:
    samples = tmp_path / "samples"
    probs_dir = tmp_path / "probs"
    probs_dir.mkdir()
    rows = []
    for i in range(8):
        write_wav(samples / "m" / f"s{i}.wav", i)
        label = i % 2
        conf = 0.5 + 0.05 * i
        row = [0.0] * 10
        row[label] = conf
        row[9 if label != 9 else 8] = 1 - conf
        rows.append(row)
    write_matrix(probs_dir / "m.npy", rows)
    kept = select_confident(probs_dir, samples, ["m"], top_k=2, out=tmp_path / "sel")
    assert kept == {"m": 4}
    assert sorted(p.name for p in (tmp_path / "sel" / "m").iterdir()) == [
        "s4.wav",
        "s5.wav",
        "s6.wav",
        "s7.wav",
    ]
    with (tmp_path / "sel" / "labels.csv").open() as handle:
        labels = {r["file"]: int(r["label"]) for r in csv.DictReader(handle)}
    assert labels == {"s6.wav": 0, "s4.wav": 0, "s7.wav": 1, "s5.wav": 1}
    write_matrix(probs_dir / "m.npy", rows[:5])
    with pytest.raises(MosError, match=r"m.npy: 5 rows, but .* holds 8 wavs"):
        select_confident(probs_dir, samples, ["m"], top_k=2, out=tmp_path / "sel2")

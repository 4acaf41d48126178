"""build-hits and select-confident: layouts, formats, seeds, gold items, the reference's
studies id for id, and the README's chain from selection to HITs."""

from __future__ import annotations

import csv
import json
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mos_tools.cli import main
from mos_tools.errors import MosError
from mos_tools.hits import build_hits, natural_key, parse_gold, read_gold_file
from mos_tools.npy import write_matrix
from mos_tools.select import select_confident
from mos_tools.testing import make_input, write_wav


def test_build_hits_writes_every_file_in_its_format(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in", ["real", "sashimi", "wavenet"], 6)
    (manifest,) = build_hits(condition="music", input_dir=src,
                             methods=["real", "sashimi", "wavenet"], batch_size=3,
                             output_dir=tmp_path / "out", seed=7,
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
    saved = json.loads((root / "manifest.json").read_text())
    assert saved["seed"] == 7
    assert saved["hit_size"] == 3
    assert saved["fields"] == {"url": "url_{i}", "first": 1}
    assert sorted(manifest["gold"]) == sorted(u for u, m, _ in uid_lines if m == "real")
    assert all(bounds == {} for bounds in manifest["gold"].values())
    # Every batch holds every method's version of the same files.
    for batch in ("batch000", "batch001"):
        files = {
            (c["method"], c["file"]) for c in manifest["clips"].values() if c["batch"] == batch
        }
        names = {f for _, f in files}
        assert files == {(m, f) for m in ("real", "sashimi", "wavenet") for f in names}


def test_the_seed_fixes_the_ids_and_the_assignment(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in", ["a", "b"], 4)
    built = []
    for out in ("o1", "o2", "o3"):
        (m,) = build_hits(condition="c", input_dir=src, methods=["a", "b"], batch_size=2,
                          output_dir=tmp_path / out, seed=11 if out != "o3" else 12)  # fmt: skip
        built.append(
            sorted(
                (u, c["hit"], c["position"], c["method"], c["file"]) for u, c in m["clips"].items()
            )
        )
    assert built[0] == built[1]  # the same ids too
    assert {u for u, *_ in built[0]}.isdisjoint({u for u, *_ in built[2]})
    assert (tmp_path / "o1/c/urls.csv").read_text() == (tmp_path / "o2/c/urls.csv").read_text()


def test_per_method_takes_different_files_and_keeps_hits_pure(tmp_path: Path) -> None:
    make_input(tmp_path / "in", ["a"], 4, pattern="a{}.wav")
    make_input(tmp_path / "in", ["b"], 6, pattern="b{}.wav")
    (m,) = build_hits(condition="s", input_dir=tmp_path / "in", methods=["a", "b"],
                      batch_size=2, output_dir=tmp_path / "o", seed=1,
                      hit_layout="per-method")  # fmt: skip
    by_hit: dict[str, set[str]] = {}
    for clip in m["clips"].values():
        by_hit.setdefault(clip["hit"], set()).add(clip["method"])
    assert len(by_hit) == 2 + 3
    assert all(len(methods) == 1 for methods in by_hit.values())
    assert sorted(c["file"] for c in m["clips"].values() if c["method"] == "b") == [
        f"b{i}.wav" for i in range(6)
    ]
    with pytest.raises(MosError, match=r"--batch-size 4 must divide the 6 files of method 'b'"):
        build_hits(condition="s", input_dir=tmp_path / "in", methods=["a", "b"], batch_size=4,
                   output_dir=tmp_path / "o2", hit_layout="per-method")  # fmt: skip


def test_all_methods_puts_one_clip_of_every_method_in_a_hit(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in", ["a", "b", "c"], 5)
    (m,) = build_hits(condition="y", input_dir=src, methods=["a", "b", "c"], batch_size=1,
                      output_dir=tmp_path / "o", seed=3, hit_layout="all-methods")  # fmt: skip
    by_hit: dict[str, list[tuple[str, str]]] = {}
    for clip in m["clips"].values():
        by_hit.setdefault(clip["hit"], []).append((clip["method"], clip["file"]))
    assert len(by_hit) == 5 and m["hit_size"] == 3  # noqa: PT018
    for clips in by_hit.values():
        assert sorted(method for method, _ in clips) == ["a", "b", "c"]
        assert len({name for _, name in clips}) == 1
    orders = {tuple(mm for mm, _ in sorted(clips, key=lambda x: x)) for clips in by_hit.values()}
    assert orders == {("a", "b", "c")}
    positions = [[c["method"] for c in sorted(
        (c for c in m["clips"].values() if c["hit"] == h), key=lambda c: c["position"])]
        for h in by_hit]  # fmt: skip
    assert len({tuple(p) for p in positions}) > 1  # methods' order varies between HITs


# -- the reference's studies, id for id --------------------------------------------------------
YOUTUBEMIX = ["wavenet-1024", "sashimi-2", "sashimi-8", "samplernn-3", "test"]
# What the reference's own run printed and recorded (its sashimi README lists batch 0's five
# ids; its YouTubeMix MOS notebook maps these ids to clips).
REFERENCE_BATCH0 = {
    "176ea1b164264cd51ea45cd69371a71f", "21e150949efee464da90f534a23d4c9d",
    "3405095c8a5006c1ec188efbd080e66e", "41a93f90dc8215271da3b7e2cad6e514",
    "e3e70682c2094cac629f6fbed82c07cd",
}  # fmt: skip
REFERENCE_IDS = {
    "ec3aa314da9bb01779c147c719a5711b": ("samplernn-3", "0.wav"),
    "12e0c8b2bad640fb19488dec4f65d4d9": ("wavenet-1024", "9.wav"),
}


def test_the_reference_youtubemix_study_is_rebuilt_id_for_id(tmp_path: Path) -> None:
    make_input(tmp_path / "in", YOUTUBEMIX, 30, pattern="{}.wav")
    gold = [parse_gold(f"test/{n}.wav:quality<=2,musicality<=2") for n in (4, 10, 17, 21)]
    gold.append(parse_gold("test/15.wav:quality<=5,musicality<=2"))
    status = main(["build-hits", "--style", "reference", "--hit-layout", "all-methods",
                   "--condition", "youtubemix-unconditional-16s-exp-1", "--input-dir",
                   str(tmp_path / "in"), "--output-dir", str(tmp_path / "final"),
                   "--methods", *YOUTUBEMIX, "--batch-size", "1", "--url-template",
                   "https://storage.googleapis.com/mturk-experiments/{}/{}/{}.wav",
                   *[a for n in (4, 10, 17, 21) for a in
                     ("--gold", f"test/{n}.wav:quality<=2,musicality<=2")],
                   "--gold", "test/15.wav:quality<=5,musicality<=2"])  # fmt: skip
    assert status == 0
    root = tmp_path / "final" / "youtubemix-unconditional-16s-exp-1"
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(map(str, range(30)))
    assert {p.stem for p in (root / "0").iterdir()} == REFERENCE_BATCH0
    uids = {line.split(" ")[2]: tuple(line.split(" ")[:2])
            for line in (root / "uids.txt").read_text().splitlines()}  # fmt: skip
    for uid, clip in REFERENCE_IDS.items():
        assert uids[uid] == clip
    assert len(uids) == 150
    urls = (root / "urls.csv").read_text()
    assert not urls.endswith("\n")  # as the reference writes it
    lines = urls.split("\n")
    assert lines[0] == ",".join(f"recording_{i}_url" for i in range(5))
    assert len(lines) == 31
    assert all(u.startswith("https://storage.googleapis.com/mturk-experiments/youtubemix-"
                            "unconditional-16s-exp-1/0/") for u in lines[1].split(","))  # fmt: skip
    assert (root / "urls_0.csv").read_text() == "\n".join(lines[:2])
    batches = (root / "batches.txt").read_text().splitlines()
    assert len(batches) == 30 and all(b.endswith(".wav") for b in batches)  # noqa: PT018
    manifest = json.loads((root / "manifest.json").read_text())
    assert len(manifest["gold"]) == 5
    bounds = {manifest["clips"][u]["file"]: b for u, b in manifest["gold"].items()}
    assert bounds["15.wav"] == {"quality": [None, 5.0], "musicality": [None, 2.0]}
    assert {g.file for g in gold} == set(bounds)


def test_the_reference_sc09_study_is_one_folder_per_method(tmp_path: Path) -> None:
    make_input(tmp_path / "in", ["test"], 20, pattern="t{:03d}.wav")
    make_input(tmp_path / "in", ["wavenet-1024"], 30, pattern="w{:03d}.wav")
    manifests = build_hits(condition="sc09-unconditional-exp-confident", style="reference",
                           hit_layout="per-method", input_dir=tmp_path / "in",
                           methods=["test", "wavenet-1024"], batch_size=10,
                           output_dir=tmp_path / "final", form="speech")  # fmt: skip
    assert [m["condition"] for m in manifests] == [
        "sc09-unconditional-exp-confident-test",
        "sc09-unconditional-exp-confident-wavenet-1024",
    ]
    for m, n in zip(manifests, (20, 30), strict=True):
        root = tmp_path / "final" / m["condition"]
        first = (root / "uids.txt").read_text().splitlines()[0].split(" ")
        assert first[2] == "e3e70682c2094cac629f6fbed82c07cd"  # a fresh run per method
        names = [f"{'t' if n == 20 else 'w'}{i:03d}.wav" for i in range(n)]
        random.Random(42).shuffle(names)
        assert first[1] == names[0]
        assert (root / "urls.csv").read_text().split("\n")[0] == ",".join(
            f"recording_{i}_url" for i in range(10)
        )
        assert len({c["hit"] for c in m["clips"].values()}) == n // 10


def test_natural_order_matches_natsort() -> None:
    names = ["10.wav", "2.wav", "1.wav", "a10.wav", "a9.wav", "b.wav"]
    assert sorted(names, key=natural_key) == ["1.wav", "2.wav", "10.wav", "a9.wav", "a10.wav",
                                              "b.wav"]  # fmt: skip


@settings(max_examples=50)
@given(st.lists(st.sampled_from(["quality", "musicality"]), min_size=1, max_size=2, unique=True),
       st.integers(1, 5), st.sampled_from(["<=", ">="]))  # fmt: skip
def test_gold_specs_parse(questions: list[str], value: int, op: str) -> None:
    spec = "m/x.wav:" + ",".join(f"{q}{op}{value}" for q in questions)
    gold = parse_gold(spec)
    assert (gold.method, gold.file) == ("m", "x.wav")
    for q in questions:
        assert gold.bounds[q] == ([None, value] if op == "<=" else [value, None])


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x.wav", "expected METHOD/FILE"),
        ("m/x.wav:quality<2", "'quality<2' is not QUESTION<=NUMBER"),
        ("m/x.wav:quality<=high", "is not QUESTION<=NUMBER"),
    ],
)
def test_bad_gold_specs_are_named(spec: str, message: str) -> None:
    with pytest.raises(MosError, match=re.escape(message)):
        parse_gold(spec)


def test_gold_from_a_csv_and_a_missing_gold_clip(tmp_path: Path) -> None:
    src = make_input(tmp_path / "in", ["a", "test"], 2)
    table = tmp_path / "gold.csv"
    table.write_text("method,file,question,min,max\ntest,clip00.wav,quality,,2\n"
                     "test,clip00.wav,musicality,1,2\n")  # fmt: skip
    gold = read_gold_file(table)
    assert gold[0].bounds == {"quality": [None, 2.0], "musicality": [1.0, 2.0]}
    (m,) = build_hits(condition="g", input_dir=src, methods=["a", "test"], batch_size=1,
                      output_dir=tmp_path / "o", gold=gold)  # fmt: skip
    assert list(m["gold"].values()) == [gold[0].bounds]
    with pytest.raises(MosError, match=r"--gold test/nope.wav: no such clip"):
        build_hits(condition="g2", input_dir=src, methods=["a", "test"], batch_size=1,
                   output_dir=tmp_path / "o", gold=[parse_gold("test/nope.wav")])  # fmt: skip


# -- selection, and the README's chain -----------------------------------------------------------
def _probs(samples: Path, probs_dir: Path, method: str, n: int, shift: int) -> None:
    rows = []
    for i in range(n):
        write_wav(samples / method / f"s{i:02d}.wav", i)
        label = (i + shift) % 2
        conf = 0.5 + 0.04 * ((i * 7 + shift) % 10)
        row = [0.0] * 10
        row[label] = conf
        row[9 if label != 9 else 8] = 1 - conf
        rows.append(row)
    probs_dir.mkdir(exist_ok=True)
    write_matrix(probs_dir / f"{method}.npy", rows)


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


def test_the_readme_chain_selection_then_per_method_hits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """select-confident keeps different files per method; build-hits takes them."""
    for method, shift in (("real", 0), ("sashimi", 1), ("wavenet", 3)):
        _probs(tmp_path / "samples", tmp_path / "probs", method, 12, shift)
    assert main(["select-confident", "--probs", str(tmp_path / "probs"), "--samples",
                 str(tmp_path / "samples"), "--methods", "real", "sashimi", "wavenet",
                 "--top-k", "2", "--out", str(tmp_path / "selected")]) == 0  # fmt: skip
    kept = {m: {p.name for p in (tmp_path / "selected" / m).iterdir()}
            for m in ("real", "sashimi", "wavenet")}  # fmt: skip
    assert len({frozenset(v) for v in kept.values()}) > 1  # different files per method
    assert main(["build-hits", "--condition", "sc09", "--input-dir", str(tmp_path / "selected"),
                 "--methods", "real", "sashimi", "wavenet", "--batch-size", "2",
                 "--hit-layout", "per-method", "--form", "speech", "--output-dir",
                 str(tmp_path / "hits"), "--seed", "1"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "12 clips in 6 HITs of 2" in out
    assert "page: mos-tools template speech 2" in out
    manifest = json.loads((tmp_path / "hits" / "sc09" / "manifest.json").read_text())
    assert all(c["label"] in (0, 1) for c in manifest["clips"].values())  # labels.csv was read
    assert manifest["labels"].endswith("labels.csv")

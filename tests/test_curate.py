"""Curation: caption nouns, MiniLM category matching, cap and split, report, resume, streaming."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path

import pytest
from fake_chat import fake_chat_server, system_text, user_text

from funcorr.cli import main
from funcorr.data import curate as curate_module
from funcorr.data.caption_nouns import HeuristicNouns, LLMNouns, read_captions
from funcorr.data.category_match import CategoryMatcher
from funcorr.data.curate import CurateConfig, curate, selection_key
from funcorr.data.manifest import read_manifest
from funcorr.data.taxonomy import taxonomy
from funcorr.data.text_llm import TextLLM, llm_config
from funcorr.images import InputError

# Thirty hand-written captions; the comment is what curation must decide.
THIRTY = [
    ("c01", "A white ceramic mug with a handle."),  # mug
    ("c02", "A stainless steel kettle with a black handle"),  # kettle
    ("c03", "screwdriver with a blue wooden handle"),  # screwdriver
    ("c04", "A wooden chair with four legs"),  # rejected: chair
    ("c05", "A cartoon cat sitting on the ground"),  # rejected: cat (0.71 to "cat's paw")
    ("c06", "3D model of a coffee mug"),  # mug (dropped by the cap of 3 with seed 1)
    ("c07", "Two red mugs on a table"),  # mug
    ("c08", "A green watering can with a long spout"),  # watering can
    ("c09", "A kitchen knife with a black handle"),  # knife
    ("c10", "A set of kitchen knives on a wooden block"),  # knife
    ("c11", "a claw hammer"),  # hammer
    ("c12", "A wooden spoon"),  # spoon
    ("c13", "A red car with black wheels"),  # rejected: car
    ("c14", "A tall green tree"),  # rejected: tree
    ("c15", "A small house with a red roof"),  # rejected: house
    ("c16", "A robot holding a sword"),  # rejected: robot (the sword is not the subject)
    ("c17", "low poly sword"),  # sword
    ("c18", "a cellphone"),  # smartphone by similarity (0.77)
    ("c19", "A teakettle"),  # rejected: teakettle (0.73 to teapot)
    ("c20", "A frying pan with a black handle"),  # pan
    ("c21", "A pair of scissors"),  # scissors
    ("c22", "A toy kettle"),  # kettle
    ("c23", "A grey stone"),  # stone
    ("c24", ""),  # no noun
    ("c25", "A tumbler glass"),  # glass
    ("c26", "A bowl of fruit"),  # bowl
    ("c27", "A black dog"),  # rejected: dog
    ("c28", "A wooden sofa"),  # rejected: sofa
    ("c29", "A large mug"),  # mug
    ("c30", "A person standing next to a bicycle"),  # rejected: person
]


@pytest.fixture(scope="module")
def matcher():
    from funcorr.text import load_text_encoder

    return CategoryMatcher(taxonomy().categories, load_text_encoder("minilm"))


@pytest.fixture(scope="module")
def nouns():
    return HeuristicNouns(taxonomy().categories)


def write_captions(path: Path, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def decisions(out: Path) -> dict[str, list]:
    lines = (out / "decisions.jsonl").read_text().splitlines()
    return {entry[0]: entry for entry in map(json.loads, lines)}


@pytest.mark.parametrize(
    ("caption", "noun"),
    [
        ("A white ceramic mug with a handle.", "mug"),
        ("3D model of a kettle", "kettle"),
        ("a green watering can", "watering can"),  # multi-word category wins over "can"
        ("two watering cans on a shelf", "watering can"),  # plural of a multi-word category
        ("A set of kitchen knives", "knife"),  # generic head + "of", irregular plural
        ("a robot that can fly", "robot"),  # "can" after a boundary is not the subject
        ("A cartoon cat sitting on a chair", "cat"),  # not a category: the plain head noun
        ("a cat's paw tool", "cat's paw"),  # rightmost category inside the phrase
        ("Tea kettle, stainless steel", "kettle"),
        ("red cars", "car"),
        ("", ""),
    ],
)
def test_heuristic_noun(nouns, caption, noun):
    assert nouns.noun(caption) == noun


def test_thirty_captions_exact_report(tmp_path, matcher, nouns):
    captions = write_captions(tmp_path / "captions.csv", THIRTY)
    result = curate(
        captions,
        tmp_path / "out",
        nouns,
        matcher,
        CurateConfig(cap=3, seed=1),
        functions_of=taxonomy().functions_of,
        progress=False,
    )
    rows = {r.uid: r for r in read_manifest(result.manifest)}
    # The mug, kettle and screwdriver are kept under their categories; the chair and cat are not.
    assert rows["c01"].category == "mug" and rows["c02"].category == "kettle"
    assert rows["c03"].category == "screwdriver" and rows["c18"].category == "smartphone"
    assert "c04" not in rows and "c05" not in rows and "c16" not in rows
    # The cap keeps the 3 mugs with the smallest seeded keys: c06 has the largest.
    mugs = ["c01", "c06", "c07", "c29"]
    assert max(mugs, key=lambda uid: selection_key(1, uid)) == "c06"
    assert sorted(u for u, r in rows.items() if r.category == "mug") == ["c01", "c07", "c29"]
    assert all(r.path == "" for r in rows.values())

    report = json.loads(result.report.read_text())
    assert report["totals"] == {
        "records": 30,
        "malformed": 0,
        "no_noun": 1,
        "below_threshold": 10,
        "no_mesh": 0,
        "verify_rejected": 0,
        "duplicate": 0,
        "over_cap": 1,
        "kept": 18,
        "train": 15,
        "test": 3,
        "categories_kept": 14,
    }
    kept = {c: v["kept"] for c, v in report["categories"].items() if v["kept"]}
    assert kept == {
        "bowl": 1,
        "glass": 1,
        "hammer": 1,
        "kettle": 2,
        "knife": 2,
        "mug": 3,
        "pan": 1,
        "scissors": 1,
        "screwdriver": 1,
        "smartphone": 1,
        "spoon": 1,
        "stone": 1,
        "sword": 1,
        "watering can": 1,
    }
    mug = report["categories"]["mug"]
    assert (mug["train"], mug["test"], mug["rejected"], mug["rejected_because"]["over_cap"]) == (
        2,
        1,
        1,
        1,
    )
    assert mug["functions"] == ["scoop-with", "pour-with", "pound-with", "roll-onto", "hang-onto"]
    # Rejections are booked on the nearest category, with the caption as an example.
    paw = report["categories"]["cat's paw"]
    assert paw["kept"] == 0 and paw["rejected_because"]["below_threshold"] == 2
    assert paw["examples"]["below_threshold"][0]["caption"] == "A cartoon cat sitting on the ground"
    assert report["categories"]["club"]["examples"]["below_threshold"][0]["noun"] == "chair"
    # The threshold's effect: cat (0.71) and teakettle (0.73) just below, cellphone (0.77) above.
    assert report["threshold"]["just_below"]["count"] == 2
    assert [e["uid"] for e in report["threshold"]["just_below"]["examples"]] == ["c05", "c19"]
    assert report["threshold"]["just_above"]["count"] == 1
    assert sum(report["threshold"]["histogram"].values()) == 29
    assert report["threshold"]["histogram"]["0.95-1.00"] == 18
    assert len(report["frequent_rejected_nouns"]) == 10


def test_interrupted_run_resumes_to_the_same_output(tmp_path, matcher, nouns, monkeypatch):
    rows = [
        (f"u{i:04d}", f"A {['red', 'blue'][i % 2]} {word}")
        for i, word in enumerate(
            ["mug", "kettle", "chair", "knife", "cat", "spoon", "house", "pan"] * 40
        )
    ]
    captions = write_captions(tmp_path / "captions.csv", rows)
    config = CurateConfig(cap=25, chunk=32)
    whole = curate(captions, tmp_path / "whole", nouns, matcher, config, progress=False)

    calls = {"n": 0}
    real_decide = curate_module._decide

    def dying_decide(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_decide(*args, **kwargs)

    monkeypatch.setattr(curate_module, "_decide", dying_decide)
    with pytest.raises(KeyboardInterrupt):
        curate(captions, tmp_path / "cut", nouns, matcher, config, progress=False)
    monkeypatch.setattr(curate_module, "_decide", real_decide)
    log = tmp_path / "cut" / "decisions.jsonl"
    assert (
        len(log.read_text().splitlines()) == 96 and not (tmp_path / "cut" / "manifest.csv").exists()
    )
    with open(log, "a") as handle:
        handle.write('["u0096", "mu')  # a line torn by a kill mid-write
    resumed = curate(captions, tmp_path / "cut", nouns, matcher, config, progress=False)
    assert resumed.processed_now == len(rows) - 96
    for name in ("manifest.csv", "report.json", "decisions.jsonl"):
        assert (tmp_path / "cut" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), (
            name
        )
    assert (
        whole.kept == 5 * 25
    )  # mug, kettle, knife, spoon, pan; each matched 40 times, capped at 25


def test_changed_settings_or_foreign_folder_are_refused(tmp_path, matcher, nouns):
    captions = write_captions(tmp_path / "captions.csv", THIRTY[:5])
    curate(captions, tmp_path / "out", nouns, matcher, CurateConfig(), progress=False)
    with pytest.raises(InputError, match="different settings \\(threshold\\)"):
        curate(
            captions, tmp_path / "out", nouns, matcher, CurateConfig(threshold=0.6), progress=False
        )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a curation folder"):
        curate(captions, tmp_path / "other", nouns, matcher, CurateConfig(), progress=False)


def test_header_and_malformed_rows(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text('uid,caption\na1,"A mug, white"\nonly-a-uid\n,no uid\na2,a kettle,with a lid\n')
    records = list(read_captions(path))
    assert [r and (r.uid, r.text) for r in records] == [
        ("a1", "A mug, white"),
        None,
        None,
        ("a2", "a kettle,with a lid"),
    ]


def test_meshes_folder_and_list_name_the_files(tmp_path, matcher, nouns):
    nested = tmp_path / "glbs" / "000-001"
    nested.mkdir(parents=True)
    for uid in ("c01", "c02"):
        (nested / f"{uid}.glb").write_bytes(b"")
    captions = write_captions(tmp_path / "captions.csv", THIRTY[:5])
    result = curate(
        captions,
        tmp_path / "out",
        nouns,
        matcher,
        CurateConfig(),
        meshes=tmp_path / "glbs",
        progress=False,
    )
    rows = {r.uid: r for r in read_manifest(result.manifest)}
    assert sorted(rows) == ["c01", "c02"]  # the screwdriver has no mesh
    assert rows["c01"].path == str((nested / "c01.glb").resolve())
    report = json.loads(result.report.read_text())
    assert (
        report["totals"]["no_mesh"] == 1
        and report["categories"]["screwdriver"]["rejected_because"]["no_mesh"] == 1
    )

    listing = tmp_path / "meshes.csv"
    listing.write_text("uid,path\nc03,objs/c03.obj\n")
    result = curate(
        captions, tmp_path / "out2", nouns, matcher, CurateConfig(), meshes=listing, progress=False
    )
    assert [(r.uid, r.path) for r in read_manifest(result.manifest)] == [
        ("c03", str((tmp_path / "objs" / "c03.obj").resolve()))
    ]


def test_llm_nouns_and_verification_through_a_chat_endpoint(tmp_path, matcher):
    names = {
        "c01": "coffee mug",
        "c02": "electric kettle",
        "c03": "screwdriver",
        "c04": "chair",
        "c05": "cat",
    }

    def answer(body):
        text = user_text(body)
        if "Proposed object" in text:  # verification: the screwdriver is refused
            return "No." if "screwdriver" in text else "Yes, it is."
        caption = text.split('"')[1]
        uid = next(u for u, c in THIRTY if c == caption)
        return f'"{names[uid].title()}."'

    captions = write_captions(tmp_path / "captions.csv", THIRTY[:5])
    with fake_chat_server(answer) as server:
        llm = TextLLM(llm_config(server.url, "llama3.1:8b"))
        result = curate(
            captions,
            tmp_path / "out",
            LLMNouns(llm),
            matcher,
            CurateConfig(verify=True),
            llm=llm,
            progress=False,
        )
        assert "object" in system_text(server.requests[0][1])
        assert all(
            body["temperature"] == 0.0 and body["model"] == "llama3.1:8b"
            for _, body in server.requests
        )
        # 5 noun questions, then a check of each of the 3 matches that would be kept.
        assert len(server.requests) == 8
    seen = decisions(tmp_path / "out")
    assert (
        seen["c01"][1:] == ["coffee mug", "mug", seen["c01"][3], "matched"]
        and seen["c01"][3] >= 0.75
    )
    assert seen["c03"][4] == "verify_rejected" and seen["c05"][4] == "below_threshold"
    assert [r.uid for r in read_manifest(result.manifest)] == [
        "c02",
        "c01",
    ]  # kettle, mug (by category)


def test_cli_curate_prints_counts(tmp_path, capsys):
    captions = write_captions(tmp_path / "captions.csv", THIRTY)
    code = main(
        [
            "curate",
            "--captions",
            str(captions),
            "--out",
            str(tmp_path / "out"),
            "--cap",
            "3",
            "--seed",
            "1",
            "--no-progress",
        ]
    )
    assert code == 0
    assert "30 captions: 18 assets kept in 14 categories" in capsys.readouterr().out
    assert (
        main(["curate", "--captions", str(captions), "--out", str(tmp_path / "o"), "--verify"]) == 2
    )
    assert "needs an LLM endpoint" in capsys.readouterr().err


def test_100k_captions_stream_in_bounded_memory(tmp_path, matcher, nouns):
    """Peak traced Python memory of curating N synthetic captions: the bound must not grow
    with N (the 100k-line file is 4.7 MB; holding its records would take ~25 MB)."""
    words = [
        "mug",
        "kettle",
        "knife",
        "chair",
        "cat",
        "spoon",
        "pan",
        "house",
        "screwdriver",
        "tree",
        "jug",
        "hammer",
        "robot",
        "bottle",
        "teapot",
        "fork",
    ]
    colours = ["red", "blue", "green", "white", "black", "wooden", "metal"]

    def peak(n: int) -> tuple[int, int]:
        path = tmp_path / f"captions-{n}.csv"
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            for i in range(n):
                writer.writerow(
                    [
                        f"{i:032x}",
                        f"A {colours[i % 7]} {words[(i * 7919) % 16]} with a handle, item {i}",
                    ]
                )
        matcher.match(words)  # embeddings are cached before measuring, as after the first chunk
        tracemalloc.start()
        try:
            result = curate(
                path, tmp_path / f"out-{n}", nouns, matcher, CurateConfig(), progress=False
            )
            return tracemalloc.get_traced_memory()[1], result.kept
        finally:
            tracemalloc.stop()

    small, kept_small = peak(10_000)
    large, kept_large = peak(100_000)
    print(
        f"peak traced memory: {small / 2**20:.2f} MiB for 10k captions, "
        f"{large / 2**20:.2f} MiB for 100k"
    )
    assert kept_small == kept_large == 11 * 200  # 11 categories, capped at 200 each
    assert large < 8 * 2**20
    assert large - small < 1 * 2**20

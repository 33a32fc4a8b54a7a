"""Taxonomy generation against a scripted chat endpoint; the result drops in with --taxonomy."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from fake_chat import fake_chat_server, system_text, user_text

from funcorr.cli import main
from funcorr.data.manifest import read_manifest
from funcorr.data.part_boxes import VLMBoxProposer, VLMConfig, load_part_descriptions
from funcorr.data.taxonomy import load_taxonomy, taxonomy
from funcorr.data.taxonomy_gen import (
    MERGE_SYSTEM,
    OBJECTS_SYSTEM,
    PARTS_SYSTEM,
    parse_objects,
    parse_parts,
)
from funcorr.images import InputError

OBJECTS = {
    "pour-with": (
        "Common:\n- Kettle\n- teapot (ceramic)\n* **Bottle**\n\n"
        "Uncommon:\n1. boot - it can hold water\n2. kettle\n"
    ),
    "cut-with": (
        "Common:\n- knife\n- cleaver\nUncommon:\n- credit card: its edge is thin\n- ice skate\n"
    ),
}
KETTLE = (
    "- Spout - The curved tube on the side of the body that water leaves through.\n"
    "- Handle - not this one, but the model lists it anyway"
)
TEAPOT = "Here you go:\n- **Spout** - The short tube at the front of the pot.\n- Lid - The top."
BOTTLE = (
    "- Mouth - The round opening at the top of the neck\n- Neck - The narrow part under the mouth."
)
PARTS = {
    ("kettle", "pour-with"): KETTLE,
    ("teapot", "pour-with"): TEAPOT,
    ("bottle", "pour-with"): BOTTLE,
    ("boot", "pour-with"): "- Opening - The top of the shaft where the foot goes in.",
    (
        "knife",
        "cut-with",
    ): "- Blade - The flat metal part.\n- Edge - The sharpened side of the blade.",
    ("cleaver", "cut-with"): "- Blade - The wide rectangular metal part.",
    ("credit card", "cut-with"): "- Edge - The thin long side of the card.",
}


def answer(body: dict) -> str:
    system, user = system_text(body), user_text(body)
    if system == OBJECTS_SYSTEM:
        return OBJECTS[re.search(r'Function: "([^"]+)"', user).group(1)]
    if system == PARTS_SYSTEM:
        category, function = re.search(r'parts of a "([^"]+)" used to "([^"]+)"', user).groups()
        return PARTS.get((category, function), "I do not know.")
    if system == MERGE_SYSTEM:
        return "Blade - The broad flat metal part of the knife ending in a sharp edge."
    raise AssertionError(f"unexpected question: {user}")


def test_parse_objects_and_parts():
    assert parse_objects(OBJECTS["pour-with"]) == ["kettle", "teapot", "bottle", "boot"]
    assert parse_objects("Common:\n- credit card: thin\n- Ice   Skate.\nno bullet here") == [
        "credit card",
        "ice skate",
    ]
    assert parse_parts(PARTS[("teapot", "pour-with")]) == [
        ("spout", "- Spout - The short tube at the front of the pot."),
        ("lid", "- Lid - The top."),
    ]
    assert parse_parts("- Cutting edge: the sharp side\n- nothing") == [
        ("cutting edge", "- Cutting edge - the sharp side.")
    ]


def test_generated_taxonomy_drops_in_everywhere(tmp_path, capsys):
    out = tmp_path / "tax"
    with fake_chat_server(answer) as server:
        llm = ["--llm-url", server.url, "--llm-model", "gpt-test"]
        assert (
            main(
                [
                    "taxonomy",
                    "objects",
                    "--functions",
                    "pour-with,cut-with",
                    "--out",
                    str(out),
                    *llm,
                ]
            )
            == 0
        )
        assert main(["taxonomy", "parts", "--taxonomy", str(out), "--out", str(out), *llm]) == 0
        asked = len(server.requests)
        assert asked == 2 + 8  # two object lists, then one question per (category, function)
        before = {p.name: p.read_bytes() for p in out.glob("*.json")}
        assert main(["taxonomy", "parts", "--taxonomy", str(out), "--out", str(out), *llm]) == 0
        assert len(server.requests) == asked  # every reply came from OUT/llm-replies.jsonl
        assert {p.name: p.read_bytes() for p in out.glob("*.json")} == before
    printed = capsys.readouterr().out
    assert (
        "2 functions, 8 distinct objects" in printed
        and "1 category-function pairs without a part" in printed
    )

    tax = load_taxonomy(out)
    assert dict(tax.action2objects) == {
        "pour-with": ("kettle", "teapot", "bottle", "boot"),
        "cut-with": ("knife", "cleaver", "credit card", "ice skate"),
    }
    assert "ice skate" not in tax.part2function  # its answer named no part
    assert tax.functional_parts("kettle", "pour-with") == ["spout", "handle"]
    assert tax.functional_parts("bottle", "pour-with") == ["mouth", "neck"]
    assert tax.describe("teapot", "spout") == "- Spout - The short tube at the front of the pot."
    assert json.loads((out / "Objaverse_obj2part_descriptions.json").read_text())[
        "credit card"
    ] == {"edge": "- Edge - The thin long side of the card."}

    # The pseudo-labeller words its part questions from the taxonomy in use.
    assert load_part_descriptions(out)["teapot"]["spout"].startswith("- Spout - The short tube")
    proposer = VLMBoxProposer(
        VLMConfig(base_url="http://127.0.0.1:9/v1", model="m", taxonomy=str(out))
    )

    class Image:
        rgb = np.zeros((8, 8, 3), np.uint8)

    body, _, _ = proposer.request_body(Image(), "teapot", "spout")
    assert (
        '"spout - the short tube at the front of the pot"'
        in body["messages"][0]["content"][0]["text"]
    )
    shipped, _, _ = VLMBoxProposer(
        VLMConfig(base_url="http://127.0.0.1:9/v1", model="m")
    ).request_body(Image(), "teapot", "spout")
    assert "short tube at the front" not in shipped["messages"][0]["content"][0]["text"]
    proposer.close()

    # Curation matches captions against the generated categories.
    captions = tmp_path / "captions.csv"
    with open(captions, "w", newline="") as handle:
        csv.writer(handle).writerows(
            [("a", "A plastic credit card"), ("b", "A white ceramic mug"), ("c", "A boot")]
        )
    assert (
        main(
            [
                "curate",
                "--captions",
                str(captions),
                "--taxonomy",
                str(out),
                "--out",
                str(tmp_path / "cur"),
                "--no-progress",
            ]
        )
        == 0
    )
    assert [(r.uid, r.category) for r in read_manifest(tmp_path / "cur" / "manifest.csv")] == [
        ("c", "boot"),
        ("a", "credit card"),
    ]


def test_parts_merge_descriptions_of_a_part_named_for_two_functions(tmp_path):
    from funcorr.data.taxonomy_gen import generate_parts
    from funcorr.data.text_llm import TextLLM, llm_config

    replies = {
        "cut-with": "- Blade - The flat metal part.",
        "scrape-with": "- Blade - The straight metal strip used flat against a surface.",
    }

    def scripted(body):
        if system_text(body) == MERGE_SYSTEM:
            assert "The flat metal part." in user_text(
                body
            ) and "straight metal strip" in user_text(body)
            return "Blade - The flat straight metal strip of the knife."
        return replies[re.search(r'used to "([^"]+)"', user_text(body)).group(1)]

    with fake_chat_server(scripted) as server, TextLLM(llm_config(server.url, "m")) as llm:
        tables = generate_parts(llm, {"cut-with": ["knife"], "scrape-with": ["knife"]})
        assert len(server.requests) == 3
    assert tables.part2function == {"knife": {"blade": ["cut-with", "scrape-with"]}}
    assert tables.descriptions == {
        "knife": {"blade": "- Blade - The flat straight metal strip of the knife."}
    }


def test_taxonomy_folder_errors(tmp_path):
    with pytest.raises(InputError, match="not a folder"):
        load_taxonomy(tmp_path / "missing")
    with pytest.raises(InputError, match="needs action2objects.json"):
        load_taxonomy(tmp_path)
    (tmp_path / "action2objects.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="must hold a JSON object"):
        load_taxonomy(tmp_path)
    assert load_taxonomy(None) is taxonomy()


def test_taxonomy_commands_need_an_endpoint(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FUNCORR_LLM_BASE_URL", raising=False)
    assert main(["taxonomy", "objects", "--out", str(tmp_path), "--llm-model", "m"]) == 2
    assert "needs an LLM endpoint" in capsys.readouterr().err

"""LVLM multiple-choice adapter against a fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image

from funcorr.eval.keypoint_pairs import Keypoint, KeypointPair, KeypointView, Match
from funcorr.eval.lvlm import (
    LETTERS,
    LVLMAnswerer,
    MCQuestion,
    OpenAIChatClient,
    RandomAnswerer,
    RandomPlusPlusAnswerer,
    build_messages,
    circular,
    evaluate_lvlm,
    parse_choice,
    questions_from_pairs,
    read_questions,
)
from funcorr.images import InputError


class FakeLVLM(BaseHTTPRequestHandler):
    """Answers every question with ``reply`` and records the requests it saw."""

    reply = "The answer is \\boxed{B}."
    requests: ClassVar[list[dict]] = []
    fail_first = 0

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(
            {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
        )
        if type(self).fail_first > 0:
            type(self).fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        payload = json.dumps(
            {"choices": [{"message": {"role": "assistant", "content": type(self).reply}}]}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep the test log quiet
        pass


@pytest.fixture
def server():
    FakeLVLM.requests = []
    FakeLVLM.fail_first = 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeLVLM)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def make_pair(tmp_path: Path) -> KeypointPair:
    for name in ("src.png", "tgt.png"):
        Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(tmp_path / name)
    names = [
        ("front_left_wheel", "wheel"),
        ("rear_left_wheel", "wheel"),
        ("front_right_wheel", "wheel"),
        ("roof", "roof"),
        ("headlight", "light"),
    ]
    points = [(10, 50), (70, 50), (20, 45), (40, 10), (5, 30)]
    kps = tuple(Keypoint(i, n, p, i, c) for i, ((n, c), p) in enumerate(zip(names, points)))
    wheels = (0, 1, 2)
    return KeypointPair(
        "p1",
        "intra",
        "car",
        KeypointView("car", tmp_path / "src.png", None, kps),
        KeypointView("car", tmp_path / "tgt.png", None, kps),
        tuple(Match(n, (i,), (i,)) for i, (n, _) in enumerate(names)),
        (Match("wheel", wheels, wheels), Match("roof", (3,), (3,)), Match("light", (4,), (4,))),
    )


def test_questions_prefer_same_concept_distractors(tmp_path):
    questions = questions_from_pairs([make_pair(tmp_path)], "visual+description", seed=0)
    assert len(questions) == 5
    wheel = questions[0]
    assert wheel.candidate_concepts.count("wheel") == 3  # both other wheels are distractors
    assert wheel.candidates[LETTERS.index(wheel.answer)] == (10, 50)
    assert wheel.description == "the front left wheel of the car"
    assert (
        questions_from_pairs([make_pair(tmp_path)], "visual+description", seed=0) == questions
    )  # seeded


def test_circular_rotations_keep_the_answer_on_the_same_point(tmp_path):
    question = questions_from_pairs([make_pair(tmp_path)], "visual")[1]
    rotations = circular(question)
    assert len(rotations) == 4 and len({r.answer for r in rotations}) == 4
    for r in rotations:
        assert (
            r.candidates[LETTERS.index(r.answer)]
            == question.candidates[LETTERS.index(question.answer)]
        )
        assert r.group_id == question.group_id


@pytest.mark.parametrize(
    ("reply", "choice"),
    [
        ("\\boxed{C}", "C"),
        ("Final answer: D", "D"),
        ("B", "B"),
        ("(A) the wheel", "A"),
        ("The answer is c.", "C"),
        ("I think it is a wheel, so B", "B"),
        ("Between A and D, I pick D. Final answer is A", "A"),
        ("no idea", ""),
        ("A or B", "A"),
    ],
)
def test_parse_choice(reply, choice):
    assert parse_choice(reply) == choice


@pytest.mark.parametrize("mode", ["visual", "visual+description", "description"])
def test_openai_client_against_fake_server(tmp_path, server, mode):
    questions = questions_from_pairs([make_pair(tmp_path)], mode)
    client = OpenAIChatClient(server, "fake-vl", api_key="k123")
    results = evaluate_lvlm(questions, LVLMAnswerer(client))
    # Every rotation was asked; the server always says B.
    assert len(FakeLVLM.requests) == 4 * len(questions)
    expected = sum(r.answer == "B" for q in questions for r in circular(q)) / (4 * len(questions))
    assert results.average_accuracy == pytest.approx(expected)
    assert results.circular_accuracy == 0.0  # a constant letter can never survive all rotations
    request = FakeLVLM.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer k123"
    assert request["body"]["model"] == "fake-vl" and request["body"]["temperature"] == 0.0
    content = request["body"]["messages"][0]["content"]
    images = [part for part in content if part["type"] == "image_url"]
    text = content[0]["text"]
    assert len(images) == (1 if mode == "description" else 2)
    assert ("front left wheel" in text) == (mode != "visual")
    decoded = Image.open(
        io.BytesIO(base64.b64decode(images[-1]["image_url"]["url"].split(",", 1)[1]))
    )
    assert (
        decoded.size == (80, 60) and np.asarray(decoded).std() > 0
    )  # candidate markers were drawn


def test_client_retries_server_errors_then_reports(tmp_path, server):
    question = questions_from_pairs([make_pair(tmp_path)], "visual")[0]
    FakeLVLM.fail_first = 1
    assert (
        OpenAIChatClient(server, "m", retries=1).complete(build_messages(question))
        == FakeLVLM.reply
    )
    FakeLVLM.fail_first = 5
    with pytest.raises(InputError, match="503"):
        OpenAIChatClient(server, "m", retries=1).complete(build_messages(question))
    with pytest.raises(InputError, match="Cannot reach"):
        OpenAIChatClient("http://127.0.0.1:9/v1", "m", retries=0, timeout_s=2).complete(
            build_messages(question)
        )


def test_random_baselines(tmp_path):
    questions = questions_from_pairs([make_pair(tmp_path)] * 40, "visual", seed=1)
    plain = evaluate_lvlm(questions, RandomAnswerer(0))
    informed = evaluate_lvlm(questions, RandomPlusPlusAnswerer(0))
    assert 0.15 < plain.average_accuracy < 0.35
    # Wheels: 3 wheel candidates -> 1/3; roof and headlight: the only candidate of their concept -> 1.
    assert informed.average_accuracy == pytest.approx((3 * (1 / 3) + 2) / 5, abs=0.08)
    assert informed.average_accuracy > plain.average_accuracy


def test_question_file_and_validation(tmp_path):
    make_pair(tmp_path)
    rows = [
        {
            "question_id": "q1",
            "mode": "description",
            "target_image": "tgt.png",
            "candidates": [[1, 2], [3, 4], [5, 6], [7, 8]],
            "answer": "C",
            "description": "the spout of the kettle",
        }
    ]
    (tmp_path / "q.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    (question,) = read_questions(tmp_path / "q.jsonl")
    assert question.target_image == (tmp_path / "tgt.png").resolve() and question.candidates[2] == (
        5,
        6,
    )
    with pytest.raises(InputError):
        MCQuestion(
            "bad", "bad", "visual", tmp_path / "tgt.png", ((0, 0),) * 4, "A"
        )  # visual needs a marked source


def test_cli_lvlm_with_fake_server_and_baseline(tmp_path, server):
    from funcorr.cli import main

    rows = [
        {
            "question_id": f"q{i}",
            "mode": "description",
            "target_image": str(tmp_path / "tgt.png"),
            "candidates": [[1, 2], [30, 4], [5, 40], [70, 50]],
            "answer": "B",
            "description": "the spout",
        }
        for i in range(3)
    ]
    make_pair(tmp_path)
    (tmp_path / "q.json").write_text(json.dumps(rows))
    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "lvlm",
                "--questions",
                str(tmp_path / "q.json"),
                "--mode",
                "description",
                "--base-url",
                server,
                "--model",
                "fake",
                "--no-circular",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    document = json.loads((out / "lvlm_fake_description.json").read_text())
    assert document["results"]["average_accuracy"] == 1.0 and document["results"]["questions"] == 3
    assert (
        main(
            [
                "eval",
                "lvlm",
                "--questions",
                str(tmp_path / "q.json"),
                "--mode",
                "description",
                "--baseline",
                "random",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert (out / "lvlm_random_description.md").is_file()
    assert (
        main(["eval", "lvlm", "--questions", str(tmp_path / "q.json"), "--out", str(out)]) == 2
    )  # neither LVLM nor baseline

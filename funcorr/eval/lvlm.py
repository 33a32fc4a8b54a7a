"""SOCO's multiple-choice setting for large vision-language models (LVLMs).

One idea at about 490 lines: SOCO's multiple-choice benchmark, from questions to the endpoint
client to the scores; the parts are specific to this setting and used nowhere else.

The target image shows four candidate keypoints labelled A-D; the query is

* ``visual``: the source image with the query keypoint marked (SOCO "Vis."),
* ``visual+description``: the marked source image plus the keypoint's description ("Vis.+Desc."),
* ``description``: the description only ("Desc.").

Scores: average accuracy over questions, and circular accuracy (a question counts only when
every rotation of its candidate order is answered correctly), as SOCO's ``evaluate_soco_c.py``.

Baselines: ``random`` picks one of the four letters uniformly; ``random++`` knows the query's
concept and picks uniformly among the candidates of that concept (e.g. "some wheel"), i.e. the
score of a model with perfect concept (CC) but no object-relative (SOC) understanding. The SOCO
sources available to us do not define Random++; this definition is ours and is stated in
every result file.

Any OpenAI-compatible ``/chat/completions`` endpoint works (vLLM, SGLang, llama.cpp, OpenAI).
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from PIL import Image, ImageDraw

from funcorr.eval.keypoint_pairs import KeypointPair, concept_targets
from funcorr.images import InputError

QueryMode = Literal["visual", "visual+description", "description"]
QUERY_MODES: tuple[QueryMode, ...] = ("visual", "visual+description", "description")
LETTERS = "ABCD"
RANDOM_PLUS_PLUS_DEFINITION = "uniform among the candidates that share the query keypoint's concept (all four when none is known)"


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice question. Candidates are shown as A, B, C, D in this order (xy in
    original target pixels); ``answer`` is the correct letter; ``group_id`` ties the rotations
    of one question together for circular accuracy."""

    question_id: str
    group_id: str
    mode: QueryMode
    target_image: Path
    candidates: tuple[tuple[float, float], ...]
    answer: str
    source_image: Path | None = None
    query_point: tuple[float, float] | None = None
    description: str | None = None
    candidate_concepts: tuple[str | None, ...] = ()
    query_concept: str | None = None
    category: str = ""

    def __post_init__(self) -> None:
        if len(self.candidates) != len(LETTERS):
            raise InputError(
                f"Question {self.question_id}: {len(LETTERS)} candidates are needed, got {len(self.candidates)}."
            )
        if self.answer not in LETTERS:
            raise InputError(
                f"Question {self.question_id}: answer must be one of {LETTERS}, got {self.answer!r}."
            )
        if self.mode != "description" and (self.source_image is None or self.query_point is None):
            raise InputError(
                f"Question {self.question_id}: mode {self.mode} needs a source image and query point."
            )
        if self.mode != "visual" and not self.description:
            raise InputError(f"Question {self.question_id}: mode {self.mode} needs a description.")


def describe(keypoint_name: str, category: str) -> str:
    """'front_left_wheel', 'car' -> 'the front left wheel of the car' (when no description is annotated)."""
    return f"the {keypoint_name.replace('_', ' ').replace('-', ' ').strip()} of the {category.replace('_', ' ')}"


def questions_from_pairs(
    pairs: Iterable[KeypointPair],
    mode: QueryMode,
    seed: int = 0,
    descriptions: Mapping[str, str] | None = None,
) -> list[MCQuestion]:
    """Build questions from keypoint pairs: for every semantic match whose target has >= 4
    keypoints, the true target keypoint plus three distractors, same-concept keypoints first
    (the hard negatives SOC is about), in a seeded random order."""
    gen = torch.Generator().manual_seed(seed)
    questions = []
    for pair in pairs:
        same_concept = concept_targets(pair)
        targets = pair.target.keypoints
        if len(targets) < len(LETTERS):
            continue
        for match in pair.semantic_matches:
            s, t = match.source_indices[0], match.target_indices[0]
            hard = [i for i in same_concept.get(s, ()) if i != t]
            easy = [i for i in range(len(targets)) if i != t and i not in hard]
            distractors = (
                [hard[i] for i in torch.randperm(len(hard), generator=gen)]
                + [easy[i] for i in torch.randperm(len(easy), generator=gen)]
            )[:3]
            order = [[t, *distractors][i] for i in torch.randperm(len(LETTERS), generator=gen)]
            source_kp = pair.source.keypoints[s]
            description = (descriptions or {}).get(source_kp.name) or describe(
                source_kp.name, pair.source.category
            )
            questions.append(
                MCQuestion(
                    question_id=f"{pair.pair_id}-{source_kp.name}",
                    group_id=f"{pair.pair_id}-{source_kp.name}",
                    mode=mode,
                    target_image=pair.target.image_path,
                    candidates=tuple(targets[i].position for i in order),
                    answer=LETTERS[order.index(t)],
                    source_image=None if mode == "description" else pair.source.image_path,
                    query_point=None if mode == "description" else source_kp.position,
                    description=None if mode == "visual" else description,
                    candidate_concepts=tuple(targets[i].concept_name for i in order),
                    query_concept=source_kp.concept_name,
                    category=pair.group,
                )
            )
    return questions


def circular(question: MCQuestion) -> list[MCQuestion]:
    """The four rotations of the candidate order (SOCO's circular evaluation)."""
    n = len(LETTERS)
    right = LETTERS.index(question.answer)
    out = []
    for shift in range(n):
        order = [(i + shift) % n for i in range(n)]
        out.append(
            replace(
                question,
                question_id=f"{question.question_id}-r{shift}",
                candidates=tuple(question.candidates[i] for i in order),
                candidate_concepts=tuple(question.candidate_concepts[i] for i in order)
                if question.candidate_concepts
                else (),
                answer=LETTERS[order.index(right)],
            )
        )
    return out


# --------------------------------------------------------------------------- prompts


def draw_markers(
    image: Image.Image,
    points: Sequence[tuple[float, float]],
    labels: Sequence[str] | None,
    colour: tuple[int, int, int],
) -> Image.Image:
    """A copy of ``image`` with a filled dot (and a label) at each point; sizes scale with the image."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    radius = max(4, round(max(out.size) / 90))
    for i, (x, y) in enumerate(points):
        draw.ellipse(
            [x - radius, y - radius, x + radius, y + radius],
            fill=colour,
            outline=(255, 255, 255),
            width=max(1, radius // 3),
        )
        if labels:
            draw.text(
                (x + radius + 2, y - 2 * radius),
                labels[i],
                fill=colour,
                stroke_width=2,
                stroke_fill=(255, 255, 255),
            )
    return out


def _data_url(image: Image.Image, max_side: int) -> str:
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.BICUBIC
        )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def prompt_text(question: MCQuestion) -> str:
    """The instruction for ``question``'s mode (the images are attached separately)."""
    if question.mode == "visual":
        query = "The first image shows an object with one keypoint marked by a red dot."
    elif question.mode == "visual+description":
        query = f"The first image shows an object with one keypoint marked by a red dot: {question.description}."
    else:
        query = f"Consider {question.description}."
    where = "the second image" if question.mode != "description" else "the image"
    return (
        f"{query} In {where}, four candidate points are marked in green and labelled A, B, C and D. "
        "Which candidate is the semantically corresponding point on this object? "
        "Answer with a single letter (A, B, C or D)."
    )


def build_messages(question: MCQuestion, max_side: int = 768) -> list[dict[str, Any]]:
    """OpenAI chat messages: text, then (marked source image,) then the target with candidates."""
    with Image.open(question.target_image) as target:
        target_marked = draw_markers(target, question.candidates, list(LETTERS), (0, 170, 60))
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt_text(question)}]
    if question.mode != "description":
        with Image.open(question.source_image) as source:
            source_marked = draw_markers(source, [question.query_point], None, (230, 30, 30))
        content.append(
            {"type": "image_url", "image_url": {"url": _data_url(source_marked, max_side)}}
        )
    content.append({"type": "image_url", "image_url": {"url": _data_url(target_marked, max_side)}})
    return [{"role": "user", "content": content}]


_ANSWER = r"([A-D])"


def parse_choice(text: str | None) -> str:
    """Extract the chosen letter from a model reply ('' when none can be found).

    Explicit forms first (``\\boxed{B}``, "final answer: B", "the answer is B"), then a single
    distinct standalone letter, then a letter that opens the reply."""
    text = text or ""
    for pattern in (
        rf"\\boxed\s*{{\s*{_ANSWER}\s*}}",
        rf"final\s+answer\s*(?:is|:)?\s*\$?\s*{_ANSWER}(?![A-Za-z0-9])",
        rf"answer\s+is\s*:?\s*\(?{_ANSWER}(?![A-Za-z0-9])",
    ):
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if found:
            return found[-1].upper()
    # Case-sensitive here: a lone lower-case "a" is an article, not a choice.
    standalone = list(dict.fromkeys(re.findall(rf"(?<![A-Za-z0-9]){_ANSWER}(?![A-Za-z0-9])", text)))
    if len(standalone) == 1:
        return standalone[0]
    opening = re.match(rf"^\s*\(?{_ANSWER}(?![A-Za-z0-9])", text)
    return opening.group(1) if opening else ""


# --------------------------------------------------------------------------- answerers


class Answerer(Protocol):
    """Anything that answers a question with raw text (an LVLM, a baseline)."""

    name: str

    def __call__(self, question: MCQuestion) -> str: ...


@dataclass
class OpenAIChatClient:
    """Minimal OpenAI-compatible chat client: POST ``{base_url}/chat/completions``."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 120.0
    max_tokens: int = 256
    temperature: float = 0.0
    retries: int = 2

    def complete(self, messages: list[dict[str, Any]]) -> str:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        url = self.base_url.rstrip("/") + "/chat/completions"
        for attempt in range(self.retries + 1):
            try:
                response = httpx.post(url, json=body, headers=headers, timeout=self.timeout_s)
                if response.status_code >= 500 and attempt < self.retries:
                    time.sleep(0.5 * 2**attempt)
                    continue
                response.raise_for_status()
                return str(response.json()["choices"][0]["message"]["content"] or "")
            except (httpx.TransportError, httpx.TimeoutException) as err:
                if attempt == self.retries:
                    raise InputError(f"Cannot reach the LVLM endpoint {url}: {err}") from err
                time.sleep(0.5 * 2**attempt)
            except httpx.HTTPStatusError as err:
                raise InputError(
                    f"The LVLM endpoint {url} answered {err.response.status_code}: {err.response.text[:200]}"
                ) from err
            except (KeyError, IndexError, ValueError) as err:
                raise InputError(
                    f"The LVLM endpoint {url} did not return an OpenAI chat completion: {err}"
                ) from err
        raise AssertionError("unreachable")

    def check_reachable(self) -> None:
        """One clear error before any question is asked when the server is down."""
        from funcorr.data.part_boxes import check_reachable

        check_reachable(self.base_url, min(self.timeout_s, 10.0), what="LVLM")


@dataclass
class LVLMAnswerer:
    client: OpenAIChatClient
    max_side: int = 768

    @property
    def name(self) -> str:
        return self.client.model

    def __call__(self, question: MCQuestion) -> str:
        return self.client.complete(build_messages(question, self.max_side))


@dataclass
class RandomAnswerer:
    """Uniformly random letter (expected accuracy 1/4, circular 1/4^4)."""

    seed: int = 0
    name: str = "random"
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, question: MCQuestion) -> str:
        return LETTERS[int(torch.randint(len(LETTERS), (1,), generator=self.generator))]


@dataclass
class RandomPlusPlusAnswerer:
    """Random among the candidates of the query's concept (see module docstring)."""

    seed: int = 0
    name: str = "random++"
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def __call__(self, question: MCQuestion) -> str:
        allowed = [
            i
            for i, c in enumerate(question.candidate_concepts)
            if question.query_concept is not None and c == question.query_concept
        ]
        allowed = allowed or list(range(len(LETTERS)))
        return LETTERS[allowed[int(torch.randint(len(allowed), (1,), generator=self.generator))]]


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class AnswerRecord:
    question_id: str
    group_id: str
    category: str
    answer: str
    reply: str
    choice: str

    @property
    def correct(self) -> bool:
        return self.choice == self.answer


@dataclass
class LVLMResults:
    answerer: str
    mode: str
    records: list[AnswerRecord]

    @property
    def average_accuracy(self) -> float:
        return (
            sum(r.correct for r in self.records) / len(self.records)
            if self.records
            else float("nan")
        )

    @property
    def circular_accuracy(self) -> float:
        groups: dict[str, list[bool]] = defaultdict(list)
        for r in self.records:
            groups[r.group_id].append(r.correct)
        return sum(all(v) for v in groups.values()) / len(groups) if groups else float("nan")

    @property
    def unparsed(self) -> int:
        return sum(r.choice == "" for r in self.records)

    def to_record(self) -> dict[str, Any]:
        per_category: dict[str, list[bool]] = defaultdict(list)
        for r in self.records:
            per_category[r.category].append(r.correct)
        return {
            "method": self.answerer,
            "mode": self.mode,
            "average_accuracy": self.average_accuracy,
            "circular_accuracy": self.circular_accuracy,
            "questions": len(self.records),
            "groups": len({r.group_id for r in self.records}),
            "unparsed_replies": self.unparsed,
            "per_category_accuracy": {c: sum(v) / len(v) for c, v in sorted(per_category.items())},
            "random_plus_plus": RANDOM_PLUS_PLUS_DEFINITION,
            "answers": [{**asdict(r), "correct": r.correct} for r in self.records],
        }


def evaluate_lvlm(
    questions: Sequence[MCQuestion],
    answerer: Answerer,
    circular_eval: bool = True,
    progress: bool = False,
) -> LVLMResults:
    """Ask every question (each rotation when ``circular_eval``) and score the parsed replies."""
    from tqdm import tqdm

    if not questions:
        raise InputError(
            "No multiple-choice questions to ask (need pairs whose target has >= 4 keypoints)."
        )
    asked = [r for q in questions for r in (circular(q) if circular_eval else [q])]
    records = []
    for question in tqdm(asked, desc=f"lvlm {answerer.name}", unit="q", disable=not progress):
        reply = answerer(question)
        records.append(
            AnswerRecord(
                question.question_id,
                question.group_id,
                question.category,
                question.answer,
                reply,
                parse_choice(reply),
            )
        )
    modes = sorted({q.mode for q in questions})
    return LVLMResults(answerer.name, ",".join(modes), records)


def read_questions(path: str | Path) -> list[MCQuestion]:
    """Questions from a JSON list / JSONL file with :class:`MCQuestion` field names; paths are
    relative to the file's folder."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        rows = (
            json.loads(text)
            if text.lstrip().startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not JSON or JSONL: {err}") from err
    out = []
    for row in rows:
        row = dict(row)
        for key in ("target_image", "source_image"):
            if row.get(key) is not None:
                row[key] = (path.parent / row[key]).resolve()
        for key in ("candidates", "candidate_concepts"):
            if key in row:
                row[key] = tuple(tuple(v) if isinstance(v, list) else v for v in row[key])
        if row.get("query_point") is not None:
            row["query_point"] = tuple(row["query_point"])
        row.setdefault("group_id", row["question_id"])
        try:
            out.append(MCQuestion(**row))
        except TypeError as err:
            raise InputError(f"{path}: bad question {row.get('question_id')}: {err}") from err
    return out

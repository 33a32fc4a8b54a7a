"""Regenerate the taxonomy with a language model (paper Sec. 7.1, 7.2; prompts of Figs. 13-15).

Two steps, each writing files with the shipped taxonomy's names and schema, so the output
folder drops in wherever a command takes ``--taxonomy``:

* :func:`generate_objects` -- per function, the object categories that can perform it, asked
  as common objects plus uncommon ones whose shape still affords the function (Fig. 13)
  -> ``action2objects.json``;
* :func:`generate_parts` -- per (category, function), the parts that perform the function,
  asked with examples of good answers (the acting part) and bad ones (the part a hand holds)
  (Figs. 14, 15) -> ``Objaverse_obj2part2function.json`` and
  ``Objaverse_obj2part_descriptions.json``. A part named for several functions with different
  descriptions gets one merged description, as the paper's curation did.

The prompts are funcorr's own wording of that structure.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from funcorr.images import atomic_path

# --- prompts -----------------------------------------------------------------------------------

OBJECTS_SYSTEM = (
    "You help build a catalogue of physical objects organised by what they can be used to do. "
    'A function is written as a verb with a preposition, such as "pour-with" (the object pours '
    'a liquid out of itself) or "hang-onto" (something can be hung on the object). You list '
    "concrete, rigid objects a person could hold or place, never materials, body parts or places. "
    'Write one object per line as "- name": singular, lower case, no explanations.'
)
OBJECTS_USER = (
    'Function: "{function}".\n'
    'First, under the heading "Common:", list the objects people usually {phrase}.\n'
    'Then, under the heading "Uncommon:", list objects made for something else that one could '
    "still {phrase} because one of their parts has the right shape.\n"
    "Give about {count} objects in each list."
)

PARTS_SYSTEM = (
    "You describe objects part by part for a robot that must learn which region of an object does "
    "the work of an action. Name only the parts that act on the world during the action -- the "
    "surface that touches, cuts, holds liquid or takes the weight -- and never the part a hand "
    "grips to perform it. Answer with a bulleted list, one part per line, as "
    '"- Part name - one sentence on what the part looks like and where it is".\n'
    "Examples of questions with a good and a bad answer:\n"
    'Question: parts of a "spoon" used to "scoop-with"?\n'
    "Good answer:\n"
    "- Bowl - The shallow oval hollow at the end of the spoon that holds what is scooped.\n"
    "Bad answer:\n- Handle - The long stem the hand holds while scooping.\n"
    'Question: parts of a "hammer" used to "pound-with"?\n'
    "Good answer:\n- Face - The flat round end of the metal head that strikes the nail.\n"
    "Bad answer:\n- Grip - The rubber-covered end of the handle held in the hand.\n"
    'Question: parts of a "watering can" used to "pour-with"?\n'
    "Good answer:\n"
    "- Spout - The long narrow tube rising from the body through which water leaves.\n"
    "- Rose - The perforated cap at the tip of the spout that spreads the water.\n"
    "Bad answer:\n- Handle - The arched bar over the top used to lift and tilt the can.\n"
    "- Body - The container that stores the water."
)
PARTS_USER = (
    'Question: parts of a "{category}" used to "{function}"? Answer with the bulleted list only.'
)

MERGE_SYSTEM = (
    "You merge several descriptions of the same object part into one. Keep what identifies the "
    "part (shape, position on the object); drop repetition. Answer with one line: "
    '"- Part name - sentence".'
)
MERGE_USER = 'Object: "{category}". Part: "{part}". Descriptions:\n{descriptions}'

# --- parsing -----------------------------------------------------------------------------------

_BULLET = re.compile(r"^\s*(?:[-*\u2022]|\d+[.)])\s+(.*\S)\s*$")
_PART_LINE = re.compile(r"^(?P<name>[^-\u2013\u2014:]+?)\s*(?:[-\u2013\u2014:]\s+)(?P<text>.+)$")


def _bullets(reply: str) -> list[str]:
    """The text of each bulleted or numbered line, markdown emphasis removed."""
    items = []
    for line in reply.splitlines():
        match = _BULLET.match(line.replace("**", "").replace("__", ""))
        if match:
            items.append(match.group(1).strip())
    return items


def parse_objects(reply: str) -> list[str]:
    """Object names from a list reply: lower case, without explanations, duplicates dropped."""
    names = []
    for item in _bullets(reply):
        name = re.split(r"\s[-\u2013\u2014]\s|:|\(", item, maxsplit=1)[0]
        name = " ".join(name.strip().strip(".\"'`").lower().split())
        if name and len(name) <= 40 and name not in names:
            names.append(name)
    return names


def parse_parts(reply: str) -> list[tuple[str, str]]:
    """(part name, description line "- Part - text.") pairs from a parts reply, in reply order."""
    parts = []
    for item in _bullets(reply):
        match = _PART_LINE.match(item)
        if not match:
            continue
        name = " ".join(match.group("name").strip().strip("\"'`").split())
        text = match.group("text").strip()
        if name and text and len(name) <= 40:
            text = text if text.endswith(".") else text + "."
            parts.append((name.lower(), f"- {name[0].upper() + name[1:]} - {text}"))
    return parts


def function_phrase(function: str) -> str:
    """ "pour-with" -> "pour with": how a function reads inside a sentence."""
    return function.replace("-", " ").replace("_", " ")


# --- generation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartTables:
    """part2function: category -> part -> functions; descriptions: category -> part -> line;
    empty: (category, function) pairs whose answer named no part."""

    part2function: dict[str, dict[str, list[str]]]
    descriptions: dict[str, dict[str, str]]
    empty: list[tuple[str, str]]


def generate_objects(
    llm, functions: Sequence[str], per_list: int = 15, progress: Callable = iter
) -> dict[str, list[str]]:
    """function -> object categories (common first, then uncommon), one question per function."""
    out = {}
    for function in progress(functions):
        user = OBJECTS_USER.format(
            function=function, phrase=function_phrase(function), count=per_list
        )
        out[function] = parse_objects(llm.ask(OBJECTS_SYSTEM, user))
    return out


def generate_parts(
    llm,
    action2objects: Mapping[str, Iterable[str]],
    categories: Iterable[str] | None = None,
    progress: Callable = iter,
) -> PartTables:
    """Functional parts and their descriptions for every (category, function) of the table.

    categories: restrict to these (default: every category of ``action2objects``).
    """
    wanted = set(categories) if categories is not None else None
    pairs = [
        (category, function)
        for function, objects in action2objects.items()
        for category in objects
        if wanted is None or category in wanted
    ]
    pairs.sort(key=lambda pair: pair[0])  # stable: functions keep file order within a category
    part2function: dict[str, dict[str, list[str]]] = {}
    collected: dict[str, dict[str, list[str]]] = {}
    empty = []
    for category, function in progress(pairs):
        reply = llm.ask(PARTS_SYSTEM, PARTS_USER.format(category=category, function=function))
        parts = parse_parts(reply)
        if not parts:
            empty.append((category, function))
        for name, line in parts:
            functions = part2function.setdefault(category, {}).setdefault(name, [])
            if function not in functions:
                functions.append(function)
            lines = collected.setdefault(category, {}).setdefault(name, [])
            if line not in lines:
                lines.append(line)
    descriptions = {
        category: {
            part: merge_descriptions(llm, category, part, lines) for part, lines in parts.items()
        }
        for category, parts in collected.items()
    }
    return PartTables(part2function, descriptions, empty)


def merge_descriptions(llm, category: str, part: str, lines: Sequence[str]) -> str:
    """One description line for a part; the LLM merges several, the first wins if it fails."""
    if len(lines) == 1:
        return lines[0]
    reply = llm.ask(
        MERGE_SYSTEM, MERGE_USER.format(category=category, part=part, descriptions="\n".join(lines))
    )
    merged = parse_parts(reply if reply.lstrip().startswith(("-", "*")) else "- " + reply.strip())
    return merged[0][1] if merged else lines[0]


def write_json(path: str | os.PathLike, data) -> Path:
    """Write a taxonomy table atomically (indent 1, as the shipped files)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

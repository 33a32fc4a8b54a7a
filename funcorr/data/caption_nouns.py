"""Captions in, one object noun per caption out (paper Sec. 7.3, first step of curation).

Captions come as Cap3D's ``uid,caption`` CSV (no header; a ``uid,caption`` header line is
skipped), read as a stream. Two summarisers turn a caption into a noun:

* :class:`HeuristicNouns`, deterministic and offline: the head noun of the caption's first
  noun phrase, where taxonomy category names -- multi-word ones such as "watering can"
  included, plural forms too -- count as single nouns and win inside that phrase;
* :class:`LLMNouns`, the paper's way: an OpenAI-compatible chat model names the object.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from funcorr.images import InputError

_TOKEN = re.compile(r"[a-z0-9]+(?:['\u2019-][a-z0-9]+)*|[,.;:!?()]")

# Words that end the first noun phrase: prepositions, conjunctions, relative pronouns and the
# verbs Cap3D captions use after the subject ("a cat sitting on ...", "a mug featuring ...").
BOUNDARIES = frozenset(
    """with without on in of at for from by to into onto over under near beside behind inside
    outside above below between against along around across through and or but that which who
    whose while where sitting standing holding wearing lying resting hanging floating flying
    featuring containing showing depicting made shaped resembling attached mounted placed
    covered filled topped decorated is are was were has have having being can could will
    would , . ; : ! ? ( )""".split()
)
# Heads that name the rendering rather than the object: "3D model of a kettle" -> kettle.
GENERIC_HEADS = frozenset(
    """model models object objects render rendering image picture illustration scene set sets
    pair pairs collection group piece pieces kind type version replica design asset mesh 3d
    shape figure stack bunch""".split()
)
# The subject of a caption comes first; words past this many are never looked at.
MAX_TOKENS = 32
# Determiners and counts: never a head, even when nothing follows them.
SKIP_WORDS = frozenset("a an the this these those some two three several low-poly".split())


def tokens(text: str) -> list[str]:
    """Lower-case word and punctuation tokens; apostrophes and hyphens stay inside words."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def singular_forms(word: str) -> tuple[str, ...]:
    """The word and the singulars it may be the plural of ("knives" -> knive, knife, knif)."""
    forms = [word]
    if word.endswith("ies") and len(word) > 4:
        forms.append(word[:-3] + "y")
    if word.endswith("ves") and len(word) > 4:
        forms += [word[:-3] + "fe", word[:-3] + "f"]
    if word.endswith("es") and len(word) > 3:
        forms.append(word[:-2])
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 2:
        forms.append(word[:-1])
    return tuple(forms)


def singular(word: str) -> str:
    """A plain singular for a head that is not a category: drop one plural ``s``."""
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    return word


class HeuristicNouns:
    """Caption -> noun without a model (deterministic).

    1. Tokenise; category names (from ``categories``) are found as token runs, their last
       word possibly plural, and fused into one token.
    2. The first noun phrase runs up to the first boundary word (:data:`BOUNDARIES`); when
       its head is generic ("model", "set") and ``of`` follows, the phrase after ``of`` is
       taken instead.
    3. The rightmost category inside that phrase is the answer; without one, the phrase's
       last word, singularised. An empty phrase gives "".
    """

    def __init__(self, categories: Iterable[str]):
        self.phrases: dict[tuple[str, ...], str] = {}
        for name in categories:
            words = tuple(tokens(name))
            if words:
                self.phrases[words] = name
        self.longest = max((len(words) for words in self.phrases), default=1)
        self.first_words = {words[0] for words in self.phrases}

    def _may_start(self, word: str) -> bool:
        """Whether a category name may start with ``word`` (plurals only end in "s")."""
        if word in self.first_words:
            return True
        return word.endswith("s") and any(f in self.first_words for f in singular_forms(word))

    def _fuse(self, words: list[str]) -> list[tuple[str, str | None]]:
        """(word, category or None) per position, category runs fused (longest run first)."""
        out, i = [], 0
        while i < len(words):
            if not self._may_start(words[i]):
                out.append((words[i], None))  # no category starts here: the common case, fast
                i += 1
                continue
            for n in range(min(self.longest, len(words) - i), 0, -1):
                head = words[i : i + n - 1]
                for last in singular_forms(words[i + n - 1]):
                    name = self.phrases.get((*head, last))
                    if name is not None:
                        out.append((" ".join(words[i : i + n]), name))
                        i += n
                        break
                else:
                    continue
                break
            else:
                out.append((words[i], None))
                i += 1
        return out

    def noun(self, caption: str) -> str:
        """The caption's object noun (a category name when one heads its first noun phrase)."""
        fused = self._fuse(tokens(caption)[:MAX_TOKENS])
        start = 0
        while start < len(fused):
            end = start
            while end < len(fused) and not (fused[end][1] is None and fused[end][0] in BOUNDARIES):
                end += 1
            phrase = [item for item in fused[start:end] if item[0] not in SKIP_WORDS]
            followed_by_of = end < len(fused) and fused[end][0] == "of"
            if (
                phrase
                and phrase[-1][1] is None
                and phrase[-1][0] in GENERIC_HEADS
                and followed_by_of
            ):
                start = end + 1
                continue
            if not phrase:
                if end < len(fused) and fused[end][0] in ",.;:!?()":
                    start = end + 1  # leading punctuation or an empty clause: look further
                    continue
                return ""
            named = [name for _, name in phrase if name is not None]
            return named[-1] if named else singular(phrase[-1][0])
        return ""


# --- the LLM summariser --------------------------------------------------------------------

NOUN_SYSTEM = (
    "You read short descriptions of 3D models and say what object each one shows. Answer with "
    "the everyday name of the object only: one to three words, lower case, singular, no "
    "adjectives about colour, material or style, no punctuation and no explanation."
)
NOUN_USER = 'Description: "{caption}"\nWhat object is this?'


def clean_noun(reply: str) -> str:
    """First line of a reply, lower case, without quotes, articles and trailing punctuation."""
    line = reply.strip().splitlines()[0] if reply.strip() else ""
    line = line.strip().strip("\"'`*").strip().rstrip(".!").lower()
    for article in ("a ", "an ", "the "):
        line = line.removeprefix(article)
    return " ".join(line.split())[:60]


class LLMNouns:
    """Caption -> noun by asking a chat model (see :class:`funcorr.data.text_llm.TextLLM`)."""

    def __init__(self, llm):
        self.llm = llm

    def noun(self, caption: str) -> str:
        return clean_noun(self.llm.ask(NOUN_SYSTEM, NOUN_USER.format(caption=caption)))


# --- reading captions ----------------------------------------------------------------------


@dataclass(frozen=True)
class Caption:
    """One captioned asset."""

    uid: str
    text: str


def count_lines(path: str | os.PathLike, chunk: int = 1 << 20) -> int:
    """Newlines in a file, read in binary chunks (a progress-bar total; no decoding)."""
    total = 0
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            total += block.count(b"\n")
    return total


def read_captions(path: str | os.PathLike) -> Iterator[Caption | None]:
    """Stream a ``uid,caption`` CSV one record at a time; None for a malformed record.

    The file is never loaded whole: memory stays at one record. A first line reading
    ``uid,caption`` is a header and skipped; extra fields (unquoted commas) join the caption.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No captions file at {path}.")
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        for index, row in enumerate(csv.reader(handle)):
            if index == 0 and [c.strip().lower() for c in row[:2]] == ["uid", "caption"]:
                continue
            if len(row) < 2 or not row[0].strip():
                yield None
                continue
            yield Caption(row[0].strip(), ",".join(row[1:]).strip())

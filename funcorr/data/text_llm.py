"""Text-only questions to an OpenAI-compatible chat model, with an optional reply log.

Curation (caption -> noun, match verification) and taxonomy generation ask a language model
short questions. They go through the same chat-completions client as the pseudo-labeller's
VLM (:func:`funcorr.data.part_boxes.post_chat`), without images. With a ``log`` file every
reply is appended as one JSON line keyed by a hash of the request, and a rerun answers
repeated questions from it: an interrupted taxonomy run resumes where it stopped, and a
rerun with the same settings gives the same files.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import httpx

from funcorr.data.part_boxes import ChatClientOwner, VLMConfig, post_chat


def llm_config(
    base_url: str,
    model: str,
    api_key_env: str = "OPENAI_API_KEY",
    temperature: float = 0.0,
    max_tokens: int = 512,
) -> VLMConfig:
    """Endpoint settings for text questions: greedy decoding (temperature 0) by default, so a
    model that honours it answers the same question the same way."""
    return dataclasses.replace(
        VLMConfig(base_url=base_url, model=model, api_key_env=api_key_env),
        temperature=temperature,
        top_p=1.0,
        max_tokens=max_tokens,
    )


class TextLLM(ChatClientOwner):
    """``ask(system, user) -> reply text``; replies are logged to / replayed from ``log``."""

    def __init__(
        self,
        config: VLMConfig,
        log: str | os.PathLike | None = None,
        client: httpx.Client | None = None,
    ):
        self.config = config
        self.client = client if client is not None else httpx.Client(timeout=config.timeout_s)
        self.log = Path(log) if log is not None else None
        self.replies: dict[str, str] = {}
        self.asked = 0
        if self.log is not None and self.log.is_file():
            self.replies = _read_log(self.log)
            _end_with_newline(self.log)

    def body(self, system: str, user: str) -> dict:
        """The chat-completions request for one question."""
        return {
            "model": self.config.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            "temperature": self.config.temperature,
            "top_p": self.config.top_p,
            "max_tokens": self.config.max_tokens,
            "stream": False,
        }

    def ask(self, system: str, user: str) -> str:
        """The model's reply (from the log when this exact request was answered before)."""
        body = self.body(system, user)
        key = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        if key in self.replies:
            return self.replies[key]
        reply = post_chat(self.client, self.config, body)
        self.asked += 1
        self.replies[key] = reply
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.log, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"key": key, "reply": reply}) + "\n")
        return reply


def _read_log(path: Path) -> dict[str, str]:
    """key -> reply from a log; a torn last line (a run killed mid-write) is ignored."""
    replies = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            replies[entry["key"]] = entry["reply"]
    return replies


def _end_with_newline(path: Path) -> None:
    """Close a torn last line so the next appended entry starts on its own line."""
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) != b"\n":
            handle.write(b"\n")

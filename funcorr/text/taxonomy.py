"""The function vocabulary: names from the taxonomy and the text each name is embedded as."""

from __future__ import annotations

from funcorr.images import InputError


def function_names() -> tuple[str, ...]:
    """The taxonomy's function names (e.g. ``"pour-with"``), in file order."""
    from funcorr.data.taxonomy import taxonomy

    return tuple(taxonomy().functions)


def function_text(name: str) -> str:
    """The phrase a function name is embedded as: ``"pour-with"`` -> ``"pour with"``.

    Text encoders tokenise the hyphen as its own token, which pulls the embedding towards
    other hyphenated strings rather than towards the phrase's meaning.
    """
    return " ".join(name.replace("-", " ").split()).lower()


def resolve_function(
    name: str, *, allow_free_text: bool = False, vocabulary: tuple[str, ...] | None = None
) -> str:
    """Text to embed for ``name``.

    Taxonomy names match in either spelling (``"pour-with"`` or ``"Pour with"``). Anything else
    raises :class:`InputError` listing the valid names, unless ``allow_free_text`` is set, in
    which case the stripped text itself is embedded.
    """
    vocabulary = function_names() if vocabulary is None else vocabulary
    text = function_text(name)
    if text in {function_text(known) for known in vocabulary}:
        return text
    if allow_free_text and name.strip():
        return name.strip()
    raise InputError(
        f"Unknown function {name!r}. Valid functions: {', '.join(vocabulary)}. "
        "Pass allow_free_text=True to embed arbitrary text."
    )

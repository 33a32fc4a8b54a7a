"""A matcher factory for tests that reuses the session's already-loaded backbone."""

from __future__ import annotations

from unittest import mock

from funcorr.model.matcher import Matcher, MatcherConfig


def matcher_factory(backbone):
    """MatcherConfig -> Matcher that uses ``backbone`` instead of loading one from disk.

    Only the default backbone without a checkpoint is shared; anything else is an error so
    a test cannot silently compare different features.
    """

    def create(config: MatcherConfig) -> Matcher:
        if config.backbone != "dinov2-s14" or config.checkpoint or config.layers or config.stride:
            raise AssertionError(
                f"test matcher factory only serves the default dinov2-s14, got {config}"
            )
        with mock.patch("funcorr.model.matcher.load_backbone", return_value=backbone):
            return Matcher(config)

    return create

"""The exception hierarchy: every user mistake is a SpatialSearchError (CLI: exit 2)."""

from __future__ import annotations


class SpatialSearchError(Exception):
    """Root of every error spatialsearch raises on purpose (bad input, missing data, ...)."""

    exit_code = 2  # the CLI's exit status: 2 = bad input


class ConfigError(SpatialSearchError, ValueError):
    """A configuration value is wrong: the message names the key path, the rule and the value."""


class DataError(SpatialSearchError):
    """A dataset cannot be found or read (e.g. offline and absent)."""


class CheckpointError(SpatialSearchError):
    """A checkpoint is missing, truncated, not a checkpoint, or from another model."""


class SearchFailed(SpatialSearchError):
    """A search could not complete for a reason outside its input (e.g. the disk filled)."""

    exit_code = 1

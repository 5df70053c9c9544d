"""spatialsearch: hyperparameter search for spatial neural networks (arXiv 1910.02776)."""

from __future__ import annotations

__version__ = "0.1.0"

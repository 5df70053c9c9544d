"""Tests of spatialsearch/search/preflight/."""

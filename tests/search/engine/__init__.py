"""Tests of spatialsearch/search/engine/."""

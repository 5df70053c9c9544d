"""Tests of spatialsearch/search/places/."""

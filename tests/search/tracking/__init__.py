"""Tests of spatialsearch/search/tracking/."""

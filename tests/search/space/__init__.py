"""Tests of spatialsearch/search/space/."""

"""Tests of the search half, one folder per room of spatialsearch/search/."""

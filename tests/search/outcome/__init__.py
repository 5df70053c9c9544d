"""Tests of spatialsearch/search/outcome/."""

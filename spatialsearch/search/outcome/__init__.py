"""What a finished search found: its trials as rows, which is best (ranking), the files saying so.
May import the search's spec, places, tracking and run context; never Tune or the run's steps."""

from spatialsearch.search.outcome.files import SearchSummary
from spatialsearch.search.outcome.ranking import ParetoFront, answer, pareto_front, rank
from spatialsearch.search.outcome.rows import TrialRow

__all__ = ["ParetoFront", "SearchSummary", "TrialRow", "answer", "pareto_front", "rank"]

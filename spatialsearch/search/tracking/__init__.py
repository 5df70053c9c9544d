"""MLflow: the search's runs, the Tune callback that writes them, the store and the
UI view. May import the space, places and the core; never Tune's run or outcome."""

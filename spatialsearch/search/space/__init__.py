"""The search as the user wrote it: the YAML's keys, objectives, constraints, space,
budget and storage, validated once. May import the core (spatialsearch/*.py) only."""

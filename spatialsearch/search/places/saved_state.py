"""Tune saves a scheduler's and a searcher's state for --resume through save/restore; ours
keep only plain attributes, so their whole __dict__ is what is saved."""

from __future__ import annotations

import pickle


class SavedAttributes:
    """save/restore of the object's attributes (pickle); mix in before Tune's base class."""

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))

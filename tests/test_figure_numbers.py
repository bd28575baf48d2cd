"""_ext/figure_numbers.py: the website numbers figures per chapter ("Fig. 7.1"), not through the book."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_ext"))

from figure_numbers import renumber_per_chapter  # noqa: E402


def test_figures_are_renumbered_from_their_chapter():
    # What Sphinx assigns without numbered sections: one count through the whole book.
    sphinx = {
        "chapters/ch01_rnn_seq2seq": {"figure": {"fig-a": (1,), "fig-b": (2,)}},
        "chapters/ch07_training_gpt": {"figure": {"fig-loss": (15,), "fig-curve": (14,)}, "table": {"tab-x": (3,)}},
        "exercises/ch07_training_gpt/ch07_training_gpt": {"figure": {"fig-ex": (16,)}},
        "guide/instructors": {"figure": {"fig-g": (17,)}},
    }
    numbers = renumber_per_chapter(sphinx)
    assert numbers["chapters/ch01_rnn_seq2seq"]["figure"] == {"fig-a": (1, 1), "fig-b": (1, 2)}
    assert numbers["chapters/ch07_training_gpt"]["figure"] == {"fig-curve": (7, 1), "fig-loss": (7, 2)}
    assert numbers["chapters/ch07_training_gpt"]["table"] == {"tab-x": (7, 1)}
    assert numbers["exercises/ch07_training_gpt/ch07_training_gpt"]["figure"] == {"fig-ex": (7, 3)}  # after the chapter's own
    assert numbers["guide/instructors"]["figure"] == {"fig-g": (17,)}  # not a chapter: Sphinx's number

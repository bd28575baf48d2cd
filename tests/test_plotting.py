"""The course's heatmaps keep their token labels readable."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from course.plotting import SMALLEST_TOKEN_LABEL_POINTS, TOKEN_LABEL_POINTS, attention_heatmap, use_course_style  # noqa: E402


def label_sizes(figsize, keys: int, queries: int):
    use_course_style()
    figure, ax = plt.subplots(figsize=figsize)
    attention_heatmap(ax, torch.rand(queries, keys), [str(i % 10) for i in range(queries)], [str(i % 10) for i in range(keys)])
    sizes = {label.get_fontsize() for label in ax.get_xticklabels()}, {label.get_fontsize() for label in ax.get_yticklabels()}
    plt.close(figure)
    return sizes


def test_token_labels_are_as_large_as_the_text_where_there_is_room():
    x_sizes, y_sizes = label_sizes((7.5, 4.2), keys=24, queries=11)  # a date heatmap in chapter 2
    assert x_sizes == {TOKEN_LABEL_POINTS} and y_sizes == {TOKEN_LABEL_POINTS}


def test_crowded_labels_shrink_but_not_below_the_smallest_readable_size():
    x_sizes, _ = label_sizes((4, 3), keys=60, queries=5)
    (size,) = x_sizes
    assert SMALLEST_TOKEN_LABEL_POINTS <= size < TOKEN_LABEL_POINTS

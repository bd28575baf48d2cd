"""One figure style for the whole course.

Figures are drawn on an opaque white background, so they read the same in the website's
light and dark themes, with a colour-blind-safe palette (Okabe and Ito) and large labels.
"""

import matplotlib as mpl
import matplotlib.pyplot as plt

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]


def use_course_style() -> None:
    mpl.rcParams.update(
        {
            "figure.figsize": (7.0, 3.6),
            "figure.dpi": 110,
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "savefig.facecolor": "white",
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "font.size": 10,
            "axes.titlesize": 11,
            "legend.frameon": False,
            "image.cmap": "viridis",
        }
    )


# Token labels on a heatmap's axes: as large as the rest of the figure's text, smaller only where
# there is no room (a figure shown on the website is scaled to the page's width, so 7-point labels
# end up unreadable).
TOKEN_LABEL_POINTS = 10.0
SMALLEST_TOKEN_LABEL_POINTS = 7.0


def token_label_size(ax, count: int, axis: str) -> float:
    """The font size (points) for `count` token labels along the x or y axis of `ax`: at most one label's room each."""
    figure_width, figure_height = ax.figure.get_size_inches()
    box = ax.get_position()
    length_points = 72 * (box.width * figure_width if axis == "x" else box.height * figure_height)
    room = length_points / max(count, 1)
    return max(SMALLEST_TOKEN_LABEL_POINTS, min(TOKEN_LABEL_POINTS, 0.8 * room))


def attention_heatmap(ax, weights, query_labels=None, key_labels=None, title=None, colorbar=True):
    """Draw one attention matrix (queries down, keys across) with its tokens on the axes."""
    image = ax.imshow(weights, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    ax.grid(False)
    if key_labels is not None:
        ax.set_xticks(range(len(key_labels)), labels=list(key_labels), fontsize=token_label_size(ax, len(key_labels), "x"))
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), labels=list(query_labels), fontsize=token_label_size(ax, len(query_labels), "y"))
    ax.set_xlabel("keys")
    ax.set_ylabel("queries")
    if title:
        ax.set_title(title)
    if colorbar:
        plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="weight")
    return image

"""Arithmetic of scale (chapter 10, "Scale"): power-law fits, parameter and FLOP counts, KV-cache bytes.

    non_embedding_parameters  a GPT's parameters without its token and position embeddings (Kaplan et al.'s N)
    fit_power_law             L(N) = (N_c / N)^alpha, least squares in log-log
    fit_power_law_with_floor  L(N) = E + (N_c / N)^alpha, E on a grid, the rest in log-log
    approx_parameters         12 L d^2: the blocks' matrices (4 d^2 attention + 8 d^2 MLP per layer)
    training_flops            6 N D: forward 2 N, backward 4 N per token, D tokens
    kv_cache_bytes_per_token  2 (K and V) x layers x KV heads x head width x bytes per number
    PUBLISHED                 a few published shapes, with where their numbers come from
"""

import math


def non_embedding_parameters(model) -> int:
    """Every parameter except the token embedding (tied to the output layer, counted once) and the position table."""
    total = model.num_parameters(non_embedding=False)
    total -= model.token_embedding.weight.numel()
    if model.position_embedding is not None:
        total -= model.position_embedding.weight.numel()
    return total


def _line(xs, ys):
    """Least-squares slope and intercept of ys against xs."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def fit_power_law(parameters, losses) -> dict:
    """L = (N_c / N)^alpha, i.e. log L = alpha log N_c - alpha log N: a straight line in log-log.
    Returns alpha, N_c and the root-mean-square error of log L."""
    xs, ys = [math.log(n) for n in parameters], [math.log(loss) for loss in losses]
    slope, intercept = _line(xs, ys)
    alpha = -slope
    rms = math.sqrt(sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys)) / len(xs))
    return {"alpha": alpha, "N_c": math.exp(intercept / alpha), "rms_log_error": rms}


def fit_power_law_with_floor(parameters, losses, grid: int = 2000) -> dict:
    """L = E + (N_c / N)^alpha: for each E on a grid from 0 to just below the smallest loss, fit log(L - E)
    by a line; keep the E with the smallest squared error of L itself. Returns E, alpha, N_c, rms error of log L."""
    best = None
    smallest = min(losses)
    for i in range(grid):
        floor = smallest * i / grid
        fit = fit_power_law(parameters, [loss - floor for loss in losses])
        if fit["alpha"] <= 0:
            continue
        predicted = [floor + (fit["N_c"] / n) ** fit["alpha"] for n in parameters]
        error = sum((p - loss) ** 2 for p, loss in zip(predicted, losses))
        if best is None or error < best[0]:
            rms = math.sqrt(sum((math.log(p) - math.log(loss)) ** 2 for p, loss in zip(predicted, losses)) / len(losses))
            best = (error, {"E": floor, "alpha": fit["alpha"], "N_c": fit["N_c"], "rms_log_error": rms})
    return best[1]


def approx_parameters(n_layer: int, d_model: int) -> int:
    """12 L d^2: per layer 4 d^2 in attention (Q, K, V, output) and 8 d^2 in an MLP of width 4d."""
    return 12 * n_layer * d_model**2


def training_flops(parameters: float, tokens: float) -> float:
    """6 N D: each token costs 2 N multiply-adds-as-FLOPs forward and twice that backward (Kaplan et al. 2020)."""
    return 6 * parameters * tokens


def kv_cache_bytes_per_token(n_layer: int, kv_heads: int, head_dim: int, bytes_per_number: int = 2) -> int:
    """Bytes the KV cache holds per token of context: a key and a value vector per KV head, in every layer."""
    return 2 * n_layer * kv_heads * head_dim * bytes_per_number


# Published shapes. GPT-2: Radford et al. 2019, table 2 (layers, d_model; 25 heads for XL per the released
# config, 12 for small); Llama 2 70B: Touvron et al. 2023 (80 layers, d_model 8192, 64 query heads, grouped-query
# attention with 8 KV heads, head width 128, context 4096).
PUBLISHED = {
    "GPT-2 small": {"n_layer": 12, "d_model": 768, "n_head": 12, "kv_heads": 12, "context": 1024, "reported_parameters": 117e6},
    "GPT-2 XL": {"n_layer": 48, "d_model": 1600, "n_head": 25, "kv_heads": 25, "context": 1024, "reported_parameters": 1542e6},
    "Llama 2 70B": {"n_layer": 80, "d_model": 8192, "n_head": 64, "kv_heads": 8, "context": 4096, "reported_parameters": 70e9},
}

"""Plotly figures of the experiment pages, built as plain figure dicts (``{"data", "layout"}``, as
plotly.js takes them) from the aggregates of experiments.selectors.

The dicts are built by hand rather than through ``plotly.graph_objects`` because the curves
endpoint is polled every few seconds and graph_objects' validation costs more than the SQL; the
tests pass every figure through ``plotly.graph_objects.Figure`` to keep them valid. Every trace a
user can click carries ``meta``: the split of a curve (its x is the iteration), the task pks of
the heatmap's rows; the page's script turns a click into the episodes behind it.
"""

from experiments.selectors import THROUGHPUT_METRICS, TRAINING_METRICS, ZERO_VARIANCE_METRIC

COLORS = {"train": "#2457d6", "test": "#c4302b", "band": "rgba(36, 87, 214, 0.15)"}
PALETTE = ["#2457d6", "#c4302b", "#1a7f37", "#9a6700", "#8250df", "#0a7d8c", "#bf3989", "#57606a"]
TITLES = {
    "loss": "Loss",
    "kl": "KL to the starting policy",
    "entropy": "Entropy",
    "clip_fraction": "Clip fraction",
    "grad_norm": "Grad norm",
    ZERO_VARIANCE_METRIC: "Zero-variance groups (no learning signal)",
    "tokens_per_s": "tokens/s (all)",
    "generation_tokens_per_s": "tokens/s generated",
    "train_tokens_per_s": "tokens/s trained",
}


def _text(value):
    """User text for plotly: it reads a few HTML tags in names and labels (links among them), so
    ``<`` and ``&`` are given as entities, which plotly shows as the characters they stand for."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _rounded(values, digits=4):
    """Numbers cut to what a chart can show: the curves endpoint is polled, and the digits of a
    float's repr were half its JSON."""
    return [None if v is None else round(v, digits) for v in values]


def _layout(title, *, y_title="", y_range=None, height=300, bucket=1, **extra):
    x_title = "iteration" if bucket == 1 else f"iteration (mean of {bucket} per point)"
    layout = {
        "title": {"text": title, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": y_title}},
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.25},
        "paper_bgcolor": "rgba(0,0,0,0)",
    }
    if y_range:
        layout["yaxis"]["range"] = y_range
    layout.update(extra)
    return layout


def _line(x, y, name, split="train", color=None, meta=None, **extra):
    """A curve; a click on one of its points opens the episodes of that iteration (its x) and of
    ``split`` (``meta.split``)."""
    trace = {
        "type": "scatter",
        "mode": "lines+markers" if len(x) < 60 else "lines",
        "x": x,
        "y": _rounded(y),
        "name": name,
        "meta": {"split": split, **(meta or {})},
        "line": {"color": color or COLORS.get(split, COLORS["train"])},
        "hovertemplate": "iteration %{x}<br>%{y:.3f}<extra>" + name + "</extra>",
    }
    trace.update(extra)
    return trace


def reward_figure(curves):
    """Reward mean per iteration with its min-max band (train), and the held-out mean."""
    train = curves["splits"].get("train")
    data = []
    if train:
        band = {"type": "scatter", "mode": "lines", "x": train["x"], "hoverinfo": "skip"}
        data.append(
            {**band, "y": _rounded(train["lo"]), "line": {"width": 0}, "showlegend": False, "name": "min"}
        )
        data.append(
            {
                **band,
                "y": _rounded(train["hi"]),
                "line": {"width": 0},
                "fill": "tonexty",
                "fillcolor": COLORS["band"],
                "name": "min-max",
            }
        )
        data.append(_line(train["x"], train["mean"], "train mean", meta={"smooth": True}))
    test = curves["splits"].get("test")
    if test:
        data.append(_line(test["x"], test["mean"], "held-out mean", split="test", mode="lines+markers"))
    return {"data": data, "layout": _layout("Reward", y_range=[0, 1.05], bucket=curves["bucket"])}


def success_figure(curves):
    """Success rate on the train rollouts and on the held-out evaluations."""
    data = []
    for split, name in (("train", "train"), ("test", "held-out")):
        line = curves["splits"].get(split)
        if line:
            mode = "lines+markers" if split == "test" else None
            extra = {"mode": mode} if mode else {"meta": {"smooth": True}}
            data.append(_line(line["x"], line["success"], name, split=split, **extra))
    return {"data": data, "layout": _layout("Success rate", y_range=[0, 1.05], bucket=curves["bucket"])}


def heatmap_figure(curves):
    """Task x iteration success on the train rollouts, rows in the suite's order (the page
    reorders them by "newly failing"); empty cells: the task was not sampled then."""
    heatmap = curves["heatmap"]
    tasks = heatmap["tasks"]
    trace = {
        "type": "heatmap",
        "x": heatmap["x"],
        "y": [_text(t["task_id"]) for t in tasks],
        "z": [_rounded(row, 3) for row in heatmap["z"]],
        "zmin": 0,
        "zmax": 1,
        "colorscale": [[0, "#c4302b"], [0.5, "#f2cc60"], [1, "#1a7f37"]],
        "hoverongaps": False,
        "meta": {"tasks": [t["pk"] for t in tasks], "newly_failing": heatmap["newly_failing"]},
        "hovertemplate": "%{y}<br>iteration %{x}<br>success %{z:.2f}<extra></extra>",
        "colorbar": {"title": {"text": "success"}},
    }
    height = max(260, 60 + 22 * len(tasks))
    layout = _layout(
        "Success per task",
        height=height,
        bucket=curves["bucket"],
        margin={"l": 180, "r": 20, "t": 40, "b": 40},
    )
    layout["yaxis"] = {"autorange": "reversed", "type": "category", "automargin": True}
    return {"data": [trace], "layout": layout}


def metric_figure(curves, name, *, height=220):
    line = curves["metrics"].get(name)
    data = [_line(line["x"], line["y"], TITLES.get(name, name))] if line else []
    return {"data": data, "layout": _layout(TITLES.get(name, name), height=height, bucket=curves["bucket"])}


def throughput_figure(curves):
    data = []
    for color, name in zip(PALETTE, THROUGHPUT_METRICS, strict=False):
        line = curves["metrics"].get(name)
        if line:
            data.append(_line(line["x"], line["y"], TITLES[name], color=color))
    return {"data": data, "layout": _layout("Throughput", y_title="tokens/s", bucket=curves["bucket"])}


def experiment_figures(curves):
    """Every figure of the experiment page, keyed by the id of the element it is drawn in."""
    figures = {
        "reward": reward_figure(curves),
        "success": success_figure(curves),
        "heatmap": heatmap_figure(curves),
        ZERO_VARIANCE_METRIC: metric_figure(curves, ZERO_VARIANCE_METRIC),
        "throughput": throughput_figure(curves),
    }
    figures[ZERO_VARIANCE_METRIC]["layout"]["yaxis"]["range"] = [0, 1.05]
    for name in TRAINING_METRICS:
        figures[name] = metric_figure(curves, name)
    return figures


def compare_figures(runs, size):
    """Reward mean (train) and held-out success of several experiments overlaid; ``runs``:
    ``[(experiment, {split: line})]`` as selectors.compare_runs gives them."""
    reward, success = [], []
    for color, (experiment, splits) in zip(PALETTE * 4, runs, strict=False):
        label = _text(f"#{experiment.pk} {experiment.name}")
        if "train" in splits:
            line = splits["train"]
            reward.append(_line(line["x"], line["mean"], label, color=color, meta={"smooth": True}))
            success.append(_line(line["x"], line["success"], f"{label} (train)", color=color, opacity=0.5))
        if "test" in splits:
            line = splits["test"]
            success.append(
                _line(
                    line["x"],
                    line["success"],
                    f"{label} (held-out)",
                    split="test",
                    color=color,
                    mode="lines+markers",
                )
            )
    return {
        "reward": {"data": reward, "layout": _layout("Reward mean (train)", y_range=[0, 1.05], bucket=size)},
        "success": {"data": success, "layout": _layout("Success rate", y_range=[0, 1.05], bucket=size)},
    }

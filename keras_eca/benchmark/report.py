"""Ratios with their spread, the text table, JSON and the bar chart."""

import json
import os
import statistics

from keras_eca import files
from keras_eca.benchmark import suite


def spread(values):
    """Median, min and max of a list of numbers."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


def ratio_row(comparison, metric, kind, candidate_values, baseline_values):
    """One comparison on one metric: per-repeat ratios and the verdict.

    Repeat `i` of the candidate is divided by repeat `i` of the baseline,
    measured moments apart, so drift between repeats cancels.
    """
    if len(candidate_values) != len(baseline_values):
        raise ValueError(
            "Candidate and baseline need the same number of repeats. "
            f"Received: {len(candidate_values)} and {len(baseline_values)}"
        )
    ratios = [c / b for c, b in zip(candidate_values, baseline_values)]
    higher_is_better = suite.METRIC_KINDS[kind][2]
    target = comparison.targets.get(kind)
    row = {
        "candidate": comparison.candidate,
        "baseline": comparison.baseline,
        "metric": metric,
        "kind": kind,
        "ratios": ratios,
        **spread(ratios),
        "target": target,
        "better": "higher" if higher_is_better else "lower",
    }
    if target is not None:
        median = row["median"]
        row["met"] = median >= target if higher_is_better else median <= target
    return row


def write_json(result, path):
    """Writes `result` via a temporary file, so a failure leaves no half file."""
    files.write_text_atomically(
        path, json.dumps(result, indent=2, sort_keys=True) + "\n"
    )


def _verdict(row):
    if row.get("target") is None:
        return ""
    sign = ">=" if row["better"] == "higher" else "<="
    status = "met" if row["met"] else "MISSED"
    return f"{sign} {row['target']:g} {status}"


def format_report(result):
    """The human-readable summary printed at the end of a run."""
    device = result["device"]
    settings = result["settings"]
    lines = [
        f"device: {device['device']} ({device['cpu_count']} CPU cores: "
        f"{device['cpu']}); backend {device['backend']}, keras {device['keras']}",
        f"settings: {settings['image_size']}px, jit_compile="
        f"{settings['jit_compile_resolved']}, dtype_policy="
        f"{settings['dtype_policy_resolved']}, {settings['repeats']} repeats "
        f"(memory: {settings['memory_repeats']})",
        "",
    ]
    measurements = result["measurements"]
    if measurements:
        lines.append(f"{'model':<20} {'metric':<16} {'median':>10}  spread")
        for name, metrics in measurements.items():
            for metric, values in metrics.items():
                unit = suite.METRIC_KINDS[suite.kind_of(metric)][1]
                scale = 2**-20 if unit == "MiB" else 1
                s = spread(values)
                lines.append(
                    f"{name:<20} {metric:<16} {s['median'] * scale:>10.1f}  "
                    f"{s['min'] * scale:.1f}..{s['max'] * scale:.1f} {unit}"
                )
        lines.append("")
    if result["comparisons"]:
        lines.append(
            f"{'ratio':<34} {'metric':<16} {'median':>7}  {'min..max':<13} target"
        )
        for row in result["comparisons"]:
            label = f"{row['candidate']} / {row['baseline']}"
            lines.append(
                f"{label:<34} {row['metric']:<16} {row['median']:>7.3f}  "
                f"{row['min']:.3f}..{row['max']:.3f}  {_verdict(row)}"
            )
    startup = result.get("startup") or {}
    if "import" in startup:
        imp = startup["import"]
        lines.append(
            f"import keras_eca after import keras: {imp['median']:.3f} s "
            f"(import keras {imp['keras_median']:.2f} s)  {_verdict(imp)}"
        )
    if "build" in startup:
        b = startup["build"]
        lines.append(
            f"build {b['candidate']} / {b['baseline']}: {b['median']:.3f} "
            f"({b['min']:.3f}..{b['max']:.3f})  {_verdict(b)}"
        )
    missed = [row for row in all_verdicts(result) if row.get("met") is False]
    lines.append("")
    lines.append(
        f"targets: {len(all_verdicts(result)) - len(missed)} met, "
        f"{len(missed)} missed"
    )
    return "\n".join(lines)


def all_verdicts(result):
    """Every row that has a target: comparisons and startup checks."""
    rows = [row for row in result["comparisons"] if row.get("target") is not None]
    rows += [
        row for row in (result.get("startup") or {}).values()
        if row.get("target") is not None
    ]
    return rows


def write_chart(result, path):
    """A bar per (comparison, metric): median ratio, min..max whiskers,
    the target as a black tick, and 1.0 as a dashed line."""
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(
            "The benchmark chart needs matplotlib: "
            "`pip install 'keras-eca[benchmark]'`."
        ) from error

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = list(result["comparisons"])
    build = (result.get("startup") or {}).get("build")
    if build:
        rows.append({**build, "metric": "build time"})
    if not rows:
        raise ValueError("Nothing to plot: the result has no ratios.")
    labels = [f"{r['candidate']} / {r['baseline']}\n{r['metric']}" for r in rows]
    medians = [r["median"] for r in rows]
    errors = [
        [r["median"] - r["min"] for r in rows],
        [r["max"] - r["median"] for r in rows],
    ]
    colors = [
        "#999999" if r.get("met") is None else ("#2a9d8f" if r["met"] else "#e76f51")
        for r in rows
    ]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(rows) + 2), 5.0))
    positions = range(len(rows))
    ax.bar(positions, medians, yerr=errors, color=colors, capsize=3)
    for x, row in zip(positions, rows):
        if row.get("target") is not None:
            ax.plot([x - 0.4, x + 0.4], [row["target"]] * 2, color="black")
    ax.axhline(1.0, linestyle="--", linewidth=0.8, color="gray")
    low = min(min(r["min"] for r in rows), 1.0)
    high = max(max(r["max"] for r in rows), 1.0)
    margin = max(0.02, 0.1 * (high - low))
    ax.set_ylim(low - margin, high + margin)
    ax.set_xticks(list(positions))
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("candidate / baseline (median, min..max)")
    device = result["device"]
    ax.set_title(
        f"keras_eca benchmark on {device['device']} ({device['backend']}); "
        "green: target met, red: missed",
        fontsize=9,
    )
    fig.tight_layout()
    with files.staged_path(path) as staged:
        fig.savefig(staged, dpi=120)
    plt.close(fig)

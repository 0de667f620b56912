#!/usr/bin/python3
"""Draws a benchmark CSV as one grid of plots: the seed's figure, made readable.

Reads the CSV `onnxpipe bench --format csv` writes (the seed's columns: name = mode, batch_size = N images, time in
seconds, and per stage i wait0_i, wait_i, copy1_i, copy2_i, run_i, ttime_i, wtime_i; optionally throughput,
latency_p50/p90/p99 and bound_throughput). Only name, batch_size and time are required: a panel whose columns are
absent is left out. Repeated rows for one (mode, N) are averaged.

Panels: time and time per image vs N for each mode; gain over `sequence`; throughput vs its bound; latency; waiting
per stage; busy fraction (run / wall time) per stage; one stacked wait/copy/run share per stage.

usage: scripts/plot.py RESULTS.csv -o report.png [--svg] [--title TEXT]
       (-o x.svg writes SVG; --svg writes an .svg beside the .png)
Needs Debian's python3-matplotlib and python3-numpy.
"""
import argparse
import csv
import math
import os
import re
import sys

REQUIRED = ("name", "batch_size", "time")
STAGE_FIELDS = ("wait0", "wait", "copy1", "copy2", "run", "ttime", "wtime")
# Columns worth a mention in the title when every row holds the same value.
META = ("model", "devices", "commit", "ort_version", "plan_hash", "repN")
TITLE_SIZE = 14  # points


class PlotError(Exception):
    pass


# ---------------------------------------------------------------------------------------------------------------------
# Data

class Results:
    """The CSV grouped by mode: for each mode, sorted N and one float array per numeric column (NaN where empty)."""

    def __init__(self, path):
        import numpy as np

        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                columns = reader.fieldnames or []
                rows = list(reader)
        except OSError as e:
            raise PlotError(f"{path}: {e.strerror}")
        except csv.Error as e:
            raise PlotError(f"{path}: not a CSV file: {e}")
        missing = [c for c in REQUIRED if c not in columns]
        if missing:
            raise PlotError(f"{path}: missing required column(s) {', '.join(missing)} "
                            f"(has: {', '.join(columns) if columns else 'no header'})")
        if not rows:
            raise PlotError(f"{path}: no data rows")

        def number(row_index, column, text):
            if text is None or text.strip() == "":
                return math.nan
            try:
                return float(text)
            except ValueError:
                if column in REQUIRED:
                    raise PlotError(f"{path}: row {row_index + 2}: column {column}: '{text}' is not a number")
                return None  # a text column (devices, commit...)

        self.columns = columns
        self.meta = {}
        for column in META:
            values = {row.get(column) for row in rows}
            if column in columns and len(values) == 1 and next(iter(values)):
                self.meta[column] = next(iter(values))

        grouped = {}  # mode -> N -> column -> list of values
        numeric = set(columns) - {"name"}
        for index, row in enumerate(rows):
            mode = row["name"]
            if not mode:
                raise PlotError(f"{path}: row {index + 2}: empty name")
            values = {}
            for column in columns:
                if column == "name" or column not in numeric:
                    continue
                value = number(index, column, row[column])
                if value is None:
                    numeric.discard(column)
                else:
                    values[column] = value
            n = values["batch_size"]
            if math.isnan(n) or n <= 0 or math.isnan(values["time"]):
                raise PlotError(f"{path}: row {index + 2}: batch_size and time must be set, batch_size > 0")
            for column, value in values.items():
                grouped.setdefault(mode, {}).setdefault(n, {}).setdefault(column, []).append(value)

        self.modes = list(grouped)  # in order of appearance
        self.data = {}
        for mode, by_n in grouped.items():
            ns = sorted(by_n)
            table = {"N": np.array(ns)}
            for column in numeric:
                cells = []
                for n in ns:
                    vals = [v for v in by_n[n].get(column, []) if not math.isnan(v)]
                    cells.append(sum(vals) / len(vals) if vals else math.nan)
                table[column] = np.array(cells)
            self.data[mode] = table

        stage_ids = {int(m.group(2)) for c in columns for m in [re.fullmatch(r"(\w+?)_(\d+)", c)]
                     if m and m.group(1) in STAGE_FIELDS}
        self.stages = sorted(stage_ids)
        # Modes that report per-stage times (the seed leaves them empty for `sequence`).
        self.staged_modes = [m for m in self.modes if any(self.has(m, f"{f}_{s}") for f in ("run", "ttime")
                                                          for s in self.stages)]

    def has(self, mode, column):
        import numpy as np
        values = self.data[mode].get(column)
        return values is not None and not np.all(np.isnan(values))

    def has_any(self, column):
        return any(self.has(m, column) for m in self.modes)


# ---------------------------------------------------------------------------------------------------------------------
# Panels: each takes (ax, results) and returns False when its data is absent (the panel is then left out).

def mode_styles(results):
    """One colour per mode, the same in every panel; `sequence`, the reference, in black."""
    styles, palette = {}, iter(f"C{i}" for i in range(10))
    for mode in results.modes:
        styles[mode] = dict(color="black" if mode == "sequence" else next(palette), marker="o", markersize=4)
    return styles


def stage_color(stage):
    return f"C{(stage + 2) % 10}"


def finish(ax, title, ylabel, legend=True):
    from matplotlib.ticker import MaxNLocator

    ax.set_title(title, fontsize=11)
    ax.set_xlabel("N (images per run)")
    ax.set_ylabel(ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def panel_time(ax, r):
    for mode, style in mode_styles(r).items():
        d = r.data[mode]
        ax.plot(d["N"], d["time"], label=mode, **style)
    ax.set_ylim(bottom=0)
    finish(ax, "Wall time for N images", "seconds")
    return True


def panel_time_per_image(ax, r):
    for mode, style in mode_styles(r).items():
        d = r.data[mode]
        ax.plot(d["N"], 1e3 * d["time"] / d["N"], label=mode, **style)
    ax.set_ylim(bottom=0)
    finish(ax, "Time per image", "ms / image")
    return True


def panel_gain(ax, r):
    import numpy as np

    others = [m for m in r.modes if m != "sequence"]
    if "sequence" not in r.modes or not others:
        return False
    seq = r.data["sequence"]
    for mode in others:
        d = r.data[mode]
        ns = np.intersect1d(seq["N"], d["N"])
        base = np.interp(ns, seq["N"], seq["time"])
        gain = 100 * (base - np.interp(ns, d["N"], d["time"])) / base
        label = f"{mode} ({gain[-1]:+.0f}% at N={ns[-1]:g})" if len(ns) else mode
        ax.plot(ns, gain, label=label, **mode_styles(r)[mode])
    ax.axhline(0, color="black", linewidth=0.8)
    finish(ax, "Gain over sequence\n(sequence − mode) / sequence", "% of sequence time (> 0: faster)")
    return True


def panel_throughput(ax, r):
    styles = mode_styles(r)
    for mode in r.modes:
        d = r.data[mode]
        tput = d["throughput"] if r.has(mode, "throughput") else d["N"] / d["time"]
        label = mode
        if r.has(mode, "bound_throughput"):
            ax.plot(d["N"], d["bound_throughput"], linestyle="--", color=styles[mode]["color"], linewidth=1.2,
                    label=f"{mode} bound")
            share = 100 * tput[-1] / d["bound_throughput"][-1]
            label = f"{mode} ({share:.0f}% of bound at N={d['N'][-1]:g})"
        ax.plot(d["N"], tput, label=label, **styles[mode])
    ax.set_ylim(bottom=0)
    title = "Throughput vs bound" if r.has_any("bound_throughput") else "Throughput (no bound_throughput column)"
    finish(ax, title + "\n(dashed: physical limit)" if r.has_any("bound_throughput") else title, "images / s")
    return True


def panel_latency(ax, r):
    if not r.has_any("latency_p50"):
        return False
    styles = mode_styles(r)
    for mode in r.modes:
        if not r.has(mode, "latency_p50"):
            continue
        d = r.data[mode]
        ax.plot(d["N"], 1e3 * d["latency_p50"], label=f"{mode} p50", **styles[mode])
        top = "latency_p99" if r.has(mode, "latency_p99") else "latency_p90"
        if r.has(mode, top):
            ax.fill_between(d["N"], 1e3 * d["latency_p50"], 1e3 * d[top], color=styles[mode]["color"], alpha=0.15,
                            label=f"{mode} p50–{top[-3:]}")
    ax.set_ylim(bottom=0)
    finish(ax, "Latency of one image (submit → result)", "ms")
    return True


def stage_lines(ax, r, field, transform, with_dashed=None):
    """One line per (staged mode, stage); linestyle tells the modes apart when there are several."""
    drawn = False
    styles = ["-", ":", "-."]
    for k, mode in enumerate(r.staged_modes):
        d = r.data[mode]
        prefix = f"{mode} " if len(r.staged_modes) > 1 else ""
        for s in r.stages:
            if r.has(mode, f"{field}_{s}"):
                ax.plot(d["N"], transform(d, d[f"{field}_{s}"]), color=stage_color(s), marker="o", markersize=3,
                        linestyle=styles[k % 3], label=f"{prefix}stage {s}")
                drawn = True
            if with_dashed and r.has(mode, f"{with_dashed[0]}_{s}"):
                ax.plot(d["N"], transform(d, d[f"{with_dashed[0]}_{s}"]), color=stage_color(s), linestyle="--",
                        linewidth=1, label=f"{prefix}stage {s} {with_dashed[1]}")
                drawn = True
    return drawn


def panel_wait(ax, r):
    if not stage_lines(ax, r, "wait", lambda d, v: 1e3 * v, with_dashed=("wait0", "before 1st input")):
        return False
    ax.set_ylim(bottom=0)
    finish(ax, "Waiting for input per stage\n(solid: total, dashed: before the first input)", "ms per run")
    return True


def panel_busy(ax, r):
    if not stage_lines(ax, r, "run", lambda d, v: 100 * v / d["time"]):
        return False
    ax.axhline(100, color="gray", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 105)
    finish(ax, "Busy: run time / wall time per stage", "% of wall time")
    return True


def stacked_panel(stage):
    def panel(ax, r):
        import numpy as np

        mode = next((m for m in r.staged_modes if r.has(m, f"ttime_{stage}")), None)
        if mode is None:
            return False
        d = r.data[mode]
        total = d[f"ttime_{stage}"]
        parts = [(f, label) for f, label in (("wtime", "wait"), ("copy1", "copy in"), ("run", "run"),
                                             ("copy2", "copy out")) if r.has(mode, f"{f}_{stage}")]
        if not parts:
            return False
        shares = [100 * np.nan_to_num(d[f"{f}_{stage}"]) / total for f, _ in parts]
        other = np.clip(100 - sum(shares), 0, None)
        colors = {"wait": "#bbbbbb", "copy in": "C1", "run": "C2", "copy out": "C9"}
        ax.stackplot(d["N"], *shares, other, labels=[label for _, label in parts] + ["other"],
                     colors=[colors[label] for _, label in parts] + ["#eeeeee"], alpha=0.9)
        ax.set_ylim(0, 100)
        ax.set_xlim(d["N"][0], d["N"][-1])
        suffix = f", {mode}" if len(r.staged_modes) > 1 else ""
        finish(ax, f"Stage {stage}: where its time goes{suffix}", "% of the stage's total time", legend=False)
        ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
        return True
    return panel


# ---------------------------------------------------------------------------------------------------------------------

def draw(results, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [panel_time, panel_time_per_image, panel_gain, panel_throughput, panel_latency, panel_wait, panel_busy]
    panels += [stacked_panel(s) for s in results.stages]
    # A panel returns False, having drawn nothing, when its columns are absent; only the others take a grid place.
    fig = plt.figure(layout="constrained")
    kept = []
    for panel in panels:
        ax = fig.add_subplot()
        if panel(ax, results):
            kept.append(ax)
        else:
            ax.remove()
    ncols = 4 if len(kept) > 9 else 3
    grid = fig.add_gridspec(math.ceil(len(kept) / ncols), ncols)
    for i, ax in enumerate(kept):
        ax.set_subplotspec(grid[i // ncols, i % ncols])
    fig.set_size_inches(5.3 * ncols, 4.2 * grid.nrows)
    lines = wrap_title(fig, title, TITLE_SIZE)
    # Constrained layout makes room for the title above the grid; the figure grows by the extra lines so that the
    # panels keep their height.
    fig.set_size_inches(5.3 * ncols, 4.2 * grid.nrows + (len(lines) - 1) * TITLE_SIZE * 1.3 / 72)
    fig.suptitle("\n".join(lines), fontsize=TITLE_SIZE)
    return fig


def wrap_title(fig, title, fontsize):
    """The title cut into lines that each fit the figure's width, measured with the figure's font.

    Breaks between the " · " separated items of the default title first (an item stays whole when it fits a line),
    then between words; a word wider than the figure (a long file name) is cut where it must be."""
    from matplotlib.font_manager import FontProperties

    renderer = fig.canvas.get_renderer()
    font = FontProperties(size=fontsize)
    limit = 0.96 * fig.bbox.width  # both in display pixels at the figure's dpi

    def fits(text):
        return renderer.get_text_width_height_descent(text, font, ismath=False)[0] <= limit

    def pack(pieces, sep):
        lines = []
        for piece in pieces:
            if lines and fits(lines[-1] + sep + piece):
                lines[-1] += sep + piece
            elif fits(piece):
                lines.append(piece)
            elif sep != " ":
                lines += pack(piece.split(" "), " ")
            else:  # one word wider than the figure: as many characters as fit, then the rest
                while not fits(piece):
                    cut = max(k for k in range(1, len(piece) + 1) if k == 1 or fits(piece[:k]))
                    lines.append(piece[:cut])
                    piece = piece[cut:]
                lines.append(piece)
        return lines

    return [line for paragraph in title.splitlines() for line in (pack(paragraph.split(" · "), " · ") or [""])]


def default_title(results, path):
    parts = [os.path.basename(path)]
    if results.staged_modes:
        parts.append(f"{len(results.stages)} stages")
    parts += [f"{k} {v}" if k != "repN" else f"{v} repetitions" for k, v in results.meta.items()]
    return " · ".join(parts)


def main():
    parser = argparse.ArgumentParser(description="Plot an onnxpipe bench CSV (the seed's grid, readable).")
    parser.add_argument("results", help="CSV written by onnxpipe bench --format csv (or the seed's CSV)")
    parser.add_argument("-o", "--output", required=True, help="image to write: .png, or .svg for SVG")
    parser.add_argument("--svg", action="store_true", help="also write an .svg beside the .png")
    parser.add_argument("--title", help="figure title (default: file name and the columns every row shares)")
    args = parser.parse_args()

    stem, ext = os.path.splitext(args.output)
    if ext.lower() not in (".png", ".svg"):
        parser.error(f"-o {args.output}: the name must end in .png or .svg")
    outputs = [args.output] + ([stem + ".svg"] if args.svg and ext.lower() == ".png" else [])

    try:
        results = Results(args.results)
        fig = draw(results, args.title or default_title(results, args.results))
        for out in outputs:
            # Written beside, then renamed: a failed run leaves no half image.
            tmp = f"{stem}.tmp{os.getpid()}{os.path.splitext(out)[1]}"
            try:
                fig.savefig(tmp, dpi=110)
                os.replace(tmp, out)
            except OSError as e:
                if os.path.exists(tmp):
                    os.remove(tmp)
                raise PlotError(f"{out}: {e.strerror}")
            print(f"plot: wrote {out}", file=sys.stderr)
    except PlotError as e:
        print(f"plot: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

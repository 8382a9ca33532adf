"""Run directories written by `ltk` / `ntk_compare`, read back: the summary
(with verdicts), the config, the per-unit records, the tables and learning
curves (as pandas DataFrames when pandas is installed, else dicts of lists),
and the saved arrays (parameters, masks, checkpoints).

    run = lottery_tangent.runs.load("runs/imp_lenet_fashion")
    run.summary["verdicts"]; run.records; run.tables["rounds"]; run.metrics
    run.arrays("seed_0/round_03/mask.safetensors")
"""
import csv
import glob
import json
import os

from ._native import load_safetensors

try:
    import pandas as _pd
except ImportError:  # pragma: no cover - exercised where pandas is absent
    _pd = None

try:
    import tomllib as _toml
except ImportError:  # Python < 3.11
    _toml = None


def _frame(rows):
    """A DataFrame of `rows` (dicts), or a dict of column lists without pandas."""
    if _pd is not None:
        return _pd.json_normalize(rows) if rows and isinstance(rows[0], dict) else _pd.DataFrame(rows)
    cols = {}
    for i, r in enumerate(rows):
        for k, v in _flatten(r).items():
            cols.setdefault(k, [None] * i).append(v)
        for k in cols:
            if len(cols[k]) < i + 1:
                cols[k].append(None)
    return cols


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _value(text):
    """A CSV cell as int, float, None (empty) or the text itself."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _read_csv(path):
    if _pd is not None:
        return _pd.read_csv(path)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [_value(r[k]) for r in rows] for k in (rows[0].keys() if rows else [])}


class Run:
    """One run directory. Attributes are read when first used."""

    def __init__(self, path):
        self.path = os.path.abspath(path)
        if not os.path.isdir(self.path):
            raise ValueError(f"run directory: expected a directory, got {path!r}")
        if not any(os.path.exists(os.path.join(self.path, f)) for f in ("summary.json", "config.toml", "run.json")):
            raise ValueError(f"run directory: expected summary.json, config.toml or run.json in {path!r}, found none")

    def _json(self, name):
        p = os.path.join(self.path, name)
        return json.load(open(p)) if os.path.exists(p) else None

    @property
    def summary(self):
        """summary.json (with the verdicts), or None while the run is unfinished."""
        return self._json("summary.json")

    @property
    def provenance(self):
        """run.json: version, git commit, host, start time, command line."""
        return self._json("run.json")

    @property
    def config(self):
        """The run's config.toml as a dict (its text where tomllib is missing)."""
        p = os.path.join(self.path, "config.toml")
        if not os.path.exists(p):
            return None
        if _toml is None:
            return open(p).read()
        with open(p, "rb") as f:
            return _toml.load(f)

    @property
    def records(self):
        """Every finished unit's record (units/*.json), one row each, with a `unit` column."""
        rows = []
        for p in sorted(glob.glob(os.path.join(self.path, "units", "*.json"))):
            rec = json.load(open(p))
            unit = os.path.splitext(os.path.basename(p))[0]
            # A unit file holds {"unit", "record", "seconds"}; a record may be a list of rows.
            if isinstance(rec, dict) and "record" in rec:
                rec = rec["record"]
            items = rec if isinstance(rec, list) else [rec]
            for r in items:
                rows.append({"unit": unit, **(r if isinstance(r, dict) else {"value": r})})
        return _frame(rows)

    @property
    def tables(self):
        """The CSV tables at the top of the run (e.g. rounds.csv), by name."""
        return {os.path.splitext(os.path.basename(p))[0]: _read_csv(p)
                for p in sorted(glob.glob(os.path.join(self.path, "*.csv")))}

    @property
    def metrics(self):
        """Learning curves: every metrics.csv under the run, with a `path` column
        (its folder relative to the run; "" for a single training run)."""
        frames = []
        for p in sorted(glob.glob(os.path.join(self.path, "**", "metrics.csv"), recursive=True)):
            rel = os.path.relpath(os.path.dirname(p), self.path)
            t = _read_csv(p)
            if _pd is not None:
                t.insert(0, "path", "" if rel == "." else rel)
            else:
                n = len(next(iter(t.values()), []))
                t = {"path": ["" if rel == "." else rel] * n, **t}
            frames.append(t)
        if _pd is not None:
            return _pd.concat(frames, ignore_index=True) if frames else _pd.DataFrame()
        out = {}
        for t in frames:
            for k, v in t.items():
                out.setdefault(k, []).extend(v)
        return out

    def arrays(self, relpath):
        """The arrays of a safetensors file of the run (relative path), by name."""
        return load_safetensors(os.path.join(self.path, relpath))

    def files(self, pattern="**/*.safetensors"):
        """Paths (relative to the run) matching a glob pattern."""
        return sorted(os.path.relpath(p, self.path) for p in glob.glob(os.path.join(self.path, pattern), recursive=True))


def load(path):
    """The run directory at `path`."""
    return Run(path)

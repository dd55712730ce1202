"""Studies: the paper's specs (experiments/NAME.yaml, format in experiments/README.md) and the study files
(experiments/converged/study.yaml and the like, groups of runs) loaded into one model, `Study` of `Run`s.

A spec is a study of one group named after it, its runs in runs/experiments/NAME/ID (the train output is the
run directory itself); a study file has named groups, its runs in OUT/GROUP/ID with the train output in
OUT/GROUP/ID/train. Both layouts are kept so that the runs made before issue #22 still resume and report."""
import os

from .. import paths
from ..io import read_yaml

#: Where the specs and study files live, relative to the repository root.
SPEC_DIR = "experiments"
#: Where a spec's runs go (a study file names its own with `out:`).
SPEC_RUNS = os.path.join("runs", "experiments")
#: A study file without `out:` runs into runs/converged (scripts/converged.py's default before issue #22).
STUDY_RUNS = os.path.join("runs", "converged")
#: K for NLL_test when a spec's budget names none (the paper's).
PAPER_K = 4096
KINDS = ("table", "estimate", "reconstruct", "study")


class SpecError(ValueError):
    """A spec or study file that cannot be run; the message names the file and what is wrong."""


class Run:
    """One run of a study: its group and id, the settings it trains with (the study's `set` updated by its own),
    its config, and what the report needs (label, method, paper values)."""

    def __init__(self, group, raw, study_set, config):
        self.group = group
        self.id = str(raw["id"])
        self.label = str(raw.get("label", self.id))
        self.own_set = dict(raw.get("set") or {})
        self.set = {**(study_set or {}), **self.own_set}
        self.config = raw.get("config", config)
        self.method = raw.get("method")
        self.paper = raw.get("paper")
        self.iw_samples = raw.get("iw_samples")
        self.estimate_samples = raw.get("estimate_samples")
        #: Also draw the paper's Figure 4/5 pictures of this run (`reconstruct` of 32 training and 32 test images).
        self.reconstruct = raw.get("reconstruct", False)
        self.raw = raw

    def __repr__(self):
        return f"Run({self.group}/{self.id})"


class Study:
    """A study: its name, kind (table, estimate, reconstruct for specs; study for study files), its groups of
    runs, where they go (`out`, absolute) and the file's other keys (`raw`)."""

    def __init__(self, name, path, kind, raw, out, groups, root):
        self.name, self.path, self.kind, self.raw = name, path, kind, raw
        self.out, self.groups, self.root = out, groups, root
        #: Where each done run's records are kept in the repository (a study file's `records:`), or None.
        self.records = os.path.normpath(os.path.join(root, raw["records"])) if raw.get("records") else None
        self._base = None

    @property
    def is_spec(self):
        """True for experiments/NAME.yaml (flat run directories), False for a study file."""
        return self.kind != "study"

    def run_dir(self, run):
        return os.path.join(self.out, run.group, run.id)

    def train_dir(self, run):
        """Where `train --out` writes: the run directory for a spec, its train/ for a study file."""
        return self.run_dir(run) if self.is_spec else os.path.join(self.run_dir(run), "train")

    def record_dir(self, run):
        """Where a done run's records are kept in the repository (run directories do not outlive their
        machine): RECORDS/GROUP/ID, or None when the study keeps none."""
        return os.path.join(self.records, run.group, run.id) if self.records else None

    def done_path(self, run):
        """A run's done.json: in its run directory, else in its kept records; None when neither has one."""
        for d in (self.run_dir(run), self.record_dir(run)):
            if d and os.path.exists(os.path.join(d, "done.json")):
                return os.path.join(d, "done.json")
        return None

    def all_runs(self):
        return [r for g in self.groups.values() for r in g]

    def select(self, groups=None, only=None):
        """The runs of the named groups (all when none), in order, restricted to the ids (or labels) in `only`.
        Unknown groups or ids raise SpecError naming the known ones."""
        names = list(groups or self.groups)
        for g in names:
            if g not in self.groups:
                raise SpecError(f"{self.name}: unknown group '{g}' (groups: {', '.join(self.groups)})")
        runs = [r for g in names for r in self.groups[g]]
        if not only:
            return runs
        chosen = []
        for w in only:
            match = [r for r in runs if r.id == w] or [r for r in runs if r.label == w]
            if not match:
                raise SpecError(f"'{w}' is not a run of {self.name} (ids: {', '.join(r.id for r in runs)})")
            chosen += [m for m in match if m not in chosen]
        return [r for r in runs if r in chosen]

    def base_config(self, run=None):
        """The train config a run starts from (the study's, unless the run names its own), as a dict."""
        cfg = run.config if run is not None else self.raw.get("config")
        if run is None or cfg == self.raw.get("config"):
            if self._base is None:
                self._base = read_yaml(os.path.join(self.root, self.raw["config"])) or {}
            return self._base
        return read_yaml(os.path.join(self.root, cfg)) or {}

    def setting(self, run, key):
        """A dotted config key's value for a run: its settings, else its base config; None if neither has it."""
        if key in run.set:
            return run.set[key]
        return dotted(self.base_config(run), key)

    def alpha_beta(self, run):
        """(α, β) of a VAE-AS run, (None, None) for a plain VAE."""
        if self.setting(run, "objective.kind") != "vaeas":
            return None, None
        return self.setting(run, "objective.alpha"), self.setting(run, "objective.beta")

    def paper(self, run_id, column):
        """The paper's value of a column for a row of this spec (None when the paper has none)."""
        cols = self.raw.get("columns", [])
        for r in self.all_runs():
            if r.id == run_id and r.paper and column in cols:
                return r.paper[cols.index(column)]
        return None


def dotted(node, key, default=None):
    """A dotted config key's value in a nested mapping (`train.seed`), or default when a part is missing."""
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def spec_names(root=None):
    """The names of the specs in experiments/ (NAME of experiments/NAME.yaml)."""
    d = os.path.join(root or paths.ROOT, SPEC_DIR)
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".yaml"))


def load(name_or_path, root=None):
    """A study from a spec name (`table2`) or a file path (a spec or a study file, told apart by `groups:`)."""
    root = root or paths.ROOT
    if os.sep in name_or_path or name_or_path.endswith((".yaml", ".yml")):
        path = name_or_path if os.path.isabs(name_or_path) else os.path.join(root, name_or_path)
    else:
        path = os.path.join(root, SPEC_DIR, name_or_path + ".yaml")
    if not os.path.exists(path):
        known = ", ".join(spec_names(root)) if os.path.isdir(os.path.join(root, SPEC_DIR)) else "none"
        raise SpecError(f"no study '{name_or_path}': {os.path.relpath(path, root)} does not exist (specs: {known})")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping at the top level")
    return _study_file(raw, path, root) if "groups" in raw else _spec_file(raw, path, root)


def _need(raw, path, *keys):
    for k in keys:
        if k not in raw:
            raise SpecError(f"{path}: missing key '{k}'")


def _runs(group, rows, raw, path):
    if not isinstance(rows, list):
        raise SpecError(f"{path}: group '{group}' is not a list of runs")
    out, seen = [], set()
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "id" not in row:
            raise SpecError(f"{path}: run {i + 1} of '{group}' has no 'id'")
        run = Run(group, row, raw.get("set"), raw.get("config"))
        if run.id in seen:
            raise SpecError(f"{path}: run id '{run.id}' appears twice in '{group}'")
        if not isinstance(run.reconstruct, bool):
            raise SpecError(f"{path}: run '{run.id}' has reconstruct: {run.reconstruct!r}; expected true or false")
        seen.add(run.id)
        if not run.config:
            raise SpecError(f"{path}: run '{run.id}' has no config (and the file no 'config')")
        out.append(run)
    return out


def _spec_file(raw, path, root):
    name = str(raw.get("name") or os.path.basename(path)[:-5])
    kind = raw.get("kind", "table")
    if kind in ("table", "estimate"):
        _need(raw, path, "config", "rows", "budget")
        runs = _runs(name, raw["rows"], raw, path)
        cols = raw.get("columns", [])
        for r in runs:
            if kind == "table" and r.paper is not None and len(r.paper) != len(cols):
                raise SpecError(f"{path}: row '{r.id}' has {len(r.paper)} paper values for {len(cols)} columns")
        groups = {name: runs}
    elif kind == "reconstruct":
        _need(raw, path, "figures")
        groups = {}
    else:
        raise SpecError(f"{path}: unknown kind '{kind}' (table, estimate, reconstruct; or a study file with groups)")
    return Study(name, path, kind, raw, os.path.join(root, SPEC_RUNS), groups, root)


def _study_file(raw, path, root):
    _need(raw, path, "groups", "iw_samples", "test_examples")
    if not isinstance(raw["groups"], dict) or not raw["groups"]:
        raise SpecError(f"{path}: 'groups' must map group names to lists of runs")
    groups = {str(g): _runs(str(g), rows, raw, path) for g, rows in raw["groups"].items()}
    name = os.path.basename(os.path.dirname(path))
    return Study(name, path, "study", raw, os.path.join(root, raw.get("out") or STUDY_RUNS), groups, root)

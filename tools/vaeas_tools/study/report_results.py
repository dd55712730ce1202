"""The tables of docs/RESULTS.md's eq. 14 section, written from docs/results.csv and nothing else, so that every
number in them is a row of the CSV (which `report csv` writes from the runs' records).

Each table sits between its own markers, `<!-- results:NAME:begin -->` and `<!-- results:NAME:end -->`, with the
text about it outside them; `report results` replaces the inside of every block it knows (TABLES) and refuses a
block name it does not know, or a page without a block it knows. The paper's values come from the specs
(experiments/table1.yaml, table2.yaml, table3.yaml). A row the study has not run yet is printed as "not run", so
the tables also say what remains."""
import csv
import os
import re

from .. import paths
from ..io import write_text_atomic
from . import commands as C
from . import spec as S
from .results_csv import study_files
from .tables import PAPER_COLS, mean_sd, paper_values

PAGE = os.path.join("docs", "RESULTS.md")
CSV = os.path.join("docs", "results.csv")
BLOCK = re.compile(r"<!-- results:([a-z0-9-]+):begin -->\n(.*?)<!-- results:\1:end -->", re.S)

#: The CSV columns of the paper's Table 2/3 columns (tables.PAPER_COLS), in that order.
CSV_OF = {"NLL_test": "nll_test", "KL_test": "kl_test", "AU": "au", "NLL_train": "nll_train",
          "KL_train": "kl_train", "MI": "mi", "MD": "md", "SC": "sc"}


def load(path):
    """{(study, group, id): row} of docs/results.csv, values as the CSV spells them ('' where empty)."""
    with open(path, newline="") as f:
        return {(r["study"], r["group"], r["id"]): r for r in csv.DictReader(f)}


def num(r, key):
    """A CSV cell as a float, None where empty."""
    v = r.get(key, "") if r else ""
    return None if v in ("", None) else float(v)


def signed(text):
    """A printed number with the typographic minus the rest of RESULTS.md uses."""
    return "−" + text[1:] if text.startswith("-") else text


def cell(r, key, nd=2):
    """A CSV cell as the tables print it: AU and epochs as integers, times in minutes, the rest to nd decimals."""
    x = num(r, key)
    if x is None:
        return "–"
    if key in ("au", "best_test_elbo_epoch", "epochs", "steps", "k", "mc_s", "n", "v"):
        return str(int(x))
    if key in ("train_s", "wall_s"):
        return f"{x / 60:.1f} min"
    return signed(f"{x:.{nd}f}")


def paper_cell(v, column):
    if v is None:
        return "–"
    return str(int(v)) if column == "AU" else f"{v:.2f}"


def _table(head, rows, align=None):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(align or ["---"] + ["---:"] * (len(head) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


class Results:
    """docs/results.csv and the study files, read once for every table."""

    def __init__(self, rows, root):
        self.rows, self.root = rows, root
        self.studies = {st.name: st for st in (S.load(p, root) for p in study_files(root))}

    def get(self, study, group, rid):
        return self.rows.get((study, group, rid))

    def find(self, study, groups, rid):
        """The row of run `rid` in the first of `groups` that has it, else None."""
        for g in groups:
            if (study, g, rid) in self.rows:
                return self.rows[(study, g, rid)]
        return None

    def group_ids(self, study, group):
        st = self.studies.get(study)
        return [r.id for r in st.groups.get(group, [])] if st else []

    def paper(self, spec, columns=PAPER_COLS):
        return paper_values(S.load(spec, self.root), columns)


# ---- the tables -------------------------------------------------------------------------------------------------

#: What issue #20 asks to run: (what, study, groups).
ASKED = [
    ("the headline pair at full N (50000), 300 epochs, V = 10000, K = 4096", "paper-length",
     ["headline", "headline-s1", "headline-s2"]),
    ("the same with V = N", "paper-length", ["vn"]),
    ("the headline pair at N = V = 10000, 3 seeds", "n10000", ["headline"]),
    ("Table 2's other 11 rows at N = V = 10000, 300 epochs", "n10000", ["table2-beta", "table2-alpha"]),
    ("Table 1's decoder depths at N = 10000 (depth 5 is `headline/vae`)", "n10000", ["table1"]),
    ("Table 3's 14 rows on omniglot-small (N = V = 3630)", "omniglot-small", ["table3"]),
    ("Î against the S = N Monte Carlo MI at N = 1000, 3 seeds", "converged", ["gap-n1000"]),
]


def status(R):
    rows = []
    for what, study, groups in ASKED:
        done, todo = [], []
        for g in groups:
            for rid in R.group_ids(study, g):
                (done if R.get(study, g, rid) else todo).append(rid)
        state = f"{len(done)} of {len(done) + len(todo)} done"
        if todo:
            state += "; not run: " + ", ".join(todo)
        rows.append([what, f"`{study}` " + ", ".join(f"`{g}`" for g in groups), state])
    return _table(["what the issue asks", "study, groups", "state"], rows, ["---", "---", "---"])


#: The per-run columns of the seed tables: (CSV column, heading, decimals).
RUN_COLS = [("nll_test", "NLL_test", 2), ("kl_test", "KL_test", 2), ("au", "AU", 0), ("nll_train", "NLL_train", 2),
            ("kl_train", "KL_train", 2), ("mi", "Î", 2), ("md", "MD̂", 2), ("sc", "SC", 2),
            ("mi_md_minus_kl", "Î + MD̂ − KL", 2), ("mc_mi", "MC MI (S = N)", 2), ("mi_gap_pct", "gap %", 2)]


def _run_cells(r):
    best = f"{cell(r, 'best_test_elbo')} ({cell(r, 'best_test_elbo_epoch')})" if r else "–"
    return ([cell(r, c, nd) for c, _, nd in RUN_COLS] +
            [best, cell(r, "test_elbo"), cell(r, "test_elbo_change"), r["converged"] if r else "–",
             cell(r, "train_s")])


RUN_HEAD = [h for _, h, _ in RUN_COLS] + ["best test ELBO (epoch)", "test ELBO at the end",
                                          "change, last 10 %", "converged", "training"]


def seeds(R, study, group):
    """Every run of a group, one row each, then plain VAE against VAE-AS over seeds: mean ± sd, the differences
    paired by seed, and the paper's pair (Table 2's vae and a1-b1)."""
    out, runs = [], []
    for rid in R.group_ids(study, group):
        r = R.get(study, group, rid)
        runs.append(r)
        out.append([rid] + (_run_cells(r) if r else ["not run"] + [""] * (len(RUN_HEAD) - 1)))
    lines = _table(["run"] + RUN_HEAD, out)
    done = [r for r in runs if r]
    vae = {r["seed"]: r for r in done if r["method"] == "vae"}
    vaeas = {r["seed"]: r for r in done if r["method"] != "vae"}
    if not vae or not vaeas:
        return lines
    paper = R.paper("table2")
    rows = []
    for key, name, pcol in [("nll_test", "NLL_test", "NLL_test"), ("kl_test", "KL_test", "KL_test"),
                            ("au", "AU", "AU"), ("nll_train", "NLL_train", "NLL_train"),
                            ("kl_train", "KL_train", "KL_train"), ("best_test_elbo", "best test ELBO", None)]:
        a = [num(r, key) for r in vae.values()]
        b = [num(r, key) for r in vaeas.values()]
        paired = [num(vaeas[s], key) - num(vae[s], key) for s in sorted(vae) if s in vaeas
                  and num(vaeas[s], key) is not None and num(vae[s], key) is not None]
        nd = 0 if key == "au" else 2
        i = PAPER_COLS.index(pcol) if pcol else None
        p = "" if i is None else (f"{paper_cell(paper['vae'][i], pcol)} → {paper_cell(paper['a1-b1'][i], pcol)}")
        rows.append([name, signed(mean_sd(a)), signed(mean_sd(b)), ", ".join(signed(f"{d:+.{nd}f}") for d in paired), p])
    lines += [""] + _table(["over seeds", f"plain VAE ({len(vae)} seeds)", f"VAE-AS ({len(vaeas)} seeds)",
                            "VAE-AS − VAE, paired by seed", "paper, VAE → VAE-AS (N = 55000)"], rows,
                           ["---", "---:", "---:", "---", "---"])
    return lines


def ours_paper(R, study, groups, spec, extra=True, alias=None, run_only=False):
    """A paper table (Table 2 or 3), one row per paper row in the paper's order: ours / paper for each of its
    columns, then the measures the paper has not (MC MI, gap, Î + MD̂ − KL, the test ELBO's end change,
    converged, training time). The run of a paper row is alias[row id] = (group, run id) if given, else the
    study's run with the same id in the first of `groups` that has it; with run_only, rows without a run are
    left out instead of printed "not run"."""
    alias = alias or {}
    paper = R.paper(spec)
    spec_rows = S.load(spec, R.root).all_runs()
    head = ["row", "α", "β"] + [c.replace("MI", "Î").replace("MD", "MD̂") for c in PAPER_COLS]
    if extra:
        head += ["MC MI (S = N)", "gap %", "Î + MD̂ − KL", "change, last 10 %", "converged", "training"]
    rows = []
    for sr in spec_rows:
        r = R.get(study, *alias[sr.id]) if sr.id in alias else R.find(study, groups, sr.id)
        a, b = ((f"{sr.set.get('objective.alpha', 1.0):g}", f"{sr.set.get('objective.beta', 1.0):g}")
                if sr.set.get("objective.kind") != "vae" else ("–", "–"))
        if not r:
            if not run_only:
                rows.append([sr.id, str(a), str(b), "not run"] + [""] * (len(head) - 4))
            continue
        cells = [f"{cell(r, CSV_OF[c], 0 if c == 'AU' else 2)} / {paper_cell(p, c)}"
                 for c, p in zip(PAPER_COLS, paper[sr.id])]
        if extra:
            cells += [cell(r, "mc_mi"), cell(r, "mi_gap_pct"), cell(r, "mi_md_minus_kl"),
                      cell(r, "test_elbo_change"), r["converged"], cell(r, "train_s")]
        name = sr.id if sr.id not in alias else f"{sr.id} (`{'/'.join(alias[sr.id])}`)"
        rows.append([name, str(a), str(b)] + cells)
    return _table(head, rows)


def table1(R, study="n10000"):
    """Table 1: AU against decoder depth, depths 1–4 from `table1/decK`, depth 5 the headline VAE (seed 0)."""
    paper = {int(k): v[0] for k, v in R.paper("table1", ["AU"]).items()}
    rows = []
    for k in sorted(paper):
        r = R.get(study, "headline", "vae") if k == 5 else R.get(study, "table1", f"dec{k}")
        if not r:
            rows.append([str(k), f"not run / {paper[k]}"] + [""] * 7)
            continue
        rows.append([str(k), f"{cell(r, 'au')} / {paper[k]}", cell(r, "kl_test"), cell(r, "nll_test"),
                     cell(r, "nll_train"), cell(r, "mc_mi"), cell(r, "test_elbo_change"), r["converged"],
                     cell(r, "train_s")])
    return _table(["decoder layers", "AU ours / paper", "KL_test", "NLL_test", "NLL_train", "MC MI (S = N)",
                   "test ELBO change, last 10 %", "converged", "training"], rows)


def runs(R, study, groups):
    """Every run of the groups, one row each (the seed tables' columns)."""
    out = []
    for g in groups:
        for rid in R.group_ids(study, g):
            r = R.get(study, g, rid)
            out.append([rid] + (_run_cells(r) if r else ["not run"] + [""] * (len(RUN_HEAD) - 1)))
    return _table(["run"] + RUN_HEAD, out)


def figure(R, study, group, rids=("a0.2-b1", "a5-b1")):
    """The paper's Figure 4/5: each run's pictures of 32 training and 32 test images (originals above,
    reconstructions at z = μ below), kept in its records, with the mean BCE of the shown images and NLL_train,
    NLL_test of its row."""
    st = R.studies.get(study)
    runs = {r.id: r for r in st.groups.get(group, [])} if st else {}
    rows = []
    for rid in rids:
        r = R.get(study, group, rid)
        run = runs.get(rid)
        alpha = f"{run.set.get('objective.alpha', 1.0):g}" if run else "?"
        if not r:
            rows.append([f"α = {alpha}", "not run", ""])
            continue
        cells = []
        for split in C.RECONSTRUCT_SPLITS:
            bce = cell(r, f"recon_bce_{split}")
            png = os.path.join(st.record_dir(run) or "", C.reconstruct_png(split)) if run else ""
            if bce == "–" or not os.path.exists(png):
                cells.append("no picture (the run was not marked `reconstruct: true`)")
                continue
            link = os.path.relpath(png, os.path.join(R.root, os.path.dirname(PAGE)))
            cells.append(f"![α = {alpha}, {split}]({link}) BCE {bce}")
        rows.append([f"α = {alpha} (`{group}/{rid}`)"] + cells)
    return _table(["", "training images", "test images"], rows, ["---", "---", "---"])


TABLES = {
    "status": status,
    "headline-n10000": lambda R: seeds(R, "n10000", "headline"),
    "table2-n10000": lambda R: ours_paper(R, "n10000", ["headline", "table2-beta", "table2-alpha"], "table2"),
    "table1-n10000": table1,
    "table3-omniglot-small": lambda R: ours_paper(R, "omniglot-small", ["table3"], "table3"),
    "figure4-n10000": lambda R: figure(R, "n10000", "table2-alpha"),
    "figure5-omniglot-small": lambda R: figure(R, "omniglot-small", "table3"),
    "gap-n1000": lambda R: runs(R, "converged", ["gap-n1000"]),
    "eq14-n2000": lambda R: seeds(R, "converged", "eq14"),
    "eq14-rows-n2000": lambda R: ours_paper(R, "converged", ["eq14-rows"], "table2", run_only=True,
                                            alias={"a1-b1": ("eq14", "eq14-s0")}),
    "paper-length": lambda R: runs(R, "paper-length", ["headline", "headline-s1", "headline-s2", "vn"]),
}


def render(doc, R):
    """doc with every known block's inside replaced by its table; ValueError naming an unknown block, or a known
    one the page lacks."""
    names = BLOCK.findall(doc)
    unknown = sorted({n for n, _ in names} - set(TABLES))
    if unknown:
        raise ValueError(f"{PAGE}: unknown results block(s) {', '.join(unknown)}; known: {', '.join(TABLES)}")
    missing = [n for n in TABLES if n not in {m for m, _ in names}]
    if missing:
        raise ValueError(f"{PAGE}: no block <!-- results:NAME:begin --> … <!-- results:NAME:end --> for "
                         f"{', '.join(missing)}")

    def fill(m):
        name = m.group(1)
        body = "\n".join(TABLES[name](R))
        return f"<!-- results:{name}:begin -->\n{body}\n<!-- results:{name}:end -->"
    return BLOCK.sub(fill, doc)


def write(page=None, csv_path=None, root=None):
    """Rewrites the tables of docs/RESULTS.md (or `page`) from docs/results.csv (or `csv_path`); returns
    (path, number of tables)."""
    root = root or paths.ROOT
    page = os.path.join(root, page or PAGE)
    csv_path = os.path.join(root, csv_path or CSV)
    if not os.path.exists(csv_path):
        raise ValueError(f"{csv_path}: not found; `python3 scripts/study.py report csv` writes it")
    R = Results(load(csv_path), root)
    with open(page) as f:
        doc = f.read()
    out = render(doc, R)
    write_text_atomic(page, out)
    return page, len(TABLES)

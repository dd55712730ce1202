"""`report results`: docs/RESULTS.md's eq. 14 tables are written from docs/results.csv and nothing else, each into
its own marked block; a row the study has not run says "not run"; the seed summary pairs runs by seed; a block
the report does not know, or one it needs that the page lacks, is an error naming it; and the repository's page
is what its CSV says."""
import csv
import io
import os
import shutil

import pytest

from vaeas_tools import paths
from vaeas_tools.study import cli, report_results, results_csv


def _csv(path, rows):
    """A results.csv with the given rows (dicts over some of COLUMNS; the rest empty)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=results_csv.COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: r.get(k, "") for k in results_csv.COLUMNS})
    path.write_text(buf.getvalue())


def _page(path, names=None):
    names = names if names is not None else list(report_results.TABLES)
    path.write_text("# R\n\ntext kept\n\n" + "".join(
        f"<!-- results:{n}:begin -->\nold\n<!-- results:{n}:end -->\n\nprose about {n}\n\n" for n in names))


def _run(study, group, rid, method, seed, nll, kl, **kw):
    r = {"study": study, "group": group, "id": rid, "method": method, "seed": seed, "nll_test": nll,
         "kl_test": kl, "au": 7, "converged": "no", "train_s": 600}
    r.update(kw)
    return r


def test_the_tables_are_the_csvs_rows_with_the_papers_values(tmp_path):
    _csv(tmp_path / "r.csv", [
        _run("n10000", "headline", "vae", "vae", 0, 121.0, 16.0),
        _run("n10000", "headline", "a1-b1", "vaeas-full", 0, 119.5, 18.5, mi=9.18, mc_mi=9.21, mi_gap_pct=0.33),
        _run("n10000", "headline", "vae-s1", "vae", 1, 118.0, 17.0),
        _run("n10000", "headline", "a1-b1-s1", "vaeas-full", 1, 120.0, 18.0),
        _run("n10000", "table2-beta", "a1-b5", "vaeas-full", 0, 140.25, 5.5, alpha=1.0, beta=5.0),
    ])
    _page(tmp_path / "R.md")
    path, n = report_results.write(page=str(tmp_path / "R.md"), csv_path=str(tmp_path / "r.csv"), root=paths.ROOT)
    doc = open(path).read()
    assert n == len(report_results.TABLES) and "old" not in doc
    assert doc.startswith("# R\n\ntext kept\n") and "prose about table2-n10000" in doc
    t2 = doc.split("<!-- results:table2-n10000:begin -->")[1].split("<!-- results:table2-n10000:end -->")[0]
    # ours / the paper's (experiments/table2.yaml: β = 5 has NLL_test 141.38, KL_test 5.35)
    assert "| a1-b5 | 1 | 5 | 140.25 / 141.38 | 5.50 / 5.35 | 7 / 2 |" in t2
    assert "| a1-b0.1 | 1 | 0.1 | not run |" in t2
    head = doc.split("<!-- results:headline-n10000:begin -->")[1].split("<!-- results:headline-n10000:end -->")[0]
    # paired by seed: 119.5 − 121.0 and 120.0 − 118.0; means of the two seeds with their sample sd
    assert "| NLL_test | 119.50 ± 2.12 | 119.75 ± 0.35 | −1.50, +2.00 | 100.99 → 96.32 |" in head
    assert "| vae-s2 | not run |" in head
    status = doc.split("<!-- results:status:begin -->")[1]
    assert "| the headline pair at N = V = 10000, 3 seeds | `n10000` `headline` | 4 of 6 done; not run: vae-s2, " \
           "a1-b1-s2 |" in status


def test_an_unknown_or_missing_block_is_an_error_naming_it(tmp_path):
    _csv(tmp_path / "r.csv", [])
    _page(tmp_path / "R.md", list(report_results.TABLES) + ["table9"])
    with pytest.raises(ValueError, match="unknown results block.*table9"):
        report_results.write(page=str(tmp_path / "R.md"), csv_path=str(tmp_path / "r.csv"), root=paths.ROOT)
    _page(tmp_path / "R.md", [n for n in report_results.TABLES if n != "gap-n1000"])
    before = (tmp_path / "R.md").read_text()
    with pytest.raises(ValueError, match="no block .* for gap-n1000"):
        report_results.write(page=str(tmp_path / "R.md"), csv_path=str(tmp_path / "r.csv"), root=paths.ROOT)
    assert (tmp_path / "R.md").read_text() == before          # nothing written on error
    assert cli.main(["report", "results", "--out", str(tmp_path / "R.md")]) == 1


def test_the_repositorys_results_page_is_what_its_csv_says():
    """docs/RESULTS.md's generated tables equal what `report results` writes from docs/results.csv, and that CSV
    is what `report csv` writes from the kept records: regenerate both after a run finishes."""
    page = os.path.join(paths.ROOT, report_results.PAGE)
    doc = open(page).read()
    R = report_results.Results(report_results.load(os.path.join(paths.ROOT, report_results.CSV)), paths.ROOT)
    assert report_results.render(doc, R) == doc, "run `python3 scripts/study.py report results`"
    table, _ = results_csv.rows()
    assert results_csv.render(table) == open(os.path.join(paths.ROOT, report_results.CSV)).read(), \
        "run `python3 scripts/study.py report csv`"


def test_figure_4_shows_the_kept_pictures_with_their_bce(tmp_path):
    """The Figure 4 block links the pictures in the run's records (relative to docs/) with the CSV's BCE, and says
    so when a finished run has none."""
    for d in ("experiments", "configs"):
        shutil.copytree(os.path.join(paths.ROOT, d), tmp_path / d, ignore=shutil.ignore_patterns("records"))
    rec = tmp_path / "experiments" / "n10000" / "records" / "table2-alpha" / "a0.2-b1"
    rec.mkdir(parents=True)
    for split in ("train", "test"):
        (rec / f"reconstruct-{split}.png").write_bytes(b"\x89PNG")
    rows = {("n10000", "table2-alpha", "a0.2-b1"): _run("n10000", "table2-alpha", "a0.2-b1", "vaeas-full", 0, 120.0,
                                                        18.0, recon_bce_train=80.25, recon_bce_test=121.5),
            ("n10000", "table2-alpha", "a5-b1"): _run("n10000", "table2-alpha", "a5-b1", "vaeas-full", 0, 121.0, 17.0)}
    R = report_results.Results({k: {c: str(v) for c, v in r.items()} for k, r in rows.items()}, str(tmp_path))
    fig = "\n".join(report_results.TABLES["figure4-n10000"](R))
    assert ("| α = 0.2 (`table2-alpha/a0.2-b1`) | ![α = 0.2, train](../experiments/n10000/records/table2-alpha/"
            "a0.2-b1/reconstruct-train.png) BCE 80.25 | ![α = 0.2, test](../experiments/n10000/records/table2-alpha/"
            "a0.2-b1/reconstruct-test.png) BCE 121.50 |") in fig
    assert "| α = 5 (`table2-alpha/a5-b1`) | no picture" in fig

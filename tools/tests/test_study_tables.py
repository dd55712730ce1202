"""vaeas_tools.study.tables and the two reports, from fixture done.json files of both historical formats:
one row's cells checked, mean ± sd, and where a report of partial runs goes (moved from the Swift
ExperimentsScriptTests.testReportOfPartialRunsDoesNotReplaceTheResults)."""
import os
import shutil

import pytest

from study_fakes import converged_done, experiments_done, make_train_dir, study_file, write_json
from vaeas_tools import paths
from vaeas_tools.study import report_converged, report_full
from vaeas_tools.study import spec as S
from vaeas_tools.study.tables import f, fmt, fmt_seconds, mean_sd, measures, normalize, row_cells


def test_measures_of_a_converged_done_json():
    m = measures(normalize(converged_done("lr", "lr3e-4-s0")))
    assert (m["NLL_test"], m["K"], m["MI"], m["MI_mc"], m["S"]) == (127.71, 100, 6.25, 7.52, 2000)
    assert m["gap"] == pytest.approx(100 * (7.52 - 6.25) / 7.52)
    assert row_cells(m) == ["12.88", "14", "6.25", "7.52", "16.9", "6.63", "0.52", "89.68", "127.71 (100)"]


def test_measures_of_an_experiments_done_json_take_the_classifier_from_metrics(tmp_path):
    make_train_dir(str(tmp_path), epochs=8, last_epoch=8)
    d = normalize(experiments_done("table2", "a1-b1"), str(tmp_path))
    m = measures(d, classifier="epoch")
    assert (m["NLL_test"], m["KL_test"], m["AU"], m["NLL_train"], m["MI"], m["SC"]) == (101.5, 20.25, 9, 75.0, 6.5, 0.4)
    assert d["measure_seconds"] == 23.0 and "MI_mc" not in m


def test_formatting_and_mean_sd():
    assert (f(None), f(3), f(2.0), f(1.25, 1)) == ("–", "3", "2.00", "1.2")
    assert (fmt(7.6, "AU"), fmt(float("nan")), fmt(1.234)) == ("8", "nan", "1.23")
    assert (fmt_seconds(59), fmt_seconds(600), fmt_seconds(9000)) == ("59 s", "10.0 min", "2.5 h")
    assert mean_sd([1.0, 2.0, 3.0, None]) == "2.00 ± 1.00" and mean_sd([None]) == "–" and mean_sd([4]) == "4.00 ± 0.00"


def test_converged_section_rows_and_seed_means(tmp_path):
    st = study_file(tmp_path)
    for rid, mi, nll in [("lr3e-4-s0", 6.0, 120.0), ("lr3e-4-s1", 7.0, 130.0)]:
        write_json(os.path.join(st.run_dir(st.select(only=[rid])[0]), "done.json"),
                   converged_done("lr", rid, mi=mi, nll=nll))
    write_json(os.path.join(st.run_dir(st.select(only=["vae"])[0]), "done.json"),
               converged_done("table2", "vae", sets={"objective.kind": "vae"}))
    text = report_converged.section(st, now=0)
    lines = text.splitlines()
    assert lines[0].startswith(report_converged.BEGIN) and lines[-1] == report_converged.END
    assert "| lr3e-4-s1 | 12.88 | 14 | 7.00 | 7.52 | 6.9 | 6.63 | 0.52 | 89.68 | 130.00 (100) | 3.9 |" in lines
    assert "| **lr 3e-4, mean ± sd of 2 seeds** | 12.88 ± 0.00 | 14.00 ± 0.00 | 6.50 ± 0.71 |" in text
    vae = next(ln for ln in lines if ln.startswith("| vae |"))
    assert vae.startswith("| vae | – | – | 127.71 (K 100) / 100.99 | 12.90 / 18.39 | 14 / 8 |")
    doc = "intro\n" + report_converged.section(st, now=0).replace("12.88", "OLD") + "outro\n"
    assert report_converged.splice(doc, text) == "intro\n" + text + "outro\n"


@pytest.fixture
def copy_root(tmp_path, monkeypatch):
    """A repository root with the specs and configs only, and a tracked report to protect."""
    root = tmp_path / "root"
    shutil.copytree(os.path.join(paths.ROOT, "experiments"), root / "experiments",
                    ignore=shutil.ignore_patterns("converged", "paper-length"))
    os.symlink(os.path.join(paths.ROOT, "configs"), root / "configs")
    (root / "docs").mkdir()
    (root / "docs" / "RESULTS-full-N.md").write_text("# the tracked results\n")
    monkeypatch.setenv("VAEAS_BIN", str(tmp_path / "no-binary"))   # the reconstruct check needs no binary here
    return str(root)


def test_a_report_of_partial_runs_does_not_replace_the_results(copy_root):
    t1 = S.load("table1", copy_root)
    r = t1.select(only=["1"])[0]
    make_train_dir(t1.train_dir(r), epochs=1, last_epoch=1, limit=300)
    write_json(os.path.join(t1.run_dir(r), "done.json"), experiments_done("table1", "1", limit=300, epochs=1))
    msgs = []
    path = report_full.write(root=copy_root, log=msgs.append)
    assert path == os.path.join(copy_root, "runs", "experiments", "REPORT-partial.md")
    assert "runs/experiments/REPORT-partial.md" in msgs[0]
    assert open(os.path.join(copy_root, "docs", "RESULTS-full-N.md")).read() == "# the tracked results\n"
    assert not os.path.exists(os.path.join(copy_root, "docs", "figures"))
    partial = open(path).read()
    assert "**Partial report**" in partial and "table1/1" in partial and "--limit-data" in partial
    row = next(ln for ln in partial.splitlines() if ln.startswith("| 1 |"))
    assert row == "| 1 | 9 / 23 | 101.50 | 1 | 2.0 min |"
    assert "python3 scripts/study.py run table1 --ranks 8 --epochs 300 --iw-samples 4096" in partial
    forced = report_full.write(out="docs/RESULTS-full-N.md", root=copy_root, log=msgs.append)
    text = open(forced).read()
    assert text.startswith("# Appendix: the paper's experiments at full N") and "**Partial report**" in text


def test_the_full_report_of_a_table_row_with_paper_values(copy_root):
    t2 = S.load("table2", copy_root)
    r = t2.select(only=["a1-b1"])[0]
    make_train_dir(t2.train_dir(r), epochs=8, last_epoch=8, limit=0)
    write_json(os.path.join(t2.run_dir(r), "done.json"), experiments_done("table2", "a1-b1"))
    text = open(report_full.write(root=copy_root, log=lambda m: None)).read()
    row = next(ln for ln in text.splitlines() if ln.startswith("| VAE-AS | 1 | 1 |"))
    assert row == ("| VAE-AS | 1 | 1 | 101.50 / 96.32 | 20.25 / 21.84 | 9 / 11 | 75.00 / 71.66 | 20.50 / 21.22 | "
                   "6.50 / 10.78 | 6.00 / 10.66 | 0.40 / 0.35 | 8 | 2.0 min |")
    assert "| VAE | – | – | not run / 100.99 |" in text

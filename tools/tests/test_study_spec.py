"""vaeas_tools.study.spec: the repository's specs and study files load into one model; malformed files are
refused with a message naming the file and the problem."""
import os

import pytest

from study_fakes import study_file
from vaeas_tools import paths
from vaeas_tools.study import spec as S
from vaeas_tools.study.tables import PAPER_COLS, paper_values


def test_every_spec_and_study_file_of_the_repository_loads():
    names = S.spec_names()
    assert {"table1", "table2", "table3", "figure23", "figure45"} <= set(names)
    t2 = S.load("table2")
    assert t2.kind == "table" and len(t2.all_runs()) == 13 and list(t2.groups) == ["table2"]
    assert t2.run_dir(t2.all_runs()[0]) == os.path.join(paths.ROOT, "runs", "experiments", "table2", "vae")
    assert t2.train_dir(t2.all_runs()[0]) == t2.run_dir(t2.all_runs()[0])
    conv = S.load("experiments/converged/study.yaml")
    assert conv.kind == "study" and "eq14" in conv.groups and conv.out == os.path.join(paths.ROOT, "runs", "converged")
    r = conv.select(["eq14"], ["eq14-s0"])[0]
    assert r.set == {"train.cls_lr": 0.003, "objective.md_estimator": "eq14", "train.seed": 0}
    assert conv.train_dir(r).endswith("runs/converged/eq14/eq14-s0/train")
    pl = S.load(os.path.join(paths.ROOT, "experiments/paper-length/study.yaml"))
    assert pl.out == os.path.join(paths.ROOT, "runs", "paper-length") and "headline" in pl.groups
    assert S.load("figure45").kind == "reconstruct"


def test_paper_values_come_from_the_specs():
    """The values converged.py hard-coded (PAPER_T2, PAPER_T1) are the specs' own."""
    t2 = paper_values(S.load("table2"))
    assert t2["a1-b1"] == (96.32, 21.84, 11, 71.66, 21.22, 10.78, 10.66, 0.35)
    assert t2["vae"][5:] == (None, None, None) and len(t2["a5-b1"]) == len(PAPER_COLS)
    assert {k: v[0] for k, v in paper_values(S.load("table1"), ["AU"]).items()} == {
        "1": 23, "2": 21, "3": 17, "4": 12, "5": 8}


def test_selection_by_group_id_and_label(tmp_path):
    st = study_file(tmp_path)
    assert [r.id for r in st.select()] == ["lr3e-4-s0", "lr3e-4-s1", "vae", "a0.2-b1"]
    assert [r.id for r in st.select(["table2"], ["a0.2-b1"])] == ["a0.2-b1"]
    with pytest.raises(S.SpecError, match="unknown group 'nope'.*groups: lr, table2"):
        st.select(["nope"])
    with pytest.raises(S.SpecError, match="'zzz' is not a run"):
        st.select(["lr"], ["zzz"])
    t1 = S.load("table1")
    assert [r.id for r in t1.select(only=["3", "1"])] == ["1", "3"]


@pytest.mark.parametrize("text, message", [
    ("name: t\nkind: table\nconfig: c.yaml\nbudget: {epochs: 1}\n", "missing key 'rows'"),
    ("kind: table\nconfig: c.yaml\nbudget: {}\nrows: [{id: a}, {id: a}]\n", "'a' appears twice"),
    ("kind: table\nconfig: c.yaml\nbudget: {}\ncolumns: [AU]\nrows: [{id: a, paper: [1, 2]}]\n", "2 paper values for 1"),
    ("kind: movie\n", "unknown kind 'movie'"),
    ("kind: table\nconfig: c.yaml\nbudget: {}\nrows: [{set: {}}]\n", "run 1 of 't' has no 'id'"),
    ("groups: {g: [{id: a}]}\niw_samples: 1\ntest_examples: 1\n", "run 'a' has no config"),
    ("groups: {g: [{id: a}]}\nconfig: c.yaml\n", "missing key 'iw_samples'"),
    ("- just a list\n", "mapping at the top level"),
])
def test_malformed_files_are_refused_with_the_reason(tmp_path, text, message):
    p = tmp_path / "t.yaml"
    p.write_text(text)
    with pytest.raises(S.SpecError, match=message):
        S.load(str(p), str(tmp_path))


def test_an_unknown_spec_names_the_known_ones():
    with pytest.raises(S.SpecError, match="no study 'table9'.*specs: figure23, figure45, table1"):
        S.load("table9")

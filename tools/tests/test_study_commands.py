"""vaeas_tools.study.commands: the commands built for mpirun and srun, --limit-data, the measurements of each
kind of study, and the srun commands docs/RESULTS-full-N.md lists (moved from the Swift
ExperimentsScriptTests.testSrunCommandsNameTheBinary and testLimitDataCapsTheLabelsAtN)."""
import os

import pytest

from study_fakes import study_file
from vaeas_tools import paths
from vaeas_tools.study import cli
from vaeas_tools.study import commands as C
from vaeas_tools.study import spec as S

SRUN_OPTS_WITH_VALUE = ("-n", "-N", "-c", "--ntasks", "--nodes", "--cpus-per-task")


def after_srun_options(words):
    i = 1
    while i < len(words) and words[i].startswith("-"):
        i += 2 if words[i] in SRUN_OPTS_WITH_VALUE else 1
    return words[i:]


@pytest.fixture(autouse=True)
def plain_env(monkeypatch):
    monkeypatch.delenv("VAEAS_BIN", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    monkeypatch.delenv("VAEAS_DATA_DIR", raising=False)


def test_mpirun_train_command_of_a_study_run(tmp_path):
    st = study_file(tmp_path)
    r = st.select(only=["a0.2-b1"])[0]
    cmd = C.train_command(st, r, C.Options(ranks=3, data_dir="D"))
    assert cmd == ["scripts/mpirun.sh", "-n", "3", "train", "--config", "configs/mnist-vaeas-small.yaml",
                   "--data-dir", "D", "--set", "train.cls_lr=0", "--set", "objective.alpha=0.2",
                   "--out", st.train_dir(r), "--overwrite"]


def test_srun_names_the_binary_and_passes_cpus_per_task_on(monkeypatch):
    t1 = S.load("table1")
    r = t1.all_runs()[0]
    plain = C.train_command(t1, r, C.Options(launcher="srun", ranks=2))
    assert plain[:5] == ["srun", "--mpi=pmix", "-n", "2", "./.build/release/vaeas-dist"] and plain[5] == "train"
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    monkeypatch.setenv("VAEAS_BIN", "/opt/v/vaeas-dist")
    cmds = [C.train_command(t1, r, C.Options(launcher="srun"))] + [
        m.cmd for m in C.measurements(t1, r, C.Options(launcher="srun"))]
    for words in cmds:
        assert "--cpus-per-task=4" in words
        rest = after_srun_options(words)
        assert rest[0] == "/opt/v/vaeas-dist" and rest[1] in ("train", "eval", "estimate")


def test_limit_data_caps_the_labels_at_n():
    t2 = S.load("table2")
    for r in t2.select(only=["vae", "a1-b1"]):
        cmd = " ".join(C.train_command(t2, r, C.Options(epochs=1, limit_data=2000)))
        assert "objective.labels=2000" in cmd and "data.limit=2000" in cmd and "train.epochs=1" in cmd
        assert "objective.labels=10000" not in cmd


def test_measurements_of_a_table_row_an_estimate_and_a_study_run(tmp_path):
    t3 = S.load("table3")
    test, train = C.measurements(t3, t3.all_runs()[0], C.Options(limit_data=500))
    assert test.cmd[3:] == ["eval", "--checkpoint", "runs/experiments/table3/vae/model.safetensors", "--data-dir",
                            "../shared/data", "--no-classifier", "--split", "test", "--iw-samples", "4096", "--json",
                            "--limit", "500"]
    assert train.cmd[-6:] == ["train", "--limit", "500", "--iw-samples", "1", "--json"]
    f23 = S.load("figure23")
    (est,) = C.measurements(f23, f23.all_runs()[0], C.Options(), n_samples=2000)
    assert est.cmd[est.cmd.index("--samples") + 1] == "100,500,1000,2000" and est.read == "samples"
    st = study_file(tmp_path)
    lr = C.measurements(st, st.select(only=["lr3e-4-s0"])[0], C.Options())
    assert [m.key for m in lr] == ["eval_test", "eval_train", "estimate"]
    assert "--iw-samples 100" in " ".join(lr[0].cmd) and "--limit 1000" in " ".join(lr[0].cmd)
    a02 = C.measurements(st, st.select(only=["a0.2-b1"])[0], C.Options(iw_samples=7))
    assert "--iw-samples 7" in " ".join(a02[0].cmd) and a02[2].cmd[-2:] == ["--samples", "100,2000"]
    assert "--no-classifier" not in a02[1].cmd   # Î, MD̂, SC of the converged tables come from eval on train


def test_dry_run_prints_the_srun_commands_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    st = study_file(tmp_path)
    rc = cli.main(["--study", st.path, "run", "lr", "--only", "lr3e-4-s1", "--launcher", "srun", "--dry-run"])
    out = capsys.readouterr().out
    cmds = [ln.strip()[2:].split() for ln in out.splitlines() if ln.strip().startswith("$ srun ")]
    assert rc == 0 and len(cmds) == 4, out
    for words in cmds:
        rest = after_srun_options(words)
        assert rest[0] == "./.build/release/vaeas-dist" and rest[1] in ("train", "eval", "estimate")
        assert "--cpus-per-task=4" in words
    assert not os.path.exists(tmp_path / "runs")


def test_results_full_n_lists_srun_commands_that_name_the_binary():
    with open(os.path.join(paths.ROOT, "docs", "RESULTS-full-N.md")) as f:
        listed = [ln for ln in f.read().splitlines() if ln.startswith("srun ")]
    assert len(listed) >= 4
    for line in listed:
        assert after_srun_options(line.split())[0] == "./.build/release/vaeas-dist", line

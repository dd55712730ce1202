"""vaeas_tools.study.runner end to end with a fake vaeas-dist ($VAEAS_BIN) and a fake srun: a failed run does not
stop the others and makes the exit status non-zero; the next sitting resumes it from its checkpoint, skips the
done ones, and done.json holds the --json records (never the prose)."""
import json
import os

from study_fakes import install_fakes, study_file
from vaeas_tools.study import cli


def calls_of(log, rid):
    return [ln for ln in log.read_text().splitlines() if f"/{rid}/" in ln]


def test_failure_then_resume(tmp_path, monkeypatch, capsys):
    calls = install_fakes(tmp_path, monkeypatch)
    st = study_file(tmp_path)
    args = ["--study", st.path, "run", "lr", "table2", "--launcher", "srun", "--epochs", "3", "--data-dir", "D"]

    monkeypatch.setenv("FAKE_FAIL", "lr3e-4-s1")
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert "lr/lr3e-4-s1: FAILED: exit 3" in err and "1 run(s) failed" in err
    runs = tmp_path / "runs"
    assert not (runs / "lr" / "lr3e-4-s1" / "done.json").exists()
    for g, rid in [("lr", "lr3e-4-s0"), ("table2", "vae"), ("table2", "a0.2-b1")]:   # the others ran
        assert (runs / g / rid / "done.json").exists(), rid
    assert "killed" in (runs / "lr" / "lr3e-4-s1" / "train.log").read_text()

    monkeypatch.delenv("FAKE_FAIL")
    calls.write_text("")
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "lr3e-4-s0: skip" in out and "lr3e-4-s1: resume" in out
    trains = [c for c in calls_of(calls, "lr3e-4-s1") if c.startswith("train")]
    assert trains == [f"train --resume {runs}/lr/lr3e-4-s1/train --set train.epochs=3"]
    assert not calls_of(calls, "lr3e-4-s0")                 # done: not even measured again
    done = json.loads((runs / "lr" / "lr3e-4-s1" / "done.json").read_text())
    assert done["action"] == "resume" and done["eval_test"]["nll"] == 88.5 and done["eval_test"]["iw_samples"] == 100
    assert done["eval_train"]["split"] == "train" and done["last_epoch"]["epoch"] == 3
    assert [e.get("samples") for e in done["estimate"]] == [None, 300]
    assert done["epochs"] == 3 and done["limit_data"] == 0 and done["launcher"] == "srun"
    assert done["commands"][0].startswith("srun --mpi=pmix -n 2 ")
    a02 = json.loads((runs / "table2" / "a0.2-b1" / "done.json").read_text())
    assert [e["samples"] for e in a02["estimate"][1:]] == [100, 2000]


def test_a_trained_run_is_only_measured_and_force_retrains(tmp_path, monkeypatch, capsys):
    calls = install_fakes(tmp_path, monkeypatch)
    st = study_file(tmp_path)
    base = ["--study", st.path, "run", "lr", "--only", "lr3e-4-s0", "--launcher", "srun", "--epochs", "2"]
    assert cli.main(base) == 0
    os.remove(tmp_path / "runs" / "lr" / "lr3e-4-s0" / "done.json")
    calls.write_text("")
    assert cli.main(base) == 0
    assert [c.split()[0] for c in calls.read_text().splitlines()] == ["eval", "eval", "estimate"]
    calls.write_text("")
    assert cli.main(base + ["--force"]) == 0
    first = calls.read_text().splitlines()[0]
    assert first.startswith("train --config configs/mnist-vaeas-small.yaml") and first.endswith("--overwrite")


def test_a_command_without_its_json_record_fails_the_run(tmp_path, monkeypatch, capsys):
    install_fakes(tmp_path, monkeypatch)
    fake = tmp_path / "bin" / "vaeas-dist"
    # eval printing only prose: the run fails rather than reading numbers out of the text.
    fake.write_text(fake.read_text().replace('print(json.dumps({"split"', 'print(repr({"split"'))
    st = study_file(tmp_path)
    rc = cli.main(["--study", st.path, "run", "lr", "--only", "lr3e-4-s0", "--launcher", "srun", "--epochs", "1"])
    assert rc == 1 and "no JSON line" in capsys.readouterr().err
    assert not (tmp_path / "runs" / "lr" / "lr3e-4-s0" / "done.json").exists()

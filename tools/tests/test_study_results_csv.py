"""docs/results.csv and the records a study keeps: a finished run's files are copied into `records:`, its done.json
names the binary's commit and the training time of every resumed segment, `report csv` reads a run from its
records once its directory is gone, and the stated convergence criterion decides `converged`."""
import csv
import io
import json
import os
import shutil

import pytest
from study_fakes import STUDY, install_fakes, study_file, write_json
from vaeas_tools.study import cli, results_csv
from vaeas_tools.study import spec as S
from vaeas_tools.study.runner import binary_commit

RECORDS = STUDY.replace("out: {out}\n", "out: {out}\nrecords: {out}/../records\n")


def test_a_resumed_run_keeps_its_records_with_the_commit_and_every_segments_time(tmp_path, monkeypatch, capsys):
    install_fakes(tmp_path, monkeypatch)
    (tmp_path / "bin" / "vaeas-dist.commit").write_text("0123abcd" * 5 + "\n")
    st = study_file(tmp_path, RECORDS)
    args = ["--study", st.path, "run", "lr", "--only", "lr3e-4-s1", "--launcher", "srun", "--epochs", "3"]
    monkeypatch.setenv("FAKE_FAIL", "lr3e-4-s1")
    assert cli.main(args) == 1
    monkeypatch.delenv("FAKE_FAIL")
    assert cli.main(args) == 0
    rec = tmp_path / "records" / "lr" / "lr3e-4-s1"
    assert sorted(os.listdir(rec)) == ["config.yaml", "done.json", "metrics.jsonl"]   # the fake writes no run.jsonl
    done = json.loads((rec / "done.json").read_text())
    assert done["action"] == "resume" and done["commit"] == "0123abcd" * 5
    # The fake trainer's clock says 1 s per epoch, carried over the kill: 3 epochs, not the resumed sitting's 2.
    assert done["train_seconds"] == 3.0
    assert done["wall_seconds"] == done["train_seconds"] + done["measure_seconds"]
    assert "records in" in capsys.readouterr().out


def test_a_run_done_before_the_study_kept_records_gets_them_when_skipped(tmp_path, monkeypatch):
    install_fakes(tmp_path, monkeypatch)
    st = study_file(tmp_path)                       # no records: key
    args = ["--study", st.path, "run", "table2", "--only", "vae", "--launcher", "srun", "--epochs", "2"]
    assert cli.main(args) == 0
    st2 = study_file(tmp_path, RECORDS)
    assert cli.main(["--study", st2.path] + args[2:]) == 0
    assert (tmp_path / "records" / "table2" / "vae" / "done.json").exists()


def test_commit_comes_from_run_jsonl_before_the_file_beside_the_binary(tmp_path):
    (tmp_path / "vaeas-dist.commit").write_text("feed" * 10)
    t = tmp_path / "train"
    t.mkdir()
    assert binary_commit(str(t), str(tmp_path / "vaeas-dist")) == "feed" * 10
    (t / "run.jsonl").write_text(json.dumps({"commit": "unknown"}) + "\n" + json.dumps({"commit": "beef" * 10}) + "\n")
    assert binary_commit(str(t), str(tmp_path / "vaeas-dist")) == "beef" * 10
    assert binary_commit(str(tmp_path / "none"), str(tmp_path / "nothing")) == "unknown"


def _record(d, kind="vaeas", labels=0, n=2000, elbos=(-120.0, -120.3), mis=(7.0, 7.1), mi_eval=7.4, mc=7.5,
            mc_s=None, seed=0):
    """A run's records as `keep_records` leaves them: config.yaml, metrics.jsonl (test ELBO at 250 and 300 of 300
    epochs), done.json with eval and estimate results."""
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.yaml"), "w") as f:
        f.write(f"objective: {{kind: {kind}, alpha: 1.0, beta: 1.0, labels: {labels}, softmax: full}}\n"
                f"train: {{epochs: 300, seed: {seed}}}\n")
    with open(os.path.join(d, "metrics.jsonl"), "w") as f:
        for e in (250, 299, 300):
            r = {"epoch": e, "step": 16 * e, "samples": n, "mi": mis[0] if e < 300 else mis[1], "elapsed": e}
            if e != 299:
                r["test_elbo"] = elbos[0] if e == 250 else elbos[1]
            f.write(json.dumps(r) + "\n")
    with open(os.path.join(d, "run.jsonl"), "w") as f:
        f.write(json.dumps({"commit": "unknown", "cpu_model": "AMD EPYC", "cpu_family_model": "25/1",
                            "blas": "OpenBLAS 0.3.34, kernel Haswell"}) + "\n")
    write_json(os.path.join(d, "done.json"), {
        "train_seconds": 100.0, "measure_seconds": 20.0, "commit": "c0ffee",
        "eval_test": {"nll": 120.5, "iw_samples": 1000, "examples": 1000, "kl": 15.0, "active_units": 7},
        "eval_train": {"recon": 75.0, "kl": 15.1, "mi": mi_eval if kind == "vaeas" else None, "md": 7.9, "sc": 0.2,
                       "mi_md_minus_kl": 0.08},
        "estimate": [{"classifier_mi": 7.0}, {"samples": mc_s or n, "mi": mc, "md": 7.6, "mean_kl": 15.1}]})


def _rows(tmp_path, runs):
    text = STUDY.replace("out: {out}\n", "out: {out}\nrecords: {out}/../records\n")
    study_file(tmp_path, text)
    os.makedirs(tmp_path / "experiments" / "t", exist_ok=True)
    shutil.move(str(tmp_path / "study.yaml"), str(tmp_path / "experiments" / "t" / "study.yaml"))
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "..", "configs"), tmp_path / "configs")
    for (group, rid), kw in runs.items():
        _record(str(tmp_path / "records" / group / rid), **kw)
    path, table, missing = results_csv.write(root=str(tmp_path))
    return {r["id"]: r for r in csv.DictReader(io.StringIO(open(path).read()))}, missing


def test_csv_rows_and_the_convergence_criterion(tmp_path):
    rows, missing = _rows(tmp_path, {
        ("lr", "lr3e-4-s0"): {},                                           # ELBO −0.3, Î 1.3 % under MC: converged
        ("lr", "lr3e-4-s1"): {"elbos": (-118.0, -121.0), "seed": 1},      # overfitting: the test ELBO fell 3 nats
        ("table2", "vae"): {"kind": "vae"},
        ("table2", "a0.2-b1"): {"mi_eval": 6.9},                           # Î 8 % under the Monte Carlo MI
    })
    assert [m[1] for m in missing] == []
    r = rows["lr3e-4-s0"]
    assert (r["method"], r["n"], r["v"], r["epochs"], r["steps"], r["seed"]) == ("vaeas-full", "2000", "2000", "300",
                                                                              "4800", "0")
    assert r["converged"] == "yes" and r["not_converged"] == "" and float(r["mi_gap_pct"]) == 1.33
    assert (r["wall_s"], r["commit"], r["cpu"]) == ("120.0", "c0ffee", "AMD EPYC 25/1")
    assert (r["test_elbo"], r["best_test_elbo"], r["best_test_elbo_epoch"]) == ("-120.3", "-120.0", "250")
    assert rows["lr3e-4-s1"]["best_test_elbo"] == "-118.0"
    assert rows["lr3e-4-s1"]["converged"] == "no" and "-3.00 nats" in rows["lr3e-4-s1"]["not_converged"]
    assert rows["vae"]["converged"] == "yes" and rows["vae"]["mi"] == "" and rows["vae"]["alpha"] == ""
    assert rows["a0.2-b1"]["converged"] == "no" and "Î 8.0 % from the Monte Carlo MI" in rows["a0.2-b1"]["not_converged"]
    assert list(rows["vae"].keys()) == results_csv.COLUMNS


def test_v_below_n_is_judged_by_the_classifiers_drift_not_by_the_mc_mi(tmp_path):
    rows, _ = _rows(tmp_path, {
        ("lr", "lr3e-4-s0"): {"labels": 500, "mis": (6.0, 6.9), "mc": 7.5},    # Î still rising: +15 %
        ("lr", "lr3e-4-s1"): {"labels": 500, "mis": (6.0, 6.1), "mc": 7.5},    # settled: +1.7 %
        ("table2", "a0.2-b1"): {"mc_s": 100},                                   # MC MI at S < N
    })
    assert rows["lr3e-4-s0"]["v"] == "500" and rows["lr3e-4-s0"]["mi_gap_pct"] == ""
    assert rows["lr3e-4-s0"]["converged"] == "no" and "moved +15.0 %" in rows["lr3e-4-s0"]["not_converged"]
    assert rows["lr3e-4-s1"]["converged"] == "yes"
    assert "S = 100, not S = N" in rows["a0.2-b1"]["not_converged"]
    assert "vae" not in rows                                                     # not done: listed, not a row


def test_a_run_directory_wins_over_its_records(tmp_path):
    rows, _ = _rows(tmp_path, {("table2", "vae"): {"kind": "vae"}})
    _record(str(tmp_path / "runs" / "table2" / "vae"), kind="vae")
    done = json.loads((tmp_path / "runs" / "table2" / "vae" / "done.json").read_text())
    done["eval_test"]["nll"] = 99.0
    write_json(str(tmp_path / "runs" / "table2" / "vae" / "done.json"), done)
    _, table, _ = results_csv.write(root=str(tmp_path))
    assert [r["nll_test"] for r in table if r["id"] == "vae"] == [99.0]


def test_report_csv_reads_the_repositorys_kept_records(tmp_path, capsys):
    """`report csv` over the repository's own study files: every kept record parses into a row with its study's
    numbers (the full-N VAE seed 0 of experiments/paper-length/records is NLL_test 105.55 with K = 4096)."""
    out = tmp_path / "results.csv"
    assert cli.main(["report", "csv", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    vae = [r for r in rows if (r["study"], r["group"], r["id"]) == ("paper-length", "headline", "vae")]
    assert len(vae) == 1 and round(float(vae[0]["nll_test"]), 2) == 105.55 and vae[0]["k"] == "4096"
    assert vae[0]["n"] == "50000" and vae[0]["steps"] == "117300" and vae[0]["converged"] in ("yes", "no")


def test_a_run_marked_reconstruct_draws_figure_4_keeps_the_pictures_and_reports_them(tmp_path, monkeypatch):
    """`reconstruct: true` adds `vaeas-dist reconstruct` of 32 training and 32 test images to the run's
    measurements; done.json has each picture's BCE, the records keep the pictures, the CSV has the BCEs, and a run
    without the mark draws nothing."""
    calls = install_fakes(tmp_path, monkeypatch)
    text = RECORDS.replace("estimate_samples: \"100,2000\"}}", "estimate_samples: \"100,2000\", reconstruct: true}}")
    assert "reconstruct: true" in text
    st = study_file(tmp_path, text)
    assert cli.main(["--study", st.path, "run", "table2", "--launcher", "srun", "--epochs", "2"]) == 0
    recon = [c for c in calls.read_text().splitlines() if c.startswith("reconstruct")]
    assert len(recon) == 2 and all("table2/a0.2-b1/train/model.safetensors" in c and "--count 32" in c for c in recon)
    done = json.loads((tmp_path / "records" / "table2" / "a0.2-b1" / "done.json").read_text())
    assert done["reconstruct_train"]["bce"] == 80.5 and done["reconstruct_test"]["bce"] == 120.25
    for split in ("train", "test"):
        assert (tmp_path / "records" / "table2" / "a0.2-b1" / f"reconstruct-{split}.png").read_bytes().startswith(
            b"\x89PNG")
    assert not list((tmp_path / "records" / "table2" / "vae").glob("*.png"))
    os.makedirs(tmp_path / "experiments" / "t", exist_ok=True)
    shutil.move(str(tmp_path / "study.yaml"), str(tmp_path / "experiments" / "t" / "study.yaml"))
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "..", "configs"), tmp_path / "configs")
    _, table, _ = results_csv.write(root=str(tmp_path))
    row = [r for r in table if r["id"] == "a0.2-b1"][0]
    assert (row["recon_bce_train"], row["recon_bce_test"]) == (80.5, 120.25)
    assert [r["recon_bce_train"] for r in table if r["id"] == "vae"] == [None]


def test_reconstruct_must_be_true_or_false(tmp_path):
    with pytest.raises(S.SpecError, match="reconstruct: 'yes'; expected true or false"):
        study_file(tmp_path, STUDY.replace("{{id: vae, set:", "{{id: vae, reconstruct: 'yes', set:"))


def test_a_run_finished_on_another_machine_is_not_trained_again(tmp_path, monkeypatch, capsys):
    """Its run directory is gone, its records are in the repository: `run` skips it, saying where the records are;
    --force trains it again."""
    calls = install_fakes(tmp_path, monkeypatch)
    st = study_file(tmp_path, RECORDS)
    args = ["--study", st.path, "run", "table2", "--only", "vae", "--launcher", "srun", "--epochs", "2"]
    assert cli.main(args) == 0
    shutil.rmtree(tmp_path / "runs")
    calls.write_text("")
    assert cli.main(args) == 0
    assert calls.read_text() == "" and "skip (done before, records in" in capsys.readouterr().out
    assert cli.main(args + ["--force"]) == 0
    assert calls.read_text().startswith("train ")


def test_deadline_starts_only_the_runs_expected_to_end_before_it(tmp_path, monkeypatch, capsys):
    calls = install_fakes(tmp_path, monkeypatch)
    st = study_file(tmp_path, RECORDS)
    base = ["--study", st.path, "run", "lr", "--launcher", "srun", "--epochs", "2"]
    assert cli.main(base + ["--only", "lr3e-4-s0"]) == 0
    done = tmp_path / "records" / "lr" / "lr3e-4-s0" / "done.json"
    d = json.loads(done.read_text())
    d["wall_seconds"] = 3600.0                           # its group's runs take an hour
    done.write_text(json.dumps(d))
    shutil.rmtree(tmp_path / "runs")
    calls.write_text("")
    assert cli.main(base + ["--deadline", "+30"]) == 0   # not failed: not started
    out = capsys.readouterr().out
    assert "lr3e-4-s1: not started: about 60 min by the longest finished run of its group, 30 min left" in out
    assert calls.read_text() == ""
    assert cli.main(base + ["--deadline", "+90"]) == 0
    assert "train " in calls.read_text() and "lr3e-4-s1" in calls.read_text()


def test_deadline_values():
    import datetime
    now = datetime.datetime(2026, 12, 6, 14, 0).timestamp()
    assert cli.deadline("+30", now) == now + 1800
    assert cli.deadline("15:30", now) == now + 5400
    for bad, why in [("13:59", "already past"), ("25:00", "expected HH:MM"), ("+x", "expected HH:MM"),
                     ("soon", "expected HH:MM")]:
        with pytest.raises(Exception, match=why):
            cli.deadline(bad, now)

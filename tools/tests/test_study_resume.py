"""vaeas_tools.study.runner.decide: the one resume policy, for each state a run directory can be in (built by
hand in tmp_path: config.yaml, metrics.jsonl, model.safetensors, checkpoints/, done.json)."""
import os

import pytest

from study_fakes import converged_done, experiments_done, make_train_dir, study_file, write_json
from vaeas_tools.study import spec as S
from vaeas_tools.study.commands import Options, resume_command
from vaeas_tools.study.runner import MEASURE, RESUME, SKIP, TRAIN, decide, training_finished


@pytest.fixture
def st(tmp_path):
    return study_file(tmp_path)


def run_of(st, rid="lr3e-4-s0"):
    return st.select(only=[rid])[0]


def test_an_empty_directory_trains_from_scratch(st):
    assert decide(st, run_of(st), Options())[0] == TRAIN


def test_a_finished_training_is_only_measured(st):
    make_train_dir(st.train_dir(run_of(st)), epochs=3, last_epoch=3, checkpoints=2)
    assert decide(st, run_of(st), Options()) == (MEASURE, "trained")


def test_a_metrics_line_cut_short_by_a_kill_does_not_hide_the_last_epoch(st):
    make_train_dir(st.train_dir(run_of(st)), epochs=3, last_epoch=3, partial_line=True)
    assert decide(st, run_of(st), Options())[0] == MEASURE


def test_a_stopped_run_with_a_checkpoint_resumes(st):
    make_train_dir(st.train_dir(run_of(st)), epochs=3, last_epoch=2, model=False, checkpoints=1)
    assert decide(st, run_of(st), Options())[0] == RESUME


def test_a_stopped_run_without_a_checkpoint_trains_again(st):
    make_train_dir(st.train_dir(run_of(st)), epochs=3, last_epoch=2, model=False, checkpoints=0)
    assert decide(st, run_of(st), Options())[0] == TRAIN


def test_the_last_epoch_without_the_model_is_not_finished(st):
    t = st.train_dir(run_of(st))
    make_train_dir(t, epochs=3, last_epoch=3, model=False, checkpoints=1)
    assert not training_finished(t)
    assert decide(st, run_of(st), Options())[0] == RESUME


def test_a_run_on_other_data_is_not_resumed(st):
    """config.yaml's data.limit (here 300) is not the study's (2000): the checkpoints are of another run."""
    make_train_dir(st.train_dir(run_of(st)), epochs=3, last_epoch=3, checkpoints=2, limit=300)
    assert decide(st, run_of(st), Options())[0] == TRAIN
    assert decide(st, run_of(st), Options(limit_data=300))[0] == MEASURE


def test_done_json_skips_and_force_redoes(st):
    r = run_of(st)
    make_train_dir(st.train_dir(r))
    write_json(os.path.join(st.run_dir(r), "done.json"), converged_done("lr", r.id))
    assert decide(st, r, Options()) == (SKIP, "")
    assert decide(st, r, Options(force=True))[0] == TRAIN


def test_done_json_of_cut_data_is_redone_and_other_settings_flagged(st):
    r = run_of(st)
    write_json(os.path.join(st.run_dir(r), "done.json"), {**converged_done("lr", r.id), "limit_data": 300})
    action, note = decide(st, r, Options())
    assert action == TRAIN and "--limit-data 300" in note
    assert decide(st, r, Options(limit_data=300))[0] == SKIP
    write_json(os.path.join(st.run_dir(r), "done.json"), {**converged_done("lr", r.id), "iw_samples": 100, "ranks": 4})
    action, note = decide(st, r, Options(ranks=2))
    assert action == SKIP and "ranks 4 (asked 2)" in note and "iw_samples" not in note


def test_an_unreadable_done_json_does_not_count_as_done(st):
    r = run_of(st)
    os.makedirs(st.run_dir(r))
    open(os.path.join(st.run_dir(r), "done.json"), "w").write('{"group": "lr", "id"')
    assert decide(st, r, Options())[0] == TRAIN


def test_a_spec_row_trained_for_fewer_epochs_resumes_to_the_asked_ones(tmp_path):
    """A spec's run directory is its train output; epochs asked (--epochs, else the budget) must be config.yaml's."""
    t2 = S.load("table2")
    t2.out = str(tmp_path)
    r = t2.select(only=["vae"])[0]
    make_train_dir(t2.train_dir(r), epochs=8, last_epoch=8, checkpoints=1, limit=0)
    assert decide(t2, r, Options())[0] == MEASURE          # the budget's 8 epochs
    assert decide(t2, r, Options(epochs=20))[0] == RESUME
    assert resume_command(t2, r, Options(epochs=20))[-4:] == ["--resume", t2.train_dir(r), "--set", "train.epochs=20"]
    write_json(os.path.join(t2.run_dir(r), "done.json"), experiments_done("table2", "vae", epochs=8))
    action, note = decide(t2, r, Options(epochs=20))
    assert action == SKIP and "epochs 8 (asked 20)" in note

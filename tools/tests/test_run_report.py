"""vaeas_tools.run_report and vaeas_tools.compare_runs: the curves PNG has one panel per group of metrics,
config.yaml's keys and the data directory are found as documented, a whole report of a tiny run (model,
IDX test images, TensorBoard logs) is written; compare_runs finds no difference between equal runs and
names the tensor and field that differ otherwise."""
import os
import struct
import sys

import numpy as np
import pytest

from vaeas_tools import compare_runs, run_report  # noqa: E402
from vaeas_tools.io import write_text_atomic  # noqa: E402

pytest.importorskip("matplotlib")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

VAE_EPOCHS = [{"epoch": 1, "step": 10, "loss": 120.0, "recon": 100.0, "kl": 20.0, "test_elbo": -125.0},
              {"epoch": 2, "step": 20, "loss": 110.0, "recon": 92.0, "kl": 18.0}]
VAEAS_EPOCHS = [dict(m, mi=2.0 + i, md=16.0, sc=1.5, labels=100) for i, m in enumerate(VAE_EPOCHS)]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def write_jsonl(path, records):
    import json
    write_text_atomic(str(path), "".join(json.dumps(r) + "\n" for r in records))


@pytest.mark.parametrize("epochs, panels", [(VAE_EPOCHS, 2), (VAEAS_EPOCHS, 4)])
def test_curves_png_has_a_panel_per_group(tmp_path, epochs, panels):
    write_jsonl(tmp_path / "metrics.jsonl", epochs)
    out = str(tmp_path / "curves.png")
    run_report.curves(str(tmp_path), run_report.read_jsonl(str(tmp_path / "metrics.jsonl")), out)
    # 4.2 inches per panel × 3.4 inches at 110 dpi.
    assert png_size(out) == (round(4.2 * panels * 110), round(3.4 * 110))
    assert not os.path.exists(out + ".tmp.png")


def test_config_value_and_dataset_dir(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text('data:\n  name: "mnist"\n  dir: "/nowhere"\nmodel:\n  name: x\n')
    assert run_report.config_value(str(tmp_path), "data.name") == "mnist"
    assert run_report.config_value(str(tmp_path), "model.name") == "x"
    assert run_report.config_value(str(tmp_path), "data.binarize") is None
    data = tmp_path / "d" / "mnist"
    data.mkdir(parents=True)
    (data / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    # Candidates in order: --data-dir (as DIR/name or DIR), config.yaml's data.dir, $VAEAS_DATA_DIR.
    monkeypatch.delenv("VAEAS_DATA_DIR", raising=False)
    assert run_report.dataset_dir(str(tmp_path), "mnist", str(tmp_path / "d")) == str(data)
    assert run_report.dataset_dir(str(tmp_path), "mnist", str(data)) == str(data)
    with pytest.raises(SystemExit, match="no test images of mnist"):
        run_report.dataset_dir(str(tmp_path), "mnist", str(tmp_path / "empty"))
    monkeypatch.setenv("VAEAS_DATA_DIR", str(tmp_path / "d"))
    assert run_report.dataset_dir(str(tmp_path), "mnist", str(tmp_path / "empty")) == str(data)


def write_idx(path, array):
    array = np.ascontiguousarray(array, dtype=np.uint8)
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape) + array.tobytes())


def write_model(path, rng, input_dim=4, latent=2, hidden=3):
    shapes = {"encoder.layers.0": (hidden, input_dim), "encoder.mu": (latent, hidden), "encoder.logvar": (latent, hidden),
              "decoder.layers.0": (hidden, latent), "decoder.out": (input_dim, hidden)}
    arrays = {}
    for name, shape in shapes.items():
        arrays[name + ".weight"] = rng.normal(size=shape).astype(np.float32)
        arrays[name + ".bias"] = rng.normal(size=shape[0]).astype(np.float32)
    meta = {"objective": "vae", "activation": "tanh", "input_dim": str(input_dim), "latent_dim": str(latent),
            "hidden": str(hidden), "enc_layers": "1", "dec_layers": "1"}
    safetensors_numpy.save_file(arrays, str(path), metadata=meta)


def test_report_of_a_tiny_run(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("tensorboardX")
    rng = np.random.default_rng(0)
    run, data = tmp_path / "run", tmp_path / "data" / "mnist"
    run.mkdir()
    data.mkdir(parents=True)
    write_model(run / "model.safetensors", rng)
    write_jsonl(run / "metrics.jsonl", VAE_EPOCHS)
    write_jsonl(run / "steps.jsonl", [{"step": 5, "loss": 130.0}, {"step": 10, "loss": 121.0}])
    (run / "config.yaml").write_text(f'data:\n  name: "mnist"\n  dir: "{tmp_path / "data"}"\n  binarize: "static"\n')
    write_idx(data / "t10k-images-idx3-ubyte", rng.integers(0, 256, size=(30, 2, 2)))
    write_idx(data / "t10k-labels-idx1-ubyte", np.arange(30) % 10)
    monkeypatch.setattr(sys, "argv", ["report_run.py", str(run)])
    run_report.main()
    for name, size in [("curves.png", (924, 374)), ("samples.png", (800, 800)), ("reconstructions.png", (1300, 580))]:
        assert png_size(run / name) == size
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run / "tensorboard"))
    assert "report_run: wrote" in capsys.readouterr().out


def test_report_refuses_a_run_without_epochs(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["report_run.py", str(tmp_path)])
    with pytest.raises(SystemExit, match="has no epoch yet"):
        run_report.main()


def write_run(d, weights, metrics):
    d.mkdir()
    safetensors_numpy.save_file({k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}, str(d / "model.safetensors"))
    write_jsonl(d / "metrics.jsonl", metrics)


def test_compare_runs_equal_and_different(tmp_path, capsys):
    w = {"a": [[1.0, 2.0], [3.0, -4.0]], "b": [0.5, 0.0001]}
    m = [{"epoch": 1, "loss": 100.0, "seconds": 3.0}, {"epoch": 2, "loss": 90.0, "seconds": 2.0}]
    write_run(tmp_path / "old", w, m)
    write_run(tmp_path / "same", w, [dict(r, seconds=9.0) for r in m])   # wall-clock fields are not compared
    s = compare_runs.compare(str(tmp_path / "old"), str(tmp_path / "same"))
    assert s["weights"] == (0.0, 0.0) and s["metrics.jsonl"] == {"epoch": (0, 0.0), "loss": (0.0, 0.0)}
    assert s["steps.jsonl"] == {}
    write_run(tmp_path / "new", dict(w, a=[[1.0, 2.0], [3.0, -4.5]]), [m[0], dict(m[1], loss=99.0)])
    capsys.readouterr()
    s = compare_runs.compare(str(tmp_path / "old"), str(tmp_path / "new"))
    out = capsys.readouterr().out
    assert s["weights"] == pytest.approx((0.5, 0.125)) and s["metrics.jsonl"]["loss"] == pytest.approx((9.0, 0.1))
    assert "max|Δ| 5.000e-01  max rel 1.250e-01" in out and "1/4 differ" in out and "loss |Δ| 9.00e+00 rel 1.00e-01" in out


def test_compare_runs_refuses_runs_of_different_shape(tmp_path):
    write_run(tmp_path / "old", {"a": [1.0]}, [{"loss": 1.0}])
    write_run(tmp_path / "other", {"c": [1.0]}, [{"loss": 1.0}])
    write_run(tmp_path / "longer", {"a": [1.0]}, [{"loss": 1.0}, {"loss": 2.0}])
    with pytest.raises(SystemExit, match="different tensor names"):
        compare_runs.main([str(tmp_path / "old"), str(tmp_path / "other")])
    with pytest.raises(SystemExit, match="metrics.jsonl: 1 vs 2 lines"):
        compare_runs.main([str(tmp_path / "old"), str(tmp_path / "longer")])
    with pytest.raises(SystemExit, match="OLD_RUN NEW_RUN"):
        compare_runs.main([str(tmp_path / "old")])

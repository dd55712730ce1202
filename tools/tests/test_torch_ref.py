"""vaeas_tools.torch_ref: the model rebuilt from a checkpoint written here gives the hand-computed KL,
reconstruction and entropy terms, refuses a checkpoint without a required metadata key; the trainer's
SplitMix64 matches the published test vectors and its subset the hand-run shuffle; its configuration
refuses unknown keys and unimplemented values."""
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")

from vaeas_tools.torch_ref import config, data, model  # noqa: E402

# A small VAE-AS: input 6, hidden 4, latent 2, one layer each, V = 3 labels.
META = {"objective": "vaeas", "activation": "tanh", "input_dim": "6", "latent_dim": "2", "hidden": "4",
        "enc_layers": "1", "dec_layers": "1", "cls_layers": "1", "labels": "3", "mi_estimator": "entropy",
        "alpha": "0.5", "beta": "1.0", "softmax": "full"}
MU_BIAS, LOGVAR_BIAS = [0.5, -1.0], [0.0, math.log(2.0)]


def tensors(rng):
    """The checkpoint's tensors, named and laid out ([out, in]) as vaeas-dist writes them. The heads,
    decoder output and classifier output have zero weights, so that mu, sigma, the logits and the softmax
    do not depend on the input: the terms can be computed by hand."""
    t = {"encoder.layers.0.weight": rng.normal(size=(4, 6)), "encoder.layers.0.bias": rng.normal(size=4),
         "encoder.mu.weight": np.zeros((2, 4)), "encoder.mu.bias": np.array(MU_BIAS),
         "encoder.logvar.weight": np.zeros((2, 4)), "encoder.logvar.bias": np.array(LOGVAR_BIAS),
         "decoder.layers.0.weight": rng.normal(size=(4, 2)), "decoder.layers.0.bias": rng.normal(size=4),
         "decoder.out.weight": np.zeros((6, 4)), "decoder.out.bias": np.zeros(6),
         "classifier.layers.0.weight": rng.normal(size=(4, 2)), "classifier.layers.0.bias": rng.normal(size=4),
         "classifier.out.weight": np.zeros((3, 4)), "classifier.out.bias": np.zeros(3)}
    return {k: v.astype(np.float32) for k, v in t.items()}


def write_checkpoint(path, meta, arrays):
    safetensors_numpy.save_file(arrays, str(path), metadata=meta)
    return str(path)


def test_model_from_checkpoint_gives_hand_computed_terms(tmp_path):
    arrays = tensors(np.random.default_rng(0))
    m = model.from_checkpoint(write_checkpoint(tmp_path / "model.safetensors", META, arrays))
    assert m.encoder.layers[0].weight.dtype == torch.float64
    assert np.array_equal(m.encoder.layers[0].weight.detach().numpy(), arrays["encoder.layers.0.weight"].astype(np.float64))
    b, L = 3, 2
    x = torch.tensor([[0, 1, 0, 1, 1, 0], [1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    eps = torch.randn(b * L, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    t = {k: v.detach() if k == "z" else v for k, v in m.terms(x, eps, labels).items()}
    assert t["z"].shape == (6, 2) and t["recon"].shape == (3,) and t["kl"].shape == (3,)
    assert t["ce"].shape == (6,) and t["hhat"].shape == (6,)
    # KL(N(mu, sigma^2) || N(0, I)) with mu = (0.5, -1), sigma^2 = (1, 2).
    # (The checkpoint holds log 2 in float32: 1e-7 relative.)
    kl = 0.5 * ((0.25 + 1 - 0 - 1) + (1 + 2 - math.log(2) - 1))
    assert t["kl"].detach().numpy() == pytest.approx([kl] * 3, rel=1e-7)
    # Zero logits: every pixel's BCE is log 2 whatever the image.
    assert t["recon"].detach().numpy() == pytest.approx([6 * math.log(2)] * 3, rel=1e-12)
    # Uniform softmax over 3 labels: CE = entropy = log 3, so Î = 0 and L_φθ = mean(recon + KL).
    assert t["ce"].detach().numpy() == pytest.approx([math.log(3)] * 6, rel=1e-12)
    objective, ce = m.objectives(t)
    assert objective.item() == pytest.approx(6 * math.log(2) + kl, rel=1e-7)
    assert ce.item() == pytest.approx(math.log(3), rel=1e-12)
    assert math.isfinite(objective.item())


def test_model_runs_with_random_weights_and_tree_leaves_sum_to_one(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in tensors(rng).items()}
    del arrays["classifier.out.weight"], arrays["classifier.out.bias"]
    arrays["classifier.tree.weight"] = rng.normal(size=(4, 4)).astype(np.float32)   # V - 1 = 4 nodes
    arrays["classifier.tree.bias"] = rng.normal(size=4).astype(np.float32)
    meta = dict(META, labels="5", softmax="tree", mi_estimator="ce")
    m = model.from_checkpoint(write_checkpoint(tmp_path / "tree.safetensors", meta, arrays), dtype=torch.float32)
    x = (torch.rand(4, 6, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    t = m.terms(x, torch.randn(4, 2), torch.tensor([0, 1, 3, 4]))
    objective, ce = m.objectives(t)
    assert torch.isfinite(objective) and torch.isfinite(ce)
    h = torch.randn(7, 4, dtype=torch.float64)
    leaves = m.classifier.tree.double().log_probs(h).exp().sum(1).detach()
    assert leaves.numpy() == pytest.approx(np.ones(7), abs=1e-12)


def test_tree_paths_split_leaves_left_heavy():
    # V = 3: root over [0, 3) splits at 2; its left child (node 1) over [0, 2).
    assert model.tree_paths(3) == [[(0, 1.0), (1, 1.0)], [(0, 1.0), (1, -1.0)], [(0, -1.0)]]


def test_checkpoint_without_a_metadata_key_is_refused(tmp_path):
    meta = {k: v for k, v in META.items() if k != "hidden"}
    path = write_checkpoint(tmp_path / "bad.safetensors", meta, tensors(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="'hidden'"):
        model.from_checkpoint(path)


def test_checkpoint_with_a_missing_tensor_is_refused(tmp_path):
    arrays = tensors(np.random.default_rng(0))
    del arrays["decoder.out.bias"]
    with pytest.raises(RuntimeError, match="decoder.out.bias"):
        model.from_checkpoint(write_checkpoint(tmp_path / "short.safetensors", META, arrays))


def test_splitmix64_matches_published_test_vectors():
    rng = data.SplitMix64(1234567)
    assert [rng.next() for _ in range(5)] == [6457827717110365317, 3203168211198807973, 9817491932198370423,
                                              4593380528125082431, 16408922859458223821]


def test_random_sample_indices_is_a_partial_fisher_yates_shuffle():
    # SplitMix64(0)'s first outputs mod 10, 9, 8 are 5, 0, 7: swap 0<->5, keep 1, swap 2<->9.
    assert data.random_sample_indices(10, 3, 0) == [1, 5, 9]
    assert data.random_sample_indices(5, 0, 0) == [0, 1, 2, 3, 4]
    assert data.random_sample_indices(5, 7, 0) == [0, 1, 2, 3, 4]
    picked = data.random_sample_indices(1000, 100, 42)
    assert len(set(picked)) == 100 and picked == sorted(picked) and picked != list(range(100))


def write_config(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


GOOD = "data:\n  name: binarized-mnist\n  binarize: static\n  limit: 100\nobjective:\n  kind: vaeas\n"


def test_config_resolves_defaults_and_overrides(tmp_path):
    cfg = config.load_config(write_config(tmp_path, GOOD), ["train.lr=0.0003", "model.hidden=64"])
    assert cfg["data"]["limit"] == 100 and cfg["objective"]["kind"] == "vaeas"
    assert cfg["train"]["lr"] == 0.0003 and cfg["model"]["hidden"] == 64 and cfg["model"]["latent"] == 40


def test_config_refuses_unknown_keys_and_unimplemented_values(tmp_path, capsys):
    with pytest.raises(SystemExit, match="unknown key 'model.hiden'"):
        config.load_config(write_config(tmp_path, GOOD + "model:\n  hiden: 3\n"), [])
    with pytest.raises(SystemExit, match="unknown key 'train.bogus'"):
        config.load_config(write_config(tmp_path, GOOD), ["train.bogus=1"])
    with pytest.raises(SystemExit, match="'train.epochs' expects a int"):
        config.load_config(write_config(tmp_path, GOOD), ["train.epochs=2.5"])
    with pytest.raises(SystemExit, match="train.cls_lr = 0.1 is not implemented"):
        config.load_config(write_config(tmp_path, GOOD), ["train.cls_lr=0.1"])
    with pytest.raises(SystemExit, match="only static binarization"):
        config.load_config(write_config(tmp_path, GOOD.replace("static", "dynamic")), [])

"""vaeas_tools.io: IDX (raw, gzip, bad magic, truncated), safetensors (a round trip through a file written here,
a bad header), JSON Lines (a partial last line dropped, a bad middle line refused), a command's --json lines."""
import gzip
import json
import os
import struct

import numpy as np
import pytest

from vaeas_tools import io  # noqa: E402


def idx_bytes(a):
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.astype(np.uint8).tobytes()


def test_idx_raw_and_gzip_beside_it(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "raw-idx3-ubyte").write_bytes(idx_bytes(a))
    (tmp_path / "gz-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(io.read_idx(str(tmp_path / "raw-idx3-ubyte")), a)
    np.testing.assert_array_equal(io.read_idx(str(tmp_path / "gz-idx3-ubyte")), a)   # finds the .gz
    assert io.read_idx_images(str(tmp_path / "raw-idx3-ubyte")).shape == (2, 12)
    with pytest.raises(FileNotFoundError, match="nothing.*nothing.gz"):
        io.read_idx(str(tmp_path / "nothing"))


def test_idx_bad_magic_and_truncated(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01" + b"\x00" * 8)
    with pytest.raises(io.FormatError, match="not an IDX file"):
        io.read_idx(str(tmp_path / "bad"))
    a = np.zeros((2, 3), dtype=np.uint8)
    (tmp_path / "short").write_bytes(idx_bytes(a)[:-1])
    with pytest.raises(io.FormatError, match="5 bytes of data for shape \\(2, 3\\)"):
        io.read_idx(str(tmp_path / "short"))


def write_safetensors(path, tensors, meta=None):
    header, body = {}, b""
    for name, a in tensors.items():
        raw = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    if meta:
        header["__metadata__"] = meta
    h = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + body)


def test_safetensors_round_trip_and_bad_header(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3) / 7
    b = np.array([-1.5], dtype=np.float32)
    write_safetensors(tmp_path / "m.safetensors", {"enc.w": w, "enc.b": b}, {"epoch": "3"})
    meta, t = io.read_safetensors(str(tmp_path / "m.safetensors"))
    assert meta == {"epoch": "3"} and set(t) == {"enc.w", "enc.b"}
    np.testing.assert_array_equal(t["enc.w"], w)
    np.testing.assert_array_equal(t["enc.b"], b)
    (tmp_path / "bad.safetensors").write_bytes(struct.pack("<Q", 5) + b"{oops" + b"\x00" * 4)
    with pytest.raises(io.FormatError, match="header is not JSON"):
        io.read_safetensors(str(tmp_path / "bad.safetensors"))
    (tmp_path / "long.safetensors").write_bytes(struct.pack("<Q", 1000) + b"{}")
    with pytest.raises(io.FormatError, match="runs past the end"):
        io.read_safetensors(str(tmp_path / "long.safetensors"))


def test_read_jsonl_drops_a_partial_last_line_and_refuses_a_bad_middle_one(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_text('{"epoch": 1}\n\n{"epoch": 2}\n{"epoch": 3, "lo')
    assert io.read_jsonl(str(p)) == [{"epoch": 1}, {"epoch": 2}]
    p.write_text('{"epoch": 1}\nnot json\n{"epoch": 3}\n')
    with pytest.raises(io.FormatError, match="metrics.jsonl:2"):
        io.read_jsonl(str(p))
    assert io.read_jsonl(str(tmp_path / "none.jsonl"), missing_ok=True) == []


def test_json_lines_and_last_json_skip_prose():
    out = 'epoch 1 loss 3.0\n{"split": "test", "nll": 1.5}\nwarning: {not json}\n{"samples": 100}\n'
    assert io.json_lines(out) == [{"split": "test", "nll": 1.5}, {"samples": 100}]
    assert io.last_json(out) == {"samples": 100} and io.last_json(out, key="nll")["nll"] == 1.5
    with pytest.raises(io.FormatError, match="eval: no JSON line"):
        io.last_json("only prose", "eval")


def test_write_json_atomic_leaves_no_temporary(tmp_path):
    p = tmp_path / "d" / "done.json"
    io.write_json_atomic(str(p), {"b": 1, "a": [1, 2]})
    assert json.loads(p.read_text()) == {"a": [1, 2], "b": 1} and os.listdir(tmp_path / "d") == ["done.json"]

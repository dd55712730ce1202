"""Readers and writers shared by every tool: IDX files (the datasets), safetensors files (vaeas-dist's
checkpoints, read with numpy only), JSON Lines (metrics.jsonl, run.jsonl, a command's --json output),
atomic JSON writes and YAML."""
import gzip
import json
import os
import struct

import numpy as np

#: IDX element types (the third byte of the magic number), after LeCun's format description.
_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

#: safetensors dtype names -> numpy (little-endian, as the format stores them).
_ST_TYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
             "I8": "i1", "U8": "u1", "BOOL": "?"}


class FormatError(ValueError):
    """A file that is not what its reader expects; the message names the file and what was expected."""


def read_idx(path):
    """An IDX file (MNIST's format; raw, or gzip by content or a `.gz` beside it) as a numpy array of its
    declared shape and type. Raises FileNotFoundError naming both candidates, FormatError on a bad magic
    number, an unknown type or a size that does not match the header."""
    for p in (path, path + ".gz"):
        if os.path.isfile(p):
            break
    else:
        raise FileNotFoundError(f"{path} (or {path}.gz): not found")
    with open(p, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise FormatError(f"{p}: not an IDX file (magic {data[:4].hex() or 'empty'}, expected 0000TTNN)")
    kind, ndim = data[2], data[3]
    if kind not in _IDX_TYPES:
        raise FormatError(f"{p}: IDX element type {kind:#04x} unknown (expected one of "
                          f"{', '.join(f'{k:#04x}' for k in _IDX_TYPES)})")
    if len(data) < 4 + 4 * ndim:
        raise FormatError(f"{p}: truncated header ({len(data)} bytes for {ndim} dimensions)")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_TYPES[kind])
    want = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    body = len(data) - 4 - 4 * ndim
    if body != want:
        raise FormatError(f"{p}: {body} bytes of data for shape {tuple(dims)} of {dtype} ({want} expected)")
    return np.frombuffer(data, dtype=dtype, offset=4 + 4 * ndim).reshape(dims)


def read_idx_images(path):
    """An IDX image file as an (n, rows·cols) uint8 array (one image per row)."""
    a = read_idx(path)
    if a.ndim != 3 or a.dtype != np.uint8:
        raise FormatError(f"{path}: shape {a.shape} of {a.dtype}; expected images (n, rows, cols) of uint8")
    return a.reshape(a.shape[0], -1)


def read_safetensors(path):
    """(metadata, {name: numpy array}) of a safetensors file, with numpy alone (no torch, no safetensors
    package): an 8-byte little-endian header length, a JSON header, the tensors' bytes. Raises FormatError
    naming the file and the tensor when the header or a tensor's extent is inconsistent."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise FormatError(f"{path}: {len(data)} bytes, shorter than the 8-byte header length")
    n = struct.unpack("<Q", data[:8])[0]
    if 8 + n > len(data):
        raise FormatError(f"{path}: header length {n} runs past the end of the file ({len(data)} bytes)")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as e:
        raise FormatError(f"{path}: header is not JSON ({e})") from None
    body = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    tensors = {}
    for name, info in header.items():
        if info.get("dtype") not in _ST_TYPES:
            raise FormatError(f"{path}: tensor {name!r} has dtype {info.get('dtype')!r} "
                              f"(known: {', '.join(_ST_TYPES)})")
        dtype = np.dtype(_ST_TYPES[info["dtype"]])
        a, b = info["data_offsets"]
        shape = tuple(info["shape"])
        if not 0 <= a <= b <= len(body) or b - a != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise FormatError(f"{path}: tensor {name!r} of shape {shape} and {info['dtype']} has bytes "
                              f"[{a}, {b}) of a {len(body)}-byte body")
        tensors[name] = np.frombuffer(body[a:b], dtype=dtype).reshape(shape)
    return meta, tensors


def read_jsonl(path, missing_ok=False):
    """The records of a JSON Lines file (blank lines skipped). A line that is not JSON raises FormatError
    naming the file and line, except a last line cut short by a kill, which is dropped (vaeas-dist appends
    whole lines, so only the last can be partial). A missing file gives [] when missing_ok."""
    try:
        with open(path) as f:
            lines = f.read().split("\n")
    except FileNotFoundError:
        if missing_ok:
            return []
        raise
    out = []
    last = max((i for i, l in enumerate(lines) if l.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            if i == last and not (len(lines) > i + 1):
                break  # no newline after it: a write cut short
            raise FormatError(f"{path}:{i + 1}: not a JSON object: {line[:80]!r}") from None
    return out


def json_lines(text):
    """The JSON objects among a command's output lines (its `--json` records), in order; other lines skipped."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def last_json(text, what="the command", key=None):
    """The last JSON object in a command's output (having `key`, if given); FormatError naming `what` if none."""
    for d in reversed(json_lines(text)):
        if key is None or key in d:
            return d
    raise FormatError(f"{what}: no JSON line{f' with {key!r}' if key else ''} in its output")


def write_json_atomic(path, obj, indent=2):
    """Writes obj as JSON to path through a temporary file and a rename: a reader sees the old file or the
    new one, never half of one (a kill mid-write leaves the old)."""
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent, sort_keys=True)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_text_atomic(path, text):
    """Writes a text file through a temporary file and a rename (as write_json_atomic)."""
    d = os.path.dirname(path)
    if d:
        os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def read_yaml(path):
    """A YAML file as Python objects (PyYAML's safe loader); a missing PyYAML is named with its package."""
    try:
        import yaml
    except ImportError:
        raise SystemExit("PyYAML is missing: python3 -m pip install pyyaml (scripts/setup.sh installs it)")
    with open(path) as f:
        return yaml.safe_load(f)

"""What a measurement ran on, described in one place for blas_table and compare_torch: BLAS candidates
(`LABEL=VALUE[+NAME=VALUE…]`, their environment and `vaeas-dist --version` probe), the BLAS and CPU of a
bench JSON record, the BLAS an old binary links, the machine, a binary's version, and the Markdown
section between two markers that each script rewrites in docs/PERFORMANCE.md."""
import os
import platform
import re
import subprocess
import sys


def parse_candidate(text):
    """'LABEL=VALUE[+NAME=VALUE…]' as (label, VAEAS_BLAS value, {extra environment}). The extra
    variables are peeled off the end (each `+NAME=…`, NAME an environment variable's name), so a
    label may hold '=' and '+' as long as no '+NAME=' does; a bare VALUE is its own label."""
    extra = {}
    while True:
        m = re.search(r"\+([A-Za-z_][A-Za-z0-9_]*)=([^+]*)$", text)
        if not m:
            break
        extra = {m.group(1): m.group(2), **extra}
        text = text[:m.start()]
    label, value = text.rsplit("=", 1) if "=" in text else (text, text)
    if not label.strip() or not value.strip():
        sys.exit(f"blas_table: a candidate is LABEL=VALUE[+NAME=VALUE…], not {text!r}")
    return label.strip(), value.strip(), extra


def child_env(value, extra):
    """The environment of a run under VAEAS_BLAS=value: this one's, plus extra, without
    OPENBLAS_NUM_THREADS (unless extra sets it)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    env.update(extra)
    if value:
        env["VAEAS_BLAS"] = value
    return env


def probe(bin_path, value, extra):
    """`vaeas-dist --version` under the candidate: {"loadable", "blas", "cpu", "warning", "text"}."""
    try:
        r = subprocess.run([bin_path, "--version"], env=child_env(value, extra), capture_output=True,
                           text=True, timeout=120)
        text = (r.stdout + r.stderr).strip()
    except (OSError, subprocess.SubprocessError) as e:
        return dict(loadable=False, blas=f"none could be loaded: {e}", cpu="", warning="", text="")
    lines = {}
    for line in text.splitlines():
        key, _, rest = line.partition(": ")
        lines.setdefault(key.strip(), rest.strip())
    blas = lines.get("blas", "")
    return dict(loadable=bool(blas) and not blas.startswith("none could be loaded"), blas=blas,
                cpu=lines.get("cpu", ""), warning=lines.get("warning", ""), text=text)


def blas_text(record, selection=True):
    """'OpenBLAS 0.3.34.481.3, kernel Haswell (scipy-openblas)' from a bench JSON record, or None
    when the record has no blas_* fields (binaries before the BLAS was loaded at run time)."""
    if not record or not record.get("blas_library"):
        return None
    text = f"{record['blas_library']} {record.get('blas_version', '')}".strip()
    if record.get("blas_kernel"):
        text += f", kernel {record['blas_kernel']}"
    if selection and record.get("blas_selection"):
        text += f" (VAEAS_BLAS {record['blas_selection']})"
    return text


def cpu_text(record):
    """'AMD EPYC (25/1, AVX2, FMA, nominal peak 78.3 GFLOP/s per core)' from a bench JSON record."""
    if not record or not record.get("cpu_model"):
        return None
    parts = [p for p in (record.get("cpu_family_model"), record.get("cpu_vector_extensions")) if p]
    if record.get("cpu_peak_gflops_per_core"):
        parts.append(f"nominal peak {record['cpu_peak_gflops_per_core']:.1f} GFLOP/s per core")
    return record["cpu_model"] + (f" ({', '.join(parts)})" if parts else "")


def cpu_slug(record):
    """'amd-epyc-25-1': the cpu model and family/model of a bench JSON record, for file names and markers."""
    text = f"{record.get('cpu_model', 'cpu')} {record.get('cpu_family_model', '')}".lower()
    text = re.sub(r"\((r|tm)\)|\bcpu\b|@.*?ghz", " ", text)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-") or "cpu"


def linked_blas(bin_path):
    """The BLAS a binary links (binaries from before the BLAS was dlopened), from ldd: 'OpenBLAS
    0.3.21 (linked: libopenblasp-r0.3.21.so)', or None."""
    try:
        r = subprocess.run(["ldd", bin_path], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(r"(lib(openblas|blis|mkl_rt|blas)\S*) => (\S+)", r.stdout)
    if not m:
        return None
    real = os.path.basename(os.path.realpath(m.group(3)))
    v = re.search(r"r?(\d+\.\d+\.\d+)", real)
    name = {"openblas": "OpenBLAS", "blis": "BLIS", "mkl_rt": "MKL"}.get(m.group(2), "BLAS")
    return f"{name}{' ' + v.group(1) if v else ''} (linked: {real})"


def machine():
    """'host: CPU (flags), cores, memory, kernel' as /proc says, and OPENBLAS_CORETYPE if set."""
    def read(path):
        try:
            return open(path).read()
        except OSError:
            return ""
    cpuinfo, meminfo = read("/proc/cpuinfo"), read("/proc/meminfo")
    model, mem = re.search(r"^model name\s*:\s*(.*)$", cpuinfo, re.M), re.search(r"^MemTotal:\s*(\d+)", meminfo, re.M)
    flags = ", ".join(f for f in ("avx512f", "avx2", "fma") if re.search(rf"\b{f}\b", cpuinfo))
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    return (f"{platform.node()}: {model.group(1).strip() if model else 'unknown CPU'} ({flags}), {os.cpu_count()} cores"
            + (f", {int(mem.group(1)) / 1048576:.0f} GiB" if mem else "") + f", Linux {platform.release()}"
            + (f", OPENBLAS_CORETYPE={coretype}" if coretype else ""))


def version(bin_path):
    """`vaeas-dist --version` of a binary (newer builds name their commit)."""
    try:
        r = subprocess.run([bin_path, "--version"], capture_output=True, text=True, timeout=60)
        return r.stdout.strip() or "version unknown"
    except (OSError, subprocess.SubprocessError):
        return "version unknown"


def replace_between(text, begin, end, section):
    """text with the part from marker `begin` to marker `end` (both included) replaced by section, or None
    when the markers are not both there in that order."""
    if begin in text and end in text and text.index(begin) < text.index(end):
        return text[:text.index(begin)] + section + text[text.index(end) + len(end):]
    return None

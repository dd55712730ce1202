"""vaeas_tools.perf: blas_table's candidate syntax, CPU slugs and the PERFORMANCE.md section it inserts or
replaces between its markers; compare_torch's table rendered from fixture measurement records and written
between its markers."""
import argparse

import pytest

from vaeas_tools.perf import blas_table, compare_report, describe  # noqa: E402
from vaeas_tools.perf.compare_configs import PAPER, rows  # noqa: E402


def test_parse_candidate_peels_environment_off_the_end():
    assert describe.parse_candidate("mkl=/opt/lib/libmkl_rt.so.3") == ("mkl", "/opt/lib/libmkl_rt.so.3", {})
    assert describe.parse_candidate("blis") == ("blis", "blis", {})
    # The label may hold '=' (inside the parentheses); only a trailing +NAME=VALUE is environment.
    assert describe.parse_candidate("openblas (OPENBLAS_CORETYPE=Prescott)=openblas+OPENBLAS_CORETYPE=Prescott") == \
        ("openblas (OPENBLAS_CORETYPE=Prescott)", "openblas", {"OPENBLAS_CORETYPE": "Prescott"})
    label, value, extra = describe.parse_candidate("Debian OpenBLAS 0.3.21=openblas+A=1+B_2=x y")
    assert (label, value) == ("Debian OpenBLAS 0.3.21", "openblas") and list(extra.items()) == [("A", "1"), ("B_2", "x y")]
    with pytest.raises(SystemExit, match="LABEL=VALUE"):
        describe.parse_candidate(" =openblas")


def test_child_env_sets_the_blas_and_drops_the_thread_count(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    env = describe.child_env("blis", {"X": "1"})
    assert env["VAEAS_BLAS"] == "blis" and env["X"] == "1" and "OPENBLAS_NUM_THREADS" not in env


def test_cpu_slug_and_descriptions():
    intel = {"cpu_model": "Intel(R) Xeon(R) CPU @ 2.20GHz", "cpu_family_model": "6/85"}
    assert describe.cpu_slug(intel) == "intel-xeon-6-85"
    assert describe.cpu_slug({"cpu_model": "AMD EPYC 7B13", "cpu_family_model": "25/1"}) == "amd-epyc-7b13-25-1"
    assert describe.cpu_slug({}) == "cpu"
    rec = {"cpu_model": "AMD EPYC", "cpu_family_model": "25/1", "cpu_vector_extensions": "AVX2, FMA",
           "cpu_peak_gflops_per_core": 78.34, "blas_library": "OpenBLAS", "blas_version": "0.3.34",
           "blas_kernel": "Haswell", "blas_selection": "scipy-openblas"}
    assert describe.cpu_text(rec) == "AMD EPYC (25/1, AVX2, FMA, nominal peak 78.3 GFLOP/s per core)"
    assert describe.blas_text(rec) == "OpenBLAS 0.3.34, kernel Haswell (VAEAS_BLAS scipy-openblas)"
    assert describe.blas_text(rec, selection=False) == "OpenBLAS 0.3.34, kernel Haswell"
    assert describe.blas_text({"cpu_model": "x"}) is None


def section(slug, body):
    return f"<!-- blas_table.py: begin {slug} -->\n{body}\n<!-- blas_table.py: end {slug} -->"


def test_insert_adds_the_heading_once_then_replaces_only_its_cpu():
    text = blas_table.insert("# Performance\n\nIntro.\n", "amd", section("amd", "old amd"))
    assert text.count(blas_table.HEADING) == 1 and text.index("Intro.") < text.index(blas_table.HEADING)
    text = blas_table.insert(text, "intel", section("intel", "intel table"))
    text = blas_table.insert(text, "amd", section("amd", "new amd"))
    assert "old amd" not in text and text.count("new amd") == 1 and text.count("intel table") == 1
    assert text.count(blas_table.HEADING) == 1
    assert text.index(blas_table.HEADING) < text.index("new amd") < text.index("intel table")


def test_insert_puts_a_new_cpu_before_the_next_heading_or_another_scripts_section():
    doc = (f"# P\n\n{blas_table.HEADING}\n\n{section('amd', 'amd table')}\n\n"
           f"{compare_report.BEGIN}\ncompare\n{compare_report.END}\n\n## Later\n\ntext\n")
    text = blas_table.insert(doc, "intel", section("intel", "intel table"))
    assert text.index("amd table") < text.index("intel table") < text.index(compare_report.BEGIN)
    assert text.endswith("## Later\n\ntext\n") and "compare\n" in text
    assert describe.replace_between("a [x] b", "[", "]", "y") == "a y b"
    assert describe.replace_between("a ] [ b", "[", "]", "y") is None


def record(sps, **kw):
    base = dict(samples_per_s=sps, ratio_to_sgemm=0.5, sgemm_gflops_per_rank=40.0, flops_per_sample=1e6,
                sgemm_fraction_of_peak=0.6, peak_rss_bytes_max_rank=100 * 1048576,
                peak_rss_bytes_all_ranks=200 * 1048576, step_ms=10.0, ms_forward=4.0, ms_backward=5.0,
                ms_idle=0.001, cpu_model="AMD EPYC", cpu_family_model="25/1", blas_library="OpenBLAS",
                blas_version="0.3.34", blas_selection="scipy-openblas")
    base.update(kw)
    return base


def fixture(before):
    table = [r for r in rows(quick=False) if r[0].startswith("VAE, 1 rank × 1") or "tree" in r[0]]
    results = {table[0][0]: {"ours": [record(1000), record(3000), record(2000)],
                             "torch": [dict(samples_per_s=500, threads=1, peak_rss_bytes=300 * 1048576),
                                       dict(samples_per_s=1500, threads=1, peak_rss_bytes=300 * 1048576)]},
               table[1][0]: {"ours": [record(800, peak_rss_bytes_max_rank=-1)], "torch": []}}
    sides = [("ours", "/bin/new", None)]
    if before:
        sides.append(("before", "/bin/old", None))
        results[table[0][0]]["before"] = [dict(samples_per_s=1000)]
        results[table[1][0]]["before"] = []
    a = argparse.Namespace(before_bin="/bin/old" if before else None, before_label="main at 533af70" if before else None,
                           bin="/bin/new", slow_steps=8, adam="fused", raw=None)
    backend = dict(version="2.13.0+cpu", config="cfg", blas="mkl", use_mkl="ON", mkl="2025.1", onednn=None,
                   capability="AVX2", mkl_code_path=None, text="PyTorch 2.13.0+cpu: BLAS mkl")
    return a, results, table, sides, backend


def render(before=False, out="/doc/PERFORMANCE.md"):
    a, results, table, sides, backend = fixture(before)
    raw = compare_report.raw_path_for(a, False, out, results)
    return raw, compare_report.render(
        a, results, table, sides, PAPER, backend, reps=3, steps=40, warmup=5, out=out, raw_path=raw,
        command="python3 scripts/compare_torch.py", now="2026-01-01 00:00 UTC", machine_text="host: CPU",
        version_of=lambda b: f"vaeas-dist {b}\nmore", linked_of=lambda b: "linked BLAS")


def table_rows(text):
    return [line for line in text.splitlines() if line.startswith("| ")]


def test_compare_torch_table_from_fixture_records():
    raw, text = render()
    assert raw == "/doc/data/compare_torch-amd-epyc-25-1.jsonl"
    assert text.startswith(compare_report.BEGIN) and text.endswith(compare_report.END)
    head, row, tree = table_rows(text)
    assert head.count("|") - 1 == 11 and "before" not in head
    cells = [c.strip() for c in row.split("|")[1:-1]]
    # Medians: ours 2000, PyTorch 1000 samples/s; PyTorch 1000 × 1e6 FLOPs / (40 GFLOP/s × 1 rank) = 0.025.
    assert cells[1:] == ["2,000", "1,000", "2.00×", "0.50", "0.03", "40.0", "0.60", "100", "200", "300"]
    tcells = [c.strip() for c in tree.split("|")[1:-1]]
    # No PyTorch run and a negative (unmeasured) peak: dashes, not numbers.
    assert tcells[1:4] == ["800", "–", "–"] and tcells[-3] == "–" and tcells[-1] == "–"
    assert "CPU: AMD EPYC (25/1)" in text and "vaeas-dist BLAS: OpenBLAS 0.3.34 (VAEAS_BLAS scipy-openblas)" in text
    assert "- vaeas-dist (vaeas-dist /bin/new): BLAS" in text and "`data/compare_torch-amd-epyc-25-1.jsonl`" in text
    # The step split keeps the ms_ fields above 0.005 ms.
    assert "step 10.00 ms = forward 4.00, backward 5.00" in text and "idle" not in text


def test_compare_torch_before_column():
    _raw, text = render(before=True)
    head, row, _tree = table_rows(text)
    assert "before samples/s | after / before |" in head and "before peak MiB/rank |" in head
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[2:4] == ["1,000", "2.00×"] and cells[-1] == "–"
    assert "`--before-bin` /bin/old (main at 533af70; BLAS linked BLAS)" in text


def test_compare_torch_writes_between_its_markers(tmp_path):
    out = tmp_path / "PERFORMANCE.md"
    out.write_text(f"# P\n\n{compare_report.BEGIN}\nstale\n{compare_report.END}\n\n## After\n")
    _raw, text = render(out=str(out))
    backend = fixture(False)[4]
    compare_report.write_outputs(text, [{"x": 1}], str(tmp_path / "data" / "raw.jsonl"), str(out), "now", "cmd", backend)
    doc = out.read_text()
    assert "stale" not in doc and doc.count(compare_report.BEGIN) == 1 and doc.endswith("## After\n")
    lines = (tmp_path / "data" / "raw.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"torch_config": "cfg"' in lines[0] and lines[1] == '{"x": 1}'

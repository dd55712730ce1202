"""compare_torch's report: medians of the measured records, the Markdown section (the table, its caption
and notes) and where it and the raw records are written. Pure functions of the records apart from
write_outputs, so that the table can be rendered from fixture records."""
import json
import os
import statistics
import sys

from ..io import write_text_atomic
from .describe import blas_text, cpu_slug, cpu_text, linked_blas, replace_between, version

BEGIN, END = "<!-- compare_torch.py: begin -->", "<!-- compare_torch.py: end -->"


def med(runs, key):
    """Median of key over the records that have it as a number >= 0 (a negative value is 'not measured')."""
    values = [r[key] for r in runs if isinstance(r.get(key), (int, float)) and r[key] >= 0]
    return statistics.median(values) if values else None


def mib(runs, key):
    """med of a byte count, in MiB."""
    v = med(runs, key)
    return v / 1048576 if v is not None else None


def fmt(x, spec):
    """x formatted by spec, '–' for None (not measured)."""
    return "–" if x is None else format(x, spec)


def raw_path_for(a, quick, out, results):
    """Where the raw records go: --raw, else DIR/data/compare_torch-CPU.jsonl beside out (none for --quick)."""
    ours = [r for rs in results.values() for r in rs.get("ours", [])]
    first = next((r for r in ours if r.get("cpu_model")), {})
    return a.raw or (os.path.join(os.path.dirname(os.path.abspath(out)), "data",
                                  f"compare_torch-{cpu_slug(first)}.jsonl") if out and not quick else None)


def render(a, results, table, sides, shape, backend, *, reps, steps, warmup, out, raw_path, command, now,
           machine_text, version_of=version, linked_of=linked_blas):
    """The section between BEGIN and END: results is {row name: {side: [records per round]}}, sides
    [(key, binary, blas or None)] of vaeas-dist (ours first, then before if --before-bin, then --blas
    columns), backend torch_workers.torch_backend's; version_of and linked_of describe a binary
    (`--version`, the BLAS it links), passed in so that a test needs no binary."""
    extras = sides[2 if a.before_bin else 1:]
    every = {k: [r for rs in results.values() for r in rs[k]] for k in results[table[0][0]]}

    def blas_of(key, b):
        """What BLAS a side ran: its bench JSON's, else what the binary links (old binaries), else '–'."""
        rec = next((r for r in every[key] if r.get("blas_library")), None)
        return blas_text(rec, selection=key == "ours") or linked_of(b) or "–"

    first = next((r for r in every["ours"] if r.get("cpu_model")), {})
    cpu = cpu_text(first) or "–"
    ours_blas = blas_of("ours", a.bin)
    caption = (f"*CPU: {cpu}; vaeas-dist BLAS: {ours_blas}"
               + (f"; before: {blas_of('before', a.before_bin)}" if a.before_bin else "")
               + "".join(f"; {k}: {blas_of(k, b)}" for k, b, _e in extras)
               + f"; PyTorch: BLAS_INFO={backend['blas'] or '–'}"
               + (f", MKL {backend['mkl']}" if backend["mkl"] else "")
               + (f" ('{backend['mkl_code_path']}')" if backend["mkl_code_path"] else "")
               + (f", oneDNN {backend['onednn']}" if backend["onednn"] else "")
               + f", CPU capability {backend['capability']}.*")
    torch_threads = sorted({r["threads"] for r in every["torch"] if "threads" in r})

    lines = []
    head = "| config | vaeas-dist samples/s |" + (" before samples/s | after / before |" if a.before_bin else "")
    head += "".join(f" {k} samples/s | {k} / PyTorch | {k} sgemm / nominal peak |" for k, _b, _e in extras)
    head += (" PyTorch samples/s | vaeas-dist / PyTorch | vaeas-dist / its sgemm rate | PyTorch / the same sgemm rate |"
             " sgemm GFLOP/s per rank | sgemm / nominal peak |")
    head += " vaeas-dist peak MiB/rank | vaeas-dist total MiB | PyTorch peak MiB |" + (" before peak MiB/rank |" if a.before_bin else "")
    lines.append(head)
    lines.append("|---|" + "---:|" * (head.count("|") - 2))
    for (name, ranks, threads, *_rest) in table:
        o, t, bf = results[name]["ours"], results[name]["torch"], results[name]["before"] if a.before_bin else []
        sps, tsps, bsps = med(o, "samples_per_s"), med(t, "samples_per_s"), med(bf, "samples_per_s")
        ratio = med(o, "ratio_to_sgemm")
        sgemm = med(o, "sgemm_gflops_per_rank")
        flops = med(o, "flops_per_sample")
        # PyTorch's matmul GFLOP/s over the sgemm rate vaeas-dist measured on the same shapes and cores.
        tratio = (tsps * flops / 1e9 / (sgemm * ranks)) if (tsps and flops and sgemm) else None
        row = f"| {name} | {fmt(sps, ',.0f')} |"
        if a.before_bin:
            row += f" {fmt(bsps, ',.0f')} | {fmt(sps / bsps if bsps else None, '.2f')}× |"
        for k, _b, _e in extras:
            x = results[name][k]
            xsps = med(x, "samples_per_s")
            row += (f" {fmt(xsps, ',.0f')} | {fmt(xsps / tsps if xsps and tsps else None, '.2f')}{'×' if xsps and tsps else ''}"
                    f" | {fmt(med(x, 'sgemm_fraction_of_peak'), '.2f')} |")
        row += (f" {fmt(tsps, ',.0f')} | {fmt(sps / tsps if tsps else None, '.2f')}{'×' if tsps else ''} |"
                f" {fmt(ratio, '.2f')} | {fmt(tratio, '.2f')} | {fmt(sgemm, '.1f')} |"
                f" {fmt(med(o, 'sgemm_fraction_of_peak'), '.2f')} |")
        # Peak resident sets: vaeas-dist's largest rank and all its ranks summed (bench reports every
        # rank's), PyTorch's one process, the before binary's largest rank if its bench reports it.
        row += (f" {fmt(mib(o, 'peak_rss_bytes_max_rank'), ',.0f')} | {fmt(mib(o, 'peak_rss_bytes_all_ranks'), ',.0f')} |"
                f" {fmt(mib(t, 'peak_rss_bytes'), ',.0f')} |")
        if a.before_bin:
            row += f" {fmt(mib(bf, 'peak_rss_bytes_max_rank'), ',.0f')} |"
        lines.append(row)
    split = []
    for (name, *_r) in table:
        o = results[name]["ours"]
        if not o:
            continue
        keys = [k for k in o[0] if k.startswith("ms_") and med(o, k) is not None and med(o, k) > 0.005]
        split.append(f"- {name}: step {med(o, 'step_ms'):.2f} ms = " +
                     ", ".join(f"{k[3:]} {med(o, k):.2f}" for k in keys))
    shape_text = (f"encoder {shape['enc_layers']} × {shape['hidden']}, decoder {shape['dec_layers']} × {shape['hidden']}, "
                  f"latent {shape['latent']}, tanh, batch {shape['batch']}, L = {shape['samples']}; "
                  f"VAE-AS: classifier {shape['cls_layers']} × {shape['hidden']}, entropy estimator (tree: ce), β = 1")
    section = "\n".join([
        BEGIN,
        "## vaeas-dist against PyTorch (`scripts/compare_torch.py`)",
        "",
        f"Measured {now} on {machine_text}; CPU as vaeas-dist reports it: {cpu}. "
        f"PyTorch {backend['version']} "
        f"(`torch.optim.Adam`{'' if a.adam == 'default' else f'({a.adam}=True)'}), "
        f"{reps} interleaved rounds, medians; {steps} timed steps per run "
        f"({min(steps, a.slow_steps)} for the V = 50000 full-softmax rows) after {warmup} warm-up.",
        f"Model: {shape_text}.",
        "",
        f"- vaeas-dist ({version_of(a.bin).splitlines()[0]}): BLAS {ours_blas}.",
        f"- {backend['text']}, threads {' / '.join(map(str, torch_threads)) or '–'} (`torch.set_num_threads(ranks × threads)` "
        "of the row, OMP_NUM_THREADS = MKL_NUM_THREADS the same, 1 interop thread).",
        "",
        "```",
        command.strip(),
        "```",
        "",
        caption,
        "",
        *lines,
        "",
        "- *vaeas-dist / its sgemm rate*: the step's matmul GFLOP/s over its BLAS's sgemm on exactly the step's shapes "
        "and threads, measured in the same run (`bench`'s `ratio_to_sgemm`): the share of its own BLAS's speed the step "
        "keeps, not how fast that BLAS is. *PyTorch / the same sgemm rate*: PyTorch's samples/s × the same FLOPs per "
        "sample, over that same sgemm rate × ranks. *sgemm / nominal peak*: that sgemm rate over the nominal peak of "
        "the rank's cores (threads × the CPU's per-core peak, `sgemm_fraction_of_peak`; above 1 when the cores run above "
        "the clock the peak assumes): a BLAS on a generic kernel shows there as a small fraction, and flatters the "
        "ratios to its sgemm.",
        "- PyTorch runs `torch.set_num_threads(ranks × threads)` in one process; vaeas-dist runs `scripts/mpirun.sh -n ranks` "
        "with `OPENBLAS_NUM_THREADS=threads` (which vaeas-dist gives to whichever BLAS it loaded), on a config per row "
        "that compare_torch.py writes with the model, objective and batch keys above (only keys 533af70's binary also "
        "knows: no `train.cls_lr`, which changes no work).",
        "- Peak memory is the peak resident set (VmHWM), medians over rounds. *vaeas-dist peak MiB/rank*: its largest rank "
        "(`bench`'s `peak_rss_bytes_max_rank`: set-up, the data set, the timed steps); *vaeas-dist total MiB*: "
        "all its ranks summed (`peak_rss_bytes_all_ranks`), the number to set against *PyTorch peak MiB* on 2-rank rows, "
        "where PyTorch is one process with 2 threads (its interpreter and libtorch included, 16 batches of data). "
        "On 1-rank rows the two vaeas-dist columns are the same process.",
        *([f"- *before*: `--before-bin` {a.before_bin} ({a.before_label or version_of(a.before_bin).splitlines()[0]}; BLAS "
           f"{blas_of('before', a.before_bin)}), timed in the same rounds on the same configs; its peak memory is \"–\" "
           "where its `bench --json` has no `peak_rss_bytes_max_rank` (binaries before #13's performance work)."]
          if a.before_bin else []),
        *[f"- *{k}*: this build (`--bin`) under `VAEAS_BLAS={v}`{''.join(f' `{n}={x}`' for n, x in e.items())} "
          f"(BLAS {blas_of(k, b)}), timed in the same rounds on the same configs." for k, b, (v, e) in extras],
        *([f"- Raw records (every run's `bench`/worker JSON with row, side and round; PyTorch's `torch.__config__.show()` "
           f"first): `{os.path.relpath(raw_path, os.path.dirname(os.path.abspath(out)))}`."] if raw_path and out else []),
        "- Where vaeas-dist's step goes, ms per step on rank 0 (medians):",
        *["  " + s for s in split],
        END,
    ])
    return section


def write_outputs(section, raw, raw_path, out, now, command, backend):
    """Writes the raw records (PyTorch's configuration first) into raw_path and the section into out,
    replacing the one between BEGIN and END or appended; either may be None (not written)."""
    if raw_path:
        head = dict(measured=now, command=command, torch_config=backend["config"],
                    torch_backend={k: v for k, v in backend.items() if k != "config"})
        write_text_atomic(raw_path, "".join(json.dumps(r) + "\n" for r in [head] + raw))
        print(f"compare_torch: wrote {len(raw)} records into {raw_path}", file=sys.stderr)
    if out:
        text = open(out).read() if os.path.exists(out) else ""
        replaced = replace_between(text, BEGIN, END, section)
        write_text_atomic(out, replaced if replaced is not None else text.rstrip("\n") + "\n\n" + section + "\n")
        print(f"compare_torch: wrote the table into {out}", file=sys.stderr)

#!/usr/bin/env python3
"""The converged reduced-N experiments of docs/RESULTS.md (issue #12).

Every run trains configs/mnist-vaeas-small.yaml (N = V = 2000, 300 epochs, 2 ranks) with a few --set
overrides, then measures the checkpoint on the same 2000 training images (eval --split train, estimate
at S = N) and on test images spread over the test set. A run is a directory under runs/converged/;
one with done.json is skipped, one with a training-state checkpoint is resumed (--resume), so the
study can be built over several sittings:

    python3 scripts/converged.py run lr levers          # groups of runs, in order
    python3 scripts/converged.py run table2 --dry-run   # the commands only
    python3 scripts/converged.py list
    python3 scripts/converged.py summary                # one JSON line per finished run

The groups and their runs are in experiments/converged/study.yaml. `--study FILE` runs another study
with the same runner, into the directory its `out:` key names (experiments/paper-length/study.yaml:
Table 2 at the paper's training length, issue #20):

    python3 scripts/converged.py --study experiments/paper-length/study.yaml run headline
"""
import argparse, json, os, shlex, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = os.path.join(ROOT, "experiments", "converged", "study.yaml")
OUT = os.path.join(ROOT, "runs", "converged")


def load_spec():
    import yaml
    with open(SPEC) as f:
        return yaml.safe_load(f)


def use_study(path):
    """Point the runner at another study file; its runs go to its `out:` directory (relative to the repo)."""
    global SPEC, OUT
    SPEC = os.path.abspath(path)
    out = load_spec().get("out")
    if out:
        OUT = os.path.join(ROOT, out)


def runs_of(spec, groups):
    out = []
    for g in groups:
        if g not in spec["groups"]:
            sys.exit(f"converged.py: unknown group '{g}' (groups: {', '.join(spec['groups'])})")
        for r in spec["groups"][g]:
            out.append((g, r))
    return out


def sh(cmd, log, dry):
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    if dry:
        return ""
    t0 = time.time()
    with open(log, "a") as f:
        p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        f.write(p.stdout)
    if p.returncode != 0:
        raise RuntimeError(f"exit {p.returncode} after {time.time() - t0:.0f} s: see {log}\n" + p.stdout[-2000:])
    return p.stdout


def last_json(text, key=None):
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            if key is None or key in d:
                return d
    raise RuntimeError("no JSON line in the output")


def finished(d):
    """Training ran to its last epoch, read from the run's own records (not its prose): model.safetensors
    exists and the last line of metrics.jsonl is the epoch that config.yaml's train.epochs asks for."""
    import yaml
    t = os.path.join(d, "train")
    try:
        with open(os.path.join(t, "config.yaml")) as f:
            epochs = yaml.safe_load(f)["train"]["epochs"]
        with open(os.path.join(t, "metrics.jsonl")) as f:
            last = json.loads(f.read().splitlines()[-1])
    except (OSError, ValueError, IndexError, KeyError, TypeError):
        return False
    return os.path.exists(os.path.join(t, "model.safetensors")) and last.get("epoch") == epochs


def run_one(spec, group, run, args):
    rid = run["id"]
    d = os.path.join(OUT, group, rid)
    if os.path.exists(os.path.join(d, "done.json")) and not args.force:
        print(f"{group}/{rid}: done", flush=True)
        return
    os.makedirs(d, exist_ok=True)
    launcher = ["scripts/mpirun.sh", "-n", str(args.ranks)]
    data = ["--data-dir", args.data_dir]
    sets = []
    for k, v in {**spec.get("set", {}), **run.get("set", {})}.items():
        sets += ["--set", f"{k}={v}"]
    t0 = time.time()
    state = os.path.join(d, "train", "checkpoints")
    if finished(d) and not args.force:
        train = None   # trained; only the measurements are missing
    elif os.path.isdir(state) and os.listdir(state) and not args.force:
        train = launcher + ["train", "--resume", os.path.join(d, "train")]
    else:
        train = launcher + ["train", "--config", run.get("config", spec["config"])] + data + sets + [
            "--out", os.path.join(d, "train"), "--overwrite"]
    if train:
        sh(train, os.path.join(d, "train.log"), args.dry_run)
    t1 = time.time()
    ckpt = os.path.join(d, "train", "model.safetensors")
    k = str(run.get("iw_samples", spec["groups_iw_samples"].get(group, spec["iw_samples"])))
    ev_test = sh(launcher + ["eval", "--checkpoint", ckpt] + data + [
        "--split", "test", "--limit", str(spec["test_examples"]), "--iw-samples", k, "--no-classifier", "--json"],
        os.path.join(d, "eval-test.log"), args.dry_run)
    ev_train = sh(launcher + ["eval", "--checkpoint", ckpt] + data + [
        "--split", "train", "--iw-samples", "1", "--json"], os.path.join(d, "eval-train.log"), args.dry_run)
    est = sh(launcher + ["estimate", "--checkpoint", ckpt] + data + ["--json"] + (
        ["--samples", run["estimate_samples"]] if "estimate_samples" in run else []),
        os.path.join(d, "estimate.log"), args.dry_run)
    if args.dry_run:
        return
    est_lines = [json.loads(l) for l in est.splitlines() if l.strip().startswith("{")]
    metrics = [json.loads(l) for l in open(os.path.join(d, "train", "metrics.jsonl"))]
    done = {
        "group": group, "id": rid, "set": {**spec.get("set", {}), **run.get("set", {})},
        "config": run.get("config", spec["config"]), "ranks": args.ranks,
        "train_seconds": t1 - t0, "measure_seconds": time.time() - t1,
        "last_epoch": metrics[-1], "eval_test": last_json(ev_test), "eval_train": last_json(ev_train),
        "estimate": est_lines,
    }
    with open(os.path.join(d, "done.json.tmp"), "w") as f:
        json.dump(done, f, indent=1)
    os.replace(os.path.join(d, "done.json.tmp"), os.path.join(d, "done.json"))
    print(f"{group}/{rid}: done in {time.time() - t0:.0f} s", flush=True)


# ---------------------------------------------------------------- report

PAPER_T2 = {  # Table 2 (MNIST, N = 55000, 300 epochs): NLL_test KL_test AU NLL_train KL_train MI MD SC
    "vae": (100.99, 18.39, 8, 73.45, 18.57, None, None, None),
    "a1-b1": (96.32, 21.84, 11, 71.66, 21.22, 10.78, 10.66, 0.35),
    "a1-b0.2": (106.92, 46.99, 25, 61.16, 45.14, 10.87, 34.35, 0.12),
    "a1-b0.5": (96.63, 29.52, 18, 65.64, 29.40, 10.83, 18.71, 0.22),
    "a1-b2": (101.34, 15.68, 7, 81.61, 15.87, 10.58, 5.78, 0.82),
    "a1-b5": (141.38, 5.35, 2, 145.04, 5.56, 3.34, 2.27, 7.62),
    "a0.2-b1": (97.51, 21.23, 10, 71.84, 20.92, 10.81, 10.32, 0.31),
    "a0.5-b1": (98.23, 21.57, 10, 72.23, 20.91, 10.80, 10.32, 0.33),
    "a2-b1": (96.56, 21.13, 11, 71.85, 20.99, 10.75, 10.48, 0.41),
    "a5-b1": (97.33, 20.38, 10, 75.94, 19.79, 10.44, 9.80, 0.93),
}
PAPER_T1 = {1: 23, 2: 21, 3: 17, 4: 12, 5: 8}
PAPER_T3 = {  # Table 3 (Omniglot, N = 24345): NLL_test KL_test AU NLL_train KL_train MI MD SC
    "vae": (147.21, 9.33, 3, 133.70, 9.25, None, None, None),
    "a1-b1": (140.08, 22.81, 10, 83.91, 22.56, 10.07, 12.53, 0.07),
    "a1-b5": (161.17, 2.35, 1, 161.56, 2.66, 1.83, 0.84, 8.28),
    "a0.2-b1": (140.38, 21.17, 9, 86.22, 21.49, 10.07, 11.45, 0.06),
}


def load_done(group, rid):
    p = os.path.join(OUT, group, rid, "done.json")
    return json.load(open(p)) if os.path.exists(p) else None


def mc_at_n(d):
    """(S, MC MI, MC MD, mean KL) at the largest S estimated (S = N by default)."""
    est = [e for e in d["estimate"] if "samples" in e]
    if not est:
        return None
    e = max(est, key=lambda e: e["samples"])
    return e["samples"], e["mi"], e["md"], e["mean_kl"]


def measures(d):
    """The numbers every table uses, from one run's done.json."""
    tr, te = d["eval_train"], d["eval_test"]
    m = {"NLL_test": te["nll"], "K": te["iw_samples"], "KL_test": te["kl"], "AU": te["active_units"],
         "NLL_train": tr["recon"], "KL_train": tr["kl"], "MI": tr.get("mi"), "MD": tr.get("md"), "SC": tr.get("sc"),
         "minutes": d["train_seconds"] / 60}
    mc = mc_at_n(d)
    if mc:
        m["S"], m["MI_mc"], m["MD_mc"], m["mean_kl"] = mc
        if m["MI"] is not None and m["MI_mc"] > 0:
            m["gap"] = 100 * (m["MI_mc"] - m["MI"]) / m["MI_mc"]
    return m


def f(x, nd=2):
    if x is None:
        return "–"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{nd}f}"


def mean_std(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "–"
    mu = sum(xs) / len(xs)
    sd = (sum((x - mu) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 if len(xs) > 1 else 0.0
    return f"{mu:.2f} ± {sd:.2f}"


COLS = ["KL_train", "AU", "MI", "MI_mc", "gap", "MD", "SC", "NLL_train", "NLL_test"]
HEAD = ["KL", "AU", "Î", "MC MI (S = N)", "gap %", "MD̂", "SC", "NLL_train (recon)", "NLL_test (K)"]


def row_cells(m):
    out = []
    for c in COLS:
        v = m.get(c)
        if c == "NLL_test" and v is not None:
            out.append(f"{v:.2f} ({m['K']})")
        elif c == "gap":
            out.append(f(v, 1))
        else:
            out.append(f(v))
    return out


def curves_png(runs, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 4, figsize=(18, 4))
    # One colour per run (tab20: the default cycle repeats after 10), baseline seeds dashed.
    colors = plt.get_cmap("tab20").colors
    for k, (label, d) in enumerate(runs):
        mp = os.path.join(OUT, d["group"], d["id"], "train", "metrics.jsonl")
        rows = [json.loads(l) for l in open(mp)]
        ep = [r["epoch"] for r in rows]
        for ax, key in zip(axes, ["mi", "kl", "sc", "recon"]):
            ax.plot(ep, [r.get(key) for r in rows], label=label, lw=1, color=colors[k % len(colors)],
                    ls="--" if label.startswith("base") else "-")
    for ax, t in zip(axes, ["Î (classifier, epoch mean)", "mean KL", "SC (classifier CE)", "recon (NLL_train)"]):
        ax.set_title(t); ax.set_xlabel("epoch"); ax.grid(alpha=.3)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, path), dpi=90)
    plt.close(fig)


def cmd_report(args):
    spec = load_spec()
    L = []
    add = L.append
    add("<!-- converged:begin (generated by `python3 scripts/converged.py report`; edit the text outside the markers) -->")
    add("")
    add(f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from `runs/converged/*/*/done.json`. "
        "Every run: `configs/mnist-vaeas-small.yaml` + the row's settings, 2 ranks; Î, MD̂, SC, KL_train and "
        "NLL_train (single-sample reconstruction NLL) measured after training by `eval --split train` on the "
        "N training images trained on; MC MI/MD: `estimate` at S = N on them; AU, KL_test and NLL_test by "
        "`eval --split test --limit 1000` (1000 test images spread over the test set, K importance samples). "
        "gap % = (MC MI − Î) / MC MI. log N = log 2000 = 7.60 bounds both MI estimates.")
    add("")
    # 1. lr
    lr = [(r["id"], load_done("lr", r["id"])) for r in spec["groups"]["lr"]]
    lr += [(r["id"], load_done("lr-more", r["id"])) for r in spec["groups"].get("lr-more", [])]
    lr = [(i, d) for i, d in lr if d]
    add("### The learning rate, seeds")
    add("")
    add("| run | " + " | ".join(HEAD) + " | train min |")
    add("|---|" + "---:|" * (len(HEAD) + 1))
    for i, d in lr:
        m = measures(d)
        add(f"| {i} | " + " | ".join(row_cells(m)) + f" | {m['minutes']:.1f} |")
    for rate in ["3e-4", "1e-3"]:
        ms = [measures(d) for i, d in lr if i.startswith("lr" + rate)]
        if len(ms) > 1:
            add(f"| **lr {rate}, mean ± sd of {len(ms)} seeds** | " + " | ".join(
                mean_std([m.get(c) for m in ms]) for c in COLS) + " | |")
    add("")
    # 2. levers
    base = load_done("lr", "lr3e-4-s0")
    levers = [(r["id"], load_done(g, r["id"]), r["set"]) for g in ["levers", "levers-more"] for r in spec["groups"][g]]
    levers = [x for x in levers if x[1]]
    if base and levers:
        add("### One lever at a time (from lr3e-4-s0; seed 0)")
        add("")
        add("| lever | setting | " + " | ".join(HEAD) + " |")
        add("|---|---|" + "---:|" * len(HEAD))
        add("| none (lr3e-4-s0) | | " + " | ".join(row_cells(measures(base))) + " |")
        for i, d, st in levers:
            add(f"| {i} | `" + ", ".join(f"{k}={v}" for k, v in st.items()) + "` | " + " | ".join(row_cells(measures(d))) + " |")
        add("")
        curves_png([("base s%d" % k, load_done("lr", f"lr3e-4-s{k}")) for k in range(3) if load_done("lr", f"lr3e-4-s{k}")]
                   + [(i, d) for i, d, _ in levers], "docs/figures/levers.png",
                   "Lever study, N = V = 2000, 300 epochs (per-epoch training means)")
        add("![lever curves](figures/levers.png)")
        add("")
    # 3. Table 2
    t2 = [("a1-b1", base)] + [(r["id"], load_done(g, r["id"])) for g in ["table2", "table2-more"]
                               for r in spec["groups"][g]]
    t2 = [(i, d) for i, d in t2 if d]
    order = ["vae", "a1-b0.2", "a1-b0.5", "a1-b1", "a1-b2", "a1-b5", "a0.2-b1", "a0.5-b1", "a2-b1", "a5-b1"]

    def paper_table(rows, paper):
        add("| row | α | β | NLL_test | KL_test | AU | NLL_train | KL_train | Î | MD̂ | SC | MC MI (S = N) | gap % |")
        add("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for i, d in sorted(rows, key=lambda x: order.index(x[0]) if x[0] in order else 99):
            m = measures(d)
            st = d["set"]
            a = st.get("objective.alpha", 1.0); b = st.get("objective.beta", 1.0)
            p = paper.get(i, (None,) * 8)
            vals = [m["NLL_test"], m["KL_test"], m["AU"], m["NLL_train"], m["KL_train"], m["MI"], m["MD"], m["SC"]]
            cells = [f"{f(v)} / {f(q)}" for v, q in zip(vals, p)]
            cells[0] = f"{f(vals[0])} (K {m['K']}) / {f(p[0])}"
            vae = st.get("objective.kind") == "vae"
            add(f"| {i} | {'–' if vae else a} | {'–' if vae else b} | " + " | ".join(cells)
                + f" | {f(m.get('MI_mc'))} | {f(m.get('gap'), 1)} |")
        add("")

    if t2:
        add("### Table 2 at N = V = 2000 (binarized MNIST), ours / paper (N = 55000)")
        add("")
        paper_table(t2, PAPER_T2)
    # 4. Table 1
    t1 = [(r["set"]["model.dec_layers"], load_done(g, r["id"])) for g in ["table1", "table1-more"]
          for r in spec["groups"][g]]
    vae5 = load_done("table2", "vae")
    t1 = sorted([(k, d) for k, d in t1 if d] + ([(5, vae5)] if vae5 else []))
    if t1:
        add("### Table 1 at N = 2000: active units against decoder depth (plain VAE), ours / paper")
        add("")
        add("| decoder layers | AU (test) | KL | MC MI (S = N) | NLL_test (K) |")
        add("|---:|---:|---:|---:|---:|")
        for k, d in t1:
            m = measures(d)
            add(f"| {k} | {m['AU']} / {PAPER_T1[k]} | {f(m['KL_train'])} | {f(m.get('MI_mc'))} | {f(m['NLL_test'])} ({m['K']}) |")
        add("")
    # 5. Figures 2/3
    fg = load_done("figure23", "vN")
    if fg:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        est = sorted([e for e in fg["estimate"] if "samples" in e], key=lambda e: e["samples"])
        S = [e["samples"] for e in est]
        m = measures(fg)
        fig, ax = plt.subplots(1, 2, figsize=(11, 4))
        ax[0].plot(S, [e["mi"] for e in est], "o-", label="Monte Carlo MI")
        ax[0].plot(S, [e["md"] for e in est], "s-", label="Monte Carlo MD")
        ax[0].axhline(m["MI"], color="C0", ls="--", label="classifier Î")
        ax[0].axhline(m["MD"], color="C1", ls="--", label="classifier MD̂")
        ax[0].set_xscale("log"); ax[0].set_xlabel("S"); ax[0].legend(); ax[0].set_title("Figure 2 (N = V = 2000)")
        ax[1].plot(S, [e["mi"] + e["md"] for e in est], "o-", label="MC MI + MD")
        ax[1].plot(S, [e["mean_kl"] for e in est], "k--", label="mean KL")
        ax[1].axhline(m["MI"] + m["MD"], color="C2", ls=":", label="Î + MD̂")
        ax[1].set_xscale("log"); ax[1].set_xlabel("S"); ax[1].legend(); ax[1].set_title("Figure 3")
        fig.tight_layout(); fig.savefig(os.path.join(ROOT, "docs/figures/figure23-small.png"), dpi=90); plt.close(fig)
        add("### Figures 2 and 3 at N = V = 2000 (decoder 3 × 500, batch 100, 120 epochs)")
        add("")
        add("| S | MC MI | MC MD | MC MI + MD | mean KL |")
        add("|---:|---:|---:|---:|---:|")
        for e in est:
            add(f"| {e['samples']} | {f(e['mi'])} | {f(e['md'])} | {f(e['mi'] + e['md'])} | {f(e['mean_kl'])} |")
        add(f"| classifier (`cls_lr` = lr) | Î {f(m['MI'])} | MD̂ {f(m['MD'])} | {f(m['MI'] + m['MD'])} | {f(m['KL_train'])} |")
        fc = load_done("figure23", "vN-cls-lr-3e-3")
        if fc:
            mc = measures(fc)
            add(f"| classifier (`cls_lr` 3·10⁻³) | Î {f(mc['MI'])} | MD̂ {f(mc['MD'])} | {f(mc['MI'] + mc['MD'])} | {f(mc['KL_train'])} |")
        add("")
        add("![Figures 2 and 3](figures/figure23-small.png)")
        add("")
    # 6. Table 3
    t3 = [(r["id"], load_done(g, r["id"])) for g in ["table3", "table3-more"] for r in spec["groups"][g]]
    t3 = [(i, d) for i, d in t3 if d]
    if t3:
        add("### Table 3 on omniglot-small (N = V = 3630, its whole training split; test: 1000 of its 1210 images, "
            "spread), ours / paper (Omniglot, N = 24345)")
        add("")
        paper_table(t3, PAPER_T3)
    add("<!-- converged:end -->")
    text = "\n".join(L) + "\n"
    path = os.path.join(ROOT, "docs", "RESULTS.md")
    cur = open(path).read() if os.path.exists(path) else ""
    b, e = "<!-- converged:begin", "<!-- converged:end -->"
    if b in cur and e in cur:
        cur = cur[:cur.index(b)] + text + cur[cur.index(e) + len(e) + 1:]
    else:
        cur = cur + "\n" + text
    open(path + ".tmp", "w").write(cur)
    os.replace(path + ".tmp", path)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", default=SPEC, help="the study file (default experiments/converged/study.yaml)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("groups", nargs="+")
    r.add_argument("--ranks", type=int, default=2)
    r.add_argument("--data-dir", default=os.environ.get("VAEAS_DATA_DIR", "../shared/data"))
    r.add_argument("--only", help="comma-separated run ids")
    r.add_argument("--force", action="store_true")
    r.add_argument("--dry-run", action="store_true")
    sub.add_parser("list")
    sub.add_parser("summary")
    sub.add_parser("report", help="the converged section of docs/RESULTS.md and its figures")
    args = ap.parse_args()
    use_study(args.study)
    spec = load_spec()
    if args.cmd == "list":
        for g, runs in spec["groups"].items():
            done = sum(os.path.exists(os.path.join(OUT, g, x["id"], "done.json")) for x in runs)
            print(f"{g:10s} {len(runs):2d} run(s), {done} done")
        return
    if args.cmd == "report":
        return cmd_report(args)
    if args.cmd == "summary":
        for g, runs in spec["groups"].items():
            for x in runs:
                p = os.path.join(OUT, g, x["id"], "done.json")
                if os.path.exists(p):
                    print(open(p).read().replace("\n", ""))
        return
    failures = 0
    for g, run in runs_of(spec, args.groups):
        if args.only and run["id"] not in args.only.split(","):
            continue
        try:
            run_one(spec, g, run, args)
        except Exception as e:  # one failed run does not stop the rest
            failures += 1
            print(f"{g}/{run['id']}: FAILED: {e}", file=sys.stderr, flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()

"""vaeas_tools: the Python side of vaeas-dist (issue #22).

One module per concern; the files in scripts/ are thin entry points that put tools/ on sys.path and call a
module's main(). Layout (docs/ARCHITECTURE.md, "Python tools"):

    paths       the repository root, the vaeas-dist binary, the data directory
    io          IDX and safetensors readers, JSON Lines, atomic JSON writes, YAML
    plots       matplotlib with the Agg backend, set up once
    study/      one runner for the paper's specs and the study files, and their reports (scripts/study.py)
    scaling/    the scaling sweep, its reports and the α–β projection (scripts/scaling.py)
    torch_ref/  the model and trainer in PyTorch, the step cross-check, curve overlays
    perf/       the BLAS table and the speed comparison with PyTorch (scripts/blas_table.py, compare_torch.py)
    run_report  a run's pictures and TensorBoard logs (scripts/report_run.py)
    compare_runs  two runs' tensors and logged fields side by side (scripts/compare_runs.py)
"""

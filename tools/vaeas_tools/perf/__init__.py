"""Speed measurements against PyTorch and across BLAS libraries, written into docs/PERFORMANCE.md:
compare_torch (with its configs, workers and report), blas_table, and describe (the BLAS, CPU and machine
descriptions and the marker-delimited sections both share)."""

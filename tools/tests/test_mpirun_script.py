"""scripts/mpirun.sh's CPU binding (issue #21, defect 10): concurrent jobs on one machine get distinct CPUs.

The "binary" is python3 printing its own affinity, so no vaeas-dist run is needed. Before the fix, Open MPI's default
pinned every 1-rank job to core 0: two such jobs ran at half speed each."""
import os
import shutil
import subprocess
import time

import pytest

from vaeas_tools.paths import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "mpirun.sh")
PRINT_AFFINITY = ("import os, sys, time; print('cpus', ','.join(map(str, sorted(os.sched_getaffinity(0)))), flush=True); "
                  "time.sleep(float(sys.argv[1]))")

pytestmark = pytest.mark.skipif(shutil.which("mpirun") is None or len(os.sched_getaffinity(0)) < 2,
                                reason="needs mpirun and at least 2 CPUs")


def start(tmp_path, seconds, ranks=1, **env):
    e = dict(os.environ, VAEAS_BIN=shutil.which("python3"), VAEAS_CORE_LOCKS=str(tmp_path / "locks"),
             OPENBLAS_NUM_THREADS="1", OMPI_MCA_rmaps_base_oversubscribe="1")
    e.update(env)
    return subprocess.Popen([SCRIPT, "-n", str(ranks), "-c", PRINT_AFFINITY, str(seconds)], env=e,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p):
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return [line.split()[1] for line in out.splitlines() if line.startswith("cpus ")], err


def test_concurrent_one_rank_jobs_get_distinct_cpus(tmp_path):
    first = start(tmp_path, 4)
    time.sleep(1.0)   # the first job holds its CPU's lock by now
    second = start(tmp_path, 2)
    time.sleep(1.0)
    third = start(tmp_path, 0.2)   # on 2 CPUs none is left: not pinned, and says so
    (a,), _ = finish(first)
    (b,), _ = finish(second)
    c, third_err = finish(third)
    allowed = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    assert "," not in a and "," not in b and a != b
    if len(os.sched_getaffinity(0)) == 2:
        assert c == [allowed]
        assert "free of other jobs" in third_err and "ranks not pinned" in third_err
    # The locks went with the jobs: a new job gets the first CPU again.
    (d,), err = finish(start(tmp_path, 0))
    assert d == a and "rank CPUs: " + a in err


def test_two_ranks_one_cpu_each_and_opt_out(tmp_path):
    cpus, err = finish(start(tmp_path, 0, ranks=2))
    assert len(cpus) == 2 and all("," not in c for c in cpus) and len(set(cpus)) == 2, err
    cpus, err = finish(start(tmp_path, 0, ranks=2, VAEAS_BIND="none"))
    allowed = ",".join(map(str, sorted(os.sched_getaffinity(0))))
    assert cpus == [allowed, allowed] and "VAEAS_BIND=none" in err

"""cluster/slurm-local.sh leaves nothing of its caller's open in the daemons it starts.

Foundation's Process (the Swift tests' launcher) learns that a child has exited when a socket it passed to the child
reaches end of file. munged, started by the script on a machine where it was not yet running, inherited that socket and
kept it: the Swift suite waited forever in SlurmTests.setUp (the CI run of stop 25 timed out there). This test passes an
inheritable socket and a pipe the same way and checks that both reach end of file once the script has exited, with
munged not running beforehand (the fresh machine's case); then that `stop` ends the daemons `start` started.
Needs root and Debian's slurmctld, slurmd, slurm-client and munge (scripts/setup.sh installs them)."""
import os
import shutil
import socket
import subprocess
import time

import pytest

from vaeas_tools.paths import ROOT

SCRIPT = os.path.join(ROOT, "cluster", "slurm-local.sh")
MUNGED = "/usr/sbin/munged"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not all(shutil.which(c) for c in ("slurmctld", "slurmd", "sinfo", "munge"))
    or not os.path.exists(MUNGED),
    reason="needs root, slurmctld, slurmd, slurm-client and munge")


def munged_running():
    return subprocess.run(["munge", "-n"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


def stop_munged():
    subprocess.run(["runuser", "-u", "munge", "--", MUNGED, "--stop"], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    for _ in range(50):
        if not munged_running():
            return
        time.sleep(0.1)


def at_end_of_file(sock, seconds=5.0):
    sock.settimeout(seconds)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False


def test_daemons_hold_no_descriptor_of_the_caller(tmp_path):
    site_munged = munged_running()
    if site_munged:
        stop_munged()   # the fresh machine's case: the script starts munged itself
    watched, passed = socket.socketpair()
    read_end, write_end = os.pipe()
    os.set_inheritable(passed.fileno(), True)
    os.set_inheritable(write_end, True)
    cluster = tmp_path / "slurm"
    try:
        start = subprocess.run(["bash", SCRIPT, "start", str(cluster)], pass_fds=(passed.fileno(), write_end),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        passed.close()
        os.close(write_end)
        if start.returncode == 2:
            pytest.skip("one-node SLURM not available here: " + start.stderr.strip())
        assert start.returncode == 0, start.stderr
        assert at_end_of_file(watched), "a daemon started by slurm-local.sh holds the caller's socket"
        os.set_blocking(read_end, False)
        try:
            assert os.read(read_end, 1) == b"", "a daemon started by slurm-local.sh holds the caller's pipe"
        except BlockingIOError:
            pytest.fail("a daemon started by slurm-local.sh holds the caller's pipe")
        assert munged_running() and (cluster / "munged.started").exists()
        pids = [int((cluster / f"{d}.pid").read_text()) for d in ("slurmctld", "slurmd")]
    finally:
        subprocess.run(["bash", SCRIPT, "stop", str(cluster)], timeout=60)
    assert not munged_running(), "stop leaves the munged that start started"
    assert not (cluster / "munged.started").exists()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    if site_munged:
        subprocess.run(["runuser", "-u", "munge", "--", MUNGED], check=True)

#!/usr/bin/env python3
"""bench/floor.py -- how far "N services all running" is from what fork and exec alone take.

One command (as root, after `cargo build --release`):
    python3 bench/floor.py [--modes] [N] [REPS]

Times, interleaved, from the spawn of `unshare --pid --fork --mount-proc` until the N-th
service has reported its start on a FIFO (bench/svc.c, the service of bench.py), and for
pidvisor, from the SIGTERM sent to it then until the namespace is gone (its shutdown):
  launch          bench/launch.c as PID 1: N bare fork+exec, nothing else (the floor)
  pidvisor        pidvisor as PID 1 on a services folder of N such services
  pidvisor-nocg   the same with --no-cgroups
--modes adds bench/forkmodes.c as PID 1, a parent as heavy as pidvisor with N services
(descriptors, written heap) starting the same services four ways:
  fork-heavy      fork + exec, not waiting for the exec (pidvisor's way)
  vfork-heavy     vfork + exec, each exec waited for
  clonevm-heavy   clone(CLONE_VM) + exec, not waiting: no page tables copied, no
                  copy-on-write faults
  files-heavy     as clonevm, sharing the descriptor table until the child unshares
                  it with close_range: no descriptor copied or closed at exec
The C programs (the service, launch, forkmodes) are built statically with musl-gcc where
it is installed (Debian's musl-tools), else with cc: a static glibc program probes the
CPU at every start, a trap to the hypervisor on some VMs (see bench/svc.c); SVC_CC=cc
builds them with glibc all the same. PIDVISOR=/path measures another build;
PIDVISOR=/old:/new measures two (or more) builds interleaved, "pidvisor" and
"pidvisor-nocg" then for the first and "pidvisor@2"... for the others, which is how a
change is measured against the commit before it. Medians of REPS runs (default 5).
Before the runs, 4 GiB of memory is written and given back (WARM_GIB=N to change,
0 for none), as bench.py does before each phase: see `warm_memory` there.
"""
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from bench import warm_memory

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def default_pidvisor():
    target = subprocess.run([os.path.join(ROOT, "scripts/static-target")], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.strip()
    return os.path.join(ROOT, "target", target, "release/pidvisor")


def stop(proc, graceful):
    """Ends the namespace: pidvisor gets SIGTERM, so that it removes its cgroup folders
    (a SIGKILLed one leaves them behind on the host), and the ms from that SIGTERM until
    the namespace is gone are returned; the C programs, which handle no signal as PID 1,
    are killed (None)."""
    if graceful:
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as children:
                init = int(children.read().split()[0])
            t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
            os.kill(init, signal.SIGTERM)
            proc.wait(timeout=30)
            return (time.clock_gettime_ns(time.CLOCK_MONOTONIC) - t0) / 1e6
        except (OSError, IndexError, ValueError, subprocess.TimeoutExpired):
            pass
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return None


def measure(tmp, argv, n, graceful=False):
    """ms from spawning the namespace to the n-th start report, and (graceful: pidvisor)
    ms from the SIGTERM that follows to the namespace's end."""
    fifo = os.path.join(tmp, "fifo")
    if os.path.exists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keep = os.open(fifo, os.O_WRONLY)  # no EOF while services come and go
    env = dict(os.environ, BENCH_FIFO=fifo)
    t0 = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
                            + argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    data = b""
    deadline = time.monotonic() + 60
    while data.count(b"\n") < n and time.monotonic() < deadline:
        select.select([reader], [], [], 1)
        try:
            data += os.read(reader, 1 << 16)
        except BlockingIOError:
            pass
    shutdown = stop(proc, graceful)
    os.close(reader)
    os.close(keep)
    lines = data.split(b"\n")[:n]
    if len(lines) < n or not all(lines):
        return None, None
    return (max(int(line.split()[1]) for line in lines) - t0) / 1e6, shutdown


def show(times):
    """One line per variant: the median, then every sample."""
    for name, values in times.items():
        good = [v for v in values if v is not None]
        median = f"{statistics.median(good):.1f}" if good else "-"
        print(f"  {name:14s} {median:>8s}   {' '.join(f'{v:.1f}' for v in good)}")


def main():
    if os.geteuid() != 0:
        sys.exit("floor.py: run as root (PID namespaces)")
    args = [a for a in sys.argv[1:] if a != "--modes"]
    modes = len(args) < len(sys.argv) - 1
    n = int(args[0]) if args else 100
    reps = int(args[1]) if len(args) > 1 else 5
    pidvisors = (os.environ.get("PIDVISOR") or default_pidvisor()).split(":")
    pidvisor = pidvisors[0]
    tmp = tempfile.mkdtemp(prefix="pidvisor-floor-")
    try:
        svc = os.path.join(tmp, "run")
        launch = os.path.join(tmp, "launch")
        cc = os.environ.get("SVC_CC") or ("musl-gcc" if shutil.which("musl-gcc") else "cc")
        subprocess.run([cc, "-O2", "-static", "-o", svc, os.path.join(HERE, "svc.c")],
                       check=True)
        subprocess.run([cc, "-O2", "-static", "-o", launch,
                        os.path.join(HERE, "launch.c")], check=True)
        forkmodes = os.path.join(tmp, "forkmodes")
        if modes:
            subprocess.run([cc, "-O2", "-static", "-o", forkmodes,
                            os.path.join(HERE, "forkmodes.c")], check=True)
        services = os.path.join(tmp, "services.d")
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        for i in range(n):
            folder = os.path.join(services, f"s{i:04d}")
            os.makedirs(folder)
            os.link(svc, os.path.join(folder, "run"))
        common = ["--services-dir", services, "--init-dir", empty, "--finish-dir", empty,
                  "--socket", os.path.join(tmp, "control.sock")]
        variants = {
            "launch": [launch, str(n), svc],
            "pidvisor": [pidvisor] + common,
            "pidvisor-nocg": [pidvisor, "--no-cgroups"] + common,
        }
        for index, other in enumerate(pidvisors[1:], start=2):
            variants[f"pidvisor@{index}"] = [other] + common
        if modes:
            for mode in ("fork", "vfork", "clonevm", "files", "filessync", "filesvfork"):
                variants[f"{mode}-heavy"] = [forkmodes, mode, str(n), svc]
        warm_memory(int(os.environ.get("WARM_GIB", "4")))
        times = {name: [] for name in variants}
        shutdowns = {name: [] for name in variants if name.startswith("pidvisor")}
        for rep in range(reps):
            for name, argv in variants.items():
                graceful = name.startswith("pidvisor")
                start, shutdown = measure(tmp, argv, n, graceful)
                times[name].append(start)
                if graceful:
                    shutdowns[name].append(shutdown)
        print(f"{n} services all running, ms (median of {reps}; {' '.join(pidvisors)}; "
              f"C programs built with {cc}):")
        show(times)
        print(f"then SIGTERM to PID 1 until the namespace is gone, ms (median of {reps}):")
        show(shutdowns)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

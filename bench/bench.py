#!/usr/bin/env python3
"""bench/bench.py -- every figure of issue 5, pidvisor side by side with its peers.

One command (as root):   python3 bench/bench.py [--quick] [--no-build] [--out DIR]

Every init runs as PID 1 of its own PID namespace (`unshare --pid --fork --mount-proc
--kill-child INIT ...`), started from the host, measured from the host through /proc.
Peers: tini, tini-static, dumb-init, catatonit (one child), s6 (s6-svscan +
s6-supervise), runit (runsvdir + runsv), supervisord (supervisor), all from Debian; the
script installs whatever is missing with apt-get. pidvisor runs in two roles: "pidvisor"
with a main command (against the one-child inits) and "pidvisor-svc" with a services.d
folder (against the supervisors); it is the default build, static musl (static glibc
where the musl target cannot be had: scripts/static-target). "pidvisor-glibc", the same
source built for x86_64-unknown-linux-gnu (glibc linked statically, the fallback), joins
the one-child rows for comparison (--no-glibc leaves it out).

Every service, and every main command, is bench/svc.c compiled statically (see there):
it reports each start as one line on a FIFO, with a CLOCK_MONOTONIC timestamp, so that
"all 100 services running" and "the crashed service runs again" are timed from the
service's own first action, not by polling. Services are told apart from the
supervisor's own processes by their comm name, "run".

Before each phase, 4 GiB of fresh memory is written and given back (--warm-gib N, 0 for
none): on a VM whose host takes back memory the guest leaves free, the first write to
such a page costs several times more, and a phase would otherwise pay for what the
phases before it freed (see warm_memory).

Phases, each interleaved (round robin over the inits, rotated by one every repetition):
  size      binary size on disk, linking (static = no ELF interpreter)
  idle      all inits started together with 1 child/service, then (supervisors only)
            with 100 services: VmRSS of PID 1, PSS summed over the supervisor's own
            processes, and their context switches over an idle window (30 s; quick 5 s)
  startup   `init svc true` against `svc true` with no init, each in a fresh namespace:
            the wall time of the whole run (fork of unshare to its exit)
  shutdown  one-child inits: SIGTERM to PID 1, child exits at once; time until the
            namespace is gone (unshare has reaped PID 1, which is after every process
            of the namespace has exited)
  scale     supervisors with N = 1, 10, 100, 1000 services (quick: 1, 10, 100): time
            from spawning unshare until every service has reported its start (and the
            same for the service run directly, the baseline), PSS of the supervisor's
            own processes, the restart latency of one service SIGKILLed after a stable
            run (> 1 s; pidvisor's stable-after is set to 1s for it: the default is 10s)
            from the kill to the new run's start -- with N services this is the event
            loop's delay -- and the shutdown time after SIGTERM
  crashloop one service per supervisor that exits 1 at once, every start recorded for
            20 s (quick 8 s), with each supervisor's default restart policy
  reap      bench/reap.pl as main command: 10,000 orphans (quick 2,000) exit at once;
            time until the last zombie is gone and PID 1's CPU time (one-child inits)
  logs      one service writes 500,000 numbered 100-byte lines (quick 200,000) as fast
            as it can; throughput as read from the init's stdout, every line checked
            (in order, intact, prefixed), against the same writer piped through `cat`

Output: a Markdown report on stdout (the machine, the table of medians with the ratio
pidvisor/peer and the target, the scale table, raw samples) and, in --out DIR (default
bench/results), report.md, samples.tsv, scale.tsv and crashloop.tsv for bench/plot.sh.
Progress goes to stderr. The full run takes about 10 minutes on 2 cores, --quick about
1.5 minutes. --only PHASE[,PHASE] runs some phases (for debugging the harness).
"""

import argparse
import mmap
import os
import platform
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

ONE_CHILD = ["pidvisor", "tini", "tini-static", "dumb-init", "catatonit"]
SUPERVISORS = ["pidvisor-svc", "s6", "runit", "supervisord"]
COLUMNS = ["pidvisor", "tini", "tini-static", "dumb-init", "catatonit", "s6", "runit",
           "supervisord"]
GLIBC = "x86_64-unknown-linux-gnu"
PEER_PACKAGES = {"tini": "tini", "tini-static": "tini", "dumb-init": "dumb-init",
                 "catatonit": "catatonit", "s6-svscan": "s6", "runsvdir": "runit",
                 "supervisord": "supervisor", "unshare": "util-linux", "cc": "gcc",
                 "musl-gcc": "musl-tools",
                 "perl": "perl"}


def log(msg):
    print(f"[bench] {time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def die(msg):
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def mono_ns():
    return time.monotonic_ns()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# ------------------------------------------------------------------ /proc helpers

def read_field(path, key):
    """Number after `key:` in a /proc "Key: value" file, or None."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def pid_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def ns_procs(init_pid):
    """Host pids of every process in init_pid's PID namespace."""
    ns = pid_ns(init_pid)
    if ns is None:
        return []
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and pid_ns(entry) == ns:
            out.append(int(entry))
    return out


def own_procs(init_pid):
    """The supervisor's own processes: everything in the namespace but the services."""
    return [p for p in ns_procs(init_pid) if comm(p) not in (None, "run")]


def host_pid(init_pid, inner_pid):
    """Host pid of the process that is `inner_pid` inside init_pid's PID namespace."""
    for p in ns_procs(init_pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("NSpid:"):
                        if int(line.split()[-1]) == inner_pid:
                            return p
                        break
        except OSError:
            pass
    return None


def ctxt(pid):
    v = read_field(f"/proc/{pid}/status", "voluntary_ctxt_switches")
    n = read_field(f"/proc/{pid}/status", "nonvoluntary_ctxt_switches")
    return None if v is None or n is None else v + n


def pss_kib(pids):
    total = 0
    for p in pids:
        v = read_field(f"/proc/{p}/smaps_rollup", "Pss")
        if v is None:
            return None
        total += v
    return total


def first_child(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except OSError:
        return None


# ------------------------------------------------------------------ start reports

class Fifo:
    """The FIFO on which every service (bench/svc.c) reports its starts."""

    def __init__(self, path):
        self.path = path
        os.mkfifo(path, 0o666)
        # Read-write, so that the FIFO never reports EOF between two writers.
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        self.buf = b""
        self.starts = []     # (ns, pid, name)

    def poll(self, timeout_s):
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout_s))
        if not r:
            return
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            parts = line.decode(errors="replace").split()
            if len(parts) >= 4 and parts[0] == "S":
                self.starts.append((int(parts[1]), int(parts[2]), parts[3]))

    def wait_for(self, count, timeout_s, name=None):
        """Waits until `count` starts (of service `name`, if given) have been reported."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = [s for s in self.starts if name is None or s[2] == name]
            if len(got) >= count:
                return got
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.poll(min(left, 0.5))

    def close(self):
        os.close(self.fd)


# ------------------------------------------------------------------ inits

class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.tmp = tempfile.mkdtemp(prefix="pidvisor-bench.")
        self.samples = []        # (metric, init, value)
        self.meta = {}           # (init, key) -> value
        self.running = {}        # instance id -> Ns
        self.seq = 0
        self.pids_cg = None
        self.svc = None
        self.pidvisor = None

    # ---- setup

    def install_missing(self):
        want = sorted({pkg for cmd, pkg in PEER_PACKAGES.items() if not shutil.which(cmd)})
        if not want:
            return
        log(f"installing {' '.join(want)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        cmd = ["apt-get", "install", "-y", "--no-install-recommends"] + want
        if subprocess.run(cmd, env=env, stdout=sys.stderr).returncode != 0:
            subprocess.run(["apt-get", "update"], env=env, stdout=sys.stderr, check=True)
            subprocess.run(cmd, env=env, stdout=sys.stderr, check=True)

    def build(self):
        if os.environ.get("PIDVISOR"):
            self.pidvisor = os.environ["PIDVISOR"]
        else:
            target = subprocess.run([os.path.join(ROOT, "scripts/static-target")],
                                    capture_output=True, text=True, cwd=ROOT,
                                    check=True).stdout.strip()
            self.pidvisor = os.path.join(ROOT, "target", target, "release/pidvisor")
            if not self.args.no_build:
                log(f"cargo build --release --target {target}")
                subprocess.run(["cargo", "build", "--release", "--target", target],
                               cwd=ROOT, stdout=sys.stderr, check=True)
        if not os.access(self.pidvisor, os.X_OK):
            die(f"no pidvisor binary at {self.pidvisor}")
        self.build_glibc()
        # Named "run" like every service's run file: see own_procs().
        os.mkdir(os.path.join(self.tmp, "bin"))
        self.svc = os.path.join(self.tmp, "bin", "run")
        # musl: a static glibc program's start-up probes the CPU (see svc.c), which on
        # some VMs would make the service, not the supervisor, the larger part of a start.
        self.svc_cc = "musl-gcc" if shutil.which("musl-gcc") else "cc"
        subprocess.run([self.svc_cc, "-O2", "-static", "-o", self.svc,
                        os.path.join(HERE, "svc.c")], check=True)
        self.empty = os.path.join(self.tmp, "empty")
        os.mkdir(self.empty)

    def build_glibc(self):
        """pidvisor built for static glibc (the fallback) as an extra column."""
        self.pidvisor_glibc = None
        if self.args.no_glibc or os.environ.get("PIDVISOR"):
            return
        path = os.path.join(ROOT, "target", GLIBC, "release/pidvisor")
        if path == self.pidvisor:
            return  # the default build already is the glibc one
        if not self.args.no_build:
            log(f"cargo build --release --target {GLIBC}")
            if subprocess.run(["cargo", "build", "--release", "--target", GLIBC], cwd=ROOT,
                              stdout=sys.stderr).returncode != 0:
                log("glibc build failed: no pidvisor-glibc column")
                return
        if os.access(path, os.X_OK):
            self.pidvisor_glibc = path
            ONE_CHILD.insert(1, "pidvisor-glibc")
            COLUMNS.insert(1, "pidvisor-glibc")

    def setup_pids_cgroup(self):
        """A pids cgroup holding only the reap test's namespace (see core.sh)."""
        base = None
        with open("/proc/mounts") as f:
            mounts = [line.split() for line in f]
        for m in mounts:
            if m[2] == "cgroup" and "pids" in m[3].split(","):
                base = m[1]
        if base is None:
            for m in mounts:
                if m[2] == "cgroup2":
                    try:
                        with open(os.path.join(m[1], "cgroup.subtree_control")) as f:
                            if "pids" in f.read().split():
                                base = m[1]
                    except OSError:
                        pass
                    break
        if base:
            path = os.path.join(base, f"pidvisor-bench.{os.getpid()}")
            try:
                os.mkdir(path)
                self.pids_cg = path
            except OSError:
                pass

    def cleanup(self):
        for ns in list(self.running.values()):
            ns.kill()
        if self.pids_cg:
            try:
                os.rmdir(self.pids_cg)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- samples

    def sample(self, metric, init, value):
        self.samples.append((metric, init, value))

    def values(self, metric, init):
        return [v for m, i, v in self.samples if m == metric and i == init]

    def med(self, metric, init):
        return median(self.values(metric, init))

    # ---- namespaces

    def one_child_argv(self, name):
        path = {"pidvisor": self.pidvisor,
                "pidvisor-glibc": self.pidvisor_glibc}.get(name) or shutil.which(name)
        if name in ("pidvisor", "pidvisor-glibc"):
            # No services folder, no init scripts: only the main command.
            return [path, "--services-dir", self.empty, "--init-dir", self.empty,
                    "--finish-dir", self.empty, "--"]
        if name == "dumb-init":
            return [path]
        return [path, "--"]

    def make_services(self, kind, n, modes=None, toml=None):
        """A service folder for supervisor `kind` with n services s0000..; returns argv."""
        modes = modes or {}
        toml = toml or {}
        self.seq += 1
        base = os.path.join(self.tmp, f"{kind}.{self.seq}")
        os.mkdir(base)
        dirs = os.path.join(base, "services")
        os.mkdir(dirs)
        names = [f"s{i:04d}" for i in range(n)]
        conf = ["[supervisord]", "nodaemon=true", "logfile=/dev/null",
                "logfile_maxbytes=0", "silent=true", f"pidfile={base}/supervisord.pid",
                "user=root", ""]
        for name in names:
            d = os.path.join(dirs, name)
            os.mkdir(d)
            os.link(self.svc, os.path.join(d, "run"))
            if name in modes:
                with open(os.path.join(d, "bench-mode"), "w") as f:
                    f.write(modes[name] + "\n")
            if kind == "pidvisor-svc" and name in toml:
                with open(os.path.join(d, "service.toml"), "w") as f:
                    f.write(toml[name])
            conf += [f"[program:{name}]", f"command={d}/run", f"directory={d}",
                     "autorestart=true",
                     "stdout_logfile=" + ("/dev/stdout" if name in modes and
                                          modes[name].startswith("spew") else "NONE"),
                     "stdout_logfile_maxbytes=0", "stderr_logfile=NONE", ""]
        if kind == "pidvisor-svc":
            return [self.pidvisor, "--services-dir", dirs, "--init-dir", self.empty,
                    "--finish-dir", self.empty]
        if kind == "s6":
            # -c: s6-svscan supervises at most 500 services by default.
            return [shutil.which("s6-svscan"), "-c", str(max(500, 2 * n)), dirs]
        if kind == "runit":
            return [shutil.which("runsvdir"), dirs]
        if kind == "supervisord":
            path = os.path.join(base, "supervisord.conf")
            with open(path, "w") as f:
                f.write("\n".join(conf))
            return [shutil.which("supervisord"), "-n", "-c", path]
        die(f"unknown supervisor {kind}")

    def start(self, init, argv, stdout=subprocess.DEVNULL, in_cgroup=False, env=None):
        """Starts argv as PID 1 of a new PID namespace; returns an Ns."""
        self.seq += 1
        fifo = Fifo(os.path.join(self.tmp, f"fifo.{self.seq}"))
        env = dict(os.environ, BENCH_FIFO=fifo.path, **(env or {}))
        cg = self.pids_cg if in_cgroup else None

        def enter_cgroup():
            if cg:
                with open(os.path.join(cg, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))

        # stderr to a file, never a pipe nobody reads: 1,000 services log more than a
        # pipe holds, and a blocked write would stall the init under test.
        err_path = os.path.join(self.tmp, f"stderr.{self.seq}")
        with open(err_path, "wb") as err:
            t0 = mono_ns()
            proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"] + argv,
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=err, env=env,
                preexec_fn=enter_cgroup if cg else None)
        ns = Ns(self, init, proc, fifo, t0)
        ns.err_path = err_path
        self.running[id(ns)] = ns
        return ns


class Ns:
    """One PID namespace: the `unshare` process, its PID 1 (host pids) and its FIFO."""

    def __init__(self, bench, init, proc, fifo, t0):
        self.bench, self.init, self.proc, self.fifo, self.t0 = bench, init, proc, fifo, t0
        self.pid1 = None
        deadline = time.monotonic() + 5
        while self.pid1 is None and time.monotonic() < deadline:
            self.pid1 = first_child(proc.pid)
            if self.pid1 is None:
                if proc.poll() is not None:
                    break
                time.sleep(0.002)
        if self.pid1 is None:
            self.kill()
            die(f"{init}: no PID 1 under unshare (exit status {proc.returncode})")

    def wait_starts(self, count, timeout_s=60, name=None):
        got = self.fifo.wait_for(count, timeout_s, name)
        if got is None:
            log(f"{self.init}: only {len(self.fifo.starts)} of {count} starts reported "
                f"within {timeout_s} s")
        return got

    def gone(self):
        return self.proc.poll() is not None

    def wait_gone(self, timeout_s):
        try:
            self.proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False

    def terminate_timed(self, timeout_s=30):
        """SIGTERM to PID 1; ms until the namespace is gone, or None."""
        t0 = mono_ns()
        os.kill(self.pid1, signal.SIGTERM)
        ok = self.wait_gone(timeout_s)
        t1 = mono_ns()
        self.kill()
        return (t1 - t0) / 1e6 if ok else None

    def kill(self):
        # pidvisor gets SIGTERM first, so that it removes its cgroup folders (a SIGKILLed
        # one leaves them in the host's hierarchy); the peers are simply killed.
        if not self.gone() and str(self.init).startswith("pidvisor"):
            try:
                os.kill(self.pid1, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.wait_gone(10)
        if not self.gone():
            try:
                os.kill(self.pid1, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if not self.wait_gone(10):
                self.proc.kill()
                self.proc.wait()
        self.fifo.close()
        self.bench.running.pop(id(self), None)


def damon_reclaim():
    """Whether a DAMON context pages out cold memory (some VMs run one): pages of the
    binaries and files a phase leaves untouched for a minute are then read back from the
    disk by the next phase, which a run should say."""
    base = "/sys/kernel/mm/damon/admin/kdamonds"
    try:
        states = [open(os.path.join(base, k, "state")).read().strip()
                  for k in sorted(os.listdir(base)) if k.isdigit()]
    except OSError:
        return "none"
    return ", ".join(f"kdamond {i} {state}" for i, state in enumerate(states)) or "none"


def warm_memory(gib):
    """Writes `gib` GiB of fresh anonymous memory and unmaps it; returns the seconds taken.

    On VMs whose memory the host backs lazily and takes back while the guest leaves it
    free (Firecracker here), the first write to such a page costs a fault in the host:
    ~11 us per 4 KiB page against ~1.5 us for a page the guest freed a moment before,
    and s6 took 2.3 s to start 1,000 services before such a write and 1.07 s after it.
    The pages written here are the ones the kernel hands out first after the unmap, so a
    phase that follows runs on memory the host backs, whatever the phases before it
    left, and the inits compare on equal terms."""
    size = gib << 30
    chunk = bytes(1 << 24)
    started = time.monotonic()
    with mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS) as memory:
        for offset in range(0, size, len(chunk)):
            memory[offset:offset + len(chunk)] = chunk
    return time.monotonic() - started


def host_procs():
    return sum(1 for e in os.listdir("/proc") if e.isdigit())


def rotation(items, rep):
    k = rep % len(items)
    return items[k:] + items[:k]


# ------------------------------------------------------------------ phases

def phase_size(b):
    for name in COLUMNS:
        if name == "pidvisor":
            paths = [b.pidvisor]
        elif name == "pidvisor-glibc":
            paths = [b.pidvisor_glibc]
        elif name == "s6":
            paths = [shutil.which("s6-svscan"), shutil.which("s6-supervise")]
        elif name == "runit":
            paths = [shutil.which("runsvdir"), shutil.which("runsv")]
        else:
            paths = [shutil.which(name)]
        paths = [os.path.realpath(p) for p in paths if p]
        size = sum(os.path.getsize(p) for p in paths)
        link = []
        for p in paths:
            with open(p, "rb") as f:
                head = f.read(4)
            if head != b"\x7fELF":
                link.append("script")
                continue
            out = subprocess.run(["readelf", "-lW", p], capture_output=True, text=True)
            link.append("dynamic" if "INTERP" in out.stdout else "static")
        b.meta[(name, "size")] = size
        b.meta[(name, "linking")] = "+".join(sorted(set(link)))
        b.meta[(name, "files")] = " + ".join(os.path.basename(p) for p in paths)


def phase_idle(b):
    window = 5 if b.quick else 30
    reps = 1 if b.quick else 3
    for n in (1, 100):
        inits = (ONE_CHILD + SUPERVISORS) if n == 1 else SUPERVISORS
        for rep in range(reps):
            order = rotation(inits, rep)
            log(f"idle, {n} service(s), run {rep + 1}/{reps}: {' '.join(order)}")
            nss = []
            for init in order:
                if init in ONE_CHILD:
                    argv = b.one_child_argv(init) + [b.svc, "idle"]
                else:
                    argv = b.make_services(init, n)
                nss.append(b.start(init, argv))
            for ns in nss:
                ns.wait_starts(n)
            time.sleep(1.0)    # let every init finish what it does after starting
            before = {}
            for ns in nss:
                procs = own_procs(ns.pid1)
                b.sample(f"rss_pid1_{n}", ns.init, read_field(f"/proc/{ns.pid1}/status",
                                                             "VmRSS"))
                b.sample(f"pss_{n}", ns.init, pss_kib(procs))
                b.sample(f"procs_{n}", ns.init, len(procs))
                before[ns.init] = (procs, sum(ctxt(p) or 0 for p in procs))
            time.sleep(window)
            for ns in nss:
                procs, c0 = before[ns.init]
                after = [ctxt(p) for p in procs]
                value = None if None in after else sum(after) - c0
                b.sample(f"wake_{n}", ns.init, value * 30 / window if value is not None
                         else None)
            for ns in nss:
                ns.kill()


def spawn_wait(argv):
    """Wall time in ms of running argv to its end (stdout/stderr to /dev/null)."""
    fa = [(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
          (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)]
    t0 = mono_ns()
    pid = os.posix_spawn(argv[0], argv, os.environ, file_actions=fa)
    _, status = os.waitpid(pid, 0)
    t1 = mono_ns()
    return (t1 - t0) / 1e6, status


def phase_startup(b):
    reps = 30 if b.quick else 200
    unshare = [shutil.which("unshare"), "--pid", "--fork", "--mount-proc", "--kill-child"]
    variants = ["direct"] + ONE_CHILD
    log(f"startup: {reps} interleaved runs of `init svc true` and `svc true`")
    for rep in range(reps):
        for init in rotation(variants, rep):
            pre = [] if init == "direct" else b.one_child_argv(init)
            ms, status = spawn_wait(unshare + pre + [b.svc, "true"])
            b.sample("startup_true", init, ms if status == 0 else None)
    sample_overheads(b, "startup_true", "startup_overhead", ONE_CHILD)


def sample_overheads(b, figure, overhead, inits):
    """For each init, the median of `figure` minus the child's own ("direct") median."""
    base = b.med(figure, "direct")
    for init in inits:
        m = b.med(figure, init)
        if m is not None and base is not None:
            b.sample(overhead, init, m - base)


def phase_shutdown(b):
    reps = 3 if b.quick else 10
    for rep in range(reps):
        order = rotation(ONE_CHILD + ["direct"], rep)
        log(f"shutdown, one child, run {rep + 1}/{reps}")
        for init in order:
            if init == "direct":
                # The floor: the child itself as PID 1, SIGKILLed (PID 1 ignores SIGTERM
                # without a handler); the time the kernel and unshare take to tear down.
                ns = b.start(init, [b.svc, "idle"])
                ns.wait_starts(1)
                time.sleep(0.2)
                t0 = mono_ns()
                os.kill(ns.pid1, signal.SIGKILL)
                ok = ns.wait_gone(10)
                b.sample("shutdown_1", init, (mono_ns() - t0) / 1e6 if ok else None)
                ns.kill()
                continue
            ns = b.start(init, b.one_child_argv(init) + [b.svc, "idle"])
            ns.wait_starts(1)
            time.sleep(0.2)
            b.sample("shutdown_1", init, ns.terminate_timed())


def phase_scale(b):
    counts = (1, 10, 100) if b.quick else (1, 10, 100, 1000)
    if b.args.counts:
        counts = tuple(int(c) for c in b.args.counts.split(","))
    stable_s = 1.2
    toml = {"s0000": 'stable-after = "1s"\n'}
    for n in counts:
        reps = 1 if b.quick else (2 if n >= 1000 else 4)
        for rep in range(reps):
            order = rotation(SUPERVISORS + (["direct"] if n == 1 else []), rep)
            log(f"scale, {n} service(s), run {rep + 1}/{reps}: {' '.join(order)}")
            for init in order:
                if init == "direct":
                    ns = b.start(init, [b.svc, "idle"])
                    got = ns.wait_starts(1)
                    if got:
                        b.sample("start_1", "direct", (got[0][0] - ns.t0) / 1e6)
                    ns.kill()
                    continue
                ns = b.start(init, b.make_services(init, n, toml=toml))
                got = ns.wait_starts(n, timeout_s=120)
                if not got:
                    ns.kill()
                    continue
                b.sample(f"start_{n}", init, (max(s[0] for s in got) - ns.t0) / 1e6)
                # The crash victim must have run stably (> 1 s) before it is killed.
                first = [s for s in got if s[2] == "s0000"][0]
                wait = first[0] / 1e9 + stable_s - time.monotonic()
                time.sleep(max(wait, 0.3))
                b.sample(f"pss_scale_{n}", init, pss_kib(own_procs(ns.pid1)))
                victim = host_pid(ns.pid1, first[1])
                t_kill = mono_ns()
                try:
                    os.kill(victim, signal.SIGKILL)
                except (TypeError, ProcessLookupError):
                    log(f"{init}: the service to crash is not there")
                again = ns.wait_starts(2, timeout_s=10, name="s0000")
                b.sample(f"restart_{n}", init,
                         (again[1][0] - t_kill) / 1e6 if again else None)
                time.sleep(0.3)
                b.sample(f"shutdown_{n}", init, ns.terminate_timed())
    sample_overheads(b, "start_1", "start_overhead_1", SUPERVISORS)


def phase_crashloop(b):
    window = 8 if b.quick else 20
    log(f"crash loop: one service that exits 1 at once, {window} s")
    nss = [b.start(init, b.make_services(init, 1, modes={"s0000": "crash"}))
           for init in SUPERVISORS]
    time.sleep(window)
    b.crashloop = {}
    for ns in nss:
        ns.fifo.poll(0)
        starts = [s[0] for s in ns.fifo.starts]
        b.crashloop[ns.init] = [(t - ns.t0) / 1e9 for t in starts if t - ns.t0 <= window * 1e9]
        b.sample("crashloop_starts", ns.init, len(b.crashloop[ns.init]))
        ns.kill()
    b.crashloop_window = window


def phase_reap(b):
    reps = 2 if b.quick else 5
    orphans = 2000 if b.quick else 10000
    b.orphans = orphans
    for rep in range(reps):
        for init in rotation(ONE_CHILD, rep):
            log(f"reap run {rep + 1}/{reps}: {init}, {orphans} orphans")
            out = os.path.join(b.tmp, "reap.out")
            with open(out, "w") as f:
                argv = b.one_child_argv(init) + [
                    "perl", os.path.join(HERE, "reap.pl"), str(orphans), "60"] + (
                    [os.path.join(b.pids_cg, "pids.current")] if b.pids_cg else [])
                ns = b.start(init, argv, stdout=f, in_cgroup=True,
                             env={"REAP_MODE": "zombies"})
                ns.wait_gone(180)
                ns.kill()
            with open(out) as f:
                line = next((ln for ln in f if ln.startswith("reap_ms=")), "")
            kv = dict(x.split("=", 1) for x in line.split() if "=" in x)
            for key, metric in (("reap_ms", "reap_ms"), ("cpu_ms", "reap_cpu_ms"),
                                ("sched_ms", "reap_sched_ms")):
                v = kv.get(key, "NA")
                b.sample(metric, init, None if v == "NA" else float(v))
            if "error" in kv or not line:
                log(f"{init}: reap failed: {line.strip() or 'no result'}")


def read_lines_timed(fd, want, timeout_s):
    """Reads from fd until `want` newlines; returns (data, t_first_ns, t_last_ns)."""
    chunks, lines, t_first = [], 0, None
    deadline = time.monotonic() + timeout_s
    while lines < want and time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 1.0)
        if not r:
            continue
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        if t_first is None:
            t_first = mono_ns()
        chunks.append(chunk)
        lines += chunk.count(b"\n")
    return b"".join(chunks), t_first, mono_ns()


def check_lines(data, want, prefix):
    """True if data is exactly lines 0..want-1 of svc's spew, each with prefix."""
    lines = data.split(b"\n")
    if lines[-1] != b"" or len(lines) - 1 != want:
        return False
    p = len(prefix)
    for i, line in enumerate(lines[:-1]):
        if line[:p] != prefix or len(line) != p + 99 or int(line[p:p + 8]) != i:
            return False
        body = line[p + 9:]
        if body[:3] != bytes(97 + (i + k) % 26 for k in range(9, 12)):
            return False
    return True


def phase_logs(b):
    reps = 2 if b.quick else 5
    count = 200000 if b.quick else 500000
    b.log_lines = count
    variants = ["cat", "pidvisor-svc", "supervisord"]
    for rep in range(reps):
        for init in rotation(variants, rep):
            log(f"log relay run {rep + 1}/{reps}: {init}, {count} lines")
            r, w = os.pipe()
            if init == "cat":
                proc = subprocess.Popen(
                    ["sh", "-c", f'"$0" spew {count} | cat', b.svc],
                    stdout=w, stdin=subprocess.DEVNULL)
                os.close(w)
                data, t0, t1 = read_lines_timed(r, count, 60)
                proc.wait()
                prefix = b""
            else:
                toml = {"s0000": 'restart = "never"\n'}
                argv = b.make_services(init, 1, modes={"s0000": f"spew {count}"},
                                       toml=toml)
                ns = b.start(init, argv, stdout=w)
                os.close(w)
                data, t0, t1 = read_lines_timed(r, count, 60)
                ns.kill()
                prefix = b"s0000 | " if init == "pidvisor-svc" else b""
            os.close(r)
            intact = check_lines(data, count, prefix)
            mb = count * 100 / 1e6
            b.sample("log_mb_s", init, mb / ((t1 - t0) / 1e9) if intact and t0 else None)
            if not intact:
                nlines = data.count(b"\n")
                log(f"{init}: log lines NOT intact ({nlines} lines read)")
    cat = b.med("log_mb_s", "cat")
    for init in ("pidvisor-svc", "supervisord"):
        m = b.med("log_mb_s", init)
        b.sample("log_vs_cat", init, m / cat if m and cat else None)


PHASES = {"size": phase_size, "idle": phase_idle, "startup": phase_startup,
          "shutdown": phase_shutdown, "scale": phase_scale, "crashloop": phase_crashloop,
          "reap": phase_reap, "logs": phase_logs}


# ------------------------------------------------------------------ report

def fmt_num(v, digits):
    if v is None:
        return "n/a"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(mine, theirs):
    if mine is None or theirs is None:
        return ""
    if mine == 0 and theirs == 0:
        return " (=)"
    if theirs == 0:
        return " (∞)"
    r = mine / theirs
    return f" ({r:.0f}×)" if r >= 10 else f" ({r:.2f}×)"


def report(b, out):
    # Each row: label, value getter per column (None: not measurable), digits,
    # target text, target check on pidvisor's value.
    def med_for(metric, svc_role=False):
        def get(col):
            init = "pidvisor-svc" if (col == "pidvisor" and svc_role) else col
            return b.med(metric, init)
        return get

    def meta(key):
        return lambda col: b.meta.get((col, key))

    def only(cols, getter):
        return lambda col: getter(col) if col in cols else None

    def per_service(col):
        # From the scale sweep, where each supervisor runs alone: in the idle phase two
        # pidvisor instances (main command, services) share their binary's pages, which
        # halves the PSS of each at 1 service and would inflate the difference.
        init = "pidvisor-svc" if col == "pidvisor" else col
        p1, p100 = b.med("pss_scale_1", init), b.med("pss_scale_100", init)
        return None if p1 is None or p100 is None else (p100 - p1) / 99

    sup_cols = ["pidvisor", "s6", "runit", "supervisord"]
    one_cols = ONE_CHILD
    n_orph = f"{getattr(b, 'orphans', 10000):,}"
    rows = [
        ("Binary on disk, KiB", lambda c: (b.meta.get((c, "size")) or 0) / 1024
         if (c, "size") in b.meta else None, 1, "≤ 700 KiB static", lambda v: v <= 700),
        ("Linking", meta("linking"), None, "static", None),
        ("RSS of PID 1, one child, KiB (VmRSS)",
         lambda c: b.med("rss_pid1_1", c), 0, "≤ 700 KiB", lambda v: v <= 700),
        ("PSS of the supervisor, 1 service, KiB",
         only(sup_cols, med_for("pss_scale_1", True)), 0, "", None),
        ("PSS of the supervisor, 100 services, KiB",
         only(sup_cols, med_for("pss_scale_100", True)), 0, "", None),
        ("Memory per extra service at 100 (PSS), KiB", only(sup_cols, per_service), 1,
         "≤ 8 KiB", lambda v: v <= 8),
        ("Processes of the supervisor, 100 services", only(sup_cols, med_for("procs_100", True)),
         0, "1", lambda v: v == 1),
        ("Wake-ups in 30 s idle, 1 child/service",
         lambda c: b.med("wake_1", c), 0, "0", lambda v: v == 0),
        ("Wake-ups in 30 s idle, 1 service (supervisor mode)",
         only(sup_cols, med_for("wake_1", True)), 0, "0", lambda v: v == 0),
        ("Wake-ups in 30 s idle, 100 services", only(sup_cols, med_for("wake_100", True)),
         0, "0", lambda v: v == 0),
        ("Start-up overhead, `init svc true` − `svc true`, ms",
         only(one_cols, med_for("startup_overhead")), 2, "≤ +0.3 ms", lambda v: v <= 0.3),
        ("Start-up overhead, 1 service running − run directly, ms",
         only(sup_cols, med_for("start_overhead_1", True)), 2, "", None),
        ("Start-up, 100 services all running, ms", only(sup_cols, med_for("start_100", True)),
         1, "≤ 30 ms", lambda v: v <= 30),
        ("Shutdown after SIGTERM, one child, ms", only(one_cols, med_for("shutdown_1")), 2,
         "≤ 1 ms", lambda v: v <= 1),
        ("Shutdown after SIGTERM, one child, over the floor (below), ms",
         only(one_cols, lambda c: None if b.med("shutdown_1", c) is None or
              b.med("shutdown_1", "direct") is None else
              b.med("shutdown_1", c) - b.med("shutdown_1", "direct")), 2, "", None),
        ("Shutdown after SIGTERM, 1 service, ms", only(sup_cols, med_for("shutdown_1", True)),
         2, "≤ 1 ms", lambda v: v <= 1),
        ("Shutdown after SIGTERM, 100 services, ms",
         only(sup_cols, med_for("shutdown_100", True)), 1, "≤ 20 ms", lambda v: v <= 20),
        (f"Reap {n_orph} orphans (zombies handed over at once): last gone, ms",
         only(one_cols, med_for("reap_ms")), 1, "≤ 2 ms", lambda v: v <= 2),
        (f"Reap {n_orph} orphans: PID 1 CPU, ms (schedstat)",
         only(one_cols, med_for("reap_sched_ms")), 1, "≤ 0.8× tini", "tini"),
        ("Restart after a stable run: death to next start, ms",
         only(sup_cols, med_for("restart_1", True)), 1, "≤ 5 ms", lambda v: v <= 5),
        ("Crash loop: starts in the first "
         f"{getattr(b, 'crashloop_window', 20)} s", only(sup_cols, med_for("crashloop_starts",
                                                                          True)),
         0, "backoff", None),
        ("Log relay with name prefix, MB/s", only(["pidvisor", "supervisord"],
                                                   med_for("log_mb_s", True)), 0, "", None),
        ("Log relay throughput ÷ plain `cat` pipe",
         only(["pidvisor", "supervisord"], med_for("log_vs_cat", True)), 2, "≥ 0.5",
         lambda v: v >= 0.5),
    ]
    lines = []
    lines.append("| Figure (median) | " + " | ".join(COLUMNS) + " | target | met |")
    lines.append("|---|" + "---:|" * len(COLUMNS) + "---|---|")
    for label, get, digits, target, check in rows:
        vals = {c: get(c) for c in COLUMNS}
        mine = vals["pidvisor"]
        cells = []
        for c in COLUMNS:
            v = vals[c]
            if digits is None:
                cells.append(v or "")
                continue
            if v is None:
                cells.append("–")
                continue
            cell = fmt_num(v, digits)
            # No ratio for differences near zero ("over the floor"): it would be noise.
            if c != "pidvisor" and isinstance(mine, (int, float)) and "floor" not in label:
                cell += ratio(mine, v)
            cells.append(cell)
        met = ""
        if check == "tini":
            t = vals.get("tini")
            if mine is not None and t:
                met = "yes" if mine <= 0.8 * t else "no"
        elif check and mine is not None:
            met = "yes" if check(mine) else "no"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {target} | {met} |")
    extra = []
    if "cat" in {i for _, i, _ in b.samples}:
        extra.append(f"Plain `cat` pipe: {fmt_num(b.med('log_mb_s', 'cat'), 0)} MB/s "
                     f"({getattr(b, 'log_lines', 0):,} lines of 100 bytes).")
    if b.med("startup_true", "direct") is not None:
        extra.append("`svc true` in a fresh PID namespace with no init: "
                     f"{b.med('startup_true', 'direct'):.2f} ms; with pidvisor "
                     f"{fmt_num(b.med('startup_true', 'pidvisor'), 2)} ms.")
    if b.med("shutdown_1", "direct") is not None:
        extra.append("Floor of the shutdown rows: the child alone as PID 1, SIGKILLed, "
                     f"namespace gone after {b.med('shutdown_1', 'direct'):.2f} ms.")
    if b.med("start_1", "direct") is not None:
        extra.append(f"Service run directly as PID 1, first action after "
                     f"{b.med('start_1', 'direct'):.2f} ms (baseline of the start-up rows).")

    scale = []
    counts = sorted({int(m.split("_")[-1]) for m, _, _ in b.samples
                     if m.startswith("pss_scale_")})
    if counts:
        scale.append("| services | " + " | ".join(
            f"{s} start-up ms | {s} PSS KiB | {s} restart (loop delay) ms | {s} shutdown ms"
            for s in ["pidvisor"]) + " | s6 PSS KiB | runit PSS KiB | supervisord PSS KiB |")
        scale.append("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for n in counts:
            p = "pidvisor-svc"
            scale.append(
                f"| {n:,} | {fmt_num(b.med(f'start_{n}', p), 1)} | "
                f"{fmt_num(b.med(f'pss_scale_{n}', p), 0)} | "
                f"{fmt_num(b.med(f'restart_{n}', p), 2)} | "
                f"{fmt_num(b.med(f'shutdown_{n}', p), 1)} | "
                f"{fmt_num(b.med(f'pss_scale_{n}', 's6'), 0)} | "
                f"{fmt_num(b.med(f'pss_scale_{n}', 'runit'), 0)} | "
                f"{fmt_num(b.med(f'pss_scale_{n}', 'supervisord'), 0)} |")
        scale.append("")
        scale.append("Same sweep, every supervisor (start-up ms / restart ms / shutdown ms):")
        scale.append("")
        scale.append("| services | " + " | ".join(SUPERVISORS) + " |")
        scale.append("|---:|" + "---:|" * len(SUPERVISORS))
        for n in counts:
            scale.append(f"| {n:,} | " + " | ".join(
                f"{fmt_num(b.med(f'start_{n}', s), 1)} / {fmt_num(b.med(f'restart_{n}', s), 1)}"
                f" / {fmt_num(b.med(f'shutdown_{n}', s), 1)}" for s in SUPERVISORS) + " |")

    cpu = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/loadavg") as f:
        load = " ".join(f.read().split()[:3])
    commit, dirty = b.source
    versions = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}, ", "tini", "dumb-init",
         "catatonit", "s6", "runit", "supervisor"], capture_output=True, text=True).stdout
    damon = damon_reclaim()
    head = [
        "# pidvisor benchmark",
        "",
        f"- Date: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}",
        f"- Machine: {os.cpu_count()} CPUs, {cpu}, kernel {platform.release()}, "
        f"load average at the end {load}",
        f"- DAMON proactive reclaim (cold pages paged out, which the next run faults back "
        f"in): {damon}",
        f"- Memory written and given back before each phase (a VM's host backs it then): "
        f"{b.args.warm_gib} GiB",
        f"- Processes on the host (other work included): {b.host_procs_start:,} at the start, "
        f"{host_procs():,} at the end; kill(-1) and fork costs grow with them",
        f"- pidvisor: commit {commit}{' (working tree modified)' if dirty else ''}, "
        f"{b.pidvisor}",
        f"- Peers (Debian): {versions.rstrip(', ')}",
        f"- Service and main command: bench/svc.c, static, built with `{b.svc_cc}`",
        f"- Mode: {'quick' if b.quick else 'full'}; phases: {', '.join(b.phases)}",
        "",
    ]
    text = "\n".join(head + lines + [""] + [
        "(x×) = pidvisor ÷ that peer, from the same run: below 1, pidvisor is smaller, "
        "faster or quieter. pidvisor's column is pidvisor with a main command in the "
        "one-child rows and with a services folder in the supervisor rows. "
        "pidvisor is the default build (static musl where that target can be had); "
        "pidvisor-glibc is the same source built with `--target x86_64-unknown-linux-gnu`, "
        "glibc linked statically (the fallback). "
        "– = not applicable or not measured."] + [""] + extra + [""] +
        (["## Scale (pidvisor; PSS of every supervisor for comparison)", ""] + scale + [""]
         if scale else []) + ["## Raw samples", ""] + raw_samples(b))
    print(text)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(out, "samples.tsv"), "w") as f:
        f.write("metric\tinit\tvalue\n")
        for m, i, v in b.samples:
            f.write(f"{m}\t{i}\t{'NA' if v is None else v}\n")
    if counts:
        with open(os.path.join(out, "scale.tsv"), "w") as f:
            f.write("services\t" + "\t".join(f"{s}_pss_kib" for s in SUPERVISORS) + "\t" +
                    "\t".join(f"{s}_start_ms" for s in SUPERVISORS) + "\t" +
                    "\t".join(f"{s}_restart_ms" for s in SUPERVISORS) + "\n")
            for n in counts:
                vals = [b.med(f"pss_scale_{n}", s) for s in SUPERVISORS] + \
                       [b.med(f"start_{n}", s) for s in SUPERVISORS] + \
                       [b.med(f"restart_{n}", s) for s in SUPERVISORS]
                f.write(f"{n}\t" + "\t".join("NaN" if v is None else f"{v:.3f}"
                                             for v in vals) + "\n")
    if getattr(b, "crashloop", None):
        with open(os.path.join(out, "crashloop.tsv"), "w") as f:
            f.write("supervisor\tindex\tstart_s\n")
            for k, init in enumerate(SUPERVISORS):
                for t in b.crashloop.get(init, []):
                    f.write(f"{init}\t{k}\t{t:.4f}\n")
    log(f"report and data in {out}")


def raw_samples(b):
    out = []
    metrics = []
    for m, _, _ in b.samples:
        if m not in metrics:
            metrics.append(m)
    for m in metrics:
        parts = []
        for init in ["direct", "cat"] + ONE_CHILD + SUPERVISORS:
            vs = b.values(m, init)
            if vs:
                parts.append(f"{init}: " + " ".join("NA" if v is None else f"{v:.4g}"
                                                     for v in vs))
        out.append(f"- {m}: " + "; ".join(parts))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer and shorter runs (< 2 min)")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build")
    ap.add_argument("--out", default=os.path.join(HERE, "results"),
                    help="folder for report.md and the data files (default bench/results)")
    ap.add_argument("--no-glibc", action="store_true",
                    help="no pidvisor-glibc column (the static glibc build, the fallback)")
    ap.add_argument("--counts", help="service counts of the scale sweep (default 1,10,100,1000;"
                    " quick 1,10,100)")
    ap.add_argument("--warm-gib", type=int, default=4,
                    help="GiB of memory written and given back before each phase, so that "
                         "every phase runs on memory a VM's host backs (0: none; default 4)")
    ap.add_argument("--only", help="comma-separated phases: " + ",".join(PHASES))
    args = ap.parse_args()
    if os.geteuid() != 0:
        die("run as root (unshare --pid needs it)")
    b = Bench(args)
    # The source as the run starts, which is what the build is made of: edits made while
    # the run goes on do not count.
    b.source = (subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                               capture_output=True, text=True).stdout.strip() or "?",
                subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True,
                               text=True).stdout)
    b.phases = args.only.split(",") if args.only else list(PHASES)
    for p in b.phases:
        if p not in PHASES:
            die(f"unknown phase {p}")

    def on_signal(signo, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    b.host_procs_start = host_procs()
    try:
        b.install_missing()
        b.build()
        b.setup_pids_cgroup()
        for p in b.phases:
            if args.warm_gib:
                took = warm_memory(args.warm_gib)
                log(f"{args.warm_gib} GiB of memory written and given back in {took:.1f} s")
            PHASES[p](b)
        log(f"done in {time.monotonic() - started:.0f} s")
        report(b, args.out)
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()

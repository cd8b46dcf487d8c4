#!/usr/bin/env bash
# bench/core.sh -- core benchmark: pidvisor against tini, tini-static, dumb-init, catatonit.
#
# What it measures, for each init running as PID 1 of its own PID namespace
# (`unshare --pid --fork --mount-proc --kill-child INIT ... CMD`), as root:
#
#   1. Binary size on disk: pidvisor's static release binary, each peer's installed binary
#      (symlinks resolved), its linking (static = no ELF interpreter), and for the dynamic
#      ones the size including the shared libraries `ldd` lists (libc, ld.so).
#   2. Idle memory: VmRSS from /proc/<init>/status and Pss from /proc/<init>/smaps_rollup,
#      read from the host side, with `sleep infinity` as the child, once that child runs.
#      The init's host pid is the child of the `unshare` process
#      (/proc/<unshare>/task/<unshare>/children).
#   3. Reaping N=10,000 orphans that all exit at once: bench/reap.pl is the main command;
#      it makes the orphans, releases them together and reports the time until the last
#      zombie is gone plus PID 1's CPU time (utime+stime ticks, and schedstat) spent on it.
#      One namespace at a time, waited for until it is gone: pid_max may be 32768.
#   4. Idle wake-ups: voluntary+nonvoluntary context switches of the init's host pid over
#      a 5-second window, `sleep infinity` as the child.
#
# Interleaving: every repetition goes round-robin over all inits, starting one init later
# each time, so that machine noise hits all alike. Tests 2 and 4 share the repetitions: all
# five inits are started together (idle, so they do not disturb each other), their memory
# is read, then one 5-second window counts the wake-ups of all five.
#
# Output: the machine, the date and the versions, then a Markdown table of medians with the
# ratio pidvisor/peer, then the raw samples. Progress goes to stderr.
#
# Usage: bench/core.sh [--quick] [--no-build]
#   --quick     fewer repetitions and N=2,000: the whole run takes well under a minute
#   --no-build  do not run `cargo build --release`; measure the binary that is there
#   PIDVISOR=/path/to/pidvisor overrides the binary (implies --no-build).
#
# It installs the peers (and perl) with apt-get when they are missing, and cleans up every
# namespace it started, also on error or Ctrl-C: SIGKILL to a namespace's PID 1 kills the
# whole namespace, and --kill-child kills PID 1 if its `unshare` dies. For test 3 it
# creates a pids cgroup (pidvisor-bench.<pid>) and removes it at the end.

set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")

# ---------------------------------------------------------------- options and settings

quick=0
build=1
for arg in "$@"; do
    case $arg in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) echo "core.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
    esac
done

if ((quick)); then
    idle_runs=3      # repetitions of tests 2 and 4
    reap_runs=3      # repetitions of test 3, per init
    orphans=2000
else
    idle_runs=5
    reap_runs=7      # the reaping cost scatters widely from run to run: see reap.pl
    orphans=10000
fi
wake_window_s=5      # test 4 window
reap_limit_s=60      # reap.pl gives up (reports NA) after this long
inits=(pidvisor tini tini-static dumb-init catatonit)

log() { printf '[core.sh] %s\n' "$*" >&2; }
die() { printf 'core.sh: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- cleanup

tmp=$(mktemp -d /tmp/pidvisor-bench.XXXXXX)
declare -A upid=() ipid=()    # per running namespace: host pid of `unshare`, of its PID 1
pids_cg=""                    # our pids cgroup (test 3 only): start_ns puts namespaces in it

# Kills the namespace of init $1 (SIGKILL to its PID 1) and waits until `unshare` is gone,
# which is after every process of the namespace has been reaped.
stop_ns() {
    local name=$1
    local u=${upid[$name]:-} i=${ipid[$name]:-}
    [[ -n $u ]] || return 0
    if [[ -n $i ]]; then
        # `unshare` then reaps its PID 1 and exits: no zombie is left to the host's init.
        kill -KILL "$i" 2>/dev/null || true
        for _ in $(seq 200); do
            kill -0 "$u" 2>/dev/null || break
            sleep 0.05
        done
    fi
    kill -KILL "$u" 2>/dev/null || true    # only if still there; --kill-child ends PID 1
    wait "$u" 2>/dev/null || true
    unset "upid[$name]" "ipid[$name]"
}

cleanup() {
    local name
    for name in "${!upid[@]}"; do stop_ns "$name"; done
    if [[ -n $pids_cg ]]; then rmdir "$pids_cg" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- prerequisites

[[ $EUID -eq 0 ]] || die "run as root (unshare --pid needs it)"

install_missing() {
    local pkgs=()
    command -v tini >/dev/null || pkgs+=(tini)
    command -v tini-static >/dev/null || pkgs+=(tini)
    command -v dumb-init >/dev/null || pkgs+=(dumb-init)
    command -v catatonit >/dev/null || pkgs+=(catatonit)
    command -v unshare >/dev/null || pkgs+=(util-linux)
    command -v ldd >/dev/null || pkgs+=(libc-bin)
    perl -MTime::HiRes -e 1 2>/dev/null || pkgs+=(perl)
    ((${#pkgs[@]})) || return 0
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    command -v apt-get >/dev/null || die "missing ${pkgs[*]} and no apt-get to install them"
    log "installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${pkgs[@]}" >&2; then
        apt-get update >&2
        apt-get install -y --no-install-recommends "${pkgs[@]}" >&2
    fi
}
install_missing

build_note=""
if [[ -n ${PIDVISOR:-} ]]; then
    pidvisor_bin=$PIDVISOR
else
    target=$("$root/scripts/static-target")
    pidvisor_bin=$root/target/$target/release/pidvisor
    if ((build)); then
        log "cargo build --release --target $target"
        if ! (cd "$root" && cargo build --release --target "$target" >&2); then
            [[ -x $pidvisor_bin ]] || die "cargo build --release failed and there is no binary"
            build_note="WARNING: cargo build --release failed; measured the existing binary"
            log "$build_note"
        fi
    fi
fi
[[ -x $pidvisor_bin ]] || die "no pidvisor binary at $pidvisor_bin (build it, or set PIDVISOR)"

pid_max=$(cat /proc/sys/kernel/pid_max)
nprocs_now=$(find /proc -maxdepth 1 -name '[0-9]*' | wc -l)
((pid_max - nprocs_now > orphans + 1000)) ||
    die "pid_max=$pid_max leaves too few pids for $orphans orphans"

# Path of init $1's binary, symlinks resolved.
init_bin() {
    case $1 in
        pidvisor) readlink -f "$pidvisor_bin" ;;
        *) readlink -f "$(command -v "$1")" ;;
    esac
}

# Sets the array `argv` to init $1's command line up to (not including) the main command.
init_argv() {
    case $1 in
        pidvisor) argv=("$pidvisor_bin" --) ;;
        tini | tini-static | catatonit) argv=("$(command -v "$1")" --) ;;
        dumb-init) argv=("$(command -v dumb-init)") ;;
        *) die "unknown init $1" ;;
    esac
}

# ---------------------------------------------------------------- helpers

# The inits in round-robin order for repetition $1 (0-based): rotated by one each time.
rotation() {
    local k=$(($1 % ${#inits[@]}))
    printf '%s\n' "${inits[@]:k}" "${inits[@]:0:k}"
}

sample() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$tmp/samples.tsv"; }
meta() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$tmp/meta.tsv"; }

# First pid in a /proc/.../children file, or nothing.
first_child() {
    local kids
    kids=$(cat "$1" 2>/dev/null || true)
    kids=${kids# }
    printf '%s' "${kids%% *}"
}

# Starts init $1 as PID 1 of a new PID namespace with the main command "${@:2}", stdout
# and stderr to $tmp/$1.{out,err}; sets upid[$1] and ipid[$1] (host pids).
start_ns() {
    local name=$1 u i=""
    shift
    local argv
    init_argv "$name"
    (
        if [[ -n $pids_cg ]]; then echo "$BASHPID" >"$pids_cg/cgroup.procs"; fi
        exec unshare --pid --fork --mount-proc --kill-child "${argv[@]}" "$@"
    ) >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null &
    u=$!
    upid[$name]=$u
    for _ in $(seq 500); do
        i=$(first_child "/proc/$u/task/$u/children")
        [[ -n $i ]] && break
        sleep 0.01
    done
    [[ -n $i ]] || die "$name: no PID 1 under unshare ($(cat "$tmp/$name.err"))"
    ipid[$name]=$i
}

# Waits until init $1's PID 1 runs its own binary and has a child running `$2`.
wait_for_child() {
    local name=$1 comm=$2 c bin
    bin=$(init_bin "$name")
    for _ in $(seq 500); do
        if [[ $(readlink "/proc/${ipid[$name]}/exe" 2>/dev/null) == "$bin" ]]; then
            c=$(first_child "/proc/${ipid[$name]}/task/${ipid[$name]}/children")
            [[ -n $c && $(cat "/proc/$c/comm" 2>/dev/null) == "$comm" ]] && return 0
        fi
        sleep 0.01
    done
    die "$name: its child $comm did not start ($(cat "$tmp/$name.err"))"
}

# Field $2 (e.g. VmRSS) of a "Key: value" file $1, number only.
field() { awk -v k="$2:" '$1 == k { print $2; exit }' "$1"; }

ctxt_switches() {
    local s=/proc/$1/status
    echo $(($(field "$s" voluntary_ctxt_switches) + $(field "$s" nonvoluntary_ctxt_switches)))
}

# ---------------------------------------------------------------- 1. binary size

for name in "${inits[@]}"; do
    bin=$(init_bin "$name")
    meta "$name" path "$bin"
    meta "$name" size_bytes "$(stat -c %s "$bin")"
    # Static means no PT_INTERP program header (static-pie included).
    linking=$(perl -e '
        open my $f, "<:raw", $ARGV[0] or die; read $f, my $h, 64;
        my ($phoff, $phentsize, $phnum) = unpack "x32 Q x14 S S", $h;
        for my $i (0 .. $phnum - 1) {
            seek $f, $phoff + $i * $phentsize, 0; read $f, my $p, 4;
            if (unpack("L", $p) == 3) { print "dynamic"; exit }
        }
        print "static"' "$bin")
    meta "$name" linking "$linking"
    total=$(stat -c %s "$bin")
    if [[ $linking == dynamic ]]; then
        libs=()
        while read -r lib; do
            libs+=("$(basename "$lib")")
            total=$((total + $(stat -c %s "$(readlink -f "$lib")")))
        done < <(ldd "$bin" | grep -o '/[^ ]*' | sort -u)
        meta "$name" libs "${libs[*]}"
    fi
    meta "$name" size_with_libs "$total"
done

# ---------------------------------------------------------------- 2 and 4. idle memory, wake-ups

for ((rep = 0; rep < idle_runs; rep++)); do
    mapfile -t order < <(rotation "$rep")
    log "idle run $((rep + 1))/$idle_runs: ${order[*]}"
    for name in "${order[@]}"; do start_ns "$name" sleep infinity; done
    for name in "${order[@]}"; do wait_for_child "$name" sleep; done
    sleep 0.3    # let each init finish whatever it does after starting its child
    declare -A c0=()
    for name in "${order[@]}"; do
        p=${ipid[$name]}
        sample rss_kib "$name" "$(field "/proc/$p/status" VmRSS)"
        sample pss_kib "$name" "$(field "/proc/$p/smaps_rollup" Pss)"
        c0[$name]=$(ctxt_switches "$p")
    done
    sleep "$wake_window_s"
    for name in "${order[@]}"; do
        sample wakeups "$name" $(($(ctxt_switches "${ipid[$name]}") - ${c0[$name]}))
    done
    for name in "${order[@]}"; do stop_ns "$name"; done
done

# ---------------------------------------------------------------- 3. reaping orphans

# A pids cgroup of our own that holds the namespace under test and nothing else: its
# pids.current counts the namespace's processes, zombies included until they are reaped,
# so reap.pl can poll it with one cheap read (instead of listing /proc, ~5 ms per poll
# with 10,000 entries). A cgroup v1 pids hierarchy, or cgroup v2 with pids already enabled
# in the root's subtree_control; without either, reap.pl falls back to listing /proc.
setup_pids_cgroup() {
    local base
    base=$(awk '$3 == "cgroup" && $4 ~ /(^|,)pids(,|$)/ { print $2; exit }' /proc/mounts)
    if [[ -z $base ]]; then
        base=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
        [[ -n $base ]] || return 0
        grep -qw pids "$base/cgroup.subtree_control" 2>/dev/null || return 0
    fi
    if mkdir "$base/pidvisor-bench.$$" 2>/dev/null; then pids_cg=$base/pidvisor-bench.$$; fi
}
setup_pids_cgroup
if [[ -n $pids_cg ]]; then
    reap_probe="pids.current of a pids cgroup holding only the namespace (O(1), polled every 0.5 ms by a SCHED_FIFO poller)"
else
    reap_probe="entries of the namespace's /proc (~5 ms per poll at 10,000; every 2 ms)"
fi

for ((rep = 0; rep < reap_runs; rep++)); do
    mapfile -t order < <(rotation "$rep")
    for name in "${order[@]}"; do
        log "reap run $((rep + 1))/$reap_runs: $name, $orphans orphans"
        start_ns "$name" perl "$here/reap.pl" "$orphans" "$reap_limit_s" \
            ${pids_cg:+"$pids_cg/pids.current"}
        deadline=$((SECONDS + reap_limit_s + 60))
        while kill -0 "${upid[$name]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
        if kill -0 "${upid[$name]}" 2>/dev/null; then
            log "$name: reap run still going after $((reap_limit_s + 60)) s, killed"
        fi
        stop_ns "$name"    # waits until the whole namespace is gone
        line=$(grep -m1 '^reap_ms=' "$tmp/$name.out" || true)
        if [[ -z $line ]]; then
            log "$name: no result; stderr: $(head -c 300 "$tmp/$name.err")"
            line="reap_ms=NA cpu_ms=NA sched_ms=NA switches=NA error=no_result"
        fi
        for kv in $line; do
            case $kv in
                reap_ms=*) sample reap_ms "$name" "${kv#*=}" ;;
                cpu_ms=*) sample reap_cpu_ms "$name" "${kv#*=}" ;;
                sched_ms=*) sample reap_sched_ms "$name" "${kv#*=}" ;;
                switches=*) sample reap_switches "$name" "${kv#*=}" ;;
                error=*) log "$name: ${kv#*=}"; sample reap_error "$name" "${kv#*=}" ;;
            esac
        done
    done
done

# ---------------------------------------------------------------- report

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(GIT_OPTIONAL_LOCKS=0 git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit+=" (working tree modified)"
fi
peer_versions=$(dpkg-query -W -f '${Package} ${Version}, ' tini dumb-init catatonit 2>/dev/null || true)

echo "# pidvisor core benchmark"
echo
echo "- Date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "- Machine: $(nproc) CPUs, ${cpu_model:-unknown CPU}, kernel $(uname -r), $(awk '/MemTotal/ { printf "%.1f GiB RAM", $2 / 1048576 }' /proc/meminfo), pid_max $pid_max, CLK_TCK $(getconf CLK_TCK)"
echo "- pidvisor: $("$pidvisor_bin" --version 2>/dev/null || echo '?'), commit $commit, binary built $(date -u -r "$pidvisor_bin" '+%Y-%m-%d %H:%M UTC')"
echo "- Peers: ${peer_versions%, }"
echo "- Mode: $( ((quick)) && echo quick || echo full): $idle_runs idle runs (memory, ${wake_window_s}-s wake-up window), $reap_runs reap runs of $orphans orphans per init, round-robin"
echo "- Reap: done when N processes are gone, counted by $reap_probe"
[[ -z $build_note ]] || echo "- $build_note"
echo
perl "$here/report.pl" "$tmp/meta.tsv" "$tmp/samples.tsv" "$orphans" "${inits[@]}"

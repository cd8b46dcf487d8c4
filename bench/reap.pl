#!/usr/bin/perl
# reap.pl N LIMIT_S [PIDS_CURRENT] -- main command of the orphan-reaping benchmark
# (bench/core.sh, test 3).
#
# Runs as the init's child inside a fresh PID namespace (with its own /proc) and measures
# how fast the init (PID 1) reaps N orphans that all exit at the same moment:
#
#   1. fork a "maker"; the maker forks N grandchildren that close the pipe's write end and
#      block in read() on the pipe, then the maker exits. Once we have waitpid()ed it,
#      all N grandchildren are orphans, re-parented to PID 1.
#   2. wait until the namespace holds exactly PID 1, us and the N orphans, and let things
#      settle so that every orphan sleeps in read().
#   3. baseline: PID 1's CPU time (utime+stime in /proc/1/stat, and the nanosecond first
#      field of /proc/1/schedstat) and the clock; then close the write end, which only we
#      hold, so every orphan sees EOF and exits at once.
#   4. poll until N processes are gone (a zombie counts until it is reaped), sleeping
#      0.5 ms between polls; then read PID 1's CPU time again, and how often it was
#      switched out meanwhile (its context switches: about its wake-ups).
#
# How step 4 counts: with PIDS_CURRENT (the pids.current file of a pids cgroup that holds
# this namespace and nothing else; core.sh sets one up) a poll is one O(1) read, and the
# poller runs as SCHED_FIFO so that it sees the end promptly. Without it, the count is
# the number of numeric entries of /proc, which is exact too but costs ~5 ms of CPU per
# poll with 10,000 entries, so polls are spaced 2 ms apart, the poller competes for the
# CPU with the init under test, and the end time is coarser. Either way the end is
# confirmed on /proc.
#
# Why PID 1's CPU time scatters widely between identical runs (about 10x, for every init):
# waitpid(-1, WNOHANG) walks PID 1's whole list of children, so each wake-up that finds
# no zombie left costs O(orphans still alive), ~0.5 ms at 10,000. The orphans take about
# a second to exit on 2 CPUs, and how many times PID 1 gets woken meanwhile (the switches
# column) depends on scheduling luck. All four peers and pidvisor reap the same way
# (SIGCHLD, then waitpid until it returns 0), so compare medians over several runs.
#
# With REAP_MODE=zombies in the environment (bench/bench.py), the N grandchildren exit at
# once instead and the maker keeps them as zombies; the clock starts when the maker is
# told to exit, which hands all N zombies to PID 1 in one go. That is the issue's "reap
# 10,000 orphans: last zombie gone after the maker ends": it times the init's reaping
# alone, not the orphans' own exits. The poller then sleeps 0.1 ms between polls.
#
# Prints one line: "reap_ms=... cpu_ms=... sched_ms=... switches=... polls=... probe=..."
# (cpu_ms from clock ticks: 10 ms granularity at CLK_TCK 100; sched_ms "NA" if schedstat
# is missing), or "reap_ms=NA ... error=..." if something failed, e.g. the init did not
# reap the orphans within LIMIT_S seconds.

use strict;
use warnings;
use POSIX ();
use Time::HiRes qw(time sleep);

my $n        = shift // 10000;
my $limit_s  = shift // 60;        # give up (report NA) after this many seconds
my $pids_file = shift;             # optional: pids.current of our own pids cgroup
my $tck      = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

# Number of processes in this PID namespace (zombies included until reaped).
sub nprocs_procfs {
    opendir(my $d, '/proc') or die "reap.pl: /proc: $!";
    my $c = grep { /^\d+$/ } readdir($d);
    closedir($d);
    return $c;
}

# The count that step 4 polls, and the time between two polls.
my ($probe, $poll_s, $count_now);
if (defined $pids_file && open(my $t, '<', $pids_file)) {
    close($t);
    ($probe, $poll_s) = ('cgroup', 0.0005);
    $count_now = sub {
        open(my $f, '<', $pids_file) or die "reap.pl: $pids_file: $!";
        my $c = <$f>;
        close($f);
        return $c + 0;
    };
} else {
    ($probe, $poll_s, $count_now) = ('procfs', 0.002, \&nprocs_procfs);
}

# PID 1's context switches (voluntary + nonvoluntary): its wake-ups, near enough.
sub init_switches {
    open(my $f, '<', '/proc/1/status') or die "reap.pl: /proc/1/status: $!";
    my $n = 0;
    while (<$f>) { $n += $1 if /^(?:non)?voluntary_ctxt_switches:\s+(\d+)/ }
    close($f);
    return $n;
}

# PID 1's CPU time: (ms from utime+stime ticks, ms from schedstat or undef).
sub init_cpu {
    open(my $f, '<', '/proc/1/stat') or die "reap.pl: /proc/1/stat: $!";
    my $stat = <$f>;
    close($f);
    $stat =~ s/^.*\) //s;                      # fields from 3 (state) on
    my @f = split ' ', $stat;
    my $ticks = $f[11] + $f[12];               # fields 14 (utime) and 15 (stime)
    my $sched;
    if (open(my $s, '<', '/proc/1/schedstat')) {
        my $line = <$s>;
        close($s);
        ($sched) = split ' ', $line // '';
    }
    return ($ticks * 1000 / $tck, defined $sched ? $sched / 1e6 : undef);
}

sub fail {
    print "reap_ms=NA cpu_ms=NA sched_ms=NA switches=NA polls=0 error=$_[0]\n";
    exit 0;     # still exit 0: the shell script reads the error from the line
}

die "reap.pl: must run as the child of PID 1 in its own PID namespace\n"
    unless getppid() == 1;

zombies() if ($ENV{REAP_MODE} // '') eq 'zombies';

pipe(my $r, my $w) or die "reap.pl: pipe: $!";
my $maker = fork() // die "reap.pl: fork: $!";
if ($maker == 0) {
    for my $i (1 .. $n) {
        my $pid = fork();
        if (!defined $pid) {
            print STDERR "reap.pl: fork #$i failed: $!\n";
            POSIX::_exit(3);
        }
        if ($pid == 0) {
            close($w);                 # only the main command keeps the write end
            sysread($r, my $buf, 1);   # blocks until EOF
            POSIX::_exit(0);
        }
    }
    POSIX::_exit(0);
}
close($r);
waitpid($maker, 0);
my $maker_status = $?;

# All N are now PID 1's children. Wait until the namespace holds exactly them, us and
# PID 1, so that each has surely run far enough to drop its write end and sleep in read().
my $want = $n + 2;
my $deadline = time() + $limit_s;
my $count;
while (($count = nprocs_procfs()) != $want) {
    if (time() > $deadline) { close($w); fail("expected $want processes, saw $count") }
    sleep(0.01);
}
fail("maker exited with status $maker_status") if $maker_status != 0;
sleep(0.2);    # settle: the last grandchildren reach read()

# When the orphans exit, thousands of tasks are runnable at once, and a normal poller
# waking from its 0.5 ms sleep may wait ~100 ms for a CPU, which would blur the end time.
# With the O(1) cgroup probe we therefore poll as SCHED_FIFO (a few microseconds of CPU
# per poll); the /proc probe costs too much CPU per poll for that and stays SCHED_OTHER.
my $policy = raise_poller_priority();

my $gone_at = $count_now->() - $n;    # what the count reads once all N are reaped
my ($cpu0, $sched0) = init_cpu();
my $sw0 = init_switches();
my $t0 = time();
close($w);                     # EOF for all N at once
my ($t1, $polls) = wait_until_reaped($t0, $gone_at, $poll_s);

report($t0, $t1, $cpu0, $sched0, $sw0, $polls, $probe, $policy);
exit 0;

# With the O(1) cgroup probe the poller runs as SCHED_FIFO (or at least nice -20), so that
# it is not left waiting for a CPU behind thousands of runnable tasks; returns the policy.
sub raise_poller_priority {
    return 'other' if $probe ne 'cgroup';
    return 'fifo' if system("chrt -f -p 10 $$ >/dev/null 2>&1") == 0;
    return 'nice-20' if setpriority(0, 0, -20);
    return 'other';
}

# Polls the count every $pause seconds until it reads $gone_at or less (every one reaped);
# fails after $limit_s, or if /proc still shows some. Returns the end time and the polls.
sub wait_until_reaped {
    my ($t0, $gone_at, $pause) = @_;
    my $polls = 0;
    while (1) {
        $polls++;
        last if $count_now->() <= $gone_at;
        if (time() - $t0 > $limit_s) {
            my $left = nprocs_procfs() - 2;
            fail("not_reaped_after_${limit_s}s:$left");
        }
        sleep($pause);
    }
    my $t1 = time();
    my $left = nprocs_procfs() - 2;
    fail("count_said_done_but_${left}_left") if $left > 0;
    return ($t1, $polls);
}

sub report {
    my ($t0, $t1, $cpu0, $sched0, $sw0, $polls, $probe, $policy) = @_;
    my ($cpu1, $sched1) = init_cpu();
    my $sw1 = init_switches();
    printf "reap_ms=%.2f cpu_ms=%.0f sched_ms=%s switches=%d polls=%d probe=%s poller=%s\n",
    ($t1 - $t0) * 1000, $cpu1 - $cpu0,
    (defined $sched0 && defined $sched1) ? sprintf('%.1f', $sched1 - $sched0) : 'NA',
    $sw1 - $sw0, $polls, $probe, $policy;
}

# REAP_MODE=zombies: see the top of the file.
sub zombies {
    pipe(my $go_r, my $go_w) or die "reap.pl: pipe: $!";
    my $maker = fork() // die "reap.pl: fork: $!";
    if ($maker == 0) {
        close($go_w);
        my @kids;
        for my $i (1 .. $n) {
            my $pid = fork();
            if (!defined $pid) {
                print STDERR "reap.pl: fork #$i failed: $!\n";
                POSIX::_exit(3);
            }
            POSIX::_exit(0) if $pid == 0;
            push @kids, $pid;
        }
        # Every child a zombie before the parent (us) may go.
        for my $pid (@kids) {
            while (1) {
                open(my $f, '<', "/proc/$pid/stat") or last;
                my $st = <$f>;
                close($f);
                last if $st =~ /\) Z /;
                sleep(0.001);
            }
        }
        sysread($go_r, my $buf, 1);    # until told to exit
        POSIX::_exit(0);
    }
    close($go_r);
    # Wait until all N zombies exist: the namespace holds PID 1, us, the maker and them.
    my $want = $n + 3;
    my $deadline = time() + $limit_s;
    my $count;
    while (($count = nprocs_procfs()) != $want) {
        if (time() > $deadline) { kill('KILL', $maker); fail("expected $want processes, saw $count") }
        sleep(0.01);
    }
    sleep(0.3);    # the maker reaches its read()
    my $policy = raise_poller_priority();
    my $gone_at = $count_now->() - $n - 1;    # N zombies and the maker (we reap it)
    my ($cpu0, $sched0) = init_cpu();
    my $sw0 = init_switches();
    my $t0 = time();
    close($go_w);                         # the maker exits: N zombies go to PID 1
    waitpid($maker, 0);
    my ($t1, $polls) = wait_until_reaped($t0, $gone_at, $probe eq 'cgroup' ? 0.0001 : $poll_s);
    report($t0, $t1, $cpu0, $sched0, $sw0, $polls, $probe, $policy);
    exit 0;
}

/* bench/svc.c -- the service (or main command) that bench/bench.py runs under every init.
 *
 * One small static C program, so that what the benchmark times is the supervisor, not a
 * shell starting up (a /bin/sh run script costs ~1 ms of CPU per start, which alone would
 * blow the 30 ms budget of 100 services on 2 cores). bench.py installs it as each
 * service's `run` file (a hard link), so every service process has the comm name "run",
 * which is how bench.py tells services apart from the supervisor's own processes.
 * bench.py and floor.py build it with musl-gcc where musl-tools is installed: a static
 * glibc program probes the CPU's caches with CPUID at every start, which traps to the
 * hypervisor on some VMs (0.2-0.5 ms per start seen), and would time the service instead.
 *
 * The mode is argv[1] if it names one, else the first word of the file ./bench-mode (the
 * service folder is the working directory under pidvisor, s6, runit and supervisord), else
 * "idle". (s6-supervise passes the service's name as argv[1], hence "if it names one".)
 *
 *   idle   report a start, then sleep in pause() until a signal ends it
 *   crash  report a start, then exit 1 at once (a crash loop)
 *   true   exit 0 at once (start-up overhead: `init run true` against `run true`)
 *   spew N write N numbered 100-byte lines to stdout as fast as possible, in 64 KiB
 *          writes that cut lines anywhere (the relay must put them back together), exit 0
 *
 * A start is reported as one line "S <CLOCK_MONOTONIC ns> <pid> <cwd basename>\n" written
 * with a single write(2) (atomic: shorter than PIPE_BUF) to the FIFO named by $BENCH_FIFO,
 * if set. bench.py reads that FIFO on the same clock.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void report_start(void) {
    const char *fifo = getenv("BENCH_FIFO");
    if (!fifo || !*fifo) return;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char cwd[PATH_MAX] = "?";
    if (!getcwd(cwd, sizeof cwd)) strcpy(cwd, "?");
    const char *base = strrchr(cwd, '/');
    base = base ? base + 1 : cwd;
    char line[256];
    int n = snprintf(line, sizeof line, "S %lld %d %s\n",
                     (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)getpid(), base);
    int fd = open(fifo, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    if (write(fd, line, (size_t)n) < 0) { /* nothing to do: bench.py sees no start */ }
    close(fd);
}

static int spew(long lines) {
    static char buf[65536];
    size_t used = 0;
    for (long i = 0; i < lines; i++) {
        char line[101];
        /* 8-digit sequence number, a space, 90 payload characters, newline: 100 bytes. */
        int n = snprintf(line, sizeof line, "%08ld ", i);
        for (int k = n; k < 99; k++) line[k] = (char)('a' + (i + k) % 26);
        line[99] = '\n';
        if (used + 100 > sizeof buf) {
            if (write(1, buf, used) != (ssize_t)used) return 1;
            used = 0;
        }
        memcpy(buf + used, line, 100);
        used += 100;
    }
    if (used && write(1, buf, used) != (ssize_t)used) return 1;
    return 0;
}

int main(int argc, char **argv) {
    char mode[64] = "idle";
    long count = 0;
    if (argc > 1 && (!strcmp(argv[1], "idle") || !strcmp(argv[1], "crash") ||
                     !strcmp(argv[1], "true") || !strcmp(argv[1], "spew"))) {
        snprintf(mode, sizeof mode, "%s", argv[1]);
        if (argc > 2) count = atol(argv[2]);
    } else {
        FILE *f = fopen("bench-mode", "re");
        if (f) {
            if (fscanf(f, "%63s %ld", mode, &count) < 1) strcpy(mode, "idle");
            fclose(f);
        }
    }
    if (!strcmp(mode, "true")) return 0;
    if (!strcmp(mode, "spew")) return spew(count);
    report_start();
    if (!strcmp(mode, "crash")) return 1;
    for (;;) pause();
}

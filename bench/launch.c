/* bench/launch.c -- the floor of "N services all running", for bench/floor.py.
 *
 * As PID 1 of a fresh PID namespace, forks N children that each exec the bench's service
 * (bench/svc.c, which reports its start on $BENCH_FIFO), and does nothing else: no pipes,
 * no cgroups, no configuration, no waiting for the execs. Whatever a supervisor does on
 * top of this is its own cost; this is what fork and exec alone take on the machine.
 *
 * Usage: launch N SERVICE
 */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int n = atoi(argv[1]);
    for (int i = 0; i < n; i++) {
        if (fork() == 0) {
            execl(argv[2], "run", "idle", (char *)0);
            _exit(127);
        }
    }
    for (;;) pause();
}

/* bench/forkmodes.c -- how much of "N services all running" the way of forking decides,
 * for bench/floor.py --modes.
 *
 * As PID 1 of a fresh PID namespace, like bench/launch.c, but first made as heavy as
 * pidvisor is with N services: 4 open descriptors per service (close-on-exec, as
 * pidvisor's pipe ends are: every child's exec closes them all) and 300 KiB of written
 * heap (its anonymous memory at 100 services), of which it writes 40 pages between two
 * starts (as its own bookkeeping does). Then it starts N children that each exec the
 * bench's service, in one of three ways:
 *
 *   fork     fork + exec, not waiting for the exec (what pidvisor does)
 *   vfork    vfork + exec: the parent waits until the child's exec has replaced its memory
 *   clonevm  clone(CLONE_VM) on a stack of its own + exec, not waiting: no page table is
 *            copied and no page is copied on write, in the parent or the child
 *
 * Usage: forkmodes MODE N SERVICE
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HEAP (300 * 1024)
#define STACK (64 * 1024)

static const char *service;

static int child(void *unused) {
    (void)unused;
    execl(service, "run", "idle", (char *)0);
    _exit(127);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    service = argv[3];
    for (int i = 0; i < 2 * n; i++) {
        int fds[2];
        if (pipe2(fds, O_CLOEXEC) != 0) return 1;
    }
    char *heap = malloc(HEAP);
    if (!heap) return 1;
    memset(heap, 1, HEAP);
    char *stacks = mmap(0, (size_t)STACK * n, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stacks == MAP_FAILED) return 1;
    for (int i = 0; i < n; i++) {
        for (int page = 0; page < 40; page++) heap[(page * 7919 % (HEAP / 4096)) * 4096] = (char)i;
        if (strcmp(mode, "fork") == 0) {
            if (fork() == 0) child(0);
        } else if (strcmp(mode, "vfork") == 0) {
            if (vfork() == 0) {
                execl(service, "run", "idle", (char *)0);
                _exit(127);
            }
        } else {
            clone(child, stacks + (size_t)STACK * (i + 1), CLONE_VM | SIGCHLD, 0);
        }
    }
    for (;;) pause();
}

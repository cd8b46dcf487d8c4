/* bench/forkmodes.c -- how much of "N services all running" the way of forking decides,
 * for bench/floor.py --modes.
 *
 * As PID 1 of a fresh PID namespace, like bench/launch.c, but first made as heavy as
 * pidvisor is with N services: 2 open descriptors per service (close-on-exec, as
 * pidvisor's pipe ends are: every child copies them and its exec closes them all; pidvisor
 * keeps the read ends of a service's stdout and stderr pipes) and 300 KiB of written
 * heap (its anonymous memory at 100 services), of which it writes 40 pages between two
 * starts (as its own bookkeeping does). Then it starts N children that each exec the
 * bench's service, in one of three ways:
 *
 *   fork     fork + exec, not waiting for the exec (what pidvisor does)
 *   vfork    vfork + exec: the parent waits until the child's exec has replaced its memory
 *   clonevm  clone(CLONE_VM) on a stack of its own + exec, not waiting: no page table is
 *            copied and no page is copied on write, in the parent or the child
 *   files    as clonevm, also sharing the descriptor table (CLONE_FILES): the child's
 *            first act is close_range(3, ~0, CLOSE_RANGE_UNSHARE), which gives it a table
 *            of its own holding only 0-2, so that no descriptor is copied or closed at
 *            its exec (the child needs nothing but 0-2 here, which the parent never
 *            changes: what a real supervisor could not do without more care)
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
#include <sys/syscall.h>
#include <unistd.h>

#define HEAP (300 * 1024)
#define STACK (64 * 1024)

static const char *service;

static int child(void *unused) {
    (void)unused;
    execl(service, "run", "idle", (char *)0);
    _exit(127);
}

#ifndef CLOSE_RANGE_UNSHARE
#define CLOSE_RANGE_UNSHARE (1U << 1)
#endif
#define FUTEX_WAIT 0 /* <linux/futex.h>, which musl-gcc does not see */
#define FUTEX_WAKE 1

static int child_unsharing(void *unused) {
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_UNSHARE) != 0) _exit(126);
    return child(unused);
}

/* Set by a "filessync" child once its table is its own; the parent waits for it. */
static volatile int unshared;

static int child_unsharing_then_telling(void *unused) {
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_UNSHARE) != 0) _exit(126);
    __atomic_store_n(&unshared, 1, __ATOMIC_RELEASE);
    syscall(SYS_futex, &unshared, FUTEX_WAKE, 1, 0, 0, 0);
    return child(unused);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    const char *mode = argv[1];
    int n = atoi(argv[2]);
    service = argv[3];
    for (int i = 0; i < n; i++) {
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
        } else if (strcmp(mode, "files") == 0) {
            clone(child_unsharing, stacks + (size_t)STACK * (i + 1),
                  CLONE_VM | CLONE_FILES | SIGCHLD, 0);
        } else if (strcmp(mode, "filessync") == 0) {
            unshared = 0;
            clone(child_unsharing_then_telling, stacks + (size_t)STACK * (i + 1),
                  CLONE_VM | CLONE_FILES | SIGCHLD, 0);
            while (!__atomic_load_n(&unshared, __ATOMIC_ACQUIRE))
                syscall(SYS_futex, &unshared, FUTEX_WAIT, 0, 0, 0, 0);
        } else if (strcmp(mode, "filesvfork") == 0) {
            clone(child_unsharing, stacks + (size_t)STACK * (i + 1),
                  CLONE_VM | CLONE_FILES | CLONE_VFORK | SIGCHLD, 0);
        } else {
            clone(child, stacks + (size_t)STACK * (i + 1), CLONE_VM | SIGCHLD, 0);
        }
    }
    for (;;) pause();
}

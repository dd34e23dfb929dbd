/* A foreign (FHS) program for `ldfix run`'s environment test: it writes its own environ to
 * OUTDIR/parent.env (entries separated by NUL bytes, in order), then runs CHILD, which writes
 * its environ to OUTDIR/child.env. It links zlib so that, on a NixOS-like system, ldfix must pass
 * a library directory to the loader; it must not reach the environment. */
#define _GNU_SOURCE
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zlib.h>

extern char **environ;

static int dump(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (char **e = environ; *e; e++) fwrite(*e, 1, strlen(*e) + 1, f);
    return fclose(f);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: envparent OUTDIR CHILD\n");
        return 2;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/parent.env", argv[1]);
    if (dump(path) != 0) { perror(path); return 2; }
    snprintf(path, sizeof path, "%s/child.env", argv[1]);
    char *child_argv[] = {argv[2], path, NULL};
    pid_t pid;
    int err = posix_spawn(&pid, argv[2], NULL, NULL, child_argv, environ);
    if (err != 0) { fprintf(stderr, "posix_spawn %s: %s\n", argv[2], strerror(err)); return 2; }
    int status;
    if (waitpid(pid, &status, 0) < 0) { perror("waitpid"); return 2; }
    printf("parent ok (zlib %s), child status %d\n", zlibVersion(), WEXITSTATUS(status));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}

/* A foreign (FHS) program linking zlib, for `ldfix run`'s process tests:
 *   probe exit N   prints its argv[0] and exits with status N
 *   probe pause    prints its pid, then waits for a signal (and dies of it)
 *   probe dlopen MODULE SYMBOL   dlopens MODULE, calls SYMBOL (int (*)(void)), prints the result
 *   probe self     prints what /proc/self/exe names (the loader, under an explicit loader) */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int main(int argc, char **argv) {
    if (argc >= 3 && strcmp(argv[1], "exit") == 0) {
        printf("argv0=%s zlib=%s\n", argv[0], zlibVersion());
        return atoi(argv[2]);
    }
    if (argc == 2 && strcmp(argv[1], "pause") == 0) {
        printf("pid=%d\n", (int)getpid());
        fflush(stdout);
        for (;;) pause();
    }
    if (argc == 4 && strcmp(argv[1], "dlopen") == 0) {
        void *h = dlopen(argv[2], RTLD_NOW);
        if (!h) { fprintf(stderr, "dlopen failed: %s\n", dlerror()); return 3; }
        int (*f)(void) = (int (*)(void))dlsym(h, argv[3]);
        if (!f) { fprintf(stderr, "dlsym failed: %s\n", dlerror()); return 4; }
        printf("module says %d\n", f());
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "self") == 0) {
        char buf[4096];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
        if (n < 0) { perror("readlink"); return 5; }
        buf[n] = 0;
        printf("exe=%s\n", buf);
        return 0;
    }
    fprintf(stderr, "usage: probe exit N | pause | dlopen MODULE SYMBOL | self\n");
    return 2;
}

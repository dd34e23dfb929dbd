/* Built static, so it runs anywhere: writes its environ to argv[1], entries separated by NUL
 * bytes, in order. */
#include <stdio.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    FILE *f = fopen(argv[1], "wb");
    if (!f) { perror(argv[1]); return 2; }
    for (char **e = environ; *e; e++) fwrite(*e, 1, strlen(*e) + 1, f);
    return fclose(f) == 0 ? 0 : 2;
}

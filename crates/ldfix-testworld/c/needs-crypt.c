/* FHS fixture: needs libcrypt.so.1 (libxcrypt). */
#include <crypt.h>
#include <stdio.h>

int main(void) {
    const char *h = crypt("ldfix", "$6$saltsalt$");
    if (h == NULL || h[0] != '$') return 1;
    printf("crypt ok\n");
    return 0;
}

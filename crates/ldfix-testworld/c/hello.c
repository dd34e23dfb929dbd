/* FHS fixture: needs only libc.so.6. */
#include <stdio.h>

int main(void) {
    printf("hello ok\n");
    return 0;
}

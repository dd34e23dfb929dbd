/* FHS fixture: needs libz.so.1 (calls into it, so --as-needed keeps the NEEDED entry). */
#include <stdio.h>
#include <zlib.h>

int main(void) {
    unsigned char out[64];
    uLongf len = sizeof out;
    if (compress(out, &len, (const Bytef *)"ldfix", 5) != Z_OK) return 1;
    printf("zlib %s ok\n", zlibVersion());
    return 0;
}

/* A module `probe dlopen` loads: it needs libcrypt.so.1, which a NixOS-like system has only in
 * some store path, so it loads only when `ldfix run --for` covers its directory. */
#include <crypt.h>
#include <string.h>

int module_check(void) {
    const char *h = crypt("ldfix", "$1$abcdefgh$");
    return h != NULL && strncmp(h, "$1$abcdefgh$", 12) == 0 ? 42 : -1;
}

/* NixOS's stub-ld (nixpkgs nixos/modules/config/stub-ld.nix): installed at
   /lib64/ld-linux-x86-64.so.2 so that foreign binaries fail with an explanation.
   Built static; the kernel runs it as the program interpreter with the program's argv. */
#include <stdio.h>

static const char message[] =
    "NixOS cannot run dynamically linked executables intended for generic\n"
    "linux environments out of the box. For more information, see:\n"
    "https://nix.dev/permalink/stub-ld\n";

int main(int argc, char *argv[]) {
    (void)argc;
    fprintf(stderr, "Could not start dynamically linked executable: %s\n", argv[0]);
    fwrite(message, 1, sizeof message - 1, stderr);
    return 127; /* what bash and zsh report without a loader */
}

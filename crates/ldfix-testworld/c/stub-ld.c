/* NixOS's stub-ld (nixpkgs nixos/modules/config/stub-ld.nix): installed at
   /lib64/ld-linux-x86-64.so.2 so that foreign binaries fail with an explanation.

   The kernel runs it as the program interpreter, with the program's argv and the program's
   auxiliary vector. nixpkgs builds it with musl (pkgsStatic); glibc's static startup would read the
   program's program headers from AT_PHDR and crash, so this one is freestanding: raw syscalls, no
   libc, built as a static PIE so it loads at any address (gcc -static-pie -nostdlib). */

static const char prefix[] = "Could not start dynamically linked executable: ";
static const char message[] =
    "NixOS cannot run dynamically linked executables intended for generic\n"
    "linux environments out of the box. For more information, see:\n"
    "https://nix.dev/permalink/stub-ld\n";

static long sys3(long n, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

static void put(const char *s, unsigned long len) { sys3(1 /* write */, 2, (long)s, (long)len); }

static unsigned long len(const char *s) {
    unsigned long n = 0;
    while (s[n]) n++;
    return n;
}

/* sp points at argc, then argv[0..argc), as the kernel leaves the stack. */
__attribute__((used)) static void stub_main(long *sp) {
    char **argv = (char **)(sp + 1);
    put(prefix, sizeof prefix - 1);
    if (sp[0] > 0 && argv[0]) put(argv[0], len(argv[0]));
    put("\n", 1);
    put(message, sizeof message - 1);
    sys3(231 /* exit_group */, 127, 0, 0); /* 127: what bash and zsh report without a loader */
}

__asm__(".globl _start\n"
        "_start:\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call stub_main\n"
        "  hlt\n");

//! The read model: what the kernel and the dynamic loader see in an ELF file.

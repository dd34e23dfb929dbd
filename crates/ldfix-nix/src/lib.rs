//! Nix store paths, profiles, GC roots, and the only place that spawns the `nix` CLI.

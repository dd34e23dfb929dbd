//! Dev-only: builds the NixOS-like test world (a real Nix store, profiles, a bubblewrap sandbox,
//! fixtures) that ldfix's tests run in.

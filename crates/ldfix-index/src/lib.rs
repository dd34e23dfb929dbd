//! SONAME -> providers: scans profiles and the Nix store, keeps a versioned on-disk cache.

//! Settings taken from the process environment, in one place. Library crates never read the
//! environment; the binary reads it here and passes values in.

use std::ffi::OsString;
use std::path::PathBuf;

use ldfix_index::IndexConfig;
use ldfix_nix::{profile_candidates, NixCli, ProfileEnv, StoreDir};

use crate::env_vars;

fn var(name: &str) -> Option<OsString> {
    std::env::var_os(name)
}

/// The store directory: `NIX_STORE_DIR` or `/nix/store`.
pub(crate) fn store_dir() -> StoreDir {
    StoreDir::new(var(env_vars::NIX_STORE_DIR).as_deref())
}

/// The library index configuration for this machine and user.
pub(crate) fn index_config(from_dirs: Vec<PathBuf>, rebuild: bool) -> IndexConfig {
    let store = store_dir();
    let profile_env = ProfileEnv {
        home: var(env_vars::HOME)
            .filter(|h| !h.is_empty())
            .map(PathBuf::from),
        user: crate::dirs::user_name(var),
        nix_ld_library_path_system: var(env_vars::NIX_LD_LIBRARY_PATH_X86_64_LINUX),
        nix_ld_library_path: var(env_vars::NIX_LD_LIBRARY_PATH),
    };
    let nix = NixCli::find(var(env_vars::PATH).as_deref(), store.clone()).ok();
    IndexConfig {
        profiles: profile_candidates(&profile_env),
        cache_file: Some(index_cache_file(&store)),
        store,
        from_dirs,
        nix,
        rebuild,
    }
}

/// One cache file per store directory, so a relocated store does not evict the main one.
fn index_cache_file(store: &StoreDir) -> PathBuf {
    let dir = crate::dirs::cache_dir(var);
    let mut tag: u64 = 0xcbf2_9ce4_8422_2325; // FNV-1a: a short, stable name for the store dir
    for byte in store.path().as_os_str().as_encoded_bytes() {
        tag = (tag ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    dir.join(format!("index-{tag:016x}.bin"))
}

//! Per-user locations, taken from the environment only.
//!
//! The static ldfix must never call NSS (`getpwuid` and friends would try to load the host's
//! `libnss_*` modules, which is exactly what cannot work on the machines ldfix is for), so HOME
//! and USER come from the environment, and the uid from the kernel via `/proc/self`.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::env_vars;

/// Where ldfix keeps its library index.
///
/// In order: `$LDFIX_CACHE_DIR`; `$XDG_CACHE_HOME/ldfix`; `$HOME/.cache/ldfix`; and when HOME is
/// unset or empty, `/tmp/ldfix-cache-<uid>` (the uid read from `/proc/self`, never from NSS).
pub(crate) fn cache_dir(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let non_empty = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(dir) = non_empty(env_vars::LDFIX_CACHE_DIR) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = non_empty(env_vars::XDG_CACHE_HOME) {
        return PathBuf::from(dir).join("ldfix");
    }
    if let Some(home) = non_empty(env_vars::HOME) {
        return PathBuf::from(home).join(".cache").join("ldfix");
    }
    PathBuf::from(format!("/tmp/ldfix-cache-{}", current_uid()))
}

/// The user's name for `/etc/profiles/per-user/$USER`; `None` when USER (or LOGNAME) is unset.
pub(crate) fn user_name(env: impl Fn(&str) -> Option<OsString>) -> Option<OsString> {
    env(env_vars::USER)
        .filter(|value| !value.is_empty())
        .or_else(|| env(env_vars::LOGNAME).filter(|value| !value.is_empty()))
}

/// The real uid of this process, from the owner of `/proc/self` (no NSS, no unsafe code).
fn current_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |meta| meta.uid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn cache_dir_prefers_explicit_then_xdg_then_home() {
        let all = [
            ("LDFIX_CACHE_DIR", "/c"),
            ("XDG_CACHE_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(cache_dir(env_of(&all)), PathBuf::from("/c"));
        assert_eq!(cache_dir(env_of(&all[1..])), PathBuf::from("/x/ldfix"));
        assert_eq!(
            cache_dir(env_of(&all[2..])),
            PathBuf::from("/h/.cache/ldfix")
        );
    }

    #[test]
    fn cache_dir_without_home_uses_tmp_and_uid() {
        let dir = cache_dir(env_of(&[("HOME", "")]));
        let expected = format!("/tmp/ldfix-cache-{}", current_uid());
        assert_eq!(dir, PathBuf::from(expected));
    }

    #[test]
    fn user_name_falls_back_to_logname() {
        assert_eq!(user_name(env_of(&[("LOGNAME", "ann")])), Some("ann".into()));
        assert_eq!(
            user_name(env_of(&[("USER", "bob"), ("LOGNAME", "ann")])),
            Some("bob".into())
        );
        assert_eq!(user_name(env_of(&[])), None);
    }
}

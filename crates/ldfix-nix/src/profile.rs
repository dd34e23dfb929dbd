//! Where a NixOS or Nix user's libraries are installed: the system profile, user profiles,
//! nix-ld's library path and the GPU driver directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::store::{StoreDir, StorePath};

/// What a library directory is, which decides its rank as a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProfileKind {
    /// `/run/current-system/sw`: what the system itself uses.
    System,
    /// `~/.nix-profile`, `~/.local/state/nix/profile`, `/etc/profiles/per-user/$USER`.
    User,
    /// nix-ld's libraries (`NIX_LD_LIBRARY_PATH_<system>`, `NIX_LD_LIBRARY_PATH`, its default).
    NixLd,
    /// `/run/opengl-driver/lib` (and `-32`): the only source of GPU driver libraries, because the
    /// driver must match the running kernel module.
    GpuDriver,
}

/// A directory of libraries found in a profile-like location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileSource {
    pub kind: ProfileKind,
    /// The directory as the user knows it (`/run/current-system/sw/lib`).
    pub lib_dir: PathBuf,
}

/// The inputs that locate a user's profiles; the caller reads them from its environment.
#[derive(Debug, Clone, Default)]
pub struct ProfileEnv {
    pub home: Option<PathBuf>,
    pub user: Option<OsString>,
    /// `NIX_LD_LIBRARY_PATH_x86_64_linux` (or the variable of the target system).
    pub nix_ld_library_path_system: Option<OsString>,
    pub nix_ld_library_path: Option<OsString>,
}

/// Library directories of the profile-like sources, in priority order: system profile, user
/// profiles, nix-ld's libraries, GPU drivers. Directories that do not exist are still listed;
/// the scanner skips them.
pub fn profile_candidates(env: &ProfileEnv) -> Vec<ProfileSource> {
    let source = |kind, dir: PathBuf| ProfileSource { kind, lib_dir: dir };
    let mut sources = vec![source(
        ProfileKind::System,
        "/run/current-system/sw/lib".into(),
    )];
    if let Some(home) = env.home.as_ref().filter(|home| home.is_absolute()) {
        sources.push(source(ProfileKind::User, home.join(".nix-profile/lib")));
        sources.push(source(
            ProfileKind::User,
            home.join(".local/state/nix/profile/lib"),
        ));
    }
    if let Some(user) = env.user.as_ref().filter(|user| !user.is_empty()) {
        let per_user = Path::new("/etc/profiles/per-user").join(user).join("lib");
        sources.push(source(ProfileKind::User, per_user));
    }
    // nix-ld reads the system-specific variable first and falls back to the generic one, then to
    // its default directory (nix-ld `src/main.rs`).
    let nix_ld = env
        .nix_ld_library_path_system
        .as_ref()
        .or(env.nix_ld_library_path.as_ref())
        .filter(|value| !value.is_empty());
    match nix_ld {
        Some(value) => sources.extend(
            std::env::split_paths(value)
                .filter(|dir| dir.is_absolute())
                .map(|dir| source(ProfileKind::NixLd, dir)),
        ),
        None => sources.push(source(
            ProfileKind::NixLd,
            "/run/current-system/sw/share/nix-ld/lib".into(),
        )),
    }
    sources.push(source(
        ProfileKind::GpuDriver,
        "/run/opengl-driver/lib".into(),
    ));
    sources.push(source(
        ProfileKind::GpuDriver,
        "/run/opengl-driver-32/lib".into(),
    ));
    sources
}

/// The store path a profile (or any path) finally points to, following every symlink; `None`
/// when it does not exist, is a broken link, or leads outside the store.
pub fn resolve_profile(store: &StoreDir, profile: &Path) -> Option<StorePath> {
    let target = std::fs::canonicalize(profile).ok()?;
    store.store_path_of(&target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(env: &ProfileEnv) -> Vec<(ProfileKind, String)> {
        profile_candidates(env)
            .into_iter()
            .map(|s| (s.kind, s.lib_dir.display().to_string()))
            .collect()
    }

    #[test]
    fn priority_order_with_everything_set() {
        let env = ProfileEnv {
            home: Some("/home/ann".into()),
            user: Some("ann".into()),
            nix_ld_library_path_system: Some("/nix/store/a-x/lib:/nix/store/b-y/lib".into()),
            nix_ld_library_path: Some("/ignored".into()),
        };
        use ProfileKind::*;
        let expected = [
            (System, "/run/current-system/sw/lib"),
            (User, "/home/ann/.nix-profile/lib"),
            (User, "/home/ann/.local/state/nix/profile/lib"),
            (User, "/etc/profiles/per-user/ann/lib"),
            (NixLd, "/nix/store/a-x/lib"),
            (NixLd, "/nix/store/b-y/lib"),
            (GpuDriver, "/run/opengl-driver/lib"),
            (GpuDriver, "/run/opengl-driver-32/lib"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, d)| (*k, (*d).to_owned()))
            .collect();
        assert_eq!(dirs(&env), expected);
    }

    #[test]
    fn without_home_user_or_nix_ld_variables() {
        let got = dirs(&ProfileEnv::default());
        let nix_ld = (
            ProfileKind::NixLd,
            "/run/current-system/sw/share/nix-ld/lib".to_owned(),
        );
        assert!(got.contains(&nix_ld));
        assert!(!got.iter().any(|(kind, _)| *kind == ProfileKind::User));
    }

    #[test]
    fn generic_nix_ld_variable_used_when_system_one_is_unset() {
        let env = ProfileEnv {
            nix_ld_library_path: Some("/opt/libs".into()),
            ..ProfileEnv::default()
        };
        assert!(dirs(&env).contains(&(ProfileKind::NixLd, "/opt/libs".to_owned())));
    }

    #[test]
    fn resolve_profile_follows_links_into_the_store_and_rejects_broken_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StoreDir::new(Some(tmp.path().join("store").as_os_str()));
        let pkg = tmp
            .path()
            .join("store/1qkxcd9kylrnp7kcsgx22mnd3qh6b5i2-profile");
        std::fs::create_dir_all(&pkg).unwrap();
        let link1 = tmp.path().join("profile-1-link");
        let link = tmp.path().join("profile");
        std::os::unix::fs::symlink(&pkg, &link1).unwrap();
        std::os::unix::fs::symlink("profile-1-link", &link).unwrap();
        assert_eq!(
            resolve_profile(&store, &link).unwrap().path(),
            pkg.as_path()
        );
        let broken = tmp.path().join("broken");
        std::os::unix::fs::symlink("/nonexistent/x", &broken).unwrap();
        assert_eq!(resolve_profile(&store, &broken), None);
        assert_eq!(resolve_profile(&store, tmp.path()), None);
    }
}

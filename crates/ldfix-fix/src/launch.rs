//! Planning `ldfix run`: which loader, and which library directories, make one program (and
//! the modules it may `dlopen`) start without changing anything it already resolves on its own.
//! Nothing is written: the plan becomes the loader's command line.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::FixError;

use ldfix_elf::read::{classify_interpreter, Class, Endian, GlibcVersion, InterpreterKind};
use ldfix_index::{is_gpu_driver_library, Index, IndexError, Requester};
use ldfix_ldso::{
    is_glibc_family, Cpu, Environment, FileId, Finding, Flavour, Fs as _, LoaderFacts, Object,
    Outcome, RealFs, Request, Resolver, Tree,
};

/// Programs whose loader tells what glibc the system itself uses: `/bin/sh` exists on every
/// NixOS (`environment.binsh`) and FHS system.
const SYSTEM_PROGRAMS: &[&str] = &["/bin/sh", "/run/current-system/sw/bin/sh"];

/// At most this many rounds of "add directories, resolve again" (each round can only add
/// directories for libraries that newly appeared in the tree).
const MAX_ROUNDS: usize = 16;

/// What the process environment contributes to the loader's search.
#[derive(Debug, Clone)]
pub struct LoaderEnv {
    /// The user's own LD_LIBRARY_PATH (it stays first in `--library-path`).
    pub ld_library_path: Option<Vec<u8>>,
    /// LD_PRELOAD (left in the environment, read by the loader as usual).
    pub ld_preload: Option<Vec<u8>>,
    /// The working directory.
    pub cwd: PathBuf,
}

/// A library nobody could provide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The DT_NEEDED name.
    pub name: Vec<u8>,
    /// Who needs it.
    pub needed_by: Vec<u8>,
}

/// The decision.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The loader to run the program with; `None` when the program starts as it is.
    pub loader: Option<PathBuf>,
    /// glibc `major.minor` of that loader (decides `--argv0`).
    pub loader_glibc: Option<(u32, u32)>,
    /// Directories for `--library-path`, after the user's own LD_LIBRARY_PATH.
    pub dirs: Vec<PathBuf>,
    /// Libraries of the program itself that no provider has: it cannot start.
    pub missing: Vec<Unresolved>,
    /// Libraries of modules (`--for`) that no provider has: those modules will fail to load.
    pub module_missing: Vec<Unresolved>,
    /// Why the program's own loader was replaced, for `-v`.
    pub loader_reason: Option<String>,
}

/// One thing to resolve: the program, or a module it may `dlopen`.
struct Subject {
    path: PathBuf,
    module: bool,
}

/// Plans the run of the ELF program `program` (canonical path), with modules under `for_dirs`.
pub fn plan(
    program: &Path,
    modules: &[PathBuf],
    env: &LoaderEnv,
    profile_dirs: &[PathBuf],
    index: &mut dyn FnMut() -> Result<Arc<Index>, IndexError>,
) -> Result<Plan, FixError> {
    let fs = RealFs;
    let resolver = Resolver::new(&fs);
    let object = resolver.object(program).map_err(|e| FixError::Program {
        path: program.to_owned(),
        why: e.to_string(),
    })?;
    let mut plan = Plan {
        loader: None,
        loader_glibc: None,
        dirs: Vec::new(),
        missing: Vec::new(),
        module_missing: Vec::new(),
        loader_reason: None,
    };
    let Some(interp) = object.interpreter.clone() else {
        // Statically linked (or no PT_INTERP at all): the kernel runs it as it is.
        return Ok(plan);
    };
    let interp_path = PathBuf::from(OsStr::from_bytes(&interp));

    let mut subjects = vec![Subject {
        path: program.to_owned(),
        module: false,
    }];
    subjects.extend(modules.iter().map(|m| Subject {
        path: m.clone(),
        module: true,
    }));
    let needed_glibc = subjects
        .iter()
        .filter_map(|s| resolver.object(&s.path).ok())
        .filter_map(|o| max_glibc(&o))
        .max();

    let (loader, own) = match own_loader(&interp_path) {
        Ok(()) => (interp_path.clone(), true),
        Err(why) => {
            plan.loader_reason = Some(why);
            let chosen = system_loader(&interp_path, &object, needed_glibc.as_ref(), &resolver)
                .map_or_else(
                    || {
                        index_loader(
                            &interp_path,
                            &object,
                            needed_glibc.as_ref(),
                            &resolver,
                            index,
                        )
                    },
                    |l| Ok(Some(l)),
                )?;
            let Some(chosen) = chosen else {
                return Err(FixError::NoLoader {
                    name: file_name(&interp_path),
                    glibc: needed_glibc
                        .as_ref()
                        .map(|v| format!(" with glibc {v} or newer"))
                        .unwrap_or_default(),
                });
            };
            (chosen, false)
        }
    };
    let facts = resolver.loader(&loader).map_err(|e| FixError::Loader {
        path: loader.clone(),
        why: e.to_string(),
    })?;
    plan.loader_glibc = facts.glibc_version;
    let glibc_dir = std::fs::canonicalize(&loader)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf));

    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = Cpu::from_cpuinfo(&cpuinfo, std::env::consts::ARCH.as_bytes());
    let resolve_all = |dirs: &[PathBuf]| -> Vec<Option<Tree>> {
        let environment = Environment {
            ld_library_path: library_path(env.ld_library_path.as_deref(), dirs),
            ld_preload: env.ld_preload.clone(),
            secure: false,
            cwd: env.cwd.clone(),
        };
        subjects
            .iter()
            .map(|s| {
                let request = Request {
                    program: &s.path,
                    env: &environment,
                    cpu: &cpu,
                    host: s.module.then_some(program),
                    fallback_loader: Some(&loader),
                };
                // A module that cannot be resolved at all (not ELF after all, another machine)
                // is left alone: the program would not load it either.
                resolver.resolve(&request).ok()
            })
            .collect()
    };

    let baseline = resolve_all(&[]);
    let baseline_map = resolutions(&baseline);
    let roots = roots(&baseline, &subjects, &fs);
    let mut trees = baseline.clone();
    // glibc's own libraries come from the chosen loader's default directories. A loader whose
    // defaults do not hold them (Debian's i386 multilib loader searches /lib32) is given its own
    // directory, and only that one: never another glibc's.
    if let Some(dir) = &glibc_dir {
        let own_missing = trees.iter().flatten().any(|tree| {
            tree.edges.iter().any(|e| {
                matches!(e.outcome, Outcome::Missing)
                    && is_glibc_family(&e.name)
                    && dir.join(OsStr::from_bytes(&e.name)).exists()
            })
        });
        if own_missing && usable_in_path(dir) {
            plan.dirs.push(dir.clone());
            trees = resolve_all(&plan.dirs);
        }
    }
    let mut tried: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut unresolved: Vec<(Unresolved, bool)> = Vec::new();
    // A candidate directory is taken when the wanted library then resolves, no new symbol
    // version goes missing, and nothing resolved before resolves elsewhere.
    let accept = |dirs: &[PathBuf], dir: &Path, name: &[u8], trees: &[Option<Tree>]| {
        // A glibc's own directory is never named: its libraries come only from the chosen
        // loader's glibc, which finds them in its default directories.
        if !usable_in_path(dir) || dirs.iter().any(|d| d == dir) || holds_glibc(dir) {
            return None;
        }
        let mut dirs = dirs.to_vec();
        dirs.push(dir.to_path_buf());
        let candidate = resolve_all(&dirs);
        (!still_missing(&candidate, name)
            && missing_versions(&candidate) <= missing_versions(trees)
            && changes_nothing(&baseline_map, &resolutions(&candidate)))
        .then_some((dir.to_path_buf(), candidate))
    };
    for _ in 0..MAX_ROUNDS {
        let wanted = missing(&trees, &subjects, &roots, &tried);
        if wanted.is_empty() {
            break;
        }
        for want in wanted {
            tried.insert(want.name.clone());
            if !still_missing(&trees, &want.name) {
                continue; // A directory added for an earlier library provides it too.
            }
            // Profiles first, as the index ranks them, without opening the index (it lists the
            // whole store): the common case costs a stat per profile.
            let from_profile = if is_gpu_driver_library(&want.name) {
                None
            } else {
                profile_dirs.iter().find_map(|dir| {
                    let real =
                        std::fs::canonicalize(dir.join(OsStr::from_bytes(&want.name))).ok()?;
                    accept(&plan.dirs, real.parent()?, &want.name, &trees)
                })
            };
            if let Some((dir, candidate)) = from_profile {
                plan.dirs.push(dir);
                trees = candidate;
                continue;
            }
            let index = index()?;
            let requester = Requester {
                machine: want.object.machine,
                class: match want.object.class {
                    Class::Elf32 => 1,
                    Class::Elf64 => 2,
                },
                data: match want.object.endian {
                    Endian::Little => 1,
                    Endian::Big => 2,
                },
                libc: match facts.flavour {
                    Flavour::Glibc => "glibc".into(),
                    Flavour::Musl => "musl".into(),
                },
                versions: want
                    .object
                    .version_needs
                    .iter()
                    .find(|(file, _)| *file == want.name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default(),
                glibc_dir: glibc_dir.clone(),
            };
            let chosen = index
                .lookup(&want.name, &requester)
                .into_iter()
                .filter(|provider| provider.usable())
                .find_map(|provider| {
                    accept(
                        &plan.dirs,
                        provider.library.real_dir_path(),
                        &want.name,
                        &trees,
                    )
                });
            match chosen {
                Some((dir, candidate)) => {
                    plan.dirs.push(dir);
                    trees = candidate;
                }
                None => unresolved.push((
                    Unresolved {
                        name: want.name,
                        needed_by: want.needed_by,
                    },
                    want.module,
                )),
            }
        }
    }
    // What is still missing after the last round (a library needed only by what was added).
    for want in missing(&trees, &subjects, &roots, &BTreeSet::new()) {
        if !unresolved.iter().any(|(u, _)| u.name == want.name) {
            unresolved.push((
                Unresolved {
                    name: want.name,
                    needed_by: want.needed_by,
                },
                want.module,
            ));
        }
    }
    for (u, module) in unresolved {
        if module {
            plan.module_missing.push(u);
        } else {
            plan.missing.push(u);
        }
    }
    if !own || !plan.dirs.is_empty() {
        plan.loader = Some(loader);
    }
    Ok(plan)
}

/// The LD_LIBRARY_PATH the loader will use: the user's own first, then ours. An empty user
/// value counts as unset (glibc ignores an empty LD_LIBRARY_PATH, `elf/dl-load.c`
/// `_dl_init_paths`).
pub fn library_path(user: Option<&[u8]>, dirs: &[PathBuf]) -> Option<Vec<u8>> {
    let mut parts: Vec<&[u8]> = Vec::new();
    if let Some(user) = user.filter(|u| !u.is_empty()) {
        parts.push(user);
    }
    parts.extend(dirs.iter().map(|d| d.as_os_str().as_bytes()));
    (!parts.is_empty()).then(|| parts.join(&b':'))
}

/// glibc splits LD_LIBRARY_PATH and `--library-path` at `:` and `;` and expands `$ORIGIN`-style
/// tokens in it (`elf/dl-load.c` `fillin_rpath`), so a directory with those cannot be named.
fn usable_in_path(dir: &Path) -> bool {
    let bytes = dir.as_os_str().as_bytes();
    !bytes.is_empty() && !bytes.iter().any(|b| matches!(b, b':' | b';' | b'$'))
}

/// Whether a directory holds a glibc (its `libc.so.6` or loader).
fn holds_glibc(dir: &Path) -> bool {
    [
        "libc.so.6",
        "ld-linux-x86-64.so.2",
        "ld-linux.so.2",
        "ld-linux-aarch64.so.1",
    ]
    .iter()
    .any(|name| dir.join(name).exists())
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Whether the program's own PT_INTERP is a usable loader; otherwise why not.
fn own_loader(interp: &Path) -> Result<(), String> {
    let data = std::fs::read(interp)
        .map_err(|e| format!("its loader {} cannot be read: {e}", interp.display()))?;
    match classify_interpreter(&data) {
        InterpreterKind::Loader => Ok(()),
        kind => Err(format!(
            "its loader {} is {}, not a dynamic loader",
            interp.display(),
            kind.as_str()
        )),
    }
}

/// The highest `GLIBC_x.y` version an object requires.
fn max_glibc(object: &Object) -> Option<GlibcVersion> {
    object
        .version_needs
        .iter()
        .flat_map(|(_, versions)| versions.iter())
        .filter_map(|v| GlibcVersion::from_version_name(v))
        .max()
}

/// Whether the loader's glibc is at least `needed` (unknown versions are accepted: the emulation
/// reports a missing version later if it matters).
fn new_enough(facts: &LoaderFacts, needed: Option<&GlibcVersion>) -> bool {
    let (Some(needed), Some((major, minor))) = (needed, facts.glibc_version) else {
        return true;
    };
    GlibcVersion(vec![major, minor]) >= *needed
}

/// A loader fits the program: same file name as its PT_INTERP (same ABI), same machine and
/// class, a real loader (checked unless `known_real`: the loader of the system's own shell),
/// and a new enough glibc.
fn fits(
    candidate: &Path,
    interp: &Path,
    program: &Object,
    needed: Option<&GlibcVersion>,
    resolver: &Resolver<'_>,
    known_real: bool,
) -> Option<Arc<LoaderFacts>> {
    if candidate.file_name() != interp.file_name() {
        return None;
    }
    if !known_real {
        let data = std::fs::read(candidate).ok()?;
        if classify_interpreter(&data) != InterpreterKind::Loader {
            return None;
        }
    }
    let facts = resolver.loader(candidate).ok()?;
    (facts.machine == program.machine && facts.class == program.class && new_enough(&facts, needed))
        .then_some(facts)
}

/// The loader the system's own programs use (PT_INTERP of `/bin/sh`), when it fits.
fn system_loader(
    interp: &Path,
    program: &Object,
    needed: Option<&GlibcVersion>,
    resolver: &Resolver<'_>,
) -> Option<PathBuf> {
    SYSTEM_PROGRAMS.iter().find_map(|sys| {
        let real = std::fs::canonicalize(sys).ok()?;
        let object = resolver.object(&real).ok()?;
        let loader = PathBuf::from(OsStr::from_bytes(object.interpreter.as_deref()?));
        let loader = std::fs::canonicalize(&loader).ok()?;
        fits(&loader, interp, program, needed, resolver, true).map(|_| loader)
    })
}

/// The newest fitting loader in the library index (store paths and profiles).
fn index_loader(
    interp: &Path,
    program: &Object,
    needed: Option<&GlibcVersion>,
    resolver: &Resolver<'_>,
    index: &mut dyn FnMut() -> Result<Arc<Index>, IndexError>,
) -> Result<Option<PathBuf>, FixError> {
    let index = index()?;
    let name = interp.file_name().map(OsStr::as_bytes).unwrap_or_default();
    let mut best: Option<((u32, u32), PathBuf)> = None;
    let mut seen = BTreeSet::new();
    for library in index.named(name) {
        let path = library.real_path();
        if !seen.insert(path.clone()) {
            continue;
        }
        let Some(facts) = fits(&path, interp, program, needed, resolver, false) else {
            continue;
        };
        let version = facts.glibc_version.unwrap_or((0, 0));
        let better = match &best {
            None => true,
            Some((v, p)) => version > *v || (version == *v && path < *p),
        };
        if better {
            best = Some((version, path));
        }
    }
    Ok(best.map(|(_, p)| p))
}

/// A library the trees miss, with the object that first needs it.
struct Wanted {
    name: Vec<u8>,
    needed_by: Vec<u8>,
    object: Arc<Object>,
    module: bool,
}

/// Libraries missing from the trees, first-needed first, excluding `skip` and the glibc family
/// (only ever from the loader's own glibc, which is in its default directories).
fn missing(
    trees: &[Option<Tree>],
    subjects: &[Subject],
    roots: &[bool],
    skip: &BTreeSet<Vec<u8>>,
) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = Vec::new();
    for ((tree, subject), root) in trees.iter().zip(subjects).zip(roots) {
        let Some(tree) = tree.as_ref().filter(|_| *root) else {
            continue;
        };
        for edge in &tree.edges {
            if !matches!(edge.outcome, Outcome::Missing)
                || is_glibc_family(&edge.name)
                || skip.contains(&edge.name)
            {
                continue;
            }
            if let Some(w) = wanted.iter_mut().find(|w| w.name == edge.name) {
                // Needed by the program itself as well as by a module: the program's need wins.
                w.module &= subject.module;
                continue;
            }
            let Some(from) = tree.objects.get(edge.from) else {
                continue;
            };
            wanted.push(Wanted {
                name: edge.name.clone(),
                needed_by: from.path.clone(),
                object: from.object.clone(),
                module: subject.module,
            });
        }
    }
    wanted
}

/// Which subjects are loaded on their own: the program, and modules that no other subject loads
/// as a dependency. A wheel's bundled libraries (`numpy.libs/…`) are found through the RPATH of
/// the extension modules that need them, and then by SONAME; resolved alone they would seem to
/// miss their siblings.
fn roots(trees: &[Option<Tree>], subjects: &[Subject], fs: &RealFs) -> Vec<bool> {
    let dependencies: std::collections::HashSet<FileId> = trees
        .iter()
        .flatten()
        .flat_map(|tree| {
            tree.objects
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 0 && Some(*i) != tree.target)
                .filter_map(|(_, o)| o.file_id)
        })
        .collect();
    subjects
        .iter()
        .map(|s| {
            !s.module
                || fs
                    .file_id(&s.path)
                    .map_or(true, |id| !dependencies.contains(&id))
        })
        .collect()
}

fn still_missing(trees: &[Option<Tree>], name: &[u8]) -> bool {
    trees.iter().flatten().any(|tree| {
        tree.edges
            .iter()
            .any(|e| e.name == name && matches!(e.outcome, Outcome::Missing))
    })
}

/// How many required symbol versions the trees miss.
fn missing_versions(trees: &[Option<Tree>]) -> usize {
    trees
        .iter()
        .flatten()
        .flat_map(|tree| &tree.findings)
        .filter(|f| matches!(f, Finding::MissingVersion { .. }))
        .count()
}

/// Every resolved request of every tree: (requesting file, name) → file loaded.
fn resolutions(trees: &[Option<Tree>]) -> HashMap<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let mut map = HashMap::new();
    for tree in trees.iter().flatten() {
        for edge in &tree.edges {
            let target = match edge.outcome {
                Outcome::Loaded(i) | Outcome::Reused(i, _) => i,
                Outcome::Missing | Outcome::Failed { .. } => continue,
            };
            let (Some(from), Some(to)) = (tree.objects.get(edge.from), tree.objects.get(target))
            else {
                continue;
            };
            map.insert((from.path.clone(), edge.name.clone()), to.path.clone());
        }
    }
    map
}

/// Whether every request resolved in `before` resolves to the same file in `after`.
fn changes_nothing(
    before: &HashMap<(Vec<u8>, Vec<u8>), Vec<u8>>,
    after: &HashMap<(Vec<u8>, Vec<u8>), Vec<u8>>,
) -> bool {
    before
        .iter()
        .all(|(key, path)| after.get(key).is_none_or(|p| p == path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_path_keeps_the_users_first() {
        let dirs = [PathBuf::from("/s/a/lib"), PathBuf::from("/s/b/lib")];
        assert_eq!(library_path(None, &[]), None);
        assert_eq!(library_path(Some(b""), &[]), None);
        assert_eq!(
            library_path(Some(b"/mine:"), &dirs).unwrap(),
            b"/mine::/s/a/lib:/s/b/lib".to_vec()
        );
        assert_eq!(
            library_path(None, &dirs).unwrap(),
            b"/s/a/lib:/s/b/lib".to_vec()
        );
    }

    #[test]
    fn glibc_directories_are_recognised() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!holds_glibc(dir.path()));
        std::fs::write(dir.path().join("libc.so.6"), b"").unwrap();
        assert!(holds_glibc(dir.path()));
    }

    #[test]
    fn directories_with_separators_are_refused() {
        assert!(usable_in_path(Path::new("/nix/store/abc-zlib/lib")));
        assert!(!usable_in_path(Path::new("/odd:dir")));
        assert!(!usable_in_path(Path::new("/odd;dir")));
        assert!(!usable_in_path(Path::new("/$ORIGIN")));
    }
}

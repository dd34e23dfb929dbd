//! Diagnose -> plan -> verify -> apply, for one tree.
//!
//! 1. Every ELF file of the tree is resolved with the loader emulation against the machine as
//!    it is (`ldfix-ldso`, real filesystem, empty environment: a fix must not depend on the
//!    caller's `LD_LIBRARY_PATH`).
//! 2. Executables whose interpreter is missing, stub-ld or nix-ld get the loader of the glibc
//!    the system uses (the PT_INTERP of the programs in `/run/current-system/sw/bin`), or a
//!    newer glibc of the store when they need a newer `GLIBC_x` than it defines.
//! 3. Every SONAME that is missing anywhere in the tree gets one provider, chosen once for the
//!    whole tree so that all files load the same copy (one process, first copy wins), defining
//!    the union of the symbol versions its users need: a library of the tree itself (written as
//!    `$ORIGIN/...`), else the library index's best provider (canonical store directories, never
//!    profile paths; GPU drivers only from `/run/opengl-driver/lib`; glibc-family names only from
//!    the loader's own glibc).
//! 4. Each file's run path gets the directories of the providers of *its* missing names,
//!    appended after the entries it has. DT_RUNPATH stays DT_RUNPATH and DT_RPATH stays DT_RPATH.
//!    A file with neither gets DT_RPATH: DT_RUNPATH would switch off the inherited-RPATH search
//!    for the file's own dependencies (glibc `elf/dl-load.c`, `_dl_map_object`: the loader chain's
//!    RPATHs are used only when the object has no DT_RUNPATH), which wheels rely on
//!    (`$ORIGIN/../pillow.libs` on the module, nothing on the bundled libraries).
//! 5. All planned contents are resolved again through an overlay filesystem; a plan that makes a
//!    dependency that resolved before fail is rejected.
//! 6. GC roots for every store path the tree refers to are registered, then each file is
//!    journaled and replaced atomically.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ldfix_elf::edit::{Edits, RpathEdit};
use ldfix_elf::read::{Class, ElfInfo, Endian, FileBytes, FileKind, LibcFlavour};
use ldfix_index::{Index, IndexConfig, Requester, SourceKind};
use ldfix_ldso::{Cpu, Environment, Finding, LoaderFacts, Outcome, RealFs, Request, Resolver};
use ldfix_nix::{NixCli, ProfileKind, StoreDir, StorePath};
use rayon::prelude::*;

use crate::error::FixError;
use crate::journal::{Journal, Record};
use crate::overlay::OverlayFs;
use crate::report::{Change, DlopenDep, LoaderChoice, Missing, Problem, Report, RunPathChange};
use crate::roots::{Registered, Roots};
use crate::scripts::{self, ScriptPlan};
use crate::walk;
use crate::write::{commit, stage, Staged, WriteOptions};

/// The directory GPU drivers come from on NixOS.
pub const OPENGL_DRIVER_DIR: &str = "/run/opengl-driver/lib";
/// The directory 32-bit GPU drivers come from on NixOS (`hardware.graphics.enable32Bit`).
pub const OPENGL_DRIVER_DIR_32: &str = "/run/opengl-driver-32/lib";
const EM_X86_64: u16 = 62;
const EM_386: u16 = 3;
/// Files whose journal records are made durable with one fsync.
const WRITE_BATCH: usize = 512;

/// The machine `fix` works on. The binary fills it from the environment; tests can point it
/// elsewhere.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The Nix store directory.
    pub store: StoreDir,
    /// The system profile (`/run/current-system/sw`): its programs name the system's glibc.
    pub system_profile: PathBuf,
    /// How to build the library index (opened only when something is missing).
    pub index: IndexConfig,
    /// The machine's Nix CLI, for GC roots.
    pub nix: Option<NixCli>,
    /// `/nix/var/nix/gcroots/auto`, written when there is no Nix CLI.
    pub gcroots_auto: PathBuf,
    /// The CPU, for the loader's hwcaps subdirectories.
    pub cpu: Cpu,
}

/// What to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Change the files.
    Fix,
    /// Change nothing; report what would change.
    Check,
    /// Change nothing; print the plan.
    DryRun,
}

/// Options of one run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Fix, check or dry run.
    pub mode: Mode,
    /// Re-plan files ldfix already fixed from their original contents (new providers).
    pub update: bool,
}

/// Progress of a long run.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A phase starts with this many steps.
    Start(&'a str, usize),
    /// One more step done.
    Step,
    /// The phase is over.
    Finish,
}

/// The library index, opened on first use.
struct LazyIndex<'m> {
    config: &'m IndexConfig,
    index: Option<Result<Index, String>>,
}

impl LazyIndex<'_> {
    fn get(&mut self) -> Result<&Index, String> {
        let config = self.config;
        self.index
            .get_or_insert_with(|| {
                Index::open(config).map_err(|e| {
                    let mut text = e.to_string();
                    let mut src = std::error::Error::source(&e);
                    while let Some(s) = src {
                        text.push_str(": ");
                        text.push_str(&s.to_string());
                        src = s.source();
                    }
                    text
                })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The C library behind a loader: a glibc (the common case, hence the name) or musl (`arch.musl`,
/// `version` 0.0): its loader, directory, version and architecture.
#[derive(Debug, Clone)]
struct Glibc {
    loader: PathBuf,
    dir: PathBuf,
    version: (u32, u32),
    arch: Arch,
}

/// An ELF machine and class, and the C library: which files can share a process (and a
/// provider).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Arch {
    machine: u16,
    class64: bool,
    musl: bool,
}

impl Arch {
    const I386: Arch = Arch {
        machine: EM_386,
        class64: false,
        musl: false,
    };

    fn of(info: &ElfInfo) -> Self {
        Self {
            machine: info.machine,
            class64: info.class == Class::Elf64,
            musl: info.libc == LibcFlavour::Musl,
        }
    }

    /// What the library index is asked for on behalf of this architecture's programs.
    fn requester(self) -> Requester {
        Requester {
            machine: self.machine,
            class: if self.class64 { 2 } else { 1 },
            libc: if self.musl { "musl" } else { "glibc" }.into(),
            ..Requester::x86_64_glibc()
        }
    }
}

impl Glibc {
    /// The glibc whose loader is `path`; `None` for anything else (musl included).
    fn from_loader(path: &Path) -> Option<Self> {
        Self::from_any_loader(path).filter(|g| !g.arch.musl)
    }

    /// The glibc or musl whose loader is `path`.
    fn from_any_loader(path: &Path) -> Option<Self> {
        let real = std::fs::canonicalize(path).ok()?;
        let facts = LoaderFacts::read(&RealFs, &real).ok()?;
        let dir = real.parent()?.to_owned();
        let (loader, version, musl) = match facts.flavour {
            ldfix_ldso::Flavour::Glibc => (real.clone(), facts.glibc_version?, false),
            // musl's loader is its libc.so under the name `ld-musl-ARCH.so.1`; that name is what
            // programs carry (nixpkgs, Alpine) and what musl derives its path file from.
            ldfix_ldso::Flavour::Musl => (dir.join(path.file_name()?), (0, 0), true),
        };
        let contents = ldfix_elf::read::read_candidate(&real).ok()?;
        let info = ldfix_elf::parse(&contents.bytes).ok()?;
        Some(Self {
            dir,
            version,
            loader,
            arch: Arch {
                musl,
                ..Arch::of(&info)
            },
        })
    }

    /// `glibc 2.36` or `musl`, for messages.
    fn describe(&self) -> String {
        if self.arch.musl {
            "musl".into()
        } else {
            format!("glibc {}.{}", self.version.0, self.version.1)
        }
    }
}

/// The loaders named `loader` that sit next to a library `name` of `arch` in the index (a C
/// library and its loader share a directory), canonical. An unusable index is a warning: the
/// files that needed another loader are then refused, not planned wrongly.
fn loaders_beside(
    index: &mut LazyIndex<'_>,
    report: &mut Report,
    name: &[u8],
    arch: Arch,
    loader: &str,
) -> Vec<Glibc> {
    let index = match index.get() {
        Ok(index) => index,
        Err(e) => {
            report
                .warnings
                .push(format!("library index unavailable: {e}"));
            return Vec::new();
        }
    };
    let dirs: BTreeSet<PathBuf> = index
        .named(name)
        .filter(|lib| lib.machine == arch.machine && (lib.class == 2) == arch.class64)
        .map(|lib| lib.real_dir_path().to_owned())
        .collect();
    dirs.iter()
        .filter_map(|d| Glibc::from_any_loader(&d.join(loader)))
        .filter(|g| g.arch == arch)
        .collect()
}

/// A musl loader of the store or a profile (nixpkgs' `musl`: `lib/ld-musl-x86_64.so.1`), for
/// x86_64 musl programs whose own loader is missing: never a glibc loader.
fn musl_loader(index: &mut LazyIndex<'_>, report: &mut Report) -> Option<Glibc> {
    const NAME: &str = "ld-musl-x86_64.so.1";
    let musl = Arch {
        machine: EM_X86_64,
        class64: true,
        musl: true,
    };
    // The newest by its store path's version (`musl-1.2.5` after `musl-1.2.3`), as the index
    // ranks versions: musl's loader has no version banner to read.
    let version = |g: &Glibc| {
        g.dir
            .parent()
            .and_then(Path::file_name)
            .map(|n| ldfix_nix::PackageName::parse(n).version)
            .unwrap_or_default()
    };
    loaders_beside(index, report, NAME.as_bytes(), musl, NAME)
        .into_iter()
        .max_by(|a, b| ldfix_nix::compare_versions(&version(a), &version(b)))
}

/// The newest i386 glibc of the store or a profile (nixpkgs' `pkgsi686Linux.glibc`, there on
/// NixOS with 32-bit graphics or Steam), for i386 programs: never the x86_64 loader.
fn i386_glibc(index: &mut LazyIndex<'_>, report: &mut Report) -> Option<Glibc> {
    loaders_beside(index, report, b"libc.so.6", Arch::I386, "ld-linux.so.2")
        .into_iter()
        .max_by_key(|g| g.version)
}

/// The glibc the system uses: the loader of the programs in the system profile's `bin`, else
/// the conventional `/lib64` loader when it is a real one (an FHS machine).
fn system_glibc(profile: &Path) -> Option<Glibc> {
    let bin = profile.join("bin");
    let mut names: Vec<_> = std::fs::read_dir(&bin)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for program in names {
        let Ok(contents) = ldfix_elf::read::read_candidate(&program) else {
            continue;
        };
        if !contents.is_elf {
            continue;
        }
        let Ok(info) = ldfix_elf::parse(&contents.bytes) else {
            continue;
        };
        if info.machine != EM_X86_64 {
            continue;
        }
        if let Some(interp) = info.interpreter {
            let path = PathBuf::from(OsStr::from_bytes(&interp));
            if let Ok(data) = std::fs::read(&path) {
                if ldfix_elf::read::classify_interpreter(&data)
                    == ldfix_elf::read::InterpreterKind::Loader
                {
                    if let Some(g) = Glibc::from_loader(&path) {
                        return Some(g);
                    }
                }
            }
        }
    }
    let fhs = Path::new("/lib64/ld-linux-x86-64.so.2");
    let data = std::fs::read(fhs).ok()?;
    (ldfix_elf::read::classify_interpreter(&data) == ldfix_elf::read::InterpreterKind::Loader)
        .then(|| Glibc::from_loader(fhs))
        .flatten()
}

/// What the diagnosis found for one file.
#[derive(Debug, Default, Clone)]
struct Diag {
    /// Why the file needs a new interpreter.
    interp_problem: Option<String>,
    /// Direct NEEDED names that are missing, in order.
    missing: Vec<Vec<u8>>,
    /// Direct NEEDED names that resolved.
    resolved: BTreeSet<Vec<u8>>,
    /// GLIBC_x versions missing from the glibc used.
    glibc_missing: Vec<Vec<u8>>,
    /// Two glibcs in one process.
    two_glibcs: bool,
    /// (library, name) requests of *other* objects of the process that resolved: a bundled
    /// library that finds its siblings through the module's inherited RPATH needs nothing.
    chain: Vec<(PathBuf, Vec<u8>)>,
}

/// A file of the tree worth a look.
enum Read {
    Elf(Box<Item>),
    /// An executable `#!` script and its head.
    Script(PathBuf, Vec<u8>),
}

/// One ELF file of the tree.
struct Item {
    path: PathBuf,
    /// The contents the plan starts from: the file, or with `--update` its original.
    base: Arc<FileBytes>,
    /// The file as it is now (large files stay mapped rather than copied: a venv holds
    /// libraries of 100 MB and more).
    current: Arc<FileBytes>,
    info: ElfInfo,
    /// Not handled (static, object file, …): nothing to do.
    inert: bool,
    refused: Option<String>,
    glibc: Option<Glibc>,
    diag: Diag,
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn shown(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `fix` (or its check or dry run) on `paths`.
pub fn fix(
    paths: &[PathBuf],
    machine: &Machine,
    options: Options,
    progress: &(dyn Fn(Event<'_>) + Sync),
) -> Result<Report, FixError> {
    let mut report = Report::default();
    let system = system_glibc(&machine.system_profile);
    let mut index = LazyIndex {
        config: &machine.index,
        index: None,
    };
    for path in paths {
        let tree = std::fs::canonicalize(path).map_err(|source| FixError::Read {
            path: path.clone(),
            source,
        })?;
        report.trees.push(shown(&tree));
        if machine.store.contains(&tree) {
            report.refused.push(Problem {
                file: shown(&tree),
                what: "is in the Nix store, which is never modified".into(),
            });
            continue;
        }
        fix_tree(
            &tree,
            machine,
            options,
            system.as_ref(),
            &mut index,
            progress,
            &mut report,
        )?;
    }
    Ok(report)
}

/// Where the journal and roots of `tree` live: the tree itself, or a single file's directory.
pub(crate) fn state_root(tree: &Path) -> PathBuf {
    if tree.is_dir() {
        tree.to_owned()
    } else {
        tree.parent().unwrap_or(Path::new("/")).to_owned()
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "the phases read best in order, in one place"
)]
fn fix_tree(
    tree: &Path,
    machine: &Machine,
    options: Options,
    system: Option<&Glibc>,
    index: &mut LazyIndex<'_>,
    progress: &(dyn Fn(Event<'_>) + Sync),
    report: &mut Report,
) -> Result<(), FixError> {
    let root = state_root(tree);
    let journal = Journal::of_tree(&root);
    let found = walk::walk(tree)?;
    clean_stale_temps(&found.stale_temps, options.mode, report);

    // --update: plan from the originals of the files ldfix changed.
    let mut originals: HashMap<PathBuf, Vec<u8>> = HashMap::new();
    if options.update {
        originals = original_contents(&root, &journal.records()?);
    }

    progress(Event::Start("reading", found.files.len()));
    let read: Vec<Read> = found
        .files
        .par_iter()
        .filter_map(|path| {
            progress(Event::Step);
            let contents = ldfix_elf::read::read_candidate(path).ok()?;
            if !contents.is_elf {
                let script = contents.bytes.starts_with(b"#!") && contents.mode & 0o111 != 0;
                return script.then(|| Read::Script(path.clone(), contents.bytes.to_vec()));
            }
            let current = Arc::new(contents.bytes);
            let base = originals.get(path).map_or_else(
                || current.clone(),
                |o| Arc::new(FileBytes::Owned(o.clone())),
            );
            let info = ldfix_elf::parse(&base).ok()?;
            Some(Read::Elf(Box::new(Item {
                path: path.clone(),
                base,
                current,
                inert: false,
                refused: None,
                glibc: None,
                diag: Diag::default(),
                info,
            })))
        })
        .collect();
    let mut items: Vec<Item> = Vec::new();
    let mut scripts: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for r in read {
        match r {
            Read::Elf(item) => items.push(*item),
            Read::Script(path, head) => scripts.push((path, head)),
        }
    }
    let (script_fixes, script_refs) = plan_scripts(&scripts, &originals, machine, report);
    progress(Event::Finish);
    items.sort_by(|a, b| a.path.cmp(&b.path));
    report.elf_files += items.len();

    // The store's i386 glibc and musl are looked up only when the tree has such files.
    let wants_i386 = items
        .iter()
        .any(|i| i.info.machine == EM_386 && i.info.is_dynamic());
    let wants_musl = items
        .iter()
        .any(|i| i.info.libc == LibcFlavour::Musl && i.info.is_dynamic());
    let libcs = Libcs {
        system,
        i386: wants_i386.then(|| i386_glibc(index, report)).flatten(),
        musl: wants_musl.then(|| musl_loader(index, report)).flatten(),
    };
    let mut loaders: HashMap<Vec<u8>, bool> = HashMap::new();
    for item in &mut items {
        classify_item(item, &libcs, &machine.store, &mut loaders);
    }

    // Diagnose against the machine (with the originals in place for --update).
    let base_files: HashMap<PathBuf, Arc<Vec<u8>>> = originals
        .into_iter()
        .map(|(path, bytes)| (path, Arc::new(bytes)))
        .collect();
    let base_fs = OverlayFs::new(&RealFs, base_files);
    let resolver = Resolver::new(&base_fs);
    let env = Environment {
        cwd: PathBuf::from("/"),
        ..Environment::default()
    };
    progress(Event::Start("resolving", items.len()));
    let diags: Vec<Option<Diag>> = items
        .par_iter()
        .map(|item| {
            progress(Event::Step);
            if item.inert || item.refused.is_some() {
                return None;
            }
            Some(diagnose(&resolver, &env, &machine.cpu, item))
        })
        .collect();
    progress(Event::Finish);
    for (item, diag) in items.iter_mut().zip(diags) {
        if let Some(d) = diag {
            item.diag = d;
        }
    }

    // A library's name that resolves where the library is actually loaded (through the
    // inherited RPATH of the module that loads it) is not missing.
    let chain: std::collections::HashSet<(PathBuf, Vec<u8>)> = items
        .iter()
        .flat_map(|i| i.diag.chain.iter().cloned())
        .collect();
    for item in &mut items {
        let path = item.path.clone();
        let resolved_in_chain: Vec<Vec<u8>> = item
            .diag
            .missing
            .iter()
            .filter(|name| chain.contains(&(path.clone(), (*name).clone())))
            .cloned()
            .collect();
        item.diag.missing.retain(|n| !resolved_in_chain.contains(n));
        item.diag.resolved.extend(resolved_in_chain);
    }

    // Executables that need a newer glibc than the system's.
    choose_newer_glibcs(
        &mut items,
        system,
        index,
        &resolver,
        &env,
        &machine.cpu,
        report,
    );

    // One provider per SONAME for the whole tree.
    let providers = choose_providers(&items, index, &machine.store, report);

    // Plan each file.
    let mut plans: BTreeMap<usize, Plan> = BTreeMap::new();
    // Planned in parallel (editing copies large files); each file's report lines are merged
    // in the tree's order.
    let planned: Vec<(usize, Result<Option<Plan>, String>, Report)> = items
        .par_iter()
        .enumerate()
        .filter(|(_, item)| !item.inert && item.refused.is_none())
        .map(|(n, item)| {
            let mut lines = Report::default();
            let plan = plan_file(item, &providers, &machine.store, &mut lines);
            (n, plan, lines)
        })
        .collect();
    for (n, plan, lines) in planned {
        report.dangling.extend(lines.dangling);
        report.dlopen.extend(lines.dlopen);
        let Some(item) = items.get(n) else { continue };
        match plan {
            Ok(Some(plan)) => {
                plans.insert(n, plan);
            }
            Ok(None) => {}
            Err(e) => report.refused.push(Problem {
                file: shown(&item.path),
                what: e,
            }),
        }
    }
    for item in &items {
        if let Some(why) = &item.refused {
            report.refused.push(Problem {
                file: shown(&item.path),
                what: why.clone(),
            });
        }
    }

    // Re-resolve with the planned contents; reject plans that break what resolved before.
    verify(&items, &mut plans, &env, &machine.cpu, report, progress);

    // What the files of the tree will refer to in the store, for the GC roots.
    let mut needed_roots = store_refs(&items, &plans, &machine.store);
    needed_roots.extend(script_refs);
    let roots = Roots::new(&root, machine.nix.as_ref(), &machine.gcroots_auto);

    for plan in plans.values() {
        report.changes.push(plan.change.clone());
    }
    report
        .changes
        .extend(script_fixes.iter().map(|f| f.change.clone()));
    hard_link_warning(
        plans
            .keys()
            .filter_map(|n| items.get(*n).map(|i| &i.path))
            .chain(script_fixes.iter().map(|f| &f.path)),
        options.mode,
        report,
    );
    match options.mode {
        Mode::Check => {
            report.roots.extend(roots.problems(&needed_roots));
            return Ok(());
        }
        Mode::DryRun => return Ok(()),
        Mode::Fix => {}
    }

    // Roots first: no file refers to an unprotected store path at any moment.
    let rooted = roots.rooted();
    let here = roots.registered_here();
    let to_root: Vec<(&PathBuf, StorePath)> = needed_roots
        .iter()
        .filter(|path| !(here && rooted.contains(*path)))
        .filter_map(|path| Some((path, machine.store.store_path_of(path)?)))
        .collect();
    // One `nix-store` process per root, up to 16 at once (they wait on process start-up and
    // Nix's database, not on the CPU), after the tree is recorded.
    if !to_root.is_empty() {
        roots.prepare()?;
    }
    let mut registered: Vec<(&PathBuf, Result<Registered, FixError>)> = Vec::new();
    for chunk in to_root.chunks(16) {
        std::thread::scope(|scope| {
            let running: Vec<_> = chunk
                .iter()
                .map(|(path, sp)| (*path, scope.spawn(|| roots.ensure(sp))))
                .collect();
            for (path, thread) in running {
                match thread.join() {
                    Ok(result) => registered.push((path, result)),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        });
    }
    for (path, result) in registered {
        match result? {
            Registered::NixCli | Registered::AutoLink => report.rooted.push(shown(path)),
            Registered::Unprotected(why) => report.roots.push(format!(
                "{} is not protected from garbage collection ({why}); the tree may break after `nix-collect-garbage`",
                path.display()
            )),
        }
    }

    let writes: Vec<Write<'_>> = plans
        .iter()
        .filter_map(|(n, plan)| {
            let item = items.get(*n)?;
            Some(Write {
                path: &item.path,
                old: &item.current,
                new: &plan.new,
                change: &plan.change,
            })
        })
        .chain(script_fixes.iter().map(|f| Write {
            path: &f.path,
            old: &f.old,
            new: &f.new,
            change: &f.change,
        }))
        .collect();
    apply(&writes, &root, &journal, progress, report)?;
    report
        .unrooted
        .extend(roots.prune(&needed_roots).iter().map(|p| shown(p)));
    Ok(())
}

fn summary_of(change: &Change) -> String {
    let mut parts = Vec::new();
    if let Some((old, new)) = &change.interpreter {
        parts.push(format!("interpreter {old} -> {new}"));
    }
    if let Some(rp) = &change.run_path {
        parts.push(format!("{} {:?} -> {:?}", rp.tag, rp.old, rp.new));
    }
    parts.join("; ")
}

fn clean_stale_temps(temps: &[PathBuf], mode: Mode, report: &mut Report) {
    for t in temps {
        let alive = walk::temp_owner(t)
            .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
        if alive {
            continue;
        }
        if mode == Mode::Fix {
            if std::fs::remove_file(t).is_err() {
                report.warnings.push(format!(
                    "cannot remove the stale temporary file {}",
                    t.display()
                ));
            }
        } else {
            report.warnings.push(format!(
                "{} is a temporary file left by an interrupted run; `ldfix fix` removes it",
                t.display()
            ));
        }
    }
}

/// One `#!` script to rewrite (see [`crate::scripts`]).
struct ScriptFix {
    path: PathBuf,
    old: Vec<u8>,
    new: Vec<u8>,
    change: Change,
}

/// A rename gives a name a new inode, so hard links are split: say so, once for the run (uv and
/// conda link every file of an environment from their caches). Names of one file that are all
/// in the plan each get a fixed copy; names outside it keep the original contents.
fn hard_link_warning<'p>(
    planned: impl Iterator<Item = &'p PathBuf>,
    mode: Mode,
    report: &mut Report,
) {
    let mut by_inode: BTreeMap<(u64, u64), (u64, Vec<&PathBuf>)> = BTreeMap::new();
    for path in planned {
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.nlink() > 1 {
                let entry = by_inode
                    .entry((meta.dev(), meta.ino()))
                    .or_insert((meta.nlink(), Vec::new()));
                entry.1.push(path);
            }
        }
    }
    if by_inode.is_empty() {
        return;
    }
    let files: Vec<&PathBuf> = by_inode
        .values()
        .flat_map(|(_, names)| names.clone())
        .collect();
    let outside: u64 = by_inode
        .values()
        .map(|(links, names)| links.saturating_sub(names.len() as u64))
        .sum();
    let mut examples: Vec<String> = files.iter().take(3).map(|p| shown(p)).collect();
    if files.len() > 3 {
        examples.push(format!("and {} more", files.len() - 3));
    }
    let (verb, keep) = if mode == Mode::Fix {
        ("get", "keep")
    } else {
        ("would get", "would keep")
    };
    let outside_text = if outside > 0 {
        format!("; {outside} other names outside this run {keep} the original contents")
    } else {
        String::new()
    };
    report.warnings.push(format!(
        "{} files are hard links ({}): their names in this tree {verb} their own fixed copies{outside_text}",
        files.len(),
        examples.join(", ")
    ));
}

/// Plans the executable `#!` scripts of the tree (see [`crate::scripts`]): a rewrite when the
/// interpreter is a missing FHS program that a profile has, a reported problem otherwise. With
/// `--update`, scripts ldfix changed before are planned again from their originals. Also returns
/// the store paths the scripts' interpreters are in (fixed now or by an earlier run), which the
/// tree's GC roots must keep.
fn plan_scripts(
    scripts: &[(PathBuf, Vec<u8>)],
    originals: &HashMap<PathBuf, Vec<u8>>,
    machine: &Machine,
    report: &mut Report,
) -> (Vec<ScriptFix>, BTreeSet<PathBuf>) {
    // The order of NixOS's PATH: user profiles, then the system profile.
    let mut bins: Vec<PathBuf> = machine
        .index
        .profiles
        .iter()
        .filter(|p| p.kind == ProfileKind::User)
        .filter_map(|p| p.lib_dir.parent().map(|root| root.join("bin")))
        .collect();
    bins.push(machine.system_profile.join("bin"));
    bins.dedup();
    let find = |name: &OsStr| scripts::find_in(&bins, name);
    let exists = |p: &Path| p.exists();
    let interpreter_ref = |data: &[u8]| {
        let sb = ldfix_elf::read::parse_shebang(data)?;
        let interp = Path::new(OsStr::from_bytes(&sb.interpreter));
        let sp = machine.store.store_path_of(interp)?;
        sp.path().exists().then(|| sp.path().to_owned())
    };
    let mut fixes = Vec::new();
    let mut refs = BTreeSet::new();
    for (path, head) in scripts {
        let original = originals.get(path);
        let base = original.map_or(head.as_slice(), Vec::as_slice);
        let len = match original {
            Some(o) => o.len() as u64,
            None => std::fs::metadata(path).map_or(0, |m| m.len()),
        };
        match scripts::plan(base, len, &exists, &find) {
            ScriptPlan::Fine => refs.extend(interpreter_ref(head)),
            ScriptPlan::Broken(why) => report.scripts.push(Problem {
                file: shown(path),
                what: why,
            }),
            ScriptPlan::Rewrite {
                old_interpreter,
                new_interpreter,
                ..
            } => {
                // The head is only the start of the file: plan again from all of it.
                let current = match std::fs::read(path) {
                    Ok(current) => current,
                    Err(e) => {
                        report.refused.push(Problem {
                            file: shown(path),
                            what: format!("cannot read it: {e}"),
                        });
                        continue;
                    }
                };
                let full = original.unwrap_or(&current);
                let ScriptPlan::Rewrite { new, .. } =
                    scripts::plan(full, full.len() as u64, &exists, &find)
                else {
                    report.refused.push(Problem {
                        file: shown(path),
                        what: "it changed while ldfix read it; run `ldfix fix` again".into(),
                    });
                    continue;
                };
                refs.extend(interpreter_ref(&new));
                if new == current {
                    continue; // --update: still the best interpreter.
                }
                let name = Path::new(OsStr::from_bytes(&old_interpreter))
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let old_shown = ldfix_elf::read::parse_shebang(&current)
                    .map_or_else(|| lossy(&old_interpreter), |sb| lossy(&sb.interpreter));
                fixes.push(ScriptFix {
                    path: path.clone(),
                    change: Change {
                        file: shown(path),
                        interpreter: Some((old_shown, shown(&new_interpreter))),
                        run_path: None,
                        reasons: vec![format!(
                            "its #! interpreter {} does not exist: `{name}` from the profiles, as its store path",
                            lossy(&old_interpreter)
                        )],
                        script: true,
                    },
                    old: current,
                    new,
                });
            }
        }
    }
    (fixes, refs)
}

/// One planned file: its current and new contents, and the change for the journal.
struct Write<'a> {
    path: &'a Path,
    old: &'a [u8],
    new: &'a [u8],
    change: &'a Change,
}

/// Writes the planned files (ELF files and scripts alike), in batches: the records of a batch are
/// appended and fsynced once, before any of its files is renamed into place; the files of a batch
/// are staged (temporary files with the original's metadata) in parallel, made durable, then
/// renamed.
fn apply(
    writes: &[Write<'_>],
    root: &Path,
    journal: &Journal,
    progress: &(dyn Fn(Event<'_>) + Sync),
    report: &mut Report,
) -> Result<(), FixError> {
    progress(Event::Start("writing", writes.len()));
    for batch in writes.chunks(WRITE_BATCH) {
        let records: Vec<Record> = batch
            .par_iter()
            .map(|w| {
                let rel = w.path.strip_prefix(root).unwrap_or(w.path);
                Record::new(rel, w.old, w.new, summary_of(w.change))
            })
            .collect();
        journal.append_all(&records)?;
        let staged: Vec<Result<Staged, Problem>> = batch
            .par_iter()
            .map(|w| {
                progress(Event::Step);
                stage(
                    w.path,
                    w.new,
                    WriteOptions {
                        split_hard_links: true,
                    },
                )
                .map_err(|e| Problem {
                    file: shown(w.path),
                    what: e.to_string(),
                })
            })
            .collect();
        let mut ready = Vec::new();
        let mut ready_files = Vec::new();
        for (w, s) in batch.iter().zip(staged) {
            match s {
                Ok(s) => {
                    ready.push(s);
                    ready_files.push(w);
                }
                Err(p) => report.refused.push(p),
            }
        }
        for (w, r) in ready_files.into_iter().zip(commit(ready)) {
            match r {
                Ok(()) => {
                    report.written += 1;
                    if w.change.script {
                        report.scripts_written += 1;
                    }
                }
                Err(e) => report.refused.push(Problem {
                    file: shown(w.path),
                    what: e.to_string(),
                }),
            }
        }
    }
    progress(Event::Finish);
    Ok(())
}

/// The original contents of every file the journal records, when the file is still exactly
/// what ldfix last wrote.
fn original_contents(root: &Path, records: &[Record]) -> HashMap<PathBuf, Vec<u8>> {
    let mut by_file: BTreeMap<PathBuf, Vec<&Record>> = BTreeMap::new();
    for r in records {
        if let Some(rel) = r.rel_path() {
            by_file.entry(root.join(rel)).or_default().push(r);
        }
    }
    let mut out = HashMap::new();
    for (path, recs) in by_file {
        let Ok(mut data) = std::fs::read(&path) else {
            continue;
        };
        let mut ok = false;
        for r in recs.iter().rev() {
            if r.is_written(&data) {
                match r.restore(&data) {
                    Some(prev) => {
                        data = prev;
                        ok = true;
                    }
                    None => break,
                }
            } else if !r.is_original(&data) {
                ok = false;
                break;
            }
        }
        if ok {
            out.insert(path, data);
        }
    }
    out
}

/// The C libraries files are planned against: the system's glibc, and the store's i386 glibc and
/// musl when the tree has such files.
struct Libcs<'a> {
    system: Option<&'a Glibc>,
    i386: Option<Glibc>,
    musl: Option<Glibc>,
}

/// Marks files that need nothing (static, object files) and files that cannot be handled.
fn classify_item(
    item: &mut Item,
    libcs: &Libcs<'_>,
    store: &StoreDir,
    loaders: &mut HashMap<Vec<u8>, bool>,
) {
    let info = &item.info;
    if matches!(
        info.kind,
        FileKind::StaticExecutable
            | FileKind::StaticPie
            | FileKind::Relocatable
            | FileKind::Core
            | FileKind::Other
    ) || !info.is_dynamic()
    {
        item.inert = true;
        return;
    }
    if store.contains(&item.path) {
        item.inert = true;
        return;
    }
    let native =
        info.machine == EM_X86_64 && info.class == Class::Elf64 && info.endian == Endian::Little;
    // Every file of a tree usually names the same interpreter: classify each once.
    let own_loader_ok = info.interpreter.as_ref().is_some_and(|i| {
        *loaders.entry(i.clone()).or_insert_with(|| {
            std::fs::read(OsStr::from_bytes(i)).is_ok_and(|d| {
                ldfix_elf::read::classify_interpreter(&d)
                    == ldfix_elf::read::InterpreterKind::Loader
            })
        })
    });
    let i386 = info.machine == EM_386
        && info.class == Class::Elf32
        && info.endian == Endian::Little
        && info.libc != LibcFlavour::Musl;
    if let (true, Some(g)) = (i386, &libcs.i386) {
        // Planned like a native file, against the i386 glibc (its loader, its providers).
        item.glibc = Some(g.clone());
        return;
    }
    if !native {
        if info.interpreter.is_some() && !own_loader_ok {
            item.refused = Some(format!(
                "{} executable whose loader {} is not on this machine; ldfix has no matching loader for it{} and never gives it a 64-bit x86_64 loader",
                info.machine_name(),
                lossy(info.interpreter.as_deref().unwrap_or_default()),
                if i386 {
                    " (no i386 glibc in the Nix store: on NixOS, `hardware.graphics.enable32Bit` brings one, or build `pkgsi686Linux.glibc`)"
                } else {
                    ""
                }
            ));
        } else {
            // Libraries of another architecture are loaded only by programs of that
            // architecture; nothing of this machine can fix them.
            item.inert = true;
        }
        return;
    }
    if info.libc == LibcFlavour::Musl {
        let executable_needs_loader = info.interpreter.is_some() && !own_loader_ok;
        if let Some(m) = libcs
            .musl
            .as_ref()
            .filter(|_| executable_needs_loader || info.interpreter.is_none())
        {
            // Planned like a glibc file, against musl's loader and musl providers only.
            item.glibc = Some(m.clone());
        } else if executable_needs_loader {
            item.refused = Some(format!(
                "musl executable whose loader {} does not exist, and no musl is in the Nix store (`nix-build '<nixpkgs>' -A musl`, or install it); ldfix never gives a musl program a glibc loader",
                lossy(info.interpreter.as_deref().unwrap_or_default())
            ));
        } else {
            item.inert = true;
        }
        return;
    }
    match libcs.system {
        Some(g) => item.glibc = Some(g.clone()),
        None => {
            item.refused = Some(
                "no glibc loader found on this machine (no program in /run/current-system/sw/bin has one, and /lib64/ld-linux-x86-64.so.2 is not a loader)".into(),
            );
        }
    }
}

fn diagnose(resolver: &Resolver<'_>, env: &Environment, cpu: &Cpu, item: &Item) -> Diag {
    let mut diag = Diag::default();
    let Some(glibc) = &item.glibc else {
        return diag;
    };
    let has_interp = item.info.interpreter.is_some();
    let request = Request {
        program: &item.path,
        env,
        cpu,
        host: (!has_interp).then_some(glibc.loader.as_path()),
        fallback_loader: Some(glibc.loader.as_path()),
    };
    let tree = match resolver.resolve(&request) {
        Ok(t) => t,
        Err(e) => {
            diag.interp_problem = Some(format!("cannot be resolved: {e}"));
            return diag;
        }
    };
    let target = tree.target.unwrap_or(0);
    for finding in &tree.findings {
        match finding {
            Finding::InterpreterMissing(p) => {
                diag.interp_problem = Some(format!("its interpreter {} does not exist", lossy(p)));
            }
            Finding::InterpreterNotLoader { path, kind } => {
                diag.interp_problem = Some(format!(
                    "its interpreter {} is {kind}, not a loader",
                    lossy(path)
                ));
            }
            Finding::TwoGlibcs { .. } => diag.two_glibcs = true,
            Finding::MissingVersion {
                object, version, ..
            } if *object == target && version.starts_with(b"GLIBC_2") => {
                diag.glibc_missing.push(version.clone());
            }
            _ => {}
        }
    }
    for edge in tree.edges.iter().filter(|e| e.from != target) {
        if !matches!(edge.outcome, Outcome::Loaded(_) | Outcome::Reused(..)) {
            continue;
        }
        let Some(from) = tree.objects.get(edge.from) else {
            continue;
        };
        let path = Path::new(OsStr::from_bytes(&from.path));
        // Store objects are never files of the tree (a relocated store only loses the shortcut).
        if path.starts_with("/nix/store") || from.object.interpreter.is_some() {
            continue;
        }
        if let Ok(real) = std::fs::canonicalize(path) {
            diag.chain.push((real, edge.name.clone()));
        }
    }
    for edge in tree.edges.iter().filter(|e| e.from == target) {
        match edge.outcome {
            Outcome::Loaded(_) | Outcome::Reused(..) => {
                diag.resolved.insert(edge.name.clone());
            }
            Outcome::Missing | Outcome::Failed { .. } => {
                if !diag.missing.contains(&edge.name) {
                    diag.missing.push(edge.name.clone());
                }
            }
        }
    }
    diag
}

/// Gives executables that need a newer `GLIBC_x` than the system's glibc the newest store glibc
/// that defines it, or refuses them naming the versions.
fn choose_newer_glibcs(
    items: &mut [Item],
    system: Option<&Glibc>,
    index: &mut LazyIndex<'_>,
    resolver: &Resolver<'_>,
    env: &Environment,
    cpu: &Cpu,
    report: &mut Report,
) {
    let Some(system) = system else { return };
    let needy: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            i.refused.is_none()
                && !i.inert
                && Arch::of(&i.info) == system.arch
                && i.info.interpreter.is_some()
                && i.diag.interp_problem.is_some()
                && !i.diag.glibc_missing.is_empty()
        })
        .map(|(n, _)| n)
        .collect();
    if needy.is_empty() {
        return;
    }
    let mut glibcs = loaders_beside(
        index,
        report,
        b"libc.so.6",
        system.arch,
        "ld-linux-x86-64.so.2",
    );
    glibcs.sort_by_key(|g| std::cmp::Reverse(g.version));
    // Loader → the files given it and the versions they need that the system glibc lacks.
    let mut used: BTreeMap<PathBuf, (Vec<String>, BTreeSet<String>)> = BTreeMap::new();
    for n in needy {
        let Some(item) = items.get_mut(n) else {
            continue;
        };
        let need = item.info.max_glibc.clone();
        let fits = |g: &Glibc| {
            need.as_ref()
                .is_some_and(|v| v.0.as_slice() <= [g.version.0, g.version.1].as_slice())
        };
        let versions: Vec<String> = item.diag.glibc_missing.iter().map(|v| lossy(v)).collect();
        match glibcs.iter().find(|g| fits(g) && g.loader != system.loader) {
            Some(g) => {
                item.glibc = Some(g.clone());
                let mut request_item_diag = diagnose(resolver, env, cpu, item);
                request_item_diag.interp_problem = item.diag.interp_problem.take().map(|p| {
                    format!(
                        "{p}; it needs {} but the system glibc is {}.{}",
                        versions.join(", "),
                        system.version.0,
                        system.version.1
                    )
                });
                item.diag = request_item_diag;
                let entry = used.entry(g.loader.clone()).or_default();
                entry.0.push(shown(&item.path));
                entry.1.extend(versions);
            }
            None => {
                item.refused = Some(format!(
                    "needs {} but the system glibc is {}.{} and no glibc in the store defines {}",
                    versions.join(", "),
                    system.version.0,
                    system.version.1,
                    if versions.len() == 1 { "it" } else { "them" }
                ));
            }
        }
    }
    for (loader, (files, versions)) in used {
        if let Some(g) = glibcs.iter().find(|g| g.loader == loader) {
            report.loaders.push(LoaderChoice {
                loader: shown(&g.loader),
                glibc: format!("{}.{}", g.version.0, g.version.1),
                why: format!(
                    "{} need{} {}, newer than the system glibc {}.{} defines",
                    files.join(", "),
                    if files.len() == 1 { "s" } else { "" },
                    versions.into_iter().collect::<Vec<_>>().join(", "),
                    system.version.0,
                    system.version.1
                ),
            });
        }
    }
}

/// Where a SONAME comes from for the whole tree.
#[derive(Debug, Clone)]
enum Source {
    /// A library of the tree itself, by its canonical path.
    InTree(PathBuf),
    /// A directory outside the tree (canonical store directory or the GPU driver directory).
    Dir(PathBuf),
}

/// For one SONAME: the versions its users need, the users (files that miss it), their glibc.
type Wanted<'i> = (BTreeSet<Vec<u8>>, Vec<String>, Option<&'i Glibc>);

/// A SONAME as wanted by files of one architecture: x86_64 and i386 files of one tree never
/// share a provider.
type ProviderKey = (Vec<u8>, Arch);

fn choose_providers(
    items: &[Item],
    index: &mut LazyIndex<'_>,
    store: &StoreDir,
    report: &mut Report,
) -> HashMap<ProviderKey, Source> {
    // Who needs what, with the union of the versions they need.
    let mut wanted: BTreeMap<ProviderKey, Wanted<'_>> = BTreeMap::new();
    for item in items {
        if item.refused.is_some() || item.inert {
            continue;
        }
        let dl = dlopen_wanted(item);
        let arch = Arch::of(&item.info);
        for name in item.diag.missing.iter().chain(dl.iter()) {
            let entry = wanted.entry((name.clone(), arch)).or_default();
            for need in &item.info.version_needs {
                if &need.file == name {
                    entry.0.extend(need.versions.iter().cloned());
                }
            }
            if item.diag.missing.contains(name) {
                entry.1.push(shown(&item.path));
            }
            if entry.2.is_none() {
                entry.2 = item.glibc.as_ref();
            }
        }
    }
    let mut chosen = HashMap::new();
    if wanted.is_empty() {
        return chosen;
    }
    // Libraries of the tree, by SONAME and file name, and architecture.
    let mut in_tree: HashMap<ProviderKey, &Item> = HashMap::new();
    for item in items {
        if item.info.kind != FileKind::SharedLibrary {
            continue;
        }
        let arch = Arch::of(&item.info);
        // A library that needs no C library at all serves glibc and musl programs alike.
        let mut arches = vec![arch];
        if item.info.libc == LibcFlavour::None {
            arches.push(Arch { musl: true, ..arch });
        }
        for arch in arches {
            if let Some(s) = &item.info.soname {
                in_tree.entry((s.clone(), arch)).or_insert(item);
            }
            if let Some(f) = item.path.file_name() {
                in_tree.entry((f.as_bytes().to_vec(), arch)).or_insert(item);
            }
        }
    }
    for (key, (versions, users, glibc)) in wanted {
        let (name, arch) = &key;
        if let Some(item) = in_tree.get(&key) {
            let defines_all = versions.iter().all(|v| item.info.version_defs.contains(v));
            if defines_all {
                chosen.insert(key.clone(), Source::InTree(item.path.clone()));
                continue;
            }
        }
        if ldfix_index::is_glibc_family(name) {
            // Only ever from the glibc of the file's own loader. A loader whose default
            // directories do not hold its own libraries (Debian's i386 multilib loader searches
            // /lib32) gets its own directory in the run path; a nixpkgs loader never needs it.
            if let Some(g) = glibc.filter(|g| g.dir.join(OsStr::from_bytes(name)).exists()) {
                chosen.insert(key.clone(), Source::Dir(g.dir.clone()));
                continue;
            }
            if !users.is_empty() {
                report.missing.push(Missing {
                    soname: lossy(name),
                    needed_by: users,
                    versions: versions.iter().map(|v| lossy(v)).collect(),
                    nixpkgs: None,
                    install: None,
                    why: "part of glibc: it comes only from the glibc of the program's loader, which does not have it".into(),
                });
            }
            continue;
        }
        let gpu = ldfix_index::is_gpu_driver_library(name);
        let found = match index.get() {
            Ok(index) => {
                let requester = Requester {
                    versions: versions.iter().cloned().collect(),
                    glibc_dir: glibc.map(|g| g.dir.clone()),
                    ..arch.requester()
                };
                let providers = index.lookup(name, &requester);
                let pick = providers
                    .iter()
                    .filter(|p| gpu == (p.library.source == SourceKind::GpuDriver))
                    .find(|p| p.usable());
                match pick {
                    Some(p) => Ok(if gpu {
                        PathBuf::from(if *arch == Arch::I386 {
                            OPENGL_DRIVER_DIR_32
                        } else {
                            OPENGL_DRIVER_DIR
                        })
                    } else {
                        p.library.real_dir_path().to_owned()
                    }),
                    None => Err(match providers.iter().find(|p| p.compatible) {
                        Some(p) => format!(
                            "{} has it but lacks {}",
                            p.library.real_path().display(),
                            p.missing_versions.iter().map(|v| lossy(v)).collect::<Vec<_>>().join(", ")
                        ),
                        None if gpu => format!("a GPU driver library: it comes only from {OPENGL_DRIVER_DIR} (enable the graphics driver)"),
                        None => format!(
                            "no library of this name for {} {} on this machine",
                            if arch.class64 { "x86_64" } else { "i386" },
                            if arch.musl { "musl" } else { "glibc" }
                        ),
                    }),
                }
            }
            Err(e) => Err(format!("library index unavailable: {e}")),
        };
        match found {
            Ok(dir) => {
                if !gpu && !store.contains(&dir) {
                    report.warnings.push(format!(
                        "{} comes from {}, outside the Nix store",
                        lossy(name),
                        dir.display()
                    ));
                }
                chosen.insert(key.clone(), Source::Dir(dir));
            }
            Err(why) if !users.is_empty() => {
                let entry = ldfix_index::nixpkgs::lookup(name);
                report.missing.push(Missing {
                    soname: lossy(name),
                    needed_by: users,
                    versions: versions.iter().map(|v| lossy(v)).collect(),
                    nixpkgs: entry.map(|e| e.installable()),
                    install: entry.map(ldfix_index::nixpkgs::NixpkgsEntry::install_command),
                    why,
                });
            }
            Err(_) => {}
        }
    }
    chosen
}

/// `.note.dlopen` sonames of `item` that no directory on its search path has: the first
/// alternative of each required or recommended feature.
fn dlopen_wanted(item: &Item) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for entry in &item.info.dlopen {
        let priority = entry.priority.as_deref().unwrap_or("recommended");
        if priority == "suggested" || dlopen_resolved(item, &entry.sonames) {
            continue;
        }
        if let Some(first) = entry.sonames.first() {
            out.push(first.clone());
        }
    }
    out
}

fn search_dirs(item: &Item) -> Vec<PathBuf> {
    let origin = item.path.parent().unwrap_or(Path::new("/"));
    let mut dirs = Vec::new();
    let run_path = item.info.runpath.as_ref().or(item.info.rpath.as_ref());
    for entry in run_path
        .map(|r| r.split(|&b| b == b':').collect::<Vec<_>>())
        .unwrap_or_default()
    {
        dirs.push(expand_origin(entry, origin));
    }
    if let Some(g) = &item.glibc {
        dirs.push(g.dir.clone());
    }
    dirs
}

fn dlopen_resolved(item: &Item, sonames: &[Vec<u8>]) -> bool {
    let dirs = search_dirs(item);
    sonames
        .iter()
        .any(|s| dirs.iter().any(|d| d.join(OsStr::from_bytes(s)).exists()))
}

fn expand_origin(entry: &[u8], origin: &Path) -> PathBuf {
    let o = origin.as_os_str().as_bytes();
    let mut out = Vec::new();
    let mut rest = entry;
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix(b"${ORIGIN}") {
            out.extend_from_slice(o);
            rest = r;
        } else if let Some(r) = rest.strip_prefix(b"$ORIGIN") {
            out.extend_from_slice(o);
            rest = r;
        } else if let Some((&b, r)) = rest.split_first() {
            out.push(b);
            rest = r;
        }
    }
    PathBuf::from(OsStr::from_bytes(&out))
}

/// The planned change of one file.
struct Plan {
    /// Shared with the overlay that verifies the plan.
    new: Arc<Vec<u8>>,
    change: Change,
    /// Store paths the new contents refer to (interpreter, run path).
    refs: Vec<PathBuf>,
}

/// `$ORIGIN/REL` naming `to` from a file in `from_dir`.
fn origin_relative(from_dir: &Path, to: &Path) -> Vec<u8> {
    let a: Vec<Component<'_>> = from_dir.components().collect();
    let b: Vec<Component<'_>> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = b"$ORIGIN".to_vec();
    for _ in common..a.len() {
        out.extend_from_slice(b"/..");
    }
    for c in b.iter().skip(common) {
        out.push(b'/');
        out.extend_from_slice(c.as_os_str().as_bytes());
    }
    out
}

fn plan_file(
    item: &Item,
    providers: &HashMap<ProviderKey, Source>,
    store: &StoreDir,
    report: &mut Report,
) -> Result<Option<Plan>, String> {
    let info = &item.info;
    let mut edits = Edits::default();
    let mut reasons = Vec::new();
    let mut change = Change {
        file: shown(&item.path),
        interpreter: None,
        run_path: None,
        reasons: Vec::new(),
        script: false,
    };
    if let (Some(problem), Some(glibc)) = (&item.diag.interp_problem, &item.glibc) {
        if info.interpreter.is_some() {
            let new = glibc.loader.as_os_str().as_bytes().to_vec();
            reasons.push(format!("{problem}: loader of {}", glibc.describe()));
            edits.interpreter = Some(new);
        }
    }

    // The run path: existing entries (minus store paths that no longer exist), then the
    // directories of the providers of this file's missing names.
    let has_runpath = info.runpath.is_some();
    let old = info.runpath.as_ref().or(info.rpath.as_ref());
    let mut entries: Vec<Vec<u8>> = old
        .map(|r| r.split(|&b| b == b':').map(<[u8]>::to_vec).collect())
        .unwrap_or_default();
    let before = entries.len();
    entries.retain(|e| {
        let p = Path::new(OsStr::from_bytes(e));
        let dangling = store.store_path_of(p).is_some_and(|sp| !sp.path().exists());
        if dangling {
            report.dangling.push(Problem {
                file: shown(&item.path),
                what: format!(
                    "run path entry {} is a store path that no longer exists",
                    p.display()
                ),
            });
        }
        !dangling
    });
    let mut rpath_changed = entries.len() != before;
    let origin = item.path.parent().unwrap_or(Path::new("/"));
    let wanted: Vec<Vec<u8>> = item
        .diag
        .missing
        .iter()
        .cloned()
        .chain(dlopen_wanted(item))
        .collect();
    let arch = Arch::of(info);
    for name in &wanted {
        let Some(source) = providers.get(&(name.clone(), arch)) else {
            continue;
        };
        let entry = match source {
            Source::InTree(lib) => origin_relative(origin, lib.parent().unwrap_or(Path::new("/"))),
            Source::Dir(dir) => dir.as_os_str().as_bytes().to_vec(),
        };
        if !entries.contains(&entry) {
            reasons.push(format!("{} from {}", lossy(name), lossy(&entry)));
            entries.push(entry);
            rpath_changed = true;
        }
    }
    for entry in &item.info.dlopen {
        let dl = dlopen_wanted(item);
        report.dlopen.push(DlopenDep {
            file: shown(&item.path),
            sonames: entry.sonames.iter().map(|s| lossy(s)).collect(),
            priority: entry.priority.clone().unwrap_or_default(),
            required: entry.priority.as_deref() == Some("required"),
            resolved: dlopen_resolved(item, &entry.sonames),
            provider: entry
                .sonames
                .first()
                .filter(|s| dl.contains(s))
                .and_then(|s| providers.get(&(s.clone(), arch)))
                .map(|src| match src {
                    Source::InTree(p) => shown(p),
                    Source::Dir(d) => shown(d),
                }),
        });
    }
    if rpath_changed {
        let new_value = entries.join(&b':');
        edits.rpath = Some(if new_value.is_empty() {
            RpathEdit::Remove
        } else {
            RpathEdit::Set(new_value.clone())
        });
        // RUNPATH stays RUNPATH; RPATH stays RPATH; neither gets RPATH (module docs).
        edits.force_rpath = !has_runpath;
        change.run_path = Some(RunPathChange {
            tag: if has_runpath { "RUNPATH" } else { "RPATH" },
            old: old.map(|o| lossy(o)).unwrap_or_default(),
            new: lossy(&new_value),
        });
    }
    let new = if edits == Edits::default() {
        None
    } else {
        ldfix_elf::edit::edit(&item.base, &edits).map_err(|e| format!("cannot edit: {e}"))?
    };
    let new = match new {
        Some(n) => n,
        // With --update the original may need nothing any more.
        None => item.base.to_vec(),
    };
    if new[..] == item.current[..] {
        return Ok(None);
    }
    if let (Some(interp), Some(old)) = (&edits.interpreter, &info.interpreter) {
        change.interpreter = Some((lossy(old), lossy(interp)));
    }
    change.reasons = reasons;
    let refs = refs_of(&new, store);
    Ok(Some(Plan {
        new: Arc::new(new),
        change,
        refs,
    }))
}

/// Store paths named by a file's interpreter and run path.
fn refs_of(data: &[u8], store: &StoreDir) -> Vec<PathBuf> {
    let Ok(info) = ldfix_elf::parse(data) else {
        return Vec::new();
    };
    refs_of_info(&info, store)
}

fn refs_of_info(info: &ElfInfo, store: &StoreDir) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut names: Vec<&[u8]> = Vec::new();
    if let Some(i) = &info.interpreter {
        names.push(i);
    }
    for r in [&info.rpath, &info.runpath].into_iter().flatten() {
        names.extend(r.split(|&b| b == b':'));
    }
    for n in names {
        if let Some(sp) = store.store_path_of(Path::new(OsStr::from_bytes(n))) {
            out.push(sp.path().to_owned());
        }
    }
    out
}

fn store_refs(
    items: &[Item],
    plans: &BTreeMap<usize, Plan>,
    store: &StoreDir,
) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for (n, item) in items.iter().enumerate() {
        if item.inert && item.refused.is_none() && !item.info.is_dynamic() {
            continue;
        }
        match plans.get(&n) {
            Some(plan) => out.extend(plan.refs.iter().cloned()),
            None if Arc::ptr_eq(&item.base, &item.current) => {
                out.extend(refs_of_info(&item.info, store));
            }
            None => {
                if let Ok(info) = ldfix_elf::parse(&item.current) {
                    out.extend(refs_of_info(&info, store));
                }
            }
        }
    }
    // Existence once per store path, not per file; dangling ones are reported elsewhere.
    out.retain(|p| p.exists());
    out
}

/// Resolves every file again with the planned contents in place; drops plans that make a
/// dependency fail that resolved before, until none does.
fn verify(
    items: &[Item],
    plans: &mut BTreeMap<usize, Plan>,
    env: &Environment,
    cpu: &Cpu,
    report: &mut Report,
    progress: &(dyn Fn(Event<'_>) + Sync),
) {
    for _round in 0..4 {
        if plans.is_empty() {
            return;
        }
        let files: HashMap<PathBuf, Arc<Vec<u8>>> = plans
            .iter()
            .filter_map(|(n, p)| Some((items.get(*n)?.path.clone(), p.new.clone())))
            .collect();
        let fs = OverlayFs::new(&RealFs, files);
        let resolver = Resolver::new(&fs);
        progress(Event::Start("verifying", items.len()));
        let afters: Vec<Option<Diag>> = items
            .par_iter()
            .enumerate()
            .map(|(n, item)| {
                progress(Event::Step);
                if item.inert || item.refused.is_some() {
                    return None;
                }
                let mut probe = Item {
                    path: item.path.clone(),
                    base: item.base.clone(),
                    current: item.current.clone(),
                    info: item.info.clone(),
                    inert: false,
                    refused: None,
                    glibc: item.glibc.clone(),
                    diag: Diag::default(),
                };
                if let Some(plan) = plans.get(&n) {
                    if let Ok(info) = ldfix_elf::parse(&plan.new) {
                        probe.info = info;
                    }
                }
                Some(diagnose(&resolver, env, cpu, &probe))
            })
            .collect();
        let chain: std::collections::HashSet<(PathBuf, Vec<u8>)> = afters
            .iter()
            .flatten()
            .flat_map(|d| d.chain.iter().cloned())
            .collect();
        let mut broken: Vec<(usize, String)> = Vec::new();
        for (n, (item, after)) in items.iter().zip(&afters).enumerate() {
            let Some(after) = after else { continue };
            let lost: Vec<String> = item
                .diag
                .resolved
                .iter()
                .filter(|name| {
                    !after.resolved.contains(*name)
                        && !chain.contains(&(item.path.clone(), (*name).clone()))
                })
                .map(|n| lossy(n))
                .collect();
            if !lost.is_empty() {
                broken.push((
                    n,
                    format!(
                        "the plan would break {} (resolved before); not changed",
                        lost.join(", ")
                    ),
                ));
            } else if after.two_glibcs && !item.diag.two_glibcs {
                broken.push((
                    n,
                    "the plan would load two glibcs into one process; not changed".into(),
                ));
            }
        }
        progress(Event::Finish);
        if broken.is_empty() {
            return;
        }
        for (n, why) in broken {
            // A breakage caused by another file's plan is undone by dropping that file's plan
            // too: drop the plan of the broken file, and if it had none, every plan (safe).
            if plans.remove(&n).is_none() {
                plans.clear();
            }
            if let Some(item) = items.get(n) {
                report.rejected.push(Problem {
                    file: shown(&item.path),
                    what: why,
                });
            }
        }
    }
    plans.clear();
}

//! The search itself: which file every DT_NEEDED of a program resolves to, in load order.
//!
//! glibc: `elf/rtld.c` (`dl_main`: preloads, then `_dl_map_object_deps`, a breadth-first walk),
//! `elf/dl-load.c` (`_dl_map_object`: reuse by name, SONAME and file identity; `open_path`;
//! the RPATH / LD_LIBRARY_PATH / RUNPATH / cache / default order), `elf/dl-cache.c`,
//! ld.so(8). musl: `ldso/dynlink.c` (`load_library`, `path_open`, `fixup_rpath`, `load_deps`).
//!
//! Missing libraries are modelled as `LD_TRACE_LOADED_OBJECTS` does: the walk goes on, and a
//! library that was not found is searched for again by the next object that needs it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::cache::{CacheQuery, LdCache};
use crate::dst::{self, DstValues, SearchDir};
use crate::error::LdsoError;
use crate::fs::{CachedFs, FileId, Fs};
use crate::hwcaps::Cpu;
use crate::loader::{Flavour, LoaderFacts};
use crate::object::{verify_header, Object, Verdict};

/// The process environment the loader sees. Never read from this process: always an input.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// LD_LIBRARY_PATH.
    pub ld_library_path: Option<Vec<u8>>,
    /// LD_PRELOAD.
    pub ld_preload: Option<Vec<u8>>,
    /// AT_SECURE: the program is setuid/setgid or has file capabilities.
    pub secure: bool,
    /// The working directory, for relative paths (empty LD_LIBRARY_PATH elements, `./x`).
    pub cwd: PathBuf,
}

impl Environment {
    /// Builds the environment from `NAME=VALUE` pairs; names the loader does not read are
    /// ignored, and `LD_SECURE=1` (ours) requests secure-execution mode.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = &'a OsStr>, cwd: PathBuf) -> Self {
        let mut env = Self {
            cwd,
            ..Self::default()
        };
        for pair in pairs {
            let bytes = pair.as_bytes();
            let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
                continue;
            };
            let (name, value) = (
                bytes.get(..eq).unwrap_or_default(),
                bytes.get(eq + 1..).unwrap_or_default(),
            );
            match name {
                b"LD_LIBRARY_PATH" => env.ld_library_path = Some(value.to_vec()),
                b"LD_PRELOAD" => env.ld_preload = Some(value.to_vec()),
                b"LD_SECURE" => env.secure = value == b"1",
                _ => {}
            }
        }
        env
    }
}

/// Why a library was found where it was: the rule of the loader that found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// The program itself.
    Main,
    /// The dynamic loader (PT_INTERP), reused by name or SONAME.
    Interpreter,
    /// Opened by `dlopen` from the host program.
    Dlopen,
    /// LD_PRELOAD.
    PreloadEnv,
    /// The loader's preload file.
    PreloadFile,
    /// A name with a slash, used as a path.
    Path,
    /// DT_RPATH of the object with this index.
    Rpath(usize),
    /// LD_LIBRARY_PATH.
    LdLibraryPath,
    /// DT_RUNPATH of the needing object.
    Runpath,
    /// The loader's cache.
    Cache,
    /// The loader's default directories.
    Default,
}

impl Rule {
    /// A short stable name for `--json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Main => "main",
            Rule::Interpreter => "interpreter",
            Rule::Dlopen => "dlopen",
            Rule::PreloadEnv => "LD_PRELOAD",
            Rule::PreloadFile => "preload-file",
            Rule::Path => "path",
            Rule::Rpath(_) => "RPATH",
            Rule::LdLibraryPath => "LD_LIBRARY_PATH",
            Rule::Runpath => "RUNPATH",
            Rule::Cache => "cache",
            Rule::Default => "default",
        }
    }
}

/// How an already loaded object was matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReuseBy {
    /// One of the names it was loaded under (or its path).
    Name,
    /// Its DT_SONAME.
    Soname,
    /// The file found is the same (device, inode) as a loaded one.
    FileId,
}

/// What became of one candidate file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryResult {
    /// Not there (or not accessible, or a path component is not a directory).
    Absent,
    /// Other ELF class: skipped.
    OtherClass,
    /// Other machine: skipped.
    OtherMachine,
    /// A cache hit in a default directory, discarded because of DF_1_NODEFLIB.
    NodeflibExcluded,
    /// Unusable; the library fails to load.
    Fatal(&'static str),
    /// Taken.
    Found,
}

/// One place the loader tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The path as the loader built it.
    pub path: Vec<u8>,
    /// The rule that produced it.
    pub rule: Rule,
    /// What happened.
    pub result: TryResult,
}

/// What one DT_NEEDED (or preload, or dlopen) became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new object was loaded.
    Loaded(usize),
    /// An already loaded object was reused.
    Reused(usize, ReuseBy),
    /// Nothing usable was found.
    Missing,
    /// A file was found but cannot be loaded.
    Failed {
        /// The file.
        path: Vec<u8>,
        /// Why.
        reason: String,
    },
}

/// One request for a library by an object.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The requesting object (index into [`Tree::objects`]).
    pub from: usize,
    /// The name requested.
    pub name: Vec<u8>,
    /// What it became.
    pub outcome: Outcome,
    /// Every place tried, in order (empty for reuse).
    pub tried: Vec<Tried>,
}

/// One object in the process.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Names it was requested under, first one first (`l_libname`).
    pub names: Vec<Vec<u8>>,
    /// Its path as the loader opened it (`l_name`): what `ldd` prints after `=>`.
    pub path: Vec<u8>,
    /// How it was found.
    pub rule: Rule,
    /// The object that loaded it (`l_loader`; musl `needed_by`).
    pub loaded_by: Option<usize>,
    /// Its facts.
    pub object: Arc<Object>,
    /// Device and inode.
    pub file_id: Option<FileId>,
    /// `$ORIGIN` for it.
    pub origin: Option<Vec<u8>>,
    rpath_dirs: Option<Vec<SearchDir>>,
}

/// Something a user needs to know about the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// PT_INTERP names a file that does not exist.
    InterpreterMissing(Vec<u8>),
    /// PT_INTERP is NixOS's stub-ld, nix-ld, or not ELF: not a real loader.
    InterpreterNotLoader {
        /// The interpreter path.
        path: Vec<u8>,
        /// `stub-ld`, `nix-ld` or `not-elf`.
        kind: &'static str,
    },
    /// The program's own loader could not be used; this one's rules were assumed.
    AssumedLoader(PathBuf),
    /// The file has no PT_INTERP; it was resolved as if this program `dlopen`ed it.
    DlopenHost(PathBuf),
    /// A library was not found (the edge has every place tried).
    Missing {
        /// Index of the edge.
        edge: usize,
    },
    /// A library was found but cannot be loaded.
    Failed {
        /// Index of the edge.
        edge: usize,
    },
    /// A file of the wrong class or machine was skipped on the way.
    WrongArchSkipped {
        /// Index of the edge.
        edge: usize,
        /// The skipped file.
        path: Vec<u8>,
        /// `class` or `machine`.
        what: &'static str,
    },
    /// A glibc library resolved from another directory than the loader's glibc: two glibcs in
    /// one process.
    TwoGlibcs {
        /// The library object.
        object: usize,
        /// Its directory (symlinks resolved).
        dir: PathBuf,
        /// The loader's directory (symlinks resolved).
        loader_dir: PathBuf,
    },
    /// A required symbol version the resolved library does not define.
    MissingVersion {
        /// The requiring object.
        object: usize,
        /// The library.
        library: usize,
        /// The version name, e.g. `GLIBC_2.38`.
        version: Vec<u8>,
    },
}

/// The result: every object in load order, every request, and the findings.
#[derive(Debug, Clone)]
pub struct Tree {
    /// The file resolved.
    pub program: PathBuf,
    /// The loader whose rules were applied.
    pub loader: Option<Arc<LoaderFacts>>,
    /// Objects in load order; index 0 is the main program (the host when `dlopen` was assumed).
    pub objects: Vec<Loaded>,
    /// Index of the resolved file itself (0, or the dlopen'ed object).
    pub target: Option<usize>,
    /// Requests in the order the loader made them.
    pub edges: Vec<Edge>,
    /// Findings.
    pub findings: Vec<Finding>,
}

/// What to resolve and under which assumptions.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The program (or library) to resolve, as the loader would see its path.
    pub program: &'a Path,
    /// The loader's environment.
    pub env: &'a Environment,
    /// The CPU (hwcaps subdirectories, `$PLATFORM`).
    pub cpu: &'a Cpu,
    /// For files without PT_INTERP: the program that `dlopen`s them.
    pub host: Option<&'a Path>,
    /// A loader to assume when the program's own is missing or is not a loader.
    pub fallback_loader: Option<&'a Path>,
}

type Shared<T> = Mutex<HashMap<PathBuf, T>>;

/// Resolves trees through one filesystem, sharing parsed files between calls and threads.
pub struct Resolver<'a> {
    fs: CachedFs<'a>,
    objects: Shared<Result<Arc<Object>, String>>,
    loaders: Shared<Result<Arc<LoaderFacts>, String>>,
    caches: Shared<Option<Arc<LdCache>>>,
    interpreters: Shared<Option<ldfix_elf::read::InterpreterKind>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn path_of(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

/// `_dl_new_object`: the origin is the directory part of the name the object was opened under.
fn origin_of(realname: &[u8], cwd: &Path) -> Vec<u8> {
    let mut full = if realname.first() == Some(&b'/') {
        realname.to_vec()
    } else {
        let mut c = cwd.as_os_str().as_bytes().to_vec();
        if c.last() != Some(&b'/') {
            c.push(b'/');
        }
        c.extend_from_slice(realname);
        c
    };
    match full.iter().rposition(|&b| b == b'/') {
        Some(0) | None => full.truncate(1),
        Some(i) => full.truncate(i),
    }
    full
}

impl<'a> Resolver<'a> {
    /// A resolver over `fs`.
    pub fn new(fs: &'a dyn Fs) -> Self {
        Self {
            fs: CachedFs::new(fs),
            objects: Mutex::default(),
            loaders: Mutex::default(),
            caches: Mutex::default(),
            interpreters: Mutex::default(),
        }
    }

    /// The filesystem.
    pub fn fs(&self) -> &dyn Fs {
        &self.fs
    }

    /// Reads and parses an object (shared between calls).
    pub fn object(&self, path: &Path) -> Result<Arc<Object>, String> {
        if let Some(found) = lock(&self.objects).get(path) {
            return found.clone();
        }
        let result = match self.fs.read_elf(path) {
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            Ok(data) => ldfix_elf::read::parse(&data)
                .map(|info| Arc::new(Object::from_elf(&info)))
                .map_err(|e| format!("{}: {e}", path.display())),
        };
        lock(&self.objects).insert(path.to_owned(), result.clone());
        result
    }

    /// Reads a loader's facts (shared between calls).
    pub fn loader(&self, path: &Path) -> Result<Arc<LoaderFacts>, String> {
        if let Some(found) = lock(&self.loaders).get(path) {
            return found.clone();
        }
        let result = LoaderFacts::read(&self.fs, path)
            .map(Arc::new)
            .map_err(|e| error_chain(&e));
        lock(&self.loaders).insert(path.to_owned(), result.clone());
        result
    }

    /// What the file at an interpreter path is, judged by content (None: it does not exist).
    fn interpreter_kind(&self, path: &Path) -> Option<ldfix_elf::read::InterpreterKind> {
        if let Some(found) = lock(&self.interpreters).get(path) {
            return *found;
        }
        let kind = self
            .fs
            .read(path)
            .ok()
            .map(|data| ldfix_elf::read::classify_interpreter(&data));
        lock(&self.interpreters).insert(path.to_owned(), kind);
        kind
    }

    fn ld_cache(&self, path: &Path) -> Option<Arc<LdCache>> {
        if let Some(found) = lock(&self.caches).get(path) {
            return found.clone();
        }
        // A missing or corrupt cache is ignored by the loader (`_dl_load_cache_lookup`).
        let cache = LdCache::read(&self.fs, path).ok().map(Arc::new);
        lock(&self.caches).insert(path.to_owned(), cache.clone());
        cache
    }

    /// Resolves one program or library.
    pub fn resolve(&self, req: &Request<'_>) -> Result<Tree, LdsoError> {
        let program_path = absolute(req.program, &req.env.cwd);
        let program =
            self.object(&program_path)
                .map_err(|_| match self.fs.read_elf(&program_path) {
                    Err(source) => LdsoError::Io {
                        path: program_path.clone(),
                        source,
                    },
                    Ok(data) => match ldfix_elf::read::parse(&data) {
                        Err(source) => LdsoError::Elf {
                            path: program_path.clone(),
                            source,
                        },
                        Ok(_) => LdsoError::Static {
                            path: program_path.clone(),
                        },
                    },
                })?;
        if !program.dynamic {
            return Err(LdsoError::Static { path: program_path });
        }
        let mut findings = Vec::new();
        // The main object and its loader: the program itself, or the host that dlopens it.
        let (main_path, main, dlopen) = match &program.interpreter {
            Some(_) => (program_path.clone(), program.clone(), false),
            None => {
                let host = req
                    .host
                    .or(req.fallback_loader)
                    .map(|h| absolute(h, &req.env.cwd));
                let Some(host) = host else {
                    return Err(LdsoError::UnknownLoader {
                        path: program_path,
                        why: "the file has no PT_INTERP and no host program or loader was given",
                    });
                };
                findings.push(Finding::DlopenHost(host.clone()));
                let host_object = self.object(&host).map_err(|_| LdsoError::UnknownLoader {
                    path: host.clone(),
                    why: "the host program cannot be read as ELF",
                })?;
                (host, host_object, true)
            }
        };
        let loader = self.pick_loader(&main_path, &main, req, &mut findings)?;
        let mut walk = Walk::new(self, req, loader.clone(), &main_path, main);
        walk.findings = findings;
        match loader.flavour {
            Flavour::Glibc => walk.run_glibc(dlopen.then_some(program_path.as_path())),
            Flavour::Musl => walk.run_musl(dlopen.then_some(program_path.as_path())),
        }
        walk.check();
        Ok(Tree {
            program: program_path,
            loader: Some(loader),
            target: if dlopen { walk.dlopened } else { Some(0) },
            objects: walk.objects,
            edges: walk.edges,
            findings: walk.findings,
        })
    }

    fn pick_loader(
        &self,
        main_path: &Path,
        main: &Object,
        req: &Request<'_>,
        findings: &mut Vec<Finding>,
    ) -> Result<Arc<LoaderFacts>, LdsoError> {
        let own = match &main.interpreter {
            // The host is the loader itself (`ld.so` as the dlopen host).
            None => Some(main_path.to_path_buf()),
            Some(interp) => {
                let path = absolute(path_of(interp), &req.env.cwd);
                match self.interpreter_kind(&path) {
                    None => {
                        findings.push(Finding::InterpreterMissing(interp.clone()));
                        None
                    }
                    Some(ldfix_elf::read::InterpreterKind::Loader) => Some(path),
                    Some(kind) => {
                        findings.push(Finding::InterpreterNotLoader {
                            path: interp.clone(),
                            kind: kind.as_str(),
                        });
                        None
                    }
                }
            }
        };
        if let Some(path) = own {
            match self.loader(&path) {
                Ok(facts) => {
                    // The loader keeps the name the program gave it.
                    if let Some(interp) = &main.interpreter {
                        if facts.path.as_os_str().as_bytes() != interp.as_slice() {
                            let mut renamed = (*facts).clone();
                            renamed.path = PathBuf::from(OsStr::from_bytes(interp));
                            return Ok(Arc::new(renamed));
                        }
                    }
                    return Ok(facts);
                }
                Err(_) if req.fallback_loader.is_some() => {}
                Err(_) => {
                    return Err(LdsoError::UnknownLoader {
                        path,
                        why: "its loader is neither glibc's nor musl's",
                    })
                }
            }
        }
        let Some(fallback) = req.fallback_loader else {
            return Err(LdsoError::UnknownLoader {
                path: main_path.to_path_buf(),
                why: "its interpreter is unusable and no loader to assume was given",
            });
        };
        let fallback = absolute(fallback, &req.env.cwd);
        findings.push(Finding::AssumedLoader(fallback.clone()));
        let facts = self
            .loader(&fallback)
            .map_err(|_| LdsoError::UnknownLoader {
                path: fallback.clone(),
                why: "not a glibc or musl loader",
            })?;
        let mut facts = (*facts).clone();
        if let Some(interp) = &main.interpreter {
            facts.path = PathBuf::from(OsStr::from_bytes(interp));
        }
        Ok(Arc::new(facts))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn absolute(path: &Path, cwd: &Path) -> PathBuf {
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    }
}

/// What a search produced.
enum Found {
    At(Vec<u8>, Rule),
    Nothing,
    Fatal(Vec<u8>, &'static str),
}

/// glibc's status of one (directory, subdirectory) pair (`r_dir_status`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum DirStatus {
    Existing,
    Nonexisting,
}

/// The state of one resolution.
struct Walk<'r, 'a> {
    resolver: &'r Resolver<'a>,
    fs: &'r dyn Fs,
    req: &'r Request<'r>,
    loader: Arc<LoaderFacts>,
    subdirs: Vec<Vec<u8>>,
    query: CacheQuery,
    cache: Option<Arc<LdCache>>,
    llp: Vec<SearchDir>,
    dir_status: HashMap<(Vec<u8>, usize), DirStatus>,
    objects: Vec<Loaded>,
    /// The loader's own object until something names it.
    rtld: Option<Loaded>,
    rtld_index: Option<usize>,
    edges: Vec<Edge>,
    findings: Vec<Finding>,
    dlopened: Option<usize>,
}

impl<'r, 'a> Walk<'r, 'a> {
    fn new(
        resolver: &'r Resolver<'a>,
        req: &'r Request<'r>,
        loader: Arc<LoaderFacts>,
        main_path: &Path,
        main: Arc<Object>,
    ) -> Self {
        let fs: &dyn Fs = &resolver.fs;
        let glibc = loader.glibc_version.unwrap_or((2, 36));
        let subdirs = match loader.flavour {
            Flavour::Glibc => req.cpu.subdirs(glibc),
            Flavour::Musl => vec![Vec::new()],
        };
        let query = cache_query(&loader, req.cpu);
        let cache = match (&loader.flavour, &loader.cache_path) {
            (Flavour::Glibc, Some(path)) => resolver.ld_cache(path),
            _ => None,
        };
        // The main program's $ORIGIN comes from /proc/self/exe: its path with symlinks resolved
        // (sysdeps/unix/sysv/linux/dl-origin.c; musl fixup_rpath likewise).
        let main_origin = fs
            .canonicalize(main_path)
            .ok()
            .map(|p| origin_of(p.as_os_str().as_bytes(), &req.env.cwd));
        let main_loaded = Loaded {
            names: vec![Vec::new()],
            path: main_path.as_os_str().as_bytes().to_vec(),
            rule: Rule::Main,
            loaded_by: None,
            file_id: fs.file_id(main_path).ok(),
            object: main,
            origin: main_origin,
            rpath_dirs: None,
        };
        let rtld = resolver
            .object(&absolute(&loader.file, &req.env.cwd))
            .ok()
            .map(|object| {
                let path = loader.path.as_os_str().as_bytes().to_vec();
                let mut names = vec![path.clone()];
                if let Some(soname) = &loader.soname {
                    names.push(soname.clone());
                }
                Loaded {
                    names,
                    origin: Some(origin_of(&path, &req.env.cwd)),
                    path,
                    rule: Rule::Interpreter,
                    loaded_by: None,
                    object,
                    file_id: loader.file_id,
                    rpath_dirs: None,
                }
            });
        let mut walk = Self {
            resolver,
            fs: &resolver.fs,
            req,
            loader,
            subdirs,
            query,
            cache,
            llp: Vec::new(),
            dir_status: HashMap::new(),
            objects: vec![main_loaded],
            rtld,
            rtld_index: None,
            edges: Vec::new(),
            findings: Vec::new(),
            dlopened: None,
        };
        if !req.env.secure {
            if let Some(llp) = &req.env.ld_library_path {
                walk.llp = match walk.loader.flavour {
                    // _dl_init_paths: ':' or ';', tokens expanded for the main program.
                    Flavour::Glibc => {
                        let v = walk.dst_values(0);
                        dst::glibc_search_list(llp, b":;", &v)
                    }
                    Flavour::Musl => dst::musl_search_list(llp),
                };
            }
        }
        walk
    }

    fn dst_values(&self, index: usize) -> DstValues<'_> {
        let object = self.objects.get(index);
        DstValues {
            origin: object.and_then(|o| o.origin.as_deref()),
            lib: &self.loader.lib,
            platform: self.req.cpu.platform.as_deref(),
            secure: self.req.env.secure,
            is_executable: index == 0,
            trusted: &self.loader.system_dirs,
        }
    }

    fn fs_path(&self, path: &[u8]) -> PathBuf {
        absolute(path_of(path), &self.req.env.cwd)
    }

    // ---------------------------------------------------------------- glibc

    fn run_glibc(&mut self, dlopen: Option<&Path>) {
        let mut queue = vec![0];
        queue.extend(self.glibc_preloads());
        self.glibc_deps(queue);
        if let Some(target) = dlopen {
            // _dl_open: mapped with the caller's search paths (__RTLD_CALLMAP), but the new
            // object has no l_loader, so its own dependencies' RPATH chain stops at it.
            let name = target.as_os_str().as_bytes().to_vec();
            let edge = self.glibc_map(0, &name, Rule::Dlopen, true, false);
            if let Some(index) = self.edge_target(edge) {
                self.dlopened = Some(index);
                self.glibc_deps(vec![index]);
            }
        }
    }

    /// `_dl_map_object_deps`: breadth first over the queue, appending new objects.
    fn glibc_deps(&mut self, mut queue: Vec<usize>) {
        let mut next = 0;
        while let Some(&index) = queue.get(next) {
            next += 1;
            let needed = self
                .objects
                .get(index)
                .map(|o| o.object.needed.clone())
                .unwrap_or_default();
            for name in needed {
                let edge = self.glibc_map(index, &name, Rule::Path, false, false);
                if let Some(Edge {
                    outcome: Outcome::Loaded(new),
                    ..
                }) = self.edges.get(edge)
                {
                    queue.push(*new);
                }
            }
        }
    }

    /// rtld.c: LD_PRELOAD (split on ' ' and ':'; in secure mode names with '/' are ignored),
    /// then the preload file (split on ' ', '\t', '\n', ':'; `#` starts a comment). Both are
    /// mapped with the main program as the loader, with __RTLD_SECURE.
    fn glibc_preloads(&mut self) -> Vec<usize> {
        let mut names: Vec<(Vec<u8>, Rule)> = Vec::new();
        if let Some(list) = &self.req.env.ld_preload {
            for name in list
                .split(|&b| b == b' ' || b == b':')
                .filter(|n| !n.is_empty())
            {
                if self.req.env.secure && name.contains(&b'/') {
                    continue;
                }
                names.push((name.to_vec(), Rule::PreloadEnv));
            }
        }
        if let Some(file) = &self.loader.preload_path {
            if let Ok(content) = self.fs.read(file) {
                let mut text = Vec::with_capacity(content.len());
                let mut comment = false;
                for b in content {
                    comment = (comment || b == b'#') && b != b'\n';
                    text.push(if comment { b' ' } else { b });
                }
                for name in text
                    .split(|b| b" \t\n:".contains(b))
                    .filter(|n| !n.is_empty())
                {
                    names.push((name.to_vec(), Rule::PreloadFile));
                }
            }
        }
        let mut loaded = Vec::new();
        for (name, rule) in names {
            let edge = self.glibc_map(0, &name, rule, false, true);
            if let Some(Edge {
                outcome: Outcome::Loaded(new),
                ..
            }) = self.edges.get(edge)
            {
                loaded.push(*new);
            }
        }
        loaded
    }

    fn edge_target(&self, edge: usize) -> Option<usize> {
        match self.edges.get(edge)?.outcome {
            Outcome::Loaded(i) | Outcome::Reused(i, _) => Some(i),
            _ => None,
        }
    }

    /// `_dl_lookup_map` plus the loader's own map: a loaded object whose path, a name it was
    /// loaded under, or SONAME equals `name`.
    fn lookup(&mut self, name: &[u8]) -> Option<(usize, ReuseBy)> {
        for (i, l) in self.objects.iter().enumerate() {
            if l.path == name && i != 0 || l.names.iter().any(|n| n == name) {
                return Some((i, ReuseBy::Name));
            }
            if l.object.soname.as_deref() == Some(name) {
                return Some((i, ReuseBy::Soname));
            }
        }
        let rtld = self.rtld.as_ref()?;
        let by = if rtld.names.iter().any(|n| n == name) {
            ReuseBy::Name
        } else if rtld.object.soname.as_deref() == Some(name) {
            ReuseBy::Soname
        } else {
            return None;
        };
        Some((self.place_rtld()?, by))
    }

    /// The loader's map enters the load order where it is first needed (rtld.c re-inserts it
    /// at its place in the search list).
    fn place_rtld(&mut self) -> Option<usize> {
        if let Some(i) = self.rtld_index {
            return Some(i);
        }
        let rtld = self.rtld.take()?;
        self.objects.push(rtld);
        let index = self.objects.len() - 1;
        self.rtld_index = Some(index);
        Some(index)
    }

    fn add_name(&mut self, index: usize, name: &[u8]) {
        if let Some(l) = self.objects.get_mut(index) {
            if !l.names.iter().any(|n| n == name) {
                l.names.push(name.to_vec());
            }
        }
    }

    /// `_dl_map_object`: reuse, or search and load. Returns the index of the new edge.
    fn glibc_map(
        &mut self,
        loader: usize,
        name: &[u8],
        rule: Rule,
        callmap: bool,
        preload: bool,
    ) -> usize {
        let mut tried = Vec::new();
        let outcome = if let Some((index, by)) = self.lookup(name) {
            Outcome::Reused(index, by)
        } else {
            let found = if name.contains(&b'/') {
                // The name may contain tokens, expanded for the loading object.
                let v = self.dst_values(loader);
                let path = dst::glibc_substitute(name, &v).unwrap_or_default();
                match self.verify(&path) {
                    TryResult::Found => {
                        tried.push(Tried {
                            path: path.clone(),
                            rule: Rule::Path,
                            result: TryResult::Found,
                        });
                        Found::At(
                            path,
                            if matches!(rule, Rule::Path) {
                                Rule::Path
                            } else {
                                rule
                            },
                        )
                    }
                    TryResult::Fatal(why) => Found::Fatal(path, why),
                    result => {
                        tried.push(Tried {
                            path,
                            rule: Rule::Path,
                            result,
                        });
                        Found::Nothing
                    }
                }
            } else {
                self.glibc_search(loader, name, preload, &mut tried)
            };
            let rule = match rule {
                Rule::Dlopen | Rule::PreloadEnv | Rule::PreloadFile => rule,
                _ => Rule::Path,
            };
            self.open_found(found, name, loader, callmap, rule)
        };
        self.edges.push(Edge {
            from: loader,
            name: name.to_vec(),
            outcome,
            tried,
        });
        self.edges.len() - 1
    }

    /// Turns a search result into an outcome: reuse by file identity, or a new object.
    /// `via` replaces the search rule for preloads and dlopen, which say how the object came in.
    fn open_found(
        &mut self,
        found: Found,
        name: &[u8],
        loader: usize,
        callmap: bool,
        via: Rule,
    ) -> Outcome {
        let (path, search_rule) = match found {
            Found::Nothing => return Outcome::Missing,
            Found::Fatal(path, why) => {
                return Outcome::Failed {
                    path,
                    reason: why.to_string(),
                }
            }
            Found::At(path, rule) => (path, rule),
        };
        let fs_path = self.fs_path(&path);
        let file_id = self.fs.file_id(&fs_path).ok();
        if let Some(id) = file_id {
            if let Some(i) = self.objects.iter().position(|l| l.file_id == Some(id)) {
                self.add_name(i, name);
                return Outcome::Reused(i, ReuseBy::FileId);
            }
            if self.rtld.as_ref().is_some_and(|r| r.file_id == Some(id)) {
                if let Some(i) = self.place_rtld() {
                    self.add_name(i, name);
                    return Outcome::Reused(i, ReuseBy::FileId);
                }
            }
        }
        let object = match self.resolver.object(&fs_path) {
            Ok(object) => object,
            Err(reason) => return Outcome::Failed { path, reason },
        };
        let rule = match via {
            Rule::Dlopen | Rule::PreloadEnv | Rule::PreloadFile => via,
            _ => search_rule,
        };
        self.objects.push(Loaded {
            names: vec![name.to_vec()],
            origin: Some(origin_of(&path, &self.req.env.cwd)),
            path,
            rule,
            loaded_by: if callmap { None } else { Some(loader) },
            object,
            file_id,
            rpath_dirs: None,
        });
        Outcome::Loaded(self.objects.len() - 1)
    }

    /// glibc `open_verify` on a path.
    fn verify(&self, path: &[u8]) -> TryResult {
        if path.is_empty() {
            return TryResult::Absent;
        }
        match self.fs.read_head(&self.fs_path(path), 64) {
            Err(e) => match e.kind() {
                io::ErrorKind::NotFound
                | io::ErrorKind::PermissionDenied
                | io::ErrorKind::NotADirectory => TryResult::Absent,
                io::ErrorKind::IsADirectory => {
                    TryResult::Fatal("cannot read file data: Is a directory")
                }
                _ => TryResult::Fatal("cannot open shared object file"),
            },
            Ok(head) => {
                let big = self.loader_big_endian();
                match verify_header(&head, self.loader.class, big, self.loader.machine) {
                    Verdict::Ok => TryResult::Found,
                    Verdict::OtherClass => TryResult::OtherClass,
                    Verdict::OtherMachine => TryResult::OtherMachine,
                    Verdict::Fatal(why) => TryResult::Fatal(why),
                }
            }
        }
    }

    fn loader_big_endian(&self) -> bool {
        self.rtld
            .as_ref()
            .map(|r| r.object.endian)
            .or_else(|| {
                self.rtld_index
                    .and_then(|i| self.objects.get(i))
                    .map(|r| r.object.endian)
            })
            .is_some_and(|e| e == ldfix_elf::read::Endian::Big)
    }

    fn rpath_dirs(&mut self, index: usize) -> Vec<SearchDir> {
        if let Some(dirs) = self.objects.get(index).and_then(|l| l.rpath_dirs.clone()) {
            return dirs;
        }
        let rpath = self
            .objects
            .get(index)
            .and_then(|l| l.object.glibc_rpath().map(<[u8]>::to_vec));
        let dirs = match rpath {
            Some(r) => dst::glibc_search_list(&r, b":", &self.dst_values(index)),
            None => Vec::new(),
        };
        if let Some(l) = self.objects.get_mut(index) {
            l.rpath_dirs = Some(dirs.clone());
        }
        dirs
    }

    /// The search of `_dl_map_new_object` for a name without a slash.
    fn glibc_search(
        &mut self,
        loader: usize,
        name: &[u8],
        preload: bool,
        tried: &mut Vec<Tried>,
    ) -> Found {
        let loader_object = self.objects.get(loader).map(|l| l.object.clone());
        let Some(loader_object) = loader_object else {
            return Found::Nothing;
        };
        if loader_object.runpath.is_none() {
            let mut did_main = false;
            let mut current = Some(loader);
            while let Some(index) = current {
                let dirs = self.rpath_dirs(index);
                if !dirs.is_empty() {
                    match self.open_path(&dirs, name, Rule::Rpath(index), tried) {
                        Found::Nothing => did_main |= index == 0,
                        found => return found,
                    }
                }
                current = self.objects.get(index).and_then(|l| l.loaded_by);
            }
            if !did_main {
                let dirs = self.rpath_dirs(0);
                if !dirs.is_empty() {
                    if let found @ (Found::At(..) | Found::Fatal(..)) =
                        self.open_path(&dirs, name, Rule::Rpath(0), tried)
                    {
                        return found;
                    }
                }
            }
        }
        if !self.llp.is_empty() {
            let dirs = self.llp.clone();
            if let found @ (Found::At(..) | Found::Fatal(..)) =
                self.open_path(&dirs, name, Rule::LdLibraryPath, tried)
            {
                return found;
            }
        }
        if let Some(runpath) = &loader_object.runpath {
            let dirs = dst::glibc_search_list(runpath, b":", &self.dst_values(loader));
            if let found @ (Found::At(..) | Found::Fatal(..)) =
                self.open_path(&dirs, name, Rule::Runpath, tried)
            {
                return found;
            }
        }
        let nodeflib = loader_object.nodeflib();
        if !(preload && self.req.env.secure) {
            if let Some(cache) = self.cache.clone() {
                if let Some(hit) = cache.lookup(name, &self.query) {
                    let in_default = self.loader.system_dirs.iter().any(|d| hit.starts_with(d));
                    if nodeflib && in_default {
                        tried.push(Tried {
                            path: hit.to_vec(),
                            rule: Rule::Cache,
                            result: TryResult::NodeflibExcluded,
                        });
                    } else {
                        let result = self.verify(hit);
                        tried.push(Tried {
                            path: hit.to_vec(),
                            rule: Rule::Cache,
                            result,
                        });
                        match result {
                            TryResult::Found => return Found::At(hit.to_vec(), Rule::Cache),
                            TryResult::Fatal(why) => return Found::Fatal(hit.to_vec(), why),
                            _ => {}
                        }
                    }
                }
            }
        }
        if !nodeflib {
            let dirs = self.loader.system_dirs.clone();
            return self.open_path(&dirs, name, Rule::Default, tried);
        }
        Found::Nothing
    }

    /// `open_path`: every directory, every hwcaps subdirectory, skipping directories known not
    /// to exist and files of the wrong class or machine.
    fn open_path(
        &mut self,
        dirs: &[SearchDir],
        name: &[u8],
        rule: Rule,
        tried: &mut Vec<Tried>,
    ) -> Found {
        let subdirs = self.subdirs.clone();
        for dir in dirs {
            let relative = dir.first() != Some(&b'/');
            for (k, sub) in subdirs.iter().enumerate() {
                let key = (dir.clone(), k);
                if !relative && self.dir_status.get(&key) == Some(&DirStatus::Nonexisting) {
                    continue;
                }
                let mut path = dir.clone();
                path.extend_from_slice(sub);
                path.extend_from_slice(name);
                let result = self.verify(&path);
                tried.push(Tried {
                    path: path.clone(),
                    rule,
                    result,
                });
                if !relative && !self.dir_status.contains_key(&key) {
                    let status = if result != TryResult::Absent {
                        DirStatus::Existing
                    } else {
                        let mut d = dir.clone();
                        d.extend_from_slice(sub);
                        if self.fs.is_dir(&self.fs_path(&d)) {
                            DirStatus::Existing
                        } else {
                            DirStatus::Nonexisting
                        }
                    };
                    self.dir_status.insert(key, status);
                }
                match result {
                    TryResult::Found => return Found::At(path, rule),
                    TryResult::Fatal(why) => return Found::Fatal(path, why),
                    _ => {}
                }
            }
        }
        Found::Nothing
    }

    // ---------------------------------------------------------------- musl

    fn run_musl(&mut self, dlopen: Option<&Path>) {
        // load_preload: whitespace or ':' separated, needed_by none.
        let mut queue = vec![0];
        if !self.req.env.secure {
            if let Some(list) = self.req.env.ld_preload.clone() {
                for name in list
                    .split(|&b| b.is_ascii_whitespace() || b == b':')
                    .filter(|n| !n.is_empty())
                {
                    let edge = self.musl_load(None, name, Rule::PreloadEnv);
                    if let Some(Edge {
                        outcome: Outcome::Loaded(i),
                        ..
                    }) = self.edges.get(edge)
                    {
                        queue.push(*i);
                    }
                }
            }
        }
        self.musl_deps(0);
        if let Some(target) = dlopen {
            // dlopen: load_library(file, head), so the main program's run path chain applies.
            let name = target.as_os_str().as_bytes().to_vec();
            let edge = self.musl_load(Some(0), &name, Rule::Dlopen);
            if let Some(index) = self.edge_target(edge) {
                self.dlopened = Some(index);
                self.musl_deps(index);
            }
        }
    }

    /// load_deps: every object from `start` to the end of the list, including ones appended.
    fn musl_deps(&mut self, start: usize) {
        let mut index = start;
        while index < self.objects.len() {
            let needed = self
                .objects
                .get(index)
                .map(|o| o.object.needed.clone())
                .unwrap_or_default();
            for name in needed {
                self.musl_load(Some(index), &name, Rule::Path);
            }
            index += 1;
        }
    }

    /// musl `load_library`.
    fn musl_load(&mut self, needed_by: Option<usize>, name: &[u8], via: Rule) -> usize {
        let from = needed_by.unwrap_or(0);
        let mut tried = Vec::new();
        let outcome = self.musl_outcome(needed_by, name, via, &mut tried);
        self.edges.push(Edge {
            from,
            name: name.to_vec(),
            outcome,
            tried,
        });
        self.edges.len() - 1
    }

    fn musl_outcome(
        &mut self,
        needed_by: Option<usize>,
        name: &[u8],
        via: Rule,
        tried: &mut Vec<Tried>,
    ) -> Outcome {
        if name.is_empty() {
            return Outcome::Missing;
        }
        // "Catch and block attempts to reload the implementation itself".
        let reserved: [&[u8]; 7] = [
            b"c.",
            b"pthread.",
            b"rt.",
            b"m.",
            b"dl.",
            b"util.",
            b"xnet.",
        ];
        let is_self = name
            .strip_prefix(b"lib")
            .is_some_and(|rest| reserved.iter().any(|r| rest.starts_with(r)))
            || name == self.loader.path.as_os_str().as_bytes();
        if is_self {
            return match self.place_rtld() {
                Some(i) => Outcome::Reused(i, ReuseBy::Name),
                None => Outcome::Missing,
            };
        }
        let (fd_path, rule) = if name.contains(&b'/') {
            match self.fs.read_head(&self.fs_path(name), 1) {
                Ok(_) => (name.to_vec(), Rule::Path),
                Err(_) => {
                    tried.push(Tried {
                        path: name.to_vec(),
                        rule: Rule::Path,
                        result: TryResult::Absent,
                    });
                    return Outcome::Missing;
                }
            }
        } else {
            // Already loaded under this short name (the basename it was found as)?
            for (i, l) in self.objects.iter().enumerate().skip(1) {
                if l.names.first().map(Vec::as_slice) == Some(name) && l.rule != Rule::Path {
                    return Outcome::Reused(i, ReuseBy::Name);
                }
                if l.names.iter().skip(1).any(|n| n == name) {
                    return Outcome::Reused(i, ReuseBy::Name);
                }
            }
            match self.musl_search(needed_by, name, tried) {
                Some(found) => found,
                None => return Outcome::Missing,
            }
        };
        let fs_path = self.fs_path(&fd_path);
        let file_id = self.fs.file_id(&fs_path).ok();
        if let Some(id) = file_id {
            let same = self.objects.iter().position(|l| l.file_id == Some(id));
            let is_rtld = self.rtld.as_ref().is_some_and(|r| r.file_id == Some(id));
            let same = if same.is_none() && is_rtld {
                self.place_rtld()
            } else {
                same
            };
            if let Some(i) = same {
                if rule != Rule::Path {
                    self.add_name(i, name);
                }
                return Outcome::Reused(i, ReuseBy::FileId);
            }
        }
        // map_library fails on a file of the wrong class or machine: no further search.
        let big = self.loader_big_endian();
        let head = self.fs.read_head(&fs_path, 64).unwrap_or_default();
        match verify_header(&head, self.loader.class, big, self.loader.machine) {
            Verdict::Ok => {}
            Verdict::OtherClass => {
                return Outcome::Failed {
                    path: fd_path,
                    reason: "wrong ELF class".into(),
                }
            }
            Verdict::OtherMachine => {
                return Outcome::Failed {
                    path: fd_path,
                    reason: "wrong machine".into(),
                }
            }
            Verdict::Fatal(why) => {
                return Outcome::Failed {
                    path: fd_path,
                    reason: why.into(),
                }
            }
        }
        let object = match self.resolver.object(&fs_path) {
            Ok(o) => o,
            Err(reason) => {
                return Outcome::Failed {
                    path: fd_path,
                    reason,
                }
            }
        };
        let rule = if matches!(via, Rule::Dlopen | Rule::PreloadEnv) {
            via
        } else {
            rule
        };
        // The short name is the basename of a searched path; a path name gets none.
        let names = if name.contains(&b'/') {
            vec![Vec::new(), name.to_vec()]
        } else {
            vec![name.to_vec()]
        };
        self.objects.push(Loaded {
            names,
            origin: Some(origin_of(&fd_path, &self.req.env.cwd)),
            path: fd_path,
            rule,
            loaded_by: needed_by,
            object,
            file_id,
            rpath_dirs: None,
        });
        Outcome::Loaded(self.objects.len() - 1)
    }

    /// LD_LIBRARY_PATH, then the run paths of the needing chain, then the path file.
    fn musl_search(
        &mut self,
        needed_by: Option<usize>,
        name: &[u8],
        tried: &mut Vec<Tried>,
    ) -> Option<(Vec<u8>, Rule)> {
        let llp = self.llp.clone();
        if let Some(found) = self.musl_path_open(&llp, name, Rule::LdLibraryPath, tried) {
            return found;
        }
        let mut current = needed_by;
        while let Some(index) = current {
            let dirs = self.musl_rpath(index);
            if let Some(found) = self.musl_path_open(&dirs, name, Rule::Rpath(index), tried) {
                return found;
            }
            current = self.objects.get(index).and_then(|l| l.loaded_by);
        }
        let dirs = self.loader.system_dirs.clone();
        self.musl_path_open(&dirs, name, Rule::Default, tried)
            .flatten()
    }

    /// `fixup_rpath`: DT_RUNPATH if present, else DT_RPATH; only `$ORIGIN`.
    fn musl_rpath(&mut self, index: usize) -> Vec<SearchDir> {
        if let Some(dirs) = self.objects.get(index).and_then(|l| l.rpath_dirs.clone()) {
            return dirs;
        }
        let Some(l) = self.objects.get(index) else {
            return Vec::new();
        };
        let raw = l.object.runpath.as_ref().or(l.object.rpath.as_ref());
        let secure = self.req.env.secure;
        let origin = if index == 0 && secure {
            None
        } else {
            l.origin
                .as_deref()
                .filter(|o| !secure || o.first() == Some(&b'/'))
        };
        let dirs = raw
            .and_then(|r| dst::musl_substitute(r, origin))
            .map(|r| dst::musl_search_list(&r))
            .unwrap_or_default();
        if let Some(l) = self.objects.get_mut(index) {
            l.rpath_dirs = Some(dirs.clone());
        }
        dirs
    }

    /// `path_open`: the first file that opens wins. `Some(None)` stops the whole search (an
    /// error other than ENOENT, ENOTDIR, EACCES, ENAMETOOLONG).
    fn musl_path_open(
        &self,
        dirs: &[SearchDir],
        name: &[u8],
        rule: Rule,
        tried: &mut Vec<Tried>,
    ) -> Option<Option<(Vec<u8>, Rule)>> {
        for dir in dirs {
            let mut path = dir.clone();
            path.push(b'/');
            path.extend_from_slice(name);
            match self.fs.read_head(&self.fs_path(&path), 1) {
                Ok(_) => {
                    tried.push(Tried {
                        path: path.clone(),
                        rule,
                        result: TryResult::Found,
                    });
                    return Some(Some((path, rule)));
                }
                Err(e) => {
                    tried.push(Tried {
                        path,
                        rule,
                        result: TryResult::Absent,
                    });
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::NotFound
                            | io::ErrorKind::NotADirectory
                            | io::ErrorKind::PermissionDenied
                            | io::ErrorKind::InvalidFilename
                    ) {
                        return Some(None);
                    }
                }
            }
        }
        None
    }

    // ---------------------------------------------------------------- findings

    fn check(&mut self) {
        for (i, edge) in self.edges.iter().enumerate() {
            match edge.outcome {
                Outcome::Missing => self.findings.push(Finding::Missing { edge: i }),
                Outcome::Failed { .. } => self.findings.push(Finding::Failed { edge: i }),
                _ => {}
            }
            for t in &edge.tried {
                let what = match t.result {
                    TryResult::OtherClass => "class",
                    TryResult::OtherMachine => "machine",
                    _ => continue,
                };
                self.findings.push(Finding::WrongArchSkipped {
                    edge: i,
                    path: t.path.clone(),
                    what,
                });
            }
        }
        self.check_two_glibcs();
        self.check_versions();
    }

    fn check_two_glibcs(&mut self) {
        if self.loader.flavour != Flavour::Glibc {
            return;
        }
        let canonical_dir = |fs: &dyn Fs, path: &Path| {
            fs.canonicalize(path)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
        };
        let loader_path = absolute(&self.loader.path, &self.req.env.cwd);
        let Some(loader_dir) = canonical_dir(self.fs, &loader_path) else {
            return;
        };
        for (i, l) in self.objects.iter().enumerate().skip(1) {
            let is_glibc = l
                .names
                .iter()
                .chain(l.object.soname.iter())
                .any(|n| is_glibc_family(n));
            if !is_glibc || Some(i) == self.rtld_index {
                continue;
            }
            if let Some(dir) = canonical_dir(self.fs, &self.fs_path(&l.path)) {
                if dir != loader_dir {
                    self.findings.push(Finding::TwoGlibcs {
                        object: i,
                        dir,
                        loader_dir: loader_dir.clone(),
                    });
                }
            }
        }
    }

    /// `_dl_check_map_versions`: every version an object requires from a library must be
    /// defined by the library it resolved to.
    fn check_versions(&mut self) {
        let mut missing = Vec::new();
        for edge in &self.edges {
            let target = match edge.outcome {
                Outcome::Loaded(t) | Outcome::Reused(t, _) => t,
                _ => continue,
            };
            let (Some(from), Some(lib)) = (self.objects.get(edge.from), self.objects.get(target))
            else {
                continue;
            };
            for (file, versions) in &from.object.version_needs {
                if *file != edge.name {
                    continue;
                }
                for v in versions {
                    if !lib.object.version_defs.contains(v) && !lib.object.version_defs.is_empty() {
                        missing.push(Finding::MissingVersion {
                            object: edge.from,
                            library: target,
                            version: v.clone(),
                        });
                    }
                }
            }
        }
        missing.dedup();
        self.findings.extend(missing);
    }
}

pub use ldfix_elf::is_glibc_family;

/// The cache lookup parameters of a loader on a CPU (`_DL_CACHE_DEFAULT_ID` per architecture,
/// glibc `sysdeps/unix/sysv/linux/*/dl-cache.h`).
fn cache_query(loader: &LoaderFacts, cpu: &Cpu) -> CacheQuery {
    use ldfix_elf::read::Class;
    // FLAG_ELF_LIBC6 = 3, plus FLAG_X8664_LIB64 0x300, FLAG_AARCH64_LIB64 0xa00,
    // FLAG_POWERPC_LIB64 0x500, FLAG_S390_LIB64 0x400, FLAG_RISCV_FLOAT_ABI_DOUBLE 0x1000.
    let (default_id, plain) = match (loader.machine, loader.class) {
        (62, Class::Elf64) => (0x303, false),
        (183, _) => (0xa03, false),
        (21, Class::Elf64) => (0x503, false),
        (22, Class::Elf64) => (0x403, false),
        (243, Class::Elf64) => (0x1003, false),
        _ => (3, true),
    };
    CacheQuery {
        default_id,
        accept_plain_elf: plain,
        hwcaps: cpu.glibc_hwcaps.clone(),
        isa_level: cpu.isa_level,
        legacy_hwcap: cpu.legacy_hwcap_bits,
    }
}

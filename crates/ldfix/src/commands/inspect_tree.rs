//! `ldfix inspect --tree`: the dependency tree as the real loader would build it (issue #4).
//!
//! The resolution is `ldfix-ldso`'s; this module picks the filesystem (`--root`), the environment
//! (`--env`), the CPU (this machine's `/proc/cpuinfo`) and the default loader, walks directories,
//! resolves files in parallel, and prints the tree or `--json` (docs/inspect-tree-json.md).

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ldfix_ldso::{
    Cpu, Environment, Finding, Fs, Outcome, RealFs, Request, Resolver, ReuseBy, RootedFs, Rule,
    Tree, TryResult,
};
use serde_json::{json, Value};

use crate::cli::InspectArgs;
use crate::exit::Outcome as Exit;
use crate::printer::Printer;

pub(crate) fn run(args: &InspectArgs, printer: &Printer) -> anyhow::Result<Exit> {
    let rooted = args.root.as_ref().map(RootedFs::new);
    let fs: &dyn Fs = match &rooted {
        Some(r) => r,
        None => &RealFs,
    };
    let cwd = if rooted.is_some() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().context("cannot read the current directory")?
    };
    let env = Environment::from_pairs(args.env.iter().map(|s| s.as_os_str()), cwd);
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = Cpu::from_cpuinfo(&cpuinfo, std::env::consts::ARCH.as_bytes());
    let files = collect_files(args, rooted.as_ref(), printer)?;
    let resolver = Resolver::new(fs);
    let paths: Vec<PathBuf> = files.iter().map(|(p, _)| p.clone()).collect();
    // The Nix store as seen from the host, for a glibc to assume when the FHS loader is stub-ld.
    let store = match &rooted {
        Some(r) => r.root().join("nix/store"),
        None => PathBuf::from("/nix/store"),
    };
    let results = resolve_all(&resolver, &paths, &env, &cpu, args.host.as_deref(), &store);

    let mut attention = false;
    let mut errors = 0usize;
    let mut out = String::new();
    let mut json_trees = Vec::new();
    let mut resolved = 0usize;
    for ((file, walked), result) in files.iter().zip(results) {
        if *walked && result.as_ref().is_err_and(is_not_elf) {
            // Directories hold more than ELF files; only ELF files are resolved.
            continue;
        }
        resolved += 1;
        match result {
            Ok(tree) => {
                attention |= needs_attention(&tree);
                if args.json {
                    json_trees.push(tree_json(&tree));
                } else {
                    render(&tree, args.explain, &mut out);
                }
            }
            Err(error) => {
                errors += 1;
                let text = format!("{:#}", anyhow::Error::new(error));
                if args.json {
                    json_trees.push(
                        json!({ "program": display(file.as_os_str().as_bytes()), "error": text }),
                    );
                } else {
                    printer.warn(&text);
                }
            }
        }
    }
    if args.json {
        out = serde_json::to_string_pretty(&Value::Array(json_trees))? + "\n";
    }
    printer.data(&out)?;
    Ok(if errors > 0 && errors == resolved {
        Exit::Error
    } else if attention || errors > 0 {
        Exit::NeedsAttention
    } else {
        Exit::Success
    })
}

/// The files to resolve, as paths inside the filesystem used, each with whether it was found by
/// walking a directory (regular files only; symlinks are not followed) rather than named.
fn collect_files(
    args: &InspectArgs,
    root: Option<&RootedFs>,
    printer: &Printer,
) -> anyhow::Result<Vec<(PathBuf, bool)>> {
    let mut files = Vec::new();
    for path in &args.paths {
        // With --root, a path may be given on the host (under DIR) or as seen inside DIR.
        let (host, inside) = match root {
            Some(r) => match path.strip_prefix(r.root()) {
                Ok(rest) => (path.clone(), Path::new("/").join(rest)),
                Err(_) => (
                    r.host_path(path)
                        .unwrap_or_else(|_| r.root().join(path.strip_prefix("/").unwrap_or(path))),
                    path.clone(),
                ),
            },
            None => (path.clone(), path.clone()),
        };
        let meta = std::fs::symlink_metadata(&host)
            .with_context(|| format!("cannot read {}", host.display()))?;
        if !meta.is_dir() {
            files.push((inside, false));
            continue;
        }
        let mut stack = vec![(host, inside)];
        while let Some((dir, inside_dir)) = stack.pop() {
            let mut entries: Vec<_> = match std::fs::read_dir(&dir) {
                Ok(e) => e.filter_map(Result::ok).collect(),
                Err(e) => {
                    printer.warn(&format!("cannot list {}: {e}", dir.display()));
                    continue;
                }
            };
            entries.sort_by_key(std::fs::DirEntry::file_name);
            for entry in entries {
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                let inside_path = inside_dir.join(entry.file_name());
                if kind.is_dir() {
                    stack.push((entry.path(), inside_path));
                } else if kind.is_file() {
                    files.push((inside_path, true));
                }
            }
        }
    }
    Ok(files)
}

/// Whether resolving failed only because the file is not ELF at all.
fn is_not_elf(error: &ldfix_ldso::LdsoError) -> bool {
    matches!(error, ldfix_ldso::LdsoError::Elf { source, .. } if matches!(source.inner(), ldfix_elf::read::ReadError::NotElf))
}

/// The conventional loader path for a machine: the host of a file without PT_INTERP.
/// The loader to assume for a machine: the conventional FHS path when it holds a real loader
/// (not NixOS's stub-ld or nix-ld), else NixOS's system glibc, else the newest glibc in the Nix
/// store (`<store>/*-glibc-<version>/lib/<loader>`), all inside `--root` when given.
fn default_loader(
    fs: &dyn Fs,
    store: &Path,
    machine: u16,
    class: ldfix_elf::read::Class,
) -> Option<PathBuf> {
    use ldfix_elf::read::Class;
    let candidates: &[&str] = match (machine, class) {
        (62, Class::Elf64) => &["/lib64/ld-linux-x86-64.so.2", "/lib/ld-musl-x86_64.so.1"],
        (3, _) => &["/lib/ld-linux.so.2", "/lib/ld-musl-i386.so.1"],
        (183, _) => &["/lib/ld-linux-aarch64.so.1", "/lib/ld-musl-aarch64.so.1"],
        (40, _) => &[
            "/lib/ld-linux-armhf.so.3",
            "/lib/ld-linux.so.3",
            "/lib/ld-musl-armhf.so.1",
        ],
        (243, _) => &[
            "/lib/ld-linux-riscv64-lp64d.so.1",
            "/lib/ld-musl-riscv64.so.1",
        ],
        (21, _) => &["/lib64/ld64.so.2", "/lib64/ld64.so.1"],
        (22, _) => &["/lib/ld64.so.1"],
        _ => &[],
    };
    let is_loader = |p: &Path| {
        fs.read(p).is_ok_and(|data| {
            ldfix_elf::read::classify_interpreter(&data) == ldfix_elf::read::InterpreterKind::Loader
        })
    };
    if let Some(found) = candidates.iter().map(PathBuf::from).find(|p| is_loader(p)) {
        return Some(found);
    }
    let glibc_name = Path::new(candidates.first()?).file_name()?;
    let system = Path::new("/run/current-system/sw/lib").join(glibc_name);
    if is_loader(&system) {
        return Some(system);
    }
    // Store paths sort by hash; order the glibc ones by the name after it (glibc-2.40-66).
    let mut glibcs: Vec<(String, PathBuf)> = std::fs::read_dir(store)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let (_, pname) = name.split_once('-')?;
            let version = pname.strip_prefix("glibc-")?;
            version.starts_with(|c: char| c.is_ascii_digit()).then(|| {
                (
                    pname.to_string(),
                    Path::new("/nix/store")
                        .join(&name)
                        .join("lib")
                        .join(glibc_name),
                )
            })
        })
        .collect();
    glibcs.sort();
    glibcs
        .into_iter()
        .rev()
        .map(|(_, p)| p)
        .find(|p| is_loader(p))
}

fn resolve_all(
    resolver: &Resolver<'_>,
    files: &[PathBuf],
    env: &Environment,
    cpu: &Cpu,
    host: Option<&Path>,
    store: &Path,
) -> Vec<Result<Tree, ldfix_ldso::LdsoError>> {
    type Key = (u16, ldfix_elf::read::Class);
    let loaders: std::sync::Mutex<std::collections::HashMap<Key, Option<PathBuf>>> =
        std::sync::Mutex::default();
    let loader_for = |machine: u16, class: ldfix_elf::read::Class| {
        let mut known = loaders
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        known
            .entry((machine, class))
            .or_insert_with(|| default_loader(resolver.fs(), store, machine, class))
            .clone()
    };
    let resolve_one = |file: &PathBuf| {
        let object = resolver.object(&env.cwd.join(file)).ok();
        let fallback = object.and_then(|o| loader_for(o.machine, o.class));
        let request = Request {
            program: file,
            env,
            cpu,
            host,
            fallback_loader: fallback.as_deref(),
        };
        resolver.resolve(&request)
    };
    // Reading files dominates, so a few more threads than cores; each takes the next file.
    let threads =
        (std::thread::available_parallelism().map_or(1, |n| n.get()) * 2).min(files.len().max(1));
    if threads <= 1 {
        return files.iter().map(resolve_one).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, Result<Tree, ldfix_ldso::LdsoError>)> =
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(file) = files.get(i) else { break };
                            done.push((i, resolve_one(file)));
                        }
                        done
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn needs_attention(tree: &Tree) -> bool {
    tree.findings.iter().any(|f| {
        !matches!(
            f,
            Finding::DlopenHost(_) | Finding::WrongArchSkipped { .. } | Finding::AssumedLoader(_)
        )
    })
}

fn display(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_display(path: &Path) -> String {
    path.display().to_string()
}

/// "RPATH of /usr/bin/foo", "cache", ...
fn rule_text(tree: &Tree, rule: Rule) -> String {
    match rule {
        Rule::Rpath(of) => {
            let name = tree
                .objects
                .get(of)
                .map(|o| display(&o.path))
                .unwrap_or_default();
            format!("RPATH of {name}")
        }
        other => other.as_str().to_string(),
    }
}

fn render(tree: &Tree, explain: bool, out: &mut String) {
    let loader = tree.loader.as_ref();
    let _ = write!(out, "{}", path_display(&tree.program));
    if let Some(l) = loader {
        let flavour = match (l.flavour, l.glibc_version) {
            (ldfix_ldso::Flavour::Glibc, Some((a, b))) => format!("glibc {a}.{b}"),
            (ldfix_ldso::Flavour::Glibc, None) => "glibc".into(),
            (ldfix_ldso::Flavour::Musl, _) => "musl".into(),
        };
        let _ = write!(out, "  (loader {}, {flavour})", path_display(&l.path));
    }
    out.push('\n');
    for finding in &tree.findings {
        if let Finding::DlopenHost(host) = finding {
            let _ = writeln!(
                out,
                "  note: no PT_INTERP; resolved as if dlopen'ed by {}",
                path_display(host)
            );
        }
    }
    let root = tree.target.unwrap_or(0);
    if root != 0 {
        // The host's own dependencies come first in the process; show them compactly.
        let _ = writeln!(out, "  host dependencies: {}", host_deps(tree));
    }
    let mut expanded = vec![false; tree.objects.len()];
    if let Some(e) = expanded.get_mut(root) {
        *e = true;
    }
    render_children(tree, root, "", explain, &mut expanded, out);
    for finding in &tree.findings {
        if let Some(text) = finding_text(tree, finding) {
            let _ = writeln!(out, "  {text}");
        }
    }
}

fn host_deps(tree: &Tree) -> String {
    let names: Vec<String> = tree
        .edges
        .iter()
        .filter(|e| {
            e.from == 0 && !matches!(e.outcome, Outcome::Loaded(i) if Some(i) == tree.target)
        })
        .map(|e| display(&e.name))
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

fn render_children(
    tree: &Tree,
    index: usize,
    prefix: &str,
    explain: bool,
    expanded: &mut Vec<bool>,
    out: &mut String,
) {
    let edges: Vec<_> = tree
        .edges
        .iter()
        .filter(|e| e.from == index && !(index == 0 && tree.target != Some(0) && matches!(e.outcome, Outcome::Loaded(i) | Outcome::Reused(i, _) if Some(i) == tree.target)))
        .collect();
    let count = edges.len();
    for (n, edge) in edges.into_iter().enumerate() {
        let last = n + 1 == count;
        let (branch, child_prefix) = if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        };
        let name = display(&edge.name);
        let mut descend = None;
        let line = match &edge.outcome {
            Outcome::Loaded(i) => {
                let o = tree.objects.get(*i);
                descend = Some(*i);
                match o {
                    Some(o) => format!(
                        "{name} => {} [{}]",
                        display(&o.path),
                        rule_text(tree, o.rule)
                    ),
                    None => name.clone(),
                }
            }
            Outcome::Reused(i, by) => {
                let path = tree
                    .objects
                    .get(*i)
                    .map(|o| display(&o.path))
                    .unwrap_or_default();
                let how = match by {
                    ReuseBy::Name => "already loaded",
                    ReuseBy::Soname => "already loaded, by SONAME",
                    ReuseBy::FileId => "same file as a loaded one",
                };
                format!("{name} => {path} ({how})")
            }
            Outcome::Missing => format!("{name} => not found"),
            Outcome::Failed { path, reason } => {
                format!("{name} => {} cannot be loaded: {reason}", display(path))
            }
        };
        let _ = writeln!(out, "{prefix}{branch}{line}");
        if explain && matches!(edge.outcome, Outcome::Missing | Outcome::Failed { .. }) {
            for t in &edge.tried {
                let _ = writeln!(
                    out,
                    "{prefix}{child_prefix}  tried {} ({}, {})",
                    display(&t.path),
                    rule_text(tree, t.rule),
                    try_text(t.result)
                );
            }
        }
        if let Some(child) = descend {
            if let Some(flag) = expanded.get_mut(child) {
                if !*flag {
                    *flag = true;
                    render_children(
                        tree,
                        child,
                        &format!("{prefix}{child_prefix}"),
                        explain,
                        expanded,
                        out,
                    );
                }
            }
        }
    }
}

fn try_text(result: TryResult) -> &'static str {
    match result {
        TryResult::Absent => "absent",
        TryResult::OtherClass => "wrong ELF class, skipped",
        TryResult::OtherMachine => "wrong machine, skipped",
        TryResult::NodeflibExcluded => "default directory, excluded by DF_1_NODEFLIB",
        TryResult::Fatal(why) => why,
        TryResult::Found => "found",
    }
}

fn finding_text(tree: &Tree, finding: &Finding) -> Option<String> {
    let obj = |i: usize| {
        tree.objects
            .get(i)
            .map(|o| display(&o.path))
            .unwrap_or_default()
    };
    let edge = |i: usize| tree.edges.get(i);
    Some(match finding {
        Finding::InterpreterMissing(p) => {
            format!("error: the interpreter {} does not exist", display(p))
        }
        Finding::InterpreterNotLoader { path, kind } => format!(
            "error: the interpreter {} is {kind}, not a dynamic loader",
            display(path)
        ),
        Finding::AssumedLoader(p) => {
            format!("note: resolved with the rules of {}", path_display(p))
        }
        Finding::DlopenHost(_) => return None,
        Finding::Missing { edge: e } => {
            let e = edge(*e)?;
            format!(
                "error: {} (needed by {}) not found; {} places tried{}",
                display(&e.name),
                obj(e.from),
                e.tried.len(),
                if e.tried.is_empty() {
                    ""
                } else {
                    " (--explain lists them)"
                }
            )
        }
        Finding::Failed { edge: e } => {
            let e = edge(*e)?;
            format!(
                "error: {} (needed by {}) cannot be loaded",
                display(&e.name),
                obj(e.from)
            )
        }
        Finding::WrongArchSkipped { path, what, .. } => {
            format!("warning: skipped {} (wrong {what})", display(path))
        }
        Finding::TwoGlibcs {
            object,
            dir,
            loader_dir,
        } => format!(
            "error: {} comes from {}, but the loader's glibc is in {}: two glibcs in one process",
            obj(*object),
            dir.display(),
            loader_dir.display()
        ),
        Finding::MissingVersion {
            object,
            library,
            version,
        } => format!(
            "error: {} requires version {} of {}, which does not define it",
            obj(*object),
            display(version),
            obj(*library)
        ),
    })
}

fn tree_json(tree: &Tree) -> Value {
    let loader = tree.loader.as_ref().map(|l| {
        json!({
            "path": path_display(&l.path),
            "flavour": match l.flavour { ldfix_ldso::Flavour::Glibc => "glibc", ldfix_ldso::Flavour::Musl => "musl" },
            "glibc_version": l.glibc_version.map(|(a, b)| format!("{a}.{b}")),
            "default_dirs": l.system_dirs.iter().map(|d| display(d)).collect::<Vec<_>>(),
            "cache": l.cache_path.as_deref().map(path_display),
            "preload_file": l.preload_path.as_deref().map(path_display),
            "lib": display(&l.lib),
            "musl_path_file": l.musl_path_file.as_deref().map(path_display),
        })
    });
    let objects: Vec<Value> = tree
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            json!({
                "index": i,
                "path": display(&o.path),
                "names": o.names.iter().filter(|n| !n.is_empty()).map(|n| display(n)).collect::<Vec<_>>(),
                "soname": o.object.soname.as_deref().map(display),
                "rule": o.rule.as_str(),
                "rule_detail": rule_text(tree, o.rule),
                "rpath_of": match o.rule { Rule::Rpath(of) => Some(of), _ => None },
                "loaded_by": o.loaded_by,
            })
        })
        .collect();
    let edges: Vec<Value> = tree
        .edges
        .iter()
        .map(|e| {
            let (outcome, object, reuse, reason, path) = match &e.outcome {
                Outcome::Loaded(i) => ("loaded", Some(*i), None, None, None),
                Outcome::Reused(i, by) => (
                    "reused",
                    Some(*i),
                    Some(match by {
                        ReuseBy::Name => "name",
                        ReuseBy::Soname => "soname",
                        ReuseBy::FileId => "file-id",
                    }),
                    None,
                    None,
                ),
                Outcome::Missing => ("missing", None, None, None, None),
                Outcome::Failed { path, reason } => (
                    "failed",
                    None,
                    None,
                    Some(reason.clone()),
                    Some(display(path)),
                ),
            };
            json!({
                "from": e.from,
                "name": display(&e.name),
                "outcome": outcome,
                "object": object,
                "reuse": reuse,
                "failed_path": path,
                "reason": reason,
                "tried": e.tried.iter().map(|t| json!({
                    "path": display(&t.path),
                    "rule": t.rule.as_str(),
                    "rpath_of": match t.rule { Rule::Rpath(of) => Some(of), _ => None },
                    "result": try_result_name(t.result),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let findings: Vec<Value> = tree.findings.iter().map(finding_json).collect();
    json!({
        "program": path_display(&tree.program),
        "loader": loader,
        "target": tree.target,
        "objects": objects,
        "edges": edges,
        "findings": findings,
    })
}

fn try_result_name(result: TryResult) -> &'static str {
    match result {
        TryResult::Absent => "absent",
        TryResult::OtherClass => "wrong-class",
        TryResult::OtherMachine => "wrong-machine",
        TryResult::NodeflibExcluded => "nodeflib-excluded",
        TryResult::Fatal(_) => "unloadable",
        TryResult::Found => "found",
    }
}

fn finding_json(finding: &Finding) -> Value {
    match finding {
        Finding::InterpreterMissing(p) => {
            json!({"kind": "interpreter-missing", "path": display(p)})
        }
        Finding::InterpreterNotLoader { path, kind } => {
            json!({"kind": "interpreter-not-loader", "path": display(path), "is": kind})
        }
        Finding::AssumedLoader(p) => json!({"kind": "assumed-loader", "path": path_display(p)}),
        Finding::DlopenHost(p) => json!({"kind": "dlopen-host", "path": path_display(p)}),
        Finding::Missing { edge } => json!({"kind": "missing", "edge": edge}),
        Finding::Failed { edge } => json!({"kind": "failed", "edge": edge}),
        Finding::WrongArchSkipped { edge, path, what } => {
            json!({"kind": "wrong-arch-skipped", "edge": edge, "path": display(path), "wrong": what})
        }
        Finding::TwoGlibcs {
            object,
            dir,
            loader_dir,
        } => {
            json!({"kind": "two-glibcs", "object": object, "dir": path_display(dir), "loader_dir": path_display(loader_dir)})
        }
        Finding::MissingVersion {
            object,
            library,
            version,
        } => {
            json!({"kind": "missing-version", "object": object, "library": library, "version": display(version)})
        }
    }
}

//! `ldfix locate`: which profile or store path provides a library, and what to install when
//! nothing on this machine does.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context;
use ldfix_index::nixpkgs::{self, NixpkgsEntry};
use ldfix_index::{is_glibc_family, Index, Provider, Requester};
use serde_json::{json, Value};

use crate::cli::LocateArgs;
use crate::exit::Outcome;
use crate::printer::Printer;
use crate::settings;

pub(crate) fn run(args: &LocateArgs, printer: &Printer) -> anyhow::Result<Outcome> {
    let config = settings::index_config(args.from.clone(), args.rebuild);
    let cache_file = config.cache_file.clone();
    let index = Index::open(&config).context("cannot build the library index")?;
    let stats = index.stats();
    if let Some(problem) = &stats.cache_problem {
        printer.info(&format!("index: rebuilt from scratch ({problem})"));
    }
    if !stats.validity_checked && stats.store_paths_scanned > 0 {
        printer.warn(
            "no nix-store in PATH and no readable Nix database: store paths were indexed without \
             checking that they are valid",
        );
    }
    printer.verbose(&format!(
        "index: {} store paths ({} scanned, {} dropped), {:.1} ms",
        stats.store_paths,
        stats.store_paths_scanned,
        stats.store_paths_dropped,
        stats.elapsed.as_secs_f64() * 1000.0
    ));
    if args.stats {
        print_stats(&index, cache_file.as_deref(), args.json, printer)?;
        if args.sonames.is_empty() {
            return Ok(Outcome::Success);
        }
    }
    if args.sonames.is_empty() {
        return Ok(Outcome::Success);
    }

    let requester = Requester {
        versions: args.needs.iter().map(|v| v.as_bytes().to_vec()).collect(),
        ..Requester::x86_64_glibc()
    };
    let mut all_found = true;
    let mut text = String::new();
    let mut json_results = Vec::new();
    for soname in &args.sonames {
        let name = soname.as_bytes();
        let answer = Answer::new(&index, name, &requester);
        all_found &= answer.found();
        if args.json {
            json_results.push(answer.to_json(name));
        } else {
            answer.write_text(name, &mut text);
        }
    }
    if args.json {
        let document = json!({
            "version": 1,
            "nixpkgs_revision": nixpkgs::revision(),
            "results": json_results,
        });
        printer.data(&format!("{document:#}\n"))?;
    } else {
        printer.data(&text)?;
    }
    Ok(if all_found {
        Outcome::Success
    } else {
        Outcome::NeedsAttention
    })
}

/// Everything known about one name.
struct Answer<'a> {
    providers: Vec<Provider<'a>>,
    /// For glibc-family names: the copies found (each usable only with its own loader).
    glibc_copies: Vec<&'a ldfix_index::Library>,
    nixpkgs: Option<&'static NixpkgsEntry>,
    glibc_family: bool,
}

impl<'a> Answer<'a> {
    fn new(index: &'a Index, name: &[u8], requester: &Requester) -> Self {
        let glibc_family = is_glibc_family(name);
        Self {
            providers: index.lookup(name, requester),
            glibc_copies: if glibc_family {
                index
                    .named(name)
                    .filter(|lib| lib.real_path().exists())
                    .collect()
            } else {
                Vec::new()
            },
            nixpkgs: nixpkgs::lookup(name),
            glibc_family,
        }
    }

    /// Whether this machine has something usable.
    fn found(&self) -> bool {
        self.providers.iter().any(Provider::usable) || !self.glibc_copies.is_empty()
    }

    fn write_text(&self, name: &[u8], out: &mut String) {
        let _ = writeln!(out, "{}", OsStr::from_bytes(name).to_string_lossy());
        if self.glibc_family {
            let _ = writeln!(
                out,
                "  part of glibc: it must come from the glibc of the program's own loader, never \
                 from another package"
            );
            for lib in &self.glibc_copies {
                let _ = writeln!(
                    out,
                    "  {}  ({})",
                    lib.real_path().display(),
                    package_label(lib)
                );
            }
        }
        for provider in &self.providers {
            let lib = provider.library;
            let mut why = vec![lib.source.describe().to_owned()];
            if !provider.compatible {
                why.push("incompatible with x86_64 glibc programs".into());
            }
            if !provider.missing_versions.is_empty() {
                let missing: Vec<_> = provider
                    .missing_versions
                    .iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect();
                why.push(format!("does not define {}", missing.join(", ")));
            }
            let _ = writeln!(
                out,
                "  {}  {} ({})",
                lib.real_path().display(),
                package_label(lib),
                why.join("; ")
            );
        }
        if !self.found() && !self.glibc_family {
            let _ = writeln!(out, "  not found on this machine");
        }
        match self.nixpkgs {
            Some(entry) => {
                let _ = writeln!(out, "  nixpkgs: {}", entry.installable());
                if !self.found() {
                    let _ = writeln!(out, "    install: {}", entry.install_command());
                    let _ = writeln!(out, "    NixOS:   {}", entry.nix_ld_line());
                }
            }
            None if !self.found() && !self.glibc_family => {
                let _ = writeln!(out, "  nixpkgs: not in ldfix's table");
            }
            None => {}
        }
    }

    fn to_json(&self, name: &[u8]) -> Value {
        let providers: Vec<Value> = self
            .providers
            .iter()
            .map(|p| library_json(p.library, Some(p)))
            .collect();
        let glibc_copies: Vec<Value> = self
            .glibc_copies
            .iter()
            .map(|lib| library_json(lib, None))
            .collect();
        json!({
            "soname": OsStr::from_bytes(name).to_string_lossy(),
            "found": self.found(),
            "glibc_family": self.glibc_family,
            "providers": providers,
            "glibc_copies": glibc_copies,
            "nixpkgs": self.nixpkgs.map(|entry| json!({
                "attribute": entry.attribute,
                "output": entry.output,
                "installable": entry.installable(),
                "install_command": entry.install_command(),
                "nix_ld_line": entry.nix_ld_line(),
            })),
        })
    }
}

fn package_label(lib: &ldfix_index::Library) -> String {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    match (lib.pname.is_empty(), lib.output.as_slice()) {
        (true, _) => "not in the store".to_owned(),
        (false, b"out") => format!("{} {}", text(&lib.pname), text(&lib.version)),
        (false, output) => format!(
            "{} {} ({})",
            text(&lib.pname),
            text(&lib.version),
            text(output)
        ),
    }
}

fn library_json(lib: &ldfix_index::Library, provider: Option<&Provider<'_>>) -> Value {
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    json!({
        "path": lib.path().to_string_lossy(),
        "real_path": lib.real_path().to_string_lossy(),
        "store_path": lib.store_path().map(|path| path.to_string_lossy()),
        "package": text(&lib.pname),
        "version": text(&lib.version),
        "output": text(&lib.output),
        "source": lib.source.describe(),
        "machine": lib.machine,
        "class": if lib.class == 1 { 32 } else { 64 },
        "libc": lib.libc,
        "compatible": provider.map(|p| p.compatible),
        "missing_versions": provider.map(|p| p.missing_versions.iter().map(|v| text(v)).collect::<Vec<_>>()),
    })
}

fn print_stats(
    index: &Index,
    cache_file: Option<&std::path::Path>,
    json: bool,
    printer: &Printer,
) -> anyhow::Result<()> {
    let stats = index.stats();
    let libraries = index.libraries().count();
    let cache = cache_file.map(|path| path.display().to_string());
    if json {
        let document = json!({
            "store_paths": stats.store_paths,
            "store_paths_scanned": stats.store_paths_scanned,
            "store_paths_dropped": stats.store_paths_dropped,
            "store_paths_invalid": stats.store_paths_invalid,
            "libraries": libraries,
            "store_listed": stats.store_listed,
            "validity_checked": stats.validity_checked,
            "cache_file": cache,
            "refresh_ms": stats.elapsed.as_secs_f64() * 1000.0,
            "nixpkgs_table_rows": nixpkgs::entries().len(),
            "nixpkgs_revision": nixpkgs::revision(),
        });
        printer.data(&format!("{document:#}\n"))?;
    } else {
        printer.data(&format!(
            "store paths:      {} ({} scanned now, {} dropped, {} not valid)\n\
             libraries:        {}\n\
             cache:            {}\n\
             refresh:          {:.1} ms\n\
             nixpkgs table:    {} entries (revision {})\n",
            stats.store_paths,
            stats.store_paths_scanned,
            stats.store_paths_dropped,
            stats.store_paths_invalid,
            libraries,
            cache.as_deref().unwrap_or("none"),
            stats.elapsed.as_secs_f64() * 1000.0,
            nixpkgs::entries().len(),
            nixpkgs::revision().unwrap_or("unknown"),
        ))?;
    }
    Ok(())
}

//! Command-line definitions. Doc comments here are the `--help` text users read.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Make prebuilt Linux binaries run on NixOS and other systems without /lib64 and /usr/lib.
///
/// ldfix reads ELF files the way the kernel and the dynamic loader do, explains why a program will
/// not start, finds the Nix store paths that provide missing libraries, and patches a whole tree
/// (a virtualenv, a prefix, a download) so that it runs, reversibly and safe from garbage
/// collection.
///
/// Exit status: 0 success, 1 something needs attention (missing libraries, `fix --check` found
/// work), 2 usage or runtime error. `ldfix run` exits with the program's own status, or as env(1)
/// does when it fails before starting it (127 not found, 126 cannot start, 125 other errors).
#[derive(Debug, Parser)]
#[command(
    name = "ldfix",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,

    #[command(flatten)]
    pub(crate) global: GlobalArgs,
}

#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// Print more about what ldfix is doing (repeat for more detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub(crate) verbose: u8,

    /// Print only errors and the requested data.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Read ELF files and explain how the dynamic loader will (or will not) load them.
    Inspect(InspectArgs),
    /// Find which profile or store path provides a shared library.
    Locate(LocateArgs),
    /// Edit ELF files; accepts patchelf's flags.
    Patch(PatchArgs),
    /// Make every ELF file (and #! script) under PATH load and run on this machine.
    Fix(FixArgs),
    /// Restore the files that `ldfix fix` changed, byte for byte.
    Undo(UndoArgs),
    /// Run a foreign program without modifying it.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Files or directories to inspect (directories are walked; symlinks are not followed out).
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,

    /// Show the resolved dependency tree, as the real loader would build it.
    #[arg(long)]
    pub(crate) tree: bool,

    /// Resolve inside this root directory (a container image, a sysroot).
    #[arg(long, value_name = "DIR", requires = "tree")]
    pub(crate) root: Option<PathBuf>,

    /// With --tree: list every place tried for each missing library.
    #[arg(long, requires = "tree")]
    pub(crate) explain: bool,

    /// Environment the loader sees, as NAME=VALUE (for example LD_LIBRARY_PATH=/opt/lib).
    #[arg(long = "env", value_name = "NAME=VALUE", requires = "tree")]
    pub(crate) env: Vec<OsString>,

    /// Program that dlopens a library without PT_INTERP (default: the loader for its machine).
    #[arg(long, value_name = "PROG", requires = "tree")]
    pub(crate) host: Option<PathBuf>,

    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LocateArgs {
    /// Library names to look up, such as libodbc.so.2.
    #[arg(value_name = "SONAME", required_unless_present_any = ["rebuild", "stats"])]
    pub(crate) sonames: Vec<OsString>,

    /// Also search this directory, before every other source.
    #[arg(long, value_name = "DIR")]
    pub(crate) from: Vec<PathBuf>,

    /// Rank first, and count as usable, only providers that define this symbol version (for
    /// example GLIBCXX_3.4.30); repeatable.
    #[arg(long, value_name = "VERSION")]
    pub(crate) needs: Vec<OsString>,

    /// Rebuild the library index from scratch.
    #[arg(long)]
    pub(crate) rebuild: bool,

    /// Print statistics about the library index.
    #[arg(long)]
    pub(crate) stats: bool,

    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// patchelf-compatible flags. Operations run in patchelf 0.19's fixed order, whatever the order
/// on the command line.
#[derive(Debug, Args)]
pub(crate) struct PatchArgs {
    /// Files to edit (patched in parallel).
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,

    /// Set the program interpreter (PT_INTERP).
    #[arg(long, value_name = "INTERPRETER")]
    pub(crate) set_interpreter: Option<OsString>,
    /// Print the program interpreter.
    #[arg(long)]
    pub(crate) print_interpreter: bool,
    /// Set the run path (DT_RUNPATH, or DT_RPATH with --force-rpath or when the file has one).
    #[arg(long, value_name = "RPATH")]
    pub(crate) set_rpath: Option<OsString>,
    /// Append to the run path.
    #[arg(long, value_name = "RPATH")]
    pub(crate) add_rpath: Option<OsString>,
    /// Remove DT_RPATH and DT_RUNPATH.
    #[arg(long)]
    pub(crate) remove_rpath: bool,
    /// Drop run path entries that provide none of the file's NEEDED libraries.
    #[arg(long)]
    pub(crate) shrink_rpath: bool,
    /// With --shrink-rpath: keep only entries under these colon-separated prefixes.
    #[arg(long, value_name = "PREFIXES", requires = "shrink_rpath")]
    pub(crate) allowed_rpath_prefixes: Option<OsString>,
    /// Write DT_RPATH instead of DT_RUNPATH.
    #[arg(long)]
    pub(crate) force_rpath: bool,
    /// Print the run path.
    #[arg(long)]
    pub(crate) print_rpath: bool,
    /// Add a DT_NEEDED entry.
    #[arg(long, value_name = "LIBRARY")]
    pub(crate) add_needed: Vec<OsString>,
    /// Remove a DT_NEEDED entry (and its symbol version requirements).
    #[arg(long, value_name = "LIBRARY")]
    pub(crate) remove_needed: Vec<OsString>,
    /// Replace a DT_NEEDED entry (and rename its symbol version requirements).
    #[arg(long, num_args = 2, value_names = ["LIBRARY", "NEW_LIBRARY"])]
    pub(crate) replace_needed: Vec<OsString>,
    /// Print the DT_NEEDED entries.
    #[arg(long)]
    pub(crate) print_needed: bool,
    /// Set DT_SONAME.
    #[arg(long, value_name = "SONAME")]
    pub(crate) set_soname: Option<OsString>,
    /// Print DT_SONAME.
    #[arg(long)]
    pub(crate) print_soname: bool,
    /// Set DF_1_NODEFLIB: the loader will not search its default directories.
    #[arg(long)]
    pub(crate) no_default_lib: bool,
    /// Set the OS ABI byte of the ELF header.
    #[arg(long, value_name = "ABI")]
    pub(crate) set_os_abi: Option<String>,
    /// Print the OS ABI.
    #[arg(long)]
    pub(crate) print_os_abi: bool,
    /// Print whether the stack is executable (PT_GNU_STACK).
    #[arg(long)]
    pub(crate) print_execstack: bool,
    /// Make the stack non-executable.
    #[arg(long, conflicts_with = "set_execstack")]
    pub(crate) clear_execstack: bool,
    /// Make the stack executable.
    #[arg(long)]
    pub(crate) set_execstack: bool,
    /// Page size to align new segments to (default: the architecture's largest page).
    #[arg(long, value_name = "SIZE")]
    pub(crate) page_size: Option<u64>,
    /// Write the result to this file instead of replacing the input (one input only).
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct FixArgs {
    /// Files or directories to make loadable.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,

    /// Change nothing; exit 0 when nothing needs fixing, 1 when something does.
    #[arg(long, conflicts_with = "dry_run")]
    pub(crate) check: bool,

    /// Print the plan and change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,

    /// Re-point already fixed files to the best current providers.
    #[arg(long)]
    pub(crate) update: bool,

    /// Print machine-readable JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct UndoArgs {
    /// Trees (or files) whose changes made by `ldfix fix` should be restored.
    #[arg(required = true, value_name = "PATH")]
    pub(crate) paths: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Also provide the libraries of every ELF file under DIR (modules the program may dlopen).
    #[arg(long = "for", value_name = "DIR")]
    pub(crate) for_dirs: Vec<PathBuf>,

    /// Print the command line that would be executed instead of running it.
    #[arg(long)]
    pub(crate) print: bool,

    /// The program and its arguments (`--` before them is optional; everything after the
    /// program's name is passed to it, options included).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub(crate) command: Vec<OsString>,
}

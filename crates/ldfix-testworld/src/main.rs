//! `ldfix-testworld build|info|shell|run|loader`: the test world for humans.

use anyhow::{bail, Context, Result};
use ldfix_testworld::{Env, Lib64, World};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;

const USAGE: &str = "usage: ldfix-testworld <command>
  build                  build the world (or check the cached one) and print its paths
  info                   same as build
  shell [OPTS]           an interactive shell in the NixOS-like sandbox
  run [OPTS] -- CMD...   run CMD in the sandbox, print its output, exit with its status
  destroy                remove the world: roots, profiles, state and its store paths
  nixify-loader IN OUT DIR...   rewrite a Debian ld.so copy (debugging the loader rewrite)
options for shell/run:
  --no-lib64       no /lib64/ld-linux-x86-64.so.2 (default: NixOS's stub-ld)
  --no-nix         system profile without the Nix CLI
  --env-i          start with an empty environment
  --bind DIR       bind DIR read-write at the same path
state: $LDFIX_TESTWORLD_DIR (default /var/tmp/ldfix-testworld/v1)";

fn main() {
    if let Err(e) = real_main() {
        eprintln!("ldfix-testworld: {e:#}");
        std::process::exit(2);
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        bail!("{USAGE}")
    };
    match cmd.as_str() {
        "build" | "info" => {
            let w = World::get()?;
            println!("state {}", w.state_dir().display());
            for (attr, path) in w.packages() {
                println!("{attr:16} {}", path.display());
            }
            println!("{:16} {}", "profiles", w.profiles_dir().display());
            println!("{:16} {}", "gcroots", w.gc_roots_dir().display());
            Ok(())
        }
        "shell" | "run" => {
            let w = World::get()?;
            let mut sb = w.sandbox();
            let mut rest = args.iter().skip(1);
            let mut argv: Vec<String> = Vec::new();
            while let Some(a) = rest.next() {
                match a.as_str() {
                    "--no-lib64" => sb = sb.lib64(Lib64::Absent),
                    "--no-nix" => sb = sb.nix_cli(false),
                    "--env-i" => sb = sb.env(Env::Empty),
                    "--bind" => sb = sb.bind(rest.next().context("--bind needs a directory")?),
                    "--" => {
                        argv = rest.by_ref().cloned().collect();
                    }
                    other => bail!("unknown option {other}\n{USAGE}"),
                }
            }
            if cmd == "shell" {
                let home = w.state_dir().join("shell-home");
                std::fs::create_dir_all(&home)?;
                let err = sb.command(&["/bin/sh", "-l"], &home)?.exec();
                bail!("cannot run bwrap: {err}");
            }
            if argv.is_empty() {
                bail!("run needs -- CMD...\n{USAGE}");
            }
            let out = sb.run(&argv)?;
            print!("{}", out.stdout);
            eprint!("{}", out.stderr);
            std::process::exit(out.status);
        }
        "destroy" => {
            let state = ldfix_testworld::state_dir();
            let w = World::open_or_build(&state)?;
            w.destroy()?;
            eprintln!("removed the world in {}", state.display());
            Ok(())
        }
        "nixify-loader" => {
            let [_, input, output, dirs @ ..] = args.as_slice() else {
                bail!("{USAGE}")
            };
            let orig = std::fs::read(input).with_context(|| format!("reading {input}"))?;
            let first = dirs.first().context("at least one directory")?;
            let paths = ldfix_testworld::loader::NixLoaderPaths {
                system_dirs: dirs.to_vec(),
                cache: format!(
                    "{}/etc/ld.so.cache",
                    first.trim_end_matches('/').trim_end_matches("/lib")
                ),
            };
            let new = ldfix_testworld::loader::nixify_loader(&orig, &paths)?;
            let out = PathBuf::from(output);
            std::fs::write(&out, new)?;
            Ok(())
        }
        _ => bail!("{USAGE}"),
    }
}

//! In-process lookup latency over a store (`NIX_STORE_DIR`, default /nix/store).
//! Run by `bench/locate.sh`; prints one line of key=value results.

#![allow(clippy::unwrap_used, reason = "benchmark code")]

use std::time::Instant;

use ldfix_index::{Index, IndexConfig, Requester};
use ldfix_nix::StoreDir;

fn main() {
    let store = StoreDir::new(std::env::var_os("NIX_STORE_DIR").as_deref());
    let config = IndexConfig {
        store,
        from_dirs: Vec::new(),
        profiles: Vec::new(),
        cache_file: std::env::var_os("LDFIX_BENCH_CACHE").map(Into::into),
        nix: None,
        rebuild: false,
    };
    let open_start = Instant::now();
    let index = Index::open(&config).unwrap();
    let open_ms = open_start.elapsed().as_secs_f64() * 1e3;
    let first_lookup = Instant::now();
    let _ = index.lookup(b"libpkg1234_3.so.1", &Requester::x86_64_glibc());
    let first_lookup_ms = first_lookup.elapsed().as_secs_f64() * 1e3;
    let names: Vec<Vec<u8>> = index.libraries().map(|l| l.file_name.clone()).collect();
    if names.is_empty() {
        eprintln!("no libraries indexed; set NIX_STORE_DIR to a populated store");
        std::process::exit(2);
    }
    let requester = Requester::x86_64_glibc();
    let mut samples = Vec::with_capacity(10_000);
    for i in 0..10_000 {
        let name = &names[(i * 7919) % names.len()];
        let start = Instant::now();
        let found = index.lookup(name, &requester);
        samples.push(start.elapsed());
        assert!(!found.is_empty());
    }
    samples.sort();
    let p = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    println!("in_process_open_ms={open_ms:.2} first_lookup_ms={first_lookup_ms:.2}");
    println!(
        "in_process_lookup_us p50={:.1} p90={:.1} p99={:.1} libraries={}",
        p(0.5),
        p(0.9),
        p(0.99),
        names.len()
    );
}

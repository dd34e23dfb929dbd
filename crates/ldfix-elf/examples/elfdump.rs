//! Prints the read model of each file given: `cargo run -p ldfix-elf --example elfdump -- FILE...`.

fn main() {
    for path in std::env::args_os().skip(1) {
        match ldfix_elf::parse_file(std::path::Path::new(&path)) {
            Ok(info) => println!("{}: {info:#?}", std::path::Path::new(&path).display()),
            Err(error) => println!("error: {error}"),
        }
    }
}

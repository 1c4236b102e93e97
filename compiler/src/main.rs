//! The `kiln` binary: everything happens in [`kiln::cli::run`].

fn main() {
    let code = kiln::cli::run(std::env::args_os(), &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}

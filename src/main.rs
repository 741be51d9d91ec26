//! The `spillover` command; everything it does lives in the library.

fn main() {
    std::process::exit(spillover::cli::main_exit());
}

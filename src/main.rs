//! The `spillover` command: argument definitions, progress, calling the
//! library, printing. Everything it computes lives in the library.

mod cli;

fn main() {
    std::process::exit(cli::main_exit());
}

//! `switchyard`: parses the command line and hands it to the library.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(switchyard::cli::run(&args));
}

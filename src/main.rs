//! The `ferry` command: parses the command line and hands it to the library.

#![forbid(unsafe_code)]

fn main() {
    let cli = ferry::cli::parse();
    if let Err(err) = ferry::logger::init(&cli.global) {
        eprintln!("ferry: {err}");
        std::process::exit(1);
    }
    let failure = ferry::commands::failure_code(&cli);
    match ferry::commands::dispatch(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            let msg = ferry::commands::error_message(&err);
            ferry::logger::fatal(&msg);
            std::process::exit(failure);
        }
    }
}

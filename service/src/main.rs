//! The `goodgo-api` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    goodgo_api::main()
}

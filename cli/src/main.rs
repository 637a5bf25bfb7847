//! The `goodgo` binary: everything lives in the library.
fn main() -> std::process::ExitCode {
    goodgo::main()
}

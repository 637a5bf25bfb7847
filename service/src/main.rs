//! The `goodgo-api` binary: everything lives in the library.

/// mimalloc instead of the system allocator: a search answer allocates and frees many
/// small buffers across the runtime's threads, which glibc's malloc serves noticeably
/// slower (see docs/BENCHMARKS.md, API search).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    goodgo_api::main()
}

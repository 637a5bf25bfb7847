//! The kit's macros: a snapshot of what a user sees (exit code, stdout, stderr) with the
//! context's filters, and one stack-lifecycle body run on both runtimes.

/// Runs a command and snapshots its exit code, stdout and stderr (filtered); returns the
/// [`Run`](crate::Run) for further checks.
///
/// `assert_cmd_snapshot!("name", ctx.filters(), ctx.command().args(["config"]))`
#[macro_export]
macro_rules! assert_cmd_snapshot {
    ($name:expr, $filters:expr, $cmd:expr $(,)?) => {{
        let run = $crate::run($cmd);
        $crate::assert_text_snapshot!($name, $filters, run.report());
        run
    }};
}

/// Snapshots `text` (a report built by the test) after applying `filters`.
#[macro_export]
macro_rules! assert_text_snapshot {
    ($name:expr, $filters:expr, $text:expr $(,)?) => {{
        let filters: $crate::Filters = $filters;
        let mut settings = $crate::insta::Settings::clone_current();
        for (regex, with) in filters.pairs() {
            settings.add_filter(regex, with.as_str());
        }
        let text: String = $text;
        settings.bind(|| {
            $crate::insta::assert_snapshot!($name, text);
        });
    }};
}

/// One stack test body run on each runtime, as one test per runtime:
///
/// ```ignore
/// stack_test!(
///     /// What the test shows.
///     up_and_down,
///     |rt| { /* rt: goodgo_testkit::Runtime */ }
/// );
/// ```
///
/// makes `up_and_down::docker` and `up_and_down::native`, each skipped (with a visible
/// line) where this machine lacks its runtime. The body sees the enclosing module's items.
#[macro_export]
macro_rules! stack_test {
    ($(#[$doc:meta])* $name:ident, |$rt:ident| $body:block) => {
        $(#[$doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($rt: $crate::Runtime) $body

            #[test]
            fn docker() {
                let rt = $crate::Runtime::Docker;
                if rt.available_or_skip(concat!(stringify!($name), "::docker")) {
                    body(rt);
                }
            }

            #[test]
            fn native() {
                let rt = $crate::Runtime::Native;
                if rt.available_or_skip(concat!(stringify!($name), "::native")) {
                    body(rt);
                }
            }
        }
    };
}

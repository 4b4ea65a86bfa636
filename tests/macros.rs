//! The `#[blitz_io::main]` and `#[blitz_io::test]` attribute macros, used the way an
//! application would use them.

use std::collections::HashSet;
use std::thread::{self, ThreadId};
use std::time::Duration;

/// The default flavor of `#[blitz_io::test]` (current-thread) runs an async body.
#[blitz_io::test]
async fn default_flavor_runs_the_body() {
    let value = async { 40 + 2 }.await;
    assert_eq!(value, 42);
}

/// The current-thread flavor runs spawned tasks, on the thread that runs the test.
#[blitz_io::test]
async fn default_flavor_spawns_on_the_test_thread() {
    let test_thread = thread::current().id();
    let handle = blitz_io::task::spawn(async { thread::current().id() });
    assert_eq!(handle.await.unwrap(), test_thread);
}

#[blitz_io::test(flavor = "current_thread")]
async fn explicit_current_thread_flavor() {
    let handle = blitz_io::task::spawn(async { "done" });
    assert_eq!(handle.await.unwrap(), "done");
}

#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_spawn_and_join() {
    let handle = blitz_io::task::spawn(async { 6 * 7 });
    assert_eq!(handle.await.unwrap(), 42);

    let handles: Vec<_> = (0..16u64).map(|i| blitz_io::task::spawn(async move { i * i })).collect();
    let mut sum = 0;
    for handle in handles {
        sum += handle.await.unwrap();
    }
    assert_eq!(sum, (0..16u64).map(|i| i * i).sum::<u64>());
}

#[blitz_io::test(flavor = "multi_thread")]
async fn multi_thread_default_worker_count() {
    let handle = blitz_io::task::spawn(async { String::from("hello") });
    assert_eq!(handle.await.unwrap(), "hello");
}

/// With two workers, tasks that each block their thread for a while cannot all run on
/// the test's own thread: at least one lands on a worker.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_runs_tasks_on_other_threads() {
    let test_thread = thread::current().id();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            blitz_io::task::spawn(async {
                // Blocking on purpose: keeps this worker busy so that others pick up
                // the remaining tasks.
                thread::sleep(Duration::from_millis(10));
                thread::current().id()
            })
        })
        .collect();
    let mut threads: HashSet<ThreadId> = HashSet::new();
    for handle in handles {
        threads.insert(handle.await.unwrap());
    }
    assert!(
        threads.iter().any(|&id| id != test_thread),
        "all 8 tasks ran on the test thread; the multi-thread flavor used no worker"
    );
}

/// A test may return `io::Result<()>`, and `?` works in its body.
#[blitz_io::test]
async fn returns_io_result() -> std::io::Result<()> {
    let n: u32 = "7".parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    assert_eq!(n, 7);
    Ok(())
}

/// The error type of the body's `?` is inferred from the declared return type.
#[blitz_io::test(flavor = "multi_thread", worker_threads = 2)]
async fn returns_boxed_error_with_question_mark() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = "12".parse()?;
    let doubled = blitz_io::task::spawn(async move { n * 2 }).await?;
    assert_eq!(doubled, 24);
    Ok(())
}

/// An early `return` in the body returns from the test.
#[blitz_io::test]
async fn early_return() -> Result<(), String> {
    let answer = async { 42 }.await;
    if answer == 42 {
        return Ok(());
    }
    Err(format!("unexpected {answer}"))
}

/// Attributes written after the macro still apply to the test.
#[blitz_io::test]
#[should_panic(expected = "boom from an async test")]
async fn should_panic_is_kept() {
    panic!("boom from an async test");
}

#[blitz_io::test]
#[ignore = "checks that #[ignore] after the macro is kept; it must never run"]
async fn ignore_is_kept() {
    panic!("an #[ignore]d test ran");
}

/// Doc comments and lint attributes stay on the function.
#[blitz_io::test]
#[allow(clippy::bool_assert_comparison)]
async fn doc_and_lint_attributes_are_kept() {
    assert_eq!(true, true);
}

/// The macro's locals do not leak into (or clash with) the body.
#[blitz_io::test]
async fn body_may_use_the_expansion_s_names() {
    let body = 1;
    let rt = 2;
    assert_eq!(body + rt, 3);
}

// `#[blitz_io::main]` on a function other than `main`: each call builds a runtime and
// blocks on it.

#[blitz_io::main]
async fn main_default_flavor() -> u32 {
    blitz_io::task::spawn(async { 5 }).await.unwrap()
}

#[blitz_io::main(flavor = "current_thread")]
async fn main_current_thread(a: u32, b: u32) -> u32 {
    blitz_io::task::spawn(async move { a + b }).await.unwrap()
}

#[blitz_io::main(worker_threads = 2)]
pub(crate) async fn main_two_workers() -> std::io::Result<Vec<u32>> {
    let handles: Vec<_> = (0..4).map(|i| blitz_io::task::spawn(async move { i })).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.map_err(|e| std::io::Error::other(e.to_string()))?);
    }
    Ok(out)
}

#[test]
fn main_attribute_on_plain_functions() {
    assert_eq!(main_default_flavor(), 5);
    assert_eq!(main_current_thread(2, 3), 5);
    assert_eq!(main_two_workers().unwrap(), vec![0, 1, 2, 3]);
    // A second call builds a second runtime.
    assert_eq!(main_default_flavor(), 5);
}

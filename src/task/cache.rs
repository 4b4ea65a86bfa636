//! Per-thread recycling of task allocations.
//!
//! # Why
//!
//! Spawn + join on the current-thread runtime was measured (callgrind, `rtbench --bench
//! spawn`) at ~920 instructions per task, ~330 of them in glibc `malloc`/`free`. glibc's
//! own per-thread cache (tcache) keeps only 7 blocks of a size, so when a program spawns
//! a burst of tasks and joins them later, which is how servers and fan-out code spawn,
//! all but 7 allocations of the burst go through the arena's bins (and a large
//! allocation in between consolidates them, undoing the work).
//!
//! # What
//!
//! A thread that runs a scheduler (a multi-thread worker, or a thread inside
//! `block_on`) keeps the blocks of freed tasks in free lists, one per size class, and
//! hands them to the next tasks it spawns. Blocks are raw memory: a task's fields are
//! dropped before its block reaches a list.
//!
//! * **Classes.** Class sizes are 24, 40, 56, … bytes (16·k + 24): glibc hands out
//!   chunks of a request plus its 8-byte header rounded up to 16, so these sizes are the
//!   ones that fill a chunk exactly. A task's size is rounded up to its class; sizes up
//!   to [`MAX_SIZE`] are cached, larger ones and alignments above 16 always go to the
//!   allocator. A block is always allocated with its class's layout, whether or not the
//!   cache is on, so it can be freed either way.
//! * **Bound.** At most [`CAP_BYTES`] per thread, all classes together; a block freed
//!   beyond that goes to the allocator. Only threads inside a scheduler cache (workers,
//!   and threads while they are in `block_on`; see [`enable`]): a blocking-pool thread
//!   or a foreign thread that drops a task's last reference frees straight to the
//!   allocator, so the memory held is bounded by (workers + threads in `block_on`) ×
//!   `CAP_BYTES`: memory malloc would also have kept in its bins after the same burst.
//! * **Cross-thread.** A task made on one worker and freed on another lands in the
//!   second one's lists; each thread's lists are its own, so no synchronisation is
//!   needed. Work that moves tasks one way fills one cache to the cap and then frees
//!   normally.
//! * **Lifetime.** A scheduler thread holds an [`Enabled`] guard while it runs tasks
//!   (`block_on`, a worker's loop); when the outermost guard drops, the cache is emptied.
//!   Should a thread exit with blocks still held, the thread-local's destructor frees
//!   them. A task freed after that destructor ran (by another thread-local's destructor)
//!   goes to the allocator. Threads that never enable the cache only read a counter: they
//!   never touch the lists (nor register their destructor).
//! * **Checkers.** Under Miri, and in the AddressSanitizer build (`--cfg
//!   blitz_no_task_cache`, set by `scripts/sanitize.sh address`), schedulers do not
//!   enable the cache: a recycled block would hide a use-after-free of a task from them.
//!   The cache's own unit tests still run there.

use std::alloc::{alloc, dealloc as free_block, handle_alloc_error, Layout};
use std::cell::Cell;
use std::ptr::NonNull;

/// Step between class sizes (glibc's allocation granule on 64-bit targets).
const GRANULE: usize = 16;
/// The smallest class size; class `k` is `SMALLEST + k * GRANULE` bytes.
const SMALLEST: usize = 24;
/// Largest task allocation that is cached.
const MAX_SIZE: usize = 1024;
/// Alignment of every cached block; tasks that need more are not cached.
const ALIGN: usize = 16;
/// Bytes of free blocks one thread may hold (all classes together).
const CAP_BYTES: usize = 256 * 1024;
/// Classes 0..CLASSES cover every size up to `MAX_SIZE`.
const CLASSES: usize = (MAX_SIZE - SMALLEST).div_ceil(GRANULE) + 1;

/// A free block: its first word links to the next one of the class.
struct FreeBlock {
    next: *mut FreeBlock,
}

struct Cache {
    /// Bytes held in the lists.
    bytes: Cell<usize>,
    heads: [Cell<*mut FreeBlock>; CLASSES],
}

impl Cache {
    /// Frees every block held.
    fn flush(&self) {
        for (class, head) in self.heads.iter().enumerate() {
            let layout = class_layout(class);
            let mut block = head.replace(std::ptr::null_mut());
            while !block.is_null() {
                // SAFETY: every block in list `class` is a live allocation of
                // `class_layout(class)` that nothing else references, with its link
                // written by `deallocate`.
                unsafe {
                    let next = (*block).next;
                    free_block(block.cast(), layout);
                    block = next;
                }
            }
        }
        self.bytes.set(0);
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.flush();
    }
}

thread_local! {
    /// Nesting depth of [`enable`] on this thread; 0 = off (the lists are empty and
    /// frees go to the allocator). Separate from `CACHE` so that a thread that never
    /// enables the cache never touches it.
    static ENABLED: Cell<u32> = const { Cell::new(0) };
    static CACHE: Cache = const {
        Cache {
            bytes: Cell::new(0),
            heads: [const { Cell::new(std::ptr::null_mut()) }; CLASSES],
        }
    };
}

/// The class of a task layout, or `None` if it is not cached.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_SIZE || layout.align() > ALIGN {
        return None;
    }
    // Zero-sized layouts (never a task) get the smallest class: `alloc` never sees size 0.
    Some(layout.size().saturating_sub(SMALLEST).div_ceil(GRANULE))
}

/// The layout every block of `class` is allocated with.
#[inline]
fn class_layout(class: usize) -> Layout {
    // A small non-zero size and a power-of-two alignment: always a valid layout. (The
    // size need not be a multiple of the alignment; malloc returns 16-aligned blocks.)
    match Layout::from_size_align(SMALLEST + class * GRANULE, ALIGN) {
        Ok(layout) => layout,
        Err(_) => unreachable!("class layouts are valid by construction"),
    }
}

/// Whether this thread's cache is on.
#[inline]
fn enabled() -> bool {
    ENABLED.try_with(|e| e.get() > 0).unwrap_or(false)
}

/// Allocates a block for a task of `layout`: from this thread's cache if it has one of
/// the class, else from the global allocator. Aborts on out-of-memory, as `Box::new`
/// does.
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    let layout = match class_of(layout) {
        Some(class) => {
            if enabled() {
                let cached = CACHE.try_with(|c| {
                    let block = c.heads[class].get();
                    if block.is_null() {
                        return None;
                    }
                    // SAFETY: a block in the list is ours alone and holds its link, written
                    // by `deallocate`.
                    c.heads[class].set(unsafe { (*block).next });
                    c.bytes.set(c.bytes.get() - class_layout(class).size());
                    NonNull::new(block.cast::<u8>())
                });
                if let Ok(Some(block)) = cached {
                    return block;
                }
            }
            class_layout(class)
        }
        None => layout,
    };
    // A cached class's layout is never empty; a bypassed one is the caller's, and task
    // layouts are never empty (the header is not).
    debug_assert!(layout.size() > 0);
    // SAFETY: `layout` has a non-zero size (above).
    match NonNull::new(unsafe { alloc(layout) }) {
        Some(block) => block,
        None => handle_alloc_error(layout),
    }
}

/// Frees a block that [`allocate`] returned for `layout`; the caller has dropped what was
/// in it and nothing references it any more.
///
/// # Safety
///
/// `block` came from `allocate(layout)` with this same layout and is not used again.
#[inline]
pub(crate) unsafe fn deallocate(block: NonNull<u8>, layout: Layout) {
    let Some(class) = class_of(layout) else {
        // SAFETY: by the contract, allocated with exactly this layout.
        return unsafe { free_block(block.as_ptr(), layout) };
    };
    let size = class_layout(class).size();
    let kept = enabled()
        && CACHE
            .try_with(|c| {
                if c.bytes.get() + size > CAP_BYTES {
                    return false;
                }
                let block = block.cast::<FreeBlock>().as_ptr();
                // SAFETY: the block is at least 24 bytes, 16-aligned, and ours alone.
                unsafe { block.write(FreeBlock { next: c.heads[class].get() }) };
                c.heads[class].set(block);
                c.bytes.set(c.bytes.get() + size);
                true
            })
            .unwrap_or(false);
    if !kept {
        // SAFETY: by the contract, allocated with this class's layout.
        unsafe { free_block(block.as_ptr(), class_layout(class)) };
    }
}

/// Turns this thread's cache on until the returned guard drops.
///
/// Called by a thread that runs a scheduler. Nested guards (a `block_on` inside a
/// worker, say) keep it on; when the outermost one drops, the cache is emptied, so a
/// thread that once ran `block_on` keeps nothing afterwards.
pub(crate) fn enable() -> Enabled {
    let _ = ENABLED.try_with(|e| e.set(e.get() + 1));
    Enabled { _not_send: std::marker::PhantomData }
}

/// [`enable`] for a scheduler thread: `None` under Miri and in the AddressSanitizer build
/// (see "Checkers" in the module doc).
pub(crate) fn enable_for_scheduler() -> Option<Enabled> {
    if cfg!(any(miri, blitz_no_task_cache)) {
        None
    } else {
        Some(enable())
    }
}

/// Keeps this thread's task cache on; see [`enable`].
pub(crate) struct Enabled {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Enabled {
    fn drop(&mut self) {
        let depth = ENABLED.try_with(|e| {
            let depth = e.get().saturating_sub(1);
            e.set(depth);
            depth
        });
        if depth == Ok(0) {
            let _ = CACHE.try_with(Cache::flush);
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Frees a block these tests allocated.
    fn give_back(block: NonNull<u8>, layout: Layout) {
        // SAFETY: every caller passes a block from `allocate(layout)` and drops it after.
        unsafe { deallocate(block, layout) }
    }

    /// Bytes this thread's cache holds.
    fn held() -> usize {
        CACHE.with(|c| c.bytes.get())
    }

    #[test]
    fn freed_block_is_reused_only_while_enabled() {
        let layout = Layout::from_size_align(104, 8).unwrap();
        // Off: a freed block goes to the allocator; nothing is held.
        let a = allocate(layout);
        give_back(a, layout);
        assert_eq!(held(), 0);

        let guard = enable();
        let a = allocate(layout);
        give_back(a, layout);
        assert_eq!(held(), 104, "104 bytes is a class size (16 * 5 + 24)");
        let b = allocate(layout);
        assert_eq!(a, b, "the next task of the class gets the freed block");
        assert_eq!(held(), 0);
        // A neighbouring size in the same class reuses it too; another class does not.
        give_back(b, layout);
        let same = Layout::from_size_align(90, 4).unwrap();
        let c = allocate(same);
        assert_eq!(c, b);
        give_back(c, same);
        let other = Layout::from_size_align(200, 8).unwrap();
        let d = allocate(other);
        assert_ne!(d, c);
        give_back(d, other);
        assert_eq!(held(), 104 + 200);
        drop(guard);
        assert_eq!(held(), 0, "the outermost guard empties the cache");
    }

    #[test]
    fn nested_guards_keep_the_cache_until_the_outermost_drops() {
        let layout = Layout::from_size_align(64, 8).unwrap();
        let outer = enable();
        let inner = enable();
        let a = allocate(layout);
        give_back(a, layout);
        drop(inner);
        assert_eq!(held(), 72, "64 bytes take the 72-byte class");
        drop(outer);
        assert_eq!(held(), 0);
    }

    #[test]
    fn the_cap_bounds_what_a_thread_holds() {
        let layout = Layout::from_size_align(MAX_SIZE, 8).unwrap();
        let _guard = enable();
        let n = CAP_BYTES / MAX_SIZE + 10;
        let blocks: Vec<_> = (0..n).map(|_| allocate(layout)).collect();
        for b in blocks {
            give_back(b, layout);
        }
        let class_size = class_layout(class_of(layout).unwrap()).size();
        assert!(held() <= CAP_BYTES && held() + class_size > CAP_BYTES, "filled to the cap, the rest freed");
    }

    #[test]
    fn large_and_over_aligned_tasks_bypass_the_cache() {
        let _guard = enable();
        for layout in [Layout::from_size_align(MAX_SIZE + 1, 8).unwrap(), Layout::from_size_align(64, 64).unwrap()] {
            let a = allocate(layout);
            assert_eq!(a.as_ptr() as usize % layout.align(), 0);
            give_back(a, layout);
            assert_eq!(held(), 0);
        }
    }

    #[test]
    fn every_size_up_to_the_limit_gets_the_smallest_class_that_fits() {
        for size in 0..=MAX_SIZE + 16 {
            let layout = Layout::from_size_align(size, 8).unwrap();
            match class_of(layout) {
                Some(class) => {
                    assert!(size <= MAX_SIZE);
                    assert!(class < CLASSES, "size {size}: class {class} out of range");
                    let cs = class_layout(class).size();
                    assert!(cs >= size, "size {size}: class size {cs} too small");
                    assert!(cs % GRANULE == SMALLEST % GRANULE);
                    if class > 0 {
                        assert!(class_layout(class - 1).size() < size, "size {size}: a smaller class fits");
                    }
                }
                None => assert!(size > MAX_SIZE, "size {size} not cached"),
            }
        }
    }

    #[test]
    fn blocks_are_aligned_for_their_class() {
        let _guard = enable();
        for size in [0, 1, 15, 16, 17, 24, 25, 100, 1000, 1016, 1017, 1024] {
            let layout = Layout::from_size_align(size, 8).unwrap();
            let a = allocate(layout);
            assert_eq!(a.as_ptr() as usize % ALIGN, 0);
            // The whole class size is usable.
            let class_size = class_layout(class_of(layout).unwrap()).size();
            // SAFETY: the block is `class_size` bytes long (allocated with the class layout).
            unsafe { a.as_ptr().write_bytes(0xa5, class_size) };
            give_back(a, layout);
        }
    }

    #[test]
    fn a_worker_thread_frees_its_blocks_at_exit() {
        // Blocks held by a thread that exits with its guard alive are freed by the
        // thread-local's destructor (Miri reports a leak otherwise).
        std::thread::spawn(|| {
            let guard = enable();
            let layout = Layout::from_size_align(48, 8).unwrap();
            let a = allocate(layout);
            give_back(a, layout);
            assert_eq!(held(), 56, "48 bytes take the 56-byte class");
            std::mem::forget(guard);
        })
        .join()
        .unwrap();
    }
}

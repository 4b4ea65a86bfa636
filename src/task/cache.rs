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
//! * **Classes.** A task's size is rounded up to 16 bytes (malloc's own granule, so
//!   nothing is wasted); sizes up to [`MAX_SIZE`] are cached, larger ones and alignments
//!   above 16 always go to the allocator. A block is always allocated with its class's
//!   layout, whether or not the cache is on, so it can be freed either way.
//! * **Bound.** At most [`CAP_BYTES`] per thread, all classes together; a block freed
//!   beyond that goes to the allocator. Only scheduler threads cache (see [`enable`]):
//!   a blocking-pool thread or a foreign thread that drops a task's last reference frees
//!   straight to the allocator, so the memory held is bounded by the scheduler threads
//!   × `CAP_BYTES`: memory malloc would also have kept in its bins after the same burst.
//! * **Cross-thread.** A task made on one worker and freed on another lands in the
//!   second one's lists; each thread's lists are its own, so no synchronisation is
//!   needed. Work that moves tasks one way fills one cache to the cap and then frees
//!   normally.
//! * **Lifetime.** `block_on` enables the cache for its duration and empties it when it
//!   returns ([`Enabled`]); a worker keeps it until its thread exits, when the
//!   thread-local's destructor frees every block. A task freed after that destructor
//!   ran (by another thread-local's destructor) goes to the allocator.

use std::alloc::{alloc, dealloc as free_block, handle_alloc_error, Layout};
use std::cell::Cell;
use std::ptr::NonNull;

/// Size granule of the classes (glibc's allocation granule on 64-bit targets).
const GRANULE: usize = 16;
/// Largest task allocation that is cached.
pub(crate) const MAX_SIZE: usize = 1024;
/// Alignment of every cached block; tasks that need more are not cached.
const ALIGN: usize = 16;
/// Bytes of free blocks one thread may hold (all classes together).
pub(crate) const CAP_BYTES: usize = 256 * 1024;
const CLASSES: usize = MAX_SIZE / GRANULE;

/// A free block: its first word links to the next one of the class.
struct FreeBlock {
    next: *mut FreeBlock,
}

struct Cache {
    /// Nesting depth of [`enable`]; 0 = off (frees go to the allocator).
    enabled: Cell<u32>,
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
                // `class_layout(class)` that nothing else references (`push`), with its
                // link written there.
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
    static CACHE: Cache = const {
        Cache {
            enabled: Cell::new(0),
            bytes: Cell::new(0),
            heads: [const { Cell::new(std::ptr::null_mut()) }; CLASSES],
        }
    };
}

/// The class of a task layout, or `None` if it is not cached.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if layout.size() == 0 || layout.size() > MAX_SIZE || layout.align() > ALIGN {
        return None;
    }
    Some((layout.size() - 1) / GRANULE)
}

/// The layout every block of `class` is allocated with.
#[inline]
fn class_layout(class: usize) -> Layout {
    // The size is a non-zero multiple of 16 no larger than `MAX_SIZE` and the alignment
    // a power of two: always a valid layout.
    match Layout::from_size_align((class + 1) * GRANULE, ALIGN) {
        Ok(layout) => layout,
        Err(_) => unreachable!("class layouts are valid by construction"),
    }
}

/// Allocates a block for a task of `layout` (not zero-sized): from this thread's cache
/// if it has one of the class, else from the global allocator. Aborts on out-of-memory,
/// as `Box::new` does.
#[inline]
pub(crate) fn allocate(layout: Layout) -> NonNull<u8> {
    let layout = match class_of(layout) {
        Some(class) => {
            let cached = CACHE.try_with(|c| {
                let block = c.heads[class].get();
                if block.is_null() {
                    return None;
                }
                // SAFETY: a block in the list is ours alone and holds its link (`push`).
                c.heads[class].set(unsafe { (*block).next });
                c.bytes.set(c.bytes.get() - class_layout(class).size());
                NonNull::new(block.cast::<u8>())
            });
            if let Ok(Some(block)) = cached {
                return block;
            }
            class_layout(class)
        }
        None => layout,
    };
    // SAFETY: every task layout has a non-zero size (its header is not empty).
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
    let kept = CACHE
        .try_with(|c| {
            if c.enabled.get() == 0 || c.bytes.get() + size > CAP_BYTES {
                return false;
            }
            let block = block.cast::<FreeBlock>().as_ptr();
            // SAFETY: the block is at least 16 bytes, 16-aligned, and ours alone.
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
    let _ = CACHE.try_with(|c| c.enabled.set(c.enabled.get() + 1));
    Enabled { _not_send: std::marker::PhantomData }
}

/// Keeps this thread's task cache on; see [`enable`].
pub(crate) struct Enabled {
    _not_send: std::marker::PhantomData<*const ()>,
}

impl Drop for Enabled {
    fn drop(&mut self) {
        let _ = CACHE.try_with(|c| {
            let depth = c.enabled.get().saturating_sub(1);
            c.enabled.set(depth);
            if depth == 0 {
                c.flush();
            }
        });
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
        assert_eq!(held(), 112, "104 bytes round up to the 112-byte class");
        let b = allocate(layout);
        assert_eq!(a, b, "the next task of the class gets the freed block");
        assert_eq!(held(), 0);
        // A neighbouring size in the same class reuses it too; another class does not.
        give_back(b, layout);
        let same = Layout::from_size_align(100, 4).unwrap();
        let c = allocate(same);
        assert_eq!(c, b);
        give_back(c, same);
        let other = Layout::from_size_align(200, 8).unwrap();
        let d = allocate(other);
        assert_ne!(d, c);
        give_back(d, other);
        assert_eq!(held(), 112 + 208);
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
        assert_eq!(held(), 64);
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
        assert_eq!(held(), CAP_BYTES, "filled to the cap, the rest freed");
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
    fn blocks_are_aligned_for_their_class() {
        let _guard = enable();
        for size in [1, 15, 16, 17, 100, 1000, 1024] {
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
            assert_eq!(held(), 48);
            std::mem::forget(guard);
        })
        .join()
        .unwrap();
    }
}

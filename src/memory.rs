//! The process's memory allocator: mimalloc for Rust's allocations, glibc malloc
//! (held to two arenas) for what C libraries allocate.
//!
//! # Why mimalloc
//!
//! Planning and resuming are bound by the progress store, and sled allocates and
//! frees small nodes at every insert and read: with glibc malloc, a third of a
//! 1,000,000-row plan's CPU was malloc and free, and its threads waited on the arena
//! locks. mimalloc's per-thread free lists took the same plan from 17.9 s to 9.8 s
//! (BENCHMARKS.md, "Planning a 1,000,000-row manifest").
//!
//! Three options keep its memory near glibc's (BENCHMARKS.md, the plan and "Camera
//! originals"):
//! arenas committed as they are used, not eagerly (`ARENA_EAGER_COMMIT`), and
//! freed memory given back to the system after 1 ms (`PURGE_DELAY`, 10 ms by
//! default; `ARENA_PURGE_MULT`, 10 times that for arenas by default). With
//! mimalloc's defaults a whole `enroll` of 200 camera originals peaked at 145-147
//! MiB, against 129 MiB with these, for the same CPU a photo (156-157 ms against
//! 156-159 ms). Being set in code, these three are not read from their `MIMALLOC_*`
//! environment variables; mimalloc's other options are.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// mimalloc's options by their number in its header (`mi_option_e` in `mimalloc.h`,
// version 2): the Rust binding names only some of them.
/// `mi_option_arena_eager_commit`: 0, commit an arena's memory as it is used.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay`: milliseconds before freed memory is given back.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// `mi_option_arena_purge_mult`: the purge delay of arenas, as a multiple of it.
const ARENA_PURGE_MULT: libmimalloc_sys::mi_option_t = 24;
/// The options set, with their values.
const OPTIONS: [(libmimalloc_sys::mi_option_t, std::ffi::c_long); 3] = [
    (ARENA_EAGER_COMMIT, 0),
    (PURGE_DELAY, 1),
    (ARENA_PURGE_MULT, 1),
];

/// Sets the allocators up. Called first thing in `main` (and by the benchmarks, so
/// they measure what the binary does), before any thread is started.
pub fn configure() {
    // Names the early hook, so the linker keeps the part of the library that holds it.
    std::hint::black_box(&CONFIGURE_MIMALLOC);
    limit_glibc_arenas();
}

/// Sets mimalloc's options before `main`: the runtime's own first allocations
/// reserve mimalloc's first arena, with the options of that moment, so setting them
/// in `main` would come too late for it.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_MIMALLOC: extern "C" fn() = configure_mimalloc;
#[cfg(not(target_os = "linux"))]
static CONFIGURE_MIMALLOC: () = ();

#[cfg(target_os = "linux")]
extern "C" fn configure_mimalloc() {
    for (option, value) in OPTIONS {
        // SAFETY: sets one option of the allocator; runs before `main`, on one thread.
        unsafe {
            libmimalloc_sys::mi_option_set(option, value);
        }
    }
}

/// Holds glibc malloc to two arenas (its default is eight per core), unless the
/// operator sets `MALLOC_ARENA_MAX`.
///
/// glibc malloc serves only what C libraries allocate (libheif decoding a HEIC
/// photo): buffers of several MB freed on other threads, which an arena per thread
/// would each keep resident. Two arenas bound that for a few lock waits a photo.
fn limit_glibc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: changes one malloc setting, once, before any thread is started.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// What the allocator choice changes: Rust's allocations are mimalloc's, not the
    /// system's. Fails with the `#[global_allocator]` line removed.
    #[test]
    fn rusts_allocations_are_served_by_mimalloc() {
        use std::alloc::{GlobalAlloc as _, Layout, System};
        let boxed = Box::new([7u8; 64]);
        // SAFETY: asks whether an address lies in mimalloc's heap; reads nothing.
        let ours = unsafe { libmimalloc_sys::mi_is_in_heap_region(boxed.as_ptr().cast()) };
        assert!(ours, "a Box is not in mimalloc's heap");
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a non-zero layout, freed below with the same allocator and layout.
        let system = unsafe { System.alloc(layout) };
        assert!(!system.is_null());
        // SAFETY: as above.
        let theirs = unsafe { libmimalloc_sys::mi_is_in_heap_region(system.cast()) };
        // SAFETY: allocated above by System with this layout.
        unsafe { System.dealloc(system, layout) };
        assert!(!theirs, "the check cannot tell the allocators apart");
    }

    /// The hook in `.init_array` ran before `main`: mimalloc's defaults for these
    /// options (2, 10 and 10) differ from the values set, so the test fails when
    /// the hook is not linked in or not run (tried by removing `#[used]` and the
    /// link section). It does not show that the options lower the peak memory; the
    /// figures in the module's documentation do.
    #[test]
    fn mimalloc_options_are_set_before_main() {
        for (option, value) in OPTIONS {
            // SAFETY: reads one option.
            let set = unsafe { libmimalloc_sys::mi_option_get(option) };
            assert_eq!(set, value, "option {option}");
        }
    }
}

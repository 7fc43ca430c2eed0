//! The process's memory allocator: mimalloc for Rust's allocations, glibc malloc
//! (held to two arenas) for what C libraries allocate.
//!
//! # Why mimalloc
//!
//! Planning and resuming are bound by the progress store, and sled allocates and
//! frees small nodes at every insert and read: with glibc malloc, a third of a
//! 1,000,000-row plan's CPU was malloc and free, and its threads waited on the arena
//! locks. mimalloc's per-thread free lists took the same plan from 17.9 s to about
//! 10 s (BENCHMARKS.md, "Planning a 1,000,000-row manifest").
//!
//! Its arenas are committed as they are used, not eagerly
//! ([`ARENA_EAGER_COMMIT`] off): eager commit kept up to 178 MB resident for that
//! plan, against 123 MB without, for the same time.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in `mimalloc.h` (its fifth option). The Rust
/// binding names only some options; the numbering is that of mimalloc's header.
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

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
    // SAFETY: sets one option of the allocator; runs before `main`, on one thread.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
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

    #[test]
    fn mimalloc_commits_arenas_as_used_from_the_start() {
        // SAFETY: reads one option.
        let eager = unsafe { libmimalloc_sys::mi_option_get(ARENA_EAGER_COMMIT) };
        assert_eq!(eager, 0);
    }
}

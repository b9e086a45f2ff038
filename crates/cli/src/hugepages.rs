//! Transparent huge pages for the weights: the process re-executes itself once with glibc's
//! `glibc.malloc.hugetlb=1` tunable.
//!
//! Decoding streams every weight once per token. On 4 KiB pages that is ~132 000 pages per
//! token for the default model in f32, each a TLB miss, and the hardware prefetchers stop at
//! every page boundary. With the tunable, glibc advises its heap and its mmap'd chunks
//! `MADV_HUGEPAGE` before it touches them, so where the kernel's transparent huge pages are
//! `always` or `madvise` (the common default) the weights land on 2 MiB pages. Measured on a
//! Zen 4 guest in eight alternating pairs of `bench decode` (docs/results.md, "the weights on
//! 2 MiB pages"): behind probes over 47 GB/s, f32 decoding read 75–92% of the probe with them
//! against 71–80% without, bf16 76–85% against 73–75%; behind slower probes, no difference.
//!
//! glibc reads tunables only when a process starts, so [`reexec_if_needed`] runs first thing
//! in `main`: it sets the tunable and replaces the process with a fresh copy of itself (same
//! arguments, same standard streams). The copy puts the environment back as it was
//! ([`restore_env`]), so child processes (the Python references, pip and npm) run as the user
//! would run them. Set `SECATEURS_HUGE_PAGES=0` to skip all of this. Nothing happens on other
//! systems, with another C library, when the kernel's setting is `never`, or when
//! `GLIBC_TUNABLES` already sets `glibc.malloc.hugetlb`.

/// The opt-out switch (`0` turns the re-execution off).
pub const SWITCH: &str = "SECATEURS_HUGE_PAGES";
/// Set in the re-executed copy: the `GLIBC_TUNABLES` the user had (or empty: none).
const SAVED: &str = "SECATEURS_SAVED_GLIBC_TUNABLES";
/// Set in the re-executed copy: whether the user had `GLIBC_TUNABLES` at all.
const HAD: &str = "SECATEURS_HAD_GLIBC_TUNABLES";
const TUNABLES: &str = "GLIBC_TUNABLES";
const HUGETLB: &str = "glibc.malloc.hugetlb";

/// What this process runs with, for reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Re-executed with the tunable set by us.
    On,
    /// The user's own `GLIBC_TUNABLES` sets `glibc.malloc.hugetlb` (left as it is).
    UserSet,
    /// Not used: opted out, unsupported system, or the kernel's setting is `never`.
    Off,
}

impl State {
    /// A short description for reports.
    pub fn describe(self) -> &'static str {
        match self {
            State::On => "on (glibc.malloc.hugetlb=1)",
            State::UserSet => "as set in GLIBC_TUNABLES",
            State::Off => "off",
        }
    }
}

static STATE: std::sync::OnceLock<State> = std::sync::OnceLock::new();

/// The state [`restore_env`] found (`Off` before it ran).
pub fn state() -> State {
    STATE.get().copied().unwrap_or(State::Off)
}

/// The `GLIBC_TUNABLES` value with the huge-page tunable added to `current`, or `None` when
/// `current` already sets it (the user's choice stands).
fn with_hugetlb(current: Option<&str>) -> Option<String> {
    match current {
        None | Some("") => Some(format!("{HUGETLB}=1")),
        Some(c) if c.split(':').any(|t| t.split('=').next() == Some(HUGETLB)) => None,
        Some(c) => Some(format!("{c}:{HUGETLB}=1")),
    }
}

/// Whether the kernel's transparent-huge-page setting (the bracketed word of
/// `/sys/kernel/mm/transparent_hugepage/enabled`, e.g. `always [madvise] never`) lets advised
/// memory use huge pages.
fn thp_allows(setting: &str) -> bool {
    setting
        .split_whitespace()
        .find(|w| w.starts_with('['))
        .is_some_and(|w| w == "[always]" || w == "[madvise]")
}

/// Re-executes this process with the huge-page tunable where that applies (see the module
/// docs); returns only when it does not (or when `exec` fails, which changes nothing). Call it
/// before any thread is started.
pub fn reexec_if_needed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os(SAVED).is_some() || std::env::var(SWITCH).as_deref() == Ok("0") {
            return;
        }
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        if !thp.is_ok_and(|s| thp_allows(&s)) {
            return;
        }
        let current = std::env::var(TUNABLES).ok();
        let Some(tunables) = with_hugetlb(current.as_deref()) else {
            return;
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
        let err = std::process::Command::new(&exe)
            .arg0(arg0)
            .args(args)
            .env(TUNABLES, tunables)
            .env(SAVED, current.as_deref().unwrap_or(""))
            .env(HAD, if current.is_some() { "1" } else { "0" })
            .exec();
        // Only reached when exec failed: carry on without huge pages.
        eprintln!("note: could not re-execute with huge pages ({err}); continuing without");
    }
}

/// In the re-executed copy, puts `GLIBC_TUNABLES` back as the user had it and removes the
/// bookkeeping variables; records the [`state`]. Call it first thing in `main`, before any
/// thread is started (it changes the environment).
pub fn restore_env() {
    let state = match std::env::var_os(SAVED) {
        Some(saved) => {
            if std::env::var_os(HAD).as_deref() == Some(std::ffi::OsStr::new("1")) {
                std::env::set_var(TUNABLES, saved);
            } else {
                std::env::remove_var(TUNABLES);
            }
            std::env::remove_var(SAVED);
            std::env::remove_var(HAD);
            State::On
        }
        None => match std::env::var(TUNABLES) {
            Ok(t) if with_hugetlb(Some(&t)).is_none() => State::UserSet,
            _ => State::Off,
        },
    };
    let _ = STATE.set(state);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tunable_is_added_unless_the_user_set_it() {
        assert_eq!(
            with_hugetlb(None).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            with_hugetlb(Some("")).as_deref(),
            Some("glibc.malloc.hugetlb=1")
        );
        assert_eq!(
            with_hugetlb(Some("glibc.malloc.arena_max=2")).as_deref(),
            Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1")
        );
        assert_eq!(with_hugetlb(Some("glibc.malloc.hugetlb=0")), None);
        assert_eq!(
            with_hugetlb(Some("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2")),
            None
        );
        // A longer name that merely starts with the same words is another tunable.
        assert!(with_hugetlb(Some("glibc.malloc.hugetlbx=1")).is_some());
    }

    #[test]
    fn only_always_and_madvise_allow_huge_pages() {
        assert!(thp_allows("always [madvise] never\n"));
        assert!(thp_allows("[always] madvise never\n"));
        assert!(!thp_allows("always madvise [never]\n"));
        assert!(!thp_allows(""));
    }
}

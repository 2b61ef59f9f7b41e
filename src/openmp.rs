//! How libtorch's OpenMP threads wait between parallel regions. libgomp's default lets an idle
//! thread spin for up to 300,000 iterations before it sleeps; a training step launches hundreds
//! of small operators, so the threads spin almost all the time they are not computing. Alone on
//! the cores that costs nothing, but beside another process the spinning threads take the cores
//! the others need (docs/performance.md, "Sharing the cores", has the measurements that chose
//! the policy below).
//!
//! libgomp reads `OMP_WAIT_POLICY` and `GOMP_SPINCOUNT` once, when it is loaded with libtorch,
//! before `main` runs; setting them later has no effect. The binary therefore re-executes itself
//! once with the policy in its environment ([`apply_wait_policy`], [`CHOSEN`]); a policy the user set is
//! kept. Children (run-all's jobs) inherit it.

use std::ffi::OsString;

/// The variables libgomp reads for its wait policy.
pub const POLICY_VARIABLES: [&str; 2] = ["OMP_WAIT_POLICY", "GOMP_SPINCOUNT"];

/// The policy this project chooses when the user chose none: an idle thread spins for 1,000
/// iterations (about 10 µs) before it sleeps, instead of libgomp's 300,000 (about 3 ms). Of the
/// policies measured, the one whose worst case is least bad: 1.15× the fastest when alone,
/// 1.24× the fastest when two runs share the cores, where libgomp's default is 3.7× slower.
pub const CHOSEN: (&str, &str) = ("GOMP_SPINCOUNT", "1000");

/// The wait policy in effect for this process, as recorded in result files: the variables that
/// are set (`OMP_WAIT_POLICY=PASSIVE`), or `libgomp default` when none is.
pub fn wait_policy() -> String {
    describe(|name| std::env::var_os(name))
}

fn describe(lookup: impl Fn(&str) -> Option<OsString>) -> String {
    let set: Vec<String> = POLICY_VARIABLES
        .iter()
        .filter_map(|name| lookup(name).map(|value| format!("{name}={}", value.to_string_lossy())))
        .collect();
    if set.is_empty() {
        "libgomp default".to_string()
    } else {
        set.join(" ")
    }
}

/// Whether the process must re-execute itself to get the chosen policy: only when the user set
/// neither variable (an empty value counts as set: it is a choice of libgomp's default).
fn needs_policy(lookup: impl Fn(&str) -> Option<OsString>) -> bool {
    POLICY_VARIABLES.iter().all(|name| lookup(name).is_none())
}

/// Re-executes this program with [`CHOSEN`] in its environment unless a policy is already set;
/// returns only when nothing needed doing or the re-execution failed (then the process goes on
/// with libgomp's default, which changes speed, never numbers). Call first thing in `main`.
pub fn apply_wait_policy() {
    if !needs_policy(|name| std::env::var_os(name)) {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let Ok(program) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let arg0 = args
            .next()
            .unwrap_or_else(|| program.clone().into_os_string());
        // exec replaces this process (same pid, same open files); it returns only on failure.
        let error = std::process::Command::new(&program)
            .arg0(arg0)
            .args(args)
            .env(CHOSEN.0, CHOSEN.1)
            .exec();
        eprintln!(
            "warning: could not re-execute {} with {}={} ({error}); going on with libgomp's default wait policy",
            program.display(),
            CHOSEN.0,
            CHOSEN.1
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn a_policy_set_by_the_user_is_kept() {
        assert!(needs_policy(env(&[])));
        assert!(!needs_policy(env(&[("OMP_WAIT_POLICY", "ACTIVE")])));
        assert!(!needs_policy(env(&[("GOMP_SPINCOUNT", "10000")])));
        assert!(!needs_policy(env(&[("OMP_WAIT_POLICY", "")])));
    }

    #[test]
    fn the_recorded_policy_names_what_is_set() {
        assert_eq!(describe(env(&[])), "libgomp default");
        assert_eq!(
            describe(env(&[
                ("GOMP_SPINCOUNT", "0"),
                ("OMP_WAIT_POLICY", "PASSIVE")
            ])),
            "OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=0"
        );
    }
}

//! Runs of a matrix side by side: each run in its own `mmsr-bench run-cell` process, with an
//! equal share of the cores as its libtorch threads. Processes, not threads, because libtorch's
//! random generator and thread pool are per process: a run in a child is the run it would be
//! alone with that thread count, whatever runs beside it.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Mutex};

/// How many runs go at once and how many libtorch threads each gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parallelism {
    pub jobs: usize,
    pub threads_per_job: usize,
}

/// Runs at once when `--jobs` is not given on the CPU: one per core, at most this many (a few
/// processes already fill the cores; each holds its own copy of the dataset and graphs).
pub const MAX_AUTO_JOBS: usize = 8;

impl Parallelism {
    /// `jobs` runs sharing `cores`: each gets `cores / jobs` threads (at least one).
    pub fn sharing(cores: usize, jobs: usize) -> Self {
        let jobs = jobs.max(1);
        Self {
            jobs,
            threads_per_job: (cores / jobs).max(1),
        }
    }

    /// The CPU default: one run per core (up to [`MAX_AUTO_JOBS`]), one thread each.
    pub fn auto_cpu(cores: usize) -> Self {
        Self::sharing(cores, cores.clamp(1, MAX_AUTO_JOBS))
    }
}

/// One child process to run: an id for the caller, the arguments after the program and what
/// it reads on standard input.
pub struct Task {
    pub id: usize,
    pub args: Vec<OsString>,
    pub stdin: Vec<u8>,
}

/// Why a task failed: its exit and the end of what it wrote to stderr.
#[derive(Debug)]
pub struct TaskFailure {
    pub status: String,
    pub stderr_tail: String,
}

/// Runs `tasks` in order, `parallelism.jobs` at a time, as `program args` with
/// `OMP_NUM_THREADS` set to the per-job thread count, and calls `finished` on this thread as
/// each one ends. After the first failure no further task is started; those running are
/// waited for. Returns the failures in the order they ended.
pub fn run_tasks(
    program: &Path,
    tasks: Vec<Task>,
    parallelism: Parallelism,
    mut finished: impl FnMut(usize, &Result<(), TaskFailure>),
) -> Vec<(usize, TaskFailure)> {
    let queue = Mutex::new(VecDeque::from(tasks));
    let stop = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel();
    let threads = parallelism.threads_per_job.to_string();
    let mut failures = Vec::new();
    std::thread::scope(|scope| {
        for _ in 0..parallelism.jobs {
            let sender = sender.clone();
            let (queue, stop, threads) = (&queue, &stop, &threads);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Some(task) = queue.lock().expect("queue lock").pop_front() else {
                    break;
                };
                let outcome = run_task(program, &task, threads);
                if outcome.is_err() {
                    stop.store(true, Ordering::SeqCst);
                }
                if sender.send((task.id, outcome)).is_err() {
                    break;
                }
            });
        }
        drop(sender);
        for (id, outcome) in receiver {
            finished(id, &outcome);
            if let Err(failure) = outcome {
                failures.push((id, failure));
            }
        }
    });
    failures
}

fn run_task(program: &Path, task: &Task, threads: &str) -> Result<(), TaskFailure> {
    let failed_to = |what: &str, e: std::io::Error| TaskFailure {
        status: format!("could not {what} {}: {e}", program.display()),
        stderr_tail: String::new(),
    };
    let mut command = Command::new(program);
    command
        .args(&task.args)
        .env("OMP_NUM_THREADS", threads)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    die_with_parent(&mut command);
    let mut child = command.spawn().map_err(|e| failed_to("start", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that exits without reading its input shows up in its status below.
        let _ = stdin.write_all(&task.stdin);
    }
    let output = child
        .wait_with_output()
        .map_err(|e| failed_to("wait for", e))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    Err(TaskFailure {
        status: output.status.to_string(),
        stderr_tail: lines[lines.len().saturating_sub(20)..].join("\n"),
    })
}

/// A child is killed when this process dies (Linux), so a killed `run-all` leaves no runs
/// going on behind it; its finished results stay and a new `run-all` resumes from them.
fn die_with_parent(command: &mut Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = command;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_share_the_cores_out() {
        assert_eq!(
            Parallelism::auto_cpu(2),
            Parallelism {
                jobs: 2,
                threads_per_job: 1
            }
        );
        assert_eq!(Parallelism::auto_cpu(64), Parallelism::sharing(64, 8));
        assert_eq!(Parallelism::sharing(64, 8).threads_per_job, 8);
        assert_eq!(Parallelism::sharing(2, 4).threads_per_job, 1);
        assert_eq!(Parallelism::sharing(2, 0).jobs, 1);
    }

    fn shell(script: &str) -> Vec<OsString> {
        vec!["-c".into(), script.into()]
    }

    #[test]
    fn tasks_run_side_by_side_with_their_input_and_thread_count() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let (a, b) = (a.display(), b.display());
        // Each task waits for the other's marker: they pass only if they overlap.
        let tasks = vec![
            Task {
                id: 0,
                args: shell(&format!(
                    "echo $OMP_NUM_THREADS > {a}; for i in $(seq 100); do [ -e {b} ] && exit 0; sleep 0.05; done; exit 1"
                )),
                stdin: Vec::new(),
            },
            Task {
                id: 1,
                args: shell(&format!(
                    "read line; [ \"$line\" = cell ] || exit 2; touch {b}; for i in $(seq 100); do [ -e {a} ] && exit 0; sleep 0.05; done; exit 1"
                )),
                stdin: b"cell\n".to_vec(),
            },
        ];
        let mut ended = Vec::new();
        let failures = run_tasks(
            Path::new("/bin/sh"),
            tasks,
            Parallelism::sharing(6, 2),
            |id, outcome| ended.push((id, outcome.is_ok())),
        );
        ended.sort();
        assert_eq!(ended, vec![(0, true), (1, true)]);
        assert!(failures.is_empty());
        let threads = std::fs::read_to_string(dir.path().join("a")).unwrap();
        assert_eq!(threads.trim(), "3");
    }

    #[test]
    fn no_task_starts_after_a_failure() {
        let dir = tempfile::tempdir().unwrap();
        let never = dir.path().join("never");
        let tasks = vec![
            Task {
                id: 7,
                args: shell("echo starting >&2; echo broken >&2; exit 3"),
                stdin: Vec::new(),
            },
            Task {
                id: 8,
                args: shell(&format!("touch {}", never.display())),
                stdin: Vec::new(),
            },
        ];
        let failures = run_tasks(
            Path::new("/bin/sh"),
            tasks,
            Parallelism::sharing(1, 1),
            |_, _| {},
        );
        assert_eq!(failures.len(), 1);
        assert_eq!(failures[0].0, 7);
        assert_eq!(failures[0].1.stderr_tail, "starting\nbroken");
        assert!(
            failures[0].1.status.contains('3'),
            "{}",
            failures[0].1.status
        );
        assert!(!never.exists());
    }
}

//! Hardware probes: what CPU and GPU compute a run, and how much memory this process holds.
//! Linux-first (`/proc`); elsewhere each probe answers `None` or does nothing.

pub fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo_field(&info, "model name").map(str::to_string)
}

/// The CPU as far as the last bits of a run depend on it: the model name, the family and model
/// numbers (MKL picks its kernels by them) and the widest vector instruction set libtorch
/// dispatches to. Virtual hosts can share a model name ("AMD EPYC") and still differ in these.
pub fn cpu_kind() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpu_kind_from(&info)
}

/// [`cpu_kind`] from the text of `/proc/cpuinfo` (its first processor's entry).
pub fn cpu_kind_from(cpuinfo: &str) -> Option<String> {
    let name = cpuinfo_field(cpuinfo, "model name")?;
    let family = cpuinfo_field(cpuinfo, "cpu family").unwrap_or("?");
    let model = cpuinfo_field(cpuinfo, "model").unwrap_or("?");
    let flags: Vec<&str> = cpuinfo_field(cpuinfo, "flags")
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let has = |f: &str| flags.contains(&f);
    // libtorch's CPU capability levels: AVX512 needs these four, AVX2 needs FMA as well.
    let isa = if ["avx512f", "avx512bw", "avx512vl", "avx512dq"]
        .iter()
        .all(|f| has(f))
    {
        "AVX512"
    } else if has("avx2") && has("fma") {
        "AVX2"
    } else {
        "no AVX2"
    };
    Some(format!("{name} (family {family} model {model}, {isa})"))
}

/// The value of `key` in the first processor's entry of `/proc/cpuinfo` (keys are padded with
/// tabs: `model\t\t: 1`).
fn cpuinfo_field<'a>(cpuinfo: &'a str, key: &str) -> Option<&'a str> {
    cpuinfo
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

/// tch exposes no device-name query, so ask the driver's tool when it is there.
pub fn gpu_model(index: usize) -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args([
            "--query-gpu=name",
            "--format=csv,noheader",
            &format!("--id={index}"),
        ])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Resets this process's peak resident memory (Linux 4.0+: writing 5 to clear_refs), so that a
/// run inside a longer process (`run-all`) reports its own peak. Best effort: elsewhere the
/// peak stays the process's.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Peak resident memory of this process since start or the last reset (Linux VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resident memory of this process now (Linux VmRSS), in bytes.
pub fn current_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Hands the allocator's free pages (in every arena) back to the system. Cheap once, costly
/// in a loop: pages handed back are faulted in again by the next allocation that reuses them.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap memory; no pointer is involved.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Hands free pages back once resident memory has grown by more than `threshold` bytes since
/// the last time (or since creation): after a Beauty epoch of HAN-GNN the heap holds some
/// 0.6 GB freed, which the evaluation passes would otherwise grow on top of; after an epoch on
/// a small dataset, too little to pay for faulting the pages in again.
pub struct TrimOnGrowth {
    threshold: u64,
    baseline: Option<u64>,
}

impl TrimOnGrowth {
    pub fn new(threshold: u64) -> Self {
        Self {
            threshold,
            baseline: current_rss_bytes(),
        }
    }

    /// Trims if resident memory grew past the threshold; says whether it did.
    pub fn check(&mut self) -> bool {
        let (Some(now), Some(baseline)) = (current_rss_bytes(), self.baseline) else {
            return false;
        };
        if now.saturating_sub(baseline) <= self.threshold {
            return false;
        }
        release_free_memory();
        self.baseline = current_rss_bytes();
        true
    }
}

/// Hands free pages back when resident memory runs away during a loop: more than `threshold`
/// bytes above where it stood one check after the last trim (the loop's working set faulted
/// in again), so that a loop whose freed blocks glibc keeps without reusing them stays near its
/// working set, while one that only holds its working set is never trimmed.
pub struct TrimRunaway {
    threshold: u64,
    baseline: Option<u64>,
}

impl TrimRunaway {
    pub fn new(threshold: u64) -> Self {
        Self {
            threshold,
            baseline: None,
        }
    }

    /// The first check (and the first after a trim) sets the baseline; later ones trim past
    /// the threshold. Says whether it trimmed.
    pub fn check(&mut self) -> bool {
        let Some(now) = current_rss_bytes() else {
            return false;
        };
        match self.baseline {
            Some(baseline) if now.saturating_sub(baseline) > self.threshold => {
                release_free_memory();
                self.baseline = None;
                true
            }
            Some(_) => false,
            None => {
                self.baseline = Some(now);
                false
            }
        }
    }
}

/// Hands the allocator's free pages back to the system and resets the peak, so that the next
/// measurement's peak is its own (as far as glibc allows: memory still in use stays counted).
pub fn release_and_reset_peak_rss() {
    release_free_memory();
    reset_peak_rss();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn trims_only_past_the_growth_threshold() {
        let mut never = TrimOnGrowth::new(u64::MAX);
        let mut soon = TrimOnGrowth::new(16 << 20);
        // 64 MB written (resident) and still held: growth past 16 MB, short of u64::MAX.
        let held = vec![1u8; 64 << 20];
        assert!(!never.check());
        assert!(soon.check());
        assert_eq!(held.iter().map(|&b| b as usize).sum::<usize>(), 64 << 20);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn a_runaway_is_measured_from_one_check_after_the_last_trim() {
        let mut runaway = TrimRunaway::new(16 << 20);
        assert!(!runaway.check(), "the first check sets the baseline");
        // 128 MB written and held at each step: far past 16 MB whatever other tests free.
        let held = vec![1u8; 128 << 20];
        assert!(runaway.check(), "128 MB above the baseline");
        assert!(
            !runaway.check(),
            "the check after a trim sets the baseline again"
        );
        let more = vec![2u8; 128 << 20];
        assert!(runaway.check());
        let sum = |v: &[u8]| v.iter().map(|&b| b as usize).sum::<usize>();
        assert_eq!(sum(&held) + sum(&more), 3 * (128 << 20));
    }

    fn cpuinfo(model: &str, flags: &str) -> String {
        format!(
            "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\nflags\t\t: {flags}\n\nprocessor\t: 1\nmodel\t\t: 99\n"
        )
    }

    #[test]
    fn the_cpu_kind_tells_apart_hosts_with_one_model_name() {
        let zen3 = cpu_kind_from(&cpuinfo("1", "fpu sse2 fma avx avx2")).unwrap();
        let zen4 = cpu_kind_from(&cpuinfo(
            "17",
            "fma avx avx2 avx512f avx512dq avx512bw avx512vl",
        ))
        .unwrap();
        assert_eq!(zen3, "AMD EPYC (family 25 model 1, AVX2)");
        assert_eq!(zen4, "AMD EPYC (family 25 model 17, AVX512)");
        assert_eq!(
            cpu_kind_from(&cpuinfo("1", "sse2 avx")).unwrap(),
            "AMD EPYC (family 25 model 1, no AVX2)"
        );
        assert_eq!(cpu_kind_from("processor\t: 0\n"), None);
    }
}

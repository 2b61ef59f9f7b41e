//! `--device auto|cpu|cuda[:N]`: parsing, resolution and labels; the hardware kind that goes
//! into run ids, and the hardware probes behind it ([`probe`]).

pub mod probe;

use std::fmt;
use std::str::FromStr;

use tch::{Cuda, Device};
use thiserror::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// CUDA when `tch::Cuda::is_available()`, else the CPU.
    Auto,
    Cpu,
    Cuda(usize),
}

#[derive(Debug, Error, PartialEq)]
pub enum DeviceError {
    #[error("invalid device {0:?}: use auto, cpu, cuda or cuda:N")]
    Invalid(String),
    #[error("device {requested} requested, but {reason}")]
    Unavailable { requested: String, reason: String },
}

impl FromStr for DeviceChoice {
    type Err = DeviceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| DeviceError::Invalid(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => write!(f, "auto"),
            Self::Cpu => write!(f, "cpu"),
            Self::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device, DeviceError> {
        match self {
            Self::Auto => Ok(Device::cuda_if_available()),
            Self::Cpu => Ok(Device::Cpu),
            Self::Cuda(n) => {
                let unavailable = |reason: String| DeviceError::Unavailable {
                    requested: self.to_string(),
                    reason,
                };
                if !Cuda::is_available() {
                    let why = if env!("MMSR_CUDA_LINKED") == "true" {
                        "CUDA is not available on this machine (no GPU or driver)"
                    } else {
                        "this binary was built without CUDA (build it with ci/build-cuda.sh)"
                    };
                    return Err(unavailable(why.to_string()));
                }
                let count = Cuda::device_count() as usize;
                if n >= count {
                    return Err(unavailable(format!(
                        "only {count} CUDA device(s) are visible"
                    )));
                }
                Ok(Device::Cuda(n))
            }
        }
    }
}

/// What kind of hardware computes a run: numbers differ between kinds in the last bits (BLAS
/// kernels differ between CPU families, models and instruction sets, and between GPU models), so
/// the kind is part of every run id and a stored result is only reused on the same kind. Older
/// results carry the CPU model name alone ("cpu: AMD EPYC"), which hosts with different last
/// bits can share; such runs are never reused or re-run (docs/determinism.md).
pub fn kind(device: Device) -> String {
    use probe::{cpu_kind, gpu_model};
    match device {
        Device::Cuda(n) => format!(
            "cuda: {}",
            gpu_model(n).unwrap_or_else(|| "unknown GPU".to_string())
        ),
        _ => format!(
            "{}: {}",
            label(device),
            cpu_kind().unwrap_or_else(|| "unknown CPU".to_string())
        ),
    }
}

pub fn label(device: Device) -> String {
    match device {
        Device::Cuda(n) => format!("cuda:{n}"),
        Device::Mps => "mps".to_string(),
        Device::Vulkan => "vulkan".to_string(),
        _ => "cpu".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("CPU".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!("gpu"
            .parse::<DeviceChoice>()
            .unwrap_err()
            .to_string()
            .contains("use auto, cpu, cuda or cuda:N"));
        assert!("cuda:x".parse::<DeviceChoice>().is_err());
    }

    #[test]
    fn cpu_always_resolves() {
        assert_eq!(DeviceChoice::Cpu.resolve(), Ok(Device::Cpu));
        if !Cuda::is_available() {
            assert_eq!(DeviceChoice::Auto.resolve(), Ok(Device::Cpu));
            assert!(DeviceChoice::Cuda(0).resolve().is_err());
        }
    }
}

//! Compute devices: `cpu` always; `cuda` only in builds with the `cuda` feature.

use candle_core::Device;

use crate::{Error, Result};

/// Parses `cpu`, `cuda` or `cuda:N` into a candle device.
pub fn parse(name: &str) -> Result<Device> {
    match name {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ord: usize = match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map_err(|_| Error::invalid("device", "cpu, cuda or cuda:N", s))?,
                None => 0,
            };
            cuda(s, ord)
        }
        other => Err(Error::invalid("device", "cpu, cuda or cuda:N", other)),
    }
}

#[cfg(feature = "cuda")]
fn cuda(requested: &str, ord: usize) -> Result<Device> {
    Device::new_cuda(ord).map_err(|e| Error::Device {
        requested: requested.into(),
        why: e.to_string(),
    })
}

#[cfg(not(feature = "cuda"))]
fn cuda(requested: &str, _ord: usize) -> Result<Device> {
    Err(Error::Device {
        requested: requested.into(),
        why: "this binary was built without the `cuda` feature (rebuild with `--features cuda`)".into(),
    })
}

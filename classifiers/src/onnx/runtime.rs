//! onnxruntime itself: finding `libonnxruntime.so`, the process-wide environment, and sessions
//! on the CPU or CUDA execution provider.
//!
//! The library is loaded at run time (`ort`'s `load-dynamic`), never downloaded: from the
//! stage's `ort_library` key, else `ORT_DYLIB_PATH`, else the load fails with a message saying
//! how to get it (the PyPI `onnxruntime` wheel ships it as `onnxruntime/capi/libonnxruntime.so.*`).
//! A process loads one library: the first path wins, later different paths are logged and ignored.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::{Error, Result};

/// Where inference runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// onnxruntime's CPU execution provider.
    #[default]
    Cpu,
    /// The CUDA execution provider (needs the `onnxruntime-gpu` build of the library and a GPU).
    Cuda,
}

/// How sessions are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// `libonnxruntime.so` (else `ORT_DYLIB_PATH`).
    pub library: Option<PathBuf>,
    pub device: Device,
    /// CUDA device ordinal.
    pub device_id: i32,
    /// Intra-op threads per session. curate runs one session per busy worker thread, so 1 is
    /// the default: parallelism comes from the batches, not from inside one matrix product.
    pub threads: usize,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            library: None,
            device: Device::Cpu,
            device_id: 0,
            threads: 1,
        }
    }
}

const HOW_TO_GET: &str = "set ORT_DYLIB_PATH (or the stage's ort_library) to libonnxruntime.so: \
     `pip install onnxruntime` ships it as onnxruntime/capi/libonnxruntime.so.<version>";

static ENV: OnceLock<std::result::Result<(PathBuf, Environment), String>> = OnceLock::new();

/// The library path this configuration asks for.
pub fn library_path(configured: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    match std::env::var_os("ORT_DYLIB_PATH") {
        Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
        _ => Err(Error::Run(format!(
            "no ONNX Runtime library configured: {HOW_TO_GET}"
        ))),
    }
}

/// The process-wide environment, loading the library on first use.
pub fn environment(configured: Option<&Path>) -> Result<Environment> {
    let wanted = library_path(configured)?;
    let got = ENV.get_or_init(|| {
        if !wanted.is_file() {
            return Err(format!(
                "ONNX Runtime library {} does not exist: {HOW_TO_GET}",
                wanted.display()
            ));
        }
        let builder = ort::init_from(&wanted)
            .map_err(|e| format!("cannot load ONNX Runtime: {e}; {HOW_TO_GET}"))?;
        let env = builder
            .with_name("curate")
            .with_telemetry(false)
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime from {}: {e}", wanted.display()))?;
        Ok((wanted.clone(), env))
    });
    match got {
        Ok((loaded, env)) => {
            if *loaded != wanted {
                tracing::warn!(
                    "ONNX Runtime already loaded from {}; ignoring {}",
                    loaded.display(),
                    wanted.display()
                );
            }
            Ok(env.clone())
        }
        Err(e) => Err(Error::Run(e.clone())),
    }
}

/// Whether the loaded library offers the CUDA execution provider.
pub fn cuda_available(opts: &RuntimeOptions) -> Result<bool> {
    use ort::ep::ExecutionProvider;
    environment(opts.library.as_deref())?;
    ort::ep::CUDA::is_available().map_err(|e| Error::Run(e.to_string()))
}

/// Checks that the device asked for can be used: `Err` says why not (CUDA on a CPU build).
pub fn check_device(opts: &RuntimeOptions) -> Result<()> {
    if opts.device == Device::Cuda && !cuda_available(opts)? {
        return Err(Error::Run(format!(
            "device = \"cuda\" was asked for, but the ONNX Runtime library at {} has no CUDA \
             execution provider (install the onnxruntime-gpu build and point ORT_DYLIB_PATH at \
             its libonnxruntime.so, with CUDA and cuDNN on the library path)",
            library_path(opts.library.as_deref())?.display()
        )));
    }
    Ok(())
}

/// A session of `model` with these options.
pub fn session(model: &Path, opts: &RuntimeOptions) -> Result<Session> {
    let env = environment(opts.library.as_deref())?;
    let run = |e: ort::Error<_>| Error::Run(format!("{}: {e}", model.display()));
    let mut b = Session::builder(&env)
        .map_err(run)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(|e| run(e.into()))?
        .with_intra_threads(opts.threads.max(1))
        .map_err(|e| run(e.into()))?
        .with_inter_threads(1)
        .map_err(|e| run(e.into()))?;
    if opts.threads <= 1 {
        // No thread pool to spin: a session per worker thread stays on its thread.
        b = b
            .with_config_entry("session.intra_op.allow_spinning", "0")
            .map_err(|e| run(e.into()))?;
    }
    if opts.device == Device::Cuda {
        check_device(opts)?;
        let cuda = ort::ep::CUDA::default()
            .with_device_id(opts.device_id)
            .build()
            .error_on_failure();
        b = b.with_execution_providers([cuda]).map_err(|e| {
            Error::Run(format!(
                "{}: CUDA execution provider failed to start on device {}: {e}",
                model.display(),
                opts.device_id
            ))
        })?;
    }
    b.commit_from_file(model)
        .map_err(|e| Error::Run(format!("{}: cannot load the graph: {e}", model.display())))
}

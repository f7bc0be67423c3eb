//! Finding the test binaries built by `testbins/build.sh`.

use std::path::{Path, PathBuf};

use super::{Error, Result};

/// The environment variable that points at a directory of prebuilt test binaries.
pub const TESTBIN_DIR_ENV: &str = "KLUTCH_TESTBIN_DIR";

/// The directory that holds the test binaries: `kube-apiserver`, `kube-controller-manager`,
/// `kubectl`, `etcd` and `dex`, and for [Crossplane](super::Crossplane) `crossplane-core`,
/// `function-patch-and-transform` and the `crossplane-crds/` directory.
///
/// [`Binaries::find`] looks at `$KLUTCH_TESTBIN_DIR` first, then for `target/testbin` (where
/// `testbins/build.sh` links its builds) in the current directory and its ancestors, then in
/// `$CARGO_MANIFEST_DIR` and its ancestors.
///
/// ```no_run
/// use klutch_sdk::testenv::Binaries;
///
/// let bins = Binaries::find()?;
/// println!("kubectl is {}", bins.kubectl()?.display());
/// # Ok::<(), klutch_sdk::testenv::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Locates the binary directory (see the type's documentation for the search order).
    pub fn find() -> Result<Self> {
        let mut searched = Vec::new();
        if let Some(dir) = std::env::var_os(TESTBIN_DIR_ENV) {
            let dir = PathBuf::from(dir);
            if dir.is_dir() {
                return Ok(Binaries { dir });
            }
            searched.push(format!("{TESTBIN_DIR_ENV}={}", dir.display()));
        }
        let starts = [
            std::env::current_dir().ok(),
            std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        ];
        let mut starts: Vec<PathBuf> = starts.into_iter().flatten().collect();
        starts.dedup();
        for start in starts {
            for dir in start.ancestors() {
                let candidate = dir.join("target").join("testbin");
                if candidate.join("kube-apiserver").exists() {
                    return Ok(Binaries { dir: candidate });
                }
            }
            searched.push(format!("target/testbin above {}", start.display()));
        }
        Err(Error::NoBinaryDir {
            searched: searched.join(", "),
        })
    }

    /// Uses the binaries in `dir`; each is checked when it is first needed.
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Binaries { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn get(&self, name: &'static str) -> Result<PathBuf> {
        let path = self.dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(Error::BinaryMissing {
                name,
                dir: self.dir.clone(),
            })
        }
    }

    /// `kube-apiserver`.
    pub fn kube_apiserver(&self) -> Result<PathBuf> {
        self.get("kube-apiserver")
    }

    /// `kube-controller-manager`.
    pub fn kube_controller_manager(&self) -> Result<PathBuf> {
        self.get("kube-controller-manager")
    }

    /// `kubectl`, built from the same Kubernetes version as the apiserver.
    pub fn kubectl(&self) -> Result<PathBuf> {
        self.get("kubectl")
    }

    /// `etcd`.
    pub fn etcd(&self) -> Result<PathBuf> {
        self.get("etcd")
    }

    /// `dex`.
    pub fn dex(&self) -> Result<PathBuf> {
        self.get("dex")
    }

    /// `crossplane-core`: Crossplane core v1.20 (`crossplane-core core start`).
    pub fn crossplane_core(&self) -> Result<PathBuf> {
        self.get("crossplane-core")
    }

    /// `function-patch-and-transform`, the composition function the configuration package uses.
    pub fn function_patch_and_transform(&self) -> Result<PathBuf> {
        self.get("function-patch-and-transform")
    }

    /// `crossplane-crds/`: Crossplane's core CRDs (`cluster/crds` of the same version as core).
    pub fn crossplane_crds(&self) -> Result<PathBuf> {
        let path = self.dir.join("crossplane-crds");
        if path.is_dir() {
            Ok(path)
        } else {
            Err(Error::BinaryMissing {
                name: "crossplane-crds",
                dir: self.dir.clone(),
            })
        }
    }

    /// `registry`: the Distribution v3 OCI registry (see [`Registry`](super::Registry)).
    pub fn registry(&self) -> Result<PathBuf> {
        self.get("registry")
    }

    /// `crane`: go-containerregistry's image tool (push, pull, append, mutate, export).
    pub fn crane(&self) -> Result<PathBuf> {
        self.get("crane")
    }
}

//! The buckets S3 data sources read: a local directory standing for a bucket,
//! or a real bucket on S3 or an S3-compatible store (through `object_store`).
//! Either way a sync sees a sorted list of keys and reads each key's bytes.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use basalt_gateway::config::{BucketConfig, S3Bucket};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::ObjectStore;

/// Largest object a sync reads (Bedrock's limit for one source file).
pub(crate) const MAX_OBJECT_BYTES: u64 = 50 * 1024 * 1024;

/// A configured bucket.
pub(crate) enum Bucket {
    Dir(PathBuf),
    S3 {
        store: Arc<dyn ObjectStore>,
        /// Shown in errors: the endpoint and the bucket's name there.
        display: String,
    },
}

impl std::fmt::Debug for Bucket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Dir(d) => write!(f, "directory {}", d.display()),
            Self::S3 { display, .. } => write!(f, "{display}"),
        }
    }
}

impl Bucket {
    /// Opens a bucket from its configuration; nothing is contacted yet.
    pub(crate) fn open(name: &str, config: &BucketConfig) -> Result<Self, String> {
        match config {
            BucketConfig::Dir(d) => Ok(Self::Dir(d.clone())),
            BucketConfig::S3(s3) => open_s3(name, s3),
        }
    }
}

fn open_s3(name: &str, s3: &S3Bucket) -> Result<Bucket, String> {
    let remote = s3.bucket.clone().unwrap_or_else(|| name.to_string());
    let mut b = AmazonS3Builder::from_env().with_bucket_name(&remote);
    if let Some(region) = &s3.region {
        b = b.with_region(region);
    }
    if let Some(endpoint) = &s3.endpoint {
        // S3-compatible stores are addressed by path (`endpoint/bucket/key`).
        b = b
            .with_endpoint(endpoint)
            .with_allow_http(endpoint.starts_with("http://"))
            .with_virtual_hosted_style_request(false);
    }
    if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
    }
    let store = b
        .build()
        .map_err(|e| format!("knowledge.buckets.{name}: {e}"))?;
    let display = format!(
        "s3://{remote} at {}",
        s3.endpoint.as_deref().unwrap_or("AWS")
    );
    Ok(Bucket::S3 {
        store: Arc::new(store),
        display,
    })
}

/// What a scan found: keys to read (sorted), and keys refused because they
/// resolve outside the bucket's root.
pub(crate) struct Listing {
    pub keys: Vec<String>,
    pub outside: Vec<String>,
    /// Keys over [`MAX_OBJECT_BYTES`], with their size.
    pub too_large: Vec<(String, u64)>,
    reader: Reader,
}

enum Reader {
    Dir(HashMap<String, PathBuf>),
    S3(Arc<dyn ObjectStore>),
}

impl Listing {
    /// The bytes of one listed key.
    pub(crate) async fn read(&self, key: &str) -> Result<Vec<u8>, String> {
        match &self.reader {
            Reader::Dir(paths) => {
                let path = paths.get(key).ok_or("not in the listing")?.clone();
                tokio::task::spawn_blocking(move || std::fs::read(path))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("cannot read: {e}"))
            }
            Reader::S3(store) => {
                // As listed: `Path::from` would percent-encode characters
                // such as `[` and name another object.
                let path = object_store::path::Path::parse(key)
                    .unwrap_or_else(|_| object_store::path::Path::from(key));
                let got = store
                    .get(&path)
                    .await
                    .map_err(|e| format!("cannot read: {e}"))?;
                got.bytes()
                    .await
                    .map(|b| b.to_vec())
                    .map_err(|e| format!("cannot read: {e}"))
            }
        }
    }
}

fn wanted(key: &str, prefixes: &[String]) -> bool {
    prefixes.is_empty() || prefixes.iter().any(|p| key.starts_with(p.as_str()))
}

/// The folder to list at an S3 endpoint for keys starting with `prefixes`
/// (a data source has at most one): the prefix's part before its last `/`;
/// `None` (the whole bucket) if it has no folder or there is no prefix.
fn list_folder(prefixes: &[String]) -> Option<&str> {
    let [p] = prefixes else { return None };
    let folder = &p[..p.rfind('/')?];
    (!folder.trim_matches('/').is_empty()).then_some(folder)
}

/// Lists the bucket's keys that start with one of `prefixes` (all when empty).
pub(crate) async fn list(bucket: &Bucket, prefixes: &[String]) -> Result<Listing, String> {
    match bucket {
        Bucket::Dir(dir) => {
            let (root, prefixes) = (dir.clone(), prefixes.to_vec());
            let scanned = tokio::task::spawn_blocking(move || scan(&root, &prefixes))
                .await
                .map_err(|e| e.to_string())?;
            let (files, outside) = scanned
                .map_err(|e| format!("Cannot read the bucket directory {}: {e}", dir.display()))?;
            let (files, too_large): (Vec<_>, Vec<_>) = files
                .into_iter()
                .partition(|(_, _, size)| *size <= MAX_OBJECT_BYTES);
            let keys = files.iter().map(|(k, _, _)| k.clone()).collect();
            Ok(Listing {
                keys,
                outside,
                too_large: too_large
                    .into_iter()
                    .map(|(k, _, size)| (k, size))
                    .collect(),
                reader: Reader::Dir(files.into_iter().map(|(k, p, _)| (k, p)).collect()),
            })
        }
        Bucket::S3 { store, display } => {
            // The endpoint lists only the folder the prefix is in, unencoded
            // as keys are listed (a folder that is no valid path, with an
            // empty segment, lists the whole bucket); the prefix itself (any
            // string) is applied below.
            let folder =
                list_folder(prefixes).and_then(|f| object_store::path::Path::parse(f).ok());
            let objects: Vec<object_store::ObjectMeta> = store
                .list(folder.as_ref())
                .try_collect()
                .await
                .map_err(|e| format!("Cannot list {display}: {e}"))?;
            let mut keys = Vec::new();
            let mut too_large = Vec::new();
            for o in objects {
                let key = o.location.to_string();
                if !wanted(&key, prefixes) {
                    continue;
                }
                if o.size > MAX_OBJECT_BYTES {
                    too_large.push((key, o.size));
                } else {
                    keys.push(key);
                }
            }
            keys.sort();
            Ok(Listing {
                keys,
                outside: Vec::new(),
                too_large,
                reader: Reader::S3(Arc::clone(store)),
            })
        }
    }
}

/// Files found by a directory scan (key, real path, size in bytes) and keys
/// that resolve outside the root.
type Scan = (Vec<(String, PathBuf, u64)>, Vec<String>);

/// Files under `root` whose relative key starts with one of `prefixes` (all
/// when empty), sorted. Entries resolving outside `root` (symlinks) are
/// returned separately, never read.
pub(crate) fn scan(root: &Path, prefixes: &[String]) -> std::io::Result<Scan> {
    let root = root.canonicalize()?;
    let mut files = Vec::new();
    let mut outside = Vec::new();
    let mut stack = vec![root.clone()];
    let mut seen = HashSet::new();
    while let Some(dir) = stack.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let key = path
                .strip_prefix(&root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_default();
            let Ok(real) = path.canonicalize() else {
                continue;
            };
            if !real.starts_with(&root) {
                outside.push(key);
                continue;
            }
            let Ok(meta) = real.metadata() else {
                continue;
            };
            if meta.is_dir() {
                stack.push(real);
            } else if wanted(&key, prefixes) {
                files.push((key, real, meta.len()));
            }
        }
    }
    files.sort();
    Ok((files, outside))
}

#[cfg(test)]
mod tests {
    use super::list_folder;

    #[test]
    fn an_s3_listing_covers_the_prefix_and_only_its_folder() {
        let folder = |prefixes: &[&str]| {
            let prefixes: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
            list_folder(&prefixes).map(str::to_owned)
        };
        assert_eq!(folder(&[]), None);
        assert_eq!(folder(&["reports"]), None);
        assert_eq!(folder(&["/"]), None);
        assert_eq!(folder(&["docs/"]).as_deref(), Some("docs"));
        assert_eq!(folder(&["docs/2024-"]).as_deref(), Some("docs"));
        assert_eq!(folder(&["a/b/c"]).as_deref(), Some("a/b"));
        // More than one (not accepted at creation): the whole bucket.
        assert_eq!(folder(&["docs/", "reports/"]), None);
    }
}

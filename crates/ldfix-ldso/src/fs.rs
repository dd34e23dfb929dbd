//! Filesystem access for the emulation.
//!
//! The loader's view of files goes through [`Fs`], so the same resolution runs on this machine
//! ([`RealFs`]), inside another root such as a container image or the test world ([`RootedFs`]),
//! or in memory in unit tests ([`MemFs`]). Paths handed to an `Fs` are always absolute paths *as
//! the loader sees them*; a rooted filesystem maps them below its root itself.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use ldfix_elf::read::{read_candidate, FileBytes};

/// Identity of a file: the loader treats two paths with the same (device, inode) as one object
/// (glibc `elf/dl-load.c`, `_dl_map_object_from_fd`; musl `ldso/dynlink.c`, `load_library`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    /// st_dev.
    pub dev: u64,
    /// st_ino.
    pub ino: u64,
}

/// What the emulation needs from a filesystem. Every method follows symlinks, as `open(2)` does.
pub trait Fs: Sync {
    /// The whole file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// An ELF file's bytes for parsing: the real filesystems map large files, so only the
    /// pages the read model touches are read (a tree holds many 100 MiB libraries).
    fn read_elf(&self, path: &Path) -> io::Result<FileBytes> {
        self.read(path).map(FileBytes::Owned)
    }
    /// At most `len` bytes from the start (the loader reads only the headers to verify a file).
    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>>;
    /// Device and inode of the file.
    fn file_id(&self, path: &Path) -> io::Result<FileId>;
    /// Whether the path is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// The path with every symlink resolved (what `/proc/self/exe` shows for a program).
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
}

/// The machine's own filesystem.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl Fs for RealFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn read_elf(&self, path: &Path) -> io::Result<FileBytes> {
        read_candidate(path).map(|c| c.bytes)
    }

    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        read_head_of(path, len)
    }

    fn file_id(&self, path: &Path) -> io::Result<FileId> {
        let meta = std::fs::metadata(path)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        std::fs::canonicalize(path)
    }
}

fn read_head_of(path: &Path, len: usize) -> io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut buf = Vec::with_capacity(len);
    file.take(len as u64).read_to_end(&mut buf)?;
    Ok(buf)
}

/// What a lookup of one path component finds, before following it.
enum Entry {
    Dir,
    File,
    Symlink(OsString),
}

/// Linux gives up after 40 symlinks in one lookup (`MAXSYMLINKS`, path_resolution(7)).
const MAX_SYMLINKS: usize = 40;

/// Resolves `path` component by component, following symlinks with `lookup`, the way the kernel
/// does inside a chroot: `..` at the root stays at the root and absolute link targets restart at
/// the root, so the result never leaves it. Returns the resolved components.
fn walk(
    path: &Path,
    lookup: &dyn Fn(&[OsString]) -> io::Result<Entry>,
) -> io::Result<(Vec<OsString>, bool)> {
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, path);
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    let mut is_dir = true;
    while let Some(part) = todo.pop() {
        if part == "." || part.is_empty() {
            continue;
        }
        if part == ".." {
            done.pop();
            is_dir = true;
            continue;
        }
        if !is_dir {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        done.push(part);
        match lookup(&done)? {
            Entry::Dir => is_dir = true,
            Entry::File => is_dir = false,
            Entry::Symlink(target) => {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                done.pop();
                if target.as_bytes().first() == Some(&b'/') {
                    done.clear();
                }
                push_components(&mut todo, Path::new(&target));
                is_dir = true;
            }
        }
    }
    Ok((done, is_dir))
}

/// Pushes the components of `path` so that popping yields them in order.
fn push_components(todo: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_owned()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    todo.extend(parts.into_iter().rev());
}

fn join_components(base: &Path, parts: &[OsString]) -> PathBuf {
    let mut path = base.to_path_buf();
    for part in parts {
        path.push(part);
    }
    path
}

/// A directory tree seen as `/`: a container image, a sysroot, the test world. Symlinks are
/// resolved here, absolute targets relative to the root, and no lookup ever leaves the root.
#[derive(Debug, Clone)]
pub struct RootedFs {
    root: PathBuf,
}

impl RootedFs {
    /// A view of `root` as `/`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory this filesystem is rooted at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `path` (a path as seen inside the root), with every symlink resolved.
    pub fn host_path(&self, path: &Path) -> io::Result<PathBuf> {
        let root = &self.root;
        let lookup = |parts: &[OsString]| -> io::Result<Entry> {
            let host = join_components(root, parts);
            let meta = std::fs::symlink_metadata(&host)?;
            if meta.file_type().is_symlink() {
                Ok(Entry::Symlink(std::fs::read_link(&host)?.into_os_string()))
            } else if meta.is_dir() {
                Ok(Entry::Dir)
            } else {
                Ok(Entry::File)
            }
        };
        let (parts, _) = walk(path, &lookup)?;
        Ok(join_components(root, &parts))
    }
}

impl Fs for RootedFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(self.host_path(path)?)
    }

    fn read_elf(&self, path: &Path) -> io::Result<FileBytes> {
        read_candidate(&self.host_path(path)?).map(|c| c.bytes)
    }

    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        read_head_of(&self.host_path(path)?, len)
    }

    fn file_id(&self, path: &Path) -> io::Result<FileId> {
        let meta = std::fs::metadata(self.host_path(path)?)?;
        Ok(FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.host_path(path).is_ok_and(|p| p.is_dir())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        let host = self.host_path(path)?;
        // host_path never leaves the root, so the prefix is always there.
        let inside = host.strip_prefix(&self.root).unwrap_or(&host);
        Ok(Path::new("/").join(inside))
    }
}

/// One node of a [`MemFs`].
#[derive(Debug, Clone)]
enum Node {
    Dir,
    File { data: Vec<u8>, ino: u64 },
    Symlink(OsString),
}

/// An in-memory filesystem for tests: files, directories and symlinks at absolute paths.
/// Parent directories are created implicitly.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    nodes: BTreeMap<PathBuf, Node>,
    next_ino: u64,
}

impl MemFs {
    /// An empty filesystem (only `/`).
    pub fn new() -> Self {
        let mut fs = Self::default();
        fs.nodes.insert(PathBuf::from("/"), Node::Dir);
        fs.next_ino = 1;
        fs
    }

    fn add_parents(&mut self, path: &Path) {
        let mut parent = path.parent();
        while let Some(dir) = parent {
            self.nodes.entry(dir.to_path_buf()).or_insert(Node::Dir);
            parent = dir.parent();
        }
    }

    /// Adds (or replaces) a file.
    pub fn add_file(&mut self, path: impl AsRef<Path>, data: impl Into<Vec<u8>>) -> &mut Self {
        let path = path.as_ref();
        self.add_parents(path);
        self.next_ino += 1;
        let node = Node::File {
            data: data.into(),
            ino: self.next_ino,
        };
        self.nodes.insert(path.to_path_buf(), node);
        self
    }

    /// Adds a symlink at `path` pointing to `target` (absolute or relative, as with `ln -s`).
    pub fn add_symlink(&mut self, path: impl AsRef<Path>, target: impl AsRef<OsStr>) -> &mut Self {
        let path = path.as_ref();
        self.add_parents(path);
        let node = Node::Symlink(target.as_ref().to_owned());
        self.nodes.insert(path.to_path_buf(), node);
        self
    }

    /// Adds a directory.
    pub fn add_dir(&mut self, path: impl AsRef<Path>) -> &mut Self {
        let path = path.as_ref();
        self.add_parents(path);
        self.nodes.insert(path.to_path_buf(), Node::Dir);
        self
    }

    fn resolve(&self, path: &Path) -> io::Result<(PathBuf, &Node)> {
        let lookup = |parts: &[OsString]| -> io::Result<Entry> {
            match self.nodes.get(&join_components(Path::new("/"), parts)) {
                None => Err(io::ErrorKind::NotFound.into()),
                Some(Node::Dir) => Ok(Entry::Dir),
                Some(Node::File { .. }) => Ok(Entry::File),
                Some(Node::Symlink(target)) => Ok(Entry::Symlink(target.clone())),
            }
        };
        let (parts, _) = walk(path, &lookup)?;
        let resolved = join_components(Path::new("/"), &parts);
        match self.nodes.get(&resolved) {
            Some(node) => Ok((resolved, node)),
            None => Err(io::ErrorKind::NotFound.into()),
        }
    }
}

impl Fs for MemFs {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.resolve(path)? {
            (_, Node::File { data, .. }) => Ok(data.clone()),
            _ => Err(io::Error::from_raw_os_error(libc::EISDIR)),
        }
    }

    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        let mut data = self.read(path)?;
        data.truncate(len);
        Ok(data)
    }

    fn file_id(&self, path: &Path) -> io::Result<FileId> {
        match self.resolve(path)? {
            (_, Node::File { ino, .. }) => Ok(FileId { dev: 1, ino: *ino }),
            (resolved, _) => Ok(FileId {
                dev: 1,
                ino: u64::MAX - resolved.as_os_str().len() as u64,
            }),
        }
    }

    fn is_dir(&self, path: &Path) -> bool {
        matches!(self.resolve(path), Ok((_, Node::Dir)))
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        Ok(self.resolve(path)?.0)
    }
}

/// A remembered answer: the value, or the error's kind and OS code.
type Remembered<T> = Result<T, (io::ErrorKind, Option<i32>)>;
type MemoMap<T> = std::collections::HashMap<PathBuf, Remembered<T>>;
type Memo<T> = std::sync::Mutex<MemoMap<T>>;

/// Remembers the answers of another filesystem: one resolution asks for the same headers, inodes
/// and directories over and over, and a directory of libraries repeats that per file. Files are
/// assumed not to change while a run lasts.
pub struct CachedFs<'a> {
    inner: &'a dyn Fs,
    heads: Memo<Vec<u8>>,
    ids: Memo<FileId>,
    dirs: Memo<bool>,
    canonical: Memo<PathBuf>,
}

/// Enough of the head of a file for the loader's header check.
const CACHED_HEAD: usize = 64;

fn remember<T: Clone>(
    memo: &Memo<T>,
    path: &Path,
    compute: impl FnOnce() -> io::Result<T>,
) -> io::Result<T> {
    fn lock<T>(m: &Memo<T>) -> std::sync::MutexGuard<'_, MemoMap<T>> {
        m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
    if let Some(found) = lock(memo).get(path) {
        return found
            .clone()
            .map_err(|(kind, raw)| raw.map_or_else(|| kind.into(), io::Error::from_raw_os_error));
    }
    let result = compute();
    let stored = match &result {
        Ok(value) => Ok(value.clone()),
        Err(e) => Err((e.kind(), e.raw_os_error())),
    };
    lock(memo).insert(path.to_owned(), stored);
    result
}

impl<'a> CachedFs<'a> {
    /// A caching view of `inner`.
    pub fn new(inner: &'a dyn Fs) -> Self {
        Self {
            inner,
            heads: Memo::default(),
            ids: Memo::default(),
            dirs: Memo::default(),
            canonical: Memo::default(),
        }
    }
}

impl Fs for CachedFs<'_> {
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn read_elf(&self, path: &Path) -> io::Result<FileBytes> {
        self.inner.read_elf(path)
    }

    fn read_head(&self, path: &Path, len: usize) -> io::Result<Vec<u8>> {
        if len > CACHED_HEAD {
            return self.inner.read_head(path, len);
        }
        let mut head = remember(&self.heads, path, || {
            self.inner.read_head(path, CACHED_HEAD)
        })?;
        head.truncate(len);
        Ok(head)
    }

    fn file_id(&self, path: &Path) -> io::Result<FileId> {
        remember(&self.ids, path, || self.inner.file_id(path))
    }

    fn is_dir(&self, path: &Path) -> bool {
        remember(&self.dirs, path, || Ok(self.inner.is_dir(path))).unwrap_or(false)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        remember(&self.canonical, path, || self.inner.canonicalize(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memfs_follows_relative_and_absolute_links() {
        let mut fs = MemFs::new();
        fs.add_file("/store/a/lib/libz.so.1.3", b"z".to_vec())
            .add_symlink("/store/a/lib/libz.so.1", "libz.so.1.3")
            .add_symlink("/profile/lib", "/store/a/lib")
            .add_symlink("/loop", "/loop");
        assert_eq!(
            fs.read(Path::new("/profile/lib/libz.so.1")).ok(),
            Some(b"z".to_vec())
        );
        assert_eq!(
            fs.canonicalize(Path::new("/profile/lib/../lib/libz.so.1"))
                .ok(),
            Some(PathBuf::from("/store/a/lib/libz.so.1.3"))
        );
        assert_eq!(
            fs.file_id(Path::new("/profile/lib/libz.so.1")).ok(),
            fs.file_id(Path::new("/store/a/lib/libz.so.1.3")).ok()
        );
        assert_eq!(
            fs.read(Path::new("/loop")).map_err(|e| e.raw_os_error()),
            Err(Some(libc::ELOOP))
        );
        assert!(fs.read(Path::new("/store/a/lib/libz.so.1.3/x")).is_err());
    }

    #[test]
    fn rooted_fs_never_escapes_its_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("lib")).expect("mkdir");
        std::fs::write(root.join("lib/libc.so.6"), b"inside").expect("write");
        std::fs::write(dir.path().join("outside"), b"outside").expect("write");
        std::os::unix::fs::symlink("/lib", root.join("lib64")).expect("symlink");
        std::os::unix::fs::symlink("../../../../../../outside", root.join("up")).expect("symlink");
        let fs = RootedFs::new(&root);
        assert_eq!(
            fs.read(Path::new("/lib64/libc.so.6")).ok(),
            Some(b"inside".to_vec())
        );
        assert_eq!(
            fs.canonicalize(Path::new("/lib64/libc.so.6")).ok(),
            Some(PathBuf::from("/lib/libc.so.6"))
        );
        // `..` stops at the root, so the link names /outside inside the root, which is absent.
        assert!(fs.read(Path::new("/up")).is_err());
        assert!(fs.read(Path::new("/../outside")).is_err());
    }
}

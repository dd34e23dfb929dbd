//! The store's registration database, read-only: which store paths are valid when no Nix CLI is
//! installed (a minimal container, a machine where only the store was copied in).

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::store::{StoreDir, StorePath};

/// Which of `paths` are registered as valid in the Nix database of `store`
/// (`<store>/../var/nix/db/db.sqlite`, table `ValidPaths`); `None` when the database cannot be
/// opened or read, so the caller can say that validity was not checked.
pub fn database_validity(store: &StoreDir, paths: &[StorePath]) -> Option<Vec<bool>> {
    let database = store.database()?;
    let valid = registered_paths(&database)?;
    Some(
        paths
            .iter()
            .map(|path| valid.contains(path.path().as_os_str().as_encoded_bytes()))
            .collect(),
    )
}

/// Every path in `ValidPaths`.
fn registered_paths(database: &Path) -> Option<HashSet<Vec<u8>>> {
    let connection = open_read_only(database)?;
    let mut statement = connection.prepare("SELECT path FROM ValidPaths").ok()?;
    let rows = statement
        .query_map([], |row| {
            row.get::<_, Vec<u8>>(0)
                .or_else(|_| row.get::<_, String>(0).map(String::into_bytes))
        })
        .ok()?;
    rows.collect::<Result<HashSet<_>, _>>().ok()
}

/// The direct references of a valid store path, from Nix's database (table `Refs`); `None` when
/// the database cannot be read. The same answer as `nix-store --query --references`.
pub fn database_references(store: &StoreDir, path: &StorePath) -> Option<Vec<StorePath>> {
    let connection = open_read_only(&store.database()?)?;
    let mut statement = connection
        .prepare(
            "SELECT target.path FROM ValidPaths AS source \
             JOIN Refs ON Refs.referrer = source.id \
             JOIN ValidPaths AS target ON target.id = Refs.reference \
             WHERE source.path = ?1",
        )
        .ok()?;
    let key = path.path().to_str()?;
    let rows = statement
        .query_map([key], |row| row.get::<_, String>(0))
        .ok()?;
    let mut references: Vec<StorePath> = rows
        .filter_map(Result::ok)
        .filter_map(|text| store.store_path_of(Path::new(&text)))
        .collect();
    references.sort();
    Some(references)
}

/// Opens the database read-only: ldfix never writes Nix's database.
fn open_read_only(database: &Path) -> Option<Connection> {
    if !database.is_file() {
        return None;
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(database, flags).ok()
}

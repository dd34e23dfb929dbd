//! The editor: computes the new bytes of an ELF file after patchelf-style edits.
//!
//! [`edit`] parses the file into an exact layout model, applies the requested operations to a
//! logical state in patchelf 0.19's order, lays the result out (in place when it fits, otherwise
//! in one appended LOAD segment that later edits reuse), re-reads the result and checks it, and
//! returns the new bytes, or `None` when nothing changes. It never writes files.

mod error;
mod layout;
mod model;
mod ops;
mod state;
mod verify;

pub use error::EditError;

/// What to do with the run path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RpathEdit {
    /// Replace it (`--set-rpath`).
    Set(Vec<u8>),
    /// Append, colon-separated (`--add-rpath`).
    Add(Vec<u8>),
    /// Drop DT_RPATH and DT_RUNPATH (`--remove-rpath`).
    Remove,
}

/// The edits to make to one file. Fields left at their default change nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edits {
    /// New EI_OSABI byte.
    pub os_abi: Option<u8>,
    /// New DT_SONAME (added when missing).
    pub soname: Option<Vec<u8>>,
    /// New PT_INTERP contents, without the NUL.
    pub interpreter: Option<Vec<u8>>,
    /// Make the stack executable (`true`) or not (`false`).
    pub execstack: Option<bool>,
    /// Run path change.
    pub rpath: Option<RpathEdit>,
    /// Write DT_RPATH instead of DT_RUNPATH.
    pub force_rpath: bool,
    /// DT_NEEDED entries to drop, with their version requirements.
    pub remove_needed: Vec<Vec<u8>>,
    /// DT_NEEDED entries to rename (old, new), with their version requirements.
    pub replace_needed: Vec<(Vec<u8>, Vec<u8>)>,
    /// DT_NEEDED entries to add (at the front, as patchelf does); present ones are skipped.
    pub add_needed: Vec<Vec<u8>>,
    /// Set DF_1_NODEFLIB.
    pub no_default_lib: bool,
    /// Alignment for a new segment, if larger than the architecture's largest page.
    pub page_size: Option<u64>,
}

/// Applies `edits` to the ELF file `data`. Returns the new file, or `None` when the file already
/// has every requested value (not a byte would change).
pub fn edit(data: &[u8], edits: &Edits) -> Result<Option<Vec<u8>>, EditError> {
    let model = model::Model::parse(data)?;
    let mut state = state::State::new(&model)?;
    ops::apply_all(&model, &mut state, edits)?;
    if !state.changed {
        return Ok(None);
    }
    let out = layout::build(&model, &mut state, edits.page_size)?;
    verify::check(data, &out, &state)?;
    if out == data {
        return Ok(None);
    }
    Ok(Some(out))
}

/// Whether `data` carries the segment ldfix appends when an edit does not fit in place.
pub fn has_ldfix_segment(data: &[u8]) -> bool {
    model::Model::parse(data).is_ok_and(|m| layout::find_ours(&m).is_some())
}

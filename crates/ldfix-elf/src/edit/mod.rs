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
/// has every requested value (not a byte would change). The result has passed [`Edited::check`].
pub fn edit(data: &[u8], edits: &Edits) -> Result<Option<Vec<u8>>, EditError> {
    let Some(planned) = plan(data, edits)? else {
        return Ok(None);
    };
    let out = planned.to_vec(data);
    planned.check(data, &out)?;
    Ok(Some(out))
}

/// Plans the edit without materializing the new file: for large files the caller writes the
/// [`Edited::pieces`] (copying unchanged ranges inside the kernel) and then must call
/// [`Edited::check`] on what it wrote before putting it in place. `None`: nothing changes.
pub fn plan(data: &[u8], edits: &Edits) -> Result<Option<Edited>, EditError> {
    let model = model::Model::parse(data)?;
    let mut state = state::State::new(&model)?;
    ops::apply_all(&model, &mut state, edits)?;
    if !state.changed {
        return Ok(None);
    }
    let image = layout::build(&model, &mut state, edits.page_size)?;
    let unchanged = image.seg.is_empty()
        && image.len() == data.len() as u64
        && image.patches.iter().all(|(at, bytes)| {
            usize::try_from(*at)
                .ok()
                .and_then(|a| data.get(a..a.checked_add(bytes.len())?))
                == Some(&bytes[..])
        });
    if unchanged {
        return Ok(None);
    }
    Ok(Some(Edited { image, state }))
}

/// An edit planned against the original bytes.
#[derive(Debug, Clone)]
pub struct Edited {
    image: layout::Image,
    state: state::State,
}

/// One piece of the edited file, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// `len` bytes of the original file from `offset`.
    Original {
        /// Offset in the original.
        offset: u64,
        /// Length.
        len: u64,
    },
    /// Zero bytes (alignment padding).
    Zeros(u64),
    /// New bytes.
    Bytes(&'a [u8]),
}

impl Edited {
    /// Length of the edited file.
    pub fn len(&self) -> u64 {
        self.image.len()
    }

    /// Whether the edited file is empty (never, for a valid edit).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The edited file as consecutive pieces. Write them in order, then the [`Edited::patches`].
    pub fn pieces(&self) -> Vec<Piece<'_>> {
        let i = &self.image;
        let mut out = vec![Piece::Original {
            offset: 0,
            len: i.prefix_end,
        }];
        if !i.seg.is_empty() {
            out.push(Piece::Zeros(i.seg_off.saturating_sub(i.prefix_end)));
            out.push(Piece::Bytes(&i.seg));
        }
        let tail = i.original_len.saturating_sub(i.tail_start);
        if tail > 0 {
            out.push(Piece::Original {
                offset: i.tail_start,
                len: tail,
            });
        }
        out
    }

    /// Small overwrites at absolute offsets of the edited file, to apply in order after the
    /// pieces.
    pub fn patches(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.image.patches.iter().map(|(at, b)| (*at, &b[..]))
    }

    /// The whole edited file in memory.
    pub fn to_vec(&self, original: &[u8]) -> Vec<u8> {
        self.image.to_vec(original)
    }

    /// Re-reads `written` (the edited file as it was written) and checks the loader's invariants
    /// and the requested values against it. An error means the file must not be used.
    pub fn check(&self, original: &[u8], written: &[u8]) -> Result<(), EditError> {
        if written.len() as u64 != self.len() {
            return Err(EditError::invariant(format!(
                "{} bytes were written, {} expected",
                written.len(),
                self.len()
            )));
        }
        verify::check(original, written, &self.state)
    }
}

/// Whether `data` carries the segment ldfix appends when an edit does not fit in place.
pub fn has_ldfix_segment(data: &[u8]) -> bool {
    model::Model::parse(data).is_ok_and(|m| layout::find_ours(&m).is_some())
}

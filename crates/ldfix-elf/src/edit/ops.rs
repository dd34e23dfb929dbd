//! The operations, applied to the logical [`State`] in patchelf 0.19's fixed order.

use object::elf;

use super::error::EditError;
use super::model::Model;
use super::state::State;
use super::{Edits, RpathEdit};

/// glibc's dynamic loader relocates itself before anything else runs and asserts that its own
/// dynamic table has neither DT_RPATH nor DT_RUNPATH, and no DT_FLAGS_1 flag but DF_1_NOW
/// (`elf/get-dynamic-info.h`, under RTLD_BOOTSTRAP): a run path or NODEFLIB written into it makes
/// every program that uses it abort at start ("Assertion `info[DT_RUNPATH] == NULL' failed").
/// (The loaders patchelf 0.14.3 and 0.19 write this way crash even earlier, with SIGSEGV.) The
/// loader is recognised by the symbol only it defines, `_rtld_global_ro` (libc and everything
/// else import it).
fn refuse_on_glibc_loader(model: &Model<'_>, state: &State) -> Result<(), EditError> {
    if defines_symbol(model, state, b"_rtld_global_ro") {
        return Err(EditError::unsupported(
            "glibc dynamic loader",
            "glibc's ld.so aborts at start when it has a DT_RPATH, a DT_RUNPATH or DF_1_NODEFLIB \
             (elf/get-dynamic-info.h); a loader never searches a run path of its own",
        ));
    }
    Ok(())
}

/// glibc's loader recognises the C library by its DT_SONAME being exactly `libc.so.6`
/// (`elf/dl-load.c`, `_dl_map_object_from_fd`, LIBC_SO) and only then calls its
/// `__libc_early_init`: renamed, glibc's libc.so.6 crashes every program that loads it (with
/// patchelf too). glibc's libc is recognised by defining `__libc_early_init` (glibc ≥ 2.32).
fn refuse_renaming_glibc(model: &Model<'_>, state: &State, soname: &[u8]) -> Result<(), EditError> {
    let current = state
        .entries
        .iter()
        .find(|(t, _)| *t == elf::DT_SONAME.0)
        .and_then(|(_, v)| state.string(*v));
    if current == Some(b"libc.so.6")
        && soname != b"libc.so.6"
        && defines_symbol(model, state, b"__libc_early_init")
    {
        return Err(EditError::unsupported(
            "glibc's C library",
            "glibc's loader finds libc by its DT_SONAME libc.so.6 (elf/dl-load.c) and must call \
             its __libc_early_init; under another name every program that uses it crashes",
        ));
    }
    Ok(())
}

/// Whether `.dynsym` defines `name` (st_shndx is not SHN_UNDEF). False when the symbols cannot
/// be counted or read.
fn defines_symbol(model: &Model<'_>, state: &State, name: &[u8]) -> bool {
    let c = model.codec;
    let (Some(count), Some(at)) = (
        state.dynsym_count,
        model
            .dyn_value(elf::DT_SYMTAB.0)
            .and_then(|a| model.vaddr_to_offset(a)),
    ) else {
        return false;
    };
    // Elf32_Sym: st_name, st_value, st_size, st_info, st_other, st_shndx (at 14);
    // Elf64_Sym: st_name, st_info, st_other, st_shndx (at 6), st_value, st_size.
    let (size, shndx_at) = if c.is64 { (24, 6) } else { (16, 14) };
    (0..count.min(model.data.len() as u64 / size)).any(|i| {
        let sym = at.saturating_add(i * size);
        let defined = c
            .read_u16(model.data, sym.saturating_add(shndx_at), ".dynsym entry")
            .is_ok_and(|shndx| shndx != elf::SHN_UNDEF.0);
        defined
            && c.read_u32(model.data, sym, ".dynsym entry")
                .is_ok_and(|n| state.string(u64::from(n)) == Some(name))
    })
}

pub(crate) fn apply_all(
    model: &Model<'_>,
    state: &mut State,
    edits: &Edits,
) -> Result<(), EditError> {
    // patchelf 0.19 `patchElf2`: os-abi, soname, interpreter, execstack, rpath, needed
    // (remove, replace, add), no-default-lib.
    if let Some(abi) = edits.os_abi {
        if abi != state.os_abi {
            state.os_abi = abi;
            state.changed = true;
        }
    }
    if let Some(soname) = &edits.soname {
        refuse_renaming_glibc(model, state, soname)?;
        set_string_entry(state, elf::DT_SONAME.0, soname)?;
    }
    if let Some(interp) = &edits.interpreter {
        set_interpreter(state, interp)?;
    }
    if let Some(exec) = edits.execstack {
        set_execstack(model, state, exec);
    }
    let static_pie = model.find_phdr(elf::PT_INTERP.0).is_none()
        && model.dyn_value(elf::DT_FLAGS_1.0).unwrap_or(0) & elf::DF_1_PIE.0 != 0;
    if static_pie
        && (matches!(edits.rpath, Some(RpathEdit::Set(_) | RpathEdit::Add(_)))
            || !edits.add_needed.is_empty())
    {
        // A static-pie relocates itself with no loader to read these, and glibc asserts that
        // it has neither DT_RPATH nor DT_RUNPATH (`elf/get-dynamic-info.h`, static-pie bootstrap).
        return Err(EditError::unsupported(
            "static-pie program",
            "it has no dynamic loader: a run path or a NEEDED library would never be used, and \
             glibc aborts a static-pie that has DT_RPATH or DT_RUNPATH",
        ));
    }
    if matches!(edits.rpath, Some(RpathEdit::Set(_) | RpathEdit::Add(_))) || edits.no_default_lib {
        refuse_on_glibc_loader(model, state)?;
    }
    if let Some(rpath) = &edits.rpath {
        set_rpath(state, rpath, edits.force_rpath)?;
    }
    if !edits.remove_needed.is_empty() {
        remove_needed(state, &edits.remove_needed)?;
    }
    for (old, new) in &edits.replace_needed {
        replace_needed(state, old, new)?;
    }
    if !edits.add_needed.is_empty() {
        add_needed(state, &edits.add_needed)?;
    }
    if edits.no_default_lib {
        let tag = elf::DT_FLAGS_1.0;
        let bit = elf::DF_1_NODEFLIB.0;
        require_dynamic(state, "DT_FLAGS_1")?;
        match state.entries.iter_mut().find(|(t, _)| *t == tag) {
            Some((_, v)) if *v & bit != 0 => {}
            Some((_, v)) => {
                *v |= bit;
                mark_dynamic(state);
            }
            None => {
                state.entries.insert(0, (tag, bit));
                mark_dynamic(state);
            }
        }
    }
    Ok(())
}

fn mark_dynamic(state: &mut State) {
    state.changed = true;
    state.dynamic_changed = true;
}

fn require_dynamic(state: &State, what: &'static str) -> Result<(), EditError> {
    if state.dynstr.is_none() {
        return Err(EditError::unsupported(
            what,
            "the file has no dynamic section with a string table (statically linked?)",
        ));
    }
    Ok(())
}

/// Sets the string of the first entry with `tag`, adding the entry at the front if missing.
fn set_string_entry(state: &mut State, tag: i64, value: &[u8]) -> Result<(), EditError> {
    require_dynamic(state, "dynamic string entry")?;
    match state.entries.iter().position(|(t, _)| *t == tag) {
        Some(i) => {
            let old = state.entries.get(i).map_or(0, |e| e.1);
            if state.string(old) == Some(value) {
                return Ok(());
            }
            let pos = state.place_string(value, Some(old), &[i], &[])?;
            if let Some(e) = state.entries.get_mut(i) {
                e.1 = pos;
            }
        }
        None => {
            let pos = state.place_string(value, None, &[], &[])?;
            state.entries.insert(0, (tag, pos));
        }
    }
    mark_dynamic(state);
    Ok(())
}

fn set_interpreter(state: &mut State, interp: &[u8]) -> Result<(), EditError> {
    let Some(current) = &state.interp else {
        return Err(EditError::unsupported(
            "interpreter",
            "the file has no PT_INTERP (a static executable or a library); adding one is not supported",
        ));
    };
    if interp.contains(&0) {
        return Err(EditError::unsupported(
            "interpreter",
            "the path contains a NUL byte",
        ));
    }
    if current.strip_suffix(&[0]) == Some(interp) {
        return Ok(());
    }
    let mut v = interp.to_vec();
    v.push(0);
    state.interp = Some(v);
    state.interp_changed = true;
    state.changed = true;
    Ok(())
}

fn set_execstack(model: &Model<'_>, state: &mut State, exec: bool) {
    let flags = match model.find_phdr(elf::PT_GNU_STACK.0) {
        Some(p) => p.flags,
        None => {
            state.add_gnu_stack = true;
            // A missing PT_GNU_STACK means an executable stack on most architectures.
            elf::PF_R.0 | elf::PF_W.0 | elf::PF_X.0
        }
    };
    let new = if exec {
        flags | elf::PF_X.0
    } else {
        flags & !elf::PF_X.0
    };
    if new != flags || state.add_gnu_stack {
        state.gnu_stack_flags = Some(new);
        state.changed = true;
    }
}

fn current_rpath(state: &State) -> Option<(usize, u64)> {
    let runpath = elf::DT_RUNPATH.0;
    let rpath = elf::DT_RPATH.0;
    let pick = |tag| state.entries.iter().position(|(t, _)| *t == tag);
    pick(runpath)
        .or_else(|| pick(rpath))
        .and_then(|i| state.entries.get(i).map(|e| (i, e.1)))
}

fn set_rpath(state: &mut State, edit: &RpathEdit, force: bool) -> Result<(), EditError> {
    let rpath_tag = elf::DT_RPATH.0;
    let runpath_tag = elf::DT_RUNPATH.0;
    let current = current_rpath(state);
    let old_value: Option<Vec<u8>> =
        current.and_then(|(_, off)| state.string(off).map(<[u8]>::to_vec));
    let new_value = match edit {
        RpathEdit::Remove => {
            let before = state.entries.len();
            let removed: Vec<u64> = state
                .entries
                .iter()
                .filter(|(t, _)| *t == rpath_tag || *t == runpath_tag)
                .map(|e| e.1)
                .collect();
            state
                .entries
                .retain(|(t, _)| *t != rpath_tag && *t != runpath_tag);
            if state.entries.len() != before {
                for off in removed {
                    state.scrub_string(off);
                }
                mark_dynamic(state);
            }
            return Ok(());
        }
        RpathEdit::Set(v) => v.clone(),
        RpathEdit::Add(v) => match &old_value {
            Some(old) if !old.is_empty() => {
                let mut joined = old.clone();
                joined.push(b':');
                joined.extend_from_slice(v);
                joined
            }
            _ => v.clone(),
        },
    };
    require_dynamic(state, "run path")?;
    let want_tag = if force { rpath_tag } else { runpath_tag };
    // patchelf: an unchanged value changes nothing, not even the tag.
    if current.is_some() && old_value.as_deref() == Some(&new_value[..]) {
        return Ok(());
    }
    // Every RPATH/RUNPATH entry is replaced by one entry of the wanted tag.
    let indices: Vec<usize> = state
        .entries
        .iter()
        .enumerate()
        .filter(|(_, (t, _))| *t == rpath_tag || *t == runpath_tag)
        .map(|(i, _)| i)
        .collect();
    let old_off = current.map(|(_, off)| off);
    let pos = state.place_string(&new_value, old_off, &indices, &[])?;
    match indices.first() {
        Some(&first) => {
            if let Some(e) = state.entries.get_mut(first) {
                *e = (want_tag, pos);
            }
            let mut k = 0;
            state.entries.retain(|_| {
                let keep = k == first || !indices.contains(&k);
                k += 1;
                keep
            });
        }
        None => state.entries.insert(0, (want_tag, pos)),
    }
    if let Some(off) = old_off {
        if off != pos {
            state.scrub_string(off);
        }
    }
    mark_dynamic(state);
    Ok(())
}

fn needed_indices(state: &State, name: &[u8]) -> Vec<usize> {
    let tag = elf::DT_NEEDED.0;
    state
        .entries
        .iter()
        .enumerate()
        .filter(|(_, (t, v))| *t == tag && state.string(*v) == Some(name))
        .map(|(i, _)| i)
        .collect()
}

fn remove_needed(state: &mut State, names: &[Vec<u8>]) -> Result<(), EditError> {
    let mut drop = Vec::new();
    for name in names {
        drop.extend(needed_indices(state, name));
    }
    if drop.is_empty() {
        return Ok(());
    }
    let mut k = 0;
    state.entries.retain(|_| {
        let keep = !drop.contains(&k);
        k += 1;
        keep
    });
    mark_dynamic(state);
    // Drop the version requirements on the removed libraries too: ld.so asserts that every
    // vn_file is loaded (`elf/dl-version.c`, `_dl_check_map_versions`: "needed != NULL").
    let mut removed_versions = Vec::new();
    let strings: Vec<Option<Vec<u8>>> = state
        .verneeds
        .iter()
        .map(|v| state.string(u64::from(v.file)).map(<[u8]>::to_vec))
        .collect();
    for (v, file) in state.verneeds.iter_mut().zip(strings) {
        if !v.removed && file.is_some_and(|f| names.contains(&f)) {
            v.removed = true;
            removed_versions.extend(v.aux.iter().map(|a| a.1 & 0x7fff));
            state.verneed_changed = true;
        }
    }
    if removed_versions.is_empty() {
        return Ok(());
    }
    // Symbols that were bound to those versions become unversioned (VER_NDX_GLOBAL), so that no
    // .gnu.version entry points past the loader's version array.
    if state.dynsym_count.is_none() {
        return Err(EditError::unsupported(
            "symbol versions",
            "cannot count the dynamic symbols to drop the removed library's versions",
        ));
    }
    state.removed_versions.extend(removed_versions);
    if state.verneeds.iter().all(|v| v.removed) {
        let tags = [elf::DT_VERNEED.0, elf::DT_VERNEEDNUM.0];
        state.entries.retain(|(t, _)| !tags.contains(t));
        // Without any version requirement or definition, glibc leaves `l_versions` NULL but
        // still indexes it for every symbol when DT_VERSYM is present (`elf/do-rel.h`).
        let verdef = elf::DT_VERDEF.0;
        if !state.entries.iter().any(|(t, _)| *t == verdef) {
            let versym = elf::DT_VERSYM.0;
            state.entries.retain(|(t, _)| *t != versym);
        }
    }
    Ok(())
}

fn replace_needed(state: &mut State, old: &[u8], new: &[u8]) -> Result<(), EditError> {
    let idx = needed_indices(state, old);
    if idx.is_empty() || old == new {
        return Ok(());
    }
    let vidx: Vec<usize> = state
        .verneeds
        .iter()
        .enumerate()
        .filter(|(_, v)| !v.removed && state.string(u64::from(v.file)) == Some(old))
        .map(|(i, _)| i)
        .collect();
    let old_off = idx.first().and_then(|&i| state.entries.get(i)).map(|e| e.1);
    let pos = state.place_string(new, old_off, &idx, &vidx)?;
    for &i in &idx {
        if let Some(e) = state.entries.get_mut(i) {
            e.1 = pos;
        }
    }
    let pos32 = u32::try_from(pos)
        .map_err(|_| EditError::unsupported(".gnu.version_r", "string offset above 4 GiB"))?;
    for &i in &vidx {
        if let Some(v) = state.verneeds.get_mut(i) {
            v.file = pos32;
            state.verneed_changed = true;
        }
    }
    mark_dynamic(state);
    Ok(())
}

fn add_needed(state: &mut State, names: &[Vec<u8>]) -> Result<(), EditError> {
    require_dynamic(state, "DT_NEEDED")?;
    let mut added = Vec::new();
    for name in names {
        if !needed_indices(state, name).is_empty()
            || added.iter().any(|(_, n): &(u64, &Vec<u8>)| *n == name)
        {
            continue;
        }
        let pos = state.place_string(name, None, &[], &[])?;
        added.push((pos, name));
    }
    if added.is_empty() {
        return Ok(());
    }
    // patchelf puts the new entries first.
    let tag = elf::DT_NEEDED.0;
    for (k, (pos, _)) in added.into_iter().enumerate() {
        state.entries.insert(k, (tag, pos));
    }
    mark_dynamic(state);
    Ok(())
}

//! Dynamic string tokens (`$ORIGIN`, `$LIB`, `$PLATFORM`, `${...}`) and search-path splitting.

/// What glibc substitutes for the tokens of one object.
#[derive(Debug, Clone, Copy)]
pub struct DstValues<'a> {
    /// `l_origin`: the object's directory; `None` when unknown (the path is then dropped).
    pub origin: Option<&'a [u8]>,
    /// `DL_DST_LIB`, compiled into the loader.
    pub lib: &'a [u8],
    /// `GLRO(dl_platform)` (AT_PLATFORM); `None` drops paths that use it.
    pub platform: Option<&'a [u8]>,
    /// AT_SECURE (setuid, setgid, file capabilities).
    pub secure: bool,
    /// Whether the object is the main program (secure-mode `$ORIGIN` must stay in trusted dirs).
    pub is_executable: bool,
    /// The loader's system directories (`system_dirs`), each ending in `/`.
    pub trusted: &'a [Vec<u8>],
}

/// `is_dst` from glibc `elf/dl-load.c`: the length of the token `name` at `input` (just after
/// `$`), counting braces, or 0 when `input` does not start with exactly that token.
fn is_dst(input: &[u8], name: &[u8]) -> usize {
    let (curly, rest) = match input.strip_prefix(b"{") {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let Some(after) = rest.strip_prefix(name) else {
        return 0;
    };
    let next = after.first().copied();
    if curly && next != Some(b'}') {
        return 0;
    }
    if !curly && next.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_') {
        return 0;
    }
    name.len() + if curly { 2 } else { 0 }
}

/// `_dl_dst_substitute` from glibc `elf/dl-load.c` for one path (no `:` splitting). Returns
/// `None` when the path must be dropped: a known token without a value, `$ORIGIN` not first in
/// secure mode, or in secure mode an executable's `$ORIGIN` path outside the trusted directories.
pub fn glibc_substitute(input: &[u8], v: &DstValues<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len() + 32);
    let mut i = 0;
    let mut check_trusted = false;
    while i < input.len() {
        let Some(&c) = input.get(i) else { break };
        if c != b'$' {
            out.push(c);
            i += 1;
            continue;
        }
        let rest = input.get(i + 1..).unwrap_or_default();
        let (len, value) = if let Some(len) = Some(is_dst(rest, b"ORIGIN")).filter(|&l| l > 0) {
            let first_and_whole = i == 0 && matches!(input.get(1 + len), None | Some(b'/'));
            check_trusted = v.secure && v.is_executable;
            if v.secure && !first_and_whole {
                (len, None)
            } else {
                (len, v.origin)
            }
        } else if let Some(len) = Some(is_dst(rest, b"PLATFORM")).filter(|&l| l > 0) {
            (len, v.platform)
        } else if let Some(len) = Some(is_dst(rest, b"LIB")).filter(|&l| l > 0) {
            (len, Some(v.lib))
        } else {
            // Not a token we know: the `$` stays.
            out.push(b'$');
            i += 1;
            continue;
        };
        out.extend_from_slice(value?);
        i += 1 + len;
    }
    if check_trusted && !is_trusted_path_normalize(&out, v.trusted) {
        return None;
    }
    Some(out)
}

/// `is_trusted_path_normalize`: removes `.`, `..` and repeated slashes, then checks that the
/// path starts with one of the trusted (system) directories.
fn is_trusted_path_normalize(path: &[u8], trusted: &[Vec<u8>]) -> bool {
    if path.is_empty() {
        return false;
    }
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let mut normal = Vec::new();
    for part in parts {
        normal.push(b'/');
        normal.extend_from_slice(part);
    }
    normal.push(b'/');
    trusted.iter().any(|dir| normal.starts_with(dir))
}

/// musl `fixup_rpath` (`ldso/dynlink.c`): only `$ORIGIN` and `${ORIGIN}` are known (compared as
/// prefixes, so `$ORIGINX` is `$ORIGIN` + `X`); any other `$` disables the whole run path.
/// `origin` is `None` when musl refuses it (main program in secure mode, or a relative origin
/// in secure mode).
pub fn musl_substitute(input: &[u8], origin: Option<&[u8]>) -> Option<Vec<u8>> {
    if !input.contains(&b'$') {
        return Some(input.to_vec());
    }
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = input
        .get(i..)
        .and_then(|r| r.iter().position(|&b| b == b'$'))
    {
        let at = i + pos;
        let rest = input.get(at..).unwrap_or_default();
        let skip = if rest.starts_with(b"${ORIGIN}") {
            9
        } else if rest.starts_with(b"$ORIGIN") {
            7
        } else {
            return None;
        };
        out.extend_from_slice(input.get(i..at).unwrap_or_default());
        out.extend_from_slice(origin?);
        i = at + skip;
    }
    out.extend_from_slice(input.get(i..).unwrap_or_default());
    Some(out)
}

/// One directory of a search list, as glibc's `fillin_rpath` stores it: expanded, trailing
/// slashes folded into exactly one, `""` for the current directory.
pub type SearchDir = Vec<u8>;

/// `fillin_rpath`: splits on any of `seps`, expands tokens, drops paths that expand to nothing,
/// normalises the trailing slash and removes duplicates within the list.
pub fn glibc_search_list(list: &[u8], seps: &[u8], v: &DstValues<'_>) -> Vec<SearchDir> {
    let mut dirs: Vec<SearchDir> = Vec::new();
    for element in list.split(|b| seps.contains(b)) {
        let mut dir = if element.is_empty() {
            Vec::new()
        } else {
            match glibc_substitute(element, v) {
                Some(d) if !d.is_empty() => d,
                _ => continue,
            }
        };
        if !dir.is_empty() {
            while dir.len() > 1 && dir.last() == Some(&b'/') {
                dir.pop();
            }
            if dir.last() != Some(&b'/') {
                dir.push(b'/');
            }
        }
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    dirs
}

/// musl `path_open`'s view of a list: `:` and newline separate, empty elements are skipped.
pub fn musl_search_list(list: &[u8]) -> Vec<SearchDir> {
    list.split(|&b| b == b':' || b == b'\n')
        .filter(|e| !e.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(secure: bool) -> DstValues<'static> {
        DstValues {
            origin: Some(b"/opt/app/bin"),
            lib: b"lib/x86_64-linux-gnu",
            platform: Some(b"x86_64"),
            secure,
            is_executable: true,
            trusted: &[],
        }
    }

    #[test]
    fn glibc_tokens() {
        let v = values(false);
        let sub = |s: &[u8]| glibc_substitute(s, &v);
        assert_eq!(
            sub(b"$ORIGIN/../lib").as_deref(),
            Some(&b"/opt/app/bin/../lib"[..])
        );
        assert_eq!(sub(b"${ORIGIN}/x").as_deref(), Some(&b"/opt/app/bin/x"[..]));
        assert_eq!(
            sub(b"/usr/$LIB/$PLATFORM").as_deref(),
            Some(&b"/usr/lib/x86_64-linux-gnu/x86_64"[..])
        );
        assert_eq!(sub(b"/a/$ORIGINAL").as_deref(), Some(&b"/a/$ORIGINAL"[..]));
        assert_eq!(sub(b"/a/${ORIGIN").as_deref(), Some(&b"/a/${ORIGIN"[..]));
        assert_eq!(sub(b"/a/$HOME/b").as_deref(), Some(&b"/a/$HOME/b"[..]));
        let no_platform = DstValues {
            platform: None,
            ..v
        };
        assert_eq!(glibc_substitute(b"/x/$PLATFORM", &no_platform), None);
    }

    #[test]
    fn glibc_secure_origin() {
        let trusted = [b"/usr/lib/".to_vec()];
        let v = DstValues {
            origin: Some(b"/usr/lib/app"),
            trusted: &trusted,
            ..values(true)
        };
        assert_eq!(
            glibc_substitute(b"$ORIGIN/../x", &v).as_deref(),
            Some(&b"/usr/lib/app/../x"[..])
        );
        assert_eq!(glibc_substitute(b"/x/$ORIGIN", &v), None);
        assert_eq!(glibc_substitute(b"$ORIGIN/../../../tmp", &v), None);
        let v = DstValues {
            origin: Some(b"/home/u"),
            ..v
        };
        assert_eq!(glibc_substitute(b"$ORIGIN", &v), None);
    }

    #[test]
    fn glibc_lists() {
        let v = values(false);
        let list = glibc_search_list(b"/a//:$ORIGIN::/a:/:/x/$PLATFORM", b":", &v);
        let want: Vec<&[u8]> = vec![b"/a/", b"/opt/app/bin/", b"", b"/", b"/x/x86_64/"];
        assert_eq!(list, want);
        assert_eq!(glibc_search_list(b"/a;/b", b":;", &v).len(), 2);
    }

    #[test]
    fn musl_tokens() {
        assert_eq!(
            musl_substitute(b"$ORIGIN/../lib:${ORIGIN}", Some(b"/o")).as_deref(),
            Some(&b"/o/../lib:/o"[..])
        );
        assert_eq!(
            musl_substitute(b"$ORIGINX", Some(b"/o")).as_deref(),
            Some(&b"/oX"[..])
        );
        assert_eq!(musl_substitute(b"$LIB", Some(b"/o")), None);
        assert_eq!(musl_substitute(b"$ORIGIN", None), None);
        assert_eq!(
            musl_search_list(b"/a::/b\n/c\n"),
            vec![b"/a".to_vec(), b"/b".to_vec(), b"/c".to_vec()]
        );
    }
}

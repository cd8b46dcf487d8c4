//! A child's environment: pidvisor's own, with the few variables its spawn adds.
//!
//! pidvisor's environment is read once into [`Inherited`], as the sorted `KEY=VALUE`
//! strings a child gets. A spawn that adds variables (a service's `PIDVISOR_SERVICE`, its
//! `env` table, its user's `HOME`) then makes strings for those alone and a list of
//! pointers, where it used to copy every inherited variable anew: with a hundred
//! services, that copy was most of what a start allocated.

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::rc::Rc;

/// pidvisor's environment as it was read: sorted by name, one string per name (the last
/// one, where the environment named a variable twice). Shared with each child being
/// started, which reads it until its `exec` (see `fork`).
pub struct Inherited {
    vars: Rc<[Variable]>,
}

/// A `KEY=VALUE` string and the length of its `KEY`.
pub(super) struct Variable {
    string: CString,
    name_len: usize,
}

impl Variable {
    fn new(key: &OsStr, value: &OsStr) -> Option<Variable> {
        Some(Variable {
            string: entry(key, value)?,
            name_len: key.len(),
        })
    }

    fn name(&self) -> &[u8] {
        &self.string.as_bytes()[..self.name_len]
    }
}

impl Inherited {
    /// Reads pidvisor's environment now. Whoever keeps the result must not change the
    /// environment afterwards: the children would not see the change.
    pub fn capture() -> Inherited {
        let vars: BTreeMap<OsString, OsString> = std::env::vars_os().collect();
        Inherited {
            vars: vars
                .iter()
                .filter_map(|(key, value)| Variable::new(key, value))
                .collect(),
        }
    }
}

/// The environment of one child: null-terminated pointers into `inherited`'s strings and
/// into `added`'s, which are kept with them so that the pointers stay valid (moving a
/// `CString` leaves its bytes where they are).
pub(super) struct ChildEnvironment {
    pub added: Vec<Variable>,
    pub pointers: Vec<*const libc::c_char>,
    pub inherited: Rc<[Variable]>,
}

/// `inherited` with `added` added or replacing what it had, sorted by name; where `added`
/// names a variable twice, the later value wins. `None`: a name or value holds a NUL.
/// Both lists are merged in order: the inherited one is sorted already, and the added
/// one is short.
pub(super) fn with_added(
    inherited: &Inherited,
    added: &[(&OsStr, &OsStr)],
) -> Option<ChildEnvironment> {
    let mut own: Vec<Variable> = Vec::with_capacity(added.len());
    for (key, value) in added.iter().rev() {
        if !own.iter().any(|var| var.name() == key.as_bytes()) {
            own.push(Variable::new(key, value)?);
        }
    }
    own.sort_unstable_by(|a, b| a.name().cmp(b.name()));
    let mut pointers = Vec::with_capacity(inherited.vars.len() + own.len() + 1);
    let mut mine = own.iter().peekable();
    for var in inherited.vars.iter() {
        while let Some(next) = mine.next_if(|next| next.name() < var.name()) {
            pointers.push(next.string.as_ptr());
        }
        match mine.next_if(|next| next.name() == var.name()) {
            Some(replacement) => pointers.push(replacement.string.as_ptr()),
            None => pointers.push(var.string.as_ptr()),
        }
    }
    pointers.extend(mine.map(|var| var.string.as_ptr()));
    pointers.push(std::ptr::null());
    Some(ChildEnvironment {
        added: own,
        pointers,
        inherited: Rc::clone(&inherited.vars),
    })
}

/// A copy of the C library's `environ` pointers, null-terminated: a child that keeps
/// pidvisor's environment gets this, so that nothing pidvisor changes later (it removes
/// `NOTIFY_SOCKET` during set-up) moves what the child is reading.
pub(super) fn current() -> Vec<*const libc::c_char> {
    unsafe extern "C" {
        static environ: *const *const libc::c_char;
    }
    let mut pointers = Vec::new();
    // SAFETY: `environ` is the C library's null-terminated array, read (not changed) here
    // by pidvisor's only thread.
    unsafe {
        let mut cursor = environ;
        while !cursor.is_null() && !(*cursor).is_null() {
            pointers.push(*cursor);
            cursor = cursor.add(1);
        }
    }
    pointers.push(std::ptr::null());
    pointers
}

/// `KEY=VALUE`, or `None` if either holds a NUL.
fn entry(key: &OsStr, value: &OsStr) -> Option<CString> {
    let mut pair = key.to_owned().into_vec();
    pair.reserve_exact(value.len() + 2);
    pair.push(b'=');
    pair.extend_from_slice(value.as_bytes());
    CString::new(pair).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn strings(env: &ChildEnvironment) -> Vec<String> {
        let (last, vars) = env
            .pointers
            .split_last()
            .expect("a null pointer at the end");
        assert!(last.is_null());
        vars.iter()
            // SAFETY: each pointer is a string of `env` or of the `Inherited` it borrows.
            .map(|&p| unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
            .collect()
    }

    fn inherited(vars: &[&str]) -> Inherited {
        Inherited {
            vars: vars
                .iter()
                .map(|v| {
                    let (key, value) = v.split_once('=').expect("KEY=VALUE");
                    Variable::new(OsStr::new(key), OsStr::new(value)).expect("no NUL")
                })
                .collect(),
        }
    }

    #[test]
    fn added_variables_replace_inherited_ones_and_all_stay_sorted_by_name() {
        let base = inherited(&["A=1", "HOME=/root", "PATH=/bin", "Z=26"]);
        let added = [
            (OsStr::new("PIDVISOR_SERVICE"), OsStr::new("web")),
            (OsStr::new("HOME"), OsStr::new("/home/web")),
            (OsStr::new("B"), OsStr::new("x=y")),
        ];
        let env = with_added(&base, &added).expect("no NUL");
        assert_eq!(
            strings(&env),
            [
                "A=1",
                "B=x=y",
                "HOME=/home/web",
                "PATH=/bin",
                "PIDVISOR_SERVICE=web",
                "Z=26"
            ]
        );
    }

    #[test]
    fn the_later_of_two_added_values_wins() {
        let base = inherited(&["USER=root"]);
        let added = [
            (OsStr::new("USER"), OsStr::new("from-the-env-table")),
            (OsStr::new("USER"), OsStr::new("web")),
        ];
        let env = with_added(&base, &added).expect("no NUL");
        assert_eq!(strings(&env), ["USER=web"]);
    }

    #[test]
    fn a_nul_in_an_added_value_is_refused() {
        let base = inherited(&[]);
        let added = [(OsStr::new("K"), OsStr::from_bytes(b"a\0b"))];
        assert!(with_added(&base, &added).is_none());
    }

    #[test]
    fn a_name_that_is_a_prefix_of_another_is_a_different_name() {
        let base = inherited(&["PATH=/bin", "PATHS=x"]);
        let added = [(OsStr::new("PATH"), OsStr::new("/usr/bin"))];
        let env = with_added(&base, &added).expect("no NUL");
        assert_eq!(strings(&env), ["PATH=/usr/bin", "PATHS=x"]);
    }
}

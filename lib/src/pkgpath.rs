//! pkgpaths (pkgpath(7)): `dir[,flavor...][,-subpackage]`.
//!
//! The canonical form is the directory, then the flavors sorted, then the
//! subpackage, as sqlports and dpb write it.  `dir,` (the explicitly empty flavor)
//! is kept apart from `dir` (the default flavor).

use std::fmt;
use std::str::FromStr;

/// A parsed pkgpath.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PkgPath {
    dir: String,
    /// `None`: default flavor; `Some(empty)`: the explicitly empty flavor.
    flavors: Option<Vec<String>>,
    /// Without the leading `-`.
    subpackage: Option<String>,
}

/// Why a string is not a pkgpath.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkgPathError {
    #[error("empty pkgpath")]
    Empty,
    #[error("invalid pkgpath {0:?}: absolute path")]
    Absolute(String),
    #[error("invalid pkgpath {0:?}: empty path segment")]
    EmptySegment(String),
    #[error("invalid pkgpath {0:?}: \".\" or \"..\" segment")]
    DotSegment(String),
    #[error("invalid pkgpath {0:?}: segment starts with \"-\"")]
    Dash(String),
    #[error("invalid pkgpath {0:?}: character {1:?} not allowed")]
    BadChar(String, char),
    #[error("invalid pkgpath {0:?}: more than one subpackage")]
    TwoSubpackages(String),
    #[error("invalid pkgpath {0:?}: empty subpackage")]
    EmptySubpackage(String),
    #[error("invalid pkgpath {0:?}: empty flavor")]
    EmptyFlavor(String),
    #[error("invalid pkgpath {0:?}: a port is category/port at least")]
    NoPort(String),
    #[error("invalid pkgpath {0:.40}...: longer than {MAX_LEN} bytes")]
    TooLong(String),
}

/// The longest pkgpath taken: the longest real ones are some 60 bytes
/// (`x11/qt5/qtdeclarative,bootstrap,no_examples,no_tests,-main`).
pub const MAX_LEN: usize = 255;

/// The characters of a directory segment, a flavor or a subpackage name: those
/// real pkgpaths use (`x11/kde/i18n3/sr@Latn`, `editors/calligra-l10n/ca@valencia`).
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-' | '@')
}

/// Check a port directory (`net/curl`, `net/icinga/core2`): relative, at least
/// category/port (a category alone is a whole category of ports to make), at most
/// [`MAX_LEN`] bytes, non-empty segments of `[A-Za-z0-9._+@-]`, none `.` or `..`
/// or starting with `-`.
pub fn check_dir(dir: &str) -> Result<(), PkgPathError> {
    let err = || dir.to_string();
    if dir.is_empty() {
        return Err(PkgPathError::Empty);
    }
    if dir.len() > MAX_LEN {
        return Err(PkgPathError::TooLong(err()));
    }
    if dir.starts_with('/') {
        return Err(PkgPathError::Absolute(err()));
    }
    for seg in dir.split('/') {
        if seg.is_empty() {
            return Err(PkgPathError::EmptySegment(err()));
        }
        if seg == "." || seg == ".." {
            return Err(PkgPathError::DotSegment(err()));
        }
        if seg.starts_with('-') {
            return Err(PkgPathError::Dash(err()));
        }
        if let Some(c) = seg.chars().find(|&c| !name_char(c)) {
            return Err(PkgPathError::BadChar(err(), c));
        }
    }
    if !dir.contains('/') {
        return Err(PkgPathError::NoPort(err()));
    }
    Ok(())
}

impl PkgPath {
    /// Parse and validate; the result is in canonical form.
    pub fn parse(s: &str) -> Result<Self, PkgPathError> {
        let err = || s.to_string();
        if s.len() > MAX_LEN {
            return Err(PkgPathError::TooLong(err()));
        }
        let mut parts = s.split(',');
        let dir = parts.next().unwrap_or_default();
        check_dir(dir)?;
        let mut flavors: Option<Vec<String>> = None;
        let mut subpackage = None;
        let rest: Vec<&str> = parts.collect();
        for (i, p) in rest.iter().enumerate() {
            if let Some(sub) = p.strip_prefix('-') {
                if subpackage.is_some() {
                    return Err(PkgPathError::TwoSubpackages(err()));
                }
                if sub.is_empty() {
                    return Err(PkgPathError::EmptySubpackage(err()));
                }
                if let Some(c) = sub.chars().find(|&c| !name_char(c)) {
                    return Err(PkgPathError::BadChar(err(), c));
                }
                subpackage = Some(sub.to_string());
            } else if p.is_empty() {
                // `dir,` or `dir,,-sub`: the explicitly empty flavor.  An empty
                // element anywhere else is a mistake.
                let only =
                    rest.len() == 1 || (rest.len() == 2 && i == 0 && rest[1].starts_with('-'));
                if !only {
                    return Err(PkgPathError::EmptyFlavor(err()));
                }
                flavors.get_or_insert_with(Vec::new);
            } else {
                if let Some(c) = p.chars().find(|&c| !name_char(c)) {
                    return Err(PkgPathError::BadChar(err(), c));
                }
                flavors.get_or_insert_with(Vec::new).push(p.to_string());
            }
        }
        if let Some(f) = flavors.as_mut() {
            f.sort();
            f.dedup();
        }
        Ok(PkgPath {
            dir: dir.to_string(),
            flavors,
            subpackage,
        })
    }

    /// The port directory (`editors/vim` of `editors/vim,gtk2,-lang`).
    pub fn dir(&self) -> &str {
        &self.dir
    }

    /// The flavors given, sorted; `None` for the default flavor.
    pub fn flavors(&self) -> Option<&[String]> {
        self.flavors.as_deref()
    }

    /// The subpackage without its `-`.
    pub fn subpackage(&self) -> Option<&str> {
        self.subpackage.as_deref()
    }

    /// Only a directory: no flavor and no subpackage given.
    pub fn is_bare(&self) -> bool {
        self.flavors.is_none() && self.subpackage.is_none()
    }

    /// A bare pkgpath for a directory that was checked with [`check_dir`].
    pub fn from_dir(dir: &str) -> Result<Self, PkgPathError> {
        check_dir(dir)?;
        Ok(PkgPath {
            dir: dir.into(),
            flavors: None,
            subpackage: None,
        })
    }
}

impl fmt::Display for PkgPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir)?;
        match &self.flavors {
            Some(v) if v.is_empty() => f.write_str(",")?,
            Some(v) => {
                for fl in v {
                    write!(f, ",{fl}")?;
                }
            }
            None => {}
        }
        if let Some(s) = &self.subpackage {
            write!(f, ",-{s}")?;
        }
        Ok(())
    }
}

impl FromStr for PkgPath {
    type Err = PkgPathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PkgPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        PkgPath::parse(s).unwrap().to_string()
    }

    #[test]
    fn canonical_form() {
        assert_eq!(canon("net/curl"), "net/curl");
        assert_eq!(canon("editors/vim,gtk2,-lang"), "editors/vim,gtk2,-lang");
        // characters of real pkgpaths
        assert_eq!(canon("x11/kde/i18n3/sr@Latn"), "x11/kde/i18n3/sr@Latn");
        assert_eq!(
            canon("editors/calligra-l10n/ca@valencia,-main"),
            "editors/calligra-l10n/ca@valencia,-main"
        );
        assert_eq!(canon("editors/vim,-lang,gtk2"), "editors/vim,gtk2,-lang");
        assert_eq!(canon("editors/vim,no_x11,gtk2"), "editors/vim,gtk2,no_x11");
        assert_eq!(canon("editors/vim,gtk2,gtk2"), "editors/vim,gtk2");
        assert_eq!(canon("lang/python/3.11"), "lang/python/3.11");
        assert_eq!(canon("x11/gtk+3,"), "x11/gtk+3,");
        assert_eq!(canon("x11/gtk+3,,-cups"), "x11/gtk+3,,-cups");
        assert_eq!(canon("devel/p5-Foo_Bar,-main"), "devel/p5-Foo_Bar,-main");
        let p = PkgPath::parse("editors/vim,-lang,gtk2").unwrap();
        assert_eq!(p.dir(), "editors/vim");
        assert_eq!(p.subpackage(), Some("lang"));
        assert!(!p.is_bare());
        assert!(PkgPath::parse("net/curl").unwrap().is_bare());
        assert!(!PkgPath::parse("x11/gtk+3,").unwrap().is_bare());
    }

    #[test]
    fn rejected() {
        for bad in [
            "",
            "/usr/ports/net/curl",
            "net//curl",
            "net/curl/",
            "../net/curl",
            "net/../curl",
            "./net",
            "net/-rf",
            "net/curl;rm -rf /",
            "net/$(reboot)",
            "net/cu rl",
            "net/curl`x`",
            "net/curl,-a,-b",
            "net/curl,-",
            "net/curl,a,,b",
            "net/curl,gtk2,",
            "net/curl,f|g",
            "net/curl\n",
            // A category is no port: make would build all of it.
            "devel",
            "devel,flavor",
        ] {
            assert!(PkgPath::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            PkgPath::parse("devel").unwrap_err().to_string(),
            "invalid pkgpath \"devel\": a port is category/port at least"
        );
        let long = format!("net/{}", "a".repeat(MAX_LEN));
        assert!(matches!(
            PkgPath::parse(&long),
            Err(PkgPathError::TooLong(_))
        ));
        assert!(matches!(check_dir(&long), Err(PkgPathError::TooLong(_))));
        let longest = format!("net/{}", "a".repeat(MAX_LEN - 4));
        assert!(PkgPath::parse(&longest).is_ok());
    }
}

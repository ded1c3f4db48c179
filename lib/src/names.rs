//! Names a configuration gives, checked once by the type that holds them: a
//! value of these types is valid wherever it goes (a file name, a command
//! line, a record).

use std::fmt;
use std::ops::Deref;

macro_rules! checked_name {
    ($(#[$m:meta])* $name:ident, $check:expr) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// The name, or why it is not one (a message to follow `what: `).
            pub fn parse(s: &str) -> Result<Self, String> {
                let check: fn(&str) -> Result<(), String> = $check;
                check(s).map(|()| $name(s.to_string()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                $name::parse(s)
            }
        }

        impl AsRef<std::ffi::OsStr> for $name {
            fn as_ref(&self) -> &std::ffi::OsStr {
                self.0.as_ref()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_name!(
    /// A target's name: it names files (`target/<name>.jsonl`), so letters,
    /// digits, `.`, `_`, `-`, not first `.` or `-`, at most 64 bytes.
    TargetName,
    |s| {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with(['.', '-'])
            && s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(())
        } else {
            Err(format!(
                "target name {s:?}: letters, digits, . _ - only, not first . or -"
            ))
        }
    }
);

checked_name!(
    /// A MACHINE_ARCH: `amd64`, `i386`, `aarch64`, `powerpc64`.
    Arch,
    |s| {
        if !s.is_empty()
            && s.len() <= 64
            && s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            Ok(())
        } else {
            Err(format!("arch {s:?}: a MACHINE_ARCH such as amd64"))
        }
    }
);

checked_name!(
    /// An ssh destination, `[user@]host`: no blank, not an option.
    SshDest,
    |s| {
        if s.is_empty()
            || s.starts_with('-')
            || s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Err(format!(
                "ssh {s:?}: a destination such as builder@amd64.example.org"
            ))
        } else {
            Ok(())
        }
    }
);

checked_name!(
    /// A shell variable name: letters, digits and `_`, not first a digit.
    VarName,
    |s| {
        let mut b = s.bytes();
        if matches!(b.next(), Some(c) if c.is_ascii_alphabetic() || c == b'_')
            && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a variable name: letters, digits and _, not starting with a digit"
            ))
        }
    }
);

checked_name!(
    /// A cvs tag or git revision: no blank, not an option.
    Revision,
    |s| {
        if !s.is_empty()
            && !s.starts_with('-')
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            Ok(())
        } else {
            Err(format!("{s:?} is not a revision"))
        }
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(TargetName::parse("amd64-fast.1").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a b", &"x".repeat(65)] {
            assert!(TargetName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Arch::parse("powerpc64").is_ok());
        assert!(Arch::parse("amd64 ").is_err());
        assert!(SshDest::parse("builder@i386.example.org").is_ok());
        assert!(SshDest::parse("-oProxyCommand=x").is_err());
        assert!(VarName::parse("_PKG_PATH1").is_ok());
        assert!(VarName::parse("1X").is_err() && VarName::parse("A-B").is_err());
        assert!(Revision::parse("OPENBSD_7_8").is_ok());
        assert!(Revision::parse("-x").is_err() && Revision::parse("a b").is_err());
        let n = TargetName::parse("amd64").unwrap();
        assert_eq!(
            (n.as_str(), &*n, n.to_string()),
            ("amd64", "amd64", "amd64".into())
        );
    }
}

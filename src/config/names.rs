//! Closed sets of names in the config file (routing policies, capabilities, the state backend):
//! the `names!` macro that declares one as an enum with its names written once, and the
//! wrappers that parse them once, [`Listed`] and [`Choice`]. A name that matches nothing does
//! not fail the TOML parse, which would stop at its first error: it is kept beside the value,
//! and `Config::validate` reports it with its place along with every other problem.

use serde::{Deserialize, Deserializer};
use std::ops::Deref;

/// A closed set of names the config file chooses from, declared with the `names!` macro.
pub trait Named: Copy + 'static {
    /// Every value, in the order the docs list them.
    const ALL: &'static [Self];
    /// The name the config file uses.
    fn name(self) -> &'static str;
}

/// `a, b, c`: the names of a set, for messages.
pub fn known_names<T: Named>() -> String {
    let names: Vec<&str> = T::ALL.iter().map(|v| v.name()).collect();
    names.join(", ")
}

/// Declares a [`Named`] enum: each variant and its config name written once, from which come
/// `ALL`, `name()`, `from_name()` and `Display`.
macro_rules! names {
    ($(#[$doc:meta])* $T:ident { $($(#[$vdoc:meta])* $V:ident = $name:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $T {
            $($(#[$vdoc])* $V,)+
        }

        impl $T {
            /// Every value, in the order the docs list them.
            pub const ALL: &'static [$T] = &[$($T::$V),+];

            /// The name the config file uses.
            pub const fn name(self) -> &'static str {
                match self {
                    $($T::$V => $name,)+
                }
            }

            /// By config name.
            pub fn from_name(s: &str) -> Option<$T> {
                $T::ALL.iter().copied().find(|v| v.name() == s)
            }
        }

        impl Named for $T {
            const ALL: &'static [$T] = $T::ALL;
            fn name(self) -> &'static str {
                $T::name(self)
            }
        }

        impl fmt::Display for $T {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

/// A list of [`Named`] values parsed once from strings. Names that match nothing are kept out of
/// the list, with their index, for [`Config::validate`](super::Config::validate) to report; everything after validation
/// sees known values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    known: Vec<T>,
    unknown: Vec<(usize, String)>,
}

impl<T> Listed<T> {
    /// The names that matched nothing, with their index in the file's list.
    pub fn unknown(&self) -> &[(usize, String)] {
        &self.unknown
    }
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed {
            known: Vec::new(),
            unknown: Vec::new(),
        }
    }
}

impl<T> From<Vec<T>> for Listed<T> {
    fn from(known: Vec<T>) -> Self {
        Listed {
            known,
            unknown: Vec::new(),
        }
    }
}

impl<T> Deref for Listed<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.known
    }
}

impl<'de, T: Named> Deserialize<'de> for Listed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut out = Listed::default();
        for (i, name) in Vec::<String>::deserialize(d)?.into_iter().enumerate() {
            match T::ALL.iter().copied().find(|v| v.name() == name) {
                Some(v) => out.known.push(v),
                None => out.unknown.push((i, name)),
            }
        }
        Ok(out)
    }
}

/// One [`Named`] value parsed once from a string. A name that matches nothing is kept for
/// [`Config::validate`](super::Config::validate) to report; the value is then the set's first, which nothing after
/// validation ever sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice<T> {
    value: T,
    unknown: Option<String>,
}

impl<T: Copy> Choice<T> {
    /// The value.
    pub fn get(&self) -> T {
        self.value
    }

    /// The name that matched nothing, if it did not.
    pub fn unknown(&self) -> Option<&str> {
        self.unknown.as_deref()
    }
}

impl<T> From<T> for Choice<T> {
    fn from(value: T) -> Self {
        Choice {
            value,
            unknown: None,
        }
    }
}

impl<'de, T: Named> Deserialize<'de> for Choice<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(match T::ALL.iter().copied().find(|v| v.name() == name) {
            Some(v) => Choice::from(v),
            None => Choice {
                value: T::ALL[0],
                unknown: Some(name),
            },
        })
    }
}

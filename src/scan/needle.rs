//! A fixed byte string searched for in every event of a stream, its memmem searcher built once
//! for the process instead of per event (building one showed in the relay's profile).

/// A `static` searcher for `needle`, built on first use.
pub struct Needle {
    needle: &'static [u8],
    built: std::sync::OnceLock<memchr::memmem::Finder<'static>>,
}

impl Needle {
    /// A searcher for `needle`, for a `static`.
    pub const fn new(needle: &'static [u8]) -> Needle {
        Needle {
            needle,
            built: std::sync::OnceLock::new(),
        }
    }

    /// Where `needle` first occurs in `hay`.
    pub fn find(&self, hay: &[u8]) -> Option<usize> {
        self.built
            .get_or_init(|| memchr::memmem::Finder::new(self.needle))
            .find(hay)
    }

    /// Whether `hay` holds `needle`.
    pub fn is_in(&self, hay: &[u8]) -> bool {
        self.find(hay).is_some()
    }
}

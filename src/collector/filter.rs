//! [`NameFilter`]: a regular expression over names that come back every collection (kernel
//! field names, device names), with each answer remembered.
//!
//! Why: the regex crate's lazy DFA grows a cache per pattern, per thread that uses it, up to
//! 2 MiB each; netstat's default field pattern had grown 1.2 MB of caches in a few minutes
//! at 1 s collection (heaptrack), and matching ~400 names a second cost CPU for answers that
//! never change. A host's set of names is small and stable, so each is matched once.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

/// Answers remembered at most; past it the memo starts over (device names can churn, e.g.
/// container veths), so memory stays bounded whatever the host does.
const MAX_REMEMBERED: usize = 4096;

/// Bound on the regex's lazy DFA cache. Each name is matched once, so speed does not matter
/// and a small cache (the regex falls back to slower engines beyond it) saves memory.
const DFA_CACHE_BYTES: usize = 64 * 1024;

/// A regex match on names, memoised; see the module documentation.
#[derive(Debug, Clone)]
pub struct NameFilter {
    re: Regex,
    memo: RefCell<HashMap<Box<str>, bool>>,
}

impl NameFilter {
    /// Compiles `pattern` (same syntax as [`Regex::new`]).
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let re = RegexBuilder::new(pattern)
            .dfa_size_limit(DFA_CACHE_BYTES)
            .build()?;
        Ok(NameFilter {
            re,
            memo: RefCell::new(HashMap::new()),
        })
    }

    /// Whether `name` matches anywhere (as [`Regex::is_match`]).
    pub fn is_match(&self, name: &str) -> bool {
        if let Some(&known) = self.memo.borrow().get(name) {
            return known;
        }
        let answer = self.re.is_match(name);
        let mut memo = self.memo.borrow_mut();
        if memo.len() >= MAX_REMEMBERED {
            memo.clear();
        }
        memo.insert(name.into(), answer);
        answer
    }

    /// The pattern.
    pub fn as_str(&self) -> &str {
        self.re.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_like_the_regex_and_remembers_boundedly() {
        let f = NameFilter::new("^(sd|vd)[a-z]+$").unwrap();
        for _ in 0..2 {
            assert!(f.is_match("sda") && f.is_match("vdb"));
            assert!(!f.is_match("sda1") && !f.is_match("loop0"));
        }
        assert_eq!(f.memo.borrow().len(), 4);
        for i in 0..MAX_REMEMBERED + 10 {
            assert!(!f.is_match(&format!("dm-{i}")));
        }
        assert!(f.memo.borrow().len() <= MAX_REMEMBERED);
        assert!(f.is_match("sdz"));
        assert_eq!(f.as_str(), "^(sd|vd)[a-z]+$");
        assert!(NameFilter::new("(").is_err());
    }
}

//! Alertmanager-style matchers (`severity="critical"`, `team=~"db|infra"`, `env!=dev`), used
//! by routes, inhibit rules and silences. Built on the query engine's [`LabelMatcher`], so a
//! regex means the same (fully anchored) everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::query::{LabelMatcher, MatchOp};

/// A matcher that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid matcher {text:?}: {reason}")]
pub struct MatcherParseError {
    /// The matcher as written.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

/// One matcher; displays as it would be written.
#[derive(Debug, Clone)]
pub struct Matcher(pub LabelMatcher);

impl Matcher {
    /// Parses `name OP value` with OP one of `=`, `!=`, `=~`, `!~`; the value may be quoted
    /// (`"..."` with Go/PromQL escapes) or bare.
    pub fn parse(text: &str) -> Result<Matcher, MatcherParseError> {
        let err = |reason: &str| MatcherParseError {
            text: text.to_owned(),
            reason: reason.to_owned(),
        };
        let t = text.trim();
        let op_at = t
            .find(['=', '!'])
            .ok_or_else(|| err("expected name=value, name!=value, name=~regex or name!~regex"))?;
        let name = t[..op_at].trim();
        if name.is_empty()
            || !name
                .chars()
                .enumerate()
                .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()))
        {
            return Err(err("the label name must match [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        let rest = &t[op_at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            ("=~", v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            ("!~", v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            ("!=", v)
        } else if let Some(v) = rest.strip_prefix('=') {
            ("=", v)
        } else {
            return Err(err("expected one of =, !=, =~, !~ after the label name"));
        };
        let value = unquote(value.trim()).map_err(|r| err(&r))?;
        let m = match op {
            "=" => LabelMatcher::equal(name, value),
            "!=" => LabelMatcher::not_equal(name, value),
            "=~" => LabelMatcher::regex(name, &value).map_err(|e| err(&e.reason))?,
            _ => LabelMatcher::not_regex(name, &value).map_err(|e| err(&e.reason))?,
        };
        Ok(Matcher(m))
    }

    /// Builds a matcher from parts (API form).
    pub fn from_parts(
        name: &str,
        value: &str,
        is_regex: bool,
        is_equal: bool,
    ) -> Result<Matcher, MatcherParseError> {
        let op = match (is_regex, is_equal) {
            (false, true) => "=",
            (false, false) => "!=",
            (true, true) => "=~",
            (true, false) => "!~",
        };
        Matcher::parse(&format!("{name}{op}{}", quote(value)))
    }

    /// Whether `labels` satisfies it (an absent label is the empty string).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0
            .matches(labels.get(&self.0.name).map_or("", String::as_str))
    }

    /// The label name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The value or regex as written.
    pub fn value(&self) -> &str {
        &self.0.value
    }

    /// True for `=~` and `!~`.
    pub fn is_regex(&self) -> bool {
        matches!(self.0.op, MatchOp::Regex(_) | MatchOp::NotRegex(_))
    }

    /// True for `=` and `=~`.
    pub fn is_equal(&self) -> bool {
        matches!(self.0.op, MatchOp::Equal | MatchOp::Regex(_))
    }

    /// The operator as written.
    pub fn op_str(&self) -> &'static str {
        match self.0.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex(_) => "=~",
            MatchOp::NotRegex(_) => "!~",
        }
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}{}", self.name(), self.op_str(), quote(self.value()))
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// The JSON shape of Alertmanager's API (`{name, value, isRegex, isEqual}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatcherJson {
    /// Label name.
    pub name: String,
    /// Value or regex.
    pub value: String,
    /// Regex match.
    #[serde(default)]
    pub is_regex: bool,
    /// Equality (true) or negation (false).
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

impl From<&Matcher> for MatcherJson {
    fn from(m: &Matcher) -> Self {
        MatcherJson {
            name: m.name().to_owned(),
            value: m.value().to_owned(),
            is_regex: m.is_regex(),
            is_equal: m.is_equal(),
        }
    }
}

/// Whether every matcher matches.
pub fn matches_all(matchers: &[Matcher], labels: &BTreeMap<String, String>) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

/// Parses a list of matchers, reporting the first bad one.
pub fn parse_all(texts: &[String]) -> Result<Vec<Matcher>, MatcherParseError> {
    texts.iter().map(|t| Matcher::parse(t)).collect()
}

fn quote(s: &str) -> String {
    format!("{s:?}")
}

fn unquote(v: &str) -> Result<String, String> {
    let Some(inner) = v.strip_prefix('"') else {
        if v.contains(['"', ',', '{', '}']) {
            return Err("unquoted values must not contain quotes, commas or braces".into());
        }
        return Ok(v.to_owned());
    };
    let inner = inner
        .strip_suffix('"')
        .ok_or_else(|| "unterminated quoted value".to_owned())?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => return Err("trailing backslash".into()),
            }
        } else if c == '"' {
            return Err("unescaped quote inside the value".into());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_all_operators() {
        let l = labels(&[("severity", "critical"), ("team", "db")]);
        assert!(Matcher::parse(r#"severity="critical""#)
            .unwrap()
            .matches(&l));
        assert!(Matcher::parse("severity=critical").unwrap().matches(&l));
        assert!(Matcher::parse(r#"team=~"db|infra""#).unwrap().matches(&l));
        assert!(
            !Matcher::parse(r#"team=~"d""#).unwrap().matches(&l),
            "anchored"
        );
        assert!(Matcher::parse(r#"env!="prod""#).unwrap().matches(&l));
        assert!(Matcher::parse(r#"env!~"prod.*""#).unwrap().matches(&l));
        assert!(
            Matcher::parse(r#"env="""#).unwrap().matches(&l),
            "absent is empty"
        );
        assert_eq!(
            Matcher::parse(r#" team =~ "db|infra" "#)
                .unwrap()
                .to_string(),
            r#"team=~"db|infra""#
        );
    }

    #[test]
    fn rejects_bad_matchers() {
        for bad in ["severity", "=x", "1a=b", r#"a="b"#, r#"a=~"(""#, "a=b,c"] {
            assert!(Matcher::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn api_form_round_trips() {
        let m = Matcher::from_parts("job", "a\"b", false, false).unwrap();
        assert_eq!(m.value(), "a\"b");
        let j = MatcherJson::from(&m);
        assert!(!j.is_equal && !j.is_regex);
    }
}

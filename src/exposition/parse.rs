//! A parser for the Prometheus text exposition format 0.0.4 and for OpenMetrics 1.0 text.
//!
//! Two layers:
//!
//! - [`Parser`] is a streaming iterator of [`Event`]s over a `&str`: one [`Event::Family`] when a
//!   family's first sample arrives, then one [`Event::Sample`] per sample line. Events borrow
//!   from the input, label sets are handed out as a validated slice ([`RawLabels`]) that is
//!   decoded only if the caller asks, so a sample costs no allocation. `automon import` walks a
//!   900k-line OpenMetrics recording this way without holding it as families.
//! - [`parse_text`], [`parse_openmetrics`] and [`parse`] collect the events into the model's
//!   [`Family`] list, for the textfile and exec collectors.
//!
//! The caller picks the [`Dialect`], because the same line means different things in the two:
//! a timestamp is integer milliseconds in the text format and float seconds in OpenMetrics;
//! OpenMetrics counters carry a `_total` suffix that their family name lacks, and the input
//! must end with `# EOF`.
//!
//! What is checked follows Prometheus' own parsers (`expfmt` for the text format, which
//! node_exporter's textfile collector uses, and the OpenMetrics parser), so that a file
//! Prometheus rejects is rejected here with the same reason, named by line: invalid metric and
//! label names, duplicate label names, `__name__` as a label, bad escapes, values and
//! timestamps, unknown types, a second HELP or TYPE line, metadata after the family's samples,
//! and a family whose lines are split apart by another family (the text format's "all lines
//! for a given metric must be provided as one single group"). Two deliberate differences:
//! split families are an error where `expfmt` silently merges them, because a file that
//! interleaves families is almost always two writers racing; and in OpenMetrics a family name
//! may appear twice with *different types* (client_golang writes a gauge `x` and a counter
//! `x_total` both as family `x`, and Prometheus accepts that), as long as no sample name is
//! claimed by two families. Duplicate series (same name and labels) are not rejected here:
//! an OpenMetrics file legitimately repeats a series with new timestamps, so deduplication is
//! the caller's business.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::model::{Family, Labels, MetricKind, Sample};

/// Which exposition format the input is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// The Prometheus text format 0.0.4: optional integer-millisecond timestamps, free-form
    /// `#` comments, blank lines allowed.
    Text,
    /// OpenMetrics 1.0 text: float-second timestamps, `_total`/`_created` counter samples,
    /// `# UNIT`, exemplars (checked and skipped), no other comments, a final `# EOF`.
    OpenMetrics,
}

/// The type of a family as declared by `# TYPE`, covering both dialects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// `counter`.
    Counter,
    /// `gauge`.
    Gauge,
    /// `histogram`.
    Histogram,
    /// `summary`.
    Summary,
    /// `untyped` in the text format, `unknown` in OpenMetrics; also a family without `# TYPE`.
    Untyped,
    /// OpenMetrics `gaugehistogram` (`_bucket`, `_gsum`, `_gcount` samples).
    GaugeHistogram,
    /// OpenMetrics `info` (samples named `<family>_info`).
    Info,
    /// OpenMetrics `stateset`.
    StateSet,
}

impl MetricType {
    /// The keyword on a `# TYPE` line in `dialect`.
    pub fn as_str(self, dialect: Dialect) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => match dialect {
                Dialect::Text => "untyped",
                Dialect::OpenMetrics => "unknown",
            },
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }

    /// The model's kind for this type. The model has only the text format's five, so the
    /// OpenMetrics-only types map to the kind Prometheus treats them as when it stores them:
    /// info and stateset samples are gauges (0/1 or constant 1), and a gauge histogram's
    /// `_gcount`/`_gsum` are not a histogram's cumulative counters, so it is untyped.
    pub fn kind(self) -> MetricKind {
        match self {
            MetricType::Counter => MetricKind::Counter,
            MetricType::Gauge | MetricType::Info | MetricType::StateSet => MetricKind::Gauge,
            MetricType::Histogram => MetricKind::Histogram,
            MetricType::Summary => MetricKind::Summary,
            MetricType::Untyped | MetricType::GaugeHistogram => MetricKind::Untyped,
        }
    }

    fn from_keyword(word: &str, dialect: Dialect) -> Option<Self> {
        match dialect {
            // expfmt upper-cases the keyword before looking it up, so `COUNTER` is accepted.
            Dialect::Text => match word.to_ascii_lowercase().as_str() {
                "counter" => Some(MetricType::Counter),
                "gauge" => Some(MetricType::Gauge),
                "histogram" => Some(MetricType::Histogram),
                "summary" => Some(MetricType::Summary),
                "untyped" => Some(MetricType::Untyped),
                _ => None,
            },
            Dialect::OpenMetrics => match word {
                "counter" => Some(MetricType::Counter),
                "gauge" => Some(MetricType::Gauge),
                "histogram" => Some(MetricType::Histogram),
                "gaugehistogram" => Some(MetricType::GaugeHistogram),
                "summary" => Some(MetricType::Summary),
                "info" => Some(MetricType::Info),
                "stateset" => Some(MetricType::StateSet),
                "unknown" => Some(MetricType::Untyped),
                _ => None,
            },
        }
    }

    /// Whether a sample named `family` + `_` + `suffix` belongs to a family of this type.
    fn owns_suffix(self, dialect: Dialect, suffix: &str) -> bool {
        match (dialect, self) {
            (Dialect::Text, MetricType::Summary) => matches!(suffix, "sum" | "count"),
            (Dialect::Text, MetricType::Histogram) => matches!(suffix, "bucket" | "sum" | "count"),
            (Dialect::Text, _) => false,
            (Dialect::OpenMetrics, MetricType::Counter) => matches!(suffix, "total" | "created"),
            (Dialect::OpenMetrics, MetricType::Summary) => {
                matches!(suffix, "sum" | "count" | "created")
            }
            (Dialect::OpenMetrics, MetricType::Histogram) => {
                matches!(suffix, "bucket" | "sum" | "count" | "created")
            }
            (Dialect::OpenMetrics, MetricType::GaugeHistogram) => {
                matches!(suffix, "bucket" | "gsum" | "gcount")
            }
            (Dialect::OpenMetrics, MetricType::Info) => suffix == "info",
            (Dialect::OpenMetrics, _) => false,
        }
    }
}

/// Whether `sample` is a sample name of the family `family` of type `kind`. The bare family
/// name is accepted for every type: Prometheus ingests such samples, and rejecting them would
/// refuse files that Prometheus takes.
fn belongs(family: &str, kind: MetricType, dialect: Dialect, sample: &str) -> bool {
    match sample.strip_prefix(family) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('_')
            .is_some_and(|suffix| kind.owns_suffix(dialect, suffix)),
        None => false,
    }
}

/// Every suffix some type owns, to find the family a sample name could belong to.
const SUFFIXES: &[&str] = &[
    "_total", "_created", "_bucket", "_sum", "_count", "_gsum", "_gcount", "_info",
];

/// A parse error: the 1-based line and what was wrong there.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    /// What was wrong.
    pub kind: ParseErrorKind,
}

/// What was wrong on a line. Text from the input is quoted and cut to a short snippet, so a
/// message stays one readable line even for a runaway file.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A metric name does not match `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    #[error("invalid metric name {0:?}")]
    InvalidMetricName(String),
    /// `{"name", ...}` or `{"label"=...}`: Prometheus 3's quoted UTF-8 names.
    #[error("quoted (UTF-8) metric or label names are not supported")]
    QuotedName,
    /// A label name does not match `[a-zA-Z_][a-zA-Z0-9_]*`.
    #[error("invalid label name {0:?}")]
    InvalidLabelName(String),
    /// `__name__` used as a label.
    #[error("label name \"__name__\" is reserved")]
    ReservedLabelName,
    /// The same label name twice in one label set.
    #[error("duplicate label name {0:?}")]
    DuplicateLabelName(String),
    /// A backslash followed by something other than `\`, `"` or `n`.
    #[error("invalid escape sequence '\\{0}' (only \\\\, \\\" and \\n are allowed)")]
    InvalidEscape(char),
    /// A character other than the one the grammar requires.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar requires here.
        expected: &'static str,
        /// What the line has instead (`end of line` at the end).
        found: String,
    },
    /// A label value without its closing quote.
    #[error("label value is not closed by '\"'")]
    UnterminatedLabelValue,
    /// A sample line without a value.
    #[error("missing sample value")]
    MissingValue,
    /// A value that is not a float (`NaN`, `+Inf`, `-Inf` are floats).
    #[error("expected a float as value, got {0:?}")]
    InvalidValue(String),
    /// A timestamp of the wrong form for the dialect, or out of range.
    #[error("expected {expected} as timestamp, got {found:?}")]
    InvalidTimestamp {
        /// The dialect's timestamp form.
        expected: &'static str,
        /// The text found.
        found: String,
    },
    /// Text after the value and timestamp.
    #[error("unexpected text after the sample: {0:?}")]
    TrailingText(String),
    /// An OpenMetrics exemplar (`# {labels} value [timestamp]`) that does not parse.
    #[error("invalid exemplar: {0}")]
    InvalidExemplar(String),
    /// A `# TYPE` keyword the dialect does not know.
    #[error("unknown metric type {0:?}")]
    UnknownType(String),
    /// `# TYPE name` without a type.
    #[error("TYPE line for {0:?} has no type")]
    MissingType(String),
    /// A HELP, TYPE or UNIT line without a metric name.
    #[error("{0} line without a metric name")]
    MissingMetricName(&'static str),
    /// A second HELP line for one family.
    #[error("second HELP line for metric name {0:?}")]
    DuplicateHelp(String),
    /// A second TYPE line for one family.
    #[error("second TYPE line for metric name {0:?}")]
    DuplicateType(String),
    /// A second UNIT line for one family.
    #[error("second UNIT line for metric name {0:?}")]
    DuplicateUnit(String),
    /// HELP, TYPE or UNIT after the family's first sample.
    #[error("{keyword} line for {name:?} comes after its samples; metadata must come first")]
    MetadataAfterSamples {
        /// `HELP`, `TYPE` or `UNIT`.
        keyword: &'static str,
        /// The family.
        name: String,
    },
    /// A family that appears again after another family came in between.
    #[error(
        "{name:?} is split apart: its family already appeared at line {first_line}, and all \
         lines of one family must form one group"
    )]
    SplitFamily {
        /// The metric name seen again.
        name: String,
        /// Where its family first appeared.
        first_line: usize,
    },
    /// A histogram `_bucket` sample without `le`.
    #[error("histogram bucket {0:?} has no \"le\" label")]
    MissingLe(String),
    /// An `le` label that is not a float.
    #[error("\"le\" label value {0:?} is not a float")]
    InvalidLe(String),
    /// A summary quantile sample without `quantile`.
    #[error("summary sample {0:?} has no \"quantile\" label")]
    MissingQuantile(String),
    /// A `quantile` label that is not a float.
    #[error("\"quantile\" label value {0:?} is not a float")]
    InvalidQuantile(String),
    /// An OpenMetrics unit that is not the suffix of its family name.
    #[error("unit {unit:?} is not a suffix of metric name {name:?}")]
    UnitMismatch {
        /// The family.
        name: String,
        /// The declared unit.
        unit: String,
    },
    /// An OpenMetrics `#` line other than HELP, TYPE, UNIT and EOF.
    #[error("OpenMetrics allows no comments, only # HELP, # TYPE, # UNIT and # EOF")]
    Comment,
    /// An empty line in OpenMetrics.
    #[error("empty line (OpenMetrics allows none)")]
    EmptyLine,
    /// OpenMetrics input that does not end with `# EOF`.
    #[error("missing \"# EOF\" at the end of OpenMetrics input")]
    MissingEof,
    /// Something after `# EOF`.
    #[error("text after \"# EOF\"")]
    DataAfterEof,
}

/// Quotes at most this many bytes of input in an error message.
const SNIPPET_BYTES: usize = 60;

/// A short copy of `s` for an error message, cut at a character boundary.
fn snippet(s: &str) -> String {
    if s.len() <= SNIPPET_BYTES {
        return s.to_owned();
    }
    let mut end = SNIPPET_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// What was found at `i`, for [`ParseErrorKind::Unexpected`].
fn found_at(line: &str, i: usize) -> String {
    match line[i..].chars().next() {
        Some(c) => format!("{c:?}"),
        None => "end of line".to_owned(),
    }
}

/// Metadata of a family, emitted once before its first sample.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyMeta<'a> {
    /// Family name (for OpenMetrics without the `_total`/`_info`/... sample suffixes).
    pub name: &'a str,
    /// Declared type; [`MetricType::Untyped`] without `# TYPE`.
    pub kind: MetricType,
    /// Unescaped `# HELP` text, if any.
    pub help: Option<Cow<'a, str>>,
    /// OpenMetrics `# UNIT`, if any.
    pub unit: Option<&'a str>,
    /// Line of the family's first HELP/TYPE/UNIT line, or of its first sample.
    pub line: usize,
}

/// A validated label set as written (the text between `{` and `}`), decoded on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawLabels<'a> {
    text: &'a str,
    len: usize,
}

impl<'a> RawLabels<'a> {
    /// No labels.
    pub const EMPTY: RawLabels<'static> = RawLabels { text: "", len: 0 };

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The labels in written order, values unescaped (borrowed unless they had escapes).
    pub fn iter(&self) -> LabelIter<'a> {
        LabelIter { rest: self.text }
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The labels as the model's sorted, owned label set.
    pub fn to_labels(&self) -> Labels {
        let mut labels: Labels = self
            .iter()
            .map(|(n, v)| (n.to_owned(), v.into_owned()))
            .collect();
        labels.sort();
        labels
    }

    /// The label set exactly as written between the braces (escapes not decoded).
    pub fn as_str(&self) -> &'a str {
        self.text
    }
}

/// Iterator over a [`RawLabels`]; see [`RawLabels::iter`].
#[derive(Debug, Clone)]
pub struct LabelIter<'a> {
    rest: &'a str,
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = (&'a str, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        // The text was validated when it was scanned, so this walks it without re-checking:
        // separators, a name, '=', and a quoted value whose end is the first unescaped quote.
        let s = self.rest.trim_start_matches([' ', '\t', ',']);
        let eq = memchr::memchr(b'=', s.as_bytes())?;
        let name = s[..eq].trim_end_matches([' ', '\t']);
        let after = s[eq + 1..].trim_start_matches([' ', '\t']);
        let body = after.strip_prefix('"')?;
        let bytes = body.as_bytes();
        let mut i = 0;
        let mut escaped = false;
        while let Some(j) = memchr::memchr2(b'"', b'\\', &bytes[i..]) {
            let at = i + j;
            if bytes[at] == b'"' {
                let raw = &body[..at];
                self.rest = &body[at + 1..];
                let value = if escaped {
                    Cow::Owned(unescape(raw))
                } else {
                    Cow::Borrowed(raw)
                };
                return Some((name, value));
            }
            escaped = true;
            i = at + 2;
        }
        None
    }
}

/// Decodes `\\`, `\"` and `\n` in already validated text.
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSample<'a> {
    /// Full sample name, e.g. `http_requests_total` or `latency_seconds_bucket`.
    pub name: &'a str,
    /// The label set, validated.
    pub labels: RawLabels<'a>,
    /// The value.
    pub value: f64,
    /// Timestamp in milliseconds since the epoch, if the line has one (OpenMetrics seconds are
    /// converted, truncating below a millisecond as Prometheus does).
    pub timestamp_ms: Option<i64>,
    /// 1-based line number.
    pub line: usize,
}

impl RawSample<'_> {
    /// An owned model sample (labels sorted).
    pub fn to_sample(&self) -> Sample {
        Sample {
            name: self.name.to_owned(),
            labels: self.labels.to_labels(),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// What the streaming parser yields.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A family starts; its samples follow. Families without samples are never reported
    /// (Prometheus drops them too).
    Family(FamilyMeta<'a>),
    /// A sample of the most recent family.
    Sample(RawSample<'a>),
}

/// The family being read.
struct Current<'a> {
    name: &'a str,
    kind: Option<MetricType>,
    help: Option<Cow<'a, str>>,
    unit: Option<&'a str>,
    line: usize,
    /// Whether its [`Event::Family`] went out, i.e. it has samples.
    started: bool,
}

/// Streaming parser; see the module documentation. After an error it yields nothing more.
pub struct Parser<'a> {
    input: &'a str,
    pos: usize,
    line: usize,
    dialect: Dialect,
    current: Option<Current<'a>>,
    /// Families that ended, by name, with their type and first line: a later sample they own
    /// is a split family. Touched once per family, never per sample.
    closed: HashMap<&'a str, Vec<(MetricType, usize)>>,
    /// A sample held back while its family's [`Event::Family`] goes out first.
    pending: Option<RawSample<'a>>,
    /// Label names of the line being scanned, reused across lines for the duplicate check.
    names: Vec<&'a str>,
    done: bool,
}

impl<'a> Parser<'a> {
    /// A parser over `input` in `dialect`.
    pub fn new(input: &'a str, dialect: Dialect) -> Self {
        Parser {
            input,
            pos: 0,
            line: 0,
            dialect,
            current: None,
            closed: HashMap::new(),
            pending: None,
            names: Vec::new(),
            done: false,
        }
    }

    /// The next line without its terminator (`\n` or `\r\n`), or `None` at the end.
    fn next_line(&mut self) -> Option<&'a str> {
        if self.pos >= self.input.len() {
            return None;
        }
        let rest = &self.input[self.pos..];
        let (line, advance) = match memchr::memchr(b'\n', rest.as_bytes()) {
            Some(i) => (&rest[..i], i + 1),
            None => (rest, rest.len()),
        };
        self.pos += advance;
        self.line += 1;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    fn error(&mut self, kind: ParseErrorKind) -> ParseError {
        self.done = true;
        ParseError {
            line: self.line,
            kind,
        }
    }

    /// Handles one line; `Ok(None)` for lines that produce no event.
    fn line_event(&mut self, line: &'a str) -> Result<Option<Event<'a>>, ParseErrorKind> {
        let bytes = line.as_bytes();
        let start = skip_blanks(bytes, 0);
        if start == bytes.len() {
            return match self.dialect {
                Dialect::Text => Ok(None),
                Dialect::OpenMetrics => Err(ParseErrorKind::EmptyLine),
            };
        }
        if bytes[start] == b'#' {
            self.comment_line(line, start)?;
            return Ok(None);
        }
        self.sample_line(line, start)
    }

    /// A `#` line: HELP, TYPE, UNIT, EOF or a comment.
    fn comment_line(&mut self, line: &'a str, hash: usize) -> Result<(), ParseErrorKind> {
        let bytes = line.as_bytes();
        let kw_start = skip_blanks(bytes, hash + 1);
        let kw_end = token_end(bytes, kw_start);
        let keyword = match (&line[kw_start..kw_end], self.dialect) {
            ("HELP", _) => "HELP",
            ("TYPE", _) => "TYPE",
            ("UNIT", Dialect::OpenMetrics) => "UNIT",
            ("EOF", Dialect::OpenMetrics) => {
                if skip_blanks(bytes, kw_end) != bytes.len() {
                    return Err(ParseErrorKind::DataAfterEof);
                }
                return self.end_of_input();
            }
            (_, Dialect::Text) => return Ok(()),
            (_, Dialect::OpenMetrics) => return Err(ParseErrorKind::Comment),
        };
        let name_start = skip_blanks(bytes, kw_end);
        if name_start == bytes.len() {
            // expfmt ignores a bare `# HELP`; OpenMetrics has no comments to fall back to.
            return match self.dialect {
                Dialect::Text => Ok(()),
                Dialect::OpenMetrics => Err(ParseErrorKind::MissingMetricName(keyword)),
            };
        }
        let name_end = metric_name_end(bytes, name_start);
        if name_end == name_start || (name_end < bytes.len() && !is_blank(bytes[name_end])) {
            let end = token_end(bytes, name_start);
            return Err(ParseErrorKind::InvalidMetricName(snippet(
                &line[name_start..end],
            )));
        }
        let name = &line[name_start..name_end];
        // The text format allows any run of blanks before the text; OpenMetrics has exactly
        // one space, so a HELP text there may itself start with a space.
        let text_start = match self.dialect {
            Dialect::Text => skip_blanks(bytes, name_end),
            Dialect::OpenMetrics => (name_end + 1).min(bytes.len()),
        };
        self.metadata(keyword, name, &line[text_start..])
    }

    /// Applies a HELP, TYPE or UNIT line for `name` with the rest of the line `text`.
    fn metadata(
        &mut self,
        keyword: &'static str,
        name: &'a str,
        text: &'a str,
    ) -> Result<(), ParseErrorKind> {
        // In OpenMetrics, metadata for the current name after its samples starts another
        // family of that name: client_golang writes a gauge `x` and right after it a counter
        // `x_total` as two families `x`. The sample check below still rejects a real repeat.
        let dialect = self.dialect;
        let same = self
            .current
            .as_ref()
            .is_some_and(|c| c.name == name && (dialect == Dialect::Text || !c.started));
        if !same {
            self.close_current();
            // The text format names a family once; OpenMetrics may reuse a name with another
            // type (see the module docs), which the sample check catches if it matters.
            if self.dialect == Dialect::Text {
                if let Some(first_line) = self.closed.get(name).and_then(|v| v.first()) {
                    return Err(ParseErrorKind::SplitFamily {
                        name: name.to_owned(),
                        first_line: first_line.1,
                    });
                }
            }
            self.current = Some(Current {
                name,
                kind: None,
                help: None,
                unit: None,
                line: self.line,
                started: false,
            });
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(());
        };
        if cur.started {
            return Err(ParseErrorKind::MetadataAfterSamples {
                keyword,
                name: name.to_owned(),
            });
        }
        match keyword {
            "HELP" => {
                if cur.help.is_some() {
                    return Err(ParseErrorKind::DuplicateHelp(name.to_owned()));
                }
                cur.help = Some(unescape_checked(text)?);
            }
            "TYPE" => {
                if cur.kind.is_some() {
                    return Err(ParseErrorKind::DuplicateType(name.to_owned()));
                }
                let word = text.trim_end_matches([' ', '\t']);
                if word.is_empty() {
                    return Err(ParseErrorKind::MissingType(name.to_owned()));
                }
                cur.kind = Some(
                    MetricType::from_keyword(word, dialect)
                        .ok_or_else(|| ParseErrorKind::UnknownType(snippet(word)))?,
                );
            }
            _ => {
                if cur.unit.is_some() {
                    return Err(ParseErrorKind::DuplicateUnit(name.to_owned()));
                }
                let unit = text.trim_end_matches([' ', '\t']);
                // OpenMetrics: "the metric family name MUST be suffixed by an underscore and
                // the unit"; Prometheus rejects a mismatch the same way.
                let suffixed = name
                    .strip_suffix(unit)
                    .is_some_and(|stem| stem.ends_with('_'));
                if !unit.is_empty() && !suffixed {
                    return Err(ParseErrorKind::UnitMismatch {
                        name: name.to_owned(),
                        unit: snippet(unit),
                    });
                }
                cur.unit = Some(unit);
            }
        }
        Ok(())
    }

    /// Moves the current family to `closed`.
    fn close_current(&mut self) {
        if let Some(c) = self.current.take() {
            self.closed
                .entry(c.name)
                .or_default()
                .push((c.kind.unwrap_or(MetricType::Untyped), c.line));
        }
    }

    /// The family that already ended and owns `sample`, with its first line.
    fn closed_owner(&self, sample: &str) -> Option<usize> {
        let owns = |base: &str| {
            self.closed.get(base).and_then(|list| {
                list.iter()
                    .find(|(kind, _)| belongs(base, *kind, self.dialect, sample))
                    .map(|(_, line)| *line)
            })
        };
        owns(sample).or_else(|| {
            SUFFIXES
                .iter()
                .filter_map(|s| sample.strip_suffix(s))
                .find_map(owns)
        })
    }

    /// A sample line.
    fn sample_line(
        &mut self,
        line: &'a str,
        start: usize,
    ) -> Result<Option<Event<'a>>, ParseErrorKind> {
        let bytes = line.as_bytes();
        let name_end = metric_name_end(bytes, start);
        if name_end == start {
            // expfmt's `{"name", ...}` form, Prometheus 3's quoted UTF-8 names.
            if bytes[start] == b'{' && bytes.get(skip_blanks(bytes, start + 1)) == Some(&b'"') {
                return Err(ParseErrorKind::QuotedName);
            }
            let end = token_end(bytes, start);
            return Err(ParseErrorKind::InvalidMetricName(snippet(
                &line[start..end],
            )));
        }
        let name = &line[start..name_end];
        let mut i = skip_blanks(bytes, name_end);
        let mut specials = Specials::default();
        let labels = if bytes.get(i) == Some(&b'{') {
            let (labels, end) = scan_labels(line, i, &mut self.names, &mut specials)?;
            i = skip_blanks(bytes, end);
            labels
        } else {
            if i == name_end && i < bytes.len() {
                // Neither a blank nor a brace after the name: a character names cannot have.
                let end = token_end(bytes, start);
                return Err(ParseErrorKind::InvalidMetricName(snippet(
                    &line[start..end],
                )));
            }
            RawLabels::EMPTY
        };
        if i == bytes.len() {
            return Err(ParseErrorKind::MissingValue);
        }
        let value_end = token_end(bytes, i);
        let value = parse_float(&line[i..value_end])
            .ok_or_else(|| ParseErrorKind::InvalidValue(snippet(&line[i..value_end])))?;
        i = skip_blanks(bytes, value_end);
        let mut timestamp_ms = None;
        let open_metrics = self.dialect == Dialect::OpenMetrics;
        let exemplar = |b: u8| open_metrics && b == b'#';
        if i < bytes.len() && !exemplar(bytes[i]) {
            let end = token_end(bytes, i);
            timestamp_ms = Some(parse_timestamp(&line[i..end], self.dialect)?);
            i = skip_blanks(bytes, end);
        }
        if i < bytes.len() {
            if exemplar(bytes[i]) {
                check_exemplar(line, i + 1, &mut self.names)?;
            } else {
                return Err(ParseErrorKind::TrailingText(snippet(&line[i..])));
            }
        }
        let sample = RawSample {
            name,
            labels,
            value,
            timestamp_ms,
            line: self.line,
        };
        self.place_sample(sample, &specials)
    }

    /// Puts a sample into its family, starting a new one if it belongs to none.
    fn place_sample(
        &mut self,
        sample: RawSample<'a>,
        specials: &Specials<'a>,
    ) -> Result<Option<Event<'a>>, ParseErrorKind> {
        let dialect = self.dialect;
        let fits = self.current.as_ref().is_some_and(|c| {
            belongs(
                c.name,
                c.kind.unwrap_or(MetricType::Untyped),
                dialect,
                sample.name,
            )
        });
        if !fits {
            self.close_current();
            self.current = Some(Current {
                name: sample.name,
                kind: None,
                help: None,
                unit: None,
                line: self.line,
                started: false,
            });
        }
        let first = self.current.as_ref().is_some_and(|c| !c.started);
        if first {
            if let Some(first_line) = self.closed_owner(sample.name) {
                return Err(ParseErrorKind::SplitFamily {
                    name: sample.name.to_owned(),
                    first_line,
                });
            }
        }
        let Some(cur) = self.current.as_mut() else {
            return Ok(None);
        };
        let kind = *cur.kind.get_or_insert(MetricType::Untyped);
        check_specials(cur.name, kind, &sample, specials)?;
        if !cur.started {
            cur.started = true;
            let meta = FamilyMeta {
                name: cur.name,
                kind,
                help: cur.help.take(),
                unit: cur.unit,
                line: cur.line,
            };
            self.pending = Some(sample);
            return Ok(Some(Event::Family(meta)));
        }
        Ok(Some(Event::Sample(sample)))
    }

    /// `# EOF`: checks that only blank space follows and stops.
    fn end_of_input(&mut self) -> Result<(), ParseErrorKind> {
        let rest = &self.input[self.pos..];
        if !rest.trim().is_empty() {
            // Point at the first line that has something on it.
            let blank = rest.split('\n').take_while(|l| l.trim().is_empty()).count();
            self.line += blank + 1;
            return Err(ParseErrorKind::DataAfterEof);
        }
        self.pos = self.input.len();
        self.done = true;
        Ok(())
    }
}

impl<'a> Iterator for Parser<'a> {
    type Item = Result<Event<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(sample) = self.pending.take() {
            return Some(Ok(Event::Sample(sample)));
        }
        while !self.done {
            let Some(line) = self.next_line() else {
                self.done = true;
                if self.dialect == Dialect::OpenMetrics {
                    self.line += 1;
                    return Some(Err(self.error(ParseErrorKind::MissingEof)));
                }
                return None;
            };
            match self.line_event(line) {
                Ok(Some(event)) => return Some(Ok(event)),
                Ok(None) => {}
                Err(kind) => return Some(Err(self.error(kind))),
            }
        }
        None
    }
}

/// Label values the type rules look at, captured while scanning.
#[derive(Default)]
struct Specials<'a> {
    le: Option<&'a str>,
    quantile: Option<&'a str>,
}

/// Histogram buckets need a float `le`, summary quantiles a float `quantile` (expfmt's checks).
fn check_specials(
    family: &str,
    kind: MetricType,
    sample: &RawSample<'_>,
    specials: &Specials<'_>,
) -> Result<(), ParseErrorKind> {
    let suffix = sample
        .name
        .strip_prefix(family)
        .and_then(|s| s.strip_prefix('_'));
    match kind {
        MetricType::Histogram | MetricType::GaugeHistogram if suffix == Some("bucket") => {
            let raw = specials
                .le
                .ok_or_else(|| ParseErrorKind::MissingLe(sample.name.to_owned()))?;
            if parse_float(raw).is_none() {
                return Err(ParseErrorKind::InvalidLe(snippet(raw)));
            }
        }
        MetricType::Summary if sample.name == family => {
            let raw = specials
                .quantile
                .ok_or_else(|| ParseErrorKind::MissingQuantile(sample.name.to_owned()))?;
            if parse_float(raw).is_none() {
                return Err(ParseErrorKind::InvalidQuantile(snippet(raw)));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Scans and validates a label set starting at the `{` at `open`. Returns the labels and the
/// index after the `}`. `names` is scratch space for the duplicate check.
fn scan_labels<'a>(
    line: &'a str,
    open: usize,
    names: &mut Vec<&'a str>,
    specials: &mut Specials<'a>,
) -> Result<(RawLabels<'a>, usize), ParseErrorKind> {
    let bytes = line.as_bytes();
    names.clear();
    let mut i = open + 1;
    loop {
        i = skip_blanks(bytes, i);
        match bytes.get(i) {
            None => {
                return Err(ParseErrorKind::Unexpected {
                    expected: "a label name or '}'",
                    found: "end of line".to_owned(),
                })
            }
            Some(b'}') => break,
            Some(b'"') => return Err(ParseErrorKind::QuotedName),
            Some(&b) if !is_label_start(b) => {
                let end = label_token_end(bytes, i);
                return Err(ParseErrorKind::InvalidLabelName(snippet(&line[i..end])));
            }
            Some(_) => {}
        }
        let name_start = i;
        i += 1;
        while i < bytes.len() && is_label_char(bytes[i]) {
            i += 1;
        }
        let name = &line[name_start..i];
        if name == "__name__" {
            return Err(ParseErrorKind::ReservedLabelName);
        }
        // Linear: label sets are short, and a hash set would cost more than it saves.
        if names.contains(&name) {
            return Err(ParseErrorKind::DuplicateLabelName(name.to_owned()));
        }
        names.push(name);
        i = skip_blanks(bytes, i);
        if bytes.get(i) != Some(&b'=') {
            if i < bytes.len() && !is_blank(bytes[i]) && bytes[i] != b'=' && bytes[i] != b'}' {
                // e.g. `a-b="1"`: the name has a character names cannot have.
                let end = label_token_end(bytes, name_start);
                if end > i {
                    return Err(ParseErrorKind::InvalidLabelName(snippet(
                        &line[name_start..end],
                    )));
                }
            }
            return Err(ParseErrorKind::Unexpected {
                expected: "'=' after label name",
                found: found_at(line, i),
            });
        }
        i = skip_blanks(bytes, i + 1);
        if bytes.get(i) != Some(&b'"') {
            return Err(ParseErrorKind::Unexpected {
                expected: "'\"' at start of label value",
                found: found_at(line, i),
            });
        }
        let value_start = i + 1;
        let value_end = quoted_end(bytes, value_start)?;
        let value = &line[value_start..value_end];
        match name {
            "le" => specials.le = Some(value),
            "quantile" => specials.quantile = Some(value),
            _ => {}
        }
        i = skip_blanks(bytes, value_end + 1);
        match bytes.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => break,
            _ => {
                return Err(ParseErrorKind::Unexpected {
                    expected: "',' or '}' after label value",
                    found: found_at(line, i),
                })
            }
        }
    }
    let labels = RawLabels {
        text: &line[open + 1..i],
        len: names.len(),
    };
    Ok((labels, i + 1))
}

/// Index of the closing quote of a label value starting at `start`, checking escapes.
fn quoted_end(bytes: &[u8], start: usize) -> Result<usize, ParseErrorKind> {
    let mut i = start;
    loop {
        let Some(j) = memchr::memchr2(b'"', b'\\', &bytes[i..]) else {
            return Err(ParseErrorKind::UnterminatedLabelValue);
        };
        let at = i + j;
        if bytes[at] == b'"' {
            return Ok(at);
        }
        match bytes.get(at + 1) {
            Some(b'\\' | b'"' | b'n') => i = at + 2,
            Some(_) => {
                let c = std::str::from_utf8(&bytes[at + 1..])
                    .ok()
                    .and_then(|s| s.chars().next())
                    .unwrap_or('?');
                return Err(ParseErrorKind::InvalidEscape(c));
            }
            None => return Err(ParseErrorKind::UnterminatedLabelValue),
        }
    }
}

/// Checks an OpenMetrics exemplar after its `#`: ` {labels} value [timestamp]`.
fn check_exemplar<'a>(
    line: &'a str,
    from: usize,
    names: &mut Vec<&'a str>,
) -> Result<(), ParseErrorKind> {
    let bytes = line.as_bytes();
    let bad = |what: &str| ParseErrorKind::InvalidExemplar(what.to_owned());
    let i = skip_blanks(bytes, from);
    if bytes.get(i) != Some(&b'{') {
        return Err(bad("expected '{' after '#'"));
    }
    let mut specials = Specials::default();
    let (_, end) = scan_labels(line, i, names, &mut specials)
        .map_err(|e| ParseErrorKind::InvalidExemplar(e.to_string()))?;
    let mut i = skip_blanks(bytes, end);
    let value_end = token_end(bytes, i);
    if value_end == i || parse_float(&line[i..value_end]).is_none() {
        return Err(bad("expected a float value"));
    }
    i = skip_blanks(bytes, value_end);
    if i < bytes.len() {
        let ts_end = token_end(bytes, i);
        parse_timestamp(&line[i..ts_end], Dialect::OpenMetrics)
            .map_err(|e| ParseErrorKind::InvalidExemplar(e.to_string()))?;
        if skip_blanks(bytes, ts_end) != bytes.len() {
            return Err(bad("unexpected text after the timestamp"));
        }
    }
    Ok(())
}

/// Unescapes a HELP text (`\\`, `\n`, `\"`), rejecting other escapes as expfmt does.
fn unescape_checked(text: &str) -> Result<Cow<'_, str>, ParseErrorKind> {
    if !text.contains('\\') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') => out.push('"'),
            Some(other) => return Err(ParseErrorKind::InvalidEscape(other)),
            // A trailing lone backslash: expfmt hits the end of line mid-escape and fails.
            None => return Err(ParseErrorKind::InvalidEscape(' ')),
        }
    }
    Ok(Cow::Owned(out))
}

/// Parses a sample value as Go's `strconv.ParseFloat` does for the forms Prometheus accepts:
/// decimals, exponents, `NaN`, `+Inf`, `-Inf` (any case). Hex floats and `_` separators are
/// rejected, as in expfmt.
fn parse_float(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

/// Parses a timestamp into milliseconds.
fn parse_timestamp(s: &str, dialect: Dialect) -> Result<i64, ParseErrorKind> {
    let invalid = |expected| ParseErrorKind::InvalidTimestamp {
        expected,
        found: snippet(s),
    };
    match dialect {
        Dialect::Text => s
            .parse::<i64>()
            .map_err(|_| invalid("integer milliseconds")),
        Dialect::OpenMetrics => seconds_to_ms(s)
            .ok_or_else(|| invalid("float seconds within the i64 millisecond range")),
    }
}

/// OpenMetrics seconds to milliseconds. Plain decimals are converted exactly (no float
/// rounding turns `.151` into 150 ms); other float forms go through `f64`. Digits below a
/// millisecond are truncated toward zero, as Prometheus' `int64(ts * 1000)` does.
fn seconds_to_ms(s: &str) -> Option<i64> {
    if let Some(ms) = decimal_seconds_to_ms(s.as_bytes()) {
        return Some(ms);
    }
    let secs = parse_float(s)?;
    let ms = (secs * 1000.0).trunc();
    // `as` saturates; the range check makes an out-of-range timestamp an error instead.
    if ms.is_finite() && ms >= i64::MIN as f64 && ms < i64::MAX as f64 {
        Some(ms as i64)
    } else {
        None
    }
}

/// The exact path of [`seconds_to_ms`]: `[+-]digits[.digits]` in one pass, `None` for any
/// other form (exponents, `NaN`) or on overflow.
fn decimal_seconds_to_ms(b: &[u8]) -> Option<i64> {
    let (negative, mut i) = match b.first()? {
        b'-' => (true, 1),
        b'+' => (false, 1),
        _ => (false, 0),
    };
    let start = i;
    let mut secs: i64 = 0;
    while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
        secs = secs.checked_mul(10)?.checked_add(i64::from(d - b'0'))?;
        i += 1;
    }
    let mut digits = i - start;
    let mut sub: i64 = 0;
    let mut scale = 100;
    if b.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            // Digits below a millisecond are checked but truncated.
            sub += i64::from(d - b'0') * scale;
            scale /= 10;
            digits += 1;
            i += 1;
        }
    }
    if i != b.len() || digits == 0 {
        return None;
    }
    let ms = secs.checked_mul(1000)?.checked_add(sub)?;
    Some(if negative { -ms } else { ms })
}

const fn byte_class(label: bool) -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'_' || (!label && c == b':');
        b += 1;
    }
    t
}

/// Bytes allowed after the first in a metric name: `[a-zA-Z0-9_:]`.
static METRIC_CHAR: [bool; 256] = byte_class(false);
/// Bytes allowed after the first in a label name: `[a-zA-Z0-9_]`.
static LABEL_CHAR: [bool; 256] = byte_class(true);

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_label_char(b: u8) -> bool {
    LABEL_CHAR[usize::from(b)]
}

fn skip_blanks(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && is_blank(bytes[i]) {
        i += 1;
    }
    i
}

/// End of a whitespace-delimited token starting at `i`.
fn token_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && !is_blank(bytes[i]) {
        i += 1;
    }
    i
}

/// End of what looks like a label name at `i` (for error messages).
fn label_token_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && !matches!(bytes[i], b' ' | b'\t' | b'=' | b',' | b'}') {
        i += 1;
    }
    i
}

/// End of the metric name starting at `i`; `i` itself if there is none.
fn metric_name_end(bytes: &[u8], i: usize) -> usize {
    match bytes.get(i) {
        Some(&b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return i,
    }
    let mut j = i + 1;
    while j < bytes.len() && METRIC_CHAR[usize::from(bytes[j])] {
        j += 1;
    }
    j
}

/// Parses `input` in `dialect` into model families, in input order. Families without samples
/// are left out; help is empty where the input has none.
pub fn parse(input: &str, dialect: Dialect) -> Result<Vec<Family>, ParseError> {
    let mut out: Vec<Family> = Vec::new();
    for event in Parser::new(input, dialect) {
        match event? {
            Event::Family(meta) => out.push(Family::new(
                meta.name,
                meta.help.unwrap_or_default(),
                meta.kind.kind(),
            )),
            Event::Sample(sample) => {
                // A sample always follows its family's event, so there is a last family.
                if let Some(family) = out.last_mut() {
                    family.samples.push(sample.to_sample());
                }
            }
        }
    }
    Ok(out)
}

/// Parses the Prometheus text format 0.0.4; see [`parse`].
pub fn parse_text(input: &str) -> Result<Vec<Family>, ParseError> {
    parse(input, Dialect::Text)
}

/// Parses OpenMetrics 1.0 text; see [`parse`]. A family keeps its OpenMetrics name (`foo`)
/// while its samples keep theirs (`foo_total`, `foo_created`), which is what Prometheus stores.
pub fn parse_openmetrics(input: &str) -> Result<Vec<Family>, ParseError> {
    parse(input, Dialect::OpenMetrics)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::render_family;

    fn text(s: &str) -> Vec<Family> {
        parse_text(s).unwrap_or_else(|e| panic!("{e}\ninput:\n{s}"))
    }

    fn om(s: &str) -> Vec<Family> {
        parse_openmetrics(s).unwrap_or_else(|e| panic!("{e}\ninput:\n{s}"))
    }

    fn text_err(s: &str) -> ParseError {
        match parse_text(s) {
            Ok(f) => panic!("expected an error, parsed {f:?}"),
            Err(e) => e,
        }
    }

    fn om_err(s: &str) -> ParseError {
        match parse_openmetrics(s) {
            Ok(f) => panic!("expected an error, parsed {f:?}"),
            Err(e) => e,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        let mut l: Labels = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        l.sort();
        l
    }

    #[test]
    fn help_type_and_samples() {
        let f = text(
            "# HELP http_requests_total Requests served.\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{code=\"200\",method=\"get\"} 1027\n\
             http_requests_total{method=\"post\",code=\"400\"} 3\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "http_requests_total");
        assert_eq!(f[0].help, "Requests served.");
        assert_eq!(f[0].kind, MetricKind::Counter);
        assert_eq!(f[0].samples.len(), 2);
        assert_eq!(
            f[0].samples[1].labels,
            labels(&[("code", "400"), ("method", "post")])
        );
        assert_eq!(f[0].samples[1].value, 3.0);
        assert_eq!(f[0].samples[1].timestamp_ms, None);
    }

    #[test]
    fn type_before_help_and_every_text_type() {
        for (word, kind) in [
            ("counter", MetricKind::Counter),
            ("gauge", MetricKind::Gauge),
            ("untyped", MetricKind::Untyped),
            ("GAUGE", MetricKind::Gauge),
        ] {
            let f = text(&format!("# TYPE x {word}\n# HELP x h\nx 1\n"));
            assert_eq!((f[0].kind, f[0].help.as_str()), (kind, "h"), "{word}");
        }
    }

    #[test]
    fn family_without_metadata_is_untyped() {
        let f = text("a 1\nb{x=\"y\"} 2\n");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].kind, MetricKind::Untyped);
        assert_eq!(f[0].help, "");
        assert_eq!(f[1].samples[0].labels, labels(&[("x", "y")]));
    }

    #[test]
    fn families_without_samples_are_dropped() {
        let f = text("# HELP a a\n# TYPE a gauge\n# HELP b b\n# TYPE b gauge\nb 2\n");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].name, "b");
    }

    #[test]
    fn label_value_escapes() {
        let f = text(r#"m{a="back\\slash",b="q\"uote",c="new\nline",d="",e="ü ✓"} 1"#);
        assert_eq!(
            f[0].samples[0].labels,
            labels(&[
                ("a", "back\\slash"),
                ("b", "q\"uote"),
                ("c", "new\nline"),
                ("d", ""),
                ("e", "ü ✓"),
            ])
        );
    }

    #[test]
    fn help_escapes() {
        let f = text("# HELP m a \\\\ b \\n c \\\" d\nm 1\n");
        assert_eq!(f[0].help, "a \\ b \n c \" d");
    }

    #[test]
    fn whitespace_and_trailing_comma_are_tolerated() {
        let f = text("  m  {  a = \"1\" ,\tb=\"2\", }   4.5   1000  \n");
        assert_eq!(f[0].samples[0].labels, labels(&[("a", "1"), ("b", "2")]));
        assert_eq!(f[0].samples[0].value, 4.5);
        assert_eq!(f[0].samples[0].timestamp_ms, Some(1000));
        let f = text("m{} 1\n");
        assert!(f[0].samples[0].labels.is_empty());
    }

    #[test]
    fn special_values() {
        let f = text("a NaN\nb +Inf\nc -Inf\nd 1.5e-3\ne -0\nf Inf\n");
        assert!(f[0].samples[0].value.is_nan());
        assert_eq!(f[1].samples[0].value, f64::INFINITY);
        assert_eq!(f[2].samples[0].value, f64::NEG_INFINITY);
        assert_eq!(f[3].samples[0].value, 0.0015);
        assert_eq!(f[4].samples[0].value, 0.0);
        assert_eq!(f[5].samples[0].value, f64::INFINITY);
    }

    #[test]
    fn text_timestamps_are_integer_milliseconds() {
        let f = text("a 1 1700000000123\nb 2 -5\n");
        assert_eq!(f[0].samples[0].timestamp_ms, Some(1_700_000_000_123));
        assert_eq!(f[1].samples[0].timestamp_ms, Some(-5));
        let e = text_err("a 1 1700000000.5\n");
        assert!(
            matches!(e.kind, ParseErrorKind::InvalidTimestamp { .. }),
            "{e}"
        );
    }

    #[test]
    fn comments_blank_lines_and_crlf() {
        let f = text(
            "# a comment\r\n\r\n   \r\n#\r\n# TYPE a gauge\r\n# HELP a x\r\na{l=\"v\"} 1\r\n# EOF\r\n",
        );
        assert_eq!(f[0].help, "x");
        assert_eq!(f[0].samples[0].labels, labels(&[("l", "v")]));
        // Without a final newline too.
        assert_eq!(text("a 1").len(), 1);
        assert!(text("").is_empty());
        assert!(text("\n\n# nothing\n").is_empty());
    }

    #[test]
    fn summary_groups_sum_and_count() {
        let f = text(
            "# TYPE rpc summary\n\
             rpc{quantile=\"0.5\"} 1\n\
             rpc{quantile=\"0.99\"} 3\n\
             rpc_sum 10\n\
             rpc_count 4\n\
             rpc_created 5\n",
        );
        // The text format has no `_created`: it starts an untyped family, as in expfmt.
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].kind, MetricKind::Summary);
        let names: Vec<&str> = f[0].samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["rpc", "rpc", "rpc_sum", "rpc_count"]);
        assert_eq!(f[1].name, "rpc_created");
    }

    #[test]
    fn histogram_groups_buckets() {
        let f = text(
            "# HELP lat Latency.\n# TYPE lat histogram\n\
             lat_bucket{le=\"0.1\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 0.3\nlat_count 2\n\
             other 1\n",
        );
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].kind, MetricKind::Histogram);
        assert_eq!(f[0].samples.len(), 4);
        assert_eq!(f[0].samples[1].labels, labels(&[("le", "+Inf")]));
    }

    #[test]
    fn histogram_and_summary_label_rules() {
        let e = text_err("# TYPE h histogram\nh_bucket 1\n");
        assert_eq!(e.kind, ParseErrorKind::MissingLe("h_bucket".into()));
        let e = text_err("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n");
        assert_eq!(e.kind, ParseErrorKind::InvalidLe("x".into()));
        let e = text_err("# TYPE s summary\ns 1\n");
        assert_eq!(e.kind, ParseErrorKind::MissingQuantile("s".into()));
        let e = text_err("# TYPE s summary\ns{quantile=\"high\"} 1\n");
        assert_eq!(e.kind, ParseErrorKind::InvalidQuantile("high".into()));
        // `le` on a gauge means nothing special.
        text("# TYPE g gauge\ng{le=\"x\"} 1\n");
    }

    #[test]
    fn errors_name_the_line() {
        let e = text_err("a 1\nb 2\nc{x=\"1\",x=\"2\"} 3\n");
        assert_eq!(e.line, 3);
        assert_eq!(e.kind, ParseErrorKind::DuplicateLabelName("x".into()));
        assert_eq!(e.to_string(), "line 3: duplicate label name \"x\"");
    }

    #[test]
    fn name_errors() {
        let cases: &[(&str, ParseErrorKind)] = &[
            ("1abc 1\n", ParseErrorKind::InvalidMetricName("1abc".into())),
            ("a-b 1\n", ParseErrorKind::InvalidMetricName("a-b".into())),
            (
                "a{1x=\"1\"} 1\n",
                ParseErrorKind::InvalidLabelName("1x".into()),
            ),
            (
                "a{x-y=\"1\"} 1\n",
                ParseErrorKind::InvalidLabelName("x-y".into()),
            ),
            (
                "a{a:b=\"1\"} 1\n",
                ParseErrorKind::InvalidLabelName("a:b".into()),
            ),
            ("a{__name__=\"b\"} 1\n", ParseErrorKind::ReservedLabelName),
            ("{\"a.b\"} 1\n", ParseErrorKind::QuotedName),
            ("a{\"x.y\"=\"1\"} 1\n", ParseErrorKind::QuotedName),
            (
                "# TYPE met-ric gauge\n",
                ParseErrorKind::InvalidMetricName("met-ric".into()),
            ),
        ];
        for (input, kind) in cases {
            let e = text_err(input);
            assert_eq!(&e.kind, kind, "{input:?}");
        }
    }

    #[test]
    fn label_syntax_errors() {
        for input in [
            "a{x=1} 1\n",
            "a{x} 1\n",
            "a{x=\"1\" y=\"2\"} 1\n",
            "a{x=\"1\"\n",
            "a{x=\"1\" 1\n",
        ] {
            let e = text_err(input);
            assert!(
                matches!(e.kind, ParseErrorKind::Unexpected { .. }),
                "{input:?}: {e}"
            );
        }
        assert_eq!(
            text_err("a{x=\"1} 1\n").kind,
            ParseErrorKind::UnterminatedLabelValue
        );
        assert_eq!(
            text_err("a{x=\"\\t\"} 1\n").kind,
            ParseErrorKind::InvalidEscape('t')
        );
        assert_eq!(
            text_err("# HELP a bad \\t escape\n").kind,
            ParseErrorKind::InvalidEscape('t')
        );
    }

    #[test]
    fn value_errors() {
        assert_eq!(text_err("a\n").kind, ParseErrorKind::MissingValue);
        assert_eq!(text_err("a{} \n").kind, ParseErrorKind::MissingValue);
        assert_eq!(
            text_err("a blubb\n").kind,
            ParseErrorKind::InvalidValue("blubb".into())
        );
        assert_eq!(
            text_err("a 0x10\n").kind,
            ParseErrorKind::InvalidValue("0x10".into())
        );
        assert_eq!(
            text_err("a 1_000\n").kind,
            ParseErrorKind::InvalidValue("1_000".into())
        );
        assert_eq!(
            text_err("a 1 2 3\n").kind,
            ParseErrorKind::TrailingText("3".into())
        );
    }

    #[test]
    fn metadata_errors() {
        assert_eq!(
            text_err("# TYPE a meter\n").kind,
            ParseErrorKind::UnknownType("meter".into())
        );
        assert_eq!(
            text_err("# TYPE a info\n").kind,
            ParseErrorKind::UnknownType("info".into())
        );
        assert_eq!(
            text_err("# TYPE a\n").kind,
            ParseErrorKind::MissingType("a".into())
        );
        let e = text_err("\n# HELP m one\n# HELP m two\n");
        assert_eq!(
            (e.line, e.kind),
            (3, ParseErrorKind::DuplicateHelp("m".into()))
        );
        let e = text_err("# TYPE m counter\n# TYPE m gauge\n");
        assert_eq!(
            (e.line, e.kind),
            (2, ParseErrorKind::DuplicateType("m".into()))
        );
        let e = text_err("m 4.12\n# TYPE m counter\n");
        assert_eq!(
            (e.line, e.kind),
            (
                2,
                ParseErrorKind::MetadataAfterSamples {
                    keyword: "TYPE",
                    name: "m".into()
                }
            )
        );
        // A bare `# HELP` or `# TYPE` is a comment, as in expfmt.
        assert!(text("# HELP\n# TYPE\n").is_empty());
    }

    #[test]
    fn split_families_are_rejected() {
        let e = text_err("a 1\nb 1\na{x=\"1\"} 2\n");
        assert_eq!(
            (e.line, e.kind),
            (
                3,
                ParseErrorKind::SplitFamily {
                    name: "a".into(),
                    first_line: 1
                }
            )
        );
        // Metadata again after another family.
        let e = text_err("# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# HELP a again\n");
        assert_eq!(e.line, 5);
        assert!(matches!(e.kind, ParseErrorKind::SplitFamily { .. }), "{e}");
        // A histogram's count after another family.
        let e = text_err("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nx 1\nh_count 1\n");
        assert_eq!(
            e.kind,
            ParseErrorKind::SplitFamily {
                name: "h_count".into(),
                first_line: 1
            }
        );
        // Metadata-only families count as seen too.
        let e = text_err("# HELP a only help\nb 1\na 2\n");
        assert!(matches!(e.kind, ParseErrorKind::SplitFamily { .. }), "{e}");
    }

    #[test]
    fn errors_stop_the_stream() {
        let mut p = Parser::new("a 1\nb x\nc 3\n", Dialect::Text);
        assert!(matches!(p.next(), Some(Ok(Event::Family(_)))));
        assert!(matches!(p.next(), Some(Ok(Event::Sample(_)))));
        assert!(matches!(p.next(), Some(Err(_))));
        assert!(p.next().is_none());
    }

    #[test]
    fn streaming_events() {
        let input = "# HELP a Help.\n# TYPE a counter\na{x=\"1\",y=\"a\\\"b\"} 1 10\na 2\nb 3\n";
        let events: Vec<Event<'_>> = Parser::new(input, Dialect::Text)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(events.len(), 5);
        let Event::Family(meta) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (meta.name, meta.kind, meta.help.as_deref(), meta.line),
            ("a", MetricType::Counter, Some("Help."), 1)
        );
        let Event::Sample(s) = &events[1] else {
            panic!("{events:?}")
        };
        assert_eq!(
            (s.name, s.value, s.timestamp_ms, s.line),
            ("a", 1.0, Some(10), 3)
        );
        assert_eq!(s.labels.len(), 2);
        let pairs: Vec<(&str, Cow<'_, str>)> = s.labels.iter().collect();
        assert!(
            matches!(pairs[0].1, Cow::Borrowed("1")),
            "no copy without escapes"
        );
        assert_eq!(pairs[1], ("y", Cow::Owned("a\"b".to_owned())));
        assert_eq!(s.labels.get("y").as_deref(), Some("a\"b"));
        assert_eq!(s.labels.get("z"), None);
        assert!(
            matches!(&events[3], Event::Family(m) if m.name == "b" && m.kind == MetricType::Untyped)
        );
    }

    #[test]
    fn openmetrics_counter_total_and_created() {
        let f = om("# TYPE foo counter\n# HELP foo Foos.\n# UNIT foo \n\
             foo_total{a=\"1\"} 17 1520879607.789\n\
             foo_created{a=\"1\"} 1520430000.123 1520879607.789\n\
             # TYPE bar gauge\nbar 1\n# EOF\n");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "foo");
        assert_eq!(f[0].kind, MetricKind::Counter);
        assert_eq!(f[0].help, "Foos.");
        let names: Vec<&str> = f[0].samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["foo_total", "foo_created"]);
        assert_eq!(f[0].samples[0].timestamp_ms, Some(1_520_879_607_789));
        assert_eq!(f[0].samples[1].value, 1_520_430_000.123);
    }

    #[test]
    fn openmetrics_types() {
        let f = om(
            "# TYPE i info\ni_info{v=\"1\"} 1\n\
             # TYPE s stateset\ns{s=\"a\"} 1\ns{s=\"b\"} 0\n\
             # TYPE gh gaugehistogram\ngh_bucket{le=\"1\"} 1\ngh_bucket{le=\"+Inf\"} 2\ngh_gcount 2\ngh_gsum 3\n\
             # TYPE u unknown\nu 1\n\
             # TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\nh_sum 2\nh_created 3\n\
             # TYPE q summary\nq{quantile=\"0.5\"} 1\nq_count 1\nq_sum 2\nq_created 3\n\
             # EOF\n",
        );
        let kinds: Vec<(&str, MetricKind, usize)> = f
            .iter()
            .map(|f| (f.name.as_str(), f.kind, f.samples.len()))
            .collect();
        assert_eq!(
            kinds,
            [
                ("i", MetricKind::Gauge, 1),
                ("s", MetricKind::Gauge, 2),
                ("gh", MetricKind::Untyped, 4),
                ("u", MetricKind::Untyped, 1),
                ("h", MetricKind::Histogram, 4),
                ("q", MetricKind::Summary, 4),
            ]
        );
        let types: Vec<MetricType> = Parser::new(
            "# TYPE i info\ni_info 1\n# TYPE g gaugehistogram\ng_gsum 1\n# EOF\n",
            Dialect::OpenMetrics,
        )
        .filter_map(|e| match e {
            Ok(Event::Family(m)) => Some(m.kind),
            _ => None,
        })
        .collect();
        assert_eq!(types, [MetricType::Info, MetricType::GaugeHistogram]);
        assert_eq!(MetricType::Untyped.as_str(Dialect::OpenMetrics), "unknown");
        assert_eq!(MetricType::Untyped.as_str(Dialect::Text), "untyped");
    }

    #[test]
    fn openmetrics_timestamps_are_float_seconds() {
        let cases = [
            ("1520879607.789", Some(1_520_879_607_789)),
            ("1795381810.151", Some(1_795_381_810_151)),
            ("1", Some(1000)),
            ("0.0015", Some(1)),
            ("1.2345", Some(1234)),
            (".5", Some(500)),
            ("5.", Some(5000)),
            ("+1", Some(1000)),
            ("-0.0019", Some(-1)),
            (".", None),
            ("1.2.3", None),
            ("", None),
            ("-1.5", Some(-1500)),
            ("1.5e3", Some(1_500_000)),
            ("NaN", None),
            ("+Inf", None),
            ("1e300", None),
            ("x", None),
            ("99999999999999999999", None),
        ];
        for (s, want) in cases {
            assert_eq!(seconds_to_ms(s), want, "{s}");
        }
        let e = om_err("a 1 x\n# EOF\n");
        assert!(
            matches!(e.kind, ParseErrorKind::InvalidTimestamp { .. }),
            "{e}"
        );
    }

    #[test]
    fn openmetrics_eof_rules() {
        assert_eq!(om_err("a 1\n").kind, ParseErrorKind::MissingEof);
        assert_eq!(om_err("a 1\n").line, 2);
        assert_eq!(
            om_err("a 1\n# EOF\nb 1\n").kind,
            ParseErrorKind::DataAfterEof
        );
        assert_eq!(om_err("a 1\n# EOF\nb 1\n").line, 3);
        assert_eq!(om("a 1\n# EOF").len(), 1);
        assert!(om("# EOF\n").is_empty());
        // CRLF line ends.
        assert_eq!(om("a 1\r\n# EOF\r\n").len(), 1);
    }

    #[test]
    fn openmetrics_rejects_comments_and_blank_lines() {
        assert_eq!(om_err("# hello\n# EOF\n").kind, ParseErrorKind::Comment);
        assert_eq!(om_err("a 1\n\n# EOF\n").kind, ParseErrorKind::EmptyLine);
        assert_eq!(
            om_err("# TYPE a untyped\n# EOF\n").kind,
            ParseErrorKind::UnknownType("untyped".into())
        );
    }

    #[test]
    fn openmetrics_unit_must_suffix_the_name() {
        let e = om_err("# TYPE metric counter\n# UNIT metric seconds\n# EOF\n");
        assert!(matches!(e.kind, ParseErrorKind::UnitMismatch { .. }), "{e}");
        let events: Vec<Event<'_>> = Parser::new(
            "# TYPE t_seconds gauge\n# UNIT t_seconds seconds\nt_seconds 1\n# EOF\n",
            Dialect::OpenMetrics,
        )
        .collect::<Result<_, _>>()
        .unwrap();
        assert!(matches!(&events[0], Event::Family(m) if m.unit == Some("seconds")));
        // In the text format `# UNIT` is just a comment.
        assert_eq!(text("# UNIT a bytes\na 1\n").len(), 1);
    }

    #[test]
    fn openmetrics_exemplars_are_checked_and_skipped() {
        let f = om("# TYPE h histogram\n\
             h_bucket{le=\"1\"} 2 # {trace_id=\"abc\"} 0.5 1520879607.7\n\
             h_bucket{le=\"+Inf\"} 3 1520879608 # {trace_id=\"def\"} 2\n\
             h_count 3\nh_sum 4\n# EOF\n");
        assert_eq!(f[0].samples.len(), 4);
        assert_eq!(f[0].samples[1].timestamp_ms, Some(1_520_879_608_000));
        let e = om_err("# TYPE h histogram\nh_bucket{le=\"1\"} 2 # trace\n# EOF\n");
        assert!(matches!(e.kind, ParseErrorKind::InvalidExemplar(_)), "{e}");
        let e = om_err("# TYPE h histogram\nh_bucket{le=\"1\"} 2 # {a=\"1\"} x\n# EOF\n");
        assert!(matches!(e.kind, ParseErrorKind::InvalidExemplar(_)), "{e}");
    }

    #[test]
    fn openmetrics_family_name_reused_with_another_type() {
        // client_golang's OpenMetrics output for a gauge `x` and a counter `x_total`.
        let f = om("# TYPE x gauge\n# HELP x In use.\nx 1 1\nx 2 2\n\
             # TYPE x counter\n# HELP x Allocated.\nx_total 5 1\nx_total 6 2\n# EOF\n");
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].kind, f[1].kind),
            (MetricKind::Gauge, MetricKind::Counter)
        );
        // The same type again is a split family.
        let e = om_err("# TYPE x gauge\nx 1\n# TYPE y gauge\ny 1\n# TYPE x gauge\nx 2\n# EOF\n");
        assert_eq!(
            (e.line, e.kind),
            (
                6,
                ParseErrorKind::SplitFamily {
                    name: "x".into(),
                    first_line: 1
                }
            )
        );
        let e = om_err("# TYPE c counter\nc_total 1\n# TYPE g gauge\ng 1\nc_created 2\n# EOF\n");
        assert!(matches!(e.kind, ParseErrorKind::SplitFamily { .. }), "{e}");
    }

    #[test]
    fn long_input_is_cut_in_messages() {
        let long = format!("{} 1\n", "a-".repeat(200));
        let e = text_err(&long);
        let ParseErrorKind::InvalidMetricName(shown) = &e.kind else {
            panic!("{e}")
        };
        assert!(shown.len() < 70, "{shown}");
        assert!(shown.ends_with("..."));
    }

    #[test]
    fn render_then_parse_round_trips() {
        let mut families = vec![
            Family::counter("c_total", "A counter \\ with\nnewline.")
                .with(&[("b", "2"), ("a", "x\"y\\z\nw")], 1.0),
            Family::gauge("g", "")
                .with(&[], -0.25)
                .with(&[("l", "")], f64::INFINITY),
            Family::new("u", "Untyped.", MetricKind::Untyped).with(&[("k", "v")], 1e20),
            Family::new("h", "Hist.", MetricKind::Histogram),
            Family::new("s", "Sum.", MetricKind::Summary),
        ];
        for (name, le, v) in [("h_bucket", "0.5", 1.0), ("h_bucket", "+Inf", 2.0)] {
            families[3].samples.push(Sample {
                name: name.into(),
                labels: labels(&[("le", le), ("m", "x")]),
                value: v,
                timestamp_ms: None,
            });
        }
        families[3].samples.push(Sample {
            name: "h_sum".into(),
            labels: labels(&[("m", "x")]),
            value: 0.7,
            timestamp_ms: Some(1_700_000_000_000),
        });
        families[3].samples.push(Sample {
            name: "h_count".into(),
            labels: labels(&[("m", "x")]),
            value: 2.0,
            timestamp_ms: None,
        });
        families[4].samples.push(Sample {
            name: "s".into(),
            labels: labels(&[("quantile", "0.9")]),
            value: 3.5,
            timestamp_ms: None,
        });
        families[4].samples.push(Sample {
            name: "s_count".into(),
            labels: Vec::new(),
            value: 9.0,
            timestamp_ms: None,
        });
        let mut out = String::new();
        for f in &families {
            render_family(&mut out, f);
        }
        assert_eq!(text(&out), families);
    }
}

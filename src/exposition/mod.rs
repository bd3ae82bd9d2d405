//! The Prometheus exposition formats as *input*: the text format 0.0.4 written by textfile
//! scripts and exec plugins, and OpenMetrics 1.0 text as `automon import` backfills it.
//! Rendering stays in [`crate::model::render_family`]; this module only reads.

pub mod parse;

pub use parse::{
    parse, parse_openmetrics, parse_text, Dialect, Event, FamilyMeta, LabelIter, MetricType,
    ParseError, ParseErrorKind, Parser, RawLabels, RawSample,
};

//! Query errors, classified the way Prometheus' HTTP API reports them (`errorType` and
//! status code), so the HTTP layer and the CLI can map them without string matching.

use crate::query::source::SourceError;

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The expression does not parse or does not type-check.
    #[error("parse error: {0}")]
    Parse(String),
    /// Valid PromQL that this engine does not evaluate; names the construct.
    #[error("unsupported PromQL: {0}")]
    Unsupported(String),
    /// Invalid query parameters (step, range, expression type for a range query).
    #[error("{0}")]
    BadRequest(String),
    /// The expression failed during evaluation (e.g. many-to-many matching, duplicate
    /// label sets, invalid `label_replace` arguments).
    #[error("{0}")]
    Execution(String),
    /// The deadline passed; `during` says where the engine noticed.
    #[error("query timed out in {during}")]
    Timeout {
        /// What the engine was doing.
        during: &'static str,
    },
    /// Samples loaded plus points produced exceed the per-query limit.
    #[error("query processing would load too many samples into memory: more than {limit} points (samples loaded + points produced); narrow the selector, shorten the range or increase the step")]
    TooManyPoints {
        /// The configured limit.
        limit: usize,
    },
    /// More series selected than the per-query limit allows.
    #[error("query selects too many series: more than {limit}; narrow the selector")]
    TooManySeries {
        /// The configured limit.
        limit: usize,
    },
    /// The storage failed.
    #[error("storage error: {0}")]
    Source(#[from] SourceError),
}

impl QueryError {
    /// Prometheus' `errorType` for this error.
    pub fn error_type(&self) -> &'static str {
        match self {
            QueryError::Parse(_) | QueryError::Unsupported(_) | QueryError::BadRequest(_) => {
                "bad_data"
            }
            QueryError::Execution(_)
            | QueryError::TooManyPoints { .. }
            | QueryError::TooManySeries { .. } => "execution",
            QueryError::Timeout { .. } => "timeout",
            QueryError::Source(_) => "internal",
        }
    }

    /// The HTTP status Prometheus uses for this `errorType` (400, 422, 503, 500).
    pub fn http_status(&self) -> u16 {
        match self.error_type() {
            "bad_data" => 400,
            "execution" => 422,
            "timeout" => 503,
            _ => 500,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_matches_prometheus() {
        let cases = [
            (QueryError::Parse("x".into()), "bad_data", 400),
            (QueryError::Unsupported("x".into()), "bad_data", 400),
            (QueryError::BadRequest("x".into()), "bad_data", 400),
            (QueryError::Execution("x".into()), "execution", 422),
            (QueryError::TooManyPoints { limit: 1 }, "execution", 422),
            (QueryError::TooManySeries { limit: 1 }, "execution", 422),
            (QueryError::Timeout { during: "x" }, "timeout", 503),
            (QueryError::Source(SourceError("x".into())), "internal", 500),
        ];
        for (e, t, code) in cases {
            assert_eq!(e.error_type(), t, "{e}");
            assert_eq!(e.http_status(), code, "{e}");
        }
    }
}

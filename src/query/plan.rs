//! Parsing and planning: PromQL text -> `promql-parser` AST -> the engine's own expression
//! tree ([`Node`]), rejecting every construct the engine does not evaluate with an error that
//! names it; and choosing the storage tier a query runs on.
//!
//! Converting into our own tree keeps the evaluator independent of the parser crate's AST
//! (which also carries Prometheus 3 experiments such as `fill()` and `or` in selectors) and
//! means an unsupported construct is reported before any data is read.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::token;
use promql_parser::parser::{self as pp, Expr, LabelModifier, VectorMatchCardinality};

use crate::query::error::QueryError;
use crate::query::functions::Func;
use crate::query::source::{LabelMatcher, Tier, TierInfo, METRIC_NAME};

/// The type an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ValueType {
    Scalar,
    Vector,
    Matrix,
    String,
}

/// An `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum At {
    /// `@ start()`: the start of the query range.
    Start,
    /// `@ end()`: the end of the query range.
    End,
    /// `@ <unix seconds>`, in milliseconds.
    Time(i64),
}

/// An instant vector selector with its modifiers.
#[derive(Debug, Clone)]
pub(crate) struct Selector {
    /// All matchers, the metric name as a `__name__` matcher included.
    pub matchers: Vec<LabelMatcher>,
    pub offset_ms: i64,
    pub at: Option<At>,
}

/// Aggregation operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    Quantile,
    CountValues,
}

/// `by (...)` or `without (...)`; no clause is `By(vec![])`.
#[derive(Debug, Clone)]
pub(crate) enum Grouping {
    By(Vec<String>),
    Without(Vec<String>),
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl BinOp {
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Lt | BinOp::Ge | BinOp::Le
        )
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinOp::And | BinOp::Or | BinOp::Unless)
    }

    /// Prometheus drops `__name__` for these (and for `bool` comparisons), not for `atan2`.
    pub fn drops_metric_name(self) -> bool {
        matches!(
            self,
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Pow | BinOp::Mod
        )
    }
}

/// Vector matching cardinality.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Card {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

/// How two vectors are matched.
#[derive(Debug, Clone)]
pub(crate) struct Matching {
    pub card: Card,
    /// `on(...)` when true, `ignoring(...)` (or nothing) when false.
    pub on: bool,
    pub labels: Vec<String>,
    /// `group_left(...)`/`group_right(...)` labels copied from the "one" side.
    pub include: Vec<String>,
}

/// A binary expression.
#[derive(Debug, Clone)]
pub(crate) struct Binary {
    pub op: BinOp,
    pub lhs: Node,
    pub rhs: Node,
    pub return_bool: bool,
    pub matching: Matching,
}

/// The engine's expression tree. Parentheses are gone; everything here is supported.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Number(f64),
    Str(String),
    Selector(Selector),
    Matrix {
        sel: Selector,
        range_ms: i64,
    },
    Subquery {
        expr: Box<Node>,
        range_ms: i64,
        step_ms: Option<i64>,
        offset_ms: i64,
        at: Option<At>,
    },
    Call {
        func: Func,
        args: Vec<Node>,
    },
    Aggregate {
        op: AggOp,
        param: Option<Box<Node>>,
        grouping: Grouping,
        expr: Box<Node>,
    },
    Binary(Box<Binary>),
    Neg(Box<Node>),
}

impl Node {
    pub fn value_type(&self) -> ValueType {
        match self {
            Node::Number(_) => ValueType::Scalar,
            Node::Str(_) => ValueType::String,
            Node::Selector(_) | Node::Aggregate { .. } => ValueType::Vector,
            Node::Matrix { .. } | Node::Subquery { .. } => ValueType::Matrix,
            Node::Call { func, .. } => func.return_type(),
            Node::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Node::Neg(e) => e.value_type(),
        }
    }
}

/// A parsed, checked expression ready to run any number of times.
#[derive(Debug, Clone)]
pub struct Query {
    pub(crate) root: Node,
    text: String,
}

impl Query {
    /// The expression as given.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Parses and checks `text`.
pub fn parse(text: &str) -> Result<Query, QueryError> {
    let expr = pp::parse(text).map_err(QueryError::Parse)?;
    let root = convert(&expr)?;
    Ok(Query {
        root,
        text: text.to_owned(),
    })
}

/// Parses a bare series selector (`up{job="node"}`, for `match[]`) into its matchers.
pub(crate) fn parse_selector(text: &str) -> Result<Vec<LabelMatcher>, QueryError> {
    match pp::parse(text).map_err(QueryError::Parse)? {
        Expr::VectorSelector(vs) => Ok(convert_selector(&vs)?.matchers),
        _ => Err(QueryError::BadRequest(format!(
            "invalid parameter \"match[]\": {text:?} is not a series selector"
        ))),
    }
}

fn unsupported(what: impl Into<String>) -> QueryError {
    QueryError::Unsupported(what.into())
}

/// Bound on durations and timestamps (about 31,700 years in milliseconds): keeps all time
/// arithmetic far from `i64` overflow whatever a query says.
pub(crate) const MAX_TIME_MS: i64 = 1_000_000_000_000_000;

fn millis(d: &Duration) -> Result<i64, QueryError> {
    i64::try_from(d.as_millis())
        .ok()
        .filter(|ms| *ms <= MAX_TIME_MS)
        .ok_or_else(|| QueryError::Parse("duration out of range".into()))
}

fn offset_ms(o: &Option<pp::Offset>) -> Result<i64, QueryError> {
    Ok(match o {
        None => 0,
        Some(pp::Offset::Pos(d)) => millis(d)?,
        Some(pp::Offset::Neg(d)) => -millis(d)?,
    })
}

fn at_of(a: &Option<pp::AtModifier>) -> Result<Option<At>, QueryError> {
    Ok(match a {
        None => None,
        Some(pp::AtModifier::Start) => Some(At::Start),
        Some(pp::AtModifier::End) => Some(At::End),
        Some(pp::AtModifier::At(t)) => Some(At::Time(system_time_ms(*t)?)),
    })
}

fn system_time_ms(t: SystemTime) -> Result<i64, QueryError> {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => millis(&d),
        Err(e) => Ok(-millis(&e.duration())?),
    }
}

fn convert_selector(vs: &pp::VectorSelector) -> Result<Selector, QueryError> {
    if !vs.matchers.or_matchers.is_empty() {
        return Err(unsupported("'or' inside a label matcher list"));
    }
    let mut matchers = Vec::with_capacity(vs.matchers.matchers.len() + 1);
    if let Some(name) = &vs.name {
        matchers.push(LabelMatcher::equal(METRIC_NAME, name.clone()));
    }
    for m in &vs.matchers.matchers {
        let lm = match &m.op {
            PMatchOp::Equal => LabelMatcher::equal(m.name.clone(), m.value.clone()),
            PMatchOp::NotEqual => LabelMatcher::not_equal(m.name.clone(), m.value.clone()),
            // Compile ourselves rather than reuse the parser's regex, so our anchoring is the
            // one documented in `source.rs`.
            PMatchOp::Re(_) => LabelMatcher::regex(m.name.clone(), &m.value)
                .map_err(|e| QueryError::Parse(e.to_string()))?,
            PMatchOp::NotRe(_) => LabelMatcher::not_regex(m.name.clone(), &m.value)
                .map_err(|e| QueryError::Parse(e.to_string()))?,
        };
        matchers.push(lm);
    }
    Ok(Selector {
        matchers,
        offset_ms: offset_ms(&vs.offset)?,
        at: at_of(&vs.at)?,
    })
}

fn agg_op(id: token::TokenId) -> Result<AggOp, QueryError> {
    Ok(match id {
        token::T_SUM => AggOp::Sum,
        token::T_AVG => AggOp::Avg,
        token::T_MIN => AggOp::Min,
        token::T_MAX => AggOp::Max,
        token::T_COUNT => AggOp::Count,
        token::T_GROUP => AggOp::Group,
        token::T_STDDEV => AggOp::Stddev,
        token::T_STDVAR => AggOp::Stdvar,
        token::T_TOPK => AggOp::Topk,
        token::T_BOTTOMK => AggOp::Bottomk,
        token::T_QUANTILE => AggOp::Quantile,
        token::T_COUNT_VALUES => AggOp::CountValues,
        token::T_LIMITK => return Err(unsupported("aggregation 'limitk'")),
        token::T_LIMIT_RATIO => return Err(unsupported("aggregation 'limit_ratio'")),
        _ => return Err(unsupported("unknown aggregation operator")),
    })
}

fn bin_op(id: token::TokenId) -> Result<BinOp, QueryError> {
    Ok(match id {
        token::T_ADD => BinOp::Add,
        token::T_SUB => BinOp::Sub,
        token::T_MUL => BinOp::Mul,
        token::T_DIV => BinOp::Div,
        token::T_MOD => BinOp::Mod,
        token::T_POW => BinOp::Pow,
        token::T_ATAN2 => BinOp::Atan2,
        token::T_EQLC => BinOp::Eq,
        token::T_NEQ => BinOp::Ne,
        token::T_GTR => BinOp::Gt,
        token::T_LSS => BinOp::Lt,
        token::T_GTE => BinOp::Ge,
        token::T_LTE => BinOp::Le,
        token::T_LAND => BinOp::And,
        token::T_LOR => BinOp::Or,
        token::T_LUNLESS => BinOp::Unless,
        _ => return Err(unsupported("unknown binary operator")),
    })
}

fn convert(e: &Expr) -> Result<Node, QueryError> {
    Ok(match e {
        Expr::NumberLiteral(n) => Node::Number(n.val),
        Expr::StringLiteral(s) => Node::Str(s.val.clone()),
        Expr::Paren(p) => convert(&p.expr)?,
        Expr::VectorSelector(vs) => Node::Selector(convert_selector(vs)?),
        Expr::MatrixSelector(ms) => Node::Matrix {
            sel: convert_selector(&ms.vs)?,
            range_ms: millis(&ms.range)?,
        },
        Expr::Subquery(sq) => {
            let step_ms = match &sq.step {
                Some(d) => Some(millis(d)?),
                None => None,
            };
            if step_ms == Some(0) {
                return Err(QueryError::Parse("zero subquery resolution".into()));
            }
            Node::Subquery {
                expr: Box::new(convert(&sq.expr)?),
                range_ms: millis(&sq.range)?,
                step_ms,
                offset_ms: offset_ms(&sq.offset)?,
                at: at_of(&sq.at)?,
            }
        }
        Expr::Unary(u) => Node::Neg(Box::new(convert(&u.expr)?)),
        Expr::Call(c) => {
            let func = Func::from_name(c.func.name)
                .ok_or_else(|| unsupported(format!("function '{}'", c.func.name)))?;
            let args = c
                .args
                .args
                .iter()
                .map(|a| convert(a))
                .collect::<Result<Vec<_>, _>>()?;
            func.check_args(&args)?;
            Node::Call { func, args }
        }
        Expr::Aggregate(a) => {
            let op = agg_op(a.op.id())?;
            let grouping = match &a.modifier {
                None => Grouping::By(Vec::new()),
                Some(LabelModifier::Include(l)) => Grouping::By(l.labels.clone()),
                Some(LabelModifier::Exclude(l)) => Grouping::Without(l.labels.clone()),
            };
            let param = match &a.param {
                Some(p) => Some(Box::new(convert(p)?)),
                None => None,
            };
            if op == AggOp::CountValues && !matches!(param.as_deref(), Some(Node::Str(_))) {
                return Err(unsupported(
                    "count_values with a label name that is not a string literal",
                ));
            }
            Node::Aggregate {
                op,
                param,
                grouping,
                expr: Box::new(convert(&a.expr)?),
            }
        }
        Expr::Binary(b) => {
            let op = bin_op(b.op.id())?;
            let lhs = convert(&b.lhs)?;
            let rhs = convert(&b.rhs)?;
            let mut matching = Matching {
                card: if op.is_set() {
                    Card::ManyToMany
                } else {
                    Card::OneToOne
                },
                on: false,
                labels: Vec::new(),
                include: Vec::new(),
            };
            let mut return_bool = false;
            if let Some(m) = &b.modifier {
                if m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some() {
                    return Err(unsupported("fill/fill_left/fill_right modifiers"));
                }
                return_bool = m.return_bool;
                match &m.matching {
                    Some(LabelModifier::Include(l)) => {
                        matching.on = true;
                        matching.labels = l.labels.clone();
                    }
                    Some(LabelModifier::Exclude(l)) => matching.labels = l.labels.clone(),
                    None => {}
                }
                match &m.card {
                    VectorMatchCardinality::OneToOne => {}
                    VectorMatchCardinality::ManyToMany => matching.card = Card::ManyToMany,
                    VectorMatchCardinality::ManyToOne(l) => {
                        matching.card = Card::ManyToOne;
                        matching.include = l.labels.clone();
                    }
                    VectorMatchCardinality::OneToMany(l) => {
                        matching.card = Card::OneToMany;
                        matching.include = l.labels.clone();
                    }
                }
            }
            Node::Binary(Box::new(Binary {
                op,
                lhs,
                rhs,
                return_bool,
                matching,
            }))
        }
        Expr::Extension(_) => return Err(unsupported("extension expressions")),
    })
}

/// What a query needs from storage, for choosing a tier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needs {
    /// The smallest range-vector window or subquery step in the expression.
    pub min_window_ms: Option<i64>,
    /// The earliest timestamp any selector reads.
    pub earliest_ms: i64,
    /// Whether a function that rollup aggregates cannot answer is used
    /// (`quantile_over_time`, `stddev_over_time`, `stdvar_over_time`, `changes`, `resets`).
    pub prefers_raw: bool,
}

/// Parameters that affect how far back selectors read.
pub(crate) struct Horizon {
    pub query_start: i64,
    pub query_end: i64,
    pub lookback_ms: i64,
    pub default_subquery_step_ms: i64,
}

fn resolve_at(at: Option<At>, h: &Horizon) -> Option<i64> {
    at.map(|a| match a {
        At::Start => h.query_start,
        At::End => h.query_end,
        At::Time(t) => t,
    })
}

fn min_opt(a: Option<i64>, b: i64) -> Option<i64> {
    Some(a.map_or(b, |a| a.min(b)))
}

/// Walks the tree: `first_eval` is the earliest time this node is evaluated at.
pub(crate) fn analyze(node: &Node, first_eval: i64, h: &Horizon, needs: &mut Needs) {
    match node {
        Node::Number(_) | Node::Str(_) => {}
        Node::Selector(sel) => {
            let t = resolve_at(sel.at, h).unwrap_or(first_eval) - sel.offset_ms - h.lookback_ms;
            needs.earliest_ms = needs.earliest_ms.min(t);
        }
        Node::Matrix { sel, range_ms } => {
            let t = resolve_at(sel.at, h).unwrap_or(first_eval) - sel.offset_ms - range_ms;
            needs.earliest_ms = needs.earliest_ms.min(t);
            needs.min_window_ms = min_opt(needs.min_window_ms, *range_ms);
        }
        Node::Subquery {
            expr,
            range_ms,
            step_ms,
            offset_ms,
            at,
        } => {
            needs.min_window_ms = min_opt(needs.min_window_ms, *range_ms);
            let step = step_ms.unwrap_or(h.default_subquery_step_ms);
            needs.min_window_ms = min_opt(needs.min_window_ms, step);
            let inner_first = resolve_at(*at, h).unwrap_or(first_eval) - offset_ms - range_ms;
            analyze(expr, inner_first, h, needs);
        }
        Node::Call { func, args } => {
            if func.prefers_raw() {
                needs.prefers_raw = true;
            }
            for a in args {
                analyze(a, first_eval, h, needs);
            }
        }
        Node::Aggregate { param, expr, .. } => {
            if let Some(p) = param {
                analyze(p, first_eval, h, needs);
            }
            analyze(expr, first_eval, h, needs);
        }
        Node::Binary(b) => {
            analyze(&b.lhs, first_eval, h, needs);
            analyze(&b.rhs, first_eval, h, needs);
        }
        Node::Neg(e) => analyze(e, first_eval, h, needs),
    }
}

fn covers(info: &TierInfo, earliest_ms: i64) -> bool {
    info.oldest_ms.is_none_or(|o| o <= earliest_ms)
}

/// Chooses the tier for a query.
///
/// * Range queries: the coarsest tier whose resolution is at most the step and at most every
///   range window (and subquery step) in the expression, among the tiers that still hold data
///   back to the earliest timestamp the query reads.
/// * Instant queries (`step_ms == None`): raw.
/// * `prefers_raw` (functions rollups cannot answer): raw.
///
/// When the preferred tier does not reach back far enough (raw beyond its retention), the
/// finest tier that does is used, even if it is coarser than the step (an approximation,
/// documented in the module docs); when none does, the one reaching furthest back.
pub(crate) fn choose_tier(tiers: &[TierInfo], needs: &Needs, step_ms: Option<i64>) -> Tier {
    let mut sorted: Vec<TierInfo> = tiers.to_vec();
    sorted.sort_by_key(|t| t.tier.resolution_ms());
    if !sorted.iter().any(|t| t.tier == Tier::Raw) {
        sorted.insert(
            0,
            TierInfo {
                tier: Tier::Raw,
                oldest_ms: None,
            },
        );
    }
    let max_res = match step_ms {
        Some(step) if !needs.prefers_raw => needs.min_window_ms.map_or(step, |w| w.min(step)),
        _ => 0,
    };
    let preferred = sorted
        .iter()
        .rev()
        .find(|t| t.tier.resolution_ms() <= max_res && covers(t, needs.earliest_ms));
    if let Some(t) = preferred {
        return t.tier;
    }
    if let Some(t) = sorted.iter().find(|t| covers(t, needs.earliest_ms)) {
        return t.tier;
    }
    sorted
        .iter()
        .min_by_key(|t| t.oldest_ms.unwrap_or(i64::MIN))
        .map_or(Tier::Raw, |t| t.tier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(q: &str) -> QueryError {
        match parse(q) {
            Ok(_) => panic!("{q} parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let cases = [
            ("histogram_quantile(0.9, rate(x[5m]))", "histogram_quantile"),
            ("holt_winters(x[5m], 0.5, 0.5)", "holt_winters"),
            ("limitk(2, x)", "limitk"),
            ("x + fill(0) y", "fill"),
            ("{a=\"b\" or c=\"d\"}", "'or' inside"),
            ("day_of_week()", "day_of_week"),
        ];
        for (q, want) in cases {
            let e = err(q);
            assert!(
                matches!(e, QueryError::Unsupported(_) | QueryError::Parse(_)),
                "{q}: {e:?}"
            );
            if let QueryError::Unsupported(msg) = &e {
                assert!(msg.contains(want), "{q}: {msg}");
            }
        }
        assert!(matches!(err("rate(x[5m]"), QueryError::Parse(_)));
        assert!(matches!(err("sum(x[5m])"), QueryError::Parse(_)));
    }

    #[test]
    fn metric_name_becomes_a_matcher() {
        let q = parse("up{job=\"a\"} offset 1m @ 100").unwrap();
        match q.root {
            Node::Selector(sel) => {
                assert_eq!(sel.matchers.len(), 2);
                assert_eq!(sel.matchers[0].name, METRIC_NAME);
                assert_eq!(sel.offset_ms, 60_000);
                assert_eq!(sel.at, Some(At::Time(100_000)));
            }
            other => panic!("{other:?}"),
        }
    }

    fn tiers(raw_oldest: Option<i64>) -> Vec<TierInfo> {
        vec![
            TierInfo {
                tier: Tier::Raw,
                oldest_ms: raw_oldest,
            },
            TierInfo {
                tier: Tier::Rollup {
                    resolution_ms: 300_000,
                },
                oldest_ms: None,
            },
            TierInfo {
                tier: Tier::Rollup {
                    resolution_ms: 3_600_000,
                },
                oldest_ms: None,
            },
        ]
    }

    fn needs(q: &str, start: i64, end: i64, step: Option<i64>) -> Needs {
        let q = parse(q).unwrap();
        let h = Horizon {
            query_start: start,
            query_end: end,
            lookback_ms: 300_000,
            default_subquery_step_ms: 60_000,
        };
        let mut n = Needs {
            min_window_ms: None,
            earliest_ms: start,
            prefers_raw: false,
        };
        analyze(&q.root, start, &h, &mut n);
        let _ = step;
        n
    }

    #[test]
    fn tier_choice() {
        let h = 3_600_000;
        let day = 24 * h;
        let t0 = 100 * day;
        let n = needs("rate(x[5m])", t0, t0 + day, Some(15_000));
        assert_eq!(n.earliest_ms, t0 - 300_000);
        assert_eq!(choose_tier(&tiers(None), &n, Some(15_000)), Tier::Raw);
        let five = Tier::Rollup {
            resolution_ms: 300_000,
        };
        let hour = Tier::Rollup {
            resolution_ms: 3_600_000,
        };
        assert_eq!(choose_tier(&tiers(None), &n, Some(300_000)), five);
        assert_eq!(choose_tier(&tiers(None), &n, Some(h)), five);
        let n = needs("x", t0, t0 + day, Some(h));
        assert_eq!(choose_tier(&tiers(None), &n, Some(h)), hour);
        // Instant queries use raw, unless raw no longer reaches back far enough.
        assert_eq!(choose_tier(&tiers(None), &n, None), Tier::Raw);
        assert_eq!(choose_tier(&tiers(Some(t0)), &n, None), five);
        // Functions rollups cannot answer stay on raw.
        let n = needs("quantile_over_time(0.5, x[1h])", t0, t0 + day, Some(h));
        assert!(n.prefers_raw);
        assert_eq!(choose_tier(&tiers(None), &n, Some(h)), Tier::Raw);
        // Subquery steps count as windows.
        let n = needs("max_over_time(x[1h:1m])", t0, t0 + day, Some(h));
        assert_eq!(n.min_window_ms, Some(60_000));
        assert_eq!(choose_tier(&tiers(None), &n, Some(h)), Tier::Raw);
    }
}

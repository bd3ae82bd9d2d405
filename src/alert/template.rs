//! The subset of Go's `text/template` that Prometheus alert rules use in labels and
//! annotations: `{{ $labels.device }}`, `{{ $value }}`, `{{ .Labels.x }}`, `{{ .Value }}`,
//! pipelines into `humanize`, `humanize1024`, `humanizePercentage`, `humanizeDuration`,
//! `printf`, `toUpper`, `toLower`, `title`, and `{{ index $labels "name" }}`.
//!
//! Templates are parsed when the config is loaded, so a typo is a config error with file and
//! line; expanding a parsed template cannot fail (a missing label expands to `<no value>`, as
//! in Go).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A template that failed to parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(pub String);

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Action(Vec<Command>),
}

/// One stage of a pipeline: a function applied to arguments, or a bare operand.
#[derive(Debug, Clone, PartialEq)]
enum Command {
    Operand(Operand),
    Call(Func, Vec<Operand>),
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Value,
    Labels,
    Label(String),
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Func {
    Humanize,
    Humanize1024,
    HumanizePercentage,
    HumanizeDuration,
    Printf,
    ToUpper,
    ToLower,
    Title,
    Index,
}

impl Func {
    fn by_name(name: &str) -> Option<Func> {
        Some(match name {
            "humanize" => Func::Humanize,
            "humanize1024" => Func::Humanize1024,
            "humanizePercentage" => Func::HumanizePercentage,
            "humanizeDuration" => Func::HumanizeDuration,
            "printf" => Func::Printf,
            "toUpper" => Func::ToUpper,
            "toLower" => Func::ToLower,
            "title" => Func::Title,
            "index" => Func::Index,
            _ => return None,
        })
    }
}

/// What a template sees.
#[derive(Debug, Clone, Copy)]
pub struct Data<'a> {
    /// The alert's labels.
    pub labels: &'a BTreeMap<String, String>,
    /// The expression's value.
    pub value: f64,
}

/// A value during expansion.
#[derive(Debug, Clone)]
enum Val {
    Num(f64),
    Str(String),
    Map,
}

impl Val {
    fn render(&self, data: &Data<'_>) -> String {
        match self {
            Val::Num(v) => format_go_float(*v),
            Val::Str(s) => s.clone(),
            Val::Map => {
                let inner: Vec<String> = data
                    .labels
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect();
                format!("map[{}]", inner.join(" "))
            }
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Num(v) => Some(*v),
            Val::Str(s) => s.trim().parse().ok(),
            Val::Map => None,
        }
    }
}

impl Template {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let after = &rest[start + 2..];
            let end = after
                .find("}}")
                .ok_or_else(|| TemplateError(format!("unclosed action `{{{{` in {text:?}")))?;
            let mut inner = &after[..end];
            // `{{- x -}}` trims surrounding whitespace in Go.
            let trim_left = inner.starts_with('-');
            let trim_right = inner.ends_with('-') && inner.len() > 1;
            if trim_left {
                inner = &inner[1..];
                if let Some(Part::Text(t)) = parts.last_mut() {
                    *t = t.trim_end().to_owned();
                }
            }
            if trim_right {
                inner = &inner[..inner.len() - 1];
            }
            parts.push(Part::Action(parse_pipeline(inner.trim())?));
            rest = &after[end + 2..];
            if trim_right {
                rest = rest.trim_start();
            }
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Template { parts })
    }

    /// Expands the template.
    pub fn expand(&self, data: &Data<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Action(pipeline) => out.push_str(&run_pipeline(pipeline, data).render(data)),
            }
        }
        out
    }

    /// True if the template has no actions (its expansion is its text).
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Text(_)))
    }
}

fn parse_pipeline(text: &str) -> Result<Vec<Command>, TemplateError> {
    if text.is_empty() {
        return Err(TemplateError("empty action `{{ }}`".into()));
    }
    let first = text.split_whitespace().next().unwrap_or_default();
    if matches!(
        first,
        "if" | "else" | "end" | "range" | "with" | "define" | "template" | "block"
    ) {
        return Err(TemplateError(format!(
            "`{{{{ {first} }}}}` is not supported in automon templates; use $labels, $value and \
             the humanize/printf functions"
        )));
    }
    let mut commands = Vec::new();
    for (i, stage) in split_pipes(text)?.into_iter().enumerate() {
        let words = tokenize(&stage)?;
        let Some((head, args)) = words.split_first() else {
            return Err(TemplateError(format!("empty pipeline stage in `{text}`")));
        };
        let command = match head {
            Token::Word(w) if !w.starts_with('$') && !w.starts_with('.') => {
                let func = Func::by_name(w).ok_or_else(|| {
                    TemplateError(format!(
                        "unknown function {w:?} (known: humanize, humanize1024, \
                         humanizePercentage, humanizeDuration, printf, toUpper, toLower, title, \
                         index)"
                    ))
                })?;
                let args = args.iter().map(operand).collect::<Result<Vec<_>, _>>()?;
                check_arity(func, args.len() + usize::from(i > 0), w)?;
                Command::Call(func, args)
            }
            _ => {
                if i > 0 || !args.is_empty() {
                    return Err(TemplateError(format!(
                        "unexpected operand in `{stage}`: only a function can take arguments"
                    )));
                }
                Command::Operand(operand(head)?)
            }
        };
        commands.push(command);
    }
    Ok(commands)
}

fn check_arity(func: Func, n: usize, name: &str) -> Result<(), TemplateError> {
    let ok = match func {
        Func::Printf => n >= 1,
        Func::Index => n == 2,
        _ => n == 1,
    };
    if ok {
        Ok(())
    } else {
        Err(TemplateError(format!(
            "wrong number of arguments for {name}: {n}"
        )))
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
}

/// Splits on `|` outside string literals.
fn split_pipes(text: &str) -> Result<Vec<String>, TemplateError> {
    let mut out = vec![String::new()];
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        let cur = out
            .last_mut()
            .ok_or_else(|| TemplateError("internal".into()))?;
        match quote {
            Some(q) => {
                cur.push(c);
                if escaped {
                    escaped = false;
                } else if c == '\\' && q == '"' {
                    escaped = true;
                } else if c == q {
                    quote = None;
                }
            }
            None if c == '|' => out.push(String::new()),
            None => {
                if c == '"' || c == '`' {
                    quote = Some(c);
                }
                cur.push(c);
            }
        }
    }
    if quote.is_some() {
        return Err(TemplateError(format!("unterminated string in `{text}`")));
    }
    Ok(out.into_iter().map(|s| s.trim().to_owned()).collect())
}

fn tokenize(stage: &str) -> Result<Vec<Token>, TemplateError> {
    let mut out = Vec::new();
    let mut chars = stage.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' || c == '`' {
            chars.next();
            let mut s = String::new();
            let mut closed = false;
            while let Some(d) = chars.next() {
                if d == c {
                    closed = true;
                    break;
                }
                if d == '\\' && c == '"' {
                    match chars.next() {
                        Some('n') => s.push('\n'),
                        Some('t') => s.push('\t'),
                        Some(e) => s.push(e),
                        None => break,
                    }
                } else {
                    s.push(d);
                }
            }
            if !closed {
                return Err(TemplateError(format!("unterminated string in `{stage}`")));
            }
            out.push(Token::Str(s));
        } else if c == '(' || c == ')' {
            return Err(TemplateError(format!(
                "parentheses are not supported in `{stage}`; use a pipeline: `{{{{ $value | humanize }}}}`"
            )));
        } else {
            let mut w = String::new();
            while let Some(&d) = chars.peek() {
                if d.is_whitespace() {
                    break;
                }
                w.push(d);
                chars.next();
            }
            out.push(Token::Word(w));
        }
    }
    Ok(out)
}

fn operand(token: &Token) -> Result<Operand, TemplateError> {
    let w = match token {
        Token::Str(s) => return Ok(Operand::Str(s.clone())),
        Token::Word(w) => w.as_str(),
    };
    match w {
        "$value" | ".Value" => return Ok(Operand::Value),
        "$labels" | ".Labels" => return Ok(Operand::Labels),
        _ => {}
    }
    for prefix in ["$labels.", ".Labels."] {
        if let Some(name) = w.strip_prefix(prefix) {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(TemplateError(format!("invalid label reference {w:?}")));
            }
            return Ok(Operand::Label(name.to_owned()));
        }
    }
    if let Ok(n) = w.parse::<f64>() {
        return Ok(Operand::Num(n));
    }
    if w.starts_with('$') || w.starts_with('.') {
        return Err(TemplateError(format!(
            "undefined variable {w:?} (available: $labels, $value, .Labels, .Value)"
        )));
    }
    Err(TemplateError(format!("unexpected {w:?}")))
}

fn eval_operand(op: &Operand, data: &Data<'_>) -> Val {
    match op {
        Operand::Value => Val::Num(data.value),
        Operand::Labels => Val::Map,
        Operand::Label(name) => Val::Str(
            data.labels
                .get(name)
                .cloned()
                .unwrap_or_else(|| "<no value>".into()),
        ),
        Operand::Str(s) => Val::Str(s.clone()),
        Operand::Num(n) => Val::Num(*n),
    }
}

fn run_pipeline(pipeline: &[Command], data: &Data<'_>) -> Val {
    let mut piped: Option<Val> = None;
    for command in pipeline {
        let value = match command {
            Command::Operand(op) => eval_operand(op, data),
            Command::Call(func, args) => {
                let mut vals: Vec<Val> = args.iter().map(|a| eval_operand(a, data)).collect();
                // Go appends the piped value as the last argument.
                vals.extend(piped.take());
                call(*func, &vals, data)
            }
        };
        piped = Some(value);
    }
    piped.unwrap_or(Val::Str(String::new()))
}

fn call(func: Func, args: &[Val], data: &Data<'_>) -> Val {
    let num = |i: usize| args.get(i).and_then(Val::as_f64);
    let text = |i: usize| args.get(i).map(|v| v.render(data)).unwrap_or_default();
    let bad = |what: &str| Val::Str(format!("<error: {what}>"));
    match func {
        Func::Humanize => {
            num(0).map_or_else(|| bad("humanize needs a number"), |v| Val::Str(humanize(v)))
        }
        Func::Humanize1024 => num(0).map_or_else(
            || bad("humanize1024 needs a number"),
            |v| Val::Str(humanize_1024(v)),
        ),
        Func::HumanizePercentage => num(0).map_or_else(
            || bad("humanizePercentage needs a number"),
            |v| Val::Str(format!("{}%", format_g(v * 100.0, 4))),
        ),
        Func::HumanizeDuration => num(0).map_or_else(
            || bad("humanizeDuration needs a number"),
            |v| Val::Str(humanize_duration(v)),
        ),
        Func::ToUpper => Val::Str(text(0).to_uppercase()),
        Func::ToLower => Val::Str(text(0).to_lowercase()),
        Func::Title => Val::Str(title(&text(0))),
        Func::Index => match (&args.first(), args.get(1)) {
            (Some(Val::Map), Some(key)) => {
                let key = key.render(data);
                Val::Str(data.labels.get(&key).cloned().unwrap_or_default())
            }
            _ => bad("index needs $labels and a name"),
        },
        Func::Printf => {
            let format = text(0);
            Val::Str(sprintf(&format, &args[1.min(args.len())..], data))
        }
    }
}

fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

/// Go's `%.{prec}g`: `prec` significant digits, trailing zeros dropped, exponent form for
/// very large or small magnitudes.
pub fn format_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if v == 0.0 {
        return "0".into();
    }
    let prec = prec.max(1);
    let sci = format!("{:.*e}", prec - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_owned()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Go's `%v`/`%g` of a float64 (shortest representation).
fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e21).contains(&abs) {
        let s = format!("{v:e}");
        match s.split_once('e') {
            Some((m, e)) => {
                let e: i32 = e.parse().unwrap_or(0);
                let sign = if e < 0 { '-' } else { '+' };
                format!("{m}e{sign}{:02}", e.abs())
            }
            None => s,
        }
    } else {
        format!("{v}")
    }
}

/// Prometheus' `humanize`: SI prefixes, 4 significant digits.
pub fn humanize(v: f64) -> String {
    if v == 0.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    if v.abs() >= 1.0 {
        let prefixes = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"];
        let mut v = v;
        let mut i = 0;
        while v.abs() >= 1000.0 && i < prefixes.len() - 1 {
            v /= 1000.0;
            i += 1;
        }
        format!("{}{}", format_g(v, 4), prefixes[i])
    } else {
        let prefixes = ["", "m", "u", "n", "p", "f", "a", "z", "y"];
        let mut v = v;
        let mut i = 0;
        while v.abs() < 1.0 && i < prefixes.len() - 1 {
            v *= 1000.0;
            i += 1;
        }
        format!("{}{}", format_g(v, 4), prefixes[i])
    }
}

/// Prometheus' `humanize1024`: binary prefixes for values of at least 1.
pub fn humanize_1024(v: f64) -> String {
    if v.abs() <= 1.0 || v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    let prefixes = ["", "ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
    let mut v = v;
    let mut i = 0;
    while v.abs() >= 1024.0 && i < prefixes.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", format_g(v, 4), prefixes[i])
}

/// Prometheus' `humanizeDuration`: `1d 2h 3m 4s`, or ms/us/ns below a second.
pub fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return format_g(v, 4);
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let days = (v / 86_400.0) as i64;
        let hours = (v / 3600.0) as i64 % 24;
        let minutes = (v / 60.0) as i64 % 60;
        let seconds = v % 60.0;
        let mut out = String::from(sign);
        if days != 0 {
            let _ = write!(out, "{days}d ");
        }
        if hours != 0 {
            let _ = write!(out, "{hours}h ");
        }
        if minutes != 0 {
            let _ = write!(out, "{minutes}m ");
        }
        let _ = write!(out, "{}s", format_g(seconds, 4));
        return out;
    }
    let mut v = v;
    for unit in ["", "m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 || unit == "y" {
            return format!("{}{unit}s", format_g(v, 4));
        }
        v *= 1000.0;
    }
    format_g(v, 4)
}

/// A small `printf`: `%s %v %d %f %.Nf %g %.Ng %e %q %%`.
fn sprintf(format: &str, args: &[Val], data: &Data<'_>) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            precision = digits.parse().ok();
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.next() else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        let n = arg.as_f64();
        match (verb, n) {
            ('d', Some(v)) => {
                let _ = write!(out, "{}", v.trunc() as i64);
            }
            ('f', Some(v)) => {
                let p = precision.unwrap_or(6);
                let _ = write!(out, "{v:.p$}");
            }
            ('e', Some(v)) => {
                let p = precision.unwrap_or(6);
                let s = format!("{v:.p$e}");
                let s = match s.split_once('e') {
                    Some((m, e)) => {
                        let e: i32 = e.parse().unwrap_or(0);
                        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
                    }
                    None => s,
                };
                out.push_str(&s);
            }
            ('g', Some(v)) => match precision {
                Some(p) => out.push_str(&format_g(v, p)),
                None => out.push_str(&format_go_float(v)),
            },
            ('q', _) => {
                let _ = write!(out, "{:?}", arg.render(data));
            }
            ('s' | 'v', _) => out.push_str(&arg.render(data)),
            (v, _) => {
                let _ = write!(out, "%!{v}({})", arg.render(data));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(t: &str, labels: &[(&str, &str)], value: f64) -> String {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Template::parse(t).expect("parses").expand(&Data {
            labels: &labels,
            value,
        })
    }

    #[test]
    fn labels_and_value() {
        assert_eq!(
            expand(
                "{{ $labels.device }} at {{ $value }}",
                &[("device", "sda")],
                0.5
            ),
            "sda at 0.5"
        );
        assert_eq!(
            expand("{{ .Labels.x }}/{{ .Value }}", &[("x", "y")], 3.0),
            "y/3"
        );
        assert_eq!(expand("{{ $labels.missing }}", &[], 1.0), "<no value>");
        assert_eq!(expand("{{ index $labels \"a\" }}", &[("a", "b")], 1.0), "b");
        assert_eq!(expand("no actions", &[], 1.0), "no actions");
        assert_eq!(expand("a {{- $value -}} b", &[], 2.0), "a2b");
    }

    #[test]
    fn humanize_functions_match_prometheus() {
        // Expected strings from Prometheus' template tests (template/template_test.go).
        assert_eq!(expand("{{ $value | humanize }}", &[], 0.0), "0");
        assert_eq!(expand("{{ $value | humanize }}", &[], 1234567.0), "1.235M");
        assert_eq!(expand("{{ $value | humanize }}", &[], 12.5), "12.5");
        assert_eq!(expand("{{ $value | humanize }}", &[], 0.0012), "1.2m");
        assert_eq!(expand("{{ humanize $value }}", &[], 1e-7), "100n");
        assert_eq!(expand("{{ $value | humanize1024 }}", &[], 1048576.0), "1Mi");
        assert_eq!(expand("{{ $value | humanize1024 }}", &[], 1.0), "1");
        assert_eq!(
            expand("{{ $value | humanizePercentage }}", &[], 0.1234567),
            "12.35%"
        );
        assert_eq!(
            expand("{{ $value | humanizeDuration }}", &[], 90061.0),
            "1d 1h 1m 1s"
        );
        assert_eq!(
            expand("{{ $value | humanizeDuration }}", &[], 60.0),
            "1m 0s"
        );
        assert_eq!(expand("{{ $value | humanizeDuration }}", &[], 0.1), "100ms");
        assert_eq!(
            expand("{{ $value | humanize }}", &[], f64::INFINITY),
            "+Inf"
        );
    }

    #[test]
    fn printf_and_string_functions() {
        assert_eq!(expand("{{ printf \"%.2f\" $value }}", &[], 1.23456), "1.23");
        assert_eq!(
            expand("{{ $value | printf \"%.1f%%\" }}", &[], 93.25),
            "93.2%"
        );
        assert_eq!(expand("{{ printf \"%d\" $value }}", &[], 7.9), "7");
        assert_eq!(
            expand(
                "{{ printf \"%s on %s\" $labels.a $labels.b }}",
                &[("a", "x"), ("b", "y")],
                0.0
            ),
            "x on y"
        );
        assert_eq!(
            expand("{{ $labels.a | toUpper }}", &[("a", "sda")], 0.0),
            "SDA"
        );
        assert_eq!(
            expand("{{ title \"hello world\" }}", &[], 0.0),
            "Hello World"
        );
    }

    #[test]
    fn parse_errors_are_clear() {
        let err = |t: &str| Template::parse(t).expect_err(t).0;
        assert!(err("{{ $labels.device ").contains("unclosed"));
        assert!(err("{{ $lables.device }}").contains("undefined variable"));
        assert!(err("{{ $value | humanise }}").contains("unknown function \"humanise\""));
        assert!(err("{{ if $value }}x{{ end }}").contains("not supported"));
        assert!(err("{{ }}").contains("empty"));
        assert!(err("{{ printf \"%s }}").contains("unterminated"));
        assert!(err("{{ humanize }}").contains("wrong number of arguments"));
    }

    #[test]
    fn format_g_matches_go() {
        assert_eq!(format_g(1234567.0, 4), "1.235e+06");
        assert_eq!(format_g(0.00001234, 4), "1.234e-05");
        assert_eq!(format_g(123.456, 4), "123.5");
        assert_eq!(format_g(1.0, 4), "1");
        assert_eq!(format_g(999.96, 4), "1000");
    }
}

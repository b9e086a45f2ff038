//! The sweep grid: sparsity specifications (`0:0.9:0.1`, `0.5,0.7`, or both mixed), N:M pattern
//! lists and `METHOD:SCOPE` combinations.

use crate::error::{ReportError, Result};

/// Rounds to 6 decimals, so that `0.1 * 3` is stored as `0.3`.
pub fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// Parses a sparsity specification: comma-separated items, each a value (`0.5`) or a range
/// `start:stop:step` with `stop` included when it lies on the grid. Values are rounded to 6
/// decimals, sorted and deduplicated. `0` is allowed (it is the dense model, which a sweep
/// always evaluates once).
///
/// # Errors
/// [`ReportError::BadOption`] for a malformed number, a step that is not positive, a range
/// that runs backwards, more than 1000 values, or a value outside `[0, 1)`.
pub fn parse_sparsities(spec: &str) -> Result<Vec<f64>> {
    let bad = |reason: String| ReportError::BadOption {
        option: "--sparsity",
        reason,
    };
    let num = |s: &str| -> Result<f64> {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| bad(format!("'{}' is not a number", s.trim())))?;
        if !v.is_finite() {
            return Err(bad(format!("'{}' is not a finite number", s.trim())));
        }
        Ok(v)
    };
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parts: Vec<&str> = item.split(':').collect();
        match parts.len() {
            1 => out.push(round6(num(parts[0])?)),
            3 => {
                let (start, stop, step) = (num(parts[0])?, num(parts[1])?, num(parts[2])?);
                if step <= 0.0 {
                    return Err(bad(format!("'{item}': the step must be positive")));
                }
                if stop < start {
                    return Err(bad(format!("'{item}': stop is below start")));
                }
                let n = ((stop - start) / step + 1e-9).floor() as usize;
                if n > 1000 {
                    return Err(bad(format!("'{item}': more than 1000 values")));
                }
                for i in 0..=n {
                    out.push(round6(start + step * i as f64));
                }
            }
            _ => {
                return Err(bad(format!(
                    "'{item}' is neither a value (0.5) nor a range start:stop:step (0.1:0.9:0.1)"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(bad("no sparsity given".into()));
    }
    for &v in &out {
        if !(0.0..1.0).contains(&v) {
            return Err(bad(format!("{v} is outside [0, 1)")));
        }
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    Ok(out)
}

/// Parses a comma-separated list of N:M patterns (`2:4,4:8`), each with `0 < N < M`.
///
/// # Errors
/// [`ReportError::BadOption`] naming the malformed pattern.
pub fn parse_patterns(spec: &str) -> Result<Vec<(usize, usize)>> {
    let mut out = Vec::new();
    for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let bad = || ReportError::BadOption {
            option: "--patterns",
            reason: format!("'{item}' is not N:M with 0 < N < M (e.g. 2:4)"),
        };
        let (n, m) = item.split_once(':').ok_or_else(bad)?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        let m: usize = m.trim().parse().map_err(|_| bad())?;
        if n == 0 || n >= m {
            return Err(bad());
        }
        if !out.contains(&(n, m)) {
            out.push((n, m));
        }
    }
    Ok(out)
}

/// The methods a sweep accepts.
pub const METHODS: [&str; 3] = ["magnitude", "wanda", "sparsegpt"];
/// The scopes a sweep accepts.
pub const SCOPES: [&str; 3] = ["all", "attention", "mlp"];

fn check_name(option: &'static str, valid: &[&str], s: &str) -> Result<String> {
    let t = s.trim().to_ascii_lowercase();
    let t = if t == "attn" { "attention".into() } else { t };
    if valid.contains(&t.as_str()) {
        Ok(t)
    } else {
        Err(ReportError::BadOption {
            option,
            reason: format!("'{s}' is not one of {}", valid.join(", ")),
        })
    }
}

/// The `(method, scope)` combinations to sweep: `combos` (`wanda:all,sparsegpt:all`) when given,
/// else every method of `methods` with every scope of `scopes`. Order is kept, duplicates
/// dropped.
///
/// # Errors
/// [`ReportError::BadOption`] naming an unknown method or scope, or an empty list.
pub fn parse_combos(
    methods: &str,
    scopes: &str,
    combos: Option<&str>,
) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |m: String, s: String| {
        if !out.iter().any(|(a, b)| *a == m && *b == s) {
            out.push((m, s));
        }
    };
    if let Some(c) = combos {
        for item in c.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (m, s) = item.split_once(':').ok_or_else(|| ReportError::BadOption {
                option: "--combos",
                reason: format!("'{item}' is not METHOD:SCOPE (e.g. wanda:mlp)"),
            })?;
            push(
                check_name("--combos", &METHODS, m)?,
                check_name("--combos", &SCOPES, s)?,
            );
        }
    } else {
        let ms: Vec<String> = methods
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|m| check_name("--methods", &METHODS, m))
            .collect::<Result<_>>()?;
        let ss: Vec<String> = scopes
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| check_name("--scopes", &SCOPES, s))
            .collect::<Result<_>>()?;
        for m in &ms {
            for s in &ss {
                push(m.clone(), s.clone());
            }
        }
    }
    if out.is_empty() {
        return Err(ReportError::BadOption {
            option: "--methods",
            reason: "no method/scope combination to sweep".into(),
        });
    }
    Ok(out)
}

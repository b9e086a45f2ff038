//! Which linear layers are pruned, and to which ratio (seed 000's "prune only attention or only
//! MLP"): a role (all / attention / MLP), a range of decoder layers, a set of module types, and
//! optionally one ratio per layer read from a file (non-uniform sparsity such as OWL's).
//! Embeddings, norms and the LM head are never pruned: they are not in any decoder layer's
//! list of linear layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use secateurs_model::arch::{LinearKind, Role};
use serde::Serialize;

use crate::error::{PruneError, Result};
use crate::pattern::Pattern;

/// Attention, MLP or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleFilter {
    /// Every linear layer of a decoder layer.
    All,
    /// q, k, v, o only.
    Attention,
    /// gate, up, down only.
    Mlp,
}

impl std::str::FromStr for RoleFilter {
    type Err = PruneError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "all" => Ok(RoleFilter::All),
            "attention" | "attn" => Ok(RoleFilter::Attention),
            "mlp" => Ok(RoleFilter::Mlp),
            _ => Err(PruneError::BadOption {
                option: "--scope".into(),
                reason: format!("'{s}' is not one of all, attention, mlp"),
            }),
        }
    }
}

/// The set of (layer, linear) pairs to prune and the ratio for each layer.
#[derive(Debug, Clone, Serialize)]
pub struct Scope {
    /// Role filter.
    pub role: RoleFilter,
    /// Decoder layers `[start, end)`; `None` = all.
    pub layers: Option<(usize, usize)>,
    /// Module types; `None` = all of the role.
    pub kinds: Option<BTreeSet<LinearKind>>,
    /// Per-layer unstructured ratios overriding the pattern's (from `--ratios FILE`).
    pub layer_ratios: Option<BTreeMap<usize, f64>>,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            role: RoleFilter::All,
            layers: None,
            kinds: None,
            layer_ratios: None,
        }
    }
}

impl Scope {
    /// Whether linear `kind` of decoder layer `layer` is pruned.
    pub fn includes(&self, layer: usize, kind: LinearKind) -> bool {
        let role_ok = match self.role {
            RoleFilter::All => true,
            RoleFilter::Attention => kind.role() == Role::Attention,
            RoleFilter::Mlp => kind.role() == Role::Mlp,
        };
        let layer_ok = self.layers.is_none_or(|(a, b)| layer >= a && layer < b);
        let kind_ok = self.kinds.as_ref().is_none_or(|k| k.contains(&kind));
        role_ok && layer_ok && kind_ok
    }

    /// The pattern for decoder layer `layer`: the per-layer ratio if one is set, else `base`.
    pub fn pattern_for(&self, layer: usize, base: &Pattern) -> Pattern {
        match (&self.layer_ratios, base) {
            (Some(r), Pattern::Unstructured { .. }) => match r.get(&layer) {
                Some(&ratio) => Pattern::Unstructured { ratio },
                None => *base,
            },
            _ => *base,
        }
    }

    /// Parses `--layers` as `A..B` (end exclusive), `A..`, `..B` or a single `A`.
    ///
    /// # Errors
    /// Malformed text or an empty range.
    pub fn parse_layers(s: &str) -> Result<(usize, usize)> {
        let bad = |reason: &str| PruneError::BadOption {
            option: "--layers".into(),
            reason: format!("'{s}': {reason} (expected A..B, A.., ..B or A)"),
        };
        let num = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| bad("not a layer number"))
        };
        let (a, b) = match s.split_once("..") {
            Some((a, b)) => (
                if a.trim().is_empty() { 0 } else { num(a)? },
                if b.trim().is_empty() {
                    usize::MAX
                } else {
                    num(b)?
                },
            ),
            None => {
                let a = num(s)?;
                (a, a + 1)
            }
        };
        if a >= b {
            return Err(bad("empty range"));
        }
        Ok((a, b))
    }

    /// Parses `--modules q,k,v,o,gate,up,down`.
    ///
    /// # Errors
    /// An unknown module name.
    pub fn parse_kinds(s: &str) -> Result<BTreeSet<LinearKind>> {
        s.split(',')
            .map(|t| {
                let t = t.trim();
                LinearKind::ALL
                    .into_iter()
                    .find(|k| k.name() == t)
                    .ok_or_else(|| PruneError::BadOption {
                        option: "--modules".into(),
                        reason: format!("'{t}' is not one of q, k, v, o, gate, up, down"),
                    })
            })
            .collect()
    }

    /// Reads per-layer ratios from a JSON file: either a list (`[0.4, 0.5, ...]`, one per layer)
    /// or an object (`{"0": 0.4, "7": 0.6}`); every ratio must lie in [0, 1).
    ///
    /// # Errors
    /// I/O errors, invalid JSON, or a ratio out of range (naming the file and the layer).
    pub fn read_layer_ratios(path: &Path) -> Result<BTreeMap<usize, f64>> {
        let text = std::fs::read_to_string(path).map_err(|source| PruneError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let bad = |reason: String| PruneError::BadOption {
            option: path.display().to_string(),
            reason,
        };
        let v: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("invalid JSON: {e}")))?;
        let entries: Vec<(usize, &serde_json::Value)> = match &v {
            serde_json::Value::Array(a) => a.iter().enumerate().collect(),
            serde_json::Value::Object(o) => o
                .iter()
                .map(|(k, v)| {
                    k.parse::<usize>()
                        .map(|k| (k, v))
                        .map_err(|_| bad(format!("key '{k}' is not a layer number")))
                })
                .collect::<Result<_>>()?,
            _ => return Err(bad("expected a list or an object of ratios".into())),
        };
        entries
            .into_iter()
            .map(|(layer, v)| match v.as_f64() {
                Some(r) if (0.0..1.0).contains(&r) => Ok((layer, r)),
                _ => Err(bad(format!("layer {layer}: ratio {v} is outside [0, 1)"))),
            })
            .collect()
    }

    /// A short human description (`all layers, attention`, ...).
    pub fn describe(&self) -> String {
        let role = match self.role {
            RoleFilter::All => "attention+mlp",
            RoleFilter::Attention => "attention",
            RoleFilter::Mlp => "mlp",
        };
        let layers = match self.layers {
            None => "all layers".to_string(),
            Some((a, usize::MAX)) => format!("layers {a}.."),
            Some((a, b)) => format!("layers {a}..{b}"),
        };
        let kinds = self
            .kinds
            .as_ref()
            .map(|k| {
                format!(
                    ", modules {}",
                    k.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
                )
            })
            .unwrap_or_default();
        format!("{layers}, {role}{kinds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_layers_and_kinds_filter() {
        let s = Scope {
            role: RoleFilter::Mlp,
            layers: Some((2, 4)),
            ..Scope::default()
        };
        assert!(s.includes(2, LinearKind::Down));
        assert!(!s.includes(2, LinearKind::Q));
        assert!(!s.includes(4, LinearKind::Up));
        let s = Scope {
            kinds: Some(Scope::parse_kinds("q,down").unwrap()),
            ..Scope::default()
        };
        assert!(s.includes(0, LinearKind::Q) && s.includes(9, LinearKind::Down));
        assert!(!s.includes(0, LinearKind::K));
    }

    #[test]
    fn parse_layers_forms() {
        assert_eq!(Scope::parse_layers("0..12").unwrap(), (0, 12));
        assert_eq!(Scope::parse_layers("3").unwrap(), (3, 4));
        assert_eq!(Scope::parse_layers("..5").unwrap(), (0, 5));
        assert_eq!(Scope::parse_layers("7..").unwrap(), (7, usize::MAX));
        assert!(Scope::parse_layers("5..5").is_err());
        assert!(Scope::parse_layers("x").is_err());
        assert!(Scope::parse_kinds("q,mlp").is_err());
    }

    #[test]
    fn layer_ratio_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.json");
        std::fs::write(&p, "[0.1, 0.2]").unwrap();
        let r = Scope::read_layer_ratios(&p).unwrap();
        assert_eq!(r[&1], 0.2);
        std::fs::write(&p, r#"{"3": 0.7}"#).unwrap();
        let s = Scope {
            layer_ratios: Some(Scope::read_layer_ratios(&p).unwrap()),
            ..Scope::default()
        };
        let base = Pattern::Unstructured { ratio: 0.5 };
        assert_eq!(
            s.pattern_for(3, &base),
            Pattern::Unstructured { ratio: 0.7 }
        );
        assert_eq!(s.pattern_for(0, &base), base);
        std::fs::write(&p, "[1.0]").unwrap();
        assert!(Scope::read_layer_ratios(&p).is_err());
    }
}

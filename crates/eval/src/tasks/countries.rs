//! The world-countries table (npm `world-countries` 5.1.0, `countries.json`, ODbL 1.0): the
//! facts behind the closed-book, open-book and multiple-choice country tasks, with the aliases
//! accepted as answers.

use secateurs_data::cache::read_fetched;
use secateurs_data::{Cache, DataError};
use serde::Deserialize;

use crate::error::EvalError;

#[derive(Deserialize)]
struct RawName {
    common: String,
    official: String,
}

#[derive(Deserialize)]
struct RawCurrency {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawCountry {
    name: RawName,
    #[serde(default)]
    un_member: bool,
    #[serde(default)]
    capital: Vec<String>,
    #[serde(default)]
    currencies: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    alt_spellings: Vec<String>,
    #[serde(default)]
    region: String,
    #[serde(default)]
    subregion: String,
}

/// A currency: ISO 4217 code and English name.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Currency {
    /// ISO code (`JPY`).
    pub code: String,
    /// Name (`Japanese yen`).
    pub name: String,
}

/// One country with the fields the tasks use.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Country {
    /// Common English name (`France`), used in prompts.
    pub name: String,
    /// Official name and alternative spellings (aliases of the country itself).
    pub aliases: Vec<String>,
    /// UN member state.
    pub un_member: bool,
    /// Capitals (several for e.g. South Africa).
    pub capitals: Vec<String>,
    /// Currencies in use.
    pub currencies: Vec<Currency>,
    /// Region (`Europe`, `Americas`, ...).
    pub region: String,
    /// Subregion (`Western Europe`, `South America`, ...).
    pub subregion: String,
}

impl Country {
    /// Accepted answers for "capital of": every listed capital.
    pub fn capital_answers(&self) -> Vec<String> {
        self.capitals.clone()
    }

    /// Accepted answers for "currency of": each currency's full name, every word suffix of it
    /// (`United States dollar` → `States dollar`, `dollar`), and its ISO code.
    pub fn currency_answers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.currencies {
            let words: Vec<&str> = c.name.split_whitespace().collect();
            for i in 0..words.len() {
                push_unique(&mut out, words[i..].join(" "));
            }
            push_unique(&mut out, c.code.clone());
        }
        out
    }

    /// Accepted answers for "region of": the region and the subregion, plus `America` for the
    /// Americas and `North America` for its Central American and Caribbean subregions.
    pub fn region_answers(&self) -> Vec<String> {
        let mut out = vec![self.region.clone()];
        if !self.subregion.is_empty() {
            push_unique(&mut out, self.subregion.clone());
        }
        if self.region == "Americas" {
            push_unique(&mut out, "America".into());
            if matches!(
                self.subregion.as_str(),
                "Central America" | "Caribbean" | "North America"
            ) {
                push_unique(&mut out, "North America".into());
            }
        }
        out
    }

    /// The name of the first currency (for templated passages).
    pub fn main_currency(&self) -> Option<&str> {
        self.currencies.first().map(|c| c.name.as_str())
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !s.is_empty() && !v.contains(&s) {
        v.push(s);
    }
}

/// Reads `countries.json` in file order.
///
/// # Errors
/// [`DataError::NotFetched`] (run `secateurs fetch`) or a parse error naming the file.
pub(crate) fn load(cache: &Cache) -> Result<Vec<Country>, EvalError> {
    let path = cache.countries_json();
    let text = read_fetched("world-countries countries.json", &path)?;
    let raw: Vec<RawCountry> =
        serde_json::from_str(&text).map_err(|err| DataError::Json { path, err })?;
    Ok(raw
        .into_iter()
        .map(|r| {
            let mut aliases = Vec::new();
            push_unique(&mut aliases, r.name.official.trim().to_string());
            for a in r.alt_spellings {
                push_unique(&mut aliases, a.trim().to_string());
            }
            Country {
                name: r.name.common.trim().to_string(),
                aliases,
                un_member: r.un_member,
                capitals: r
                    .capital
                    .iter()
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
                currencies: r
                    .currencies
                    .iter()
                    .filter_map(|(code, v)| {
                        serde_json::from_value::<RawCurrency>(v.clone())
                            .ok()
                            .map(|c| Currency {
                                code: code.clone(),
                                name: c.name.trim().to_string(),
                            })
                    })
                    .filter(|c| !c.name.is_empty())
                    .collect(),
                region: r.region.trim().to_string(),
                subregion: r.subregion.trim().to_string(),
            }
        })
        .collect())
}

/// The UN member states, in file order.
///
/// # Errors
/// As [`load`]; [`EvalError::BadData`] if the file lists no UN member.
pub(crate) fn un_members(cache: &Cache) -> Result<Vec<Country>, EvalError> {
    let all: Vec<Country> = load(cache)?.into_iter().filter(|c| c.un_member).collect();
    if all.is_empty() {
        return Err(EvalError::BadData {
            path: cache.countries_json(),
            reason: "no entry has unMember: true".into(),
        });
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country() -> Country {
        Country {
            name: "United States".into(),
            aliases: vec![],
            un_member: true,
            capitals: vec!["Washington D.C.".into()],
            currencies: vec![Currency {
                code: "USD".into(),
                name: "United States dollar".into(),
            }],
            region: "Americas".into(),
            subregion: "North America".into(),
        }
    }

    #[test]
    fn aliases() {
        let c = country();
        assert_eq!(
            c.currency_answers(),
            ["United States dollar", "States dollar", "dollar", "USD"]
        );
        assert_eq!(c.region_answers(), ["Americas", "North America", "America"]);
        assert_eq!(c.capital_answers(), ["Washington D.C."]);
    }
}

//! A popularity proxy computed from pinned data: how often a name is mentioned in Wikipedia
//! text. The closed-book tasks keep subjects that are mentioned, so that "fact recall" asks
//! about things a model could plausibly have read about.
//!
//! The text is the Wikipedia paragraphs of SQuAD v1.1 dev and SQuADShifts new_wiki (3,648
//! unique paragraphs, 2.8 M characters; BIG-bench 1.0.0 `squad_shifts`, CC BY-SA 4.0 / CC BY
//! 4.0).

use std::collections::{HashMap, HashSet};

use secateurs_data::squad::{paragraphs, SquadSet};
use secateurs_data::Cache;

use crate::error::EvalError;

/// The Wikipedia paragraphs used to count mentions.
///
/// # Errors
/// The SQuAD files are missing (run `secateurs fetch`) or malformed.
pub(crate) fn wikipedia_paragraphs(cache: &Cache) -> Result<Vec<String>, EvalError> {
    let mut texts = paragraphs(cache, SquadSet::Dev)?;
    texts.extend(paragraphs(cache, SquadSet::NewWiki)?);
    Ok(texts)
}

/// Characters stripped from both ends of a word window before lookup.
fn strip_punct(s: &str) -> &str {
    let s = s.trim_matches(|c: char| "([{\"'“‘«".contains(c) || ")]}\"'”’».,;:!?".contains(c));
    s.strip_suffix("'s")
        .or_else(|| s.strip_suffix("’s"))
        .unwrap_or(s)
}

/// How often each of `subjects` occurs in `texts` as a sequence of whole words (surrounding
/// quotes, brackets, final punctuation and a possessive `'s` are ignored).
pub(crate) fn count_mentions<'a>(
    texts: &[String],
    subjects: impl IntoIterator<Item = &'a str>,
) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut first_words: HashSet<String> = HashSet::new();
    let mut max_words = 1;
    for s in subjects {
        let words: Vec<&str> = s.split_whitespace().collect();
        if words.is_empty() {
            continue;
        }
        max_words = max_words.max(words.len().min(8));
        first_words.insert(strip_punct(words[0]).to_string());
        counts.insert(words.join(" "), 0);
    }
    for text in texts {
        let words: Vec<&str> = text.split_whitespace().collect();
        for i in 0..words.len() {
            if !first_words.contains(strip_punct(words[i])) {
                continue;
            }
            let mut window = String::new();
            for (n, w) in words[i..words.len().min(i + max_words)].iter().enumerate() {
                if n > 0 {
                    window.push(' ');
                }
                window.push_str(w);
                let stripped = strip_punct(&window);
                if let Some(c) = counts.get_mut(stripped) {
                    *c += 1;
                } else if let Some(c) = counts.get_mut(window.as_str()) {
                    *c += 1;
                }
            }
        }
    }
    counts
}

/// The count of `name` in the result of [`count_mentions`] (whitespace-insensitive).
pub(crate) fn mentions(counts: &HashMap<String, usize>, name: &str) -> usize {
    let key = name.split_whitespace().collect::<Vec<_>>().join(" ");
    counts.get(&key).copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_are_whole_words() {
        let texts = vec![
            "Paris is big. In Paris, people (Paris) say \"Paris\". Parisian.".to_string(),
            "The ER show; ERA; Richard Nixon's dog and Richard Nixon.".to_string(),
        ];
        let c = count_mentions(&texts, ["Paris", "ER", "Richard Nixon", "Nixon Paris"]);
        assert_eq!(c["Paris"], 4);
        assert_eq!(c["ER"], 1);
        assert_eq!(c["Richard Nixon"], 2);
        assert_eq!(c["Nixon Paris"], 0);
        assert_eq!(mentions(&c, "Richard  Nixon"), 2);
        assert_eq!(mentions(&c, "Lyon"), 0);
    }
}

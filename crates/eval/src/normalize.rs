//! Answer normalization for generation tasks, and the two generation metrics.
//!
//! [`normalize_answer`] follows the official SQuAD v1.1 evaluation script (Rajpurkar et al. 2016,
//! `normalize_answer`): lowercase, delete punctuation, delete the articles "a", "an", "the",
//! collapse whitespace. One addition: Latin letters with diacritics are folded to their base
//! letter ("Bogotá" → "bogota"), so that an answer written without accents still matches. Both the
//! prediction and the reference go through the same function.
//!
//! * [`exact_match`]: the normalized output equals a normalized reference.
//! * [`contains_answer`]: a normalized reference occurs in the normalized output as a whole-word
//!   sequence ("paris" is in "paris france", "us" is not in "bus").

/// Lowercase, fold diacritics, delete punctuation, drop articles, collapse whitespace.
pub fn normalize_answer(s: &str) -> String {
    let mut cleaned = String::with_capacity(s.len());
    for c in s.chars() {
        for l in c.to_lowercase() {
            match fold_diacritic(l) {
                Some(base) => cleaned.push_str(base),
                None if is_punctuation(l) => {}
                None => cleaned.push(l),
            }
        }
    }
    cleaned
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether the normalized `output` equals one of the normalized `references`.
pub fn exact_match(output: &str, references: &[String]) -> bool {
    let out = normalize_answer(output);
    references.iter().any(|r| normalize_answer(r) == out)
}

/// Whether one of the normalized `references` (non-empty after normalization) occurs in the
/// normalized `output` as a sequence of whole words.
pub fn contains_answer(output: &str, references: &[String]) -> bool {
    let out = format!(" {} ", normalize_answer(output));
    references.iter().any(|r| {
        let r = normalize_answer(r);
        !r.is_empty() && out.contains(&format!(" {r} "))
    })
}

/// Punctuation as Python's `string.punctuation` (ASCII) plus the Unicode punctuation and symbol
/// characters that appear in the data (quotes, dashes, ellipsis, currency signs, ...).
fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '‘' | '’'
                | '‚'
                | '‛'
                | '“'
                | '”'
                | '„'
                | '‟'
                | '«'
                | '»'
                | '‹'
                | '›'
                | '–'
                | '—'
                | '―'
                | '‐'
                | '‑'
                | '…'
                | '·'
                | '•'
                | '¡'
                | '¿'
                | '§'
                | '¶'
                | '°'
                | '′'
                | '″'
                | '£'
                | '€'
                | '¥'
                | '¢'
                | '©'
                | '®'
                | '™'
        )
}

/// The base letters of a lowercase Latin letter with a diacritic, or `None` for any other char.
fn fold_diacritic(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
        'æ' => "ae",
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => "c",
        'ď' | 'đ' | 'ð' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => "e",
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => "g",
        'ĥ' | 'ħ' => "h",
        'ì' | 'í' | 'î' | 'ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => "i",
        'ĵ' => "j",
        'ķ' => "k",
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => "l",
        'ñ' | 'ń' | 'ņ' | 'ň' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => "o",
        'œ' => "oe",
        'ŕ' | 'ŗ' | 'ř' => "r",
        'ś' | 'ŝ' | 'ş' | 'š' | 'ș' => "s",
        'ß' => "ss",
        'ţ' | 'ť' | 'ŧ' | 'ț' => "t",
        'þ' => "th",
        'ù' | 'ú' | 'û' | 'ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => "u",
        'ŵ' => "w",
        'ý' | 'ÿ' | 'ŷ' => "y",
        'ź' | 'ż' | 'ž' => "z",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn squad_normalization() {
        assert_eq!(normalize_answer("The Eiffel Tower!"), "eiffel tower");
        assert_eq!(
            normalize_answer("  a   cat,  AN apple;  the end. "),
            "cat apple end"
        );
        assert_eq!(normalize_answer("Washington, D.C."), "washington dc");
        // Articles only as whole words.
        assert_eq!(normalize_answer("Theatre and anthem"), "theatre and anthem");
        // Punctuation is deleted, not replaced by a space (as in the SQuAD script).
        assert_eq!(normalize_answer("rock-and-roll"), "rockandroll");
        assert_eq!(normalize_answer("“Quoted” — text…"), "quoted text");
        assert_eq!(normalize_answer(""), "");
        assert_eq!(normalize_answer("The"), "");
    }

    #[test]
    fn diacritics_fold() {
        assert_eq!(normalize_answer("Bogotá"), "bogota");
        assert_eq!(normalize_answer("São Tomé"), "sao tome");
        assert_eq!(normalize_answer("Reykjavík"), "reykjavik");
        assert_eq!(normalize_answer("Straße"), "strasse");
        assert_eq!(normalize_answer("ÉCOLE"), "ecole");
    }

    #[test]
    fn exact_match_and_contains() {
        let r = refs(&["Paris"]);
        assert!(exact_match(" Paris.", &r));
        assert!(exact_match("the paris", &r));
        assert!(!exact_match("Paris, France", &r));
        assert!(contains_answer("Paris, France", &r));
        assert!(!contains_answer("Parisian", &r));
        let r = refs(&["US", "United States"]);
        assert!(!contains_answer("a bus", &r));
        assert!(contains_answer("in the United States of America", &r));
        // An empty reference never matches by containment.
        assert!(!contains_answer("anything", &refs(&["the"])));
        assert!(!exact_match("x", &[]));
    }
}

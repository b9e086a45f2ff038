//! SQuAD-format data and the default text sets built from it.
//!
//! * [`eval_text`]: the default perplexity text, the SQuAD v1.1 dev paragraph
//!   contexts (Wikipedia) — 2,067 unique paragraphs, 1,604,656 characters.
//! * [`calibration_text`]: SQuADShifts Reddit + NYT + Amazon contexts,
//!   interleaved round-robin — 6,100 paragraphs, 4,728,157 characters.
//! * [`domain_texts`]: the four SQuADShifts domains separately.
//! * [`squad_examples`]: question/answer records for open-book QA.
//!
//! Contexts are trimmed, de-duplicated within each file (first occurrence
//! wins, file order kept) and joined with a blank line (`"\n\n"`).

use std::collections::HashSet;
use std::path::PathBuf;

use serde::Deserialize;

use crate::cache::{read_fetched, Cache};
use crate::error::DataError;

/// Separator between paragraphs in the text sets.
pub const PARAGRAPH_SEPARATOR: &str = "\n\n";

/// One SQuAD-format file.
#[derive(Debug, Clone, Deserialize)]
pub struct SquadFile {
    /// Articles in file order.
    pub data: Vec<SquadArticle>,
}

/// An article: a title and its paragraphs.
#[derive(Debug, Clone, Deserialize)]
pub struct SquadArticle {
    /// Article title (empty if the file has none).
    #[serde(default)]
    pub title: String,
    /// Paragraphs in file order.
    pub paragraphs: Vec<SquadParagraph>,
}

/// A context paragraph and its questions.
#[derive(Debug, Clone, Deserialize)]
pub struct SquadParagraph {
    /// The passage.
    pub context: String,
    /// Questions about it.
    #[serde(default)]
    pub qas: Vec<SquadQa>,
}

/// A question with its reference answers.
#[derive(Debug, Clone, Deserialize)]
pub struct SquadQa {
    /// Unique id.
    pub id: String,
    /// The question.
    pub question: String,
    /// Reference answers (several annotators; may repeat).
    #[serde(default)]
    pub answers: Vec<SquadAnswer>,
}

/// A reference answer span.
#[derive(Debug, Clone, Deserialize)]
pub struct SquadAnswer {
    /// Answer text.
    pub text: String,
    /// Character offset in the context, if given.
    #[serde(default)]
    pub answer_start: Option<i64>,
}

/// A flattened question record for open-book QA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SquadExample {
    /// Article title.
    pub title: String,
    /// The passage the answer is in.
    pub context: String,
    /// The question.
    pub question: String,
    /// Distinct reference answers, in file order.
    pub answers: Vec<String>,
    /// Question id.
    pub id: String,
}

impl SquadFile {
    /// Parse SQuAD-format JSON text.
    ///
    /// # Errors
    /// The `serde_json` error if the text is not SQuAD-format JSON.
    pub fn parse(json: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(json)
    }

    /// Trimmed, non-empty, unique contexts in file order.
    pub fn contexts(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for p in self.data.iter().flat_map(|a| &a.paragraphs) {
            let c = p.context.trim();
            if !c.is_empty() && seen.insert(c) {
                out.push(c.to_owned());
            }
        }
        out
    }

    /// All questions as flat records, in file order.
    pub fn examples(&self) -> Vec<SquadExample> {
        let mut out = Vec::new();
        for a in &self.data {
            for p in &a.paragraphs {
                for q in &p.qas {
                    let mut answers: Vec<String> = Vec::new();
                    for ans in &q.answers {
                        let t = ans.text.trim();
                        if !t.is_empty() && !answers.iter().any(|x| x == t) {
                            answers.push(t.to_owned());
                        }
                    }
                    out.push(SquadExample {
                        title: a.title.clone(),
                        context: p.context.clone(),
                        question: q.question.trim().to_owned(),
                        answers,
                        id: q.id.clone(),
                    });
                }
            }
        }
        out
    }
}

/// The SQuAD-format files in the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SquadSet {
    /// SQuAD v1.1 dev (Wikipedia).
    Dev,
    /// SQuADShifts Reddit comments.
    Reddit,
    /// SQuADShifts New York Times articles.
    Nyt,
    /// SQuADShifts Amazon product reviews.
    Amazon,
    /// SQuADShifts new Wikipedia articles.
    NewWiki,
}

impl SquadSet {
    /// The four SQuADShifts domains, in the order [`domain_texts`] returns them.
    pub const SHIFTS: [SquadSet; 4] = [Self::Reddit, Self::Nyt, Self::Amazon, Self::NewWiki];

    /// Short domain name: `squad_dev`, `reddit`, `nyt`, `amazon`, `new_wiki`.
    pub fn domain(self) -> &'static str {
        match self {
            Self::Dev => "squad_dev",
            Self::Reddit => "reddit",
            Self::Nyt => "nyt",
            Self::Amazon => "amazon",
            Self::NewWiki => "new_wiki",
        }
    }

    /// Path of the file in `cache`.
    pub fn path(self, cache: &Cache) -> PathBuf {
        match self {
            Self::Dev => cache.squad_dev(),
            Self::Reddit => cache.squad_reddit(),
            Self::Nyt => cache.squad_nyt(),
            Self::Amazon => cache.squad_amazon(),
            Self::NewWiki => cache.squad_new_wiki(),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Dev => "SQuAD v1.1 dev",
            Self::Reddit => "SQuADShifts reddit",
            Self::Nyt => "SQuADShifts nyt",
            Self::Amazon => "SQuADShifts amazon",
            Self::NewWiki => "SQuADShifts new_wiki",
        }
    }
}

/// Load and parse one SQuAD-format file from the cache.
///
/// # Errors
/// [`DataError::NotFetched`] if the file is missing, [`DataError::Json`] if
/// it does not parse, [`DataError::Io`] on read failure.
pub fn load_squad(cache: &Cache, set: SquadSet) -> Result<SquadFile, DataError> {
    let path = set.path(cache);
    let text = read_fetched(set.label(), &path)?;
    SquadFile::parse(&text).map_err(|err| DataError::Json { path, err })
}

/// Flattened question records of one set (e.g. [`SquadSet::Dev`] for
/// open-book QA).
///
/// # Errors
/// As [`load_squad`].
pub fn squad_examples(cache: &Cache, set: SquadSet) -> Result<Vec<SquadExample>, DataError> {
    Ok(load_squad(cache, set)?.examples())
}

/// Unique trimmed paragraph contexts of one set, in file order.
///
/// # Errors
/// As [`load_squad`].
pub fn paragraphs(cache: &Cache, set: SquadSet) -> Result<Vec<String>, DataError> {
    Ok(load_squad(cache, set)?.contexts())
}

/// The default perplexity text: SQuAD v1.1 dev contexts joined with `"\n\n"`
/// (2,067 paragraphs, 1,604,656 characters).
///
/// # Errors
/// As [`load_squad`].
pub fn eval_text(cache: &Cache) -> Result<String, DataError> {
    Ok(paragraphs(cache, SquadSet::Dev)?.join(PARAGRAPH_SEPARATOR))
}

/// The calibration paragraphs: SQuADShifts reddit, nyt and amazon contexts,
/// interleaved round-robin (see [`interleave_round_robin`]).
///
/// # Errors
/// As [`load_squad`].
pub fn calibration_paragraphs(cache: &Cache) -> Result<Vec<String>, DataError> {
    let sources = [SquadSet::Reddit, SquadSet::Nyt, SquadSet::Amazon]
        .into_iter()
        .map(|s| paragraphs(cache, s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(interleave_round_robin(sources))
}

/// The default calibration text: [`calibration_paragraphs`] joined with
/// `"\n\n"` (6,100 paragraphs, 4,728,157 characters). Any prefix mixes the
/// three domains.
///
/// # Errors
/// As [`load_squad`].
pub fn calibration_text(cache: &Cache) -> Result<String, DataError> {
    Ok(calibration_paragraphs(cache)?.join(PARAGRAPH_SEPARATOR))
}

/// The four SQuADShifts domains as `(domain, text)`: `reddit`, `nyt`,
/// `amazon`, `new_wiki`, each its contexts joined with `"\n\n"`.
///
/// # Errors
/// As [`load_squad`].
pub fn domain_texts(cache: &Cache) -> Result<Vec<(String, String)>, DataError> {
    SquadSet::SHIFTS
        .into_iter()
        .map(|s| {
            Ok((
                s.domain().to_owned(),
                paragraphs(cache, s)?.join(PARAGRAPH_SEPARATOR),
            ))
        })
        .collect()
}

/// Merge lists by taking one item from each in turn (first list first);
/// lists that run out are dropped and the rest continue. Deterministic.
pub fn interleave_round_robin<T>(sources: Vec<Vec<T>>) -> Vec<T> {
    let total = sources.iter().map(Vec::len).sum();
    let mut iters: Vec<_> = sources.into_iter().map(Vec::into_iter).collect();
    let mut out = Vec::with_capacity(total);
    while out.len() < total {
        for it in &mut iters {
            if let Some(x) = it.next() {
                out.push(x);
            }
        }
    }
    out
}

/// Writes [`eval_text`] and [`calibration_text`] to [`Cache::eval_text_file`] and
/// [`Cache::calibration_text_file`] (atomically), so that other tools — the Python reference
/// scripts among them — read exactly the text secateurs evaluates. Returns the files and sizes.
///
/// # Errors
/// As [`load_squad`], plus I/O errors naming the file written.
pub fn write_text_sets(cache: &Cache) -> Result<Vec<crate::extract::Extracted>, DataError> {
    let sets = [
        (cache.eval_text_file(), eval_text(cache)?),
        (cache.calibration_text_file(), calibration_text(cache)?),
    ];
    sets.into_iter()
        .map(|(dest, text)| {
            crate::extract::write_atomically(
                &dest,
                &dest,
                &mut std::io::Cursor::new(text.into_bytes()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"{
      "version": "1.1",
      "data": [
        {"title": "Alpha", "paragraphs": [
          {"context": " First context. ", "qas": [
            {"id": "q1", "question": "What is first?",
             "answers": [{"text": "First", "answer_start": 0},
                         {"text": "First", "answer_start": 0},
                         {"text": "First context", "answer_start": 0}]}
          ]},
          {"context": "Second context.", "qas": []}
        ]},
        {"paragraphs": [
          {"context": "First context.", "qas": [
            {"id": "q2", "question": "Again?", "answers": [{"text": "yes"}]}
          ]}
        ], "split": "test"}
      ]
    }"#;

    #[test]
    fn parses_tiny_squad() {
        let f = SquadFile::parse(TINY).unwrap();
        assert_eq!(f.data.len(), 2);
        assert_eq!(f.contexts(), vec!["First context.", "Second context."]);
        let ex = f.examples();
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].title, "Alpha");
        assert_eq!(ex[0].answers, vec!["First", "First context"]);
        assert_eq!(ex[0].id, "q1");
        assert_eq!(ex[1].title, "");
        assert_eq!(ex[1].answers, vec!["yes"]);
    }

    #[test]
    fn bad_json_is_an_error() {
        assert!(SquadFile::parse(r#"{"data": [{"paragraphs": 3}]}"#).is_err());
    }

    #[test]
    fn round_robin_is_deterministic_and_mixed() {
        let a = vec!["a1", "a2", "a3"];
        let b = vec!["b1"];
        let c = vec!["c1", "c2"];
        let got = interleave_round_robin(vec![a.clone(), b.clone(), c.clone()]);
        assert_eq!(got, vec!["a1", "b1", "c1", "a2", "c2", "a3"]);
        assert_eq!(got, interleave_round_robin(vec![a, b, c]));
        assert!(interleave_round_robin::<u8>(vec![vec![], vec![]]).is_empty());
    }

    #[test]
    fn texts_from_a_synthetic_cache() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        assert!(matches!(
            eval_text(&cache),
            Err(DataError::NotFetched { .. })
        ));
        let one = |ctx: &str| {
            format!(
                r#"{{"data":[{{"title":"t","paragraphs":[{{"context":"{ctx}1","qas":[]}},{{"context":"{ctx}2","qas":[]}}]}}]}}"#
            )
        };
        std::fs::create_dir_all(cache.squad_shifts_dir()).unwrap();
        for s in [
            SquadSet::Dev,
            SquadSet::Reddit,
            SquadSet::Nyt,
            SquadSet::Amazon,
            SquadSet::NewWiki,
        ] {
            std::fs::write(s.path(&cache), one(s.domain())).unwrap();
        }
        assert_eq!(eval_text(&cache).unwrap(), "squad_dev1\n\nsquad_dev2");
        assert_eq!(
            calibration_text(&cache).unwrap(),
            "reddit1\n\nnyt1\n\namazon1\n\nreddit2\n\nnyt2\n\namazon2"
        );
        let d = domain_texts(&cache).unwrap();
        let names: Vec<_> = d.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["reddit", "nyt", "amazon", "new_wiki"]);
        assert_eq!(d[3].1, "new_wiki1\n\nnew_wiki2");
        std::fs::write(cache.squad_dev(), "{").unwrap();
        let err = eval_text(&cache).unwrap_err();
        assert!(matches!(err, DataError::Json { .. }));
    }
}

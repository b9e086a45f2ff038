//! `facts_wikidata` — closed-book fact recall: BIG-bench `qa_wikidata` prompts about well-known
//! subjects.
//!
//! * Source: BIG-bench 1.0.0 `qa_wikidata/task.json` (Apache-2.0; facts from Wikidata, CC0):
//!   20,442 prompts built from Wikidata triples, such as `The capital of Yugoslavia is` →
//!   `Belgrade`. Prompts of the form `The <relation> of|by|in <subject> is` with one of the 60
//!   relations used by at least 8 prompts are kept (18,106 distinct prompts;
//!   a prompt listed twice keeps the union of its targets).
//! * "Well-known" filter: the subject must be mentioned at least [`MIN_MENTIONS`] times, as a
//!   whole-word sequence, in the Wikipedia paragraphs of SQuAD v1.1 dev and SQuADShifts
//!   new_wiki (2.8 M characters) — a popularity proxy computed from pinned data; 1,024
//!   prompts pass. The relation is the longest known relation phrase the prompt starts with
//!   (`country of citizenship of`, `sport played by`, `language used in`, ...); the subject is
//!   the rest.
//! * Follows: Jin et al. 2023 (seeds 000/002), closed-book few-shot QA (stand-in for
//!   TriviaQA/WebQuestions).
//! * Prompt: `k` demonstrations (default 4, drawn by seed from the filtered prompts and never
//!   evaluated), one per line, then the prompt; greedy generation of at most 10 tokens, stopped
//!   at a newline:
//!
//!   ```text
//!   The capital of Yugoslavia is Belgrade
//!   The developer of Windows 95 is Microsoft
//!   The official language of Angola is Portuguese
//!   The country of Graz is Austria
//!   The currency of Finland is
//!   ```
//! * Scoring: exact match after normalization (primary) and containment against every target
//!   listed for the prompt.

use secateurs_data::Cache;

use super::popularity::{count_mentions, mentions, wikipedia_paragraphs};
use super::{
    bigbench, few_shot, one_line, BuildOptions, Family, Item, ItemKind, TaskData, TaskInfo,
};
use crate::error::EvalError;

/// Registry entry.
pub const INFO: TaskInfo = TaskInfo {
    name: "facts_wikidata",
    family: Family::FactRecall,
    primary: "exact_match",
    default_limit: 400,
    summary: "closed-book qa_wikidata facts about subjects mentioned >= 3 times in Wikipedia text, 4-shot",
    build,
};

/// Demonstrations when `--shots` is not given.
pub const DEFAULT_SHOTS: usize = 4;
/// Most tokens generated per answer.
pub const MAX_NEW: usize = 10;
/// Mentions in the Wikipedia paragraphs that make a subject well known.
pub const MIN_MENTIONS: usize = 3;

/// The relation phrases of `qa_wikidata` (every phrase used by at least 8 prompts), each with
/// the word that joins it to the subject. The longest phrase that starts a prompt wins.
const RELATIONS: &[&str] = &[
    "academic degree of",
    "basic form of government of",
    "basin country of",
    "blood type of",
    "capital of",
    "color of",
    "color of the flag of",
    "competition class of",
    "continent of",
    "country for sport played by",
    "country of",
    "country of citizenship of",
    "currency of",
    "developer of",
    "emergency phone number of",
    "ethnic group of",
    "eye color of",
    "family name of",
    "genre of",
    "headquarters location of",
    "health specialty of",
    "historic county of",
    "honorific prefix of",
    "instrument of",
    "language of",
    "language used in",
    "languages spoken, written or signed by",
    "main subject of",
    "manufacturer of",
    "material used in",
    "measured physical quantity of",
    "military branch of",
    "military rank of",
    "month of the year of",
    "native language of",
    "newspaper format of",
    "noble title of",
    "office held by head of government of",
    "official color of",
    "official language of",
    "official religion of",
    "operating area of",
    "operating system of",
    "original broadcaster of",
    "original country of",
    "participant of",
    "place of birth of",
    "place of publication of",
    "platform of",
    "product or material produced of",
    "public holiday of",
    "publisher of",
    "record label of",
    "religion of",
    "residence of",
    "sport played by",
    "streak color of",
    "team position of",
    "voice type of",
    "work location of",
];

/// A parsed prompt.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Fact {
    pub prompt: String,
    pub relation: String,
    pub subject: String,
    pub answers: Vec<String>,
}

/// Splits `The <relation> <of|by|in> <subject> is` into the relation (without its joining
/// word) and the subject, using the longest known relation phrase ([`RELATIONS`]).
pub(crate) fn parse_prompt(prompt: &str) -> Option<(String, String)> {
    let body = prompt.strip_prefix("The ")?.strip_suffix(" is")?;
    let rel = RELATIONS
        .iter()
        .filter(|r| {
            body.strip_prefix(**r)
                .is_some_and(|rest| rest.starts_with(' '))
        })
        .max_by_key(|r| r.len())?;
    let subject = body[rel.len()..].trim();
    let name = rel.rsplit_once(' ').map_or(*rel, |(head, _joiner)| head);
    (!subject.is_empty()).then(|| (name.to_string(), subject.to_string()))
}

/// Every distinct `The <relation> of|by|in <subject> is` prompt with usable targets.
pub(crate) fn facts(cache: &Cache) -> Result<Vec<Fact>, EvalError> {
    let examples = bigbench::load(cache, "qa_wikidata")?;
    // A prompt that occurs more than once keeps its first position and the union of targets.
    let mut out: Vec<Fact> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for e in examples {
        let prompt = e.input.trim().to_string();
        let Some((relation, subject)) = parse_prompt(&prompt) else {
            continue;
        };
        let answers: Vec<String> = e
            .targets()
            .into_iter()
            .map(|t| t.trim().to_string())
            .filter(|t| one_line(t))
            .collect();
        if answers.is_empty() || !one_line(&prompt) {
            continue;
        }
        match index.get(&prompt) {
            Some(&i) => {
                for a in answers {
                    if !out[i].answers.contains(&a) {
                        out[i].answers.push(a);
                    }
                }
            }
            None => {
                index.insert(prompt.clone(), out.len());
                out.push(Fact {
                    prompt,
                    relation,
                    subject,
                    answers,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(EvalError::BadData {
            path: bigbench::task_path(cache, "qa_wikidata"),
            reason: "no example of the form 'The <relation> of <subject> is' with a target".into(),
        });
    }
    Ok(out)
}

fn build(cache: &Cache, opts: &BuildOptions, info: &TaskInfo) -> Result<TaskData, EvalError> {
    let all = facts(cache)?;
    let texts = wikipedia_paragraphs(cache)?;
    let counts = count_mentions(&texts, all.iter().map(|f| f.subject.as_str()));
    let known: Vec<Fact> = all
        .into_iter()
        .filter(|f| mentions(&counts, &f.subject) >= MIN_MENTIONS)
        .collect();
    build_from(known, opts, info)
}

pub(crate) fn build_from(
    known: Vec<Fact>,
    opts: &BuildOptions,
    info: &TaskInfo,
) -> Result<TaskData, EvalError> {
    Ok(few_shot(
        known,
        opts,
        info,
        DEFAULT_SHOTS,
        "",
        |f| format!("{} {}\n", f.prompt, f.answers[0]),
        |n, f| Item {
            id: f.prompt.clone(),
            prefix: Some(0),
            prompt: f.prompt,
            group: f.relation,
            cluster: n,
            kind: ItemKind::Generate {
                answers: f.answers,
                memory: Vec::new(),
                max_new: MAX_NEW,
            },
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_relations() {
        assert_eq!(
            parse_prompt("The capital of Kingdom of Hungary is"),
            Some(("capital".into(), "Kingdom of Hungary".into()))
        );
        assert_eq!(
            parse_prompt("The country of citizenship of Richard Nixon is"),
            Some(("country of citizenship".into(), "Richard Nixon".into()))
        );
        assert_eq!(
            parse_prompt("The color of the flag of South Sudan is"),
            Some(("color of the flag".into(), "South Sudan".into()))
        );
        assert_eq!(
            parse_prompt("The sport played by A. J. Ramos is"),
            Some(("sport played".into(), "A. J. Ramos".into()))
        );
        assert_eq!(
            parse_prompt("The languages spoken, written or signed by Anna of Russia is"),
            Some((
                "languages spoken, written or signed".into(),
                "Anna of Russia".into()
            ))
        );
        assert_eq!(
            parse_prompt("The office held by head of government of Iceland is"),
            Some(("office held by head of government".into(), "Iceland".into()))
        );
        assert_eq!(parse_prompt("Aargau is located in"), None);
        assert_eq!(parse_prompt("The flavour of Lemons is"), None);
        assert_eq!(parse_prompt("The capital of  is"), None);
    }
}

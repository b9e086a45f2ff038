//! The scoring engine against direct computations on the tiny fixture model (a 2-layer LLaMA with
//! a whitespace word-level tokenizer): choice log-likelihoods against `logits()` plus a manual
//! log-softmax, greedy generation (with draft verification, cache truncation and shared prefixes)
//! against `generate_greedy`, and label predictions against the logits at the label positions.

use std::path::PathBuf;

use secateurs_eval::tasks::{Family, Item, ItemKind, Prefix, TaskData, TaskInfo};
use secateurs_eval::{score_task, EvalError, TaskResult};
use secateurs_model::model::{CausalLm, ModelFiles};
use secateurs_model::ops::log_sum_exp;
use secateurs_model::tokenizer::Tokenizer;

fn tiny() -> (ModelFiles, CausalLm) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../model/tests/fixtures/tiny-llama");
    let files = ModelFiles::open(&dir).unwrap();
    let model = files.load(&mut |_| {}).unwrap();
    (files, model)
}

fn no_build(
    _: &secateurs_data::Cache,
    _: &secateurs_eval::BuildOptions,
    _: &TaskInfo,
) -> Result<TaskData, EvalError> {
    unreachable!()
}

fn info(primary: &'static str) -> TaskInfo {
    TaskInfo {
        name: "test",
        family: Family::MultipleChoice,
        primary,
        default_limit: 10,
        summary: "test",
        build: no_build,
    }
}

fn task(primary: &'static str, prefixes: Vec<Prefix>, items: Vec<Item>) -> TaskData {
    TaskData {
        info: info(primary),
        available: items.len(),
        prefixes,
        items,
        shots: 0,
        seed: 0,
    }
}

fn item(id: usize, prefix: Option<usize>, prompt: &str, kind: ItemKind) -> Item {
    Item {
        id: format!("i{id}"),
        prefix,
        prompt: prompt.to_string(),
        group: "g".into(),
        cluster: id,
        kind,
    }
}

fn run(model: &CausalLm, tok: &Tokenizer, t: &TaskData) -> TaskResult {
    score_task(model, tok, t, t.items.len(), &mut |_, _| {}).unwrap()
}

/// Σ log p(continuation token | everything before), from full logits and a manual log-softmax.
fn manual_loglik(model: &CausalLm, tok: &Tokenizer, context: &str, continuation: &str) -> f64 {
    let ctx = tok.encode(context).unwrap();
    let whole = tok.encode(&format!("{context}{continuation}")).unwrap();
    assert!(whole.starts_with(&ctx) && whole.len() > ctx.len());
    let logits = model.logits(&whole).unwrap(); // (whole, vocab)
    (ctx.len()..whole.len())
        .map(|i| {
            let row = logits.row(i - 1);
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let z: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
            row[whole[i] as usize] as f64 - max - z.ln()
        })
        .sum()
}

#[test]
fn choice_loglik_equals_manual_log_softmax() {
    let (files, model) = tiny();
    let tok = files.tokenizer().unwrap();
    let choices = vec![
        " w5".to_string(),
        " w9 w10 w11".to_string(),
        " w20 w3".to_string(),
    ];
    let prefixes = vec![
        Prefix {
            parent: None,
            text: "w1 w2 w3 w4\n".into(),
        },
        Prefix {
            parent: Some(0),
            text: "w7 w8\n".into(),
        },
    ];
    let items = vec![
        item(
            0,
            None,
            "w12 w13 w14",
            ItemKind::Choice {
                choices: choices.clone(),
                gold: 1,
            },
        ),
        item(
            1,
            Some(0),
            "w30 w31",
            ItemKind::Choice {
                choices: choices.clone(),
                gold: 0,
            },
        ),
        item(
            2,
            Some(1),
            "w40",
            ItemKind::Choice {
                choices: choices.clone(),
                gold: 2,
            },
        ),
        item(
            3,
            Some(1),
            "w41 w42",
            ItemKind::Choice {
                choices: choices.clone(),
                gold: 2,
            },
        ),
    ];
    let t = task("acc", prefixes, items);
    let r = run(&model, tok, &t);
    assert_eq!(r.samples.len(), 4);
    for (i, s) in r.samples.iter().enumerate() {
        let context = t.full_prompt(i);
        for (c, (text, ll)) in choices.iter().zip(&s.scores) {
            assert_eq!(text, c.trim());
            let want = manual_loglik(&model, tok, &context, c);
            assert!(
                (ll - want).abs() < 1e-4,
                "item {i} choice {c:?}: engine {ll} vs manual {want}"
            );
        }
    }
    // acc and acc_norm follow from these numbers.
    let acc = r.metrics["acc"].value;
    let want_acc = r
        .samples
        .iter()
        .zip(&t.items)
        .filter(|(s, it)| match &it.kind {
            ItemKind::Choice { choices, gold } => s.output == choices[*gold].trim(),
            _ => false,
        })
        .count() as f64
        / 4.0;
    assert_eq!(acc, want_acc);
    assert!(r.metrics.contains_key("acc_norm"));
    assert_eq!(r.chance, Some(1.0 / 3.0));
}

#[test]
fn hand_computed_single_token_loglik() {
    // One context, one single-token choice: the value is one log-softmax entry, computed here
    // with the crate's own log_sum_exp as a second, independent route.
    let (files, model) = tiny();
    let tok = files.tokenizer().unwrap();
    let t = task(
        "acc",
        Vec::new(),
        vec![item(
            0,
            None,
            "w3 w4 w5",
            ItemKind::Choice {
                choices: vec![" w6".into(), " w7".into()],
                gold: 0,
            },
        )],
    );
    let r = run(&model, tok, &t);
    let logits = model.logits(&[6, 7, 8]).unwrap();
    let row = logits.row(2);
    let lse = log_sum_exp(row);
    assert!((r.samples[0].scores[0].1 - (row[9] as f64 - lse)).abs() < 1e-5);
    assert!((r.samples[0].scores[1].1 - (row[10] as f64 - lse)).abs() < 1e-5);
}

#[test]
fn greedy_output_equals_generate_greedy_with_and_without_drafts() {
    let (files, model) = tiny();
    let tok = files.tokenizer().unwrap();
    let eos = tok.eos_id.unwrap();
    let prompts = ["w3 w9 w27", "w50 w51", "w60 w61 w62 w63"];
    let prefix_text = "w1 w2 w100\n";
    let max_new = 6;
    let mut items = Vec::new();
    let mut expected = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let full = format!("{prefix_text}{p}");
        let ids = tok.encode(&full).unwrap();
        let mut greedy = model
            .generate_greedy(&ids, max_new, &[eos], &mut |_| {})
            .unwrap();
        greedy.retain(|&t| t != eos);
        let text = tok.decode(&greedy).unwrap();
        let words: Vec<&str> = text.split_whitespace().collect();
        // Drafts: exactly right (all accepted), right for two tokens then wrong (truncation),
        // and wrong from the start.
        let answers = match i {
            0 => vec![text.clone()],
            1 => vec![format!(
                "{} {} w99",
                words[0],
                words.get(1).unwrap_or(&"w98")
            )],
            _ => vec!["w126 w125".to_string()],
        };
        expected.push(text.trim().to_string());
        for prefix in [None, Some(0)] {
            let prompt = if prefix.is_some() {
                p.to_string()
            } else {
                full.clone()
            };
            items.push(item(
                items.len(),
                prefix,
                &prompt,
                ItemKind::Generate {
                    answers: answers.clone(),
                    memory: Vec::new(),
                    max_new,
                },
            ));
        }
    }
    let t = task(
        "exact_match",
        vec![Prefix {
            parent: None,
            text: prefix_text.into(),
        }],
        items,
    );
    let r = run(&model, tok, &t);
    for (i, s) in r.samples.iter().enumerate() {
        assert_eq!(s.output, expected[i / 2], "item {i}");
    }
    // Item 0's draft is the greedy output itself: exact match; the others are wrong.
    assert!(r.samples[0].correct && r.samples[1].correct);
    assert!(!r.samples[4].correct);
    assert_eq!(r.metrics["exact_match"].n, 6);
}

#[test]
fn label_predictions_follow_the_label_logits() {
    let (files, model) = tiny();
    let tok = files.tokenizer().unwrap();
    // Lines "x1 x2 label"; labels are the words w1 / w2, which appear nowhere else.
    let lines = [
        ("w10 w11", 0),
        ("w12 w13", 1),
        ("w14 w15", 0),
        ("w16 w17", 1),
    ];
    let prompt: String = lines
        .iter()
        .map(|(x, y)| format!("{x} {}\n", ["w1", "w2"][*y]))
        .collect();
    let shown: Vec<usize> = lines.iter().map(|l| l.1).collect();
    let t = task(
        "acc",
        Vec::new(),
        vec![item(
            0,
            None,
            &prompt,
            ItemKind::Labels {
                labels: vec![" w1".into(), " w2".into()],
                shown: shown.clone(),
                truth: vec![0, 1, 1, 1],
                queries: vec![1, 2, 3],
                query_groups: vec!["a".into(), "a".into(), "b".into()],
            },
        )],
    );
    let r = run(&model, tok, &t);
    let ids = tok.encode(&prompt).unwrap();
    let logits = model.logits(&ids).unwrap();
    // Label tokens sit at positions 2, 5, 8, 11; query line q is predicted from row 3q + 1.
    let predicted: Vec<&str> = [1usize, 2, 3]
        .iter()
        .map(|&q| {
            let row = logits.row(3 * q + 1);
            if row[4] >= row[5] {
                "w1"
            } else {
                "w2"
            }
        })
        .collect();
    assert_eq!(r.samples[0].output, predicted.join(" "));
    let correct = predicted
        .iter()
        .zip([1usize, 1, 1])
        .filter(|(p, t)| **p == ["w1", "w2"][*t])
        .count();
    assert_eq!(r.metrics["acc"].successes, correct);
    assert_eq!(r.metrics["acc"].n, 3);
    assert_eq!(r.breakdown.len(), 2);
    assert_eq!(r.chance, Some(0.5));
}

#[test]
fn a_label_that_is_not_one_token_is_a_clear_error() {
    let (files, model) = tiny();
    let tok = files.tokenizer().unwrap();
    let t = task(
        "acc",
        Vec::new(),
        vec![item(
            0,
            None,
            "w10 w1\nw11 w2\n",
            ItemKind::Labels {
                labels: vec![" w1 w3".into(), " w2".into()],
                shown: vec![0, 1],
                truth: vec![0, 1],
                queries: vec![1],
                query_groups: vec!["a".into()],
            },
        )],
    );
    let e = score_task(&model, tok, &t, 0, &mut |_, _| {}).unwrap_err();
    assert!(matches!(e, EvalError::Format { .. }), "{e}");
    assert!(e.to_string().contains("must be one"), "{e}");
}

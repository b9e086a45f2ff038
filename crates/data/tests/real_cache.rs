//! Checks against the real cache (`SECATEURS_CACHE` or the default
//! location), skipped with a message when the data has not been fetched.

use secateurs_data::{
    calibration_text, domain_texts, eval_text, is_fetched, squad, squad_examples, Cache, SquadSet,
};

fn real_cache() -> Option<Cache> {
    let cache = Cache::from_env().ok()?;
    if cache.squad_dev().is_file() {
        Some(cache)
    } else {
        println!(
            "skipped: no fetched data under {} (run `secateurs fetch`)",
            cache.root().display()
        );
        None
    }
}

#[test]
fn text_sets_from_real_cache() {
    let Some(cache) = real_cache() else { return };
    let dev = squad::paragraphs(&cache, SquadSet::Dev).unwrap();
    let eval = eval_text(&cache).unwrap();
    assert_eq!(dev.len(), 2067);
    println!(
        "eval_text: {} paragraphs, {} chars, {} bytes",
        dev.len(),
        eval.chars().count(),
        eval.len()
    );
    let cal_p = squad::calibration_paragraphs(&cache).unwrap();
    let cal = calibration_text(&cache).unwrap();
    println!(
        "calibration_text: {} paragraphs, {} chars, {} bytes",
        cal_p.len(),
        cal.chars().count(),
        cal.len()
    );
    assert!(cal_p.len() > 6000);
    for ((domain, text), set) in domain_texts(&cache)
        .unwrap()
        .into_iter()
        .zip(SquadSet::SHIFTS)
    {
        assert_eq!(domain, set.domain());
        let n = squad::paragraphs(&cache, set).unwrap().len();
        println!(
            "domain {domain}: {n} paragraphs, {} chars",
            text.chars().count()
        );
        assert!(n > 1000, "{domain}");
    }
    let ex = squad_examples(&cache, SquadSet::Dev).unwrap();
    println!("squad dev examples: {}", ex.len());
    assert!(ex.len() > 10_000);
    assert!(ex.iter().all(|e| !e.answers.is_empty()));
}

#[test]
fn fetched_artifacts_verify() {
    let Some(cache) = real_cache() else { return };
    for what in ["model", "bigbench", "world-countries"] {
        let ok = is_fetched(&cache, what).unwrap();
        println!("{what}: fetched and verified = {ok}");
        assert!(ok, "{what}");
    }
    let meta = std::fs::metadata(cache.model_gguf()).unwrap();
    assert_eq!(meta.len(), secateurs_data::pins::MODEL_GGUF_BYTES);
    assert!(cache.countries_json().is_file());
    for task in [
        "qa_wikidata",
        "contextual_parametric_knowledge_conflicts",
        "social_iqa",
        "physics",
        "natural_instructions/subtask047_misc_answering_science_questions",
        "goal_step_wikihow/goal_inference",
        "cause_and_effect/one_sentence",
    ] {
        assert!(cache.bigbench_task(task).is_file(), "{task}");
    }
}

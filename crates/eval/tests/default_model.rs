//! The dense default model scores far above chance on the easy fact tier and on open-book QA
//! (issue 3's acceptance), on a small deterministic sample. Runs only when `secateurs fetch` has
//! put the default model and data in the cache.

use secateurs_data::Cache;
use secateurs_eval::tasks::resolve;
use secateurs_eval::{build_tasks, score_tasks, EvalOptions};
use secateurs_model::model::ModelFiles;

#[test]
fn dense_default_model_recalls_facts_and_reads_passages() {
    let Ok(cache) = Cache::from_env() else {
        return;
    };
    // The country tasks keep subjects mentioned in the SQuAD Wikipedia paragraphs
    // (`tasks::popularity`), so they need the BIG-bench files too.
    if !cache.model_gguf().is_file()
        || !cache.countries_json().is_file()
        || !cache.squad_dev().is_file()
    {
        println!("skipped: default model or data not fetched (run `secateurs fetch`)");
        return;
    }
    let files = ModelFiles::open(&cache.model_gguf()).unwrap();
    let model = files.load(&mut |_| {}).unwrap();
    let tok = files.tokenizer().unwrap();
    let opts = EvalOptions {
        seed: 0,
        limit: Some(30),
        shots: None,
        show: 1,
    };
    let infos = resolve("facts_countries,openbook_countries,mc_capitals").unwrap();
    let tasks = build_tasks(&cache, &infos, &opts).unwrap();
    let results = score_tasks(&model, tok, &tasks, &opts, &mut |_, _, _| {}).unwrap();
    for r in &results {
        println!(
            "{:<20} {:.1}% [{:.1}, {:.1}] n={} {:.1}s; sample: {:?} -> {:?}",
            r.task,
            100.0 * r.accuracy.value,
            100.0 * r.accuracy.lo,
            100.0 * r.accuracy.hi,
            r.items,
            r.seconds,
            r.samples[0].prompt.lines().last().unwrap_or(""),
            r.samples[0].output
        );
    }
    // Generation has no chance level to speak of; the multiple-choice chance is 25 %.
    assert!(
        results[0].accuracy.value >= 0.3,
        "{:?}",
        results[0].accuracy
    );
    assert!(
        results[1].accuracy.value >= 0.6,
        "{:?}",
        results[1].accuracy
    );
    assert!(results[2].accuracy.lo > 0.25, "{:?}", results[2].accuracy);
}

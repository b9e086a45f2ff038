//! Building the task items: deterministic for a seed, different across seeds, demonstrations
//! never evaluated, clear errors for unknown names and missing data. Tasks that read the pinned
//! data run only when it is in the cache (`secateurs fetch`); the synthetic tasks always run.

use std::collections::HashSet;

use secateurs_data::Cache;
use secateurs_eval::tasks::{self, icl_linear, ItemKind, TASKS};
use secateurs_eval::{BuildOptions, EvalError, TaskData};

fn fetched_cache() -> Option<Cache> {
    let cache = Cache::from_env().ok()?;
    let needed = [
        cache.countries_json(),
        cache.squad_dev(),
        cache.bigbench_task("qa_wikidata"),
        cache.bigbench_task("contextual_parametric_knowledge_conflicts"),
    ];
    if needed.iter().all(|p| p.is_file()) {
        Some(cache)
    } else {
        println!("skipped: task data not fetched (run `secateurs fetch`)");
        None
    }
}

fn opts(seed: u64, limit: Option<usize>) -> BuildOptions {
    BuildOptions {
        seed,
        limit,
        shots: None,
    }
}

fn same(a: &TaskData, b: &TaskData) -> bool {
    a.items == b.items && a.prefixes == b.prefixes && a.available == b.available
}

#[test]
fn icl_items_are_deterministic_per_seed() {
    let a = icl_linear::build_synthetic(&opts(5, None), &icl_linear::INFO);
    let b = icl_linear::build_synthetic(&opts(5, None), &icl_linear::INFO);
    let c = icl_linear::build_synthetic(&opts(6, None), &icl_linear::INFO);
    assert!(same(&a, &b));
    assert!(!same(&a, &c));
    assert_eq!(a.scored_units(), icl_linear::INFO.default_limit);
    // Dimensions cycle 2, 4, 8; every prompt line is "x1 .. xd -> A|B".
    for (s, it) in a.items.iter().enumerate() {
        let d = icl_linear::DIMS[s % 3];
        let ItemKind::Labels {
            shown,
            truth,
            queries,
            ..
        } = &it.kind
        else {
            panic!("not a label item")
        };
        assert_eq!(shown, truth, "the task shows the true labels");
        assert_eq!(queries.first(), Some(&icl_linear::K_MIN));
        for (line, &y) in it.prompt.lines().zip(shown) {
            let (x, label) = line.split_once(" ->").unwrap();
            assert_eq!(x.split(' ').count(), d);
            assert_eq!(label, icl_linear::LABELS[y]);
            assert!(x
                .split(' ')
                .all(|v| v.parse::<i32>().is_ok_and(|v| v.abs() <= 9)));
        }
    }
}

#[test]
fn shuffled_control_keeps_points_and_label_counts() {
    let t = icl_linear::build_synthetic(&opts(5, None), &icl_linear::INFO);
    let c = icl_linear::build_synthetic(&opts(5, None), &icl_linear::INFO_SHUFFLED);
    let mut differs = false;
    for (a, b) in t.items.iter().zip(&c.items) {
        let (
            ItemKind::Labels {
                shown: sa,
                truth: ta,
                ..
            },
            ItemKind::Labels {
                shown: sb,
                truth: tb,
                ..
            },
        ) = (&a.kind, &b.kind)
        else {
            panic!("not label items")
        };
        assert_eq!(ta, tb, "same points, same true labels");
        let (mut x, mut y) = (sa.clone(), sb.clone());
        x.sort_unstable();
        y.sort_unstable();
        assert_eq!(x, y, "a permutation of the labels");
        differs |= sa != sb;
        let xs = |p: &str| {
            p.lines()
                .map(|l| l.split(" ->").next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(xs(&a.prompt), xs(&b.prompt));
    }
    assert!(differs);
}

#[test]
fn every_task_is_deterministic_and_seed_dependent() {
    let Some(cache) = fetched_cache() else { return };
    for info in TASKS {
        let a = tasks::build(info, &cache, &opts(1, None)).unwrap();
        let b = tasks::build(info, &cache, &opts(1, None)).unwrap();
        let c = tasks::build(info, &cache, &opts(2, None)).unwrap();
        assert!(same(&a, &b), "{}: same seed, different items", info.name);
        assert!(!same(&a, &c), "{}: different seeds, same items", info.name);
        assert!(!a.items.is_empty(), "{}", info.name);
        assert_eq!(
            a.scored_units(),
            info.default_limit.min(a.available),
            "{}: default limit",
            info.name
        );
        // Ids are unique, and no demonstration text reappears as an evaluated prompt.
        let ids: HashSet<&str> = a.items.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(ids.len(), a.items.len(), "{}: duplicate ids", info.name);
        for it in &a.items {
            if let Some(p) = it.prefix {
                assert!(
                    !a.prefix_text(Some(p))
                        .contains(&format!("{} ", it.prompt.trim_end())),
                    "{}: item {} is also a demonstration",
                    info.name,
                    it.id
                );
            }
            match &it.kind {
                ItemKind::Generate { answers, .. } => assert!(!answers.is_empty()),
                ItemKind::Choice { choices, gold } => {
                    assert!(choices.len() >= 2 && *gold < choices.len());
                    assert!(choices.iter().all(|c| c.starts_with(' ')));
                }
                ItemKind::Labels { .. } => {}
            }
        }
        println!(
            "{:<20} {:>5} items of {:>6} available, {} prefixes, {} shots",
            info.name,
            a.scored_units(),
            a.available,
            a.prefixes.len(),
            a.shots
        );
    }
}

#[test]
fn limits_and_shots_apply() {
    let Some(cache) = fetched_cache() else { return };
    let info = tasks::resolve("facts_nq").unwrap()[0];
    let t = tasks::build(
        info,
        &cache,
        &BuildOptions {
            seed: 0,
            limit: Some(7),
            shots: Some(2),
        },
    )
    .unwrap();
    assert_eq!(t.items.len(), 7);
    assert_eq!(t.shots, 2);
    assert_eq!(t.prefixes[0].text.matches("\nA: ").count(), 2);
    let all = tasks::build(info, &cache, &opts(0, Some(usize::MAX))).unwrap();
    assert_eq!(all.items.len(), all.available);
    let e = tasks::build(info, &cache, &opts(0, Some(0))).unwrap_err();
    assert!(e.to_string().contains("--limit"), "{e}");
}

#[test]
fn unknown_task_names_list_the_valid_ones() {
    let e = tasks::resolve("facts_countries,nope").unwrap_err();
    assert!(matches!(e, EvalError::UnknownTask { .. }));
    let msg = e.to_string();
    assert!(msg.contains("'nope'"), "{msg}");
    for t in TASKS {
        assert!(msg.contains(t.name), "{msg}");
    }
    assert!(tasks::resolve("").is_err());
    let all = tasks::resolve("all").unwrap();
    assert_eq!(all.len(), TASKS.len());
    let two = tasks::resolve(" mc_capitals , facts_nq,mc_capitals").unwrap();
    let names: Vec<&str> = two.iter().map(|t| t.name).collect();
    assert_eq!(names, ["mc_capitals", "facts_nq"]);
}

#[test]
fn missing_data_says_to_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    for info in TASKS {
        if info.name.starts_with("icl_") {
            assert!(tasks::build(info, &cache, &opts(0, None)).is_ok());
            continue;
        }
        let e = tasks::build(info, &cache, &opts(0, None)).unwrap_err();
        assert!(matches!(e, EvalError::Data(_)), "{}: {e}", info.name);
        assert!(
            e.to_string().contains("secateurs fetch"),
            "{}: {e}",
            info.name
        );
    }
}

#[test]
fn malformed_data_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path());
    let path = cache.bigbench_task("social_iqa");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        r#"{"examples": [{"input": "x", "target_scores": {"a": 1, "b": 1}}]}"#,
    )
    .unwrap();
    let info = tasks::resolve("mc_social_iqa").unwrap()[0];
    let e = tasks::build(info, &cache, &opts(0, None)).unwrap_err();
    assert!(matches!(e, EvalError::BadData { .. }), "{e}");
    assert!(e.to_string().contains("social_iqa"), "{e}");
    std::fs::write(&path, "{").unwrap();
    let e = tasks::build(info, &cache, &opts(0, None)).unwrap_err();
    assert!(e.to_string().contains("social_iqa"), "{e}");
}

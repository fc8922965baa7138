//! The layering rules of `docs/ARCHITECTURE.md`, checked over the source: no cycles between
//! top-level modules, and the lower layers free of HTTP and of the features above them.
//! Reads every `crate::…` path in `src/`, so a new import that breaks a rule fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules its files name through `crate::`.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules: BTreeSet<String> = std::fs::read_dir(&src)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .map(|path| module_of(&src, &path))
        .filter(|name| name != "lib" && name != "main")
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let from = module_of(&src, &file);
        if !modules.contains(&from) {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let uses = graph.entry(from.clone()).or_default();
        for to in crate_paths(&text) {
            if to != from && modules.contains(&to) {
                uses.insert(to);
            }
        }
    }
    graph
}

fn module_of(src: &Path, path: &Path) -> String {
    let first = path.strip_prefix(src).unwrap().components().next().unwrap();
    first.as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned()
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The first segment after every `crate::`, including each name of `crate::{a, b::c}`.
fn crate_paths(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (at, _) in text.match_indices("crate::") {
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Only the top level of the group names modules: `{db::{self, DbPool}, error}`.
            let (mut depth, mut item_start) = (0, true);
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        found.extend(first_ident(&group[i..]));
                    }
                    _ => {}
                }
            }
        } else if let Some(name) = first_ident(rest) {
            found.push(name);
        }
    }
    found
}

fn first_ident(text: &str) -> Option<String> {
    let name: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    (!name.is_empty()).then_some(name)
}

/// Every cycle's members (strongly connected components of more than one module).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reaches = |from: &String| -> BTreeSet<String> {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.clone()]);
        while let Some(next) = todo.pop() {
            for to in graph.get(&next).into_iter().flatten() {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    };
    let reach: BTreeMap<&String, BTreeSet<String>> = graph.keys().map(|m| (m, reaches(m))).collect();
    let mut components: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for (module, reachable) in &reach {
        let component: BTreeSet<String> = reachable
            .iter()
            .filter(|other| reach.get(other).is_some_and(|back| back.contains(*module)))
            .cloned()
            .collect();
        if component.len() > 1 {
            components.insert(component);
        }
    }
    components.into_iter().collect()
}

#[test]
fn top_level_modules_import_each_other_without_cycles() {
    let found = cycles(&dependencies());
    assert!(found.is_empty(), "modules that import each other in a cycle: {found:?}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let edge = |a: &str, b: &str| (a.to_owned(), BTreeSet::from([b.to_owned()]));
    let graph = BTreeMap::from([edge("a", "b"), edge("b", "c"), edge("c", "a"), edge("d", "a")]);
    assert_eq!(cycles(&graph), vec![BTreeSet::from(["a".into(), "b".into(), "c".into()])]);
    assert_eq!(crate_paths("use crate::{db::{self, DbPool}, error};\ncrate::x::y()"), ["db", "error", "x"]);
}

#[test]
fn the_domain_depends_only_on_the_schema() {
    let graph = dependencies();
    let domain: Vec<&String> = graph["domain"].iter().filter(|m| *m != "schema").collect();
    assert!(domain.is_empty(), "domain imports {domain:?}");
}

#[test]
fn the_domain_and_the_database_layer_speak_no_http() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = rust_files(&src.join("domain"));
    files.extend([src.join("db.rs"), src.join("events.rs"), src.join("schema.rs")]);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for banned in ["actix_web", "ApiError", "HttpResponse"] {
            assert!(!text.contains(banned), "{} mentions {banned}", file.display());
        }
    }
}

#[test]
fn features_never_import_the_assembly_above_them() {
    let graph = dependencies();
    let features = ["auth", "users", "courses", "lessons", "attendance", "checkins", "live", "ops"];
    let assembly = ["startup", "cli", "openapi", "telemetry", "demo", "watch"];
    for feature in features {
        let wrong: Vec<&&str> = assembly.iter().filter(|a| graph[feature].contains(**a)).collect();
        assert!(wrong.is_empty(), "{feature} imports {wrong:?}");
    }
}

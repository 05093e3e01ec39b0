//! The module graph reads bottom-up: no import cycle between the top-level modules of `src/`, nor
//! between the modules inside one of them, and the picture on docs/architecture.md is the tree as
//! it is. An edge A → B is a non-comment line of A naming `crate::B` (or, inside a folder,
//! `super::B`), outside its unit tests (`#[cfg(test)] mod tests` at the end of a file, which may
//! build their fixtures with any module).
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap in a test is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The path components of a file below `src/`, without `.rs` and without a final `mod`.
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap();
    let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if let Some(last) = parts.last_mut() {
        *last = last.trim_end_matches(".rs").to_string();
    }
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b…` path a line names, as its components (words only).
fn crate_paths(line: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let mut parts = Vec::new();
        let mut tail = rest;
        loop {
            let word: String = tail.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if word.is_empty() {
                break;
            }
            tail = &tail[word.len()..];
            parts.push(word);
            match tail.strip_prefix("::") {
                Some(t) => tail = t,
                None => break,
            }
        }
        // `use crate::{a, b}` names several.
        if parts.is_empty() && tail.starts_with('{') {
            for name in tail[1..].split(['}', ',']).map(str::trim).take_while(|s| !s.is_empty()) {
                out.push(vec![name.split("::").next().unwrap_or(name).to_string()]);
            }
        } else if !parts.is_empty() {
            out.push(parts);
        }
    }
    out
}

/// (top-level graph, graph inside each top-level module).
fn graphs() -> (Graph, BTreeMap<String, Graph>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut top = Graph::new();
    let mut inner: BTreeMap<String, Graph> = BTreeMap::new();
    for file in files {
        let module = module_path(&src, &file);
        let Some(a) = module.first().cloned() else { continue };
        if a == "main" || a == "lib" {
            continue;
        }
        top.entry(a.clone()).or_default();
        let text = std::fs::read_to_string(&file).unwrap();
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or_default();
        for line in text.lines().map(str::trim).filter(|l| !l.starts_with("//")) {
            for path in crate_paths(line, "crate::") {
                let b = &path[0];
                if *b != a {
                    top.entry(a.clone()).or_default().insert(b.clone());
                } else if let (Some(x), Some(y)) = (module.get(1), path.get(1)) {
                    if x != y && !is_item(y) {
                        inner.entry(a.clone()).or_default().entry(x.clone()).or_default().insert(y.clone());
                    }
                }
            }
            // `super::y` from a file directly inside the folder `a` names its sibling `y`.
            if module.len() == 2 && !file.ends_with("mod.rs") {
                for path in crate_paths(line, "super::") {
                    let (x, y) = (&module[1], &path[0]);
                    if x != y && !is_item(y) {
                        inner.entry(a.clone()).or_default().entry(x.clone()).or_default().insert(y.clone());
                    }
                }
            }
        }
    }
    (top, inner)
}

/// Items a module's facade re-exports (`crate::model::Target`) are not modules.
fn is_item(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_uppercase()) || name.chars().all(|c| c.is_uppercase() || c == '_')
}

/// Strongly connected components with more than one node (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let (top, _) = graphs();
    assert!(cycles(&top).is_empty(), "top-level modules in an import cycle: {:?}\n{top:#?}", cycles(&top));
}

#[test]
fn no_import_cycle_inside_a_top_level_module() {
    let (_, inner) = graphs();
    let found: Vec<String> = inner
        .iter()
        .flat_map(|(group, g)| cycles(g).into_iter().map(move |c| format!("{group}: {}", c.join(" ↔ "))))
        .collect();
    assert!(found.is_empty(), "modules in an import cycle: {found:#?}");
}

/// The picture of docs/architecture.md, between its `module-graph` markers, is the graph: one
/// line a module, `name → what it uses`, bottom-up.
#[test]
fn the_architecture_page_shows_the_module_graph_as_it_is() {
    let (top, _) = graphs();
    let mut order: Vec<&String> = Vec::new();
    // Bottom-up: a module after everything it uses.
    while order.len() < top.len() {
        let next = top
            .iter()
            .find(|(m, deps)| !order.contains(m) && deps.iter().all(|d| !top.contains_key(d) || order.contains(&d)))
            .map(|(m, _)| m)
            .expect("acyclic");
        order.push(next);
    }
    let expected: String = order
        .iter()
        .map(|m| {
            let deps: Vec<&str> = top[*m].iter().filter(|d| top.contains_key(*d)).map(String::as_str).collect();
            if deps.is_empty() { format!("{m}\n") } else { format!("{m} → {}\n", deps.join(" ")) }
        })
        .collect();
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/architecture.md")).unwrap();
    let start = page.find("<!-- module-graph -->\n```text\n").expect("docs/architecture.md has a module-graph block");
    let block = &page[start + "<!-- module-graph -->\n```text\n".len()..];
    let shown = &block[..block.find("```").unwrap()];
    assert_eq!(shown, expected, "docs/architecture.md's module graph is out of date; it should read:\n{expected}");
}

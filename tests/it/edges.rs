//! The module edges of `docs/ARCHITECTURE.md` are checked, not just written: every file of the
//! library crate (the module tree from `src/lib.rs`; `src/main.rs` and its own modules
//! and `src/build.rs` are other crates) is read, each path naming another top-level module
//! (`use crate::x`, `crate::x::f()`, `use crate::{x, y::z}`, `super::` chains that climb to the
//! crate root) is an edge, and an edge the doc's "Module edges" table does not allow fails the
//! test with `file:line  from → to`. The rules live in the doc alone, so the doc and the check
//! cannot drift apart.
//!
//! Deliberately not checked: items under `#[cfg(test)]` (test code may build fixtures from any
//! module), and `src/lib.rs` itself, which only declares the modules. Comments, doc comments and
//! string literals never count. A use of another module through a re-export (`pub use`) counts
//! as an edge to the re-exporting module only, which is what the table is about.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the table lives and how its section is titled.
const ARCHITECTURE: &str = "docs/ARCHITECTURE.md";
const SECTION: &str = "## Module edges";

#[test]
fn module_edges_follow_the_architecture() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files = crate_files(&root.join("src"))
        .unwrap_or_else(|problems| panic!("cannot walk the module tree:\n{}", problems.join("\n")));
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|file| file.module.first().cloned())
        .collect();
    let doc = std::fs::read_to_string(root.join(ARCHITECTURE)).expect("read the architecture doc");
    let rules = parse_rules(&doc, &modules)
        .unwrap_or_else(|problems| panic!("{ARCHITECTURE}: {}", problems.join("\n")));

    let mut violations = String::new();
    for file in &files {
        let Some(from) = file.module.first() else {
            continue; // the crate root only declares modules
        };
        let source = std::fs::read_to_string(&file.path).expect("read a source file");
        let relative = file.path.strip_prefix(root).unwrap_or(&file.path);
        for edge in scan(&source, &file.module, &modules).edges {
            if edge.to != *from && !rules.allows(from, &edge.to) {
                let _ = writeln!(
                    violations,
                    "{}:{}  {from} → {}",
                    relative.display(),
                    edge.line,
                    edge.to
                );
            }
        }
    }
    assert!(
        violations.is_empty(),
        "edges that {ARCHITECTURE} (\"{SECTION}\") does not allow:\n{violations}"
    );
}

// ---------------------------------------------------------------------------------------------
// The rules

/// Which top-level modules each one may use (`None`: any, the `*` of the composition root).
#[derive(Debug)]
struct Rules(BTreeMap<String, Option<BTreeSet<String>>>);

impl Rules {
    fn allows(&self, from: &str, to: &str) -> bool {
        match self.0.get(from) {
            Some(None) => true,
            Some(Some(allowed)) => allowed.contains(to),
            None => false,
        }
    }
}

/// Read the `| module | may use |` table under [`SECTION`]. Every module of the crate needs a row,
/// and every name in the table must be a module, so a new or renamed module cannot slip past.
fn parse_rules(doc: &str, modules: &BTreeSet<String>) -> Result<Rules, Vec<String>> {
    let Some(start) = doc.lines().position(|line| line.trim() == SECTION) else {
        return Err(vec![format!("no \"{SECTION}\" section")]);
    };
    let rows = doc
        .lines()
        .skip(start + 1)
        .take_while(|line| !line.starts_with("## "))
        .map(str::trim)
        .filter(|line| line.starts_with('|'));
    let mut rules = BTreeMap::new();
    let mut problems = Vec::new();
    // The first row is the header, the second the `---` separator.
    for row in rows.skip(2) {
        let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
        let (Some(module), Some(may_use)) = (cells.first(), cells.get(1)) else {
            problems.push(format!("row without two cells: {row}"));
            continue;
        };
        let module = unquote(module);
        if !modules.contains(&module) {
            problems.push(format!(
                "row for `{module}`, which is not a module of the crate"
            ));
        }
        let allowed = if *may_use == "*" {
            None
        } else {
            let mut allowed = BTreeSet::new();
            for name in may_use.split(',').map(unquote) {
                if name.is_empty() || name == "—" || name == "-" {
                    continue;
                }
                if !modules.contains(&name) {
                    problems.push(format!(
                        "`{module}` may use `{name}`, which is not a module"
                    ));
                }
                allowed.insert(name);
            }
            Some(allowed)
        };
        if rules.insert(module.clone(), allowed).is_some() {
            problems.push(format!("two rows for `{module}`"));
        }
    }
    for module in modules {
        if !rules.contains_key(module) {
            problems.push(format!("no row for module `{module}`"));
        }
    }
    if problems.is_empty() {
        Ok(Rules(rules))
    } else {
        Err(problems)
    }
}

fn unquote(cell: &str) -> String {
    cell.trim().trim_matches('`').trim().to_owned()
}

// ---------------------------------------------------------------------------------------------
// The module tree

/// One file of the library crate and the module path it defines (`["engine", "plan"]`).
#[derive(Debug)]
struct CrateFile {
    path: PathBuf,
    module: Vec<String>,
}

/// Every file reachable from `src/lib.rs` through `mod name;` declarations (outside
/// `#[cfg(test)]`), in the order they are found.
fn crate_files(src: &Path) -> Result<Vec<CrateFile>, Vec<String>> {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut queue = vec![CrateFile {
        path: src.join("lib.rs"),
        module: Vec::new(),
    }];
    while let Some(file) = queue.pop() {
        let source = match std::fs::read_to_string(&file.path) {
            Ok(source) => source,
            Err(err) => {
                problems.push(format!("{}: {err}", file.path.display()));
                continue;
            }
        };
        // `lib.rs` and `mod.rs` hold their children beside them; `a.rs` holds them in `a/`.
        let is_dir_owner = file
            .path
            .file_name()
            .is_some_and(|n| n == "lib.rs" || n == "mod.rs");
        let base = match (is_dir_owner, file.path.parent(), file.module.last()) {
            (false, Some(parent), Some(name)) => parent.join(name),
            (_, Some(parent), _) => parent.to_owned(),
            (_, None, _) => PathBuf::new(),
        };
        for child in scan(&source, &file.module, &BTreeSet::new()).children {
            if child.has_path_attribute {
                problems.push(format!(
                    "{}:{}: `#[path]` on `mod {}` is not supported by this check",
                    file.path.display(),
                    child.line,
                    child.name
                ));
                continue;
            }
            let dir = child.inline.iter().fold(base.clone(), |dir, m| dir.join(m));
            let candidates = [
                dir.join(format!("{}.rs", child.name)),
                dir.join(&child.name).join("mod.rs"),
            ];
            let Some(path) = candidates.into_iter().find(|p| p.is_file()) else {
                problems.push(format!(
                    "{}:{}: no file for `mod {}`",
                    file.path.display(),
                    child.line,
                    child.name
                ));
                continue;
            };
            let mut module = file.module.clone();
            module.extend(child.inline.iter().cloned());
            module.push(child.name.clone());
            queue.push(CrateFile { path, module });
        }
        files.push(file);
    }
    if problems.is_empty() {
        Ok(files)
    } else {
        Err(problems)
    }
}

// ---------------------------------------------------------------------------------------------
// The scanner

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `::`, or one punctuation character.
    Punct(&'static str),
    /// A string, char or number literal: its content never counts, and it ends a path.
    Literal,
    /// Any other punctuation character (ends a path).
    Other,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

/// A path in a file that names a top-level module.
#[derive(Debug, Clone, PartialEq)]
struct Edge {
    line: usize,
    to: String,
}

/// An out-of-line `mod name;` declaration, inside the inline modules `inline`.
#[derive(Debug, Clone, PartialEq)]
struct ChildModule {
    name: String,
    inline: Vec<String>,
    line: usize,
    has_path_attribute: bool,
}

#[derive(Debug, Default)]
struct Scan {
    edges: Vec<Edge>,
    children: Vec<ChildModule>,
}

/// Split Rust source into tokens, dropping whitespace, comments (nested block comments and doc
/// comments too), and the content of string, char and number literals.
fn tokenize(source: &str) -> Vec<Token> {
    let chars: Vec<char> = source.chars().collect();
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut i = 0;
    let at = |i: usize| chars.get(i).copied().unwrap_or('\0');
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        let push = |tokens: &mut Vec<Token>, tok| {
            tokens.push(Token {
                tok,
                line: start_line,
            })
        };
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(i + 1) == '/' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(chars[i] == '\n');
                    i += 1;
                }
            }
        } else if c == '"' {
            i = skip_string(&chars, i + 1, &mut line);
            push(&mut tokens, Tok::Literal);
        } else if c == '\'' {
            // A char literal (`'x'`, `'\n'`, `'\''`) or a lifetime / label (`'a`).
            if at(i + 1) == '\\' {
                // Past the backslash and the escaped character (which may be a quote).
                i += 3;
                while i < chars.len() && chars[i] != '\'' {
                    i += 1;
                }
                i += 1;
                push(&mut tokens, Tok::Literal);
            } else if at(i + 2) == '\'' {
                i += 3;
                push(&mut tokens, Tok::Literal);
            } else {
                i += 1;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                push(&mut tokens, Tok::Other);
            }
        } else if c.is_ascii_digit() {
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            push(&mut tokens, Tok::Literal);
        } else if is_ident_char(c) {
            let begin = i;
            while i < chars.len() && is_ident_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[begin..i].iter().collect();
            let raw_prefix = matches!(word.as_str(), "r" | "br" | "cr");
            let string_prefix = matches!(word.as_str(), "b" | "c");
            if raw_prefix && (at(i) == '"' || (at(i) == '#' && matches!(at(i + 1), '#' | '"'))) {
                i = skip_raw_string(&chars, i, &mut line);
                push(&mut tokens, Tok::Literal);
            } else if word == "r" && at(i) == '#' && is_ident_char(at(i + 1)) {
                // A raw identifier: `r#type`.
                let begin = i + 1;
                i = begin;
                while i < chars.len() && is_ident_char(chars[i]) {
                    i += 1;
                }
                push(&mut tokens, Tok::Ident(chars[begin..i].iter().collect()));
            } else if string_prefix && at(i) == '"' {
                i = skip_string(&chars, i + 1, &mut line);
                push(&mut tokens, Tok::Literal);
            } else if word == "b" && at(i) == '\'' {
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                push(&mut tokens, Tok::Literal);
            } else {
                push(&mut tokens, Tok::Ident(word));
            }
        } else if c == ':' && at(i + 1) == ':' {
            i += 2;
            push(&mut tokens, Tok::Punct("::"));
        } else {
            i += 1;
            let tok = match c {
                '{' => Tok::Punct("{"),
                '}' => Tok::Punct("}"),
                '(' => Tok::Punct("("),
                ')' => Tok::Punct(")"),
                '[' => Tok::Punct("["),
                ']' => Tok::Punct("]"),
                ',' => Tok::Punct(","),
                ';' => Tok::Punct(";"),
                '#' => Tok::Punct("#"),
                '!' => Tok::Punct("!"),
                '=' => Tok::Punct("="),
                _ => Tok::Other,
            };
            push(&mut tokens, tok);
        }
    }
    tokens
}

fn is_ident_char(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Past the closing quote of a string whose content starts at `i`.
fn skip_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    while i < chars.len() && chars[i] != '"' {
        if chars[i] == '\\' {
            i += 1;
        }
        if chars.get(i) == Some(&'\n') {
            *line += 1;
        }
        i += 1;
    }
    i + 1
}

/// Past a raw string whose hashes (or opening quote) start at `i`.
fn skip_raw_string(chars: &[char], mut i: usize, line: &mut usize) -> usize {
    let mut hashes = 0;
    while chars.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    i += 1; // the opening quote
    while i < chars.len() {
        if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
            return i + 1 + hashes;
        }
        *line += usize::from(chars[i] == '\n');
        i += 1;
    }
    i
}

/// Drop every item under `#[cfg(test)]` (and a file under `#![cfg(test)]` entirely). An item
/// ends at the `;` or the closing `}` that brings the nesting back to where it started.
fn without_test_items(tokens: Vec<Token>) -> Vec<Token> {
    let is = |t: &Token, tok: &Tok| t.tok == *tok;
    let cfg_test = [
        Tok::Punct("["),
        Tok::Ident("cfg".into()),
        Tok::Punct("("),
        Tok::Ident("test".into()),
        Tok::Punct(")"),
        Tok::Punct("]"),
    ];
    let matches_at = |tokens: &[Token], i: usize| {
        cfg_test
            .iter()
            .enumerate()
            .all(|(k, tok)| tokens.get(i + k).is_some_and(|t| is(t, tok)))
    };
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if is(&tokens[i], &Tok::Punct("#")) {
            if tokens.get(i + 1).is_some_and(|t| is(t, &Tok::Punct("!")))
                && matches_at(&tokens, i + 2)
            {
                return Vec::new();
            }
            if matches_at(&tokens, i + 1) {
                i = end_of_item(&tokens, i + 1 + cfg_test.len());
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// The index past the item starting at `i` (after its attributes). A closing bracket that was
/// not opened in the item (the end of the struct whose last field it was) is not part of it.
fn end_of_item(tokens: &[Token], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < tokens.len() {
        match tokens[i].tok {
            Tok::Punct("{" | "(" | "[") => depth += 1,
            Tok::Punct("}" | ")" | "]") => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 && tokens[i].tok == Tok::Punct("}") {
                    return i + 1;
                }
            }
            Tok::Punct(";") if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}

/// The edges to top-level `modules` of a file defining `module` (its path from the crate root),
/// and its out-of-line child modules. Edges to its own top-level module are included; the caller
/// drops them.
fn scan(source: &str, module: &[String], modules: &BTreeSet<String>) -> Scan {
    let tokens = without_test_items(tokenize(source));
    let ident = |i: usize| match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(name)) => Some(name.as_str()),
        _ => None,
    };
    let punct =
        |i: usize, p: &str| matches!(tokens.get(i).map(|t| &t.tok), Some(Tok::Punct(q)) if *q == p);
    let mut scan = Scan::default();
    // Inline modules we are in, with the brace depth just inside each.
    let mut inline: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i].tok {
            Tok::Punct("{") => depth += 1,
            Tok::Punct("}") => {
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Ident(word) if word == "mod" => {
                if let Some(name) = ident(i + 1) {
                    if punct(i + 2, "{") {
                        inline.push((name.to_owned(), depth + 1));
                    } else if punct(i + 2, ";") {
                        scan.children.push(ChildModule {
                            name: name.to_owned(),
                            inline: inline.iter().map(|(n, _)| n.clone()).collect(),
                            line: tokens[i].line,
                            has_path_attribute: has_path_attribute(&tokens, i),
                        });
                    }
                }
            }
            Tok::Ident(word) if word == "crate" && punct(i + 1, "::") => {
                roots_named(&tokens, i + 2, modules, &mut scan.edges);
            }
            Tok::Ident(word) if word == "super" && !(i > 0 && punct(i - 1, "::")) => {
                // `super::super::x`: climbs from the inline module we are in.
                let mut here: Vec<&str> = module.iter().map(String::as_str).collect();
                here.extend(inline.iter().map(|(n, _)| n.as_str()));
                let mut j = i;
                let mut climbs = 0;
                while ident(j) == Some("super") && punct(j + 1, "::") {
                    climbs += 1;
                    j += 2;
                }
                if climbs == here.len() {
                    roots_named(&tokens, j, modules, &mut scan.edges);
                }
                i = j.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    scan
}

/// The top-level modules named right after a path's root (`crate::` or a `super::` chain that
/// reached it) at `i`: one name, or the first name of each item of a `{…}` group.
fn roots_named(tokens: &[Token], i: usize, modules: &BTreeSet<String>, edges: &mut Vec<Edge>) {
    let mut push = |token: &Token| {
        if let Tok::Ident(name) = &token.tok
            && modules.contains(name)
        {
            edges.push(Edge {
                line: token.line,
                to: name.clone(),
            });
        }
    };
    match tokens.get(i).map(|t| &t.tok) {
        Some(Tok::Ident(_)) => push(&tokens[i]),
        Some(Tok::Punct("{")) => {
            let mut depth = 0;
            let mut item_start = true;
            for token in &tokens[i..] {
                match token.tok {
                    Tok::Punct("{") => {
                        depth += 1;
                        if depth > 1 {
                            item_start = false;
                        }
                        continue;
                    }
                    Tok::Punct("}") => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                        continue;
                    }
                    Tok::Punct(",") if depth == 1 => {
                        item_start = true;
                        continue;
                    }
                    _ => {}
                }
                if item_start && depth == 1 {
                    push(token);
                    item_start = false;
                }
            }
        }
        _ => {}
    }
}

/// Whether the attributes right before the `mod` at `i` include `#[path = …]`.
fn has_path_attribute(tokens: &[Token], i: usize) -> bool {
    // Walk back over `pub`, `pub(crate)` and attributes.
    let mut j = i;
    while j > 0 {
        j -= 1;
        match &tokens[j].tok {
            Tok::Ident(w) if w == "pub" || w == "crate" || w == "super" || w == "in" => {}
            Tok::Punct("(" | ")") => {}
            Tok::Punct("]") => {
                // Find the attribute's `#[`, and look at its first word.
                let mut k = j;
                while k > 0 && tokens[k].tok != Tok::Punct("[") {
                    k -= 1;
                }
                if matches!(&tokens.get(k + 1).map(|t| &t.tok), Some(Tok::Ident(w)) if w == "path")
                {
                    return true;
                }
                j = k.saturating_sub(1); // the `#`
            }
            _ => return false,
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// The scanner's own tests

fn edges_of(source: &str, module: &[&str]) -> Vec<(usize, String)> {
    let modules: BTreeSet<String> = ["api", "domain", "engine", "store", "web", "x", "y"]
        .into_iter()
        .map(String::from)
        .collect();
    let module: Vec<String> = module.iter().map(|m| m.to_string()).collect();
    scan(source, &module, &modules)
        .edges
        .into_iter()
        .map(|e| (e.line, e.to))
        .collect()
}

#[track_caller]
fn check(source: &str, module: &[&str], expected: &[(usize, &str)]) {
    let expected: Vec<(usize, String)> =
        expected.iter().map(|(l, m)| (*l, m.to_string())).collect();
    assert_eq!(edges_of(source, module), expected, "{source}");
}

#[test]
fn plain_and_expression_paths_are_edges() {
    check(
        "use crate::domain::RunId;\nfn f() { crate::store::open(); let x: crate::x::T; }",
        &["engine"],
        &[(1, "domain"), (2, "store"), (2, "x")],
    );
}

#[test]
fn grouped_nested_and_multi_line_uses_are_edges() {
    check(
        "use crate::{domain, store::Store};",
        &["engine"],
        &[(1, "domain"), (1, "store")],
    );
    check(
        "use crate::{\n    domain::{RunId, StepKind},\n    store::{self, db::{Tx}},\n    x,\n};",
        &["engine"],
        &[(2, "domain"), (3, "store"), (4, "x")],
    );
    check(
        "use crate::{self as root, web::{router}};",
        &["api"],
        &[(1, "web")],
    );
    check(
        "use crate\n    ::web\n    ::router;",
        &["api"],
        &[(2, "web")],
    );
}

#[test]
fn comments_and_strings_are_not_edges() {
    check(
        "// use crate::x;\n/// [`crate::x`]\n//! crate::x\n/* crate::x /* nested crate::y */ crate::x */\nfn f() {}",
        &["engine"],
        &[],
    );
    check(
        "const A: &str = \"crate::x\";\nconst B: &str = r#\"crate::x \" still\"#;\nconst C: char = '\"';\nuse crate::y;",
        &["engine"],
        &[(4, "y")],
    );
    check(
        "pub(crate) fn f<'a>(x: &'a str) -> char { '{' }\nuse crate::y;",
        &["engine"],
        &[(2, "y")],
    );
    check(
        "let c = '\\''; let b = b'}'; let d = b\"crate::x\";\nuse crate::y;",
        &["engine"],
        &[(2, "y")],
    );
}

#[test]
fn names_that_are_not_top_level_modules_are_not_edges() {
    check(
        "use crate::ALLOCATOR;\nuse std::fmt;\nuse api::x;",
        &["engine"],
        &[],
    );
}

#[test]
fn super_chains_count_only_when_they_reach_the_crate_root() {
    check("use super::react;", &["engine", "plan"], &[]);
    check(
        "use super::super::store::Store;",
        &["engine", "plan"],
        &[(1, "store")],
    );
    check(
        "use super::{web, domain::RunId};",
        &["api"],
        &[(1, "web"), (1, "domain")],
    );
    // Inside an inline module, `super` climbs out of it first.
    check(
        "mod keys {\n    use super::super::store;\n    use super::web;\n}\nuse super::web;",
        &["api"],
        &[(2, "store"), (5, "web")],
    );
    check(
        "mod keys { use super::super::store; }",
        &["api", "spans"],
        &[],
    );
}

#[test]
fn test_items_are_not_checked() {
    check(
        "#[cfg(test)]\nmod tests {\n    use crate::store;\n    fn f() { crate::web::x(); }\n}\nuse crate::domain;",
        &["engine"],
        &[(6, "domain")],
    );
    check(
        "#[cfg(test)]\n#[allow(unused)]\nuse crate::store;\nuse crate::x;",
        &["engine"],
        &[(4, "x")],
    );
    check(
        "#[cfg(test)]\nmod tests;\nuse crate::x;",
        &["engine"],
        &[(3, "x")],
    );
    check("#![cfg(test)]\nuse crate::x;", &["engine"], &[]);
}

#[test]
fn child_modules_are_found_with_their_inline_parents() {
    let source = "mod a;\npub(crate) mod b;\n#[cfg(test)]\nmod tests;\nmod inline {\n    mod c;\n}\n#[path = \"x.rs\"]\nmod d;";
    let children: Vec<(String, Vec<String>, bool)> = scan(source, &[], &BTreeSet::new())
        .children
        .into_iter()
        .map(|c| (c.name, c.inline, c.has_path_attribute))
        .collect();
    assert_eq!(
        children,
        [
            ("a".to_owned(), vec![], false),
            ("b".to_owned(), vec![], false),
            ("c".to_owned(), vec!["inline".to_owned()], false),
            ("d".to_owned(), vec![], true),
        ]
    );
}

#[test]
fn the_table_is_read_and_must_cover_every_module() {
    let modules: BTreeSet<String> = ["app", "domain", "engine"]
        .into_iter()
        .map(String::from)
        .collect();
    let doc = "# A\n\n## Module edges\n\nText.\n\n| module | may use |\n| --- | --- |\n| `app` | * |\n| `domain` | — |\n| `engine` | `domain` |\n\n## Next\n| `x` | `y` |\n";
    let rules = parse_rules(doc, &modules).expect("valid table");
    assert!(rules.allows("app", "engine"));
    assert!(rules.allows("engine", "domain"));
    assert!(!rules.allows("engine", "app"));
    assert!(!rules.allows("domain", "engine"));

    let missing = "## Module edges\n| module | may use |\n| --- | --- |\n| `app` | `nope` |\n";
    assert_eq!(
        parse_rules(missing, &modules).expect_err("incomplete table"),
        [
            "`app` may use `nope`, which is not a module",
            "no row for module `domain`",
            "no row for module `engine`",
        ]
    );
}

//! The text of the `plugins` command, shared by `aiperf-gen plugins` and every generated
//! binary's `plugins`, so both show the same packs, categories and entries the same way.
//!
//! Callers describe what is registered as a [`Catalog`] (plain owned data: the generator
//! fills it from the manifests it resolved, a binary from the statics it was generated
//! with) and ask for one of AIPerf's four views: packs, all categories, one category, one
//! entry. Layout follows AIPerf 0.13's `aiperf plugins` (Rich tables and panels) in plain
//! box-drawing text sized to a given width.
//!
//! This module compiles without the `engine` feature and uses only `std` and `serde_json`.

use std::fmt::Write as _;

/// A pack (plugin package) in registration order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackRow {
    /// Package name (`aiperf-core`).
    pub name: String,
    /// Package version.
    pub version: String,
    /// One-line summary.
    pub description: String,
    /// Built-in packs lose name conflicts to external ones at equal priority.
    pub builtin: bool,
}

/// A category and its description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryRow {
    /// snake_case name (`endpoint`).
    pub name: String,
    /// What the category is for.
    pub description: String,
}

/// One registered entry, shadowed ones included.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryRow {
    /// Category name.
    pub category: String,
    /// Name as spelt in its manifest.
    pub name: String,
    /// `crate::module:Type`.
    pub class_path: String,
    /// Pack that registered it.
    pub pack: String,
    /// Conflict priority.
    pub priority: i64,
    /// Description from the manifest.
    pub description: String,
    /// Metadata from the manifest (an object; empty when none).
    pub metadata: serde_json::Value,
    /// Class path of the entry that owns the name, when this one is shadowed.
    pub shadowed_by: Option<String>,
}

/// Everything the `plugins` command shows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Catalog {
    /// Packs in registration order.
    pub packs: Vec<PackRow>,
    /// Known categories with descriptions (they need not all have entries).
    pub categories: Vec<CategoryRow>,
    /// Entries in registration order, shadowed ones included.
    pub entries: Vec<EntryRow>,
}

/// How to render: the terminal width and the command to show in usage hints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Style {
    /// Total width in columns.
    pub width: usize,
    /// What the user typed to get here, e.g. `aiperf-gen plugins`.
    pub command: String,
}

impl Style {
    /// `command` at the terminal's width: `COLUMNS` when set, else 80 (what Rich assumes
    /// when output is not a terminal, so piped output is stable).
    pub fn for_terminal(command: impl Into<String>) -> Self {
        let width = std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|w| *w >= 40)
            .unwrap_or(80);
        Self {
            width,
            command: command.into(),
        }
    }
}

/// Why an entry lost its name, derived as AIPerf decides conflicts: priority, then
/// external over built-in, then registration order. Arguments are (priority, built-in) of
/// the winner and of the loser.
pub fn shadow_reason(winner: (i64, bool), loser: (i64, bool)) -> &'static str {
    if winner.0 != loser.0 {
        "higher priority"
    } else if winner.1 != loser.1 {
        "external pack beats built-in at equal priority"
    } else {
        "first registered wins at equal priority"
    }
}

impl Catalog {
    /// AIPerf's name normalisation: lower case, `-` read as `_`.
    fn norm(name: &str) -> String {
        name.trim().to_lowercase().replace('-', "_")
    }

    /// Entries that own their names.
    fn winners(&self) -> impl Iterator<Item = &EntryRow> {
        self.entries.iter().filter(|e| e.shadowed_by.is_none())
    }

    fn is_builtin(&self, pack: &str) -> bool {
        self.packs.iter().any(|p| p.name == pack && p.builtin)
    }

    fn reason(&self, winner: &EntryRow, loser: &EntryRow) -> &'static str {
        shadow_reason(
            (winner.priority, self.is_builtin(&winner.pack)),
            (loser.priority, self.is_builtin(&loser.pack)),
        )
    }

    /// Categories with at least one entry, sorted by name (AIPerf's `list_categories`).
    pub fn registered_categories(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for e in &self.entries {
            if !names.contains(&e.category.as_str()) {
                names.push(&e.category);
            }
        }
        names.sort_unstable();
        names
    }

    /// The registered category `name` denotes (normalised), or a message saying why none.
    fn find_category(&self, name: &str) -> Result<&str, String> {
        let registered = self.registered_categories();
        let wanted = Self::norm(name);
        if let Some(found) = registered.iter().find(|c| Self::norm(c) == wanted) {
            return Ok(found);
        }
        let known = self
            .categories
            .iter()
            .any(|c| Self::norm(&c.name) == wanted);
        let mut message = if known {
            format!(
                "no plugins are registered in category `{}`",
                printable(name)
            )
        } else {
            format!("unknown plugin category `{}`", printable(name))
        };
        if let Some(s) = did_you_mean(&wanted, registered.iter().copied()) {
            let _ = write!(message, "; did you mean `{s}`?");
        }
        let _ = write!(message, "\nCategories: {}", registered.join(", "));
        Err(message)
    }

    /// No arguments: the packs, with versions and plugin counts, then any conflicts.
    pub fn render_packs(&self, style: &Style) -> String {
        let mut table = Table::new(
            "Installed Packages",
            &[
                ("Package", Fit::Keep),
                ("Version", Fit::Keep),
                ("Plugins", Fit::Keep),
                ("Description", Fit::Wrap),
            ],
        );
        table.right_align(2);
        for p in &self.packs {
            let count = self.entries.iter().filter(|e| e.pack == p.name).count();
            table.row(vec![
                p.name.clone(),
                p.version.clone(),
                count.to_string(),
                p.description.clone(),
            ]);
        }
        let mut out = table.render(style.width);
        let conflicts = self.conflicts();
        if !conflicts.is_empty() {
            out.push_str("\nConflicts:\n");
            for line in conflicts {
                for (i, piece) in wrap(&line, style.width.saturating_sub(4))
                    .iter()
                    .enumerate()
                {
                    let indent = if i == 0 { "  " } else { "    " };
                    let _ = writeln!(out, "{indent}{piece}");
                }
            }
        }
        let _ = writeln!(
            out,
            "\nUsage: {} --all to see all categories and plugins",
            style.command
        );
        out
    }

    /// One line per shadowed entry: `cat:name: winner-pack (class) shadows loser-pack
    /// (class): reason`.
    pub fn conflicts(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for loser in &self.entries {
            let Some(by) = &loser.shadowed_by else {
                continue;
            };
            let winner = self.winners().find(|w| {
                &w.class_path == by
                    && w.category == loser.category
                    && Self::norm(&w.name) == Self::norm(&loser.name)
            });
            let Some(winner) = winner else {
                continue;
            };
            lines.push(format!(
                "{}:{}: {} ({}) shadows {} ({}): {}",
                winner.category,
                printable(&winner.name),
                winner.pack,
                winner.class_path,
                loser.pack,
                loser.class_path,
                self.reason(winner, loser)
            ));
        }
        lines
    }

    /// `--all`: every category with its plugins.
    pub fn render_all(&self, style: &Style) -> String {
        let mut table = Table::new(
            "Plugin Categories",
            &[("Category", Fit::Keep), ("Plugins", Fit::Wrap)],
        );
        table.rules_between_rows();
        for category in self.registered_categories() {
            let names: Vec<String> = self
                .winners()
                .filter(|e| e.category == category)
                .map(|e| printable(&e.name))
                .collect();
            table.row(vec![title_case(category), names.join(", ")]);
        }
        let mut out = table.render(style.width);
        let _ = writeln!(
            out,
            "\nUsage: {} <category> to see available types",
            style.command
        );
        out
    }

    /// `CATEGORY`: its description and its entries; shadowed entries are marked.
    ///
    /// # Errors
    /// The message to print when the category is unknown or empty.
    pub fn render_category(&self, category: &str, style: &Style) -> Result<String, String> {
        let category = self.find_category(category)?;
        let mut out = String::new();
        let description = self
            .categories
            .iter()
            .find(|c| c.name == category)
            .map(|c| c.description.trim())
            .unwrap_or_default();
        if !description.is_empty() {
            for line in description.lines() {
                for piece in wrap(&printable(line), style.width) {
                    out.push_str(&piece);
                    out.push('\n');
                }
            }
            out.push('\n');
        }
        let mut table = Table::new(
            &format!("{} Types", title_case(category)),
            &[("Type", Fit::Keep), ("Description", Fit::Cut)],
        );
        for e in self.entries.iter().filter(|e| e.category == category) {
            let (name, text) = match &e.shadowed_by {
                None => (printable(&e.name), e.description.trim_end().to_owned()),
                Some(by) => (
                    format!("{} (shadowed)", printable(&e.name)),
                    format!("{}: {} (name taken by {by})", e.pack, e.class_path),
                ),
            };
            table.row(vec![name, text]);
        }
        out.push_str(&table.render(style.width));
        let _ = writeln!(
            out,
            "\nUsage: {} <category> <type> for details",
            style.command
        );
        Ok(out)
    }

    /// `CATEGORY NAME`: a panel with the entry's details. `name` is a plugin name
    /// (normalised; the owner is shown) or a full class path (shadowed entries too). A
    /// name that matches nothing is shown as AIPerf shows it, `Not found` with the
    /// available names, and is no error: `aiperf plugins` exits 0 then.
    ///
    /// # Errors
    /// An unknown category, as for [`render_category`](Self::render_category).
    pub fn render_entry(
        &self,
        category: &str,
        name: &str,
        style: &Style,
    ) -> Result<String, String> {
        let resolved = self.find_category(category)?;
        let in_category = || self.entries.iter().filter(|e| e.category == resolved);
        let wanted = Self::norm(name);
        let entry = in_category().rfind(|e| e.class_path == name).or_else(|| {
            in_category().find(|e| e.shadowed_by.is_none() && Self::norm(&e.name) == wanted)
        });
        let Some(entry) = entry else {
            let names: Vec<String> = in_category()
                .filter(|e| e.shadowed_by.is_none())
                .map(|e| printable(&e.name))
                .collect();
            let mut message = format!("Not found: {resolved}:{}", printable(name));
            if let Some(s) = did_you_mean(&wanted, names.iter().map(String::as_str)) {
                let _ = write!(message, " (did you mean `{s}`?)");
            }
            let _ = writeln!(message, "\nAvailable: {}", names.join(", "));
            return Ok(message);
        };

        let mut lines = vec![
            format!("Type: {}", printable(&entry.name)),
            format!("Category: {}", entry.category),
            format!("Package: {}", entry.pack),
            format!("Class: {}", entry.class_path),
            format!("Priority: {}", entry.priority),
        ];
        match &entry.shadowed_by {
            Some(by) => {
                let winner = in_category().find(|w| {
                    w.shadowed_by.is_none()
                        && &w.class_path == by
                        && Self::norm(&w.name) == Self::norm(&entry.name)
                });
                let reason =
                    winner.map(|w| format!("{} ({by}): {}", w.pack, self.reason(w, entry)));
                lines.push(format!(
                    "Status: shadowed by {}",
                    reason.unwrap_or_else(|| by.clone())
                ));
                lines.push(format!("Select it by class path: {}", entry.class_path));
            }
            None => {
                lines.push("Status: selected".to_owned());
                for loser in in_category().filter(|l| {
                    l.shadowed_by.as_deref() == Some(entry.class_path.as_str())
                        && Self::norm(&l.name) == Self::norm(&entry.name)
                }) {
                    lines.push(format!("Shadows: {} ({})", loser.pack, loser.class_path));
                }
            }
        }
        lines.push(String::new());
        let description = entry.description.trim_end();
        if description.trim().is_empty() {
            lines.push("No description".to_owned());
        } else {
            lines.extend(description.lines().map(printable));
        }
        lines.push(String::new());
        match entry.metadata.as_object().filter(|m| !m.is_empty()) {
            None => lines.push("Metadata: none".to_owned()),
            Some(map) => {
                lines.push("Metadata:".to_owned());
                for (key, value) in map {
                    let shown = match value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    lines.push(format!("  {}: {}", printable(key), printable(&shown)));
                }
            }
        }
        let title = format!("{resolved}:{}", printable(name));
        Ok(panel(&title, &lines, style.width))
    }
}

/// One failed check of `plugins --validate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Category of the entry.
    pub category: String,
    /// Entry name.
    pub name: String,
    /// What is wrong.
    pub message: String,
}

/// `--validate`: each check with `(OK)` or `(FAIL)` and its problems, then the verdict.
/// Returns the text and whether every check passed.
pub fn render_validation(checks: &[(&str, Vec<Problem>)]) -> (String, bool) {
    let mut out = String::from("Validating plugins...\n");
    let mut ok = true;
    for (name, problems) in checks {
        out.push('\n');
        if problems.is_empty() {
            let _ = writeln!(out, "(OK) {name}");
        } else {
            ok = false;
            let _ = writeln!(out, "(FAIL) {name}");
            for p in problems {
                let _ = writeln!(
                    out,
                    "  {}:{} - {}",
                    p.category,
                    printable(&p.name),
                    printable(&p.message)
                );
            }
        }
    }
    out.push('\n');
    out.push_str(if ok {
        "All checks passed\n"
    } else {
        "Validation failed\n"
    });
    (out, ok)
}

/// `api_router` → `API Router`, with AIPerf's acronyms upper-cased.
pub fn title_case(snake: &str) -> String {
    const ACRONYMS: &[&str] = &[
        "ui", "api", "gpu", "cpu", "http", "zmq", "csv", "json", "hf", "tei", "url",
    ];
    snake
        .split(['_', '-'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            if ACRONYMS.contains(&w) {
                w.to_uppercase()
            } else {
                let mut chars = w.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// Manifest text made safe for a terminal: control characters (escape sequences could
/// recolour or rewrite the screen) are shown escaped; tabs become spaces.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// The closest candidate within a third of the word's length (edit distance with
/// transpositions), as the generator's diagnostics suggest.
fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(word, &Catalog::norm(c)), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev2 = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                cur[j] = cur[j].min(prev2[j - 2] + 1);
            }
        }
        prev2 = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

fn width_of(text: &str) -> usize {
    text.chars().count()
}

/// Word-wraps one line to `width` columns, keeping its indentation on every piece; words
/// longer than the width are split.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let body = line.trim_start_matches(' ');
    let indent = &line[..line.len() - body.len()];
    if !indent.is_empty() && width_of(indent) < width / 2 {
        return wrap_words(body, width - width_of(indent))
            .into_iter()
            .map(|piece| format!("{indent}{piece}"))
            .collect();
    }
    wrap_words(line, width)
}

fn wrap_words(line: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in line.split(' ') {
        let mut word = word.to_owned();
        loop {
            let needed = if current.is_empty() {
                width_of(&word)
            } else {
                width_of(&current) + 1 + width_of(&word)
            };
            if needed <= width {
                if !current.is_empty() {
                    current.push(' ');
                }
                current.push_str(&word);
                break;
            }
            if !current.is_empty() {
                lines.push(std::mem::take(&mut current));
                continue;
            }
            // A single word wider than the line: split it.
            let head: String = word.chars().take(width).collect();
            word = word.chars().skip(width).collect();
            lines.push(head);
            if word.is_empty() {
                break;
            }
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Cuts a line to `width` columns, marking the cut with `…`.
fn cut(line: &str, width: usize) -> String {
    if width_of(line) <= width {
        return line.to_owned();
    }
    let mut out: String = line.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// How a column fits into the width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Never narrower than its content.
    Keep,
    /// Narrowed as needed; words wrap onto more lines.
    Wrap,
    /// Narrowed as needed; each line is cut with `…` (AIPerf's type listings).
    Cut,
}

/// A table in the style of Rich's default box (heavy header, light body).
struct Table {
    title: String,
    headers: Vec<String>,
    fits: Vec<Fit>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
    rules: bool,
}

impl Table {
    fn new(title: &str, columns: &[(&str, Fit)]) -> Self {
        Self {
            title: title.to_owned(),
            headers: columns.iter().map(|(h, _)| (*h).to_owned()).collect(),
            fits: columns.iter().map(|(_, f)| *f).collect(),
            right: vec![false; columns.len()],
            rows: Vec::new(),
            rules: false,
        }
    }

    fn right_align(&mut self, column: usize) {
        if let Some(r) = self.right.get_mut(column) {
            *r = true;
        }
    }

    fn rules_between_rows(&mut self) {
        self.rules = true;
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows
            .push(cells.iter().map(|c| printable_lines(c)).collect());
    }

    /// Column widths: content widths, then the flexible columns narrowed (widest first)
    /// until the table fits `width`.
    fn widths(&self, width: usize) -> Vec<usize> {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width_of(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.lines().map(width_of).max().unwrap_or(0));
            }
        }
        let available = width.saturating_sub(3 * n + 1);
        let minimum: Vec<usize> = self
            .headers
            .iter()
            .zip(&self.fits)
            .zip(&widths)
            .map(|((h, fit), w)| match fit {
                Fit::Keep => *w,
                Fit::Wrap | Fit::Cut => width_of(h).max(10).min(*w),
            })
            .collect();
        let mut total: usize = widths.iter().sum();
        while total > available {
            let widest = (0..n)
                .filter(|&i| widths[i] > minimum[i])
                .max_by_key(|&i| (widths[i], i));
            let Some(i) = widest else {
                break;
            };
            widths[i] -= 1;
            total -= 1;
        }
        widths
    }

    fn render(&self, width: usize) -> String {
        let widths = self.widths(width);
        let table_width: usize = widths.iter().sum::<usize>() + 3 * widths.len() + 1;
        let mut out = String::new();
        let pad = table_width.saturating_sub(width_of(&self.title)) / 2;
        let _ = writeln!(out, "{}{}", " ".repeat(pad), self.title);

        let border = |left: char, fill: char, mid: char, right: char| {
            let parts: Vec<String> = widths
                .iter()
                .map(|w| fill.to_string().repeat(w + 2))
                .collect();
            format!("{left}{}{right}\n", parts.join(&mid.to_string()))
        };
        out.push_str(&border('┏', '━', '┳', '┓'));
        let header: Vec<Vec<String>> = self.headers.iter().map(|h| vec![h.clone()]).collect();
        self.push_lines(&mut out, &header, &widths, '┃');
        out.push_str(&border('┡', '━', '╇', '┩'));
        for (i, row) in self.rows.iter().enumerate() {
            if i > 0 && self.rules {
                out.push_str(&border('├', '─', '┼', '┤'));
            }
            let cells: Vec<Vec<String>> = row
                .iter()
                .zip(&widths)
                .zip(&self.fits)
                .map(|((cell, w), fit)| {
                    cell.split('\n')
                        .flat_map(|line| match fit {
                            Fit::Cut => vec![cut(line, *w)],
                            Fit::Keep | Fit::Wrap => wrap(line, *w),
                        })
                        .collect()
                })
                .collect();
            self.push_lines(&mut out, &cells, &widths, '│');
        }
        out.push_str(&border('└', '─', '┴', '┘'));
        out
    }

    fn push_lines(&self, out: &mut String, cells: &[Vec<String>], widths: &[usize], bar: char) {
        let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for line in 0..height {
            out.push(bar);
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                let text = cell.get(line).map(String::as_str).unwrap_or("");
                let fill = " ".repeat(w.saturating_sub(width_of(text)));
                if self.right[i] {
                    let _ = write!(out, " {fill}{text} {bar}");
                } else {
                    let _ = write!(out, " {text}{fill} {bar}");
                }
            }
            out.push('\n');
        }
    }
}

/// Cell text made printable line by line (newlines are kept: they separate lines).
fn printable_lines(text: &str) -> String {
    text.split('\n')
        .map(|l| printable(l.strip_suffix('\r').unwrap_or(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A rounded panel of `width` columns with `title` centred in its top border; long lines
/// wrap.
fn panel(title: &str, lines: &[String], width: usize) -> String {
    let inner = width.max(20) - 4;
    let title = cut(&format!(" {title} "), inner);
    let dashes = inner + 2 - width_of(&title);
    let left = dashes / 2;
    let mut out = format!(
        "╭{}{title}{}╮\n",
        "─".repeat(left),
        "─".repeat(dashes - left)
    );
    for line in lines {
        for piece in wrap(line, inner) {
            let fill = " ".repeat(inner - width_of(&piece));
            let _ = writeln!(out, "│ {piece}{fill} │");
        }
    }
    let _ = writeln!(out, "╰{}╯", "─".repeat(inner + 2));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case_upper_cases_acronyms() {
        assert_eq!(title_case("api_router"), "API Router");
        assert_eq!(
            title_case("gpu_telemetry_collector"),
            "GPU Telemetry Collector"
        );
        assert_eq!(title_case("zmq_proxy"), "ZMQ Proxy");
        assert_eq!(title_case("ui"), "UI");
    }

    #[test]
    fn wrap_and_cut() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap("", 3), [""]);
        assert_eq!(wrap("  aa bb cc", 7), ["  aa bb", "  cc"]);
        assert_eq!(cut("abcdef", 4), "abc…");
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("a\u{1b}[31mb\tc"), "a\\u{1b}[31mb c");
    }

    #[test]
    fn edit_distance_counts_transpositions_once() {
        assert_eq!(edit_distance("endpoint", "endpiont"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}

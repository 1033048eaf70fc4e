//! The console tables: AIPerf's metric tables and its error summary.

use super::table::{char_width, width, Justify, Table};
use crate::metrics::{self, ConsoleGroup};
use crate::results::{ErrorCount, MetricResult, RunResults};

/// The metric tables, one per non-empty console group (Usage before the default table,
/// as AIPerf prints them), each titled `NVIDIA AIPerf | <metrics_title>[: <Group>]`.
/// Only metrics with a `display_order` appear, sorted by it. Empty when none do.
pub fn render_metrics_table(results: &RunResults) -> String {
    let mut out = String::new();
    for group in ConsoleGroup::TABLE_ORDER {
        let mut rows: Vec<&MetricResult> = results
            .metrics
            .iter()
            .filter(|m| m.display_order.is_some() && console_group(m.tag) == group)
            .collect();
        if rows.is_empty() {
            continue;
        }
        rows.sort_by_key(|m| m.display_order);
        let mut title = format!("NVIDIA AIPerf | {}", results.metrics_title);
        if let Some(suffix) = group.title_suffix() {
            title = format!("{title}: {suffix}");
        }
        let columns = [
            ("Metric", Justify::Right),
            ("avg", Justify::Right),
            ("min", Justify::Right),
            ("max", Justify::Right),
            ("p99", Justify::Right),
            ("p90", Justify::Right),
            ("p50", Justify::Right),
            ("std", Justify::Right),
        ];
        let mut table = Table::new(title, &columns);
        for m in rows {
            table.add_row(metric_row(m));
        }
        out.push_str(&table.render());
    }
    out
}

/// The group a tag is shown in; tags this runtime does not know go to the default table.
fn console_group(tag: &str) -> ConsoleGroup {
    match metrics::lookup(tag).map(|d| d.group) {
        Some(ConsoleGroup::None) | None => ConsoleGroup::Default,
        Some(group) => group,
    }
}

fn metric_row(m: &MetricResult) -> Vec<String> {
    // Long headers put the unit on a second line, as AIPerf does past 30 characters.
    let sep = if m.header.chars().count() > 30 {
        "\n"
    } else {
        " "
    };
    let mut row = vec![format!("{}{sep}({})", m.header, m.unit)];
    let values = match &m.stats {
        Some(s) => [
            Some(s.avg),
            Some(s.min),
            Some(s.max),
            Some(s.p99),
            Some(s.p90),
            Some(s.p50),
            Some(s.std),
        ],
        None => [Some(m.avg), None, None, None, None, None, None],
    };
    row.extend(
        values
            .into_iter()
            .map(|v| v.map_or_else(|| "N/A".to_owned(), thousands)),
    );
    row
}

/// Python's `f"{v:,.2f}"`: `1,167.13`. A value that is not a number shows as `N/A`.
pub fn thousands(v: f64) -> String {
    if !v.is_finite() {
        return "N/A".to_owned();
    }
    let fixed = format!("{v:.2}");
    let (sign, digits) = match fixed.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", fixed.as_str()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut grouped = String::with_capacity(int.len() + int.len() / 3);
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// AIPerf's `Error Summary` table (Code | Type | Message | Count); empty when there are
/// no errors.
pub fn render_error_summary(errors: &[ErrorCount]) -> String {
    if errors.is_empty() {
        return String::new();
    }
    let columns = [
        ("Code", Justify::Right),
        ("Type", Justify::Right),
        ("Message", Justify::Left),
        ("Count", Justify::Right),
    ];
    let rows: Vec<[String; 4]> = errors
        .iter()
        .map(|e| {
            let d = &e.error_details;
            let code = d
                .code
                .filter(|&c| c != 0)
                .map_or_else(|| "N/A".to_owned(), |c| c.to_string());
            let kind = if d.kind.is_empty() {
                "N/A".to_owned()
            } else {
                d.kind.clone()
            };
            let count = thousands(e.count as f64);
            let count = count.strip_suffix(".00").unwrap_or(&count).to_owned();
            [code, kind, d.message.clone(), count]
        })
        .collect();
    // As rich fits the table to the console: the other columns keep their widths and the
    // messages wrap in what is left (each column pads one space a side, five rules).
    let widest = |i: usize, header: &str| {
        let cells = rows.iter().flat_map(|r| r[i].lines().map(width));
        cells.chain([width(header)]).max().unwrap_or(0)
    };
    let others = widest(0, "Code") + widest(1, "Type") + widest(3, "Count");
    let message_width = CONSOLE_WIDTH
        .saturating_sub(others + 4 * 2 + 5)
        .max("Message".len());
    let mut table = Table::new("NVIDIA AIPerf | Error Summary", &columns);
    for [code, kind, message, count] in rows {
        let narrowed = message.lines().any(|l| width(l) > message_width);
        let mut message = wrap(&message, message_width);
        // Rich gives a column it had to narrow all the room left, not its longest line.
        if narrowed {
            let first = message.lines().next().map_or(0, width);
            message.insert_str(
                first_line_end(&message),
                &" ".repeat(message_width.saturating_sub(first)),
            );
        }
        table.add_row(vec![code, kind, message, count]);
    }
    table.render()
}

/// AIPerf's console exports are this wide (`AIPERF_UI_CONSOLE_EXPORT_WIDTH`).
const CONSOLE_WIDTH: usize = 140;

/// A note after the tables, as AIPerf prints one (`console.print(f"\n{text}")`): a blank
/// line, then the text wrapped at the console's width as rich wraps it, each broken line
/// keeping the space it broke at.
pub fn render_note(text: &str) -> String {
    let mut out = String::from("\n");
    let mut column = 0;
    for word in text.split_inclusive(' ') {
        let visible = width(word.trim_end_matches(' '));
        if column > 0 && column + visible > CONSOLE_WIDTH {
            out.push('\n');
            column = 0;
        }
        out.push_str(word);
        column += width(word);
    }
    out.push('\n');
    out
}

/// Text width inside a warning panel.
const PANEL_WIDTH: usize = 88;

/// A warning panel, as AIPerf's console warnings are drawn: a rounded box titled
/// `title`, the text wrapped inside (a `\n` in `text` starts a new paragraph).
pub fn render_warning_panel(title: &str, text: &str) -> String {
    let lines: Vec<String> = wrap(text, PANEL_WIDTH).lines().map(str::to_owned).collect();
    let inner = PANEL_WIDTH + 2;
    let head = format!(" {title} ");
    let fill = inner.saturating_sub(width(&head));
    let mut out = format!(
        "╭{}{head}{}╮\n",
        "─".repeat(fill / 2),
        "─".repeat(fill - fill / 2)
    );
    for line in lines {
        let pad = PANEL_WIDTH.saturating_sub(width(&line));
        out.push_str(&format!("│ {line}{} │\n", " ".repeat(pad)));
    }
    out.push_str(&format!("╰{}╯\n", "─".repeat(inner)));
    out
}

/// Where the first line of `text` ends (a byte index).
fn first_line_end(text: &str) -> usize {
    text.find('\n').unwrap_or(text.len())
}

/// Word-wraps text to `columns` display columns, breaking words longer than a line.
fn wrap(text: &str, columns: usize) -> String {
    let mut lines: Vec<String> = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word;
            while width(word) > columns {
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                // As many characters as fit, and at least one (a wide character in a
                // column narrower than two would otherwise never fit).
                let mut used = 0;
                let cut = word
                    .char_indices()
                    .find(|&(at, c)| {
                        used += char_width(c);
                        at > 0 && used > columns
                    })
                    .map_or(word.len(), |(at, _)| at);
                lines.push(word[..cut].to_owned());
                word = &word[cut..];
            }
            let needed = if line.is_empty() { 0 } else { width(&line) + 1 };
            if !line.is_empty() && needed + width(word) > columns {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines.join("\n")
}

//! A text table drawn like rich's default `Table` (box `HEAVY_HEAD`, one space of
//! padding, centred title), which AIPerf uses for its console output.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Justify {
    Left,
    Right,
}

#[derive(Debug)]
pub(crate) struct Table {
    title: String,
    columns: Vec<(String, Justify)>,
    /// Cells may hold several lines separated by `\n`.
    rows: Vec<Vec<String>>,
}

/// Display width of a line, in terminal columns as rich counts them: a wide (CJK)
/// character takes two, a combining mark or a control character none. Server error text,
/// in any script, is the tables' one free-form input.
pub(crate) fn width(s: &str) -> usize {
    unicode_width::UnicodeWidthStr::width(s)
}

/// Display width of one character (see [`width`]).
pub(crate) fn char_width(c: char) -> usize {
    unicode_width::UnicodeWidthChar::width(c).unwrap_or(0)
}

impl Table {
    pub fn new(title: impl Into<String>, columns: &[(&str, Justify)]) -> Self {
        Table {
            title: title.into(),
            columns: columns.iter().map(|(h, j)| ((*h).to_owned(), *j)).collect(),
            rows: Vec::new(),
        }
    }

    pub fn add_row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The title line and the table, every line ending in `\n`.
    pub fn render(&self) -> String {
        let n = self.columns.len();
        let mut widths: Vec<usize> = self.columns.iter().map(|(h, _)| width(h)).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(n) {
                let w = cell.lines().map(width).max().unwrap_or(0);
                widths[i] = widths[i].max(w);
            }
        }
        let total = widths.iter().map(|w| w + 3).sum::<usize>() + 1;

        let mut out = String::new();
        let title_width = width(&self.title);
        if title_width < total {
            // Rich centres with the odd column on the right and pads both sides.
            let left = (total - title_width) / 2;
            push_spaces(&mut out, left);
            out.push_str(&self.title);
            push_spaces(&mut out, total - title_width - left);
        } else {
            out.push_str(&self.title);
        }
        out.push('\n');

        rule(&mut out, &widths, ['┏', '━', '┳', '┓']);
        let header: Vec<String> = self.columns.iter().map(|(h, _)| h.clone()).collect();
        self.push_row(&mut out, &widths, &header, '┃');
        rule(&mut out, &widths, ['┡', '━', '╇', '┩']);
        for row in &self.rows {
            self.push_row(&mut out, &widths, row, '│');
        }
        rule(&mut out, &widths, ['└', '─', '┴', '┘']);
        out
    }

    fn push_row(&self, out: &mut String, widths: &[usize], cells: &[String], bar: char) {
        let lines: Vec<Vec<&str>> = (0..widths.len())
            .map(|i| cells.get(i).map_or(vec![], |c| c.lines().collect()))
            .collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for line in 0..height {
            out.push(bar);
            for (i, w) in widths.iter().enumerate() {
                let text = lines[i].get(line).copied().unwrap_or("");
                let pad = w.saturating_sub(width(text));
                out.push(' ');
                match self.columns[i].1 {
                    Justify::Right => {
                        push_spaces(out, pad);
                        out.push_str(text);
                    }
                    Justify::Left => {
                        out.push_str(text);
                        push_spaces(out, pad);
                    }
                }
                out.push(' ');
                out.push(bar);
            }
            out.push('\n');
        }
    }
}

fn rule(out: &mut String, widths: &[usize], [left, fill, cross, right]: [char; 4]) {
    out.push(left);
    for (i, w) in widths.iter().enumerate() {
        if i > 0 {
            out.push(cross);
        }
        for _ in 0..w + 2 {
            out.push(fill);
        }
    }
    out.push(right);
    out.push('\n');
}

fn push_spaces(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

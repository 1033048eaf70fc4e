//! Progress displays. They run on the main thread, which the engine calls at most ~10
//! times a second; measuring workers never draw.

use std::io::{IsTerminal, Write};

use aiperf_runtime::engine::Progress;
use aiperf_runtime::plugin::{Plugin, PluginContext, PluginError};
use aiperf_runtime::protocols::UiProtocol;

const BAR_WIDTH: usize = 30;

/// Shows nothing (`--ui none`).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoUi;

impl Plugin for NoUi {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(NoUi)
    }
}

impl UiProtocol for NoUi {
    fn on_start(&mut self, _total_requests: Option<u64>, _duration_s: Option<f64>) {}
    fn on_progress(&mut self, _progress: &Progress) {}
    fn on_finish(&mut self, _progress: &Progress) {}
}

/// A one-line progress bar on stderr, redrawn in place on a terminal. When stderr is a
/// file or a pipe (CI logs), it prints a plain line at every tenth of the run instead,
/// so logs are not flooded with carriage returns.
#[derive(Debug, Clone)]
pub struct SimpleUi {
    terminal: bool,
    total: Option<u64>,
    duration_s: Option<f64>,
    /// Tenths of the run already reported (plain mode).
    reported_tenths: u32,
    /// Width of the last line drawn, to blank what a shorter line leaves behind.
    drawn_width: usize,
}

impl SimpleUi {
    pub fn new(terminal: bool) -> Self {
        SimpleUi {
            terminal,
            total: None,
            duration_s: None,
            reported_tenths: 0,
            drawn_width: 0,
        }
    }

    /// Fraction of the run done, by request count when bounded by count, else by time.
    fn fraction(&self, progress: &Progress) -> Option<f64> {
        let total = progress.total.or(self.total);
        let duration = progress.duration_s.or(self.duration_s);
        let fraction = match (total, duration) {
            (Some(total), _) if total > 0 => progress.completed as f64 / total as f64,
            (_, Some(duration)) if duration > 0.0 => progress.elapsed_s / duration,
            _ => return None,
        };
        Some(if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        })
    }

    /// The status line, e.g. `[=====>    ] 120/200 requests  12.3 s  errors 0`.
    pub fn render(&self, progress: &Progress) -> String {
        let mut line = String::with_capacity(80);
        if let Some(fraction) = self.fraction(progress) {
            let filled = ((fraction * BAR_WIDTH as f64) as usize).min(BAR_WIDTH);
            line.push('[');
            for i in 0..BAR_WIDTH {
                line.push(match i.cmp(&filled) {
                    std::cmp::Ordering::Less => '=',
                    std::cmp::Ordering::Equal => '>',
                    std::cmp::Ordering::Greater => ' ',
                });
            }
            line.push_str("] ");
        }
        match progress.total.or(self.total) {
            Some(total) => line.push_str(&format!("{}/{total} requests", progress.completed)),
            None => line.push_str(&format!("{} requests", progress.completed)),
        }
        line.push_str(&format!("  {:.1} s", progress.elapsed_s.max(0.0)));
        if let Some(duration) = progress.duration_s.or(self.duration_s) {
            line.push_str(&format!("/{duration:.1} s"));
        }
        line.push_str(&format!("  errors {}", progress.errors));
        line
    }

    fn draw(&mut self, progress: &Progress) {
        let line = self.render(progress);
        let pad = self.drawn_width.saturating_sub(line.len());
        self.drawn_width = line.len();
        // A closed stderr must not stop the run; the results still go to files.
        let _ = write!(std::io::stderr().lock(), "\r{line}{:pad$}", "");
    }

    fn print_line(&self, progress: &Progress) {
        let _ = writeln!(std::io::stderr().lock(), "{}", self.render(progress));
    }
}

impl Plugin for SimpleUi {
    fn create(_ctx: &PluginContext<'_>) -> Result<Self, PluginError> {
        Ok(SimpleUi::new(std::io::stderr().is_terminal()))
    }
}

impl UiProtocol for SimpleUi {
    fn on_start(&mut self, total_requests: Option<u64>, duration_s: Option<f64>) {
        self.total = total_requests;
        self.duration_s = duration_s;
        self.reported_tenths = 0;
        self.drawn_width = 0;
    }

    fn on_progress(&mut self, progress: &Progress) {
        if self.terminal {
            self.draw(progress);
            return;
        }
        let Some(fraction) = self.fraction(progress) else {
            return;
        };
        let tenths = (fraction * 10.0) as u32;
        if tenths > self.reported_tenths {
            self.reported_tenths = tenths;
            self.print_line(progress);
        }
    }

    fn on_finish(&mut self, progress: &Progress) {
        if self.terminal {
            self.draw(progress);
            let _ = writeln!(std::io::stderr().lock());
        } else if self.reported_tenths < 10 {
            self.reported_tenths = 10;
            self.print_line(progress);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progress(completed: u64, total: Option<u64>, elapsed_s: f64) -> Progress {
        Progress {
            sent: completed,
            completed,
            errors: 0,
            total,
            elapsed_s,
            duration_s: None,
        }
    }

    #[test]
    fn renders_a_bar_by_count() {
        let ui = SimpleUi::new(true);
        assert_eq!(
            ui.render(&progress(120, Some(200), 12.34)),
            "[==================>           ] 120/200 requests  12.3 s  errors 0"
        );
        assert_eq!(
            ui.render(&progress(200, Some(200), 20.0)),
            "[==============================] 200/200 requests  20.0 s  errors 0"
        );
    }

    #[test]
    fn renders_a_bar_by_time_and_without_bounds() {
        let mut ui = SimpleUi::new(true);
        let mut p = progress(7, None, 5.0);
        p.errors = 2;
        assert_eq!(ui.render(&p), "7 requests  5.0 s  errors 2");
        ui.on_start(None, Some(10.0));
        assert!(ui
            .render(&p)
            .starts_with("[===============>              ] 7 requests  5.0 s/10.0 s"));
    }

    #[test]
    fn odd_progress_does_not_panic() {
        let ui = SimpleUi::new(false);
        let mut p = progress(500, Some(0), f64::NAN);
        p.duration_s = Some(0.0);
        let _ = ui.render(&p);
        let _ = ui.render(&progress(500, Some(100), -1.0));
        let _ = ui.fraction(&Progress {
            duration_s: Some(f64::INFINITY),
            ..Progress::default()
        });
    }

    #[test]
    fn plain_mode_reports_each_tenth_once() {
        let mut ui = SimpleUi::new(false);
        ui.on_start(Some(100), None);
        for completed in 0..=100 {
            ui.on_progress(&progress(completed, Some(100), 0.0));
        }
        assert_eq!(ui.reported_tenths, 10);
        ui.on_finish(&progress(100, Some(100), 1.0));
        assert_eq!(ui.reported_tenths, 10);
    }
}
